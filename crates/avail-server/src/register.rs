//! REGISTER in the server: RFC 3261 §10.3 steps 1–5 (domain, digest authentication per
//! RFC 7616/RFC 8760 in [`crate::auth`], authorization of the AOR) around the sans-IO registrar (steps 6–8),
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
use sip_message::Message;
use sip_transaction::ServerTxId;
use sip_transport::Transport;
use store::Store;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::auth::{simple, Authenticator};
use crate::config::Config;
use crate::reply::Origin;
use crate::server::BoxError;

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
    store: Store,
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
        let gruu_secret = store
            .get_or_create_secret("gruu", sip_auth::generate_secret)
            .await?;
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
            store,
            writer,
            in_flight: HashMap::new(),
            last_purge: Instant::now(),
        };
        Ok((registration, persisted))
    }

    /// The bindings and GRUUs, for the proxy's target sets.
    pub fn registrar(&self) -> &Registrar {
        &self.registrar
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
        auth: &mut Authenticator,
        id: ServerTxId,
        request: Message,
        origin: Origin,
        now: Instant,
    ) -> Option<(u16, Bytes)> {
        let aor = match self.authenticate(auth, &request, origin, now).await {
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
        auth: &mut Authenticator,
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
        let username = auth.authenticate(request, &domain, origin, now).await?;
        if username != aor_user {
            return Err(simple(
                request,
                403,
                "Credentials do not match the address of record",
            ));
        }
        Ok(aor)
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
