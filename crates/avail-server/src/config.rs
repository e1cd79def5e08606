//! Server configuration: a TOML file, overridden by command-line flags, with defaults that
//! let `avail-server` start with no set-up at all (embedded SQLite, SIP on 5060/5061).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

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
    pub proxy: ProxyConfig,
    pub presence: PresenceConfig,
    pub rls: RlsConfig,
}

/// Longest `[sip] batch_wait_us`: the wait delays every message under load by up to that,
/// and 10 ms is already a tenth of a typical publish-to-NOTIFY budget.
pub const MAX_BATCH_WAIT_US: u64 = 10_000;

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
    /// Under load, the SIP thread takes its messages at most once per this many
    /// microseconds, sleeping in between, so the messages that arrive meanwhile are taken
    /// together (interrupt moderation; see `pacing`); 0: never waits.
    pub batch_wait_us: u64,
    /// DNS servers (`IP:PORT`) asked where other domains' SIP servers are (RFC 3263); empty:
    /// the system's resolver (`/etc/resolv.conf`).
    pub nameservers: Vec<SocketAddr>,
}

impl SipConfig {
    /// The transports RFC 3263 §4.1 may pick for a next hop that names none, in the order
    /// their SRV names are asked about: those with a listener (a request leaves from ours,
    /// and its Via and Record-Route name it), UDP first as §4.1's default for SIP URIs.
    pub fn outgoing_transports(&self) -> Vec<sip_locate::Transport> {
        [
            (self.udp, sip_locate::Transport::Udp),
            (self.tcp, sip_locate::Transport::Tcp),
            (self.tls, sip_locate::Transport::Tls),
        ]
        .into_iter()
        .filter_map(|(listener, transport)| listener.map(|_| transport))
        .collect()
    }
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
    /// PEM file of the CAs trusted for outgoing TLS (next hops in other domains, RFC 5922
    /// §4); without it, the system's trust store.
    pub ca_file: Option<PathBuf>,
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
    /// Networks whose requests are accepted without a digest challenge, the identity being
    /// the From user (like Kamailio's permissions module): for gateways and load generators
    /// on a network the operator controls. Empty by default.
    pub trusted: Vec<Cidr>,
}

/// An IP network in CIDR notation (`10.0.0.0/8`, `fd00::/8`); a bare address is a
/// single-host network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is inside this network. IPv4-mapped IPv6 addresses (what a dual-stack
    /// listener reports for an IPv4 peer) match the IPv4 networks they stand for.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.network.is_ipv4() && network_of(ip, self.prefix) == self.network
    }
}

/// `ip` with every bit after the first `prefix` cleared (`prefix` at most the address width).
fn network_of(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(ip) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::from((u32::from(ip) & mask).to_be_bytes())
        }
        IpAddr::V6(ip) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::from((u128::from(ip) & mask).to_be_bytes())
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Cidr, String> {
        let invalid = || format!("`{text}` is not an IP network such as 10.0.0.0/8 or fd00::/8");
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address.parse().map_err(|_| invalid())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            // Plain digits only: `u8::from_str` would also accept `+8`.
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().map_err(|_| invalid())?
            }
            Some(_) => return Err(invalid()),
            None => max,
        };
        if prefix > max {
            return Err(invalid());
        }
        // Host bits set usually means a mistyped prefix (10.1.2.3/8 meant as /32?): refusing
        // it is safer than silently trusting a whole /8.
        let masked = network_of(network, prefix);
        if masked != network {
            return Err(format!(
                "`{text}` has host bits set; the network would be {masked}/{prefix}"
            ));
        }
        Ok(Cidr { network, prefix })
    }
}

impl TryFrom<String> for Cidr {
    type Error = String;

    fn try_from(text: String) -> Result<Cidr, String> {
        text.parse()
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The stateful proxy (RFC 3261 §16) towards the users of the served domains.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    /// Timer C (RFC 3261 §16.8): seconds an INVITE branch may ring without a further
    /// provisional response before it is cancelled.
    pub timer_c_secs: u64,
    /// Request-URI domains of other operators that requests are still forwarded to; `*`
    /// allows any. Empty by default: no open relay, such requests get 403.
    pub relay_domains: Vec<String>,
}

impl ProxyConfig {
    /// Whether requests for `domain`, which we do not serve, may be forwarded.
    pub fn relays_to(&self, domain: &str) -> bool {
        self.relay_domains
            .iter()
            .any(|d| d == "*" || d.eq_ignore_ascii_case(domain))
    }
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            timer_c_secs: 181,
            relay_domains: Vec::new(),
        }
    }
}

/// Load shaping of the presence agent, for every event package it serves (presence, winfo,
/// xcap-diff). A SUBSCRIBE over a per-watcher or per-presentity cap gets 403 with a reason
/// phrase naming the cap (`Too Many Subscriptions From This Subscriber` / `To This
/// Resource`): the request is refused by policy and repeating it will not help until
/// another subscription ends. Over the server-wide cap it gets 503 with `Retry-After`, the
/// RFC 3261 §21.5.4 answer to a temporary overload.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PresenceConfig {
    /// Subscriptions one watcher (From AOR) may hold. Blink without a resource list server
    /// subscribes to each contact on its own, hence a cap well above address-book sizes.
    pub max_subscriptions_per_watcher: usize,
    /// Subscriptions one presentity (Request-URI AOR) may have.
    pub max_subscriptions_per_presentity: usize,
    /// Live subscriptions in the whole server.
    pub max_subscriptions: usize,
    /// Least time between the answer to one NOTIFY of a subscription and the next NOTIFY;
    /// states published meanwhile collapse into the newest, and a final (terminated) NOTIFY
    /// is never held back by it. 0 turns rate limiting off.
    pub min_notify_interval_ms: u64,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        PresenceConfig {
            max_subscriptions_per_watcher: 1000,
            max_subscriptions_per_presentity: 1000,
            max_subscriptions: 100_000,
            // At most five NOTIFYs a second per subscription: a flapping client cannot flood
            // its watchers, and a human's state change still shows at once.
            min_notify_interval_ms: 200,
        }
    }
}

impl PresenceConfig {
    /// Applies these limits to the presence agent's configuration.
    pub fn apply(&self, agent: &mut presence::Config) {
        let engine = &mut agent.subscription;
        engine.max_per_subscriber = self.max_subscriptions_per_watcher;
        engine.max_per_resource = self.max_subscriptions_per_presentity;
        engine.max_subscriptions = self.max_subscriptions;
        engine.min_notify_interval = std::time::Duration::from_millis(self.min_notify_interval_ms);
    }
}

/// The resource list server (RFC 4662, lists from RFC 4826 documents).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RlsConfig {
    /// How long state changes of a list's resources are collected into one NOTIFY.
    pub batch_window_ms: u64,
    /// Resources one list may expand to; the rest are left out.
    pub max_entries: usize,
    /// Nesting of lists, references included.
    pub max_depth: usize,
    /// Documents one expansion may read (references into other documents).
    pub max_documents: usize,
    /// Largest NOTIFY body; resource states beyond it wait for the next NOTIFY.
    pub max_notify_body: usize,
    /// Where back-end SUBSCRIBEs for other domains go instead of the domain itself, as
    /// `domain=host:port` (TCP), e.g. `example.org=192.0.2.7:5060`.
    pub routes: Vec<String>,
}

impl Default for RlsConfig {
    fn default() -> Self {
        RlsConfig {
            batch_window_ms: 200,
            max_entries: 1000,
            max_depth: 16,
            max_documents: 16,
            max_notify_body: 512 * 1024,
            routes: Vec::new(),
        }
    }
}

impl RlsConfig {
    pub fn batch_window(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.batch_window_ms)
    }

    /// The routes as `(domain in lower case, next hop)`.
    pub fn route_table(&self) -> Result<Vec<(String, SocketAddr)>, String> {
        self.routes
            .iter()
            .map(|route| {
                let parsed = route
                    .split_once('=')
                    .and_then(|(domain, addr)| Some((domain.trim(), addr.trim().parse().ok()?)))
                    .filter(|(domain, _)| is_valid_domain(domain));
                parsed
                    .map(|(domain, addr)| (domain.to_ascii_lowercase(), addr))
                    .ok_or_else(|| format!("rls route `{route}` is not `domain=ip:port`"))
            })
            .collect()
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub max_body_bytes: usize,
    /// Live SIP transactions of each direction: above it new requests get 503 without
    /// creating state, and requests of our own (NOTIFYs, proxied requests) are not sent.
    /// Completed ones linger for retransmissions only while under half of it.
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
            proxy: ProxyConfig::default(),
            presence: PresenceConfig::default(),
            rls: RlsConfig::default(),
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
            batch_wait_us: 1000,
            nameservers: Vec::new(),
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
            trusted: Vec::new(),
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
            // Half of it may linger for retransmissions: over UDP that covers Timer K up to
            // 20,000 NOTIFY/s and Timer J up to 3,100 requests/s.
            max_transactions: 200_000,
        }
    }
}

impl AuthConfig {
    /// The configured digest algorithms, in order (validated by [`Config::validate`]).
    pub fn digest_algorithms(&self) -> Vec<sip_auth::Algorithm> {
        self.algorithms
            .iter()
            .filter_map(|a| sip_auth::Algorithm::from_param(Some(a)))
            .collect()
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
        self.rls.route_table().map_err(ConfigError::Invalid)?;
        if self.proxy.timer_c_secs == 0 {
            return Err(ConfigError::Invalid(
                "proxy timer_c_secs must be at least 1".into(),
            ));
        }
        let p = &self.presence;
        if p.max_subscriptions_per_watcher == 0
            || p.max_subscriptions_per_presentity == 0
            || p.max_subscriptions == 0
        {
            return Err(ConfigError::Invalid(
                "presence subscription caps must be at least 1".into(),
            ));
        }
        if self.sip.batch_wait_us > MAX_BATCH_WAIT_US {
            return Err(ConfigError::Invalid(format!(
                "sip batch_wait_us must be at most {MAX_BATCH_WAIT_US}"
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
        let mut config = Config::default();
        config.sip.batch_wait_us = MAX_BATCH_WAIT_US;
        assert!(config.validate().is_ok());
        config.sip.batch_wait_us = MAX_BATCH_WAIT_US + 1;
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("batch_wait_us"));
    }

    fn cidr(text: &str) -> Cidr {
        text.parse().expect("valid network")
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("valid address")
    }

    #[test]
    fn ipv4_networks_match_by_prefix() {
        let net = cidr("10.0.0.0/8");
        assert!(net.contains(ip("10.0.0.1")));
        assert!(net.contains(ip("10.255.255.255")));
        assert!(!net.contains(ip("11.0.0.0")));
        assert!(!net.contains(ip("9.255.255.255")));
        let host = cidr("127.0.0.1");
        assert_eq!(host, cidr("127.0.0.1/32"));
        assert!(host.contains(ip("127.0.0.1")));
        assert!(!host.contains(ip("127.0.0.2")));
        let odd = cidr("192.168.4.0/22");
        assert!(odd.contains(ip("192.168.7.255")));
        assert!(!odd.contains(ip("192.168.8.0")));
        assert!(cidr("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(
            !cidr("0.0.0.0/0").contains(ip("::1")),
            "no cross-family match"
        );
    }

    #[test]
    fn ipv6_networks_match_by_prefix_and_mapped_ipv4_counts_as_ipv4() {
        let net = cidr("fd00::/8");
        assert!(net.contains(ip("fd12:3456::1")));
        assert!(!net.contains(ip("fe80::1")));
        assert!(cidr("::1/128").contains(ip("::1")));
        assert!(!cidr("::1/128").contains(ip("::2")));
        assert!(cidr("2001:db8::/33").contains(ip("2001:db8:7fff::1")));
        assert!(!cidr("2001:db8::/33").contains(ip("2001:db8:8000::1")));
        assert!(cidr("::/0").contains(ip("2001:db8::1")));
        assert!(cidr("127.0.0.0/8").contains(ip("::ffff:127.0.0.5")));
        assert!(!cidr("127.0.0.0/8").contains(ip("::ffff:10.0.0.5")));
    }

    #[test]
    fn malformed_networks_are_rejected_with_the_reason() {
        for bad in [
            "",
            "/8",
            "10.0.0.0/",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/+8",
            "10.0.0/8",
            "10.0.0.0/8/8",
            "example.com/8",
            "10.0.0.0/0008",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?} accepted");
        }
        let error = "10.1.2.3/8".parse::<Cidr>().unwrap_err();
        assert!(error.contains("10.0.0.0/8"), "{error}");
        assert_eq!(cidr("fd00::/8").to_string(), "fd00::/8");
    }

    #[test]
    fn trusted_networks_come_from_the_auth_section() {
        let config: Config =
            toml::from_str("[auth]\ntrusted = [\"127.0.0.1/32\", \"::1\"]\n").expect("valid");
        assert_eq!(config.auth.trusted, [cidr("127.0.0.1/32"), cidr("::1/128")]);
        assert!(Config::default().auth.trusted.is_empty());
        let error = toml::from_str::<Config>("[auth]\ntrusted = [\"10.0.0.1/8\"]\n").unwrap_err();
        assert!(error.to_string().contains("host bits"), "{error}");
    }

    #[test]
    fn proxy_section_sets_timer_c_and_relay_domains() {
        let defaults = Config::default();
        assert_eq!(defaults.proxy.timer_c_secs, 181);
        assert!(
            !defaults.proxy.relays_to("example.org"),
            "no open relay by default"
        );
        let config: Config =
            toml::from_str("[proxy]\ntimer_c_secs = 200\nrelay_domains = [\"Example.ORG\"]\n")
                .expect("valid");
        assert_eq!(config.proxy.timer_c_secs, 200);
        assert!(config.proxy.relays_to("example.org"));
        assert!(!config.proxy.relays_to("example.net"));
        let any: Config = toml::from_str("[proxy]\nrelay_domains = [\"*\"]\n").expect("valid");
        assert!(any.proxy.relays_to("example.net"));
        let mut zero = Config::default();
        zero.proxy.timer_c_secs = 0;
        assert!(zero.validate().is_err());
    }

    #[test]
    fn presence_section_sets_the_agent_limits() {
        let config: Config = toml::from_str(
            "[presence]\nmax_subscriptions_per_watcher = 5\nmin_notify_interval_ms = 0\n",
        )
        .expect("valid");
        config.validate().expect("consistent");
        assert_eq!(config.presence.max_subscriptions_per_watcher, 5);
        assert_eq!(
            config.presence.max_subscriptions_per_presentity,
            PresenceConfig::default().max_subscriptions_per_presentity
        );
        let mut agent = presence::Config::new(60, 3600, 3600);
        config.presence.apply(&mut agent);
        assert_eq!(agent.subscription.max_per_subscriber, 5);
        assert_eq!(agent.subscription.max_per_resource, 1000);
        assert_eq!(agent.subscription.max_subscriptions, 100_000);
        assert!(agent.subscription.min_notify_interval.is_zero());
        Config::default().presence.apply(&mut agent);
        assert_eq!(
            agent.subscription.min_notify_interval,
            std::time::Duration::from_millis(200),
            "rate limiting is on by default"
        );
        let mut config = Config::default();
        config.presence.max_subscriptions_per_presentity = 0;
        assert!(config.validate().is_err());
    }

    #[test]
    fn sip_section_names_the_dns_servers_and_listeners_decide_the_srv_transports() {
        let defaults = Config::default();
        assert!(defaults.sip.nameservers.is_empty(), "the system's resolver");
        assert_eq!(
            defaults.sip.outgoing_transports(),
            [
                sip_locate::Transport::Udp,
                sip_locate::Transport::Tcp,
                sip_locate::Transport::Tls
            ]
        );
        let config: Config =
            toml::from_str("[sip]\nnameservers = [\"127.0.0.1:5353\", \"[::1]:53\"]\n")
                .expect("valid");
        assert_eq!(
            config.sip.nameservers,
            [
                "127.0.0.1:5353".parse::<SocketAddr>().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
        let tcp_only = SipConfig {
            udp: None,
            tls: None,
            ..SipConfig::default()
        };
        assert_eq!(tcp_only.outgoing_transports(), [sip_locate::Transport::Tcp]);
        assert!(toml::from_str::<Config>("[sip]\nnameservers = [\"localhost\"]\n").is_err());
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
