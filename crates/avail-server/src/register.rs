//! REGISTER in the server: RFC 3261 §10.3 steps 1–5 (domain, digest authentication per
//! RFC 7616/RFC 8760, authorization of the AOR) around the sans-IO registrar (steps 6–8),
//! with the new bindings made durable before the 200 is sent.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use registrar::Registrar;
use sip_auth::{Algorithm, AuthOutcome, DigestCredentials, Nonces};
use sip_message::{Challenge, Credentials, HeaderName, Message};
use sip_transport::Transport;
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

pub struct Registration {
    config: Arc<Config>,
    registrar: Registrar,
    nonces: Nonces,
    store: Store,
    accounts: HashMap<(String, String), (Option<AccountRecord>, Instant)>,
}

impl Registration {
    /// Loads the persisted bindings and the server secrets (so nonces and GRUUs stay valid
    /// across a restart).
    pub async fn start(config: Arc<Config>, store: Store) -> Result<Registration, BoxError> {
        let nonce_secret = store
            .get_or_create_secret("digest-nonce", sip_auth::generate_secret)
            .await?;
        let gruu_secret = store
            .get_or_create_secret("gruu", sip_auth::generate_secret)
            .await?;
        let nonces = Nonces::new(&nonce_secret).with_lifetime(config.auth.nonce_lifetime_secs);
        let r = &config.registrar;
        let mut registrar = Registrar::new(
            registrar::Config {
                min_expires: r.min_expires,
                max_expires: r.max_expires,
                default_expires: r.default_expires,
                max_contacts: r.max_contacts_per_aor,
                ..registrar::Config::default()
            },
            &gruu_secret,
        );
        let now = unix_now();
        let bindings = store.load_bindings(now).await?;
        info!(count = bindings.len(), "registrations restored");
        registrar.load(bindings, now);
        Ok(Registration {
            config,
            registrar,
            nonces,
            store,
            accounts: HashMap::new(),
        })
    }

    /// When the next binding expires.
    pub fn next_deadline(&self) -> Option<Instant> {
        let at = self.registrar.next_expiry()?;
        let wait = u64::try_from(at.saturating_sub(unix_now())).unwrap_or(0);
        Some(Instant::now() + Duration::from_secs(wait))
    }

    pub async fn on_timer(&mut self) {
        for (aor, remaining) in self.registrar.expire(unix_now()) {
            if let Err(error) = self.store.replace_bindings(&aor, &remaining).await {
                warn!(%aor, %error, "expired bindings not removed from storage");
            }
        }
    }

    /// Answer one REGISTER: the status and the encoded response.
    pub async fn handle(
        &mut self,
        request: &Message,
        origin: Origin,
        now: Instant,
    ) -> (u16, Bytes) {
        match self.process(request, origin, now).await {
            Ok(answer) | Err(answer) => answer,
        }
    }

    async fn process(
        &mut self,
        request: &Message,
        origin: Origin,
        now: Instant,
    ) -> Result<(u16, Bytes), (u16, Bytes)> {
        let to = request
            .to_header()
            .map_err(|e| simple(request, 400, &e.0))?;
        let domain = to.uri.host_text.to_ascii_lowercase();
        if !self.config.serves(&domain) {
            return Err(simple(request, 403, "Domain not served here"));
        }
        let aor = to
            .uri
            .aor_key()
            .ok_or_else(|| simple(request, 400, "To header has no user part"))?;
        let aor_user = aor.rsplit_once('@').map_or("", |(user, _)| user);

        let credentials = self.credentials_for(request, &domain)?;
        let Some(credentials) = credentials else {
            return Err(self.challenge(request, &domain, false));
        };
        let username = credentials.username.as_deref().unwrap_or_default();
        // The digest `uri` enters the hash as sent; it is not required to equal the
        // Request-URI (RFC 3261 §22 does not ask for it, outbound proxies may rewrite the
        // Request-URI, and UAs such as SIPp put the server's address there). Replay is
        // prevented by the nonce and nc checks instead.
        let digest_uri = credentials.uri.as_deref().unwrap_or_default();
        let Some(account) = self.account(username, &domain, now).await else {
            info!(%username, %domain, peer = %origin.peer, "REGISTER for an unknown account");
            return Err(self.challenge(request, &domain, false));
        };
        let Some(algorithm) = Algorithm::from_param(credentials.algorithm) else {
            return Err(self.challenge(request, &domain, false));
        };
        let stored_ha1 = match algorithm.base() {
            Algorithm::Sha256 => &account.ha1_sha256,
            _ => &account.ha1_md5,
        };
        let digest = DigestCredentials {
            username,
            realm: &domain,
            nonce: credentials.nonce.as_deref().unwrap_or_default(),
            uri: digest_uri,
            response: credentials.response.as_deref().unwrap_or_default(),
            algorithm: credentials.algorithm,
            cnonce: credentials.cnonce.as_deref(),
            nc: credentials.nc,
            qop: credentials.qop,
            opaque: credentials.opaque.as_deref(),
        };
        match self
            .nonces
            .verify("REGISTER", &digest, stored_ha1, unix_now() as u64)
        {
            AuthOutcome::Ok => {}
            AuthOutcome::Stale => return Err(self.challenge(request, &domain, true)),
            AuthOutcome::Failed(reason) => {
                info!(%username, %domain, peer = %origin.peer, reason, "digest authentication failed");
                return Err(self.challenge(request, &domain, false));
            }
            AuthOutcome::Replay => {
                warn!(%username, %domain, peer = %origin.peer, "replayed digest credentials");
                return Err(self.challenge(request, &domain, false));
            }
        }
        if username != aor_user {
            return Err(simple(
                request,
                403,
                "Credentials do not match the address of record",
            ));
        }

        let source = origin.peer.to_string();
        let transport = transport_name(origin.transport);
        let outcome = self.registrar.register(
            request,
            &aor,
            registrar::Origin {
                transport,
                source: &source,
            },
            unix_now(),
        );
        if let Some(bindings) = outcome.bindings {
            if let Err(error) = self.store.replace_bindings(&aor, &bindings).await {
                warn!(%aor, %error, "bindings not stored; REGISTER refused");
                return Err(simple(request, 500, "Bindings could not be stored"));
            }
            self.registrar.apply(&aor, bindings);
        }
        Ok((outcome.status, outcome.response))
    }

    /// The Authorization field for our realm (RFC 3261 §22.4: a request may carry
    /// credentials for several realms), None when there is none.
    fn credentials_for<'m>(
        &self,
        request: &'m Message,
        realm: &str,
    ) -> Result<Option<Credentials<'m>>, (u16, Bytes)> {
        for credentials in request.credentials(&HeaderName::Authorization) {
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

    /// 401 with one challenge per configured algorithm, in the configured order (RFC 8760 §2.4).
    fn challenge(&self, request: &Message, realm: &str, stale: bool) -> (u16, Bytes) {
        let nonce = self.nonces.issue(realm, unix_now() as u64);
        let mut writer = reply::response(request, 401, "Unauthorized", &new_tag());
        for algorithm in &self.config.auth.algorithms {
            let challenge = Challenge {
                realm: realm.into(),
                nonce: nonce.as_str().into(),
                algorithm: Some(algorithm.as_str().into()),
                qop: Some("auth".into()),
                stale,
                ..Challenge::default()
            };
            writer.header("WWW-Authenticate", &challenge.to_header_value());
        }
        (401, writer.finish(None, b""))
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

fn simple(request: &Message, code: u16, reason: &str) -> (u16, Bytes) {
    (
        code,
        reply::response(request, code, reason, &new_tag()).finish(None, b""),
    )
}

fn transport_name(transport: Transport) -> &'static str {
    match transport {
        Transport::Udp => "udp",
        Transport::Tcp => "tcp",
        Transport::Tls => "tls",
    }
}

/// Wall-clock seconds, which bindings' expiry and nonces are expressed in (they must survive
/// a restart, unlike `Instant`).
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
