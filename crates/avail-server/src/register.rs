//! REGISTER in the server: RFC 3261 §10.3 steps 1–5 (domain, digest authentication per
//! RFC 7616/RFC 8760, authorization of the AOR) around the sans-IO registrar (steps 6–8),
//! with the new bindings made durable before the 200 is sent.
//!
//! Durability uses group commit: the event loop hands each new binding set to a writer task,
//! which stores every set waiting at that moment in one transaction and hands the responses
//! back. A REGISTER for an AOR whose previous update is still being written waits for it,
//! because the registrar computes each update from the one before.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use registrar::{Binding, Registrar};
use sip_auth::{Algorithm, AuthOutcome, DigestCredentials, Nonces};
use sip_message::{Challenge, Credentials, HeaderName, Message};
use sip_transaction::ServerTxId;
use sip_transport::Transport;
use store::{AccountRecord, Store};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::reply::{self, Origin};
use crate::server::BoxError;
use crate::sip_core::new_tag;

/// How long an account looked up in the store is trusted: short, so that `user passwd` and
/// `user remove` on a running server take effect within seconds.
const ACCOUNT_CACHE_TTL: Duration = Duration::from_secs(2);
const ACCOUNT_CACHE_MAX: usize = 100_000;
/// Binding sets stored per transaction at most.
const GROUP_COMMIT_MAX: usize = 512;
/// How often bindings that expired in memory are also deleted from disk. Loading ignores
/// expired rows, so this only keeps the table small.
const PURGE_INTERVAL: Duration = Duration::from_secs(60);

/// The answer to a REGISTER once its bindings are stored.
pub struct Reply {
    pub id: ServerTxId,
    pub status: u16,
    pub response: Bytes,
}

/// One AOR's new binding set on its way to disk, with the REGISTER it answers.
pub struct PersistJob {
    aor: String,
    bindings: Vec<Binding>,
    request: Message,
    reply: Reply,
}

/// A batch the writer task has finished, successfully or not.
pub struct Persisted {
    jobs: Vec<PersistJob>,
    stored: bool,
}

/// A REGISTER that passed authentication while its AOR had an update in flight.
struct Waiting {
    id: ServerTxId,
    request: Message,
    origin: Origin,
}

pub struct Registration {
    config: Arc<Config>,
    registrar: Registrar,
    nonces: Nonces,
    store: Store,
    accounts: HashMap<(String, String), (Option<AccountRecord>, Instant)>,
    writer: mpsc::UnboundedSender<PersistJob>,
    /// AORs with an update being written, and the REGISTERs waiting behind it.
    in_flight: HashMap<String, VecDeque<Waiting>>,
    last_purge: Instant,
}

impl Registration {
    /// Loads the persisted bindings and the server secrets (so nonces and GRUUs stay valid
    /// across a restart).
    pub async fn start(
        config: Arc<Config>,
        store: Store,
    ) -> Result<(Registration, mpsc::UnboundedReceiver<Persisted>), BoxError> {
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
        let (writer, jobs) = mpsc::unbounded_channel();
        let (done, persisted) = mpsc::unbounded_channel();
        tokio::spawn(write_bindings(store.clone(), jobs, done));
        let registration = Registration {
            config,
            registrar,
            nonces,
            store,
            accounts: HashMap::new(),
            writer,
            in_flight: HashMap::new(),
            last_purge: Instant::now(),
        };
        Ok((registration, persisted))
    }

    /// When the next binding expires.
    pub fn next_deadline(&self) -> Option<Instant> {
        let at = self.registrar.next_expiry()?;
        let wait = u64::try_from(at.saturating_sub(unix_now())).unwrap_or(0);
        Some(Instant::now() + Duration::from_secs(wait))
    }

    /// Drop expired bindings from memory; now and then from disk too.
    pub fn on_timer(&mut self, now: Instant) {
        let expired = self.registrar.expire(unix_now());
        if !expired.is_empty() {
            debug!(aors = expired.len(), "bindings expired");
        }
        if now.saturating_duration_since(self.last_purge) >= PURGE_INTERVAL {
            self.last_purge = now;
            let store = self.store.clone();
            tokio::spawn(async move {
                if let Err(error) = store.remove_expired_bindings(unix_now()).await {
                    warn!(%error, "expired bindings not purged from storage");
                }
            });
        }
    }

    /// Answer one REGISTER, now (the status and encoded response), or later through
    /// [`Self::on_persisted`] once its bindings are stored.
    pub async fn handle(
        &mut self,
        id: ServerTxId,
        request: Message,
        origin: Origin,
        now: Instant,
    ) -> Option<(u16, Bytes)> {
        let aor = match self.authenticate(&request, origin, now).await {
            Ok(aor) => aor,
            Err(answer) => return Some(answer),
        };
        if let Some(waiting) = self.in_flight.get_mut(&aor) {
            waiting.push_back(Waiting {
                id,
                request,
                origin,
            });
            return None;
        }
        self.register(id, &request, aor, origin)
    }

    /// Responses for a batch the writer finished; REGISTERs that waited for those AORs are
    /// processed now (their answers join the list, or go to the writer in turn).
    pub fn on_persisted(&mut self, persisted: Persisted) -> Vec<Reply> {
        let mut replies = Vec::with_capacity(persisted.jobs.len());
        for job in persisted.jobs {
            if persisted.stored {
                self.registrar.apply(&job.aor, job.bindings);
                replies.push(job.reply);
            } else {
                let (status, response) = simple(&job.request, 500, "Bindings could not be stored");
                replies.push(Reply {
                    id: job.reply.id,
                    status,
                    response,
                });
            }
            let mut waiting = self.in_flight.remove(&job.aor).unwrap_or_default();
            while let Some(next) = waiting.pop_front() {
                match self.register(next.id, &next.request, job.aor.clone(), next.origin) {
                    Some((status, response)) => replies.push(Reply {
                        id: next.id,
                        status,
                        response,
                    }),
                    None => {
                        // Went to the writer: the rest wait behind it.
                        if let Some(queue) = self.in_flight.get_mut(&job.aor) {
                            queue.extend(waiting.drain(..));
                        }
                        break;
                    }
                }
            }
        }
        replies
    }

    /// RFC 3261 §10.3 steps 6–8 for an authenticated REGISTER: an immediate answer when
    /// nothing changes, otherwise None while the new bindings go to the writer.
    fn register(
        &mut self,
        id: ServerTxId,
        request: &Message,
        aor: String,
        origin: Origin,
    ) -> Option<(u16, Bytes)> {
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
        let Some(bindings) = outcome.bindings else {
            return Some((outcome.status, outcome.response));
        };
        let reply = Reply {
            id,
            status: outcome.status,
            response: outcome.response,
        };
        self.in_flight.insert(aor.clone(), VecDeque::new());
        let job = PersistJob {
            aor,
            bindings,
            request: request.clone(),
            reply,
        };
        if let Err(error) = self.writer.send(job) {
            // The writer only stops with the runtime; answer rather than leave the client hanging.
            self.in_flight.remove(&error.0.aor);
            return Some(simple(request, 500, "Bindings could not be stored"));
        }
        None
    }

    /// Steps 1–5: the To domain is ours, the credentials are valid, and they are the AOR
    /// owner's. Returns the AOR key.
    async fn authenticate(
        &mut self,
        request: &Message,
        origin: Origin,
        now: Instant,
    ) -> Result<String, (u16, Bytes)> {
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

        Ok(aor)
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

/// The writer task: stores every binding set waiting at the moment in one transaction
/// (group commit), then reports the batch back to the event loop.
async fn write_bindings(
    store: Store,
    mut jobs: mpsc::UnboundedReceiver<PersistJob>,
    done: mpsc::UnboundedSender<Persisted>,
) {
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < GROUP_COMMIT_MAX {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let sets: Vec<(&str, &[Binding])> = batch
            .iter()
            .map(|j| (j.aor.as_str(), j.bindings.as_slice()))
            .collect();
        let stored = match store.replace_binding_sets(&sets).await {
            Ok(()) => true,
            Err(error) => {
                warn!(%error, registrations = batch.len(), "bindings not stored; REGISTERs refused");
                false
            }
        };
        drop(sets);
        if done
            .send(Persisted {
                jobs: batch,
                stored,
            })
            .is_err()
        {
            break;
        }
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
