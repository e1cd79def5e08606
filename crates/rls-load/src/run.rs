//! The measured run against a prepared server, every phase bounded in time:
//!
//! 1. one initial PUBLISH per presentity at `--initial-pub-rate` (unmeasured), so list
//!    members have state to show;
//! 2. setup: every subscriber's list SUBSCRIBE at `--sub-rate`; done when each list is
//!    complete (every member active with a presence document) or failed. Measured: time
//!    from the SUBSCRIBE to the first full-state NOTIFY and to completeness, server CPU per
//!    list subscription;
//! 3. the publish window: PUBLISH modifications round-robin over the presentities at
//!    `--pub-rate` for `--seconds` over the publisher connections (a presentity whose
//!    previous PUBLISH is unanswered is skipped, so a slow server shows as skipped load),
//!    then until the NOTIFYs stop. Each answered PUBLISH is due as a resource update in
//!    every list that holds the presentity, unless the server folds it into a later change
//!    of the same presentity (allowed while a list's NOTIFY is pending); what must hold in
//!    any case is that every list ends with each member's latest published state. Measured:
//!    NOTIFYs/s, resource updates/s, publish-to-NOTIFY latency (the PUBLISH send time is
//!    stamped in the PIDF note and read back from the RLMI's part), RLMI version gaps,
//!    server CPU per NOTIFY and per resource update.
//!
//! Every NOTIFY is answered 200 at once.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use simple_payloads::rlmi::InstanceState;
use sip_message::{Message, Method};

use crate::layout::Layout;
use crate::link::{Handler, Link};
use crate::lists::{self, ListNotify, ListWatch, Sequence};
use crate::sip::{self, Endpoint, Owner};
use crate::stats;

/// What `rls-load run` is told.
#[derive(Debug, Clone)]
pub struct Plan {
    pub layout: Layout,
    pub server: SocketAddr,
    /// Connections carrying the list subscriptions, which are spread over them.
    pub connections: usize,
    /// Connections carrying the PUBLISHes.
    pub pub_connections: usize,
    /// List SUBSCRIBEs per second.
    pub sub_rate: f64,
    /// Initial PUBLISHes per second, before the subscriptions.
    pub initial_pub_rate: f64,
    pub pub_rate: f64,
    pub seconds: f64,
    pub expires: u32,
    pub setup_timeout: Duration,
    pub server_pid: Option<u32>,
}

/// How long the NOTIFY stream must be silent for a phase to count as drained.
const QUIET: Duration = Duration::from_secs(1);
/// Longest wait for the NOTIFYs of the publish window after the last PUBLISH.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// Everything the connections observe, shared with the driver.
#[derive(Default)]
struct State {
    lists: Vec<ListWatch>,
    first_full: usize,
    complete: usize,
    /// Instance states of the members in the first full-state NOTIFYs.
    initial_states: BTreeMap<&'static str, u64>,
    /// Largest body of a first NOTIFY, in bytes.
    first_body_max: usize,
    /// First NOTIFYs that were not full state (RFC 4662 §5.2 requires it).
    first_partial: u64,
    // Publishers, per presentity: entity tag, when the unanswered PUBLISH went out, next CSeq.
    etags: Vec<Option<String>>,
    in_flight: Vec<Option<Instant>>,
    next_cseq: Vec<u32>,
    /// Per presentity, the stamp (send time) of the PUBLISH in flight, and of the last one
    /// answered 2xx: the state every list holding the presentity must end with.
    sending_stamp: Vec<u64>,
    current_stamp: Vec<u64>,
    published: u64,
    pub_failures: BTreeMap<u16, u64>,
    /// Time from each PUBLISH to its final answer.
    pub_answer_us: Vec<u64>,
    /// Per presentity, the subscribers whose list holds it.
    lists_of: Vec<Vec<u32>>,
    /// Counting the publish window's figures (and what it owes).
    window: bool,
    expected_updates: u64,
    notifies: u64,
    full_state_notifies: u64,
    updates: u64,
    latencies_us: Vec<u64>,
    /// Over the whole run.
    version_gaps: u64,
    versions_behind: u64,
    retransmitted: u64,
    terminated: u64,
    unreadable: u64,
    unexpected: u64,
    closed_connections: u64,
    last_notify: Option<Instant>,
    probe_answered: bool,
}

impl State {
    fn settled(&self) -> bool {
        self.lists
            .iter()
            .all(|l| l.complete.is_some() || l.status >= 300 || l.terminated)
    }

    fn publishes_answered(&self) -> bool {
        self.in_flight.iter().all(Option::is_none)
    }

    /// Lists that hold presentity `j` and show its changes (their subscription is up).
    fn live_lists_of(&self, j: usize) -> u64 {
        self.lists_of[j]
            .iter()
            .filter(|&&i| {
                let list = &self.lists[i as usize];
                list.first_full.is_some() && !list.terminated
            })
            .count() as u64
    }
}

struct Shared {
    layout: Layout,
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

    /// Members of live lists whose last state seen is not their presentity's latest
    /// answered PUBLISH: lost updates, once the NOTIFYs have drained.
    fn stale_members(&self, state: &State) -> u64 {
        let mut stale = 0;
        for (i, list) in state.lists.iter().enumerate() {
            if list.first_full.is_none() || list.terminated {
                continue;
            }
            for (k, j) in self.layout.members(i).enumerate() {
                if list.stamps.get(k).copied().unwrap_or(0) != state.current_stamp[j] {
                    stale += 1;
                }
            }
        }
        stale
    }

    fn on_notify(&self, i: usize, message: &Message) -> Option<Bytes> {
        let now = Instant::now();
        let ok = Some(sip_message::response_to(message, 200, "OK", None).finish(None, b""));
        let cseq = message.cseq().ok()?.seq;
        // Parsed before taking the lock: the other connections need not wait for it.
        let body = message
            .other_header("Content-Type")
            .map(|content_type| lists::read(content_type, &message.body(), &self.layout));
        let terminated = message
            .subscription_state()
            .ok()
            .flatten()
            .is_some_and(|s| s.state.eq_ignore_ascii_case("terminated"));
        let mut guard = self.state();
        let state = &mut *guard;
        let Some(list) = state.lists.get_mut(i) else {
            state.unexpected += 1;
            return ok;
        };
        if list.last_cseq.is_some_and(|last| cseq <= last) {
            state.retransmitted += 1;
            return ok;
        }
        list.last_cseq = Some(cseq);
        if terminated {
            list.terminated = true;
            state.terminated += 1;
        }
        let notify: ListNotify = match body {
            Some(Ok(notify)) => notify,
            // A final NOTIFY may come without a body.
            None if terminated => return ok,
            _ => {
                state.unreadable += 1;
                return ok;
            }
        };
        let first = list.version.is_none();
        match list.sequence(notify.version) {
            Sequence::InOrder => {}
            Sequence::Gap(missing) => state.version_gaps += u64::from(missing),
            Sequence::Behind => state.versions_behind += 1,
        }
        if first {
            state.first_body_max = state.first_body_max.max(message.body().len());
            if notify.full_state {
                state.first_full += 1;
                for resource in &notify.resources {
                    let name = resource.state.map_or("no instance", InstanceState::as_str);
                    *state.initial_states.entry(name).or_default() += 1;
                }
            } else {
                state.first_partial += 1;
            }
        }
        let layout = &self.layout;
        let position = |j| layout.position(i, j);
        list.note_stamps(&notify, layout.list_size, position);
        if list.track(&notify, layout.list_size, position, now) {
            state.complete += 1;
        }
        state.last_notify = Some(now);
        if state.window {
            state.notifies += 1;
            if notify.full_state {
                state.full_state_notifies += 1;
            } else {
                let mark = self.micros(now);
                for resource in notify.resources.iter().filter(|r| r.has_document) {
                    state.updates += 1;
                    if let Some(sent) = resource.sent_micros {
                        state.latencies_us.push(mark.saturating_sub(sent));
                    }
                }
            }
        }
        ok
    }

    /// A final response; `etag` is its SIP-ETag.
    fn on_response(&self, owner: Option<Owner>, status: u16, etag: Option<String>) {
        let mut state = self.state();
        match owner {
            Some(Owner::Watcher(i)) if i < state.lists.len() => state.lists[i].status = status,
            Some(Owner::Probe) => state.probe_answered = true,
            Some(Owner::Publisher(j)) if j < state.in_flight.len() => {
                if let Some(sent) = state.in_flight[j].take() {
                    if state.window {
                        state.pub_answer_us.push(sent.elapsed().as_micros() as u64);
                    }
                }
                if status < 300 {
                    state.published += 1;
                    state.current_stamp[j] = state.sending_stamp[j];
                    state.etags[j] = etag;
                    if state.window {
                        state.expected_updates += state.live_lists_of(j);
                    }
                } else {
                    *state.pub_failures.entry(status).or_default() += 1;
                    // 412: the publication is gone; the next PUBLISH starts a new one.
                    state.etags[j] = None;
                }
            }
            _ => state.unexpected += 1,
        }
    }
}

impl Handler for Shared {
    fn on_message(&self, message: &Message) -> Option<Bytes> {
        let owner = message.call_id().ok().and_then(sip::owner);
        if message.is_request() {
            return match (message.method(), owner) {
                (Some(Method::Notify), Some(Owner::Watcher(i))) => self.on_notify(i, message),
                _ => {
                    self.state().unexpected += 1;
                    let reply = sip_message::response_to(
                        message,
                        481,
                        "Call/Transaction Does Not Exist",
                        None,
                    );
                    Some(reply.finish(None, b""))
                }
            };
        }
        let status = message.status().unwrap_or(0);
        if status >= 200 {
            let etag = message.other_header("SIP-ETag").map(str::to_owned);
            self.on_response(owner, status, etag);
        }
        None
    }

    fn on_garbage(&self) {
        self.state().unreadable += 1;
    }

    fn on_closed(&self) {
        self.state().closed_connections += 1;
    }
}

/// Polls `done` every 10 ms until it holds or `limit` passes; whether it held.
async fn wait_for(shared: &Shared, limit: Duration, done: impl Fn(&State) -> bool) -> bool {
    crate::loadgen::poll_until(limit, || done(&shared.state())).await
}

/// Waits until no NOTIFY arrived for [`QUIET`] since `since` (or `limit` passed), or `done`.
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

/// Sends one PUBLISH for presentity `j` unless its previous one is unanswered; whether it
/// went out.
fn publish(shared: &Shared, ep: &Endpoint, link: &Link, j: usize, expires: u32) -> bool {
    let (seq, etag, sent) = {
        let mut s = shared.state();
        let now = Instant::now();
        // TCP loses nothing: the answer will come, and a second PUBLISH with the same entity
        // tag would only draw a 412 and fork the publication.
        if s.in_flight[j].is_some() {
            return false;
        }
        s.in_flight[j] = Some(now);
        let seq = s.next_cseq[j];
        s.next_cseq[j] += 1;
        let sent = shared.micros(now);
        s.sending_stamp[j] = sent;
        (seq, s.etags[j].clone(), sent)
    };
    let request = sip::publish(ep, link.local, j, seq, etag.as_deref(), sent, expires);
    link.send(Bytes::from(request));
    true
}

/// Server CPU seconds so far, when its PID is known.
fn server_cpu(plan: &Plan) -> Option<f64> {
    plan.server_pid.and_then(stats::tree_cpu_seconds)
}

/// The figures of one run, for the report and the summary row.
#[derive(Debug, Default)]
pub struct Figures {
    pub lists: usize,
    pub complete: usize,
    pub first_full_ms: [Option<f64>; 2],
    pub complete_ms: [Option<f64>; 2],
    pub notifies_per_sec: Option<f64>,
    pub updates_per_sec: Option<f64>,
    pub delivered: Option<f64>,
    pub latency_ms: [Option<f64>; 2],
    pub version_gaps: u64,
    pub cpu_us_per_list: Option<f64>,
    pub cpu_us_per_notify: Option<f64>,
    pub cpu_us_per_update: Option<f64>,
    pub hwm_mb: Option<f64>,
    /// Everything went as it should.
    pub clean: bool,
}

/// p50 and p99 of `values` in milliseconds (sorted here).
fn p50_p99(values: &mut [u64], per_ms: f64) -> [Option<f64>; 2] {
    values.sort_unstable();
    [50.0, 99.0].map(|p| stats::percentile(values, p).map(|v| v as f64 / per_ms))
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.1} ms"))
}

pub async fn run(plan: Plan) -> Result<Figures, String> {
    let layout = plan.layout.clone();
    let shared = Arc::new(Shared {
        layout: layout.clone(),
        start: Instant::now(),
        state: Mutex::new(State {
            lists: (0..layout.subscribers)
                .map(|_| ListWatch::default())
                .collect(),
            etags: vec![None; layout.presentities],
            in_flight: vec![None; layout.presentities],
            next_cseq: vec![1; layout.presentities],
            sending_stamp: vec![0; layout.presentities],
            current_stamp: vec![0; layout.presentities],
            lists_of: layout.lists_of(),
            ..State::default()
        }),
    });
    let connect_deadline = Instant::now() + plan.setup_timeout;
    let mut links = Vec::with_capacity(plan.connections + plan.pub_connections);
    while links.len() < plan.connections + plan.pub_connections {
        match Link::open(plan.server, shared.clone()).await {
            Ok(link) => links.push(link),
            // A server started a moment ago may not listen yet.
            Err(_) if Instant::now() < connect_deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => return Err(format!("cannot connect to {}: {e}", plan.server)),
        }
    }
    let publishers = links.split_off(plan.connections);
    let subscribers = links;
    let ep = Endpoint {
        domain: &layout.domain,
        transport: "TCP",
        run: std::process::id(),
    };

    // 0. The server answers (it may have been started a moment ago).
    let mut n = 0;
    while !shared.state().probe_answered {
        if Instant::now() >= connect_deadline {
            return Err(format!("no answer to OPTIONS from {}", plan.server));
        }
        n += 1;
        let probe = sip::options(&ep, subscribers[0].local, n);
        subscribers[0].send(Bytes::from(probe));
        wait_for(&shared, Duration::from_millis(200), |s| s.probe_answered).await;
    }

    // 1. Initial state of every presentity.
    let initial_start = Instant::now();
    for j in 0..layout.presentities {
        crate::loadgen::pace(initial_start, j as u64, plan.initial_pub_rate).await;
        publish(
            &shared,
            &ep,
            &publishers[j % publishers.len()],
            j,
            plan.expires,
        );
    }
    wait_for(&shared, plan.setup_timeout, |s| s.publishes_answered()).await;
    let initial_failures = shared.state().pub_failures.clone();

    // 2. The list subscriptions.
    let rss_before = plan
        .server_pid
        .and_then(|pid| stats::process_kb(pid, "VmRSS:"));
    let cpu_before_setup = server_cpu(&plan);
    let setup_start = Instant::now();
    for i in 0..layout.subscribers {
        crate::loadgen::pace(setup_start, i as u64, plan.sub_rate).await;
        let link = &subscribers[i % subscribers.len()];
        shared.state().lists[i].subscribed_at = Some(Instant::now());
        let request = lists::subscribe(&ep, link.local, &layout, i, plan.expires);
        link.send(Bytes::from(request));
    }
    let settled = wait_for(&shared, plan.setup_timeout, State::settled).await;
    let setup_secs = setup_start.elapsed().as_secs_f64();
    let cpu_after_setup = server_cpu(&plan);
    let rss_after_setup = plan
        .server_pid
        .and_then(|pid| stats::process_kb(pid, "VmRSS:"));
    wait_quiet(&shared, Instant::now(), plan.setup_timeout, |_| false).await;

    // 3. The publish window.
    let mut skipped = 0u64;
    let published_before = shared.state().published;
    let cpu_before_window = server_cpu(&plan);
    // Our own CPU time too: a generator near one full core would be the bottleneck.
    let own_cpu_before = stats::tree_cpu_seconds(std::process::id());
    let window_start = Instant::now();
    shared.state().window = true;
    let publishes = (plan.pub_rate * plan.seconds).ceil() as u64;
    for k in 0..publishes {
        crate::loadgen::pace(window_start, k, plan.pub_rate).await;
        let j = (k % layout.presentities as u64) as usize;
        if !publish(
            &shared,
            &ep,
            &publishers[j % publishers.len()],
            j,
            plan.expires,
        ) {
            skipped += 1;
        }
    }
    let publish_end = Instant::now();
    wait_for(&shared, DRAIN_LIMIT, State::publishes_answered).await;
    wait_quiet(&shared, publish_end, DRAIN_LIMIT, |s| {
        s.updates >= s.expected_updates && shared.stale_members(s) == 0
    })
    .await;
    let cpu_after_window = server_cpu(&plan);
    let own_cpu_after = stats::tree_cpu_seconds(std::process::id());
    let hwm = plan
        .server_pid
        .and_then(|pid| stats::process_kb(pid, "VmHWM:"));

    let mut guard = shared.state();
    let s = &mut *guard;
    s.window = false;
    let stale = shared.stale_members(s);
    let mut figures = Figures {
        lists: layout.subscribers,
        complete: s.complete,
        version_gaps: s.version_gaps,
        hwm_mb: hwm.map(|kb| kb as f64 / 1024.0),
        ..Figures::default()
    };

    println!(
        "rls-load: {} lists of {} entries over {} presentities, server {} ({} + {} connections)",
        layout.subscribers,
        layout.list_size,
        layout.presentities,
        plan.server,
        plan.connections,
        plan.pub_connections
    );
    if !initial_failures.is_empty() {
        println!("initial    : PUBLISH failures {initial_failures:?}");
    }
    let mut failures: BTreeMap<u16, u64> = BTreeMap::new();
    for list in s.lists.iter().filter(|l| l.status >= 300) {
        *failures.entry(list.status).or_default() += 1;
    }
    let answered = s
        .lists
        .iter()
        .filter(|l| (200..300).contains(&l.status))
        .count();
    let mut first: Vec<u64> = s
        .lists
        .iter()
        .filter_map(|l| l.first_full)
        .map(|d| d.as_micros() as u64)
        .collect();
    let mut complete: Vec<u64> = s
        .lists
        .iter()
        .filter_map(|l| l.complete)
        .map(|d| d.as_micros() as u64)
        .collect();
    figures.first_full_ms = p50_p99(&mut first, 1000.0);
    figures.complete_ms = p50_p99(&mut complete, 1000.0);
    println!(
        "setup      : {answered} SUBSCRIBEs answered 2xx, failures {failures:?}, {} first NOTIFYs full state ({} not), {} lists complete{} in {setup_secs:.2} s",
        s.first_full,
        s.first_partial,
        s.complete,
        if settled { "" } else { " (timed out)" },
    );
    println!(
        "  member states in the first NOTIFYs: {:?}; largest body {:.0} kB",
        s.initial_states,
        s.first_body_max as f64 / 1024.0
    );
    println!(
        "  SUBSCRIBE -> first full-state NOTIFY p50 {}, p99 {}, max {}",
        ms(figures.first_full_ms[0]),
        ms(figures.first_full_ms[1]),
        ms(first.last().map(|&us| us as f64 / 1000.0)),
    );
    println!(
        "  SUBSCRIBE -> every member active with a document p50 {}, p99 {}, max {}",
        ms(figures.complete_ms[0]),
        ms(figures.complete_ms[1]),
        ms(complete.last().map(|&us| us as f64 / 1000.0)),
    );
    if let (Some(a), Some(b)) = (cpu_before_setup, cpu_after_setup) {
        let per_list = (b - a) * 1e6 / layout.subscribers as f64;
        figures.cpu_us_per_list = Some(per_list);
        println!(
            "  server CPU {:.2} s = {:.0} µs per list subscription ({:.1} µs per list entry)",
            b - a,
            per_list,
            per_list / layout.list_size as f64
        );
    }

    let window = s
        .last_notify
        .unwrap_or(publish_end)
        .max(publish_end)
        .duration_since(window_start)
        .as_secs_f64()
        .max(1e-3);
    let pub_secs = publish_end.duration_since(window_start).as_secs_f64();
    if publishes > 0 {
        let published = s.published - published_before;
        let unanswered = s.in_flight.iter().filter(|sent| sent.is_some()).count();
        println!(
            "publish    : offered {}/s for {pub_secs:.1} s: {published} answered 2xx = {:.0}/s, failures {:?}, {unanswered} unanswered, {skipped} skipped (previous one unanswered)",
            plan.pub_rate,
            published as f64 / pub_secs.max(1e-3),
            s.pub_failures,
        );
        let [p50, p99] = p50_p99(&mut s.pub_answer_us, 1000.0);
        println!("  PUBLISH -> answer p50 {}, p99 {}", ms(p50), ms(p99));
        if (layout.presentities as f64 / plan.pub_rate) < 0.5 {
            println!("  note: each presentity is published more often than twice a second, so some changes may fold into one batched update");
        }
        figures.notifies_per_sec = Some(s.notifies as f64 / window);
        figures.updates_per_sec = Some(s.updates as f64 / window);
        figures.delivered = Some(s.updates as f64 / s.expected_updates.max(1) as f64);
        println!(
            "NOTIFY     : {} in {window:.1} s = {:.0}/s ({} full state), {:.1} resources per NOTIFY",
            s.notifies,
            s.notifies as f64 / window,
            s.full_state_notifies,
            s.updates as f64 / s.notifies.max(1) as f64,
        );
        println!(
            "updates    : {} of {} expected (ratio {:.3}) = {:.0} resource updates/s",
            s.updates,
            s.expected_updates,
            s.updates as f64 / s.expected_updates.max(1) as f64,
            s.updates as f64 / window,
        );
        let members = layout.subscribers * layout.list_size;
        println!(
            "final state: {} of {members} list members show their latest PUBLISH{}",
            members as u64 - stale.min(members as u64),
            if stale == 0 && s.updates < s.expected_updates {
                " (so the missing updates were folded into later ones, not lost)"
            } else {
                ""
            },
        );
        let samples = s.latencies_us.len();
        figures.latency_ms = p50_p99(&mut s.latencies_us, 1000.0);
        println!(
            "latency    : publish -> NOTIFY p50 {}, p99 {}, max {} ({samples} samples)",
            ms(figures.latency_ms[0]),
            ms(figures.latency_ms[1]),
            ms(s.latencies_us.last().map(|&us| us as f64 / 1000.0)),
        );
        if let (Some(a), Some(b)) = (cpu_before_window, cpu_after_window) {
            let cpu = b - a;
            figures.cpu_us_per_notify = Some(cpu * 1e6 / s.notifies.max(1) as f64);
            figures.cpu_us_per_update = Some(cpu * 1e6 / s.updates.max(1) as f64);
            println!(
                "server CPU : {cpu:.2} s in {window:.1} s ({:.0}% of one core) = {:.0} µs per NOTIFY, {:.1} µs per resource update",
                100.0 * cpu / window,
                cpu * 1e6 / s.notifies.max(1) as f64,
                cpu * 1e6 / s.updates.max(1) as f64,
            );
        }
        if let (Some(a), Some(b)) = (own_cpu_before, own_cpu_after) {
            println!(
                "rls-load   : {:.2} s CPU in the window ({:.0}% of one core)",
                b - a,
                100.0 * (b - a) / window
            );
        }
    }
    println!(
        "versions   : {} missing in {} lists, {} NOTIFYs not above the last version",
        s.version_gaps,
        s.lists.iter().filter(|l| l.gaps > 0).count(),
        s.versions_behind
    );
    if let Some(hwm) = hwm {
        println!(
            "memory     : VmHWM {:.1} MB (RSS {:.1} MB before the subscriptions, {:.1} MB after them)",
            hwm as f64 / 1024.0,
            rss_before.unwrap_or(0) as f64 / 1024.0,
            rss_after_setup.unwrap_or(0) as f64 / 1024.0,
        );
    }
    let anomalies =
        s.terminated + s.unreadable + s.unexpected + s.closed_connections + s.retransmitted;
    if anomalies > 0 {
        println!(
            "other      : {} terminated, {} unreadable, {} unexpected, {} NOTIFY retransmissions, {} connections closed by the server",
            s.terminated, s.unreadable, s.unexpected, s.retransmitted, s.closed_connections
        );
    }
    figures.clean = settled
        && failures.is_empty()
        && initial_failures.is_empty()
        && s.first_partial == 0
        && s.pub_failures.is_empty()
        && s.publishes_answered()
        && s.version_gaps == 0
        && s.versions_behind == 0
        && s.full_state_notifies == 0
        && stale == 0
        && s.terminated + s.unreadable + s.unexpected + s.closed_connections == 0;
    Ok(figures)
}
