//! Reading and composing PIDF: the work a PUBLISH costs before its NOTIFYs fan out.
//!
//! `cargo bench -p simple-payloads --bench pidf` (add `-- --quick` for a short run).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use simple_payloads::pidf::{compose, DuplicateIds, PidfDocument, Publication};

/// The body the shared SIPp harness publishes (`publisher.xml`).
const HARNESS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
      <presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:pres7@127.0.0.1">
        <tuple id="t-pres7">
          <status><basic>open</basic></status>
          <contact>sip:pres7@127.0.0.1:5070</contact>
          <note>update 42</note>
        </tuple>
      </presence>
"#;

fn corpus(name: &str) -> String {
    let path = format!(
        "{}/tests/corpus/pidf-manipulation/valid/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn read(c: &mut Criterion) {
    let mut g = c.benchmark_group("pidf_read");
    for (name, text) in [
        ("harness", HARNESS.to_owned()),
        ("blink_qt_away", corpus("blink-qt-away-publication.xml")),
        ("caps_full", corpus("caps-full.xml")),
    ] {
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| PidfDocument::parse(black_box(&text)).expect("valid PIDF"))
        });
    }
    g.finish();
}

fn compose_two_devices(c: &mut Criterion) {
    let text = corpus("blink-qt-away-publication.xml");
    let first = PidfDocument::parse(&text).expect("valid PIDF");
    let second = PidfDocument::parse(&text).expect("valid PIDF");
    let publications = [
        Publication {
            document: &first,
            modified: 1,
        },
        Publication {
            document: &second,
            modified: 2,
        },
    ];
    c.bench_function("pidf_compose/blink_two_devices", |b| {
        b.iter(|| {
            compose(
                "sip:alice@example.com",
                black_box(&publications),
                None,
                DuplicateIds::KeepNewest,
            )
        })
    });
}

criterion_group!(benches, read, compose_two_devices);
criterion_main!(benches);
