//! Command line: `avail-server [run]` and `avail-server user add|list|remove|passwd`.
//! Every configuration setting has a flag; flags override the TOML file.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{Cidr, Config, ConfigError};

#[derive(Debug, Parser)]
#[command(
    name = "avail-server",
    version,
    about = "Avail SIP SIMPLE presence server"
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default when no command is given).
    Run,
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account. Without --password, the password is read from standard input.
    Add {
        address: String,
        #[arg(long)]
        password: Option<String>,
    },
    /// List accounts, one `user@domain` per line.
    List,
    /// Delete an account and its registrations.
    Remove { address: String },
    /// Create accounts in bulk from a file of `user@domain password` lines (`-` for stdin).
    Import { file: PathBuf },
    /// Change an account's password. Without --password it is read from standard input.
    Passwd {
        address: String,
        #[arg(long)]
        password: Option<String>,
    },
}

/// Flags shared by every command (global, so `avail-server user add --data-dir D ...` works).
#[derive(Debug, Args, Default)]
pub struct Settings {
    /// TOML configuration file.
    #[arg(long, global = true, env = "AVAIL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory for the database and generated certificates.
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// A domain this server serves (repeatable; replaces the configured list).
    #[arg(long = "domain", global = true)]
    pub domains: Vec<String>,
    /// SIP over UDP listen address, or `off`.
    #[arg(long, global = true, value_parser = parse_listen)]
    pub sip_udp: Option<Listen>,
    /// SIP over TCP listen address, or `off`.
    #[arg(long, global = true, value_parser = parse_listen)]
    pub sip_tcp: Option<Listen>,
    /// SIP over TLS listen address, or `off`.
    #[arg(long, global = true, value_parser = parse_listen)]
    pub sip_tls: Option<Listen>,
    /// XCAP over HTTP listen address, or `off`.
    #[arg(long, global = true, value_parser = parse_listen)]
    pub http: Option<Listen>,
    /// XCAP over HTTPS listen address, or `off`.
    #[arg(long, global = true, value_parser = parse_listen)]
    pub https: Option<Listen>,
    /// Path of the XCAP root, e.g. `/xcap-root`.
    #[arg(long, global = true)]
    pub xcap_root: Option<String>,
    /// PEM certificate chain for SIP over TLS and HTTPS.
    #[arg(long, global = true)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, global = true)]
    pub tls_key: Option<PathBuf>,
    /// PEM file of the CAs trusted for outgoing TLS connections (default: the system's
    /// trust store).
    #[arg(long, global = true)]
    pub tls_ca_file: Option<PathBuf>,
    /// Seconds without traffic after which a TCP/TLS connection is closed.
    #[arg(long, global = true)]
    pub idle_timeout: Option<u64>,
    /// Under load, the SIP thread takes messages at most once per this many microseconds
    /// (0: never waits).
    #[arg(long, global = true, value_name = "US")]
    pub batch_wait_us: Option<u64>,
    /// A DNS server (`IP:PORT`) asked where other domains' SIP servers are, instead of the
    /// system's resolver (repeatable; replaces the configured list).
    #[arg(long = "nameserver", global = true, value_name = "ADDR")]
    pub nameservers: Vec<SocketAddr>,
    /// Smallest registration interval accepted (423 below it).
    #[arg(long, global = true)]
    pub min_expires: Option<u32>,
    /// Digest algorithms offered, in order (comma-separated: `MD5,SHA-256`).
    #[arg(long, global = true, value_delimiter = ',')]
    pub auth_algorithms: Vec<String>,
    /// Largest registration interval granted.
    #[arg(long, global = true)]
    pub max_expires: Option<u32>,
    /// A network whose requests need no digest authentication, e.g. `127.0.0.1/32`
    /// (repeatable; replaces the configured list).
    #[arg(long = "trusted", global = true, value_name = "CIDR")]
    pub trusted: Vec<Cidr>,
    /// Proxy Timer C in seconds: how long an unanswered call rings (RFC 3261 §16.8).
    #[arg(long, global = true, value_name = "SECS")]
    pub timer_c: Option<u64>,
    /// A domain of another operator the proxy forwards requests to (repeatable, `*` for any;
    /// replaces the configured list).
    #[arg(long = "relay-domain", global = true, value_name = "DOMAIN")]
    pub relay_domains: Vec<String>,
    /// Subscriptions one watcher may hold (403 beyond it).
    #[arg(long, global = true, value_name = "N")]
    pub max_subscriptions_per_watcher: Option<usize>,
    /// Subscriptions one presentity may have (403 beyond it).
    #[arg(long, global = true, value_name = "N")]
    pub max_subscriptions_per_presentity: Option<usize>,
    /// Live subscriptions in the server (503 beyond it).
    #[arg(long, global = true, value_name = "N")]
    pub max_subscriptions: Option<usize>,
    /// Least milliseconds between two NOTIFYs of one subscription (0: no rate limit).
    #[arg(long, global = true, value_name = "MS")]
    pub min_notify_interval_ms: Option<u64>,
    /// Milliseconds a resource list collects state changes into one NOTIFY.
    #[arg(long, global = true, value_name = "MS")]
    pub rls_batch_window_ms: Option<u64>,
    /// Where back-end subscriptions to a domain go, `domain=host:port` over TCP (repeatable;
    /// replaces the configured list).
    #[arg(long = "rls-route", global = true, value_name = "DOMAIN=ADDR")]
    pub rls_routes: Vec<String>,
}

/// A listen address, or `off` to disable that listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen(pub Option<SocketAddr>);

fn parse_listen(text: &str) -> Result<Listen, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(Listen(None));
    }
    text.parse()
        .map(|addr| Listen(Some(addr)))
        .map_err(|_| format!("`{text}` is not `IP:PORT` or `off`"))
}

impl Settings {
    /// The file (or defaults) with these flags applied, validated.
    pub fn resolve(&self) -> Result<Config, ConfigError> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        if !self.domains.is_empty() {
            config.domains = self.domains.clone();
        }
        let listeners = [
            (self.sip_udp, &mut config.sip.udp),
            (self.sip_tcp, &mut config.sip.tcp),
            (self.sip_tls, &mut config.sip.tls),
            (self.http, &mut config.http.http),
            (self.https, &mut config.http.https),
        ];
        for (flag, slot) in listeners {
            if let Some(Listen(addr)) = flag {
                *slot = addr;
            }
        }
        if let Some(root) = &self.xcap_root {
            config.http.root = root.clone();
        }
        if self.tls_cert.is_some() {
            config.tls.cert = self.tls_cert.clone();
        }
        if self.tls_key.is_some() {
            config.tls.key = self.tls_key.clone();
        }
        if self.tls_ca_file.is_some() {
            config.tls.ca_file = self.tls_ca_file.clone();
        }
        if let Some(secs) = self.idle_timeout {
            config.sip.idle_timeout_secs = secs;
        }
        if let Some(us) = self.batch_wait_us {
            config.sip.batch_wait_us = us;
        }
        if !self.nameservers.is_empty() {
            config.sip.nameservers = self.nameservers.clone();
        }
        if let Some(secs) = self.min_expires {
            config.registrar.min_expires = secs;
        }
        if !self.auth_algorithms.is_empty() {
            config.auth.algorithms = self.auth_algorithms.clone();
        }
        if let Some(secs) = self.max_expires {
            config.registrar.max_expires = secs;
        }
        if !self.trusted.is_empty() {
            config.auth.trusted = self.trusted.clone();
        }
        if let Some(secs) = self.timer_c {
            config.proxy.timer_c_secs = secs;
        }
        if !self.relay_domains.is_empty() {
            config.proxy.relay_domains = self.relay_domains.clone();
        }
        let presence = &mut config.presence;
        let caps = [
            (
                self.max_subscriptions_per_watcher,
                &mut presence.max_subscriptions_per_watcher,
            ),
            (
                self.max_subscriptions_per_presentity,
                &mut presence.max_subscriptions_per_presentity,
            ),
            (self.max_subscriptions, &mut presence.max_subscriptions),
        ];
        for (flag, slot) in caps {
            if let Some(cap) = flag {
                *slot = cap;
            }
        }
        if let Some(ms) = self.rls_batch_window_ms {
            config.rls.batch_window_ms = ms;
        }
        if !self.rls_routes.is_empty() {
            config.rls.routes = self.rls_routes.clone();
        }
        if let Some(ms) = self.min_notify_interval_ms {
            presence.min_notify_interval_ms = ms;
        }
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("avail-server").chain(args.iter().copied()))
            .expect("valid flags")
    }

    #[test]
    fn flags_override_defaults() {
        let cli = parse(&[
            "--data-dir",
            "/tmp/a",
            "--domain",
            "example.com",
            "--domain",
            "example.org",
            "--sip-udp",
            "off",
            "--sip-tcp",
            "127.0.0.1:5070",
            "--min-expires",
            "30",
            "--http",
            "off",
            "--xcap-root",
            "/xcap",
        ]);
        let config = cli.settings.resolve().expect("valid");
        assert_eq!(config.data_dir, PathBuf::from("/tmp/a"));
        assert_eq!(config.domains, ["example.com", "example.org"]);
        assert_eq!(config.sip.udp, None);
        assert_eq!(config.sip.tcp, Some("127.0.0.1:5070".parse().unwrap()));
        assert_eq!(config.sip.tls, Config::default().sip.tls);
        assert_eq!(config.registrar.min_expires, 30);
        assert_eq!(config.http.http, None);
        assert_eq!(config.http.https, Config::default().http.https);
        assert_eq!(config.http.root, "/xcap");
        assert!(cli.command.is_none());
    }

    #[test]
    fn user_commands_take_global_flags_after_the_subcommand() {
        let cli = parse(&[
            "user",
            "add",
            "alice@example.com",
            "--password",
            "pw",
            "--data-dir",
            "/tmp/d",
        ]);
        assert_eq!(cli.settings.data_dir, Some(PathBuf::from("/tmp/d")));
        match cli.command {
            Some(Command::User(UserCommand::Add { address, password })) => {
                assert_eq!(address, "alice@example.com");
                assert_eq!(password.as_deref(), Some("pw"));
            }
            other => panic!("unexpected command {other:?}"),
        }
    }

    #[test]
    fn trusted_networks_are_repeatable_and_checked() {
        let cli = parse(&["--trusted", "127.0.0.1/32", "--trusted", "fd00::/8"]);
        let config = cli.settings.resolve().expect("valid");
        let listed: Vec<String> = config.auth.trusted.iter().map(Cidr::to_string).collect();
        assert_eq!(listed, ["127.0.0.1/32", "fd00::/8"]);
        let error = Cli::try_parse_from(["avail-server", "--trusted", "10.0.0.1/8"]).unwrap_err();
        assert!(error.to_string().contains("host bits"), "{error}");
    }

    #[test]
    fn proxy_flags_override_the_file() {
        let cli = parse(&["--timer-c", "240", "--relay-domain", "example.org"]);
        let config = cli.settings.resolve().expect("valid");
        assert_eq!(config.proxy.timer_c_secs, 240);
        assert_eq!(config.proxy.relay_domains, ["example.org"]);
    }

    #[test]
    fn presence_flags_override_the_file() {
        let cli = parse(&[
            "--max-subscriptions-per-watcher",
            "3",
            "--max-subscriptions-per-presentity",
            "4",
            "--max-subscriptions",
            "50",
            "--min-notify-interval-ms",
            "750",
        ]);
        let presence = cli.settings.resolve().expect("valid").presence;
        assert_eq!(presence.max_subscriptions_per_watcher, 3);
        assert_eq!(presence.max_subscriptions_per_presentity, 4);
        assert_eq!(presence.max_subscriptions, 50);
        assert_eq!(presence.min_notify_interval_ms, 750);
        let zero = Cli::try_parse_from(["avail-server", "--max-subscriptions", "0"])
            .expect("parses")
            .settings
            .resolve();
        assert!(zero.is_err(), "a zero cap is refused");
    }

    #[test]
    fn name_servers_are_repeatable_addresses() {
        let cli = parse(&["--nameserver", "127.0.0.1:5353", "--nameserver", "[::1]:53"]);
        let config = cli.settings.resolve().expect("valid");
        assert_eq!(
            config.sip.nameservers,
            [
                "127.0.0.1:5353".parse::<SocketAddr>().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
        assert!(Cli::try_parse_from(["avail-server", "--nameserver", "127.0.0.1"]).is_err());
    }

    #[test]
    fn bad_listen_address_is_reported() {
        let error = Cli::try_parse_from(["avail-server", "--sip-tcp", "5060"]).unwrap_err();
        assert!(error.to_string().contains("IP:PORT"), "{error}");
    }
}
