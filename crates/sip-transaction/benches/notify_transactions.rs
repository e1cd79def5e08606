//! Client transactions of a UDP NOTIFY fan-out (RFC 3261 §17.1.2): each NOTIFY starts a
//! non-INVITE client transaction, its 200 completes it, and Timer K keeps it for T4 after
//! that, so at 15,000 NOTIFY/s some 75,000 are live at once. Timed per NOTIFY, in that
//! steady state: starting the transaction, matching its 200 (a cloned pre-parsed response)
//! and the timer runs the server makes every 10 ms.
//!
//! `cargo bench -p sip-transaction --bench notify_transactions`

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sip_message::{Limits, Message, Method};
use sip_transaction::{ClientEvent, Config, TransactionLayer};

const NOTIFY_RATE: u32 = 15_000;
/// Distinct branches, reused in turn: more than are ever live at once (rate × T4).
const BRANCHES: usize = 100_000;
/// How often the server's event loop runs due timers.
const TIMER_SLACK: Duration = Duration::from_millis(10);

const NOTIFY: &[u8] = b"NOTIFY sip:watcher@192.0.2.10:5060 SIP/2.0\r\n\
    Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKbench\r\nMax-Forwards: 70\r\n\
    From: <sip:pres0@example.com>;tag=n1\r\nTo: <sip:watcher@example.com>;tag=w1\r\n\
    Call-ID: watch-1@192.0.2.10\r\nCSeq: 2 NOTIFY\r\nEvent: presence\r\n\
    Subscription-State: active;expires=3600\r\nContent-Length: 0\r\n\r\n";

fn ok_for(branch: &str) -> Message {
    let text = format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch={branch}\r\n\
         From: <sip:pres0@example.com>;tag=n1\r\nTo: <sip:watcher@example.com>;tag=w1\r\n\
         Call-ID: watch-1@192.0.2.10\r\nCSeq: 2 NOTIFY\r\nContent-Length: 0\r\n\r\n"
    );
    Message::parse(Bytes::from(text), &Limits::default()).expect("valid response")
}

struct Load {
    layer: TransactionLayer<u32>,
    exchanges: Vec<(String, Message)>,
    next: usize,
    now: Instant,
    timers_due: Instant,
}

impl Load {
    fn new() -> Load {
        let now = Instant::now();
        Load {
            layer: TransactionLayer::new(Config::default()),
            exchanges: (0..BRANCHES)
                .map(|n| {
                    let branch = format!("z9hG4bKn{n:08x}");
                    let ok = ok_for(&branch);
                    (branch, ok)
                })
                .collect(),
            next: 0,
            now,
            timers_due: now,
        }
    }

    fn notify_answered(&mut self) {
        let (branch, ok) = &self.exchanges[self.next % BRANCHES];
        self.next += 1;
        let request = Bytes::from_static(NOTIFY);
        let (_, send) = self
            .layer
            .send_built(
                Method::Notify,
                branch.as_str().into(),
                request,
                7,
                false,
                self.now,
            )
            .expect("transaction starts");
        black_box(send);
        let answered = self.layer.on_response(ok.clone(), self.now);
        assert!(matches!(answered, ClientEvent::Response { .. }));
        self.now += Duration::from_secs(1) / NOTIFY_RATE;
        if self.now >= self.timers_due {
            black_box(self.layer.on_timer(self.now));
            self.timers_due = self.now + TIMER_SLACK;
        }
    }
}

fn notify_transactions(c: &mut Criterion) {
    let mut load = Load::new();
    // Into the steady state: T4 of NOTIFYs lingering, and then some.
    for _ in 0..NOTIFY_RATE * 6 {
        load.notify_answered();
    }
    let live = load.layer.client_count();
    assert!(live > 70_000, "{live} transactions live");
    let mut group = c.benchmark_group("notify_client_transactions");
    group.throughput(Throughput::Elements(1));
    group.bench_function("udp_15000_per_s", |b| {
        b.iter_custom(|iterations| {
            let start = Instant::now();
            for _ in 0..iterations {
                load.notify_answered();
            }
            start.elapsed()
        })
    });
    group.finish();
}

criterion_group!(benches, notify_transactions);
criterion_main!(benches);
