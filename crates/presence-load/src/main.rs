//! `presence-load`: a SIP presence load generator for one server on loopback.
//!
//! A few TCP connections (or UDP sockets) from 127.0.0.1 each carry many watcher
//! subscriptions and publishers, so the offered load is not capped by one client process
//! (a single SIPp saturates near 20,000 messages/s). The run, every phase bounded in time:
//!
//! 1. setup: `--watchers` SUBSCRIBEs (watcher i to presentity i mod `--presentities`) at
//!    `--sub-rate`; done when each has its initial NOTIFY (or a failure). Over UDP a
//!    SUBSCRIBE without any answer after 2 s is retransmitted, as a datagram dropped by a full
//!    socket buffer would be in RFC 3261;
//! 2. one initial PUBLISH per presentity, then a pause until the fan-out is quiet;
//! 3. the measured window: PUBLISH modifications (SIP-If-Match) round-robin over the
//!    presentities at `--pub-rate` for `--seconds`, then until the NOTIFYs stop; a presentity
//!    whose previous PUBLISH is still unanswered is skipped rather than queued, so a slow
//!    server shows as skipped load, not as a growing backlog (after 2 s without an answer the
//!    PUBLISH is counted unanswered and the next one goes out). A NOTIFY is expected for each
//!    answered PUBLISH and each watcher of that presentity that got its initial NOTIFY.
//!
//! Every NOTIFY is answered 200 at once. The report: SUBSCRIBE/s at setup, PUBLISH/s and
//! NOTIFY/s in the window, publish-to-NOTIFY latency p50/p99 (each PUBLISH carries its send
//! time), the server's CPU time per delivered NOTIFY (`--server-pid`: utime+stime of it and
//! its descendants over the window) and its peak RSS per 1,000 subscriptions (VmHWM, less
//! the RSS before setup; single-process servers only). `--summary` appends these figures as
//! one row of a table for side-by-side comparison. Subscriptions are left to expire: the server is meant to be
//! stopped after the run. Exit status 1 when anything failed, 2 when the run could not start.
//!
//! ```text
//! presence-load --server 127.0.0.1:5091 --transport tcp --connections 16 \
//!     --watchers 10000 --presentities 1000 --pub-rate 500 --seconds 20 --server-pid PID
//! ```

mod loadgen;
mod sip;
mod stats;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use sip_message::{Limits, Message, Method, StreamDecoder, StreamItem};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;

use sip::{Endpoint, Owner};

#[derive(Debug, Parser)]
#[command(
    name = "presence-load",
    about = "SIP presence load generator (loopback only)"
)]
struct Args {
    /// The server's SIP address; must be a loopback address.
    #[arg(long, default_value = "127.0.0.1:5060")]
    server: SocketAddr,
    #[arg(long, value_enum, default_value = "udp")]
    transport: Transport,
    /// TCP connections or UDP sockets; watchers and publishers are spread over them.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    #[arg(long, default_value_t = 10_000)]
    watchers: usize,
    #[arg(long, default_value_t = 1_000)]
    presentities: usize,
    /// New SUBSCRIBEs (and initial PUBLISHes) per second at setup.
    #[arg(long, default_value_t = 5_000.0)]
    sub_rate: f64,
    /// PUBLISH modifications per second offered in the measured window.
    #[arg(long, default_value_t = 500.0)]
    pub_rate: f64,
    /// Length of the measured window's publishing, in seconds.
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// The server's PID, for its CPU time and peak memory.
    #[arg(long)]
    server_pid: Option<u32>,
    /// SIP domain of every URI (default: the server's IP address, as the SIPp scenarios use).
    #[arg(long)]
    domain: Option<String>,
    /// Expires of SUBSCRIBE and PUBLISH.
    #[arg(long, default_value_t = 3600)]
    expires: u32,
    /// Longest wait for each of the setup phases, in seconds.
    #[arg(long, default_value_t = 60.0)]
    setup_timeout: f64,
    /// Appends the run's figures to this file as one tab-separated row (a new file gets the
    /// column names first), so several runs can be tabulated side by side.
    #[arg(long)]
    summary: Option<std::path::PathBuf>,
    /// Name of the run in the summary row.
    #[arg(long, default_value = "run")]
    label: String,
}

/// The columns of a `--summary` row.
const SUMMARY_COLUMNS: [&str; 10] = [
    "run",
    "transport",
    "SUBSCRIBE/s setup",
    "NOTIFY/s",
    "delivered",
    "µs CPU / NOTIFY",
    "latency p50 ms",
    "latency p99 ms",
    "MB / 1,000 subs",
    "VmHWM MB",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Transport {
    Udp,
    Tcp,
}

/// Receive buffer asked for on each UDP socket (the kernel caps it at net.core.rmem_max).
const RECEIVE_BUFFER: usize = 4 * 1024 * 1024;
/// How long the NOTIFY stream must be silent for a phase to count as drained.
const QUIET: Duration = Duration::from_secs(1);
/// Longest wait for the NOTIFYs of the measured window after the last PUBLISH.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);
/// A request unanswered this long is sent again (SUBSCRIBE over UDP, as a retransmission)
/// or given up (PUBLISH: the next one for that presentity is a new transaction).
const LOST: Duration = Duration::from_secs(2);

/// Everything the connections observe, shared with the driver.
#[derive(Default)]
struct State {
    /// Per watcher: final status of its SUBSCRIBE, 0 before one arrived (UDP retransmissions
    /// of the request bring the same answer again, which must not count twice).
    sub_status: Vec<u16>,
    /// Per watcher: CSeq of the last NOTIFY seen, None before the initial one.
    last_cseq: Vec<Option<u32>>,
    initial: usize,
    last_initial: Option<Instant>,
    /// Per presentity: watchers that got their initial NOTIFY (watcher w watches w mod M).
    watchers_of: Vec<u64>,
    /// NOTIFYs due for the PUBLISHes answered so far: each one reaches its presentity's
    /// watchers.
    expected: u64,
    /// Per presentity: entity tag of the publication, when the unanswered PUBLISH was
    /// sent, next CSeq.
    etags: Vec<Option<String>>,
    in_flight: Vec<Option<Instant>>,
    next_cseq: Vec<u32>,
    published: u64,
    pub_failures: BTreeMap<u16, u64>,
    /// PUBLISHes given up on after [`LOST`] without an answer (UDP only, in practice).
    pub_lost: u64,
    notifies: u64,
    retransmitted: u64,
    latencies_us: Vec<u64>,
    last_notify: Option<Instant>,
    unexpected: u64,
    closed_connections: u64,
    probe_answered: bool,
}

impl State {
    fn subscribed(&self) -> usize {
        self.sub_status
            .iter()
            .filter(|&&c| (200..300).contains(&c))
            .count()
    }

    fn sub_failures(&self) -> BTreeMap<u16, u64> {
        let mut failures = BTreeMap::new();
        for &code in self.sub_status.iter().filter(|&&c| c >= 300) {
            *failures.entry(code).or_default() += 1;
        }
        failures
    }

    /// Every watcher has its initial NOTIFY or a failure.
    fn setup_done(&self) -> bool {
        let failed = self.sub_status.iter().filter(|&&c| c >= 300).count();
        self.initial + failed >= self.sub_status.len()
    }

    /// No PUBLISH awaits its answer, except those given up on.
    fn publishes_settled(&self, now: Instant) -> bool {
        self.in_flight
            .iter()
            .all(|sent| sent.is_none_or(|at| now.duration_since(at) >= LOST))
    }
}

struct Shared {
    /// Origin of the timestamps embedded in PUBLISH bodies.
    start: Instant,
    state: Mutex<State>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere cannot leave the counters inconsistent in a way that matters
        // for a report, so a poisoned lock is simply taken over.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn micros(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.start).as_micros() as u64
    }

    /// Books one message from the server; returns the response to send, if any.
    fn on_message(&self, message: &Message) -> Option<Bytes> {
        let now = Instant::now();
        let owner = message.call_id().ok().and_then(sip::owner);
        let mut state = self.state();
        if message.is_request() {
            let reply = |code, reason| {
                Some(sip_message::response_to(message, code, reason, None).finish(None, b""))
            };
            let (Some(Method::Notify), Some(Owner::Watcher(w)), Ok(cseq)) =
                (message.method(), owner, message.cseq())
            else {
                state.unexpected += 1;
                return reply(481, "Call/Transaction Does Not Exist");
            };
            match state.last_cseq.get(w).copied() {
                None => state.unexpected += 1,
                Some(None) => {
                    state.last_cseq[w] = Some(cseq.seq);
                    let presentities = state.watchers_of.len();
                    state.watchers_of[w % presentities] += 1;
                    state.initial += 1;
                    state.last_initial = Some(now);
                }
                Some(Some(last)) if cseq.seq <= last => state.retransmitted += 1,
                Some(Some(_)) => {
                    state.last_cseq[w] = Some(cseq.seq);
                    state.notifies += 1;
                    state.last_notify = Some(now);
                    if let Some(sent) = sip::sent_micros(&message.body()) {
                        let latency = self.micros(now).saturating_sub(sent);
                        state.latencies_us.push(latency);
                    }
                }
            }
            return reply(200, "OK");
        }
        let status = message.status().unwrap_or(0);
        if status < 200 {
            return None;
        }
        match owner {
            Some(Owner::Watcher(w)) if w < state.sub_status.len() => state.sub_status[w] = status,
            Some(Owner::Probe) => state.probe_answered = true,
            Some(Owner::Publisher(p)) if p < state.in_flight.len() => {
                state.in_flight[p] = None;
                if status < 300 {
                    state.published += 1;
                    state.expected += state.watchers_of[p];
                    state.etags[p] = message.other_header("SIP-ETag").map(str::to_owned);
                } else {
                    *state.pub_failures.entry(status).or_default() += 1;
                    // 412: the publication is gone; the next PUBLISH starts a new one.
                    state.etags[p] = None;
                }
            }
            _ => state.unexpected += 1,
        }
        None
    }
}

/// One connection (or UDP socket) to the server, shared by many watchers and publishers.
#[derive(Clone)]
struct Link {
    local: SocketAddr,
    kind: LinkKind,
}

#[derive(Clone)]
enum LinkKind {
    Udp(Arc<UdpSocket>),
    /// To the writer task, which batches whatever is queued into one write.
    Tcp(mpsc::UnboundedSender<Bytes>),
}

impl Link {
    async fn send(&self, data: Bytes) {
        match &self.kind {
            LinkKind::Udp(socket) => {
                // Loopback datagrams are not lost on the way; a failed send means a full
                // socket buffer, which the server's retransmissions (or our counts) reveal.
                let _ = socket.send(&data).await;
            }
            LinkKind::Tcp(queue) => {
                let _ = queue.send(data);
            }
        }
    }

    async fn open(
        transport: Transport,
        server: SocketAddr,
        shared: Arc<Shared>,
    ) -> std::io::Result<Link> {
        match transport {
            Transport::Udp => {
                let socket = UdpSocket::bind("127.0.0.1:0").await?;
                // A burst of NOTIFYs must not overflow the default buffer while this one
                // thread is busy elsewhere: every datagram lost there would be counted
                // against the server.
                socket2::SockRef::from(&socket).set_recv_buffer_size(RECEIVE_BUFFER)?;
                let socket = Arc::new(socket);
                socket.connect(server).await?;
                let link = Link {
                    local: socket.local_addr()?,
                    kind: LinkKind::Udp(socket.clone()),
                };
                let reply_link = link.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 65_536];
                    loop {
                        match socket.recv(&mut buf).await {
                            Ok(n) => {
                                let data = Bytes::copy_from_slice(&buf[..n]);
                                deliver(&shared, &reply_link, data).await;
                            }
                            // The ICMP answer to a datagram sent before the server listened.
                            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                            Err(_) => break,
                        }
                    }
                });
                Ok(link)
            }
            Transport::Tcp => {
                let stream = TcpStream::connect(server).await?;
                stream.set_nodelay(true)?;
                let local = stream.local_addr()?;
                let (mut reader, writer) = stream.into_split();
                let queue = loadgen::batched_writer(writer);
                let link = Link {
                    local,
                    kind: LinkKind::Tcp(queue),
                };
                let reply_link = link.clone();
                tokio::spawn(async move {
                    let mut decoder = StreamDecoder::new(Limits::default());
                    loop {
                        match reader.read_buf(decoder.buffer_mut()).await {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {}
                        }
                        loop {
                            match decoder.next_item() {
                                Ok(Some(StreamItem::Message(data))) => {
                                    deliver(&shared, &reply_link, data).await
                                }
                                Ok(Some(StreamItem::Ping)) => {
                                    reply_link.send(Bytes::from_static(b"\r\n")).await
                                }
                                Ok(Some(StreamItem::Pong)) => {}
                                Ok(None) => break,
                                Err(_) => {
                                    shared.state().unexpected += 1;
                                    return;
                                }
                            }
                        }
                    }
                    shared.state().closed_connections += 1;
                });
                Ok(link)
            }
        }
    }
}

async fn deliver(shared: &Shared, link: &Link, data: Bytes) {
    let reply = match Message::parse(data, &Limits::default()) {
        Ok(message) => shared.on_message(&message),
        Err(_) => {
            shared.state().unexpected += 1;
            None
        }
    };
    if let Some(reply) = reply {
        link.send(reply).await;
    }
}

/// `value` with `decimals` digits after the point, `-` when it is unknown.
fn fixed(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.decimals$}"))
}

/// Polls `done` every 10 ms until it holds or `limit` passes; whether it held.
async fn wait_for(shared: &Shared, limit: Duration, done: impl Fn(&State) -> bool) -> bool {
    loadgen::poll_until(limit, || done(&shared.state())).await
}

/// Waits until no NOTIFY arrived for [`QUIET`] (or `limit` passed), or `done` holds.
async fn wait_quiet(
    shared: &Shared,
    since: Instant,
    limit: Duration,
    done: impl Fn(&State) -> bool,
) {
    wait_for(shared, limit, |s| {
        done(s) || s.last_notify.unwrap_or(since).max(since).elapsed() >= QUIET
    })
    .await;
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(problem) = check(&args) {
        eprintln!("presence-load: {problem}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("presence-load: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(problem) => {
            eprintln!("presence-load: {problem}");
            ExitCode::from(2)
        }
    }
}

fn check(args: &Args) -> Result<(), String> {
    if !args.server.ip().is_loopback() {
        return Err(format!("{} is not a loopback address", args.server));
    }
    if args.connections == 0 || args.watchers == 0 || args.presentities == 0 {
        return Err("--connections, --watchers and --presentities must be positive".into());
    }
    if !(args.sub_rate > 0.0 && args.pub_rate > 0.0 && args.seconds > 0.0) {
        return Err("--sub-rate, --pub-rate and --seconds must be positive".into());
    }
    Ok(())
}

/// One run; Ok(false) when something failed along the way.
async fn run(args: Args) -> Result<bool, String> {
    let shared = Arc::new(Shared {
        start: Instant::now(),
        state: Mutex::new(State {
            last_cseq: vec![None; args.watchers],
            etags: vec![None; args.presentities],
            sub_status: vec![0; args.watchers],
            in_flight: vec![None; args.presentities],
            watchers_of: vec![0; args.presentities],
            next_cseq: vec![1; args.presentities],
            ..State::default()
        }),
    });
    let setup_limit = Duration::from_secs_f64(args.setup_timeout);
    let connect_deadline = Instant::now() + setup_limit;
    let mut links = Vec::with_capacity(args.connections);
    while links.len() < args.connections {
        match Link::open(args.transport, args.server, shared.clone()).await {
            Ok(link) => links.push(link),
            // A server started a moment ago may not listen yet.
            Err(_) if Instant::now() < connect_deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => return Err(format!("cannot connect to {}: {e}", args.server)),
        }
    }
    let domain = args
        .domain
        .clone()
        .unwrap_or_else(|| args.server.ip().to_string());
    let ep = Endpoint {
        domain: &domain,
        transport: match args.transport {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        },
        run: std::process::id(),
    };
    // 0. The server answers (it may have been started a moment ago).
    let probe_start = Instant::now();
    let mut n = 0;
    while !shared.state().probe_answered {
        if probe_start.elapsed() > setup_limit {
            return Err(format!("no answer to OPTIONS from {}", args.server));
        }
        n += 1;
        links[0]
            .send(Bytes::from(sip::options(&ep, links[0].local, n)))
            .await;
        wait_for(&shared, Duration::from_millis(200), |s| s.probe_answered).await;
    }
    let rss_before = args
        .server_pid
        .and_then(|pid| stats::process_kb(pid, "VmRSS:"));

    // 1. Subscriptions.
    let setup_start = Instant::now();
    for w in 0..args.watchers {
        loadgen::pace(setup_start, w as u64, args.sub_rate).await;
        let link = &links[w % links.len()];
        let request = sip::subscribe(&ep, link.local, w, w % args.presentities, args.expires);
        link.send(Bytes::from(request)).await;
    }
    let deadline = Instant::now() + setup_limit;
    let mut resent = 0u64;
    let complete = loop {
        if wait_for(&shared, LOST, State::setup_done).await {
            break true;
        }
        if Instant::now() >= deadline {
            break false;
        }
        if args.transport == Transport::Udp {
            // Datagrams dropped by a full socket buffer: retransmit (same branch) what has
            // had no answer at all.
            let silent: Vec<usize> = {
                let s = shared.state();
                (0..args.watchers)
                    .filter(|&w| s.sub_status[w] == 0 && s.last_cseq[w].is_none())
                    .collect()
            };
            for w in silent {
                let link = &links[w % links.len()];
                let request =
                    sip::subscribe(&ep, link.local, w, w % args.presentities, args.expires);
                link.send(Bytes::from(request)).await;
                resent += 1;
            }
        }
    };
    let (subscribed, sub_failures, initial, setup_secs) = {
        let s = shared.state();
        let end = s.last_initial.unwrap_or(setup_start);
        (
            s.subscribed(),
            s.sub_failures(),
            s.initial,
            end.duration_since(setup_start).as_secs_f64(),
        )
    };

    // 2. One publication per presentity; its fan-out is not measured.
    let initial_unanswered;
    let initial_start = Instant::now();
    for p in 0..args.presentities {
        loadgen::pace(initial_start, p as u64, args.sub_rate).await;
        let link = &links[p % links.len()];
        shared.state().in_flight[p] = Some(Instant::now());
        shared.state().next_cseq[p] = 2;
        let request = sip::publish(
            &ep,
            link.local,
            p,
            1,
            None,
            shared.micros(Instant::now()),
            args.expires,
        );
        link.send(Bytes::from(request)).await;
    }
    wait_for(&shared, setup_limit, |s| {
        s.publishes_settled(Instant::now())
    })
    .await;
    wait_quiet(&shared, Instant::now(), setup_limit, |_| false).await;

    // 3. The measured window.
    let before = {
        let mut s = shared.state();
        s.latencies_us.clear();
        // An initial PUBLISH still unanswered is a setup failure, reported as such; left in
        // place it would count as a lost PUBLISH of the window.
        initial_unanswered = s.in_flight.iter().filter(|sent| sent.is_some()).count();
        s.in_flight.fill(None);
        (s.published, s.notifies, s.retransmitted, s.expected)
    };
    let cpu_before = args.server_pid.and_then(stats::tree_cpu_seconds);
    let window_start = Instant::now();
    let publishes = (args.pub_rate * args.seconds).ceil() as u64;
    let mut skipped = 0u64;
    for k in 0..publishes {
        loadgen::pace(window_start, k, args.pub_rate).await;
        let p = (k % args.presentities as u64) as usize;
        let next = {
            let mut s = shared.state();
            let now = Instant::now();
            match s.in_flight[p] {
                Some(sent) if now.duration_since(sent) < LOST => None,
                lost => {
                    if lost.is_some() {
                        s.pub_lost += 1;
                    }
                    s.in_flight[p] = Some(now);
                    let seq = s.next_cseq[p];
                    s.next_cseq[p] += 1;
                    Some((seq, s.etags[p].clone()))
                }
            }
        };
        let Some((seq, etag)) = next else {
            skipped += 1;
            continue;
        };
        let link = &links[p % links.len()];
        let now = shared.micros(Instant::now());
        let request = sip::publish(&ep, link.local, p, seq, etag.as_deref(), now, args.expires);
        link.send(Bytes::from(request)).await;
    }
    let publish_end = Instant::now();
    wait_for(&shared, LOST, |s| s.publishes_settled(Instant::now())).await;
    let all_delivered = |s: &State| s.notifies - before.1 >= s.expected - before.3;
    wait_quiet(&shared, publish_end, DRAIN_LIMIT, all_delivered).await;
    let cpu_after = args.server_pid.and_then(stats::tree_cpu_seconds);
    let cpu_span = window_start.elapsed();
    // A multi-process server (Kamailio) shares memory between its processes, so no one
    // process's peak stands for the server's; the shared harness reports PSS sums for those.
    let hwm = args
        .server_pid
        .filter(|&pid| stats::children(pid).is_empty())
        .and_then(|pid| stats::process_kb(pid, "VmHWM:"));

    let mut s = shared.state();
    let published = s.published - before.0;
    let notifies = s.notifies - before.1;
    let retransmitted = s.retransmitted - before.2;
    let window = s
        .last_notify
        .unwrap_or(publish_end)
        .max(publish_end)
        .duration_since(window_start);
    let pub_secs = publish_end.duration_since(window_start).as_secs_f64();
    s.latencies_us.sort_unstable();
    let ms = |p: f64| {
        stats::percentile(&s.latencies_us, p)
            .map_or("-".into(), |us| format!("{:.2} ms", us as f64 / 1000.0))
    };

    println!(
        "presence-load: {:?} to {}, {} connections, {} watchers / {} presentities",
        args.transport, args.server, args.connections, args.watchers, args.presentities
    );
    println!(
        "setup      : {subscribed} subscribed, {initial} initial NOTIFYs, failures {sub_failures:?}{}, {resent} SUBSCRIBEs retransmitted, in {setup_secs:.2} s = {:.0} SUBSCRIBE/s",
        if complete { "" } else { " (timed out)" },
        initial as f64 / setup_secs.max(1e-3),
    );
    println!(
        "initial    : {} of {} initial PUBLISHes answered",
        args.presentities - initial_unanswered,
        args.presentities
    );
    println!(
        "publish    : offered {}/s for {pub_secs:.1} s: {published} answered 2xx = {:.0}/s, failures {:?}, {} unanswered, {skipped} skipped (previous one unanswered)",
        args.pub_rate,
        published as f64 / pub_secs.max(1e-3),
        s.pub_failures,
        s.pub_lost,
    );
    let expected = s.expected - before.3;
    println!(
        "NOTIFY     : {notifies} delivered of {expected} expected (ratio {:.3}) in {:.1} s = {:.0}/s; {retransmitted} retransmissions",
        notifies as f64 / expected.max(1) as f64,
        window.as_secs_f64(),
        notifies as f64 / window.as_secs_f64().max(1e-3),
    );
    println!(
        "latency    : publish->NOTIFY p50 {}, p99 {}, max {} ({} samples)",
        ms(50.0),
        ms(99.0),
        ms(100.0),
        s.latencies_us.len()
    );
    let cpu_per_notify = match (cpu_before, cpu_after) {
        (Some(a), Some(b)) => {
            let cpu = b - a;
            let per_notify = cpu * 1e6 / (notifies.max(1) as f64);
            println!(
                "server CPU : {cpu:.2} s in {:.1} s ({:.0}% of one core) = {per_notify:.1} µs per delivered NOTIFY",
                cpu_span.as_secs_f64(),
                100.0 * cpu / cpu_span.as_secs_f64().max(1e-3),
            );
            Some(per_notify)
        }
        _ => None,
    };
    if hwm.is_none() && args.server_pid.is_some() {
        println!("memory     : not measured (a multi-process server; see the harness's PSS)");
    }
    let per_thousand = hwm.map(|hwm| {
        let base = rss_before.unwrap_or(0);
        let per_thousand =
            hwm.saturating_sub(base) as f64 / 1024.0 / (subscribed.max(1) as f64 / 1000.0);
        println!(
            "memory     : VmHWM {:.1} MB (RSS before setup {:.1} MB) = {per_thousand:.2} MB per 1,000 subscriptions",
            hwm as f64 / 1024.0,
            base as f64 / 1024.0,
        );
        per_thousand
    });
    if let Some(path) = &args.summary {
        let ms = |p: f64| stats::percentile(&s.latencies_us, p).map(|us| us as f64 / 1000.0);
        let row = [
            args.label.clone(),
            format!("{:?}", args.transport).to_ascii_lowercase(),
            fixed(Some(initial as f64 / setup_secs.max(1e-3)), 0),
            fixed(Some(notifies as f64 / window.as_secs_f64().max(1e-3)), 0),
            fixed(Some(notifies as f64 / expected.max(1) as f64), 3),
            fixed(cpu_per_notify, 1),
            fixed(ms(50.0), 2),
            fixed(ms(99.0), 2),
            fixed(per_thousand, 2),
            fixed(hwm.map(|kb| kb as f64 / 1024.0), 1),
        ];
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut file| {
                use std::io::Write;
                // A new file starts with the column names.
                if file.metadata()?.len() == 0 {
                    writeln!(file, "{}", SUMMARY_COLUMNS.join("\t"))?;
                }
                writeln!(file, "{}", row.join("\t"))
            });
        if let Err(error) = appended {
            eprintln!(
                "presence-load: cannot append to {}: {error}",
                path.display()
            );
        }
    }
    if s.unexpected + s.closed_connections > 0 {
        println!(
            "other      : {} unexpected messages, {} connections closed by the server",
            s.unexpected, s.closed_connections
        );
    }
    Ok(complete
        && sub_failures.is_empty()
        && initial_unanswered == 0
        && s.pub_failures.is_empty()
        && s.pub_lost == 0
        && s.unexpected == 0
        && s.closed_connections == 0
        && notifies >= expected)
}
