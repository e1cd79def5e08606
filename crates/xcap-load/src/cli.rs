//! Command line: turns the flags into a validated [`Plan`] — a loopback XCAP root, one
//! account per virtual client, a scenario and the time and request bounds.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use hyper::Uri;

/// Upper bounds, so a typo cannot start an hour-long or unbounded run.
const MAX_SECONDS: f64 = 3600.0;
const MAX_REQUESTS: u64 = 100_000_000;
const MAX_CONCURRENCY: usize = 1000;

#[derive(Debug, Parser)]
#[command(
    name = "xcap-load",
    about = "Drive an XCAP server on loopback with concurrent digest-authenticated clients"
)]
pub struct Args {
    /// XCAP root URL on a loopback address, e.g. `http://127.0.0.1:8080/xcap-root`.
    #[arg(long)]
    pub root: String,
    /// What each client repeats.
    #[arg(long, value_enum)]
    pub scenario: Scenario,
    /// File of `user@domain password` lines (blank lines and `#` comments ignored).
    #[arg(long, conflicts_with_all = ["user_pattern", "users"])]
    pub accounts: Option<PathBuf>,
    /// Account pattern, `{n}` replaced by 1..=--users, e.g. `u{n}@bench.test`.
    #[arg(long, requires = "users")]
    pub user_pattern: Option<String>,
    /// Password pattern for --user-pattern.
    #[arg(long, default_value = "pw{n}")]
    pub password_pattern: String,
    /// Number of accounts the patterns describe.
    #[arg(long)]
    pub users: Option<u32>,
    /// Concurrent clients, each with its own account and keep-alive connection.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Measured run length; the run also ends early when --requests are done.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Total measured requests over all clients.
    #[arg(long)]
    pub requests: Option<u64>,
}

/// The four measured operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// GET the whole resource-lists document.
    GetDoc,
    /// PUT the whole document with If-Match of the last ETag.
    PutDoc,
    /// GET one entry through a node selector.
    GetEl,
    /// PUT one entry through a node selector, replacing it.
    PutEl,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::GetDoc => "get-doc",
            Scenario::PutDoc => "put-doc",
            Scenario::GetEl => "get-el",
            Scenario::PutEl => "put-el",
        }
    }
}

/// One SIP account; XCAP digest uses the user part as username and the domain as realm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub user: String,
    pub domain: String,
    pub password: String,
}

/// Where the server is: `http://HOST:PORT/PATH` on loopback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    /// `HOST:PORT` as given, for the Host header and for resolving.
    pub authority: String,
    /// The root path without a trailing slash, e.g. `/xcap-root`.
    pub path: String,
    /// The URL as given, without a trailing slash (for absolute anchors in documents).
    pub url: String,
}

/// A validated run.
#[derive(Debug)]
pub struct Plan {
    pub root: Root,
    pub scenario: Scenario,
    /// Exactly one account per client.
    pub accounts: Vec<Account>,
    pub duration: Duration,
    pub requests: Option<u64>,
}

impl Args {
    pub fn plan(self) -> Result<Plan, String> {
        let root = parse_root(&self.root)?;
        if self.concurrency == 0 || self.concurrency > MAX_CONCURRENCY {
            return Err(format!("--concurrency must be 1..={MAX_CONCURRENCY}"));
        }
        if !(self.seconds > 0.0 && self.seconds <= MAX_SECONDS) {
            return Err(format!("--seconds must be in (0, {MAX_SECONDS}]"));
        }
        if let Some(n) = self.requests {
            if n == 0 || n > MAX_REQUESTS {
                return Err(format!("--requests must be 1..={MAX_REQUESTS}"));
            }
        }
        let mut accounts = match (&self.accounts, &self.user_pattern, self.users) {
            (Some(path), _, _) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("reading {}: {e}", path.display()))?;
                parse_accounts(&text)?
            }
            (None, Some(user), Some(count)) => {
                expand_accounts(user, &self.password_pattern, count)?
            }
            _ => return Err("give --accounts FILE or --user-pattern with --users".into()),
        };
        // One account per client keeps writes from conflicting, so clients cannot share.
        if accounts.len() < self.concurrency {
            return Err(format!(
                "{} accounts for {} clients: each client needs its own account",
                accounts.len(),
                self.concurrency
            ));
        }
        accounts.truncate(self.concurrency);
        Ok(Plan {
            root,
            scenario: self.scenario,
            accounts,
            duration: Duration::from_secs_f64(self.seconds),
            requests: self.requests,
        })
    }
}

/// Accepts only `http://` URLs whose host is a loopback IP or `localhost`: this tool is for
/// measuring one's own server, not for loading someone else's.
pub fn parse_root(text: &str) -> Result<Root, String> {
    let uri: Uri = text.parse().map_err(|e| format!("--root `{text}`: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!("--root `{text}`: only http:// is supported"));
    }
    if uri.query().is_some() {
        return Err(format!("--root `{text}`: no query allowed"));
    }
    let (Some(authority), Some(host)) = (uri.authority(), uri.host()) else {
        return Err(format!("--root `{text}`: no host"));
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return Err(format!(
            "--root `{text}`: refusing a non-loopback host `{host}`"
        ));
    }
    let authority = match uri.port_u16() {
        Some(_) => authority.as_str().to_owned(),
        None => format!("{}:80", authority.as_str()),
    };
    let path = uri.path().trim_end_matches('/').to_owned();
    Ok(Root {
        authority,
        path,
        url: text.trim_end_matches('/').to_owned(),
    })
}

fn parse_account(address: &str, password: &str) -> Result<Account, String> {
    let address = address.strip_prefix("sip:").unwrap_or(address);
    match address.split_once('@') {
        Some((user, domain)) if !user.is_empty() && !domain.is_empty() && !password.is_empty() => {
            Ok(Account {
                user: user.to_owned(),
                domain: domain.to_owned(),
                password: password.to_owned(),
            })
        }
        _ => Err(format!("`{address}`: expected user@domain and a password")),
    }
}

/// `user@domain password` per line, as `avail-server user import` reads them.
pub fn parse_accounts(text: &str) -> Result<Vec<Account>, String> {
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(number, line)| {
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some(address), Some(password), None) => parse_account(address, password),
                _ => Err("expected `user@domain password`".into()),
            }
            .map_err(|e| format!("accounts line {number}: {e}"))
        })
        .collect()
}

/// Accounts 1..=count from patterns containing `{n}`.
pub fn expand_accounts(user: &str, password: &str, count: u32) -> Result<Vec<Account>, String> {
    if !user.contains("{n}") {
        return Err(format!(
            "--user-pattern `{user}` needs `{{n}}`: clients must not share an account"
        ));
    }
    (1..=count)
        .map(|n| {
            let n = n.to_string();
            parse_account(&user.replace("{n}", &n), &password.replace("{n}", &n))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Result<Plan, String> {
        let base = ["xcap-load", "--root", "http://127.0.0.1:8099/xcap-root/"];
        Args::try_parse_from(base.iter().chain(extra))
            .map_err(|e| e.to_string())?
            .plan()
    }

    #[test]
    fn patterns_give_one_account_per_client() {
        let plan = args(&[
            "--scenario",
            "put-el",
            "--user-pattern",
            "u{n}@bench.test",
            "--users",
            "50",
            "--concurrency",
            "3",
            "--requests",
            "1000",
        ])
        .unwrap();
        assert_eq!(plan.scenario, Scenario::PutEl);
        assert_eq!(plan.duration, Duration::from_secs(10));
        assert_eq!(plan.requests, Some(1000));
        assert_eq!(
            plan.root,
            Root {
                authority: "127.0.0.1:8099".into(),
                path: "/xcap-root".into(),
                url: "http://127.0.0.1:8099/xcap-root".into(),
            }
        );
        let names: Vec<_> = plan
            .accounts
            .iter()
            .map(|a| format!("{}@{} {}", a.user, a.domain, a.password))
            .collect();
        assert_eq!(
            names,
            [
                "u1@bench.test pw1",
                "u2@bench.test pw2",
                "u3@bench.test pw3"
            ]
        );
    }

    #[test]
    fn bad_arguments_are_errors_not_panics() {
        let too_few = args(&[
            "--scenario",
            "get-doc",
            "--user-pattern",
            "u{n}@d",
            "--users",
            "2",
        ]);
        assert!(too_few.unwrap_err().contains("2 accounts for 16 clients"));
        let shared = args(&[
            "--scenario",
            "get-doc",
            "--user-pattern",
            "u@d",
            "--users",
            "20",
        ]);
        assert!(shared.unwrap_err().contains("needs `{n}`"));
        let endless = args(&[
            "--scenario",
            "get-doc",
            "--user-pattern",
            "u{n}@d",
            "--users",
            "20",
            "--seconds",
            "0",
        ]);
        assert!(endless.unwrap_err().contains("--seconds"));
        assert!(args(&["--scenario", "get-doc"]).is_err());
        assert!(args(&["--scenario", "delete-all"]).is_err());
    }

    #[test]
    fn only_loopback_http_roots() {
        assert_eq!(
            parse_root("http://localhost/x").unwrap().authority,
            "localhost:80"
        );
        assert_eq!(
            parse_root("http://[::1]:8080/xcap-root").unwrap().path,
            "/xcap-root"
        );
        assert!(parse_root("http://127.8.9.10:1/").is_ok());
        assert!(parse_root("http://192.0.2.1:8080/xcap-root")
            .unwrap_err()
            .contains("non-loopback"));
        assert!(parse_root("http://example.com/xcap-root").is_err());
        assert!(parse_root("https://127.0.0.1/xcap-root").is_err());
        assert!(parse_root("not a url").is_err());
    }

    #[test]
    fn account_files() {
        let accounts =
            parse_accounts("# bench\nalice@example.com secret\n\n sip:bob@example.com pw \n")
                .unwrap();
        assert_eq!(
            accounts,
            [
                Account {
                    user: "alice".into(),
                    domain: "example.com".into(),
                    password: "secret".into()
                },
                Account {
                    user: "bob".into(),
                    domain: "example.com".into(),
                    password: "pw".into()
                },
            ]
        );
        assert_eq!(
            parse_accounts("a@b c\nnobody\n").unwrap_err(),
            "accounts line 2: expected `user@domain password`"
        );
        assert!(parse_accounts("@b pw").is_err());
    }
}
