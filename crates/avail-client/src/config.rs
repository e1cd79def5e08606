//! The client's account configuration (TOML) and local data directory (blink-compat §2.1, §6,
//! §8 items 1–2): one or more accounts, each with a SIP address and password, transport (TLS
//! preferred, TCP), an outbound proxy `host:port` (else the domain is resolved as RFC 3263
//! says, see [`crate::discovery`]), the XCAP root (else DNS TXT `xcap.<domain>`, §2.1), a
//! display name, and the instance id (RFC 5626 §4.1) generated once and kept in the account's
//! data directory.
//!
//! A file has one `[account]` table, whose state lives in `data_dir` itself, and/or any number
//! of `[[accounts]]` tables, each keeping its state in `<data_dir>/<user@domain>/` so that
//! instance ids, journals and caches never mix. Where the desktop's idle time is read from
//! (`idle_source`, `x11_display`, `wayland_display`) is set once for the file: every account
//! shares the desktop.

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

/// Where the agent reads the desktop's idle time from (auto-away, blink-compat §5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum IdleSource {
    /// The Wayland compositor in a Wayland session, else the X server.
    #[default]
    Auto,
    /// The X server of `x11_display` (else `DISPLAY`), even in a Wayland session.
    X11,
    /// The Wayland compositor of `wayland_display` (else `WAYLAND_DISPLAY`).
    Wayland,
    /// Not read: only `avail idle` reports it.
    Off,
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
    /// Address of this account's local API; default: the file's `api`.
    #[serde(default)]
    pub api: Option<String>,
    /// PEM file of the CA that signed the SIP and XCAP servers' certificates; without one,
    /// the system's trust store.
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
    /// The single account (`[account]`).
    #[serde(default)]
    pub account: Option<AccountConfig>,
    /// More accounts (`[[accounts]]`).
    #[serde(default)]
    pub accounts: Vec<AccountConfig>,
    /// Where the desktop's idle time is read from, for every account.
    #[serde(default)]
    pub idle_source: IdleSource,
    /// The X display whose idle time is read, e.g. `":0"`; default: `DISPLAY`.
    #[serde(default)]
    pub x11_display: Option<String>,
    /// The Wayland display whose idle time is read: a socket name in `XDG_RUNTIME_DIR`
    /// (`"wayland-0"`) or a socket's path; default: `WAYLAND_DISPLAY`.
    #[serde(default)]
    pub wayland_display: Option<String>,
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
    #[error("idle_threshold_secs must be at least 1 (0 would mean always idle)")]
    ZeroIdleThreshold,
    #[error("no account configured (an [account] or [[accounts]] table)")]
    NoAccount,
    #[error("account {0} is configured twice")]
    Duplicate(String),
    #[error("no account {0:?} configured (configured: {1})")]
    UnknownAccount(String, String),
}

/// A checked account, ready to use.
#[derive(Debug, Clone)]
pub struct AccountSettings {
    pub user: String,
    pub domain: String,
    pub password: String,
    pub display_name: Option<String>,
    pub transport: Transport,
    /// Host and port of the outbound proxy; none: resolve the domain (RFC 3263).
    pub outbound_proxy: Option<(String, u16)>,
    /// The configured XCAP root; none: DNS TXT `xcap.<domain>` (blink-compat §2.1).
    pub xcap_root: Option<String>,
    pub tls: TlsMode,
    pub homepage: Option<String>,
    pub map: Option<String>,
    pub idle_threshold: Duration,
    pub idle_source: IdleSource,
    /// The configured X display; none: `DISPLAY` (read where the agent runs).
    pub x11_display: Option<String>,
    /// The configured Wayland display; none: `WAYLAND_DISPLAY`.
    pub wayland_display: Option<String>,
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

    /// The XCAP identity once the root is known.
    pub fn xcap_account(&self, root: &str) -> Account {
        Account::new(&self.user, &self.domain, root)
    }

    /// Every account of the file, in order, creating data directories and instance ids.
    pub fn load_all(path: &Path) -> Result<Vec<AccountSettings>, ConfigError> {
        entries(path)?.into_iter().map(Entry::settings).collect()
    }

    /// The account `selector` names (its address, or a user part only one account has), or
    /// without a selector the first account of the file.
    pub fn load(path: &Path, selector: Option<&str>) -> Result<AccountSettings, ConfigError> {
        let mut entries = entries(path)?;
        let index = match selector {
            None => 0,
            Some(wanted) => select(&entries, wanted).ok_or_else(|| {
                let known: Vec<String> = entries.iter().map(|e| e.address()).collect();
                ConfigError::UnknownAccount(wanted.to_owned(), known.join(", "))
            })?,
        };
        entries.swap_remove(index).settings()
    }
}

/// `user@domain` of an address as written (a leading `sip:` is accepted).
fn parse_address(written: &str) -> Result<(String, String), ConfigError> {
    let address = written.strip_prefix("sip:").unwrap_or(written);
    address
        .split_once('@')
        .filter(|(u, d)| !u.is_empty() && !d.is_empty() && !d.contains(['@', ';', ' ']))
        // The address names the account's data directory.
        .filter(|_| !address.contains('/'))
        .map(|(u, d)| (u.to_owned(), d.to_owned()))
        .ok_or_else(|| ConfigError::Address(written.to_owned()))
}

/// One account of the file with where its state lives, its API listens and the desktop's idle
/// time is read.
struct Entry {
    account: AccountConfig,
    user: String,
    domain: String,
    data_dir: PathBuf,
    api: String,
    idle_source: IdleSource,
    x11_display: Option<String>,
    wayland_display: Option<String>,
}

impl Entry {
    fn address(&self) -> String {
        format!("{}@{}", self.user, self.domain)
    }

    /// User parts are case-sensitive, domains are not (RFC 3261 §19.1.4).
    fn is(&self, user: &str, domain: &str) -> bool {
        self.user == user && self.domain.eq_ignore_ascii_case(domain)
    }

    fn settings(self) -> Result<AccountSettings, ConfigError> {
        let account = self.account;
        let outbound_proxy = match &account.outbound_proxy {
            Some(proxy) => Some(
                proxy
                    .rsplit_once(':')
                    .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
                    .filter(|(h, _)| !h.is_empty())
                    .ok_or_else(|| ConfigError::Proxy(proxy.clone()))?,
            ),
            None => None,
        };
        if account.idle_threshold_secs == Some(0) {
            return Err(ConfigError::ZeroIdleThreshold);
        }
        let tls = if account.tls_insecure {
            TlsMode::Insecure
        } else {
            TlsMode::Verify {
                ca_file: account.tls_ca_file.clone(),
            }
        };
        fs::create_dir_all(&self.data_dir).map_err(|source| ConfigError::Io {
            path: self.data_dir.clone(),
            source,
        })?;
        let instance_uuid = instance_uuid(&self.data_dir)?;
        Ok(AccountSettings {
            user: self.user,
            domain: self.domain,
            password: account.password,
            display_name: account.display_name,
            transport: account.transport,
            outbound_proxy,
            xcap_root: account.xcap_root,
            tls,
            homepage: account.homepage,
            map: account.map,
            idle_threshold: account
                .idle_threshold_secs
                .map_or(DEFAULT_IDLE_THRESHOLD, Duration::from_secs),
            idle_source: self.idle_source,
            x11_display: self.x11_display,
            wayland_display: self.wayland_display,
            capabilities: account.capabilities,
            data_dir: self.data_dir,
            api: self.api,
            instance_uuid,
        })
    }
}

/// Reads the file and lists its accounts; nothing is created yet.
fn entries(path: &Path) -> Result<Vec<Entry>, ConfigError> {
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
    file_entries(file, base)
}

fn file_entries(file: ConfigFile, base: &Path) -> Result<Vec<Entry>, ConfigError> {
    let data_dir = base.join(file.data_dir.unwrap_or("avail-data".into()));
    let api = file.api.unwrap_or_else(|| "127.0.0.1:0".into());
    let single = file.account.map(|a| (a, true));
    let mut entries: Vec<Entry> = Vec::new();
    for (account, single) in single
        .into_iter()
        .chain(file.accounts.into_iter().map(|a| (a, false)))
    {
        let (user, domain) = parse_address(&account.address)?;
        let address = format!("{user}@{domain}");
        if entries.iter().any(|e| e.is(&user, &domain)) {
            return Err(ConfigError::Duplicate(address));
        }
        entries.push(Entry {
            data_dir: if single {
                data_dir.clone()
            } else {
                data_dir.join(&address)
            },
            api: account.api.clone().unwrap_or_else(|| api.clone()),
            idle_source: file.idle_source,
            x11_display: file.x11_display.clone(),
            wayland_display: file.wayland_display.clone(),
            account,
            user,
            domain,
        });
    }
    if entries.is_empty() {
        return Err(ConfigError::NoAccount);
    }
    Ok(entries)
}

/// The entry `wanted` names: its address exactly, else a user part only one account has.
fn select(entries: &[Entry], wanted: &str) -> Option<usize> {
    if let Ok((user, domain)) = parse_address(wanted) {
        return entries.iter().position(|e| e.is(&user, &domain));
    }
    let mut by_user = entries.iter().enumerate().filter(|(_, e)| e.user == wanted);
    match (by_user.next(), by_user.next()) {
        (Some((i, _)), None) => Some(i),
        _ => None,
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

    /// Writes `text` as `avail.toml` in a fresh directory.
    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("avail.toml");
        fs::write(&path, text).unwrap();
        (dir, path)
    }

    fn parse(text: &str) -> Result<AccountSettings, ConfigError> {
        let (_dir, path) = file(text);
        let settings = AccountSettings::load(&path, None)?;
        let stored = fs::read_to_string(settings.data_dir.join("instance-id")).unwrap();
        assert_eq!(stored.trim(), settings.instance_uuid);
        Ok(settings)
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
        assert_eq!(s.outbound_proxy, None, "resolved through DNS");
        let root = s.xcap_root.as_deref().unwrap();
        assert_eq!(
            s.xcap_account(root).xcap_root,
            "https://xcap.example.com/xcap-root"
        );
        assert!(s.data_dir.ends_with("avail-data"), "{:?}", s.data_dir);
        assert_eq!(s.api, "127.0.0.1:0");
        assert_eq!(s.idle_threshold, DEFAULT_IDLE_THRESHOLD);
        assert_eq!(s.idle_source, IdleSource::Auto);
        assert_eq!(s.x11_display, None, "DISPLAY where the agent runs");
        assert!(is_uuid(&s.instance_uuid), "{}", s.instance_uuid);
        assert_eq!(&s.instance_uuid[14..15], "4");
    }

    #[test]
    fn reads_proxy_and_transport_and_refuses_bad_values() {
        let s = parse(
            "[account]\naddress = \"bob@example.com\"\npassword = \"pw\"\ntransport = \"tcp\"\n\
             outbound_proxy = \"127.0.0.1:5070\"\n",
        )
        .unwrap();
        assert_eq!(s.outbound_proxy, Some(("127.0.0.1".into(), 5070)));
        assert_eq!(s.transport, Transport::Tcp);
        assert_eq!(s.xcap_root, None, "discovered through DNS");
        let bad =
            |account: &str| parse(&format!("[account]\npassword = \"pw\"\n{account}")).unwrap_err();
        assert!(matches!(
            bad("address = \"nodomain\""),
            ConfigError::Address(_)
        ));
        assert!(matches!(
            bad("address = \"a@b/c\""),
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
            parse("data_dir = \"d\"\n").unwrap_err(),
            ConfigError::NoAccount
        ));
    }

    const SEVERAL: &str = "api = \"127.0.0.1:0\"\n\
        [account]\naddress = \"alice@example.com\"\npassword = \"a\"\n\
        [[accounts]]\naddress = \"alice@work.example\"\npassword = \"w\"\napi = \"127.0.0.1:7000\"\n\
        [[accounts]]\naddress = \"sip:bob@example.com\"\npassword = \"b\"\n";

    #[test]
    fn several_accounts_keep_their_state_apart() {
        let (dir, path) = file(SEVERAL);
        let all = AccountSettings::load_all(&path).unwrap();
        let addresses: Vec<String> = all.iter().map(AccountSettings::address).collect();
        assert_eq!(
            addresses,
            ["alice@example.com", "alice@work.example", "bob@example.com"]
        );
        let data = dir.path().join("avail-data");
        assert_eq!(all[0].data_dir, data, "[account] uses data_dir itself");
        assert_eq!(all[1].data_dir, data.join("alice@work.example"));
        assert_eq!(all[2].data_dir, data.join("bob@example.com"));
        assert_eq!(all[1].api, "127.0.0.1:7000");
        assert_eq!(all[2].api, "127.0.0.1:0", "the file's api by default");
        let ids: std::collections::BTreeSet<&str> =
            all.iter().map(|s| s.instance_uuid.as_str()).collect();
        assert_eq!(ids.len(), 3, "one instance id per account");
    }

    #[test]
    fn an_account_is_selected_by_address_or_unique_user() {
        let (_dir, path) = file(SEVERAL);
        let pick = |wanted: Option<&str>| AccountSettings::load(&path, wanted).map(|s| s.address());
        assert_eq!(
            pick(None).unwrap(),
            "alice@example.com",
            "the first by default"
        );
        assert_eq!(
            pick(Some("sip:alice@work.example")).unwrap(),
            "alice@work.example"
        );
        assert_eq!(pick(Some("bob@EXAMPLE.com")).unwrap(), "bob@example.com");
        assert!(
            pick(Some("BOB@example.com")).is_err(),
            "user parts are case-sensitive"
        );
        assert_eq!(pick(Some("bob")).unwrap(), "bob@example.com");
        let ambiguous = pick(Some("alice")).unwrap_err();
        assert!(
            ambiguous
                .to_string()
                .contains("alice@work.example, bob@example.com"),
            "{ambiguous}"
        );
        let (_dir, twice) = file(
            "[account]\naddress = \"a@b\"\npassword = \"p\"\n\
             [[accounts]]\naddress = \"sip:a@B\"\npassword = \"p\"\n",
        );
        assert!(matches!(
            AccountSettings::load_all(&twice).unwrap_err(),
            ConfigError::Duplicate(_)
        ));
    }

    #[test]
    fn the_idle_source_is_set_once_for_every_account() {
        let (_dir, path) = file(&format!(
            "idle_source = \"x11\"\nx11_display = \":7\"\nwayland_display = \"wayland-3\"\n{}",
            SEVERAL.replace("[account]", "[account]\nidle_threshold_secs = 2")
        ));
        let all = AccountSettings::load_all(&path).unwrap();
        for s in &all {
            assert_eq!(s.idle_source, IdleSource::X11, "{}", s.address());
            assert_eq!(s.x11_display.as_deref(), Some(":7"), "{}", s.address());
            assert_eq!(s.wayland_display.as_deref(), Some("wayland-3"));
        }
        assert_eq!(all[0].idle_threshold, Duration::from_secs(2));
        assert_eq!(all[1].idle_threshold, DEFAULT_IDLE_THRESHOLD);
        let (_dir, zero) =
            file(&SEVERAL.replace("[account]", "[account]\nidle_threshold_secs = 0"));
        assert!(matches!(
            AccountSettings::load_all(&zero),
            Err(ConfigError::ZeroIdleThreshold)
        ));

        let source = |line: &str| {
            parse(&format!(
                "{line}\n[account]\naddress = \"a@b\"\npassword = \"p\"\n"
            ))
            .map(|s| s.idle_source)
        };
        assert_eq!(source("idle_source = \"off\"").unwrap(), IdleSource::Off);
        assert_eq!(source("idle_source = \"auto\"").unwrap(), IdleSource::Auto);
        assert_eq!(
            source("idle_source = \"wayland\"").unwrap(),
            IdleSource::Wayland
        );
        assert!(matches!(
            source("idle_source = \"mir\"").unwrap_err(),
            ConfigError::Syntax { .. }
        ));
        let per_account =
            parse("[account]\naddress = \"a@b\"\npassword = \"p\"\nidle_source = \"off\"\n");
        assert!(
            matches!(per_account.unwrap_err(), ConfigError::Syntax { .. }),
            "the desktop is the file's, not an account's"
        );
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
