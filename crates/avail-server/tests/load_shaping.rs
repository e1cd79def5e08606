//! Load shaping of the presence agent on the wire (issue 4 item 8): caps on subscriptions per
//! watcher, per presentity and in the whole server, each refused with an answer that names
//! it; and per-subscription NOTIFY rate limiting (`--min-notify-interval-ms`) that collapses a
//! burst of publications into fewer NOTIFYs, always ends on the newest state, and never holds
//! back the final NOTIFY of an unsubscribe (which supersedes a state still waiting: the
//! watcher asked to stop receiving state).

mod ua;
mod xcap_common;

use std::time::{Duration, Instant};

use sip_message::Message;
use ua::{body, header, Ua};
use xcap_common::common::{add_user, unique, Server, SipUdp, DOMAIN};

const USERS: &[&str] = &["alice", "bob", "carol", "dave"];

/// A server for [`USERS`] (password `pw`) started with `flags`.
fn server(flags: &[&str]) -> Server {
    let temp = tempfile::tempdir().expect("temp dir");
    for user in USERS {
        add_user(temp.path(), &format!("{user}@{DOMAIN}"), "pw");
    }
    Server::launch(temp.path().to_owned(), Some(temp), flags)
}

fn aor(user: &str) -> String {
    format!("sip:{user}@{DOMAIN}")
}

fn pidf(note: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:alice@{DOMAIN}\">\
         <tuple id=\"t1\"><status><basic>open</basic></status><note>{note}</note></tuple>\
         </presence>"
    )
}

const PIDF_HEADERS: &str = "Content-Type: application/pidf+xml\r\nExpires: 600\r\n";

fn refused_with(response: &Message, status: u16, reason: &str) {
    assert_eq!(response.status(), Some(status), "{response:?}");
    assert_eq!(response.reason(), Some(reason), "{response:?}");
}

#[test]
fn caps_per_watcher_and_per_presentity_are_refused_by_name() {
    let server = server(&[
        "--max-subscriptions-per-watcher",
        "2",
        "--max-subscriptions-per-presentity",
        "2",
    ]);
    let mut bob = Ua::new(&server, "bob", "pw");
    let (to_alice, mut bob_alice) = bob.subscribe(&aor("alice"), "presence", "Expires: 600\r\n");
    assert_eq!(to_alice.status(), Some(200));
    let (to_carol, _) = bob.subscribe(&aor("carol"), "presence", "Expires: 600\r\n");
    assert_eq!(to_carol.status(), Some(200));
    let (third, _) = bob.subscribe(&aor("dave"), "presence", "Expires: 600\r\n");
    refused_with(&third, 403, "Too Many Subscriptions From This Subscriber");
    // Every package counts: winfo on bob's own AOR is a third subscription too.
    let (winfo, _) = bob.subscribe(&aor("bob"), "presence.winfo", "Expires: 600\r\n");
    refused_with(&winfo, 403, "Too Many Subscriptions From This Subscriber");

    let mut carol = Ua::new(&server, "carol", "pw");
    let (second_watcher, _) = carol.subscribe(&aor("alice"), "presence", "Expires: 600\r\n");
    assert_eq!(second_watcher.status(), Some(200));
    let mut dave = Ua::new(&server, "dave", "pw");
    let (over, _) = dave.subscribe(&aor("alice"), "presence", "Expires: 600\r\n");
    refused_with(&over, 403, "Too Many Subscriptions To This Resource");

    // A subscription that ends frees its place under both caps (once its final NOTIFY is
    // answered: until then it still exists).
    assert_eq!(bob.resubscribe(&mut bob_alice, 0).status(), Some(200));
    while !header(&bob.notify(), "Subscription-State").starts_with("terminated") {}
    // Bob's 200 to it travels on another connection than dave's SUBSCRIBE: allow a moment.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let (attempt, _) = dave.subscribe(&aor("alice"), "presence", "Expires: 600\r\n");
        if attempt.status() == Some(200) {
            break;
        }
        refused_with(&attempt, 403, "Too Many Subscriptions To This Resource");
        assert!(Instant::now() < deadline, "the place was not freed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (bob_again, _) = bob.subscribe(&aor("dave"), "presence", "Expires: 600\r\n");
    assert_eq!(bob_again.status(), Some(200));
}

/// A SUBSCRIBE from `user` without credentials (the source network is trusted), over UDP.
fn subscribe_udp(user: &str, presentity: &str) -> String {
    let n = unique();
    format!(
        "SUBSCRIBE {presentity} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-cap-{n};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@{DOMAIN}>;tag=c{n}\r\n\
         To: <{presentity}>\r\n\
         Call-ID: cap-{n}\r\n\
         CSeq: 1 SUBSCRIBE\r\n\
         Contact: <sip:{user}@127.0.0.1:9>\r\n\
         Event: presence\r\n\
         Expires: 600\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// The final response to a request sent over UDP, skipping the NOTIFYs the server sends to
/// the subscription's Contact meanwhile (nobody listens there).
fn final_response(udp: &SipUdp) -> Message {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .expect("a final response within 5 s");
        let message = udp.try_recv(left).expect("a response over UDP");
        if message.status().is_some_and(|s| s >= 200) {
            return message;
        }
    }
}

#[test]
fn caps_apply_over_udp_and_the_server_wide_cap_asks_to_retry_later() {
    let server = server(&[
        "--trusted",
        "127.0.0.1/32",
        "--max-subscriptions-per-watcher",
        "1",
        "--max-subscriptions",
        "2",
    ]);
    let udp = SipUdp::new(server.tcp_addr());
    udp.send(subscribe_udp("bob", &aor("alice")).as_bytes());
    assert_eq!(final_response(&udp).status(), Some(200));
    udp.send(subscribe_udp("bob", &aor("carol")).as_bytes());
    refused_with(
        &final_response(&udp),
        403,
        "Too Many Subscriptions From This Subscriber",
    );

    udp.send(subscribe_udp("carol", &aor("alice")).as_bytes());
    assert_eq!(final_response(&udp).status(), Some(200));
    udp.send(subscribe_udp("dave", &aor("alice")).as_bytes());
    let full = final_response(&udp);
    assert_eq!(full.status(), Some(503), "{full:?}");
    assert!(
        full.other_header("Retry-After")
            .is_some_and(|v| v.trim().parse::<u32>().is_ok()),
        "{full:?}"
    );
}

/// Publishes `note` as a modification of the publication `etag` (a new one when empty);
/// returns the new entity tag.
fn publish(alice: &mut Ua, etag: &str, note: &str) -> String {
    let if_match = if etag.is_empty() {
        String::new()
    } else {
        format!("SIP-If-Match: {etag}\r\n")
    };
    let response = alice.publish(
        &aor("alice"),
        &format!("{if_match}{PIDF_HEADERS}"),
        &pidf(note),
    );
    assert_eq!(response.status(), Some(200), "{response:?}");
    header(&response, "SIP-ETag")
}

/// The NOTIFYs arriving until `quiet` passes without one, with their arrival times.
fn notifies_until_quiet(watcher: &mut Ua, quiet: Duration) -> Vec<(Instant, Message)> {
    let mut received = Vec::new();
    while let Some(notify) = watcher.try_notify(quiet) {
        received.push((Instant::now(), notify));
    }
    received
}

#[test]
fn a_burst_of_publications_is_rate_limited_to_its_newest_state() {
    let interval = Duration::from_millis(700);
    let server = server(&["--min-notify-interval-ms", "700"]);
    let mut alice = Ua::new(&server, "alice", "pw");
    // Her own subscription is always allowed: no pres-rules needed.
    let mut watcher = Ua::new(&server, "alice", "pw");
    let mut etag = publish(&mut alice, "", "state-0");
    let (ok, _) = watcher.subscribe(&aor("alice"), "presence", "Expires: 600\r\n");
    assert_eq!(ok.status(), Some(200));
    assert!(body(&watcher.notify()).contains("state-0"));

    let burst = 10;
    for n in 1..=burst {
        etag = publish(&mut alice, &etag, &format!("state-{n}"));
    }
    let received = notifies_until_quiet(&mut watcher, Duration::from_millis(2500));
    assert!(!received.is_empty(), "the burst was notified");
    assert!(
        received.len() < burst,
        "{} NOTIFYs for {burst} publications",
        received.len()
    );
    let (_, last) = received.last().unwrap();
    assert!(
        body(last).contains(&format!("state-{burst}</note>")),
        "the last NOTIFY carries the last state: {}",
        body(last)
    );
    for pair in received.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        // The interval runs from our 200 to the next NOTIFY; allow for scheduling jitter.
        assert!(
            gap + Duration::from_millis(50) >= interval,
            "NOTIFYs {gap:?} apart"
        );
    }
}

#[test]
fn an_unsubscribe_during_the_rate_limit_wait_gets_its_final_notify_at_once() {
    let server = server(&["--min-notify-interval-ms", "3000"]);
    let mut alice = Ua::new(&server, "alice", "pw");
    let mut watcher = Ua::new(&server, "alice", "pw");
    let etag = publish(&mut alice, "", "before");
    let (ok, mut dialog) = watcher.subscribe(&aor("alice"), "presence", "Expires: 600\r\n");
    assert_eq!(ok.status(), Some(200));
    assert!(body(&watcher.notify()).contains("before"));

    // The initial NOTIFY was just answered: the next one waits for 3 s.
    publish(&mut alice, &etag, "after");
    assert!(
        watcher.try_notify(Duration::from_millis(300)).is_none(),
        "the change waits for the interval"
    );
    let asked = Instant::now();
    let gone = watcher.resubscribe(&mut dialog, 0);
    assert_eq!(gone.status(), Some(200));
    let last = watcher
        .try_notify(Duration::from_millis(1500))
        .expect("the final NOTIFY comes without waiting for the interval");
    assert!(
        asked.elapsed() < Duration::from_millis(1500),
        "final NOTIFY after {:?}",
        asked.elapsed()
    );
    assert_eq!(
        header(&last, "Subscription-State"),
        "terminated;reason=timeout"
    );
    assert!(
        watcher.try_notify(Duration::from_millis(500)).is_none(),
        "nothing after the final NOTIFY"
    );
}
