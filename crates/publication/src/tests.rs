//! ESC behaviour with Blink-style PUBLISH requests (blink-compat §3.1) and explicit time.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::SeedableRng;
use sip_message::{Limits, Message};

use crate::*;

const AOR: &str = "alice@example.com";
const PIDF: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:alice%40example.com\"><tuple id=\"SID-1\"><status><basic>open</basic></status></tuple></presence>";

fn esc_with(config: Config) -> Esc {
    Esc::new(config, rand::rngs::StdRng::seed_from_u64(3))
}

fn config() -> Config {
    Config {
        events: vec![
            EventConfig::new("presence", &["application/pidf+xml"]),
            EventConfig::new("dialog", &["application/dialog-info+xml"]),
        ],
        ..Config::default()
    }
}

fn esc() -> Esc {
    esc_with(config())
}

/// Blink's PUBLISH: new Call-ID per request, CSeq 1, From = To = AOR.
fn publish(call: u32, extra: &str, content_type: Option<&str>, body: &str) -> Message {
    let ct = content_type
        .map(|c| format!("Content-Type: {c}\r\n"))
        .unwrap_or_default();
    let text = format!(
        "PUBLISH sip:alice@example.com SIP/2.0\r\n\
         Via: SIP/2.0/TLS 10.0.0.2:50123;rport;branch=z9hG4bK.pub{call}\r\n\
         Max-Forwards: 70\r\n\
         From: \"Alice\" <sip:alice@example.com>;tag=f{call}\r\n\
         To: \"Alice\" <sip:alice@example.com>\r\n\
         Call-ID: publish-{call}\r\n\
         CSeq: 1 PUBLISH\r\n\
         {extra}\
         {ct}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    match Message::parse(Bytes::from(text), &Limits::default()) {
        Ok(m) => m,
        Err(e) => panic!("test PUBLISH does not parse: {e}"),
    }
}

fn initial(call: u32, body: &str) -> Message {
    publish(
        call,
        "Event: presence\r\nExpires: 600\r\n",
        Some("application/pidf+xml"),
        body,
    )
}

fn with_etag(call: u32, etag: &str, expires: u32, body: Option<&str>) -> Message {
    publish(
        call,
        &format!("Event: presence\r\nExpires: {expires}\r\nSIP-If-Match: {etag}\r\n"),
        body.map(|_| "application/pidf+xml"),
        body.unwrap_or(""),
    )
}

fn parsed(outcome: &PublishOutcome) -> Message {
    match Message::parse(outcome.response.clone(), &Limits::default()) {
        Ok(m) => m,
        Err(e) => panic!("response does not parse: {e}"),
    }
}

fn header(m: &Message, name: &str) -> String {
    m.other_header(name).unwrap_or_default().to_owned()
}

fn etag_of(outcome: &PublishOutcome) -> String {
    header(&parsed(outcome), "SIP-ETag")
}

fn headers(m: &Message) -> Vec<(String, String)> {
    m.headers()
        .map(|h| (h.name_as_written.to_owned(), h.value.to_owned()))
        .collect()
}

fn bodies(esc: &Esc) -> Vec<Bytes> {
    esc.publications("presence", AOR)
        .map(|p| p.body.clone())
        .collect()
}

#[test]
fn initial_publish_stores_the_body_and_answers_with_etag_and_expires() {
    let mut e = esc();
    let now = Instant::now();
    let out = e.on_publish(&initial(1, PIDF), AOR, now);
    assert_eq!(out.status, 200);
    let r = parsed(&out);
    let etag = header(&r, "SIP-ETag");
    assert_eq!(etag.len(), 32);
    assert!(etag.bytes().all(|b| b.is_ascii_hexdigit()));
    let to_tag = r
        .to_header()
        .ok()
        .and_then(|t| t.tag().map(str::to_owned))
        .unwrap_or_default();
    let expected: Vec<(String, String)> = [
        (
            "Via",
            "SIP/2.0/TLS 10.0.0.2:50123;rport;branch=z9hG4bK.pub1",
        ),
        ("From", "\"Alice\" <sip:alice@example.com>;tag=f1"),
        (
            "To",
            &format!("\"Alice\" <sip:alice@example.com>;tag={to_tag}"),
        ),
        ("Call-ID", "publish-1"),
        ("CSeq", "1 PUBLISH"),
        ("SIP-ETag", &etag),
        ("Expires", "600"),
        ("Content-Length", "0"),
    ]
    .iter()
    .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
    .collect();
    assert_eq!(headers(&r), expected);
    assert_eq!(
        out.applied,
        Some(Applied {
            operation: Operation::Initial,
            event: "presence".to_owned(),
            aor: AOR.to_owned(),
            etag: etag.clone(),
            previous_etag: None,
            expires: 600,
        })
    );
    assert_eq!(out.changed(), Some(("presence", AOR)));
    let stored: Vec<&Publication> = e.publications("presence", AOR).collect();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].body, Bytes::from(PIDF));
    assert_eq!(stored[0].content_type, "application/pidf+xml");
    assert_eq!(stored[0].etag, etag);
    assert_eq!(e.next_deadline(), Some(now + Duration::from_secs(600)));
    assert_eq!(e.publications("dialog", AOR).count(), 0);
    assert_eq!(e.publications("presence", "bob@example.com").count(), 0);
}

#[test]
fn refresh_gives_a_new_etag_and_lifetime_but_no_change() {
    let mut e = esc();
    let now = Instant::now();
    let first = etag_of(&e.on_publish(&initial(1, PIDF), AOR, now));
    let later = now + Duration::from_secs(570);
    let out = e.on_publish(&with_etag(2, &first, 600, None), AOR, later);
    assert_eq!(out.status, 200);
    let second = etag_of(&out);
    assert_ne!(second, first);
    assert_eq!(header(&parsed(&out), "Expires"), "600");
    let applied = out.applied.clone();
    assert_eq!(
        applied.as_ref().map(|a| a.operation),
        Some(Operation::Refresh)
    );
    assert_eq!(applied.and_then(|a| a.previous_etag), Some(first.clone()));
    assert_eq!(out.changed(), None);
    assert_eq!(bodies(&e), vec![Bytes::from(PIDF)]);
    assert_eq!(e.next_deadline(), Some(later + Duration::from_secs(600)));
    // The old tag is gone.
    let out = e.on_publish(&with_etag(3, &first, 600, None), AOR, later);
    assert_eq!(out.status, 412);
    assert_eq!(parsed(&out).reason(), Some("Conditional Request Failed"));
    assert_eq!(e.len(), 1);
}

#[test]
fn modify_replaces_the_body_in_place_with_a_new_etag() {
    let mut e = esc();
    let now = Instant::now();
    let a = etag_of(&e.on_publish(&initial(1, "<a/>"), AOR, now));
    let b = etag_of(&e.on_publish(&initial(2, "<b/>"), AOR, now));
    let out = e.on_publish(&with_etag(3, &a, 300, Some("<a2/>")), AOR, now);
    assert_eq!(out.status, 200);
    assert_eq!(
        out.applied.as_ref().map(|x| x.operation),
        Some(Operation::Modify)
    );
    assert_eq!(out.changed(), Some(("presence", AOR)));
    let a2 = etag_of(&out);
    assert_ne!(a2, a);
    assert_eq!(header(&parsed(&out), "Expires"), "300");
    // Composition order stays that of the first publication.
    assert_eq!(bodies(&e), vec![Bytes::from("<a2/>"), Bytes::from("<b/>")]);
    let tags: Vec<String> = e
        .publications("presence", AOR)
        .map(|p| p.etag.clone())
        .collect();
    assert_eq!(tags, vec![a2, b]);
    assert_eq!(e.next_deadline(), Some(now + Duration::from_secs(300)));
}

#[test]
fn remove_with_expires_zero_drops_the_publication() {
    let mut e = esc();
    let now = Instant::now();
    let a = etag_of(&e.on_publish(&initial(1, PIDF), AOR, now));
    let out = e.on_publish(&with_etag(2, &a, 0, None), AOR, now);
    assert_eq!(out.status, 200);
    let r = parsed(&out);
    assert_eq!(header(&r, "SIP-ETag"), a);
    assert_eq!(header(&r, "Expires"), "0");
    assert_eq!(
        out.applied.as_ref().map(|x| x.operation),
        Some(Operation::Remove)
    );
    assert_eq!(out.changed(), Some(("presence", AOR)));
    assert!(e.is_empty());
    assert_eq!(e.next_deadline(), None);
    assert_eq!(
        e.on_publish(&with_etag(3, &a, 0, None), AOR, now).status,
        412
    );
}

#[test]
fn unknown_expired_or_foreign_etags_get_412() {
    let mut e = esc();
    let now = Instant::now();
    assert_eq!(
        e.on_publish(&with_etag(1, "nosuchtag", 600, None), AOR, now)
            .status,
        412
    );
    let a = etag_of(&e.on_publish(&initial(2, PIDF), AOR, now));
    // Another AOR cannot touch it.
    let out = e.on_publish(&with_etag(3, &a, 600, None), "mallory@example.com", now);
    assert_eq!((out.status, out.applied), (412, None));
    // Past its expiry (before the timer ran), it no longer matches.
    let out = e.on_publish(
        &with_etag(4, &a, 600, None),
        AOR,
        now + Duration::from_secs(600),
    );
    assert_eq!(out.status, 412);
}

#[test]
fn too_brief_expires_gets_423_and_long_ones_are_shortened() {
    let mut e = esc();
    let now = Instant::now();
    let r = publish(
        1,
        "Event: presence\r\nExpires: 10\r\n",
        Some("application/pidf+xml"),
        PIDF,
    );
    let out = e.on_publish(&r, AOR, now);
    assert_eq!(out.status, 423);
    assert_eq!(header(&parsed(&out), "Min-Expires"), "60");
    assert!(e.is_empty());
    let a = etag_of(&e.on_publish(&initial(2, PIDF), AOR, now));
    assert_eq!(
        e.on_publish(&with_etag(3, &a, 5, None), AOR, now).status,
        423
    );
    let r = publish(
        4,
        "Event: presence\r\nExpires: 99999\r\n",
        Some("application/pidf+xml"),
        PIDF,
    );
    assert_eq!(
        header(&parsed(&e.on_publish(&r, AOR, now)), "Expires"),
        "3600"
    );
    let r = publish(5, "Event: presence\r\n", Some("application/pidf+xml"), PIDF);
    assert_eq!(
        header(&parsed(&e.on_publish(&r, AOR, now)), "Expires"),
        "3600"
    );
}

#[test]
fn unsupported_or_missing_event_gets_489_with_allow_events() {
    let mut e = esc();
    for extra in ["Event: xcap-diff\r\n", ""] {
        let r = publish(1, extra, Some("application/pidf+xml"), PIDF);
        let out = e.on_publish(&r, AOR, Instant::now());
        assert_eq!(out.status, 489);
        assert_eq!(header(&parsed(&out), "Allow-Events"), "presence, dialog");
    }
    assert!(e.is_empty());
}

#[test]
fn unsupported_content_type_gets_415_with_accept() {
    let mut e = esc();
    let now = Instant::now();
    for ct in [Some("application/cpim-pidf+xml"), None] {
        let r = publish(1, "Event: presence\r\n", ct, "<x/>");
        let out = e.on_publish(&r, AOR, now);
        assert_eq!(out.status, 415);
        assert_eq!(header(&parsed(&out), "Accept"), "application/pidf+xml");
    }
    // The content type is per event; parameters and case do not matter.
    let r = publish(
        2,
        "Event: presence\r\n",
        Some("Application/PIDF+XML;charset=UTF-8"),
        PIDF,
    );
    assert_eq!(e.on_publish(&r, AOR, now).status, 200);
    let r = publish(3, "Event: dialog\r\n", Some("application/pidf+xml"), PIDF);
    assert_eq!(e.on_publish(&r, AOR, now).status, 415);
    let stored: Vec<String> = e
        .publications("presence", AOR)
        .map(|p| p.content_type.clone())
        .collect();
    assert_eq!(
        stored,
        vec!["Application/PIDF+XML;charset=UTF-8".to_owned()]
    );
}

#[test]
fn neither_body_nor_etag_gets_400_and_bad_headers_too() {
    let mut e = esc();
    let now = Instant::now();
    let out = e.on_publish(
        &publish(1, "Event: presence\r\nExpires: 600\r\n", None, ""),
        AOR,
        now,
    );
    assert_eq!(out.status, 400);
    assert_eq!(parsed(&out).reason(), Some("Missing Body or SIP-If-Match"));
    let r = publish(
        2,
        "Event: pres ence\r\n",
        Some("application/pidf+xml"),
        PIDF,
    );
    assert_eq!(e.on_publish(&r, AOR, now).status, 400);
    let r = publish(3, "Event: presence\r\n", Some("nonsense"), PIDF);
    assert_eq!(e.on_publish(&r, AOR, now).status, 400);
    assert!(e.is_empty());
}

#[test]
fn initial_publish_with_expires_zero_stores_nothing() {
    let mut e = esc();
    let r = publish(
        1,
        "Event: presence\r\nExpires: 0\r\n",
        Some("application/pidf+xml"),
        PIDF,
    );
    let out = e.on_publish(&r, AOR, Instant::now());
    assert_eq!(out.status, 200);
    assert_eq!(header(&parsed(&out), "Expires"), "0");
    assert_eq!(out.applied, None);
    assert_eq!(out.changed(), None);
    assert!(e.is_empty());
}

#[test]
fn limits_on_body_size_and_publication_counts() {
    let now = Instant::now();
    let mut e = esc_with(Config {
        max_body_bytes: 16,
        max_per_aor: 2,
        ..config()
    });
    assert_eq!(e.on_publish(&initial(1, PIDF), AOR, now).status, 413);
    assert_eq!(e.on_publish(&initial(2, "<a/>"), AOR, now).status, 200);
    assert_eq!(e.on_publish(&initial(3, "<b/>"), AOR, now).status, 200);
    let out = e.on_publish(&initial(4, "<c/>"), AOR, now);
    assert_eq!(out.status, 403);
    assert_eq!(parsed(&out).reason(), Some("Too Many Publications"));
    // Another AOR is not affected.
    assert_eq!(
        e.on_publish(&initial(5, "<d/>"), "bob@example.com", now)
            .status,
        200
    );

    let mut e = esc_with(Config {
        max_publications: 1,
        ..config()
    });
    assert_eq!(e.on_publish(&initial(1, "<a/>"), AOR, now).status, 200);
    let out = e.on_publish(&initial(2, "<b/>"), "bob@example.com", now);
    assert_eq!(out.status, 503);
    assert_eq!(header(&parsed(&out), "Retry-After"), "60");
}

#[test]
fn publications_expire_one_by_one_without_sleeping() {
    let mut e = esc();
    let now = Instant::now();
    let r = |call, expires| {
        publish(
            call,
            &format!("Event: presence\r\nExpires: {expires}\r\n"),
            Some("application/pidf+xml"),
            &format!("<device n=\"{call}\"/>"),
        )
    };
    let short = etag_of(&e.on_publish(&r(1, 120), AOR, now));
    let long = etag_of(&e.on_publish(&r(2, 600), AOR, now));
    assert_eq!(e.next_deadline(), Some(now + Duration::from_secs(120)));
    assert!(e.on_timer(now + Duration::from_secs(119)).is_empty());
    let expired = e.on_timer(now + Duration::from_secs(120));
    let gone: Vec<(String, String, String)> = expired
        .iter()
        .map(|p| (p.etag.clone(), p.event.clone(), p.aor.clone()))
        .collect();
    assert_eq!(gone, vec![(short, "presence".to_owned(), AOR.to_owned())]);
    assert_eq!(bodies(&e), vec![Bytes::from("<device n=\"2\"/>")]);
    assert_eq!(e.next_deadline(), Some(now + Duration::from_secs(600)));
    let expired = e.on_timer(now + Duration::from_secs(3600));
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].etag, long);
    assert!(e.is_empty());
    assert_eq!(e.next_deadline(), None);
}

#[test]
fn etags_are_unique_and_not_sequential() {
    let mut e = esc();
    let now = Instant::now();
    let tags: std::collections::HashSet<String> = (0..50)
        .map(|i| etag_of(&e.on_publish(&initial(i, "<x/>"), &format!("u{i}@example.com"), now)))
        .collect();
    assert_eq!(tags.len(), 50);
}

#[test]
fn export_and_import_survive_a_restart() {
    let mut e = esc();
    let now = Instant::now();
    let a = etag_of(&e.on_publish(&initial(1, "<a/>"), AOR, now));
    let r = publish(
        2,
        "Event: presence\r\nExpires: 120\r\n",
        Some("application/pidf+xml"),
        "<b/>",
    );
    let b = etag_of(&e.on_publish(&r, AOR, now));
    let records = e.export(now + Duration::from_secs(20), 1_000_020);
    let summary: Vec<(String, u64)> = records
        .iter()
        .map(|r| (r.etag.clone(), r.expires_at))
        .collect();
    assert_eq!(summary, vec![(a.clone(), 1_000_600), (b, 1_000_120)]);
    assert_eq!(records[0].body, Bytes::from("<a/>"));

    let restart = Instant::now() + Duration::from_secs(500);
    let mut e2 = esc();
    // 200 s later the short one has expired.
    e2.import(records, restart, 1_000_200);
    assert_eq!(bodies(&e2), vec![Bytes::from("<a/>")]);
    assert_eq!(e2.next_deadline(), Some(restart + Duration::from_secs(400)));
    // The imported tag still refreshes.
    let out = e2.on_publish(&with_etag(3, &a, 600, None), AOR, restart);
    assert_eq!(out.status, 200);
}

#[test]
fn changes_name_each_publication_by_its_first_entity_tag_however_often_it_is_modified() {
    let mut e = esc();
    let now = Instant::now();
    let first = etag_of(&e.on_publish(&initial(1, "<a/>"), AOR, now));
    let other = etag_of(&e.on_publish(&initial(2, "<b/>"), AOR, now));
    let (records, removed) = e.take_changes(now, 1_000_000);
    let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&first.as_str()) && ids.contains(&other.as_str()));
    assert!(removed.is_empty());

    // A modify and a refresh change the tag, not the record the change is reported under.
    let modified = etag_of(&e.on_publish(&with_etag(3, &first, 600, Some("<c/>")), AOR, now));
    let refreshed = etag_of(&e.on_publish(&with_etag(4, &modified, 600, None), AOR, now));
    assert_ne!(refreshed, first);
    let (records, removed) = e.take_changes(now, 1_000_000);
    assert_eq!(records.len(), 1);
    assert_eq!(
        (records[0].id.as_str(), records[0].etag.as_str()),
        (first.as_str(), refreshed.as_str())
    );
    assert_eq!(records[0].body, Bytes::from("<c/>"));
    assert!(
        removed.is_empty(),
        "no tag but the first ever names a record"
    );

    // Removal reports the first tag; nothing is left to report afterwards.
    let out = e.on_publish(&with_etag(5, &refreshed, 0, None), AOR, now);
    assert_eq!(out.status, 200);
    assert_eq!(
        e.take_changes(now, 1_000_000),
        (Vec::new(), vec![first.clone()])
    );
    assert_eq!(e.take_changes(now, 1_000_000), (Vec::new(), Vec::new()));

    // Records read back on start: touched, then imported under the same id; an id the
    // import does not bring back is reported removed.
    let mut restarted = esc();
    let mut kept = e.export(now, 1_000_000);
    assert_eq!(kept.len(), 1);
    kept[0].id = "saved-id".to_owned();
    restarted.touch("saved-id");
    restarted.touch("expired-id");
    restarted.import(kept, now, 1_000_000);
    let (records, removed) = restarted.take_changes(now, 1_000_000);
    assert_eq!(records.len(), 1);
    assert_eq!(
        (records[0].id.as_str(), records[0].etag.as_str()),
        ("saved-id", other.as_str())
    );
    assert_eq!(removed, vec!["expired-id".to_owned()]);
}
