//! The presence agent in the server: loads each presentity's policy documents (pres-rules,
//! resource-lists, pidf-manipulation; blink-compat §1.1) from the XCAP store before the
//! sans-IO [`presence::PresenceAgent`] decides on a request for it, reloads them when XCAP
//! reports a change (RFC 4825 writes, issue 4 item 4: re-evaluation at once). For the
//! `xcap-diff` package (RFC 5875) it lists an owner's documents from the store and passes
//! every XCAP write on, so a NOTIFY follows each change as soon as it is committed.
//!
//! Restart (README "Restart and durability"): after a change, at most every
//! [`SAVE_INTERVAL`], the records the agent reports changed since the last save (created,
//! modified, removed; see [`PresenceAgent::export_changes`]) go to a writer task, which
//! stores each batch in one transaction and retries a failed one. The cost of a save follows
//! the changes, not the number of subscriptions. On start the rows are imported and every
//! restored subscription gets a full-state NOTIFY, sent to the dialog's next hop (first
//! route, else remote target) since its connection died with the old process; next hops
//! with host names are located once (RFC 3263 §4: SRV, then address records), before the
//! import.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use presence::xcap_diff::document_sel;
use presence::{Config as AgentConfig, Notify, Policy, PresenceAgent, RecordKind, StateRecord};
use rand::SeedableRng;
use sip_locate::{Destination, Host, Locator};
use sip_subscription::{Flow, StoredDialog};
use sip_transport::{Target, Transport, TransportHandle};
use store::{DocumentKey, DocumentStore, PresenceRow, Store};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;
use tracing::{debug, info, warn};
use xcap::DocumentChange;

use crate::config::Config;
use crate::reply::Origin;

/// pres-rules AUIDs, in the order looked for: Blink's OMA one, then the IETF one (RFC 5025 §9).
const PRES_RULES: [&str; 2] = ["org.openmobilealliance.pres-rules", "pres-rules"];
const RESOURCE_LISTS: &str = "resource-lists";
const PIDF_MANIPULATION: &str = "pidf-manipulation";
/// The one document per usage that policy is read from (blink-compat §1.1).
const DOCUMENT: &str = "index";

/// Least time between two saves: bounds what a crash loses and what saving costs under load.
pub const SAVE_INTERVAL: Duration = Duration::from_millis(250);

/// Pause before a failed save is tried again (with whatever was saved meanwhile).
const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// One save: rows to upsert and `(kind, key)` pairs to delete.
pub type Save = (Vec<PresenceRow>, Vec<(String, String)>);

/// When an agent's changes are saved, and the writer task they go to: at most every
/// [`SAVE_INTERVAL`] after a change. The presence agent and the list server each have one,
/// sharing the writer, so their saves form one ordered stream of transactions.
pub struct Saver {
    /// Whether the agent may have changed since the last save.
    dirty: bool,
    last_save: Instant,
    writer: mpsc::UnboundedSender<Save>,
}

impl Saver {
    /// Another saver into the same writer.
    pub fn sharing(&self) -> Saver {
        Saver {
            dirty: false,
            last_save: Instant::now(),
            writer: self.writer.clone(),
        }
    }

    /// The agent may have changed.
    pub fn touch(&mut self) {
        self.dirty = true;
    }

    /// The earlier of `agent_deadline` (the agent's next timer) and the next save, if one
    /// is due.
    pub fn next_deadline(&self, agent_deadline: Option<Instant>) -> Option<Instant> {
        let next_save = self.dirty.then(|| self.last_save + SAVE_INTERVAL);
        [agent_deadline, next_save].into_iter().flatten().min()
    }

    /// When a save is due: counts it as made and hands what `export` reports changed since
    /// the last one (given now and the unix time) to the writer.
    pub fn save_if_due<C: SavedChanges>(
        &mut self,
        now: Instant,
        export: impl FnOnce(Instant, u64) -> C,
    ) {
        if !self.dirty || now < self.last_save + SAVE_INTERVAL {
            return;
        }
        self.dirty = false;
        self.last_save = now;
        let changes = export(now, crate::auth::unix_now());
        if changes.is_empty() {
            return;
        }
        let (records, removed) = changes.into_rows();
        let rows = records
            .into_iter()
            .map(|(kind, key, expires_at, data)| PresenceRow {
                kind: kind.to_owned(),
                key,
                expires_at: i64::try_from(expires_at).unwrap_or(i64::MAX),
                data,
            })
            .collect();
        let removed = removed
            .into_iter()
            .map(|(kind, key)| (kind.to_owned(), key))
            .collect();
        let _ = self.writer.send((rows, removed));
    }
}

/// A changed record as a store row: kind, key, expiry (unix seconds), data.
pub type SavedRow = (&'static str, String, u64, Vec<u8>);
/// A removed record: kind and key.
pub type RemovedRow = (&'static str, String);

/// What an agent exports for saving, as store rows.
pub trait SavedChanges {
    fn is_empty(&self) -> bool;
    fn into_rows(self) -> (Vec<SavedRow>, Vec<RemovedRow>);
}

impl SavedChanges for presence::Changes {
    fn is_empty(&self) -> bool {
        presence::Changes::is_empty(self)
    }

    fn into_rows(self) -> (Vec<SavedRow>, Vec<RemovedRow>) {
        let rows = self
            .records
            .into_iter()
            .map(|record| {
                (
                    record.kind.as_str(),
                    record.key,
                    record.expires_at,
                    record.data,
                )
            })
            .collect();
        let removed = self
            .removed
            .into_iter()
            .map(|(kind, key)| (kind.as_str(), key))
            .collect();
        (rows, removed)
    }
}

pub struct Presence {
    agent: PresenceAgent<Target>,
    saver: Saver,
    store: Store,
    /// Host part of our Via and Contact when a listener is bound to a wildcard address.
    fallback_host: String,
    /// Finds restored dialogs' next hops (RFC 3263).
    locator: Locator,
    /// The transports an SRV lookup may pick (see `SipConfig::outgoing_transports`).
    outgoing: Vec<sip_locate::Transport>,
    /// The targets of the next hops with host names restored dialogs are reached at,
    /// located on start.
    restored_hops: HashMap<String, Vec<sip_locate::Target>>,
}

impl Presence {
    pub fn new(config: &Config, store: Store, locator: Locator) -> Presence {
        let r = &config.registrar;
        let mut agent_config = AgentConfig::new(r.min_expires, r.max_expires, r.default_expires);
        agent_config.xcap_root = xcap_root(config);
        config.presence.apply(&mut agent_config);
        let agent = PresenceAgent::new(agent_config, rand::rngs::StdRng::from_entropy());
        let (writer, saves) = mpsc::unbounded_channel();
        tokio::spawn(write_state(store.clone(), saves));
        Presence {
            agent,
            saver: Saver {
                dirty: false,
                last_save: Instant::now(),
                writer,
            },
            store,
            fallback_host: config.domains.first().cloned().unwrap_or_default(),
            locator,
            outgoing: config.sip.outgoing_transports(),
            restored_hops: HashMap::new(),
        }
    }

    /// A saver for the resource list server, into the same writer.
    pub fn saver(&self) -> Saver {
        self.saver.sharing()
    }

    /// How a restored dialog's subscriber is reached (see [`restored_flow`]).
    pub fn restored_flow(&self, transport: &TransportHandle, target: &str) -> Option<Flow<Target>> {
        restored_flow(
            &self.fallback_host,
            &self.restored_hops,
            &self.outgoing,
            transport,
            target,
        )
    }

    /// The agent, for a call that may change its state (which schedules a save).
    pub fn agent(&mut self) -> &mut PresenceAgent<Target> {
        self.saver.touch();
        &mut self.agent
    }

    /// The agent's timers, when one is due (every timer of the server wakes the core; only a
    /// due one may change what is saved).
    pub fn on_timer(&mut self, now: Instant) -> Vec<Notify<Target>> {
        if self.agent.next_deadline().is_some_and(|due| due <= now) {
            self.agent().on_timer(now)
        } else {
            Vec::new()
        }
    }

    /// Whether back-end watch states changed since the last take.
    pub fn has_watch_updates(&self) -> bool {
        self.agent.has_watch_updates()
    }

    /// Back-end watch states changed since the last call; taking them changes nothing saved.
    pub fn take_watch_updates(&mut self) -> Vec<presence::WatchUpdate> {
        self.agent.take_watch_updates()
    }

    /// The agent's next timer, or the next save when one is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.saver.next_deadline(self.agent.next_deadline())
    }

    /// Hands the changes since the last save to the writer, if one is due.
    pub fn save_if_due(&mut self, now: Instant) {
        let agent = &mut self.agent;
        self.saver
            .save_if_due(now, |now, unix_now| agent.export_changes(now, unix_now));
    }

    /// Start-up: imports the saved state, loads the policies and document lists it needs
    /// and returns the full-state NOTIFYs of the restored subscriptions.
    pub async fn restore(
        &mut self,
        transport: &TransportHandle,
        now: Instant,
    ) -> Vec<Notify<Target>> {
        let now_unix = crate::auth::unix_now();
        let rows = match self
            .store
            .load_presence_state(i64::try_from(now_unix).unwrap_or(i64::MAX))
            .await
        {
            Ok(rows) => rows,
            Err(error) => {
                warn!(%error, "saved presence state not readable; starting empty");
                return Vec::new();
            }
        };
        // List subscriptions are in these rows too; the list server restores after us.
        self.restored_hops = locate_next_hops(&rows, &self.locator, &self.outgoing).await;
        let records: Vec<StateRecord> = rows
            .into_iter()
            .filter_map(|row| {
                Some(StateRecord {
                    kind: RecordKind::parse(&row.kind)?,
                    key: row.key,
                    expires_at: u64::try_from(row.expires_at).ok()?,
                    data: row.data,
                })
            })
            .collect();
        let (hops, outgoing) = (&self.restored_hops, &self.outgoing);
        let restored = self.agent.import(
            records,
            |target| restored_flow(&self.fallback_host, hops, outgoing, transport, target),
            now,
            now_unix,
        );
        info!(
            publications = self.agent.publications(),
            subscriptions = self.agent.subscriptions(),
            "presence state restored"
        );
        let mut notifies = Vec::new();
        for presentity in &restored.presentities {
            notifies.extend(self.reload(presentity, now).await);
        }
        for owner in &restored.owners {
            self.load_documents(owner).await;
        }
        notifies.extend(self.agent.resume(now));
        // The import counts every row as changed: restored ones are rewritten (with their
        // skipped CSeq), the rest deleted.
        self.saver.touch();
        notifies
    }

    /// Loads `presentity`'s policy unless the agent already has it.
    pub async fn ensure_policy(&mut self, presentity: &str, now: Instant) -> Vec<Notify<Target>> {
        if self.agent.tracks(presentity) {
            return Vec::new();
        }
        self.reload(presentity, now).await
    }

    /// Reads the policy documents afresh and applies them.
    async fn reload(&mut self, presentity: &str, now: Instant) -> Vec<Notify<Target>> {
        let mut pres_rules = None;
        for auid in PRES_RULES {
            pres_rules = self.document(auid, presentity).await;
            if pres_rules.is_some() {
                break;
            }
        }
        let lists = self.document(RESOURCE_LISTS, presentity).await;
        let manipulation = self.document(PIDF_MANIPULATION, presentity).await;
        let policy = Policy::from_documents(
            pres_rules.as_deref(),
            lists.as_deref(),
            manipulation.as_deref(),
        );
        let unix_now = i64::try_from(crate::auth::unix_now()).unwrap_or(i64::MAX);
        self.agent.set_policy(presentity, policy, unix_now, now)
    }

    /// Loads `owner`'s document list unless the agent already has it (xcap-diff).
    pub async fn ensure_documents(&mut self, owner: &str) {
        if !self.agent.tracks_documents(owner) {
            self.load_documents(owner).await;
        }
    }

    async fn load_documents(&mut self, owner: &str) {
        match self.store.list_documents(owner).await {
            Ok(list) => self.agent.set_documents(
                owner,
                list.iter().map(|d| {
                    (
                        document_sel(&d.key.auid, owner, &d.key.path),
                        d.etag.as_str(),
                    )
                }),
            ),
            // The initial NOTIFY then lists nothing and Blink fetches every document anyway
            // (blink-compat §4.5).
            Err(error) => warn!(%error, owner, "document list not readable"),
        }
    }

    async fn document(&self, auid: &str, owner: &str) -> Option<Vec<u8>> {
        let key = DocumentKey {
            auid: auid.to_owned(),
            owner: owner.to_owned(),
            path: DOCUMENT.to_owned(),
        };
        match self.store.get_document(&key).await {
            Ok(document) => document.map(|d| d.content),
            Err(error) => {
                // Without the document the agent falls back to confirm (pending), which
                // reveals nothing.
                warn!(%error, auid, owner, "policy document not readable");
                None
            }
        }
    }

    /// An XCAP write: re-evaluate the owner's subscriptions if it was a policy document of
    /// a presentity we hold state for. Missed events (a lagging receiver) reload every one.
    pub async fn on_document_change(
        &mut self,
        change: Result<DocumentChange, RecvError>,
        now: Instant,
    ) -> Vec<Notify<Target>> {
        let mut notifies = Vec::new();
        let presentities: Vec<String> = match change {
            Ok(change) => {
                if let Some(owner) = change.user.as_deref().and_then(presence::aor) {
                    let sel = document_sel(&change.auid, &owner, &change.document);
                    notifies.extend(self.agent.on_document_changed(
                        &owner,
                        &sel,
                        change.new_etag.as_deref(),
                        now,
                    ));
                }
                let relevant = change.document == DOCUMENT
                    && (PRES_RULES.contains(&change.auid.as_str())
                        || change.auid == RESOURCE_LISTS
                        || change.auid == PIDF_MANIPULATION);
                let presentity = change.user.as_deref().and_then(presence::aor);
                match presentity {
                    Some(p) if relevant && self.agent.tracks(&p) => vec![p],
                    _ => Vec::new(),
                }
            }
            Err(RecvError::Lagged(missed)) => {
                warn!(
                    missed,
                    "document changes missed; reloading every policy and document list"
                );
                notifies.extend(self.relist_documents(now).await);
                self.agent.tracked().map(str::to_owned).collect()
            }
            Err(RecvError::Closed) => Vec::new(),
        };
        for presentity in presentities {
            debug!(%presentity, "policy documents changed");
            notifies.extend(self.reload(&presentity, now).await);
        }
        notifies
    }

    /// After missed change events: compare each watched owner's documents with the store and
    /// report every difference as a change.
    async fn relist_documents(&mut self, now: Instant) -> Vec<Notify<Target>> {
        let owners: Vec<String> = self.agent.documents_tracked().map(str::to_owned).collect();
        let mut notifies = Vec::new();
        for owner in owners {
            let list = match self.store.list_documents(&owner).await {
                Ok(list) => list,
                Err(error) => {
                    warn!(%error, owner, "document list not readable");
                    continue;
                }
            };
            let current: Vec<(String, String)> = list
                .iter()
                .map(|d| {
                    (
                        document_sel(&d.key.auid, &owner, &d.key.path),
                        d.etag.clone(),
                    )
                })
                .collect();
            notifies.extend(self.agent.resync_documents(&owner, current, now));
        }
        notifies
    }

    /// How NOTIFYs reach the subscriber: over the flow its SUBSCRIBE came on (`dest`, the
    /// response target), with our Via and Contact for that listener (RFC 6665 §4.2.2 and
    /// blink-compat §7 "a Contact in every 2xx").
    pub fn flow(&self, origin: Origin, dest: Target, local: Option<SocketAddr>) -> Flow<Target> {
        listener_flow(&self.fallback_host, origin.transport, dest, local)
    }
}

/// The absolute XCAP root announced in xcap-diff documents: HTTPS when it is served, under
/// the first SIP domain (the name clients are configured with), else the listener address.
fn xcap_root(config: &Config) -> String {
    let (scheme, addr) = match (config.http.https, config.http.http) {
        (Some(addr), _) => ("https", Some(addr)),
        (None, addr) => ("http", addr),
    };
    let host = config.domains.first().cloned().unwrap_or_default();
    match addr {
        Some(addr) => format!("{scheme}://{host}:{}{}", addr.port(), config.http.root),
        None => format!("{scheme}://{host}{}", config.http.root),
    }
}

/// Our Via and Contact for the listener of `transport` (`local`), reaching `dest`.
fn listener_flow(
    fallback_host: &str,
    transport: Transport,
    dest: Target,
    local: Option<SocketAddr>,
) -> Flow<Target> {
    let host = match local {
        Some(addr) if !addr.ip().is_unspecified() => addr.to_string(),
        Some(addr) => format!("{fallback_host}:{}", addr.port()),
        None => fallback_host.to_owned(),
    };
    let (via, param) = match transport {
        Transport::Udp => ("UDP", ""),
        Transport::Tcp => ("TCP", ";transport=tcp"),
        Transport::Tls => ("TLS", ";transport=tls"),
    };
    Flow {
        dest,
        reliable: transport != Transport::Udp,
        via: format!("SIP/2.0/{via} {host}"),
        contact: format!("<sip:{host}{param}>"),
    }
}

/// A dialog's next hop as stored, a route (`<sip:proxy;lr>`) or a remote target, as RFC 3263
/// sees it.
fn hop_destination(hop: &str) -> Option<Destination> {
    let text = hop.trim().trim_start_matches('<').trim_end_matches('>');
    Destination::from_uri(text).ok()
}

/// The targets of the next hops with host names that restored dialogs (presence and list
/// subscriptions alike: both store a [`StoredDialog`]) are reached at, each located once,
/// all at the same time, each within the locator's timeout. A next hop not located drops
/// its dialogs; their subscribers subscribe again when their refresh fails.
async fn locate_next_hops(
    rows: &[PresenceRow],
    locator: &Locator,
    outgoing: &[sip_locate::Transport],
) -> HashMap<String, Vec<sip_locate::Target>> {
    let named: HashMap<String, Destination> = rows
        .iter()
        .filter_map(|row| serde_json::from_slice::<StoredDialog>(&row.data).ok())
        .filter_map(|dialog| {
            let destination = hop_destination(dialog.next_hop())?;
            let named = matches!(destination.host, Host::Name(_));
            named.then(|| (dialog.next_hop().to_owned(), destination))
        })
        .collect();
    let mut lookups = tokio::task::JoinSet::new();
    for (hop, destination) in named {
        let (locator, outgoing) = (locator.clone(), outgoing.to_vec());
        lookups.spawn(async move {
            match locator.locate(&destination, &outgoing).await {
                Ok(targets) => Some((hop, targets)),
                Err(error) => {
                    warn!(%error, hop, "restored dialogs' next hop not located");
                    None
                }
            }
        });
    }
    let mut located = HashMap::new();
    while let Some(found) = lookups.join_next().await {
        match found {
            Ok(Some((hop, targets))) => {
                located.insert(hop, targets);
            }
            Ok(None) => {}
            Err(error) => warn!(%error, "next hop lookup failed"),
        }
    }
    located
}

/// How a restored dialog is reached: the first target of its next hop (RFC 3263 §4, RFC
/// 3261 §18.1.1) that a listener of ours for its transport and address family can reach,
/// carrying the name a TLS certificate must show (RFC 5922). A host name's targets come
/// from `located` (see [`locate_next_hops`]); `outgoing` as `SipConfig::outgoing_transports`.
fn restored_flow(
    fallback_host: &str,
    located: &HashMap<String, Vec<sip_locate::Target>>,
    outgoing: &[sip_locate::Transport],
    transport: &TransportHandle,
    hop: &str,
) -> Option<Flow<Target>> {
    let address = hop_destination(hop)?.address_target(outgoing);
    let targets = match &address {
        Some(target) => std::slice::from_ref(target),
        None => located.get(hop)?,
    };
    targets.iter().find_map(|target| {
        let kind = target.transport;
        let local = transport.local_addr(kind)?;
        if local.is_ipv4() != target.addr.is_ipv4() {
            return None;
        }
        let dest = Target::to(kind, target.addr, target.server_name.clone());
        Some(listener_flow(fallback_host, kind, dest, Some(local)))
    })
}

/// The writer task: stores each save in one transaction, in order. Saves that queued up
/// meanwhile are merged, so a slow disk costs fewer, larger transactions. A failed save is
/// kept and tried again after [`RETRY_INTERVAL`], merged with the saves made meanwhile: each
/// save holds only changes, so none may be lost.
async fn write_state(store: Store, mut saves: mpsc::UnboundedReceiver<Save>) {
    let mut failed: Option<Save> = None;
    loop {
        let (mut rows, mut removed) = match failed.take() {
            Some(save) => {
                tokio::time::sleep(RETRY_INTERVAL).await;
                save
            }
            None => match saves.recv().await {
                Some(save) => save,
                None => return,
            },
        };
        let mut closed = false;
        loop {
            match saves.try_recv() {
                Ok(more) => merge(&mut rows, &mut removed, more),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        if let Err(error) = store.save_presence_state(&rows, &removed).await {
            if closed {
                warn!(%error, "presence state not saved at shutdown");
                return;
            }
            warn!(%error, "presence state not saved; retrying");
            failed = Some((rows, removed));
        }
    }
}

/// `more` (the later save) on top of `rows` and `removed`.
fn merge(rows: &mut Vec<PresenceRow>, removed: &mut Vec<(String, String)>, more: Save) {
    let (more_rows, more_removed) = more;
    let keys: HashSet<(String, String)> = more_rows
        .iter()
        .map(|r| (r.kind.clone(), r.key.clone()))
        .chain(more_removed.iter().cloned())
        .collect();
    rows.retain(|r| !keys.contains(&(r.kind.clone(), r.key.clone())));
    removed.retain(|k| !keys.contains(k));
    rows.extend(more_rows);
    removed.extend(more_removed);
}
