//! The background agent for one account (issue 7 items 2–7): the shared state the local API
//! reads, the event log behind `avail watch`, the idle reports that drive auto-away (from the
//! API and from [`crate::desktop_idle`]), and the XCAP task (blink-compat §2.1: without a
//! configured root, DNS TXT `xcap.<domain>` retried after 60 s; §2.2: xcap-caps discovery
//! retried after 60 s, or 3600 s when the server lacks the required application usages; a
//! conditional sync after every queued operation, every xcap-diff change and every 10
//! minutes). The SIP side lives in [`crate::session`].
//!
//! Locks are std mutexes held only for short, non-async sections.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime};

use avail_client::config::AccountSettings;
use avail_client::discovery::Dns;
use avail_client::icons::IconCache;
use avail_client::presence::{DeviceDescription, OwnPresence, Publisher, SavedPresence};
use avail_client::roster::{BuddyList, Watchers};
use avail_client::{
    Account, DocumentKind, ManagerError, Operation, Settings, Snapshot, XcapManager,
};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// Events kept for long-polling clients.
const MAX_EVENTS: usize = 1000;
/// Between conditional re-fetches when nothing else triggers one.
const PERIODIC_SYNC: Duration = Duration::from_secs(600);
/// Retry after a failed root lookup or xcap-caps check (blink-compat §2.1, §2.2 item 1).
const DISCOVERY_RETRY: Duration = Duration::from_secs(60);
const MISSING_AUIDS_RETRY: Duration = Duration::from_secs(3600);
/// Operations gathered into one sync.
const MAX_BATCH: usize = 100;
const STATE_FILE: &str = "presence.json";

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("local API on {0}: {1}")]
    Api(String, std::io::Error),
    #[error("cannot write {0}: {1}")]
    AddrFile(std::path::PathBuf, std::io::Error),
    #[error(transparent)]
    Manager(#[from] ManagerError),
}

/// SIP registration as the API reports it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SipStatus {
    pub connected: bool,
    pub registered: bool,
    pub gruu: Option<String>,
    pub error: Option<String>,
    /// Whether the buddy list comes from the RLS or from one subscription per contact.
    pub list_mode: &'static str,
}

/// XCAP as the API reports it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct XcapStatus {
    pub ready: bool,
    pub error: Option<String>,
    #[serde(skip)]
    pub supported: Vec<DocumentKind>,
    #[serde(skip)]
    pub etags: BTreeMap<DocumentKind, String>,
}

pub struct State {
    pub presence: OwnPresence,
    pub sip: SipStatus,
    pub xcap: XcapStatus,
    pub snapshot: Snapshot,
    pub buddies: BuddyList,
    pub watchers: Watchers,
}

/// What the SIP session is told.
#[derive(Debug)]
pub enum SipCommand {
    /// The own state or the icon changed.
    Republish,
    /// The address book changed (direct subscriptions follow it).
    ContactsChanged,
    /// xcap-caps succeeded: subscriptions may start (blink-compat §4.1).
    XcapReady,
}

/// Answers the API's request once its operations are written (or refused).
pub type Done = oneshot::Sender<Result<(), String>>;

pub enum XcapCommand {
    Apply(Vec<Operation>, Done),
    Refresh,
}

/// The event log: numbered JSON events, oldest dropped first.
pub struct EventLog {
    events: Mutex<VecDeque<(u64, Value)>>,
    latest: watch::Sender<u64>,
    /// Set when the agent stops: a graceful HTTP shutdown waits for open requests, and a long
    /// poll (an open web UI always has one) would otherwise hold the stop for its whole wait.
    closed: AtomicBool,
}

impl EventLog {
    fn new() -> EventLog {
        EventLog {
            events: Mutex::new(VecDeque::new()),
            latest: watch::channel(0).0,
            closed: AtomicBool::new(false),
        }
    }

    /// Ends every long poll now and makes later ones answer at once.
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        // Wakes the waiters so that they see the flag.
        self.latest.send_modify(|_| {});
    }

    pub fn push(&self, kind: &str, data: Value) {
        let mut events = lock(&self.events);
        let seq = *self.latest.borrow() + 1;
        events.push_back((seq, json!({ "seq": seq, "kind": kind, "data": data })));
        while events.len() > MAX_EVENTS {
            events.pop_front();
        }
        self.latest.send_replace(seq);
    }

    /// Events after `since`, waiting up to `wait` for one; returns them and the newest number.
    pub async fn since(&self, since: u64, wait: Duration) -> (Vec<Value>, u64) {
        let mut latest = self.latest.subscribe();
        let closed = || self.closed.load(Ordering::Acquire);
        let _ = tokio::time::timeout(wait, latest.wait_for(|&n| n > since || closed())).await;
        let events = lock(&self.events);
        let newest = events.back().map_or(0, |(n, _)| *n);
        let list = events
            .iter()
            .filter(|(n, _)| *n > since)
            .map(|(_, v)| v.clone())
            .collect();
        (list, newest.max(since))
    }
}

/// Resolves once shutdown is requested (the guard of `wait_for` is not `Send`, so it must not
/// live in a `select!` arm).
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|&s| s).await;
}

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct Shared {
    pub settings: AccountSettings,
    pub state: Mutex<State>,
    pub events: EventLog,
    pub sip: mpsc::UnboundedSender<SipCommand>,
    pub xcap: mpsc::UnboundedSender<XcapCommand>,
    pub hostname: String,
    /// The XCAP identity, once the root is configured or discovered.
    pub xcap_account: OnceLock<Account>,
    /// Contacts' icons, fetched on demand (blink-compat §5.3).
    pub icons: tokio::sync::Mutex<IconCache>,
}

impl Shared {
    pub fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The publisher of this device, with the icon URL when an icon is set (token: the
    /// icon document's ETag, as Cocoa does).
    pub fn publisher(&self, state: &State) -> Publisher {
        let s = &self.settings;
        let icon_url = state.snapshot.icon.as_ref().and_then(|_| {
            let etag = state.xcap.etags.get(&DocumentKind::StatusIcon)?;
            let account = self.xcap_account.get()?;
            Some(format!(
                "{}{}#blink-icon{}",
                account.xcap_root,
                account.document_path(DocumentKind::StatusIcon),
                etag.trim_matches('"')
            ))
        });
        Publisher {
            address: s.address(),
            display_name: s.display_name.clone(),
            device: DeviceDescription {
                instance_uuid: s.instance_uuid.clone(),
                hostname: self.hostname.clone(),
                user_agent: user_agent(),
                // Timestamps are written in UTC, so the offset published with them is 0.
                time_offset_minutes: 0,
            },
            capabilities: s.capabilities,
            icon_url,
            homepage: s.homepage.clone(),
            map: s.map.clone(),
        }
    }

    /// Keeps the user's choice and history across restarts.
    pub fn save_presence(&self, saved: &SavedPresence) {
        let path = self.settings.data_dir.join(STATE_FILE);
        let temp = path.with_extension("tmp");
        let result = serde_json::to_vec(saved)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&temp, bytes))
            .and_then(|()| std::fs::rename(&temp, &path));
        if let Err(e) = result {
            tracing::warn!(error = %e, "cannot save the presence state");
        }
    }

    /// The user has given no input for `idle` (the desktop's reading or `POST /idle`): past
    /// the threshold auto-away, back on input; a change is announced and republished.
    pub fn report_idle(&self, idle: Duration) {
        let changed = self.state().presence.on_idle(idle, SystemTime::now());
        if changed {
            self.events.push("status", json!({ "reason": "idle" }));
            let _ = self.sip.send(SipCommand::Republish);
        }
    }

    /// Sends operations to the XCAP task and waits for the sync that writes them.
    pub async fn apply(&self, ops: Vec<Operation>) -> Result<(), String> {
        let (done, result) = oneshot::channel();
        self.xcap
            .send(XcapCommand::Apply(ops, done))
            .map_err(|_| "the agent is stopping".to_owned())?;
        result
            .await
            .map_err(|_| "the agent is stopping".to_owned())?
    }
}

pub fn user_agent() -> String {
    concat!("avail/", env!("CARGO_PKG_VERSION")).to_owned()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().chars().take(255).collect())
        .filter(|h: &String| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn load_presence(settings: &AccountSettings) -> Option<SavedPresence> {
    let bytes = std::fs::read(settings.data_dir.join(STATE_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A running agent.
pub struct AgentHandle {
    pub api_addr: SocketAddr,
    pub shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl AgentHandle {
    /// Unpublishes and unregisters (briefly waiting for the answers), then stops.
    pub async fn stop(self) {
        self.shutdown.send_replace(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Starts the agent: binds the local API, writes its address to `<data_dir>/agent.addr`, and
/// runs the SIP and XCAP tasks until [`AgentHandle::stop`].
pub async fn start(settings: AccountSettings) -> Result<AgentHandle, AgentError> {
    // A configured root is checked now; a discovered one when DNS answers.
    let manager = match &settings.xcap_root {
        Some(root) => Some(open_manager(&settings, root)?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(&settings.api)
        .await
        .map_err(|e| AgentError::Api(settings.api.clone(), e))?;
    let api_addr = listener
        .local_addr()
        .map_err(|e| AgentError::Api(settings.api.clone(), e))?;
    let addr_file = settings.data_dir.join("agent.addr");
    std::fs::write(&addr_file, format!("{api_addr}\n"))
        .map_err(|e| AgentError::AddrFile(addr_file, e))?;

    let (sip_tx, sip_rx) = mpsc::unbounded_channel();
    let (xcap_tx, xcap_rx) = mpsc::unbounded_channel();
    let (shutdown, shutdown_rx) = watch::channel(false);
    let state = State {
        presence: OwnPresence::new(
            load_presence(&settings),
            settings.idle_threshold,
            SystemTime::now(),
        ),
        sip: SipStatus {
            list_mode: "rls",
            ..SipStatus::default()
        },
        xcap: XcapStatus::default(),
        snapshot: Snapshot::default(),
        buddies: BuddyList::default(),
        watchers: Watchers::new(&settings.aor()),
    };
    let shared = Arc::new(Shared {
        settings,
        state: Mutex::new(state),
        events: EventLog::new(),
        sip: sip_tx,
        xcap: xcap_tx,
        hostname: hostname(),
        xcap_account: OnceLock::new(),
        icons: tokio::sync::Mutex::new(IconCache::default()),
    });
    let router = crate::api::router(shared.clone(), api_addr);
    tracing::info!(
        account = %shared.settings.aor(),
        url = %crate::web::ui_url(&api_addr.to_string()),
        "web UI"
    );
    if !api_addr.ip().is_loopback() {
        tracing::warn!(
            %api_addr,
            "the local API listens beyond loopback, but answers only requests addressed to \
             127.0.0.1, localhost or [::1]"
        );
    }
    let mut api_shutdown = shutdown_rx.clone();
    let api_shared = shared.clone();
    let tasks = vec![
        tokio::spawn(crate::session::run(
            shared.clone(),
            sip_rx,
            shutdown_rx.clone(),
        )),
        tokio::spawn(xcap_task(
            shared.clone(),
            manager,
            xcap_rx,
            shutdown_rx.clone(),
        )),
        tokio::spawn(crate::desktop_idle::run(
            shared.clone(),
            shutdown_rx.clone(),
        )),
        tokio::spawn(async move {
            let stop = async move {
                stopped(&mut api_shutdown).await;
                api_shared.events.close();
            };
            if let Err(e) = axum::serve(listener, router)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::error!(error = %e, "local API stopped");
            }
        }),
    ];
    Ok(AgentHandle {
        api_addr,
        shared,
        shutdown,
        tasks,
    })
}

fn open_manager(settings: &AccountSettings, root: &str) -> Result<XcapManager, ManagerError> {
    let mut manager_settings = Settings::new(
        settings.xcap_account(root),
        &settings.password,
        &settings.data_dir,
    );
    manager_settings.tls = settings.tls.clone();
    XcapManager::open(manager_settings)
}

fn describe(e: &ManagerError) -> String {
    match e {
        ManagerError::Http(h) => format!("XCAP server unreachable: {h}"),
        other => other.to_string(),
    }
}

fn report_xcap_error(shared: &Shared, what: &str, message: &str) {
    tracing::warn!(error = %message, "{what}");
    shared.state().xcap.error = Some(message.to_owned());
    shared.events.push("xcap", json!({ "error": message }));
}

/// Records the documents after a sync and tells the SIP side.
fn publish_snapshot(shared: &Shared, manager: &XcapManager) {
    let republish = {
        let mut state = shared.state();
        let old_icon = state.xcap.etags.get(&DocumentKind::StatusIcon).cloned();
        state.snapshot = manager.snapshot();
        state.xcap.etags = DocumentKind::ALL
            .into_iter()
            .filter_map(|k| Some((k, manager.etag(k)?.to_owned())))
            .collect();
        state.xcap.error = None;
        old_icon != state.xcap.etags.get(&DocumentKind::StatusIcon).cloned()
    };
    shared
        .events
        .push("contacts", json!({ "reason": "address book synced" }));
    let _ = shared.sip.send(SipCommand::ContactsChanged);
    if republish {
        let _ = shared.sip.send(SipCommand::Republish);
    }
}

async fn sync(shared: &Shared, manager: &mut XcapManager) -> Result<(), String> {
    match manager.sync().await {
        Ok(_) => {
            publish_snapshot(shared, manager);
            Ok(())
        }
        Err(e) => {
            let message = describe(&e);
            report_xcap_error(shared, "XCAP sync failed", &message);
            Err(message)
        }
    }
}

/// Waits `delay`, or less when a refresh is asked for, handing the API's edits to `apply`;
/// false once the agent stops.
async fn pause(
    delay: Duration,
    commands: &mut mpsc::UnboundedReceiver<XcapCommand>,
    shutdown: &mut watch::Receiver<bool>,
    mut apply: impl FnMut(Vec<Operation>, Done),
) -> bool {
    let wake = tokio::time::sleep(delay);
    tokio::pin!(wake);
    loop {
        tokio::select! {
            _ = &mut wake => return true,
            _ = stopped(shutdown) => return false,
            command = commands.recv() => match command {
                None => return false,
                Some(XcapCommand::Refresh) => return true,
                Some(XcapCommand::Apply(ops, done)) => apply(ops, done),
            }
        }
    }
}

/// No root configured: asks DNS for one until an answer opens a manager (blink-compat §2.1).
/// Edits are refused meanwhile: without a server there is no journal to replay them on.
async fn discover_root(
    shared: &Shared,
    commands: &mut mpsc::UnboundedReceiver<XcapCommand>,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<XcapManager> {
    loop {
        let settings = &shared.settings;
        let found = match Dns::system() {
            Ok(dns) => dns.xcap_root(&settings.domain).await,
            Err(e) => Err(e),
        };
        let message = match found {
            Ok(root) => match open_manager(settings, &root) {
                Ok(manager) => {
                    tracing::info!(%root, "XCAP root discovered");
                    return Some(manager);
                }
                Err(e) => format!("discovered XCAP root {root}: {}", describe(&e)),
            },
            Err(e) => format!("no XCAP root: {e}"),
        };
        report_xcap_error(shared, "XCAP root discovery failed", &message);
        let refuse = |_, done: Done| {
            let _ = done.send(Err(message.clone()));
        };
        if !pause(DISCOVERY_RETRY, commands, shutdown, refuse).await {
            return None;
        }
    }
}

async fn xcap_task(
    shared: Arc<Shared>,
    manager: Option<XcapManager>,
    mut commands: mpsc::UnboundedReceiver<XcapCommand>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut manager = match manager {
        Some(manager) => manager,
        None => match discover_root(&shared, &mut commands, &mut shutdown).await {
            Some(manager) => manager,
            None => return,
        },
    };
    let _ = shared.xcap_account.set(manager.account().clone());
    let mut waiting: Vec<Done> = Vec::new();
    loop {
        let delay = match manager.discover().await {
            Ok(kinds) => {
                let kinds = kinds.to_vec();
                let mut state = shared.state();
                state.xcap.supported = kinds;
                state.xcap.error = None;
                break;
            }
            Err(e) => {
                report_xcap_error(&shared, "XCAP discovery failed", &describe(&e));
                if matches!(e, ManagerError::MissingAuids(_)) {
                    MISSING_AUIDS_RETRY
                } else {
                    DISCOVERY_RETRY
                }
            }
        };
        // Operations queued before discovery are kept in the journal and answered later.
        let keep = |ops, done: Done| match queue(&mut manager, ops) {
            Ok(()) => waiting.push(done),
            Err(e) => {
                let _ = done.send(Err(e));
            }
        };
        if !pause(delay, &mut commands, &mut shutdown, keep).await {
            return;
        }
    }
    let result = sync(&shared, &mut manager).await;
    // Ready only after the first sync, so the normalised rls-services document (the buddy
    // list's service) exists before the list subscription asks for it, whether the session
    // starts it on this command or on a later (re)connection.
    shared.state().xcap.ready = true;
    shared.events.push("xcap", json!({ "ready": true }));
    let _ = shared.sip.send(SipCommand::XcapReady);
    for done in waiting.drain(..) {
        let _ = done.send(result.clone());
    }
    loop {
        let mut replies = Vec::new();
        tokio::select! {
            _ = tokio::time::sleep(PERIODIC_SYNC) => {}
            _ = stopped(&mut shutdown) => return,
            command = commands.recv() => {
                let Some(command) = command else { return };
                let mut next = Some(command);
                while let Some(command) = next.take() {
                    if let XcapCommand::Apply(ops, done) = command {
                        match queue(&mut manager, ops) {
                            Ok(()) => replies.push(done),
                            Err(e) => { let _ = done.send(Err(e)); }
                        }
                    }
                    if replies.len() < MAX_BATCH {
                        next = commands.try_recv().ok();
                    }
                }
            }
        }
        let result = sync(&shared, &mut manager).await;
        for done in replies {
            let _ = done.send(result.clone());
        }
    }
}

fn queue(manager: &mut XcapManager, ops: Vec<Operation>) -> Result<(), String> {
    for op in ops {
        op.check().map_err(|e| e.to_string())?;
        manager.queue(op).map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_event_log_numbers_keeps_a_bounded_window_and_waits() {
        let log = EventLog::new();
        let (none, next) = log.since(0, Duration::ZERO).await;
        assert!(none.is_empty());
        assert_eq!(next, 0);
        for i in 0..MAX_EVENTS + 5 {
            log.push("test", json!(i));
        }
        let (events, next) = log.since(0, Duration::ZERO).await;
        assert_eq!(events.len(), MAX_EVENTS);
        assert_eq!(events[0]["seq"], 6, "the oldest five were dropped");
        assert_eq!(next as usize, MAX_EVENTS + 5);
        let (later, _) = log.since(next - 1, Duration::ZERO).await;
        assert_eq!(later.len(), 1);
        assert_eq!(later[0]["data"], json!(MAX_EVENTS + 4));

        let waiting = log.since(next, Duration::from_secs(5));
        let push = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            log.push("late", json!(null));
        };
        let ((events, newest), ()) = tokio::join!(waiting, push);
        assert_eq!(events.len(), 1, "the long poll returns the new event");
        assert_eq!(events[0]["kind"], "late");
        assert_eq!(newest, next + 1);
    }
}
