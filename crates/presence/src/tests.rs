use std::time::{Duration, Instant};

use rand::SeedableRng;
use sip_message::{HeaderName, Limits, Message};

use super::*;

type Agent = PresenceAgent<&'static str>;

const ALICE: &str = "sip:alice@example.com";
const BOB: &str = "sip:bob@example.com";

fn agent() -> Agent {
    PresenceAgent::new(Config::new(60, 3600, 3600), StdRng::seed_from_u64(7))
}

fn flow() -> Flow<&'static str> {
    Flow {
        dest: "conn",
        reliable: true,
        via: "SIP/2.0/TCP 192.0.2.1:5060".into(),
        contact: "<sip:192.0.2.1:5060;transport=tcp>".into(),
    }
}

fn parse(text: String) -> Message {
    Message::parse(bytes::Bytes::from(text), &Limits::default()).expect("valid message")
}

fn request(method: &str, uri: &str, from: &str, headers: &str, body: &str) -> Message {
    parse(format!(
        "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.9;branch=z9hG4bK{}\r\n\
         From: <{from}>;tag=f1\r\nTo: <{uri}>\r\nCall-ID: {}@x\r\nCSeq: 1 {method}\r\n\
         Contact: <sip:w@192.0.2.9;transport=tcp>\r\nMax-Forwards: 70\r\n{headers}\
         Content-Length: {}\r\n\r\n{body}",
        rand::random::<u32>(),
        rand::random::<u32>(),
        body.len()
    ))
}

fn pidf_body(note: &str) -> String {
    format!(
        "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"{ALICE}\"><tuple id=\"t\">\
         <status><basic>open</basic></status><note>{note}</note></tuple></presence>"
    )
}

fn publish(agent: &mut Agent, user: &str, body: &str, now: Instant) -> Answer<&'static str> {
    let headers = "Event: presence\r\nContent-Type: application/pidf+xml\r\nExpires: 600\r\n";
    agent.on_publish(&request("PUBLISH", ALICE, user, headers, body), user, now)
}

fn subscribe(agent: &mut Agent, event: &str, user: &str, now: Instant) -> Answer<&'static str> {
    let headers = format!("Event: {event}\r\nExpires: 600\r\n");
    agent.on_subscribe(
        &request("SUBSCRIBE", ALICE, user, &headers, ""),
        flow(),
        user,
        now,
    )
}

/// Answers every NOTIFY with 200 and returns them with the NOTIFYs those answers released.
fn deliver(agent: &mut Agent, notifies: Vec<Notify<&'static str>>, now: Instant) -> Vec<Message> {
    let mut delivered = Vec::new();
    let mut queue = std::collections::VecDeque::from(notifies);
    while let Some(notify) = queue.pop_front() {
        let request = notify
            .request()
            .expect("the agent writes parseable NOTIFYs");
        let ok = sip_message::response_to(&request, 200, "OK", None).finish(None, b"");
        let ok = Message::parse(ok, &Limits::default()).expect("response");
        queue.extend(agent.on_notify_response(notify.id, &ok, now));
        delivered.push(request);
    }
    delivered
}

fn state(m: &Message) -> String {
    m.header(&HeaderName::SubscriptionState)
        .unwrap_or_default()
        .to_owned()
}

fn text(m: &Message) -> String {
    String::from_utf8_lossy(&m.body()).into_owned()
}

fn rules(handling: &str) -> Policy {
    let doc = format!(
        "<cp:ruleset xmlns:cp=\"urn:ietf:params:xml:ns:common-policy\" \
         xmlns:pr=\"urn:ietf:params:xml:ns:pres-rules\"><cp:rule id=\"r\"><cp:conditions>\
         <cp:identity><cp:one id=\"{BOB}\"/></cp:identity></cp:conditions><cp:actions>\
         <pr:sub-handling>{handling}</pr:sub-handling></cp:actions></cp:rule></cp:ruleset>"
    );
    Policy::from_documents(Some(doc.as_bytes()), None, None)
}

#[test]
fn own_subscription_is_active_and_sees_every_publication() {
    let mut a = agent();
    let now = Instant::now();
    let answer = subscribe(&mut a, PRESENCE, ALICE, now);
    assert_eq!(answer.status, 200);
    let first = {
        let sent = answer.notifies;
        deliver(&mut a, sent, now)
    };
    assert!(state(&first[0]).starts_with("active"));
    assert!(text(&first[0]).contains("closed"), "nothing published yet");

    let published = publish(&mut a, ALICE, &pidf_body("hello"), now);
    assert_eq!(published.status, 200);
    let update = {
        let sent = published.notifies;
        deliver(&mut a, sent, now)
    };
    assert_eq!(update.len(), 1);
    assert!(text(&update[0]).contains("hello"));
}

#[test]
fn publish_checks_owner_and_pidf() {
    let mut a = agent();
    let now = Instant::now();
    assert_eq!(publish(&mut a, BOB, &pidf_body("x"), now).status, 403);
    assert_eq!(publish(&mut a, ALICE, "<presence", now).status, 400);
    assert_eq!(publish(&mut a, ALICE, &pidf_body("x"), now).status, 200);
    assert_eq!(a.publications(), 1);
}

#[test]
fn rule_changes_activate_then_terminate_and_winfo_follows() {
    let mut a = agent();
    let now = Instant::now();
    {
        let sent = publish(&mut a, ALICE, &pidf_body("private"), now).notifies;
        deliver(&mut a, sent, now)
    };
    let winfo = subscribe(&mut a, WINFO, ALICE, now);
    let full = {
        let sent = winfo.notifies;
        deliver(&mut a, sent, now)
    };
    assert!(text(&full[0]).contains("version=\"0\" state=\"full\""));

    let watched = subscribe(&mut a, PRESENCE, BOB, now);
    assert_eq!(watched.status, 200);
    let sent = {
        let sent = watched.notifies;
        deliver(&mut a, sent, now)
    };
    let (pending, info): (Vec<_>, Vec<_>) = sent
        .iter()
        .partition(|m| text(m).is_empty() || text(m).contains("presence "));
    assert!(state(pending[0]).starts_with("pending"));
    assert!(text(info[0]).contains("version=\"1\" state=\"partial\""));
    assert!(text(info[0]).contains("status=\"pending\" event=\"subscribe\""));

    let later = now + Duration::from_secs(1);
    let sent = {
        let sent = a_set(&mut a, rules("allow"), later);
        deliver(&mut a, sent, later)
    };
    let active = sent
        .iter()
        .find(|m| text(m).contains("private"))
        .expect("state NOTIFY");
    assert!(state(active).starts_with("active"));
    assert!(sent.iter().any(|m| text(m).contains("version=\"2\"")
        && text(m).contains("status=\"active\" event=\"approved\"")));

    let sent = {
        let sent = a_set(&mut a, rules("block"), later);
        deliver(&mut a, sent, later)
    };
    let ended = sent
        .iter()
        .find(|m| state(m).starts_with("terminated"))
        .expect("final NOTIFY");
    assert_eq!(state(ended), "terminated;reason=rejected");
    assert!(ended.body().is_empty(), "no state after the block");
    assert!(sent.iter().any(|m| text(m).contains("version=\"3\"")
        && text(m).contains("status=\"terminated\" event=\"rejected\"")));
    assert_eq!(subscribe(&mut a, PRESENCE, BOB, later).status, 403);
}

fn a_set(a: &mut Agent, policy: Policy, now: Instant) -> Vec<Notify<&'static str>> {
    a.set_policy(ALICE, policy, 0, now)
}

#[test]
fn winfo_of_someone_else_and_unknown_packages_are_refused() {
    let mut a = agent();
    let now = Instant::now();
    assert_eq!(subscribe(&mut a, WINFO, BOB, now).status, 403);
    assert_eq!(subscribe(&mut a, "message-summary", ALICE, now).status, 489);
    assert_eq!(subscribe(&mut a, XCAP_DIFF, BOB, now).status, 403);
    assert!(
        !a.tracks_documents(ALICE),
        "nothing kept for refused requests"
    );
    assert!(!a.tracks(ALICE), "nothing kept for refused requests");
}

#[test]
fn expired_publication_falls_back_to_pidf_manipulation() {
    let mut a = agent();
    let now = Instant::now();
    let offline = "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:alice@example.com\">\
                   <tuple id=\"off\"><status><basic>closed</basic></status><note>away</note></tuple></presence>";
    a.set_policy(
        ALICE,
        Policy::from_documents(None, None, Some(offline.as_bytes())),
        0,
        now,
    );
    {
        let sent = publish(&mut a, ALICE, &pidf_body("online"), now).notifies;
        deliver(&mut a, sent, now)
    };
    let first = {
        let sent = subscribe(&mut a, PRESENCE, ALICE, now).notifies;
        deliver(&mut a, sent, now)
    };
    assert!(text(&first[0]).contains("online") && !text(&first[0]).contains("away"));

    let expiry = a.next_deadline().expect("publication expiry");
    let sent = {
        let sent = a.on_timer(expiry);
        deliver(&mut a, sent, expiry)
    };
    assert!(
        sent.iter().any(|m| text(m).contains("away")),
        "offline note after expiry"
    );
}

fn etag_of(answer: &Answer<&'static str>) -> String {
    let response = Message::parse(answer.response.clone(), &Limits::default()).expect("response");
    response
        .header(&HeaderName::SipETag)
        .expect("SIP-ETag")
        .to_owned()
}

fn republish(a: &mut Agent, etag: &str, body: &str, now: Instant) -> Answer<&'static str> {
    let headers = format!(
        "Event: presence\r\nSIP-If-Match: {etag}\r\nContent-Type: application/pidf+xml\r\n\
         Expires: 600\r\n"
    );
    a.on_publish(
        &request("PUBLISH", ALICE, ALICE, &headers, body),
        ALICE,
        now,
    )
}

#[test]
fn a_save_after_one_publication_change_exports_that_record_only() {
    let mut a = agent();
    let now = Instant::now();
    let mut etags = Vec::new();
    for note in ["one", "two", "three"] {
        let answer = publish(&mut a, ALICE, &pidf_body(note), now);
        etags.push(etag_of(&answer));
        deliver(&mut a, answer.notifies, now);
    }
    for _ in 0..3 {
        let answer = subscribe(&mut a, PRESENCE, ALICE, now);
        assert_eq!(answer.status, 200);
        deliver(&mut a, answer.notifies, now);
    }
    let first = a.export_changes(now, 1_000);
    assert_eq!(first.records.len(), 6, "everything is new");
    assert!(first.removed.is_empty());
    assert!(
        a.export_changes(now, 1_000).is_empty(),
        "nothing changed since"
    );

    // One publication changes; every watcher is notified, which only moves CSeqs.
    let answer = republish(&mut a, &etags[1], &pidf_body("two, changed"), now);
    assert_eq!(answer.status, 200);
    assert_ne!(etag_of(&answer), etags[1]);
    assert_eq!(deliver(&mut a, answer.notifies, now).len(), 3);
    let changes = a.export_changes(now, 1_000);
    assert_eq!(changes.records.len(), 1, "one record, not all: {changes:?}");
    assert_eq!(changes.records[0].kind, RecordKind::Publication);
    // A modify replaces the entity tag (RFC 3903 §6 step 7) but rewrites the record the
    // publication was first saved under rather than deleting it and adding another.
    assert_eq!(changes.records[0].key, etags[1]);
    assert!(changes.removed.is_empty(), "{changes:?}");
    assert_eq!(
        a.export(now, 1_000).len(),
        6,
        "the full export is unchanged"
    );
}

#[test]
fn notifies_alone_save_a_subscription_every_cseq_step() {
    let mut a = agent();
    let now = Instant::now();
    let answer = publish(&mut a, ALICE, &pidf_body("0"), now);
    let mut etag = etag_of(&answer);
    let record_key = etag.clone();
    deliver(&mut a, answer.notifies, now);
    let answer = subscribe(&mut a, PRESENCE, ALICE, now);
    deliver(&mut a, answer.notifies, now);
    a.export_changes(now, 1_000);
    let mut saved_subscriptions = 0;
    for n in 1..=sip_subscription::CSEQ_SAVE_STEP {
        let answer = republish(&mut a, &etag, &pidf_body(&n.to_string()), now);
        etag = etag_of(&answer);
        assert_eq!(deliver(&mut a, answer.notifies, now).len(), 1);
        let changes = a.export_changes(now, 1_000);
        saved_subscriptions += changes
            .records
            .iter()
            .filter(|r| r.kind == RecordKind::Subscription)
            .count();
    }
    assert_eq!(saved_subscriptions, 1, "once per CSEQ_SAVE_STEP NOTIFYs");

    // Removal (PUBLISH with Expires: 0): the row is deleted.
    let headers = format!("Event: presence\r\nSIP-If-Match: {etag}\r\nExpires: 0\r\n");
    let answer = a.on_publish(&request("PUBLISH", ALICE, ALICE, &headers, ""), ALICE, now);
    assert_eq!(answer.status, 200);
    deliver(&mut a, answer.notifies, now);
    let changes = a.export_changes(now, 1_000);
    assert!(changes.records.is_empty(), "{changes:?}");
    assert_eq!(changes.removed, vec![(RecordKind::Publication, record_key)]);
}

fn winfo_text(agent: &mut Agent, notifies: Vec<Notify<&'static str>>, now: Instant) -> String {
    deliver(agent, notifies, now)
        .iter()
        .map(text)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn back_end_watch_follows_the_rules_and_shows_in_watcher_info() {
    let mut a = agent();
    let now = Instant::now();
    a.set_policy(ALICE, rules("confirm"), 0, now);
    let winfo = subscribe(&mut a, WINFO, ALICE, now);
    deliver(&mut a, winfo.notifies, now);

    let (state, notifies) = a.watch(ALICE, BOB, now);
    assert_eq!(state, WatchState::Pending);
    let told = winfo_text(&mut a, notifies, now);
    assert!(
        told.contains("status=\"pending\"") && told.contains(BOB),
        "{told}"
    );
    assert_eq!(a.watches(), 1);

    // Approval: the watch becomes active with the composed document.
    let notifies = a.set_policy(ALICE, rules("allow"), 0, now);
    let told = winfo_text(&mut a, notifies, now);
    assert!(told.contains("event=\"approved\""), "{told}");
    let updates = a.take_watch_updates();
    assert_eq!(updates.len(), 1);
    assert!(
        matches!(&updates[0].state, WatchState::Active(body) if body.data.starts_with(b"<?xml"))
    );

    // A publication reaches the watch; the same state is not reported twice.
    publish(&mut a, ALICE, &pidf_body("lunch"), now);
    let updates = a.take_watch_updates();
    assert!(
        matches!(&updates[..], [WatchUpdate { state: WatchState::Active(body), .. }]
        if String::from_utf8_lossy(&body.data).contains("lunch"))
    );
    a.set_policy(ALICE, rules("allow"), 0, now);
    assert!(a.take_watch_updates().is_empty());

    // Polite blocking shows a neutral document, blocking terminates, allowing again revives.
    let notifies = a.set_policy(ALICE, rules("polite-block"), 0, now);
    deliver(&mut a, notifies, now);
    let updates = a.take_watch_updates();
    assert!(
        matches!(&updates[..], [WatchUpdate { state: WatchState::Active(body), .. }]
        if !String::from_utf8_lossy(&body.data).contains("lunch"))
    );
    let notifies = a.set_policy(ALICE, rules("block"), 0, now);
    assert!(winfo_text(&mut a, notifies, now).contains("event=\"rejected\""));
    assert_eq!(
        a.take_watch_updates()[0].state,
        WatchState::Terminated(Reason::Rejected)
    );
    let notifies = a.set_policy(ALICE, rules("allow"), 0, now);
    deliver(&mut a, notifies, now);
    assert!(matches!(
        a.take_watch_updates()[0].state,
        WatchState::Active(_)
    ));

    // Unwatching tells watcher info and forgets the watch.
    let notifies = a.unwatch(ALICE, BOB, now);
    let told = winfo_text(&mut a, notifies, now);
    assert!(told.contains("status=\"terminated\""), "{told}");
    assert_eq!(a.watches(), 0);
}

#[test]
fn back_end_watch_of_the_same_pair_is_shared() {
    let mut a = agent();
    let now = Instant::now();
    a.set_policy(ALICE, rules("allow"), 0, now);
    let (first, _) = a.watch(ALICE, BOB, now);
    let (second, notifies) = a.watch(ALICE, BOB, now);
    assert_eq!(first, second);
    assert!(notifies.is_empty());
    assert_eq!(a.watches(), 1);
}
