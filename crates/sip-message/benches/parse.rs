//! Parser, serializer and stream-framing throughput on typical Avail traffic.
//!
//! `cargo bench -p sip-message --bench parse` (add `-- --quick` for a short run).

#[path = "../tests/common/realistic.rs"]
mod realistic;

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sip_message::{HeaderName, Limits, Message, MessageWriter, Method, StreamDecoder, StreamItem};

fn parse_only(c: &mut Criterion) {
    let limits = Limits::default();
    let mut g = c.benchmark_group("parse");
    for (name, msg) in [
        ("blink_publish_pidf", realistic::blink_publish()),
        ("notify_pidf", realistic::notify_pidf()),
        ("notify_multipart", realistic::notify_multipart()),
        ("register_gruu", realistic::register_gruu()),
        // A 200 comes back for every NOTIFY of a fan-out.
        ("publish_ok", realistic::publish_ok()),
    ] {
        let buf = Bytes::from(msg);
        g.throughput(Throughput::Bytes(buf.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| Message::parse(black_box(buf.clone()), &limits).unwrap())
        });
    }
    g.finish();
}

/// Everything Avail's PUBLISH / NOTIFY handling reads from a message.
fn all_views(m: &Message) -> usize {
    let mut n = 0;
    n += m.call_id().unwrap().len();
    n += m.cseq().unwrap().seq as usize;
    let from = m.from_header().unwrap();
    n += from.tag().map_or(0, str::len);
    n += from.uri.aor_key().map_or(0, |k| k.len());
    let to = m.to_header().unwrap();
    n += to.tag().map_or(0, str::len);
    for via in m.vias().unwrap() {
        n += via.branch().map_or(0, str::len) + via.sent_by().len();
    }
    n += m.contacts().map_or(0, |c| c.len());
    n += m.u32_header(&HeaderName::Expires).unwrap().unwrap_or(0) as usize;
    n += m.u32_header(&HeaderName::MaxForwards).unwrap().unwrap_or(0) as usize;
    if let Some(e) = m.event().unwrap() {
        n += e.package.len();
    }
    if let Some(s) = m.subscription_state().unwrap() {
        n += s.state.len();
    }
    if let Some(ct) = m.content_type().unwrap() {
        n += usize::from(ct.is("application", "pidf+xml"));
    }
    n += m.header(&HeaderName::SipIfMatch).map_or(0, str::len);
    n += usize::from(m.has_token(&HeaderName::Supported, "eventlist"));
    n + m.body().len()
}

fn parse_and_views(c: &mut Criterion) {
    let limits = Limits::default();
    let mut g = c.benchmark_group("parse+views");
    for (name, msg) in [
        ("blink_publish_pidf", realistic::blink_publish()),
        ("notify_pidf", realistic::notify_pidf()),
        ("subscribe_rls", realistic::subscribe_rls()),
    ] {
        let buf = Bytes::from(msg);
        g.throughput(Throughput::Bytes(buf.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let m = Message::parse(black_box(buf.clone()), &limits).unwrap();
                all_views(&m)
            })
        });
    }
    g.finish();
}

fn build_notify() -> Bytes {
    let mut w = MessageWriter::request(
        &Method::Notify,
        "sip:84520931@192.0.2.4:50312;transport=tls",
    );
    w.header(
        "Via",
        "SIP/2.0/TLS 203.0.113.10:5061;branch=z9hG4bK-avail-7c2a9e1b4d60",
    )
    .header("Max-Forwards", "70")
    .header(
        "From",
        "\"Alice Example\" <sip:alice@example.com>;tag=avail-81c3",
    )
    .header(
        "To",
        "\"Alice Example\" <sip:alice@example.com>;tag=9d0e1f2a3b4c",
    )
    .header("Contact", "<sip:avail@203.0.113.10:5061;transport=tls>")
    .header("Call-ID", "5d7f9b1c3e5a7c9e1b3d5f7a9c1e3b5d")
    .header_fmt("CSeq", format_args!("{} NOTIFY", 4))
    .header("Event", "presence")
    .header_fmt("Subscription-State", format_args!("active;expires={}", 600));
    w.finish(
        Some("application/pidf+xml"),
        realistic::BLINK_PIDF.as_bytes(),
    )
}

fn serialize(c: &mut Criterion) {
    let mut g = c.benchmark_group("serialize");
    let len = build_notify().len();
    g.throughput(Throughput::Bytes(len as u64));
    g.bench_function("writer_notify_pidf", |b| b.iter(build_notify));
    let m = Message::parse(Bytes::from(realistic::blink_publish()), &Limits::default()).unwrap();
    g.throughput(Throughput::Bytes(m.as_bytes().len() as u64));
    g.bench_function("message_serialize_publish", |b| {
        b.iter(|| black_box(&m).serialize())
    });
    g.finish();
}

fn stream(c: &mut Criterion) {
    // 100 messages: a realistic mix, with a CRLFCRLF keepalive every tenth message.
    let mix = realistic::all();
    let mut data = Vec::new();
    for i in 0..100 {
        data.extend_from_slice(&mix[i % mix.len()].1);
        if i % 10 == 9 {
            data.extend_from_slice(b"\r\n\r\n");
        }
    }
    let mut g = c.benchmark_group("stream_decoder");
    for (name, chunk) in [
        ("100_msgs_4k_reads", 4096usize),
        ("100_msgs_1400b_reads", 1400),
    ] {
        g.throughput(Throughput::Bytes(data.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut dec = StreamDecoder::new(Limits::default());
                let mut n = 0;
                for piece in data.chunks(chunk) {
                    dec.push(piece);
                    while let Some(item) = dec.next_item().unwrap() {
                        if let StreamItem::Message(m) = item {
                            n += m.len();
                        }
                    }
                }
                n
            })
        });
    }
    g.throughput(Throughput::Elements(100));
    g.bench_function("100_msgs_decode_and_parse", |b| {
        b.iter(|| {
            let mut dec = StreamDecoder::new(Limits::default());
            let mut n = 0;
            for piece in data.chunks(4096) {
                dec.push(piece);
                while let Some(item) = dec.next_item().unwrap() {
                    if let StreamItem::Message(m) = item {
                        n += Message::parse(m, &Limits::default()).unwrap().body().len();
                    }
                }
            }
            n
        })
    });
    g.finish();
}

criterion_group!(benches, parse_only, parse_and_views, serialize, stream);
criterion_main!(benches);
