//! The client's account configuration (TOML) and local data directory (blink-compat §2.1, §6,
//! §8 items 1–2): SIP address and password, transport (TLS preferred, TCP), an outbound proxy
//! `host:port` (else the domain on the transport's default port), the XCAP root, a display
//! name, and the instance id (RFC 5626 §4.1) generated once and kept in the data directory.
//!
//! XCAP root discovery by DNS TXT `xcap.<domain>` (§2.1) is not implemented: no DNS resolver
//! crate is in the workspace, so the root must be configured.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::account::Account;
use crate::http::TlsMode;
use crate::presence::{Capabilities, DEFAULT_IDLE_THRESHOLD};

/// Configuration files larger than this are refused.
const MAX_CONFIG_BYTES: u64 = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    #[default]
    Tls,
    Tcp,
}

impl Transport {
    pub fn default_port(self) -> u16 {
        match self {
            Transport::Tls => 5061,
            Transport::Tcp => 5060,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tls => "tls",
            Transport::Tcp => "tcp",
        }
    }
}

/// The `[account]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// `user@domain` (a leading `sip:` is accepted).
    pub address: String,
    pub password: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub transport: Transport,
    /// `host:port` of the SIP server to connect to.
    #[serde(default)]
    pub outbound_proxy: Option<String>,
    /// `http(s)://host[:port]/path`.
    #[serde(default)]
    pub xcap_root: Option<String>,
    /// PEM file of the CA that signed the SIP and XCAP servers' certificates.
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// Accept any certificate (self-signed test servers; Blink never verifies XCAP).
    #[serde(default)]
    pub tls_insecure: bool,
    #[serde(default)]
    pub homepage: Option<String>,
    /// "Country" or "Country/City".
    #[serde(default)]
    pub map: Option<String>,
    #[serde(default)]
    pub idle_threshold_secs: Option<u64>,
    #[serde(default)]
    pub capabilities: Capabilities,
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Where the journal, caches and state live; default: `avail-data` beside the file.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// Address of the local API; default `127.0.0.1:0` (any free port, written to
    /// `<data_dir>/agent.addr`).
    #[serde(default)]
    pub api: Option<String>,
    pub account: AccountConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}: larger than {MAX_CONFIG_BYTES} bytes")]
    TooLarge(PathBuf),
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("address {0:?} is not user@domain")]
    Address(String),
    #[error("outbound proxy {0:?} is not host:port")]
    Proxy(String),
    #[error("no XCAP root configured (DNS TXT discovery of xcap.<domain> is not supported)")]
    NoXcapRoot,
}

/// A checked account, ready to use.
#[derive(Debug, Clone)]
pub struct AccountSettings {
    pub user: String,
    pub domain: String,
    pub password: String,
    pub display_name: Option<String>,
    pub transport: Transport,
    /// Host and port to connect to.
    pub server: (String, u16),
    pub xcap: Account,
    pub tls: TlsMode,
    pub homepage: Option<String>,
    pub map: Option<String>,
    pub idle_threshold: Duration,
    pub capabilities: Capabilities,
    pub data_dir: PathBuf,
    pub api: String,
    /// Canonical UUID, stable across restarts.
    pub instance_uuid: String,
}

impl AccountSettings {
    pub fn aor(&self) -> String {
        format!("sip:{}@{}", self.user, self.domain)
    }

    pub fn address(&self) -> String {
        format!("{}@{}", self.user, self.domain)
    }

    /// Reads the file, creates the data directory and the instance id if needed.
    pub fn load(path: &Path) -> Result<AccountSettings, ConfigError> {
        let io = |source| ConfigError::Io {
            path: path.to_owned(),
            source,
        };
        if fs::metadata(path).map_err(io)?.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge(path.to_owned()));
        }
        let text = fs::read_to_string(path).map_err(io)?;
        let file: ConfigFile = toml::from_str(&text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let data_dir = base.join(file.data_dir.clone().unwrap_or("avail-data".into()));
        AccountSettings::from_file(file, data_dir)
    }

    pub fn from_file(file: ConfigFile, data_dir: PathBuf) -> Result<AccountSettings, ConfigError> {
        let account = file.account;
        let address = account
            .address
            .strip_prefix("sip:")
            .unwrap_or(&account.address);
        let (user, domain) = address
            .split_once('@')
            .filter(|(u, d)| !u.is_empty() && !d.is_empty() && !d.contains(['@', ';', ' ']))
            .ok_or_else(|| ConfigError::Address(account.address.clone()))?;
        let server = match &account.outbound_proxy {
            Some(proxy) => {
                let (host, port) = proxy
                    .rsplit_once(':')
                    .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
                    .filter(|(h, _)| !h.is_empty())
                    .ok_or_else(|| ConfigError::Proxy(proxy.clone()))?;
                (host.to_owned(), port)
            }
            None => (domain.to_owned(), account.transport.default_port()),
        };
        let root = account
            .xcap_root
            .as_deref()
            .ok_or(ConfigError::NoXcapRoot)?;
        let tls = if account.tls_insecure {
            TlsMode::Insecure
        } else {
            TlsMode::Verify {
                ca_file: account.tls_ca_file.clone(),
            }
        };
        fs::create_dir_all(&data_dir).map_err(|source| ConfigError::Io {
            path: data_dir.clone(),
            source,
        })?;
        let instance_uuid = instance_uuid(&data_dir)?;
        Ok(AccountSettings {
            user: user.to_owned(),
            domain: domain.to_owned(),
            password: account.password,
            display_name: account.display_name,
            transport: account.transport,
            server,
            xcap: Account::new(user, domain, root),
            tls,
            homepage: account.homepage,
            map: account.map,
            idle_threshold: account
                .idle_threshold_secs
                .map_or(DEFAULT_IDLE_THRESHOLD, Duration::from_secs),
            capabilities: account.capabilities,
            data_dir,
            api: file.api.unwrap_or_else(|| "127.0.0.1:0".into()),
            instance_uuid,
        })
    }
}

fn is_uuid(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A random (version 4) UUID in canonical form.
pub fn new_uuid() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The instance id stored in `dir/instance-id`, created on first use.
fn instance_uuid(dir: &Path) -> Result<String, ConfigError> {
    let path = dir.join("instance-id");
    if let Ok(text) = fs::read_to_string(&path) {
        let text = text.trim();
        if is_uuid(text) {
            return Ok(text.to_owned());
        }
    }
    let uuid = new_uuid();
    fs::write(&path, format!("{uuid}\n")).map_err(|source| ConfigError::Io { path, source })?;
    Ok(uuid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AccountSettings, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let file: ConfigFile = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: "t".into(),
            message: e.to_string(),
        })?;
        let settings = AccountSettings::from_file(file, dir.path().to_owned());
        // The directory outlives the call only for the instance id check below.
        let again = fs::read_to_string(dir.path().join("instance-id"));
        if let (Ok(s), Ok(stored)) = (&settings, again) {
            assert_eq!(stored.trim(), s.instance_uuid);
        }
        settings
    }

    #[test]
    fn reads_an_account_with_defaults() {
        let s = parse(
            "[account]\naddress = \"sip:alice@example.com\"\npassword = \"pw\"\n\
             xcap_root = \"https://xcap.example.com/xcap-root/\"\n",
        )
        .unwrap();
        assert_eq!(s.aor(), "sip:alice@example.com");
        assert_eq!(s.transport, Transport::Tls);
        assert_eq!(s.server, ("example.com".into(), 5061));
        assert_eq!(s.xcap.xcap_root, "https://xcap.example.com/xcap-root");
        assert_eq!(s.idle_threshold, DEFAULT_IDLE_THRESHOLD);
        assert!(is_uuid(&s.instance_uuid), "{}", s.instance_uuid);
        assert_eq!(&s.instance_uuid[14..15], "4");
    }

    #[test]
    fn reads_proxy_and_transport_and_refuses_bad_values() {
        let s = parse(
            "[account]\naddress = \"bob@example.com\"\npassword = \"pw\"\ntransport = \"tcp\"\n\
             outbound_proxy = \"127.0.0.1:5070\"\nxcap_root = \"http://127.0.0.1:8080/x\"\n",
        )
        .unwrap();
        assert_eq!(s.server, ("127.0.0.1".into(), 5070));
        assert_eq!(s.transport, Transport::Tcp);
        let bad = |account: &str| {
            parse(&format!(
                "[account]\npassword = \"pw\"\nxcap_root = \"http://h/x\"\n{account}"
            ))
            .unwrap_err()
        };
        assert!(matches!(
            bad("address = \"nodomain\""),
            ConfigError::Address(_)
        ));
        assert!(matches!(
            bad("address = \"a@b\"\noutbound_proxy = \"host\""),
            ConfigError::Proxy(_)
        ));
        assert!(matches!(
            bad("address = \"a@b\"\ntransport = \"udp\""),
            ConfigError::Syntax { .. }
        ));
        assert!(matches!(
            parse("[account]\naddress = \"a@b\"\npassword = \"pw\"\n").unwrap_err(),
            ConfigError::NoXcapRoot
        ));
    }

    #[test]
    fn keeps_the_instance_id_across_loads() {
        let dir = tempfile::tempdir().unwrap();
        let first = instance_uuid(dir.path()).unwrap();
        assert_eq!(instance_uuid(dir.path()).unwrap(), first);
        fs::write(dir.path().join("instance-id"), "garbage").unwrap();
        assert_ne!(instance_uuid(dir.path()).unwrap(), first);
    }
}
