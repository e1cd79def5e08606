//! NOTIFY fan-out of the sans-IO presence agent (RFC 3903 PUBLISH in, RFC 6665 NOTIFYs out):
//! one PUBLISH modifying a presentity watched by N allowed watchers, the N NOTIFYs built, and
//! their 200 responses taken back. Only the agent's own work is timed; the watchers' 200s
//! are built outside the measured region.
//!
//! `cargo bench -p presence --bench fanout` (add `-- --quick` for a short run).

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use presence::{Config, Notify, Policy, PresenceAgent};
use rand::{rngs::StdRng, SeedableRng};
use sip_message::{HeaderName, Limits, Message};
use sip_subscription::{Flow, SubId};

type Agent = PresenceAgent<u32>;

const PRESENTITY: &str = "sip:pres0@example.com";

const ALLOW_ALL: &str = "<cp:ruleset xmlns:cp=\"urn:ietf:params:xml:ns:common-policy\" \
    xmlns:pr=\"urn:ietf:params:xml:ns:pres-rules\"><cp:rule id=\"all\"><cp:conditions/>\
    <cp:actions><pr:sub-handling>allow</pr:sub-handling></cp:actions></cp:rule></cp:ruleset>";

fn parse(text: String) -> Message {
    Message::parse(Bytes::from(text), &Limits::default()).expect("valid message")
}

fn pidf(seq: u64) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" \
         xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" \
         xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" entity=\"{PRESENTITY}\">\
         <tuple id=\"t1\"><status><basic>open</basic></status>\
         <contact>sip:pres0@192.0.2.1:5060</contact></tuple>\
         <dm:person id=\"p1\"><rpid:activities><rpid:busy/></rpid:activities>\
         <dm:note>note {seq}</dm:note></dm:person></presence>"
    )
}

fn publish(seq: u64, etag: Option<&str>) -> Message {
    let body = pidf(seq);
    let if_match = etag.map_or(String::new(), |e| format!("SIP-If-Match: {e}\r\n"));
    parse(format!(
        "PUBLISH {PRESENTITY} SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bKp{seq}\r\n\
         From: <{PRESENTITY}>;tag=pub\r\nTo: <{PRESENTITY}>\r\nCall-ID: publisher\r\n\
         CSeq: {seq} PUBLISH\r\nMax-Forwards: 70\r\nEvent: presence\r\nExpires: 3600\r\n\
         {if_match}Content-Type: application/pidf+xml\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ))
}

fn subscribe(watcher: usize) -> Message {
    parse(format!(
        "SUBSCRIBE {PRESENTITY} SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.2:5060;branch=z9hG4bKs{watcher}\r\n\
         From: <sip:watcher{watcher}@example.com>;tag=w{watcher}\r\nTo: <{PRESENTITY}>\r\n\
         Call-ID: watch-{watcher}@192.0.2.2\r\nCSeq: 1 SUBSCRIBE\r\nMax-Forwards: 70\r\n\
         Contact: <sip:watcher{watcher}@192.0.2.2:5060;transport=tcp>\r\nEvent: presence\r\n\
         Expires: 3600\r\nAccept: application/pidf+xml\r\nContent-Length: 0\r\n\r\n"
    ))
}

fn ok_to(notify: &Notify<u32>) -> Message {
    let request = notify
        .request()
        .expect("the agent writes parseable NOTIFYs");
    let ok = sip_message::response_to(&request, 200, "OK", Some("wt")).finish(None, b"");
    Message::parse(ok, &Limits::default()).expect("response")
}

/// An agent with `watchers` active subscriptions to one published presentity, and the
/// ETag of its publication.
fn watched_presentity(watchers: usize, now: Instant) -> (Agent, String) {
    let mut agent = PresenceAgent::new(Config::new(60, 3600, 3600), StdRng::seed_from_u64(1));
    agent.set_policy(
        PRESENTITY,
        Policy::from_documents(Some(ALLOW_ALL.as_bytes()), None, None),
        0,
        now,
    );
    for watcher in 0..watchers {
        let flow = Flow {
            dest: watcher as u32,
            reliable: true,
            via: "SIP/2.0/TCP 192.0.2.100:5060".into(),
            contact: "<sip:192.0.2.100:5060;transport=tcp>".into(),
        };
        let identity = format!("sip:watcher{watcher}@example.com");
        let answer = agent.on_subscribe(&subscribe(watcher), flow, &identity, now);
        answer_all(&mut agent, answer.notifies, now);
    }
    let answer = agent.on_publish(&publish(0, None), PRESENTITY, now);
    let etag = etag_of(&answer.response);
    answer_all(&mut agent, answer.notifies, now);
    (agent, etag)
}

fn etag_of(response: &Bytes) -> String {
    let response = Message::parse(response.clone(), &Limits::default()).expect("response");
    response
        .header(&HeaderName::SipETag)
        .expect("SIP-ETag in the 200")
        .to_owned()
}

fn answer_all(agent: &mut Agent, notifies: Vec<Notify<u32>>, now: Instant) {
    let mut queue = std::collections::VecDeque::from(notifies);
    while let Some(notify) = queue.pop_front() {
        let ok = ok_to(&notify);
        queue.extend(agent.on_notify_response(notify.id, &ok, now));
    }
}

fn fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("publish_fanout");
    for watchers in [10usize, 100] {
        group.throughput(Throughput::Elements(watchers as u64));
        group.bench_with_input(BenchmarkId::from_parameter(watchers), &watchers, |b, &n| {
            let now = Instant::now();
            let (mut agent, mut etag) = watched_presentity(n, now);
            let mut seq = 1;
            b.iter_custom(|iterations| {
                let mut spent = Duration::ZERO;
                for _ in 0..iterations {
                    seq += 1;
                    let request = publish(seq, Some(&etag));
                    let started = Instant::now();
                    let answer = agent.on_publish(black_box(&request), PRESENTITY, now);
                    spent += started.elapsed();
                    etag = etag_of(&answer.response);
                    assert_eq!(answer.notifies.len(), n, "one NOTIFY per watcher");
                    let answers: Vec<(SubId, Message)> = answer
                        .notifies
                        .iter()
                        .map(|notify| (notify.id, ok_to(notify)))
                        .collect();
                    let started = Instant::now();
                    for (id, ok) in &answers {
                        let more = agent.on_notify_response(*id, black_box(ok), now);
                        assert!(more.is_empty());
                    }
                    spent += started.elapsed();
                }
                spent
            });
        });
    }
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
