//! `avail-server run`: opens storage, starts the XCAP server (RFC 4825 over HTTP and HTTPS)
//! on the multi-threaded runtime, and the transports and the SIP core's event loop, fed with
//! received messages and timer expiries, on a thread of their own (see [`run`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sip_auth::Nonces;
use sip_locate::Locator;
use sip_transport::{tls, Transport, TransportConfig, Transports};
use tokio::net::TcpListener;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::oneshot;
use tracing::{error, info, warn};
use xcap::DocumentChange;
use xcap_http::{XcapConfig, XcapService};

use crate::auth::Authenticator;
use crate::config::Config;
use crate::connect::Connector;
use crate::pacing::Pacing;
use crate::presence::Presence;
use crate::proxy::ProxyService;
use crate::register::Registration;
use crate::rls::ListServer;
use crate::sip_core::lookups::{Lookups, LOCATE_TIMEOUT};
use crate::sip_core::SipCore;

/// How late a timer may fire. Under load timers come due every few hundred microseconds
/// (transactions lingering after their response, RFC 3261 §17.1.2.2 Timer K); letting each
/// wakeup take all that are due within this slack turns thousands of wakeups a second into
/// at most a hundred, and no SIP timer needs finer precision.
const TIMER_SLACK: Duration = Duration::from_millis(10);
/// Transport events taken per loop turn. Under load several wait at once (a fan-out's 200s
/// come back together); taking them together spares each one the poll of every other source,
/// the next-deadline computation and a flush of its own, while the bound keeps timers and
/// the other sources served between batches.
const EVENT_BATCH: usize = 64;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub async fn run(config: Config) -> Result<(), BoxError> {
    let config = Arc::new(config);
    let store = store::Store::open(&config.data_dir).await?;
    // One certificate for SIP over TLS and for HTTPS.
    let tls_server_config = match config.sip.tls.or(config.http.https) {
        Some(_) => Some(tls::load_or_generate(
            config.tls.cert.as_deref(),
            config.tls.key.as_deref(),
            &config.data_dir,
            &config.domains,
        )?),
        None => None,
    };
    let xcap = start_xcap(&config, &store, tls_server_config.clone()).await?;
    let changes = xcap.as_ref().map(|service| service.subscribe());
    // SIP runs on a thread of its own with a single-threaded runtime: the core and every
    // transport task share one thread, so handing a message between them is a queue push
    // instead of a cross-thread wakeup (a futex call and a context switch each way), and a
    // connection's writer runs only once the core has queued all it has to send. XCAP keeps
    // the multi-threaded runtime, so schema validation never stalls SIP.
    let (stop, stopped) = oneshot::channel();
    let (done, finished) = oneshot::channel();
    std::thread::Builder::new()
        .name("sip".to_owned())
        .spawn(move || {
            let result = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                // The loop runs as a task, not as the `block_on` future: when another task
                // (a connection's reader handing over a message) wakes the `block_on` future,
                // the scheduler first polls the reactor once more without blocking, an extra
                // epoll_wait per wakeup; a woken task just joins the run queue.
                Ok(runtime) => runtime.block_on(async {
                    tokio::spawn(run_sip(config, store, tls_server_config, changes, stopped))
                        .await
                        .unwrap_or_else(|_| Err("the SIP loop panicked".into()))
                }),
                Err(error) => Err(error.into()),
            };
            let _ = done.send(result);
        })?;
    tokio::pin!(finished);
    tokio::select! {
        result = &mut finished => return result.unwrap_or_else(|_| Err("the SIP thread panicked".into())),
        _ = shutdown_signal() => info!("shutting down"),
    }
    let _ = stop.send(());
    finished
        .await
        .unwrap_or_else(|_| Err("the SIP thread panicked".into()))
}

/// What outgoing TLS connections trust (next hops in other domains over TLS): a configured
/// CA file must load; without one, a system without trusted CAs still starts, with outgoing
/// TLS failing (each such next hop then counts as unreachable).
fn tls_client_config(config: &Config) -> Result<Option<Arc<rustls::ClientConfig>>, BoxError> {
    if config.sip.tls.is_none() {
        return Ok(None);
    }
    match tls::client_config(config.tls.ca_file.as_deref()) {
        Ok(client) => Ok(Some(client)),
        Err(error) if config.tls.ca_file.is_some() => Err(error.into()),
        Err(error) => {
            warn!(%error, "no outgoing TLS connections");
            Ok(None)
        }
    }
}

/// The SIP side: transports, authentication, registrar and presence agent, and the core's
/// event loop feeding it received messages, timer expiries and the results of the tasks it
/// started (stored bindings, failed connects, located next hops), until `stop` fires.
async fn run_sip(
    config: Arc<Config>,
    store: store::Store,
    tls_server_config: Option<Arc<rustls::ServerConfig>>,
    mut changes: Option<broadcast::Receiver<DocumentChange>>,
    stop: oneshot::Receiver<()>,
) -> Result<(), BoxError> {
    let transport_config = TransportConfig {
        udp: config.sip.udp,
        tcp: config.sip.tcp,
        tls: config.sip.tls,
        tls_client_config: tls_client_config(&config)?,
        tls_server_config,
        idle_timeout: Duration::from_secs(config.sip.idle_timeout_secs),
        limits: config.limits.sip(),
        max_connections: config.sip.max_connections,
        ..TransportConfig::default()
    };
    let (transport, mut events) = Transports::start(transport_config).await?;
    for kind in [Transport::Udp, Transport::Tcp, Transport::Tls] {
        if let Some(addr) = transport.local_addr(kind) {
            info!("SIP over {kind} on {addr}");
        }
    }
    info!(domains = ?config.domains, data_dir = %config.data_dir.display(), "avail-server started");
    let auth = Authenticator::start(config.clone(), store.clone()).await?;
    let locator = Locator::new(&config.sip.nameservers, LOCATE_TIMEOUT);
    let presence = Presence::new(&config, store.clone(), locator.clone());
    let (lookups, mut located) = Lookups::new(locator);
    let lists = ListServer::new(&config, store.clone(), presence.saver());
    let (connector, mut failed_sends) = Connector::new(transport.clone());
    let proxy = ProxyService::start(config.clone(), &store, &transport, connector).await?;
    let (registration, mut persisted) = Registration::start(config.clone(), store).await?;
    let batch_wait = Duration::from_micros(config.sip.batch_wait_us);
    let mut core = SipCore::new(config, auth, registration, presence, lists, proxy, lookups);
    core.restore(Instant::now()).await;
    core.flush().await;
    tokio::pin!(stop);
    // One timer, moved only when the deadline moves: a fresh sleep per loop turn would
    // register and cancel a timer entry for every message received.
    let mut armed = Instant::now();
    let timer = tokio::time::sleep_until(armed.into());
    tokio::pin!(timer);
    let mut arrived = Vec::with_capacity(EVENT_BATCH);
    let mut pacing = Pacing::new(batch_wait);
    loop {
        let deadline = match core.next_deadline() {
            Some(at) => at + TIMER_SLACK,
            // Nothing scheduled: a pending wakeup is harmless, an hour away is never.
            None if !timer.is_elapsed() => armed,
            None => Instant::now() + Duration::from_secs(3600),
        };
        if deadline != armed || timer.is_elapsed() {
            armed = deadline;
            timer.as_mut().reset(deadline.into());
        }
        tokio::select! {
            received = events.recv_many(&mut arrived, EVENT_BATCH) => {
                if received == 0 {
                    break;
                }
                // One reading of the clock per batch: a batch takes milliseconds at most,
                // well inside the slack of any SIP timer (T1 is 500 ms).
                let now = Instant::now();
                pacing.turn_started(now);
                core.on_transport_events(&mut arrived, now).await;
            }
            Some(batch) = persisted.recv() => core.on_persisted(batch, Instant::now()).await,
            Some(failed) = failed_sends.recv() => core.on_failed_send(failed, Instant::now()).await,
            Some(located) = located.recv() => core.on_located(located, Instant::now()).await,
            change = next_change(&mut changes) => core.on_document_change(change, Instant::now()).await,
            () = &mut timer => core.on_timer(Instant::now()).await,
            _ = &mut stop => break,
        }
        core.flush().await;
        if let Some(wait) = pacing.wait_after_turn(Instant::now()) {
            // Blocking on purpose: while the reactor runs, every arrival wakes the thread.
            std::thread::sleep(wait);
        }
    }
    transport.shutdown();
    Ok(())
}

/// The next XCAP document change; never ready without XCAP (or once the service is gone).
async fn next_change(
    changes: &mut Option<broadcast::Receiver<DocumentChange>>,
) -> Result<DocumentChange, RecvError> {
    let Some(receiver) = changes else {
        return std::future::pending().await;
    };
    let change = receiver.recv().await;
    if matches!(change, Err(RecvError::Closed)) {
        *changes = None;
    }
    change
}

/// Binds the configured XCAP listeners and serves them in background tasks. Binding
/// happens here, so a port that is in use fails the start instead of a background task.
/// Returns the service, whose document changes drive presence policy updates.
async fn start_xcap(
    config: &Config,
    store: &store::Store,
    tls_server_config: Option<Arc<rustls::ServerConfig>>,
) -> Result<Option<Arc<XcapService>>, BoxError> {
    if config.http.http.is_none() && config.http.https.is_none() {
        return Ok(None);
    }
    // Its own secret: SIP and HTTP nonces are never interchangeable.
    let secret = store
        .get_or_create_secret("http-digest-nonce", sip_auth::generate_secret)
        .await?;
    let nonces = Nonces::new(&secret).with_lifetime(config.auth.nonce_lifetime_secs);
    let xcap_config = XcapConfig {
        root: config.http.root.clone(),
        domains: config.domains.clone(),
        algorithms: config.auth.digest_algorithms(),
        ..XcapConfig::default()
    };
    let service = XcapService::new(
        xcap_config,
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        nonces,
    );
    if let Some(addr) = config.http.http {
        let listener = TcpListener::bind(addr).await?;
        info!(
            "XCAP root http://{}{}",
            listener.local_addr()?,
            service.root()
        );
        let router = service.router(false);
        tokio::spawn(async move {
            if let Err(e) = xcap_http::serve(listener, router).await {
                error!(error = %e, "XCAP over HTTP stopped");
            }
        });
    }
    if let (Some(addr), Some(tls)) = (config.http.https, tls_server_config) {
        let listener = TcpListener::bind(addr).await?;
        info!(
            "XCAP root https://{}{}",
            listener.local_addr()?,
            service.root()
        );
        let router = service.router(true);
        tokio::spawn(async move {
            if let Err(e) = xcap_http::serve_tls(listener, tls, router).await {
                error!(error = %e, "XCAP over HTTPS stopped");
            }
        });
    }
    Ok(Some(service))
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
