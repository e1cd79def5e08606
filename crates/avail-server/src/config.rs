//! Server configuration: a TOML file, overridden by command-line flags, with defaults that
//! let `avail-server` start with no set-up at all (embedded SQLite, SIP on 5060/5061).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Everything the server reads at start-up. Every field has a flag of the same name
/// (see `cli.rs`); a flag wins over the file, the file over the default.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the SQLite database and the generated TLS certificate live.
    pub data_dir: PathBuf,
    /// Domains this server is registrar (and later presence server) for.
    pub domains: Vec<String>,
    pub sip: SipConfig,
    pub http: HttpConfig,
    pub tls: TlsConfig,
    pub registrar: RegistrarConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SipConfig {
    /// UDP listener; `None` (or the string "off" on the command line) disables it.
    pub udp: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
    pub tls: Option<SocketAddr>,
    /// Close a TCP/TLS connection after this many seconds without a byte from the peer.
    /// Blink sends a CRLF keepalive every 90 s, so the default leaves a wide margin.
    pub idle_timeout_secs: u64,
    /// Upper bound on simultaneous TCP+TLS connections.
    pub max_connections: usize,
}

/// XCAP listeners (RFC 4825); HTTPS uses the SIP TLS certificate.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub http: Option<SocketAddr>,
    pub https: Option<SocketAddr>,
    /// Path of the XCAP root (RFC 4825 §6.1): clients are configured with
    /// `http(s)://host:port` + this path.
    pub root: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain; without it a self-signed certificate is generated in
    /// `data_dir/tls/` on first start and reused afterwards.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrarConfig {
    pub min_expires: u32,
    pub max_expires: u32,
    pub default_expires: u32,
    pub max_contacts_per_aor: usize,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Seconds a nonce stays valid; after that the client is re-challenged with `stale=true`.
    pub nonce_lifetime_secs: u64,
    /// Digest algorithms offered in a 401, one challenge each, in this order (RFC 8760 §2.4:
    /// most preferred first). MD5 leads by default because deployed clients that read only
    /// the first challenge (pjsip before 2.11, hence older Blink builds; SIPp 3.6) fail on a
    /// leading SHA-256 one; clients implementing RFC 8760 still find SHA-256 and may use it.
    pub algorithms: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub max_body_bytes: usize,
    /// Live SIP transactions; above it new requests get 503 without creating state.
    pub max_transactions: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("avail-data"),
            domains: vec!["localhost".to_string()],
            sip: SipConfig::default(),
            http: HttpConfig::default(),
            tls: TlsConfig::default(),
            registrar: RegistrarConfig::default(),
            auth: AuthConfig::default(),
            limits: LimitsConfig::default(),
        }
    }
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            udp: Some(SocketAddr::from(([0, 0, 0, 0], 5060))),
            tcp: Some(SocketAddr::from(([0, 0, 0, 0], 5060))),
            tls: Some(SocketAddr::from(([0, 0, 0, 0], 5061))),
            idle_timeout_secs: 300,
            max_connections: 10_000,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            http: Some(SocketAddr::from(([0, 0, 0, 0], 8080))),
            https: Some(SocketAddr::from(([0, 0, 0, 0], 8443))),
            root: "/xcap-root".to_string(),
        }
    }
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            max_contacts_per_aor: 20,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            nonce_lifetime_secs: 300,
            algorithms: vec!["MD5".into(), "SHA-256".into()],
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let sip = sip_message::Limits::default();
        LimitsConfig {
            max_header_bytes: sip.max_header_bytes,
            max_headers: sip.max_headers,
            max_body_bytes: sip.max_body_bytes,
            max_transactions: 100_000,
        }
    }
}

impl LimitsConfig {
    pub fn sip(&self) -> sip_message::Limits {
        sip_message::Limits {
            max_header_bytes: self.max_header_bytes,
            max_headers: self.max_headers,
            max_body_bytes: self.max_body_bytes,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration in {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// Checks that cannot be expressed in the types.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.domains.is_empty() {
            return Err(ConfigError::Invalid(
                "at least one domain is required".into(),
            ));
        }
        if let Some(bad) = self.domains.iter().find(|d| !is_valid_domain(d)) {
            return Err(ConfigError::Invalid(format!(
                "`{bad}` is not a valid domain name"
            )));
        }
        let r = &self.registrar;
        if r.min_expires == 0 || r.min_expires > r.max_expires || r.default_expires < r.min_expires
        {
            return Err(ConfigError::Invalid(
                "registrar expiry must satisfy 0 < min_expires <= default_expires, min_expires <= max_expires".into(),
            ));
        }
        if self.auth.algorithms.is_empty()
            || self
                .auth
                .algorithms
                .iter()
                .any(|a| !["MD5", "SHA-256"].contains(&a.as_str()))
        {
            return Err(ConfigError::Invalid(
                "auth algorithms must be a non-empty list of \"MD5\" and \"SHA-256\"".into(),
            ));
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(ConfigError::Invalid(
                "tls cert and key must be given together".into(),
            ));
        }
        let root = &self.http.root;
        if !root.starts_with('/')
            || root
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b"?#%".contains(&b))
        {
            return Err(ConfigError::Invalid(format!(
                "http root `{root}` must be a path starting with `/` (no query, fragment or escapes)"
            )));
        }
        if self.sip.udp.is_none() && self.sip.tcp.is_none() && self.sip.tls.is_none() {
            return Err(ConfigError::Invalid("no SIP listener is enabled".into()));
        }
        Ok(())
    }

    pub fn serves(&self, host: &str) -> bool {
        self.domains.iter().any(|d| d.eq_ignore_ascii_case(host))
    }
}

/// Hostnames per RFC 1123 (letters, digits, hyphens, dots), or an IP literal, which small
/// deployments and tests use as their SIP domain.
fn is_valid_domain(domain: &str) -> bool {
    if domain.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_overrides_defaults_and_keeps_the_rest() {
        let config: Config = toml::from_str(
            r#"
            data_dir = "/var/lib/avail"
            domains = ["example.com", "example.org"]
            [sip]
            tls = "127.0.0.1:5071"
            [registrar]
            min_expires = 120
            "#,
        )
        .expect("valid config");
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/avail"));
        assert_eq!(config.domains, ["example.com", "example.org"]);
        assert_eq!(config.sip.tls, Some("127.0.0.1:5071".parse().unwrap()));
        assert_eq!(config.sip.udp, SipConfig::default().udp);
        assert_eq!(config.registrar.min_expires, 120);
        assert_eq!(config.registrar.max_expires, 3600);
        config.validate().expect("consistent");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let error = toml::from_str::<Config>("[sip]\nudp_port = 5060\n").unwrap_err();
        assert!(error.to_string().contains("udp_port"), "{error}");
    }

    #[test]
    fn inconsistent_settings_are_rejected() {
        let mut config = Config::default();
        config.registrar.min_expires = 4000;
        assert!(config.validate().is_err());
        let config = Config {
            domains: vec!["bad domain".into()],
            ..Config::default()
        };
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("bad domain"));
        let mut config = Config::default();
        config.tls.cert = Some("cert.pem".into());
        assert!(config.validate().is_err());
        for root in ["xcap-root", "/a?b", "/a b", ""] {
            let mut config = Config::default();
            config.http.root = root.into();
            assert!(config.validate().is_err(), "{root:?}");
        }
    }

    #[test]
    fn served_domains_compare_case_insensitively() {
        let config = Config {
            domains: vec!["Example.COM".into()],
            ..Config::default()
        };
        assert!(config.serves("example.com"));
        assert!(!config.serves("example.org"));
    }
}
