//! Digest authentication of SIP requests (RFC 3261 §22.4, RFC 7616, RFC 8760 for SHA-256)
//! against the stored accounts, shared by REGISTER, PUBLISH and SUBSCRIBE: the realm is the
//! user's SIP domain, nonces are stateless and expiring ([`sip_auth::Nonces`]), and accounts
//! are cached briefly so a burst of requests costs one store read per user.
//!
//! Requests from a configured trusted network (`[auth] trusted`) skip the challenge for every
//! method, REGISTER included: the sender is taken to be the From user, as with Kamailio's
//! permissions module. That is for gateways and load generators the operator controls; an
//! address in such a network can act as any user of the domains served.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sip_auth::{Algorithm, AuthOutcome, DigestCredentials, Nonces};
use sip_message::{Credentials, HeaderName, Message};
use store::{AccountRecord, Store};
use tracing::{info, warn};

use crate::config::Config;
use crate::reply::{self, Origin};
use crate::server::BoxError;
use crate::sip_core::new_tag;

/// How long an account looked up in the store is trusted: short, so that `user passwd` and
/// `user remove` on a running server take effect within seconds.
const ACCOUNT_CACHE_TTL: Duration = Duration::from_secs(2);
const ACCOUNT_CACHE_MAX: usize = 100_000;

/// A refusal ready to send: status and encoded response.
pub type Refusal = (u16, Bytes);

pub struct Authenticator {
    config: Arc<Config>,
    nonces: Nonces,
    /// Offered in every 401, in this order.
    algorithms: Vec<Algorithm>,
    store: Store,
    accounts: HashMap<(String, String), (Option<AccountRecord>, Instant)>,
}

impl Authenticator {
    /// Nonces use a persisted secret, so outstanding challenges survive a restart.
    pub async fn start(config: Arc<Config>, store: Store) -> Result<Authenticator, BoxError> {
        let secret = store
            .get_or_create_secret("digest-nonce", sip_auth::generate_secret)
            .await?;
        let nonces = Nonces::new(&secret).with_lifetime(config.auth.nonce_lifetime_secs);
        if !config.auth.trusted.is_empty() {
            let networks: Vec<String> = config.auth.trusted.iter().map(|c| c.to_string()).collect();
            // Warning level: it switches authentication off for these sources, which an
            // operator reading the log must not miss.
            warn!(
                networks = %networks.join(", "),
                "requests from trusted networks are accepted without authentication (identity from From)"
            );
        }
        Ok(Authenticator {
            algorithms: config.auth.digest_algorithms(),
            config,
            nonces,
            store,
            accounts: HashMap::new(),
        })
    }

    /// Checks the request's credentials for `realm` (the user's domain, which the caller has
    /// made sure we serve) and returns the authenticated user name; otherwise the 401 (or 400
    /// for unreadable credentials) to send.
    pub async fn authenticate(
        &mut self,
        request: &Message,
        realm: &str,
        origin: Origin,
        now: Instant,
    ) -> Result<String, Refusal> {
        self.authenticate_as(Role::Server, request, realm, origin, now)
            .await
    }

    /// [`Self::authenticate`] for a request this server proxies (RFC 3261 §22.3): credentials
    /// from Proxy-Authorization, challenges in a 407 with Proxy-Authenticate, same nonces.
    pub async fn authenticate_proxied(
        &mut self,
        request: &Message,
        realm: &str,
        origin: Origin,
        now: Instant,
    ) -> Result<String, Refusal> {
        self.authenticate_as(Role::Proxy, request, realm, origin, now)
            .await
    }

    /// Whether `user@domain` has an account (the proxy answers 404 otherwise).
    pub async fn has_account(&mut self, user: &str, domain: &str, now: Instant) -> bool {
        self.account(user, domain, now).await.is_some()
    }

    async fn authenticate_as(
        &mut self,
        role: Role,
        request: &Message,
        realm: &str,
        origin: Origin,
        now: Instant,
    ) -> Result<String, Refusal> {
        if let Some(user) = self.trusted_sender(request, realm, origin.peer.ip()) {
            return Ok(user);
        }
        let method = request.method().map_or("", |m| m.as_str());
        let Some(credentials) = self.credentials_for(role, request, realm)? else {
            return Err(self.challenge(role, request, realm, false));
        };
        // `from_header` explains why the digest `uri` is not compared with the Request-URI
        // (UAs such as SIPp put the server's address there).
        let digest = DigestCredentials::from_header(&credentials, realm);
        let username = digest.username;
        let Some(account) = self.account(username, realm, now).await else {
            info!(%username, %realm, %method, peer = %origin.peer, "request for an unknown account");
            return Err(self.challenge(role, request, realm, false));
        };
        let Some(algorithm) = Algorithm::from_param(credentials.algorithm) else {
            return Err(self.challenge(role, request, realm, false));
        };
        let stored_ha1 = match algorithm.base() {
            Algorithm::Sha256 => &account.ha1_sha256,
            _ => &account.ha1_md5,
        };
        match self.nonces.verify(method, &digest, stored_ha1, unix_now()) {
            AuthOutcome::Ok => Ok(username.to_owned()),
            AuthOutcome::Stale => Err(self.challenge(role, request, realm, true)),
            AuthOutcome::Failed(reason) => {
                info!(%username, %realm, %method, peer = %origin.peer, reason, "digest authentication failed");
                Err(self.challenge(role, request, realm, false))
            }
            AuthOutcome::Replay => {
                warn!(%username, %realm, %method, peer = %origin.peer, "replayed digest credentials");
                Err(self.challenge(role, request, realm, false))
            }
        }
    }

    /// The From user when `peer` is in a trusted network and the From domain is `realm`: the
    /// identity must stay inside the domain the caller is authorizing for, so a trusted
    /// REGISTER for `bob@a` cannot come `From: bob@b`. Anything else falls back to digest.
    fn trusted_sender(&self, request: &Message, realm: &str, peer: IpAddr) -> Option<String> {
        if !self
            .config
            .auth
            .trusted
            .iter()
            .any(|net| net.contains(peer))
        {
            return None;
        }
        let from = request.from_header().ok()?;
        if !from.uri.is_sip() || !from.uri.host_text.eq_ignore_ascii_case(realm) {
            return None;
        }
        from.uri.user_unescaped().map(|user| user.into_owned())
    }

    /// The Authorization field for our realm (RFC 3261 §22.4: a request may carry
    /// credentials for several realms), None when there is none.
    fn credentials_for<'m>(
        &self,
        role: Role,
        request: &'m Message,
        realm: &str,
    ) -> Result<Option<Credentials<'m>>, Refusal> {
        for credentials in request.credentials(&role.credentials_header()) {
            let credentials = credentials.map_err(|e| simple(request, 400, &e.0))?;
            if credentials.scheme.eq_ignore_ascii_case("Digest")
                && credentials
                    .realm
                    .as_deref()
                    .is_some_and(|r| r.eq_ignore_ascii_case(realm))
            {
                return Ok(Some(credentials));
            }
        }
        Ok(None)
    }

    /// 401 (407 for proxied requests) with one challenge per configured algorithm, in the
    /// configured order (RFC 8760 §2.4).
    fn challenge(&self, role: Role, request: &Message, realm: &str, stale: bool) -> Refusal {
        let (status, reason, header) = match role {
            Role::Server => (401, "Unauthorized", "WWW-Authenticate"),
            Role::Proxy => (407, "Proxy Authentication Required", "Proxy-Authenticate"),
        };
        let mut writer = reply::response(request, status, reason, &new_tag());
        for value in self
            .nonces
            .challenges(realm, stale, &self.algorithms, unix_now())
        {
            writer.header(header, &value);
        }
        (status, writer.finish(None, b""))
    }

    async fn account(&mut self, user: &str, domain: &str, now: Instant) -> Option<AccountRecord> {
        let key = (user.to_owned(), domain.to_owned());
        if let Some((account, fetched)) = self.accounts.get(&key) {
            if now.saturating_duration_since(*fetched) < ACCOUNT_CACHE_TTL {
                return account.clone();
            }
        }
        let account = match self.store.get_account(user, domain).await {
            Ok(account) => account,
            Err(error) => {
                warn!(%error, "account lookup failed");
                return None;
            }
        };
        if self.accounts.len() >= ACCOUNT_CACHE_MAX {
            self.accounts.clear();
        }
        self.accounts.insert(key, (account.clone(), now));
        account
    }
}

/// Who asks for credentials: the server itself (401, RFC 3261 §22.2) or the proxy on the
/// way (407, §22.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Server,
    Proxy,
}

impl Role {
    fn credentials_header(self) -> HeaderName {
        match self {
            Role::Server => HeaderName::Authorization,
            Role::Proxy => HeaderName::ProxyAuthorization,
        }
    }
}

/// A response with no body but the status line.
pub fn simple(request: &Message, code: u16, reason: &str) -> Refusal {
    (
        code,
        reply::response(request, code, reason, &new_tag()).finish(None, b""),
    )
}

/// Wall-clock seconds, which nonces are expressed in (they must survive a restart).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
