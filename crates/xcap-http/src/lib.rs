//! Avail's XCAP server (RFC 4825) over HTTP and HTTPS: the axum shell around the sans-IO
//! [`xcap`] engine.
//!
//! - Routing under a configurable XCAP root (§6.1), GET/HEAD/PUT/DELETE of documents,
//!   elements, attributes and namespace bindings (§7, §8), `application/xcap-error+xml`
//!   bodies (§11), strong ETags and `If-Match`/`If-None-Match` (§7.11, RFC 9110 §13).
//! - Application usages bridging to the `simple_payloads` validators ([`usages`]).
//! - Authentication and authorisation (§5.7, blink-compat §2.1): Digest/Basic against the
//!   SIP accounts, users reach only their own `users/<XUI>` tree, `global` is read-only,
//!   pres-content is publicly readable.
//! - Storage through [`store::DocumentStore`]: every write is one compare-and-swap on the
//!   ETag that was read, so concurrent writers cannot both succeed against one ETag.
//! - Change events: every committed write or delete is published once as an
//!   [`xcap::DocumentChange`] on a broadcast channel ([`XcapService::subscribe`]).

mod auth;
mod handler;
mod listen;
mod usages;

use std::sync::Arc;

use axum::Router;
use sip_auth::{Algorithm, Nonces};
use store::{BoxFuture, DocumentStore};
use tokio::sync::broadcast;
use xcap::{ApplicationUsage, DocumentChange, Limits};

pub use listen::{serve, serve_tls};

/// How many change events a slow subscriber may fall behind before it misses some (it then
/// gets `RecvError::Lagged` and must resynchronise from storage).
const EVENT_BUFFER: usize = 1024;

/// Settings of the XCAP server.
#[derive(Debug, Clone)]
pub struct XcapConfig {
    /// Path of the XCAP root (§6.1), e.g. `/xcap-root`; `/` or empty for the server root.
    pub root: String,
    /// SIP domains served: the realms, and the only domains whose users have trees.
    pub domains: Vec<String>,
    /// Digest algorithms offered in a 401, in this order.
    pub algorithms: Vec<Algorithm>,
    /// Bounds on request and document sizes.
    pub limits: Limits,
    /// OMA pres-content data limits.
    pub pres_content: simple_payloads::Constraints,
}

impl Default for XcapConfig {
    fn default() -> Self {
        XcapConfig {
            root: "/xcap-root".into(),
            domains: vec!["localhost".into()],
            algorithms: vec![Algorithm::Md5, Algorithm::Sha256],
            limits: Limits::default(),
            pres_content: simple_payloads::Constraints::default(),
        }
    }
}

/// Where the XCAP server finds digest HA1 values for its users.
pub trait AccountSource: Send + Sync {
    /// The HA1 of `user@domain` for `algorithm` (`Md5` or `Sha256`), `None` when the account
    /// does not exist or cannot be read.
    fn digest_ha1<'a>(
        &'a self,
        user: &'a str,
        domain: &'a str,
        algorithm: Algorithm,
    ) -> BoxFuture<'a, Option<String>>;
}

impl AccountSource for store::Store {
    fn digest_ha1<'a>(
        &'a self,
        user: &'a str,
        domain: &'a str,
        algorithm: Algorithm,
    ) -> BoxFuture<'a, Option<String>> {
        Box::pin(async move {
            match self.get_account(user, domain).await {
                Ok(account) => account.map(|a| match algorithm.base() {
                    Algorithm::Sha256 => a.ha1_sha256,
                    _ => a.ha1_md5,
                }),
                Err(error) => {
                    tracing::warn!(%error, "account lookup failed");
                    None
                }
            }
        })
    }
}

/// An XCAP user identifier (RFC 4825 §4) of the `sip:user@domain` form, normalised so that
/// literal and percent-encoded spellings, and any capitalisation of the domain, name the
/// same home directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Xui {
    pub user: String,
    pub domain: String,
}

impl Xui {
    /// Parses a percent-decoded XUI; `None` for anything but `sip:`/`sips:` user@domain.
    pub fn parse(xui: &str) -> Option<Xui> {
        let lower = xui.get(..5).map(str::to_ascii_lowercase);
        let rest = match lower.as_deref() {
            Some("sips:") => &xui[5..],
            Some(l) if l.starts_with("sip:") => &xui[4..],
            _ => return None,
        };
        let (user, domain) = rest.rsplit_once('@')?;
        let plain = |s: &str| !s.is_empty() && !s.contains([';', '?', '/', '>', '<']);
        (plain(user) && plain(domain)).then(|| Xui {
            user: user.to_owned(),
            domain: domain.to_ascii_lowercase(),
        })
    }

    /// The storage key and event user: `sip:user@domain`.
    pub fn key(&self) -> String {
        format!("sip:{}@{}", self.user, self.domain)
    }
}

/// The XCAP server: configuration, storage, authentication state and the change-event
/// channel. Shared by every listener.
pub struct XcapService {
    config: XcapConfig,
    documents: Arc<dyn DocumentStore>,
    accounts: Arc<dyn AccountSource>,
    nonces: Nonces,
    usages: Vec<usages::Payload>,
    events: broadcast::Sender<DocumentChange>,
}

impl XcapService {
    /// A service over `documents` and `accounts`; `nonces` should use a persisted secret so
    /// outstanding challenges survive a restart.
    pub fn new(
        mut config: XcapConfig,
        documents: Arc<dyn DocumentStore>,
        accounts: Arc<dyn AccountSource>,
        nonces: Nonces,
    ) -> Arc<XcapService> {
        config.root = normalise_root(&config.root);
        for domain in &mut config.domains {
            *domain = domain.to_ascii_lowercase();
        }
        let usages = usages::all(&config.root, &config.limits, &config.pres_content);
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        Arc::new(XcapService {
            config,
            documents,
            accounts,
            nonces,
            usages,
            events,
        })
    }

    /// The XCAP root path as served (no trailing `/`; empty for the server root).
    pub fn root(&self) -> &str {
        &self.config.root
    }

    /// A receiver of every committed document change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<DocumentChange> {
        self.events.subscribe()
    }

    /// The axum router for one listener; `secure` tells whether it is behind TLS (Basic
    /// authentication is accepted only then, and generated URIs use `https`).
    pub fn router(self: &Arc<Self>, secure: bool) -> Router {
        handler::router(self.clone(), secure)
    }

    fn usage(&self, auid: &str) -> Option<&usages::Payload> {
        self.usages.iter().find(|u| u.auid() == auid)
    }

    fn serves(&self, domain: &str) -> bool {
        self.config.domains.iter().any(|d| d == domain)
    }
}

/// `/xcap-root/` → `/xcap-root`, `/` → ``, `xcap` → `/xcap`.
fn normalise_root(root: &str) -> String {
    let trimmed = root.trim().trim_end_matches('/');
    if trimmed.is_empty() || trimmed.starts_with('/') {
        trimmed.to_owned()
    } else {
        format!("/{trimmed}")
    }
}

/// The part of a request path below the XCAP root, `None` when the path is elsewhere.
fn strip_root<'a>(path: &'a str, root: &str) -> Option<&'a str> {
    path.strip_prefix(root)?.strip_prefix('/')
}

/// For a (decoded) absolute or absolute-path HTTP URI pointing into this server's XCAP tree:
/// the path below the root and the query. The host is not compared: clients address the
/// server by names the server cannot know (blink-compat §2.1 root discovery).
fn xcap_path_of<'a>(uri: &'a str, root: &str) -> Option<(&'a str, Option<&'a str>)> {
    let path = match uri.split_once("://") {
        Some((_, rest)) => &rest[rest.find('/')?..],
        None if uri.starts_with('/') => uri,
        None => return None,
    };
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    Some((strip_root(path, root)?, query))
}

#[cfg(test)]
mod tests;
