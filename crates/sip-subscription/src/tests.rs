//! Behaviour of the notifier, driven with parsed Blink-style SUBSCRIBEs and explicit time.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::SeedableRng;
use sip_message::{response_to, Limits, Message};

use crate::*;

type Engine = SubscriptionEngine<&'static str>;

const TLS: &str = "tls:198.51.100.7:50123";

fn flow() -> Flow<&'static str> {
    Flow {
        dest: TLS,
        reliable: true,
        via: "SIP/2.0/TLS 192.0.2.10:5061".to_owned(),
        contact: "<sip:presence@192.0.2.10:5061;transport=tls>".to_owned(),
    }
}

fn presence() -> PackageConfig {
    PackageConfig::new("presence", &["application/pidf+xml"])
}

fn rls() -> PackageConfig {
    PackageConfig {
        list: true,
        mode: ContentMode::Partial,
        ..PackageConfig::new("presence", &["multipart/related"])
    }
}

fn winfo() -> PackageConfig {
    PackageConfig::new("presence.winfo", &["application/watcherinfo+xml"])
}

fn config() -> Config {
    Config {
        packages: vec![presence(), rls(), winfo()],
        ..Config::default()
    }
}

fn engine_with(config: Config) -> Engine {
    SubscriptionEngine::new(config, rand::rngs::StdRng::seed_from_u64(7))
}

fn engine() -> Engine {
    engine_with(config())
}

fn parse(text: &str) -> Message {
    let text = text.replace('\n', "\r\n");
    match Message::parse(Bytes::from(text), &Limits::default()) {
        Ok(m) => m,
        Err(e) => panic!("test message does not parse: {e}"),
    }
}

/// Blink's presence SUBSCRIBE (blink-compat §4.1, §4.3) with extra header lines.
fn subscribe(uri: &str, to_tag: Option<&str>, cseq: u32, extra: &str) -> Message {
    let to = match to_tag {
        Some(tag) => format!("<{uri}>;tag={tag}"),
        None => format!("<{uri}>"),
    };
    parse(&format!(
        "SUBSCRIBE {uri} SIP/2.0\n\
         Via: SIP/2.0/TLS 10.0.0.2:50123;rport;branch=z9hG4bK.sub{cseq}\n\
         Max-Forwards: 70\n\
         From: \"Alice\" <sip:alice@example.com>;tag=a1b2c3\n\
         To: {to}\n\
         Call-ID: 4f7c2a9e-blink\n\
         CSeq: {cseq} SUBSCRIBE\n\
         Contact: <sip:48213907@10.0.0.2:50123;transport=tls>\n\
         {extra}\
         User-Agent: Blink 5.1.0 (Linux)\n\
         Content-Length: 0\n\n"
    ))
}

fn blink(extra_after_contact: &str) -> Message {
    subscribe(
        "sip:bob@example.com",
        None,
        1,
        &format!(
            "Event: presence\nAccept: application/pidf+xml\nExpires: 600\n{extra_after_contact}"
        ),
    )
}

fn pidf(n: u32) -> Body {
    Body::new(
        "application/pidf+xml",
        format!("<presence entity=\"sip:bob@example.com\">{n}</presence>"),
    )
}

fn headers(m: &Message) -> Vec<(String, String)> {
    m.headers()
        .map(|h| (h.name_as_written.to_owned(), h.value.to_owned()))
        .collect()
}

fn expect_headers(m: &Message, expected: &[(&str, &str)]) {
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    assert_eq!(headers(m), expected);
}

fn response(bytes: &Bytes) -> Message {
    match Message::parse(bytes.clone(), &Limits::default()) {
        Ok(m) => m,
        Err(e) => panic!("response does not parse: {e}"),
    }
}

fn to_tag(m: &Message) -> String {
    m.to_header()
        .ok()
        .and_then(|t| t.tag().map(str::to_owned))
        .unwrap_or_default()
}

fn header(m: &Message, name: &str) -> String {
    m.other_header(name).unwrap_or_default().to_owned()
}

fn respond_decide(outcome: SubscribeOutcome<&'static str>) -> Box<NewSubscription<&'static str>> {
    match outcome {
        SubscribeOutcome::Decide(new) => new,
        SubscribeOutcome::Respond { response, .. } => {
            panic!(
                "expected Decide, got {:?}",
                String::from_utf8_lossy(&response)
            )
        }
    }
}

fn respond_now(outcome: SubscribeOutcome<&'static str>) -> (Message, Vec<Action<&'static str>>) {
    match outcome {
        SubscribeOutcome::Respond {
            response: r,
            actions,
        } => (response(&r), actions),
        SubscribeOutcome::Decide(new) => panic!("expected a response, got Decide for {new:?}"),
    }
}

struct Sent {
    id: SubId,
    request: Message,
    dest: &'static str,
}

fn sent(actions: &[Action<&'static str>]) -> Vec<Sent> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SendNotify(notify) => Some(Sent {
                id: notify.id,
                request: notify
                    .request()
                    .expect("the engine writes parseable NOTIFYs"),
                dest: notify.dest,
            }),
            _ => None,
        })
        .collect()
}

fn only_notify(actions: &[Action<&'static str>]) -> Sent {
    let mut s = sent(actions);
    assert_eq!(s.len(), 1, "expected one NOTIFY in {actions:?}");
    s.remove(0)
}

fn terminated(actions: &[Action<&'static str>]) -> Vec<(SubId, EndCause)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Terminated { id, cause } => Some((*id, *cause)),
            _ => None,
        })
        .collect()
}

fn content_needed(actions: &[Action<&'static str>]) -> Vec<(SubId, bool)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::ContentNeeded { id, full_state } => Some((*id, *full_state)),
            _ => None,
        })
        .collect()
}

/// The subscriber's answer to a NOTIFY.
fn reply(notify: &Message, code: u16, extra: &[(&str, &str)]) -> Message {
    let mut w = response_to(notify, code, sip_message::default_reason(code), None);
    for (n, v) in extra {
        w.header(n, v);
    }
    response(&w.finish(None, b""))
}

fn branch(m: &Message) -> String {
    m.top_via()
        .ok()
        .and_then(|v| v.branch().map(str::to_owned))
        .unwrap_or_default()
}

fn state_header(m: &Message) -> String {
    header(m, "Subscription-State")
}

fn cseq(m: &Message) -> u32 {
    m.cseq().map(|c| c.seq).unwrap_or(0)
}

/// Subscribe Alice to Bob with `decision` and `body`; returns the id, 2xx and first NOTIFY.
fn establish(
    e: &mut Engine,
    request: &Message,
    decision: Decision,
    body: Option<Body>,
    now: Instant,
) -> (SubId, Message, Sent) {
    let new = respond_decide(e.on_subscribe(request, flow(), Resource::Single, now));
    let decided = e.decide(new, decision, body, now);
    let id = decided.id.unwrap_or(SubId(0));
    (
        id,
        response(&decided.response),
        only_notify(&decided.actions),
    )
}

// ---------------------------------------------------------------------------- creation

#[test]
fn accepted_subscribe_gets_200_with_contact_and_an_immediate_notify() {
    let mut e = engine();
    let now = Instant::now();
    let request = blink("");
    let new = respond_decide(e.on_subscribe(&request, flow(), Resource::Single, now));
    assert_eq!(new.event(), "presence");
    assert_eq!(new.event_id(), None);
    assert_eq!(new.expires(), 600);
    assert_eq!(new.subscriber(), "sip:alice@example.com");
    assert_eq!(new.resource(), "sip:bob@example.com");
    assert_eq!(new.accept(), ["application/pidf+xml".to_owned()]);
    assert_eq!(new.request().call_id().ok(), Some("4f7c2a9e-blink"));

    let decided = e.decide(new, Decision::Accept, Some(pidf(1)), now);
    let ok = response(&decided.response);
    let tag = to_tag(&ok);
    assert_eq!(tag.len(), 10);
    assert!(tag.bytes().all(|c| c.is_ascii_hexdigit()), "{tag}");
    assert_eq!(ok.status(), Some(200));
    expect_headers(
        &ok,
        &[
            (
                "Via",
                "SIP/2.0/TLS 10.0.0.2:50123;rport;branch=z9hG4bK.sub1",
            ),
            ("From", "\"Alice\" <sip:alice@example.com>;tag=a1b2c3"),
            ("To", &format!("<sip:bob@example.com>;tag={tag}")),
            ("Call-ID", "4f7c2a9e-blink"),
            ("CSeq", "1 SUBSCRIBE"),
            ("Contact", "<sip:presence@192.0.2.10:5061;transport=tls>"),
            ("Expires", "600"),
            ("Content-Length", "0"),
        ],
    );

    let n = only_notify(&decided.actions);
    assert_eq!(Some(n.id), decided.id);
    assert_eq!(n.dest, TLS);
    assert_eq!(
        n.request.request_uri(),
        Some("sip:48213907@10.0.0.2:50123;transport=tls")
    );
    let b = branch(&n.request);
    assert!(b.starts_with("z9hG4bK") && b.len() == 23, "{b}");
    assert!(b[7..].bytes().all(|c| c.is_ascii_hexdigit()), "{b}");
    let body = "<presence entity=\"sip:bob@example.com\">1</presence>";
    expect_headers(
        &n.request,
        &[
            ("Via", &format!("SIP/2.0/TLS 192.0.2.10:5061;branch={b}")),
            ("Max-Forwards", "70"),
            ("From", &format!("<sip:bob@example.com>;tag={tag}")),
            ("To", "\"Alice\" <sip:alice@example.com>;tag=a1b2c3"),
            ("Call-ID", "4f7c2a9e-blink"),
            ("Contact", "<sip:presence@192.0.2.10:5061;transport=tls>"),
            ("CSeq", "1 NOTIFY"),
            ("Event", "presence"),
            ("Subscription-State", "active;expires=600"),
            ("Content-Type", "application/pidf+xml"),
            ("Content-Length", &body.len().to_string()),
        ],
    );
    assert_eq!(n.request.body(), Bytes::from(body));
    assert!(matches!(
        decided.actions.as_slice(),
        [Action::SendNotify(Notify { reliable: true, .. })]
    ));

    let info = e
        .subscription(n.id)
        .map(|s| (s.state(), s.subscriber().to_owned()));
    assert_eq!(
        info,
        Some((SubState::Active, "sip:alice@example.com".to_owned()))
    );
    assert_eq!(e.len(), 1);
    assert_eq!(e.next_deadline(), Some(now + Duration::from_secs(600)));
}

#[test]
fn pending_subscription_notifies_pending_then_active_on_activation() {
    let mut e = engine();
    let now = Instant::now();
    let (id, ok, first) = establish(&mut e, &blink(""), Decision::Pending, None, now);
    assert_eq!(ok.status(), Some(200));
    assert_eq!(state_header(&first.request), "pending;expires=600");
    assert!(first.request.body().is_empty());
    assert_eq!(
        first.request.header(&sip_message::HeaderName::ContentType),
        None
    );

    // Authorised 10 s later, while the first NOTIFY is still in flight: waits for it.
    let later = now + Duration::from_secs(10);
    let actions = e.activate(id, Some(pidf(2)), later);
    assert!(sent(&actions.unwrap_or_default()).is_empty());
    let actions = e.on_notify_response(id, &reply(&first.request, 200, &[]), later);
    let second = only_notify(&actions);
    assert_eq!(state_header(&second.request), "active;expires=590");
    assert_eq!(cseq(&second.request), 2);
    assert_eq!(
        second.request.body(),
        Bytes::from("<presence entity=\"sip:bob@example.com\">2</presence>")
    );
}

#[test]
fn suspended_subscription_notifies_pending_without_the_state() {
    let mut e = engine();
    let now = Instant::now();
    let (id, _, first) = establish(&mut e, &blink(""), Decision::Accept, Some(pidf(1)), now);
    assert_eq!(state_header(&first.request), "active;expires=600");
    e.on_notify_response(id, &reply(&first.request, 200, &[]), now);
    let actions = e.suspend(id, None, now).unwrap_or_default();
    let second = only_notify(&actions);
    assert_eq!(state_header(&second.request), "pending;expires=600");
    assert!(second.request.body().is_empty());
    assert_eq!(
        e.subscription(id).map(|s| s.state()),
        Some(SubState::Pending)
    );
}

#[test]
fn pending_gets_202_when_configured() {
    let mut e = engine_with(Config {
        accepted_for_pending: true,
        ..config()
    });
    let now = Instant::now();
    let (_, ok, _) = establish(&mut e, &blink(""), Decision::Pending, None, now);
    assert_eq!(ok.status(), Some(202));
    assert_eq!(ok.reason(), Some("Accepted"));
    let (_, ok, _) = establish(
        &mut e,
        &subscribe("sip:carol@example.com", None, 1, "Event: presence\n"),
        Decision::Accept,
        None,
        now,
    );
    assert_eq!(ok.status(), Some(200));
}

#[test]
fn rejected_subscription_gets_the_package_status_and_no_state() {
    let mut e = engine();
    let now = Instant::now();
    let new = respond_decide(e.on_subscribe(&blink(""), flow(), Resource::Single, now));
    let decided = e.decide(new.clone(), Decision::Reject(403), None, now);
    let r = response(&decided.response);
    assert_eq!((r.status(), decided.id), (Some(403), None));
    assert_eq!(to_tag(&r).len(), 10);
    assert!(decided.actions.is_empty());
    assert!(e.is_empty());
    // A nonsense status becomes 403.
    let r = response(&e.decide(new, Decision::Reject(200), None, now).response);
    assert_eq!(r.status(), Some(403));
}

#[test]
fn no_expires_gets_the_default_and_long_ones_are_shortened() {
    let mut e = engine_with(Config {
        packages: vec![PackageConfig {
            default_expires: 1800,
            max_expires: 3600,
            ..presence()
        }],
        ..Config::default()
    });
    let now = Instant::now();
    let r = subscribe("sip:bob@example.com", None, 1, "Event: presence\n");
    let (_, ok, n) = establish(&mut e, &r, Decision::Accept, None, now);
    assert_eq!(header(&ok, "Expires"), "1800");
    assert_eq!(state_header(&n.request), "active;expires=1800");
    let r = subscribe(
        "sip:carol@example.com",
        None,
        1,
        "Event: presence\nExpires: 86400\n",
    );
    let (_, ok, _) = establish(&mut e, &r, Decision::Accept, None, now);
    assert_eq!(header(&ok, "Expires"), "3600");
}

#[test]
fn fetch_with_expires_zero_gets_one_terminated_notify_with_the_state() {
    let mut e = engine();
    let now = Instant::now();
    let r = subscribe(
        "sip:bob@example.com",
        None,
        1,
        "Event: presence\nExpires: 0\n",
    );
    let new = respond_decide(e.on_subscribe(&r, flow(), Resource::Single, now));
    assert_eq!(new.expires(), 0);
    let decided = e.decide(new, Decision::Accept, Some(pidf(3)), now);
    let ok = response(&decided.response);
    assert_eq!(header(&ok, "Expires"), "0");
    let n = only_notify(&decided.actions);
    assert_eq!(state_header(&n.request), "terminated;reason=timeout");
    assert!(!n.request.body().is_empty());
    assert_eq!(
        terminated(&decided.actions),
        vec![(n.id, EndCause::Unsubscribed)]
    );
    assert!(e
        .on_notify_response(n.id, &reply(&n.request, 200, &[]), now)
        .is_empty());
    assert!(e.is_empty());
    assert_eq!(e.next_deadline(), None);
}

// ---------------------------------------------------------------------------- refusals

#[test]
fn unknown_or_missing_event_gets_489_with_allow_events() {
    let mut e = engine();
    let now = Instant::now();
    for extra in ["Event: message-summary\n", ""] {
        let r = subscribe("sip:bob@example.com", None, 1, extra);
        let (resp, actions) = respond_now(e.on_subscribe(&r, flow(), Resource::Single, now));
        assert_eq!(resp.status(), Some(489));
        assert_eq!(resp.reason(), Some("Bad Event"));
        assert_eq!(header(&resp, "Allow-Events"), "presence, presence.winfo");
        assert_eq!(to_tag(&resp).len(), 10);
        assert!(actions.is_empty());
    }
    // presence.winfo has no list package.
    let r = subscribe(
        "sip:alice+presence@example.com",
        None,
        1,
        "Event: presence.winfo\nSupported: eventlist\n",
    );
    let (resp, _) = respond_now(e.on_subscribe(&r, flow(), Resource::List, now));
    assert_eq!(resp.status(), Some(489));
}

#[test]
fn malformed_headers_get_400_naming_the_problem() {
    let mut e = engine();
    let now = Instant::now();
    let r = subscribe("sip:bob@example.com", None, 1, "Event: pres ence\n");
    let (resp, _) = respond_now(e.on_subscribe(&r, flow(), Resource::Single, now));
    assert_eq!(
        (resp.status(), resp.reason()),
        (Some(400), Some("Invalid Event header"))
    );
    // Message::parse already refuses a bad Expires; a message parsed headers-only does not.
    let raw = "SUBSCRIBE sip:bob@example.com SIP/2.0\r\n\
               Via: SIP/2.0/TCP 10.0.0.2:5060;branch=z9hG4bK.e\r\n\
               From: <sip:alice@example.com>;tag=1\r\n\
               To: <sip:bob@example.com>\r\n\
               Call-ID: ex\r\n\
               CSeq: 1 SUBSCRIBE\r\n\
               Contact: <sip:a@10.0.0.2>\r\n\
               Event: presence\r\n\
               Expires: soon\r\n\
               Content-Length: 0\r\n\r\n";
    let r = Message::parse_headers_only(Bytes::from(raw), &Limits::default());
    let r = r.unwrap_or_else(|e| panic!("{e}"));
    let (resp, _) = respond_now(e.on_subscribe(&r, flow(), Resource::Single, now));
    assert_eq!(
        (resp.status(), resp.reason()),
        (Some(400), Some("Invalid Expires header"))
    );
    let no_contact = parse(
        "SUBSCRIBE sip:bob@example.com SIP/2.0\n\
         Via: SIP/2.0/TCP 10.0.0.2:5060;branch=z9hG4bK.x\n\
         From: <sip:alice@example.com>;tag=1\n\
         To: <sip:bob@example.com>\n\
         Call-ID: nc\n\
         CSeq: 1 SUBSCRIBE\n\
         Event: presence\n\
         Content-Length: 0\n\n",
    );
    let (resp, _) = respond_now(e.on_subscribe(&no_contact, flow(), Resource::Single, now));
    assert_eq!(
        (resp.status(), resp.reason()),
        (Some(400), Some("Missing Contact header"))
    );
    let no_tag = parse(
        "SUBSCRIBE sip:bob@example.com SIP/2.0\n\
         Via: SIP/2.0/TCP 10.0.0.2:5060;branch=z9hG4bK.y\n\
         From: <sip:alice@example.com>\n\
         To: <sip:bob@example.com>\n\
         Call-ID: nt\n\
         CSeq: 1 SUBSCRIBE\n\
         Contact: <sip:a@10.0.0.2>\n\
         Event: presence\n\
         Content-Length: 0\n\n",
    );
    let (resp, _) = respond_now(e.on_subscribe(&no_tag, flow(), Resource::Single, now));
    assert_eq!(
        (resp.status(), resp.reason()),
        (Some(400), Some("Missing From tag"))
    );
    let star = subscribe(
        "sip:bob@example.com",
        None,
        1,
        "Event: presence\nContact: *\n",
    );
    let (resp, _) = respond_now(e.on_subscribe(&star, flow(), Resource::Single, now));
    assert_eq!(resp.status(), Some(400));
    assert!(e.is_empty());
}

#[test]
fn too_brief_expires_gets_423_with_min_expires() {
    let mut e = engine();
    let r = subscribe(
        "sip:bob@example.com",
        None,
        1,
        "Event: presence\nExpires: 30\n",
    );
    let (resp, _) = respond_now(e.on_subscribe(&r, flow(), Resource::Single, Instant::now()));
    assert_eq!(resp.status(), Some(423));
    assert_eq!(header(&resp, "Min-Expires"), "60");
}

#[test]
fn unacceptable_accept_gets_406_listing_our_types_and_wildcards_fit() {
    let mut e = engine();
    let now = Instant::now();
    let r = subscribe(
        "sip:bob@example.com",
        None,
        1,
        "Event: presence\nAccept: application/cpim-pidf+xml\n",
    );
    let (resp, _) = respond_now(e.on_subscribe(&r, flow(), Resource::Single, now));
    assert_eq!(resp.status(), Some(406));
    assert_eq!(header(&resp, "Accept"), "application/pidf+xml");
    for accept in ["application/*", "*/*", "text/plain, APPLICATION/PIDF+XML"] {
        let r = subscribe(
            "sip:bob@example.com",
            None,
            1,
            &format!("Event: presence\nAccept: {accept}\n"),
        );
        respond_decide(e.on_subscribe(&r, flow(), Resource::Single, now));
    }
}

#[test]
fn list_subscription_requires_eventlist_support() {
    let mut e = engine();
    let now = Instant::now();
    let accept = "Accept: multipart/related, application/rlmi+xml, application/pidf+xml\n";
    let r = subscribe(
        "sip:alice+presence@example.com",
        None,
        1,
        &format!("Event: presence\n{accept}Expires: 600\n"),
    );
    let (resp, _) = respond_now(e.on_subscribe(&r, flow(), Resource::List, now));
    assert_eq!(resp.status(), Some(421));
    assert_eq!(resp.reason(), Some("Extension Required"));
    assert_eq!(header(&resp, "Require"), "eventlist");

    let r = subscribe(
        "sip:alice+presence@example.com",
        None,
        1,
        &format!("Event: presence\nSupported: eventlist\n{accept}Expires: 600\n"),
    );
    let new = respond_decide(e.on_subscribe(&r, flow(), Resource::List, now));
    let rlmi = Body::new(
        "multipart/related;type=\"application/rlmi+xml\";start=\"<l1@rls>\";boundary=\"b42\"",
        "--b42--\r\n",
    );
    let decided = e.decide(new, Decision::Accept, Some(rlmi), now);
    let ok = response(&decided.response);
    assert_eq!(ok.status(), Some(200));
    assert_eq!(header(&ok, "Require"), "eventlist");
    assert_eq!(
        header(&ok, "Contact"),
        "<sip:presence@192.0.2.10:5061;transport=tls>"
    );
    let n = only_notify(&decided.actions);
    assert_eq!(header(&n.request, "Require"), "eventlist");
    assert_eq!(
        header(&n.request, "Content-Type"),
        "multipart/related;type=\"application/rlmi+xml\";start=\"<l1@rls>\";boundary=\"b42\""
    );
}

#[test]
fn limits_give_503_overall_and_403_per_subscriber_and_resource() {
    let now = Instant::now();
    let mut e = engine_with(Config {
        max_per_subscriber: 1,
        ..config()
    });
    establish(&mut e, &blink(""), Decision::Accept, None, now);
    let r = subscribe("sip:carol@example.com", None, 1, "Event: presence\n");
    let (resp, _) = respond_now(e.on_subscribe(&r, flow(), Resource::Single, now));
    assert_eq!(resp.status(), Some(403));
    assert_eq!(
        resp.reason(),
        Some("Too Many Subscriptions From This Subscriber")
    );

    let mut e = engine_with(Config {
        max_per_resource: 1,
        ..config()
    });
    establish(&mut e, &blink(""), Decision::Accept, None, now);
    let (resp, _) = respond_now(e.on_subscribe(&blink(""), flow(), Resource::Single, now));
    assert_eq!(
        resp.reason(),
        Some("Too Many Subscriptions To This Resource")
    );

    let mut e = engine_with(Config {
        max_subscriptions: 1,
        ..config()
    });
    // Both pass the first check; the second is refused when decided.
    let first = respond_decide(e.on_subscribe(&blink(""), flow(), Resource::Single, now));
    let second = respond_decide(e.on_subscribe(&blink(""), flow(), Resource::Single, now));
    assert!(e.decide(first, Decision::Accept, None, now).id.is_some());
    let refused = e.decide(second, Decision::Accept, None, now);
    let resp = response(&refused.response);
    assert_eq!((resp.status(), refused.id), (Some(503), None));
    assert_eq!(header(&resp, "Retry-After"), "60");
}

// ---------------------------------------------------------------------------- in-dialog

#[test]
fn in_dialog_subscribe_for_no_dialog_gets_481() {
    let mut e = engine();
    let r = subscribe(
        "sip:bob@example.com",
        Some("nosuchtag"),
        2,
        "Event: presence\nExpires: 600\n",
    );
    let (resp, actions) = respond_now(e.on_subscribe(&r, flow(), Resource::Single, Instant::now()));
    assert_eq!(resp.status(), Some(481));
    assert_eq!(to_tag(&resp), "nosuchtag");
    assert!(actions.is_empty());
}

#[test]
fn refresh_extends_expiry_and_repeats_the_state_in_a_notify() {
    let mut e = engine();
    let now = Instant::now();
    let (id, ok, first) = establish(&mut e, &blink(""), Decision::Accept, Some(pidf(1)), now);
    let tag = to_tag(&ok);
    assert!(e
        .on_notify_response(id, &reply(&first.request, 200, &[]), now)
        .is_empty());

    let later = now + Duration::from_secs(500);
    let refresh = subscribe(
        "sip:bob@example.com",
        Some(&tag),
        2,
        "Event: presence\nAccept: application/pidf+xml\nExpires: 600\n",
    );
    let (resp, actions) = respond_now(e.on_subscribe(&refresh, flow(), Resource::Single, later));
    assert_eq!(resp.status(), Some(200));
    assert_eq!(header(&resp, "Expires"), "600");
    assert_eq!(
        header(&resp, "Contact"),
        "<sip:presence@192.0.2.10:5061;transport=tls>"
    );
    assert_eq!(to_tag(&resp), tag);
    let n = only_notify(&actions);
    assert_eq!(state_header(&n.request), "active;expires=600");
    assert_eq!(cseq(&n.request), 2);
    assert_eq!(n.request.body(), first.request.body());
    assert_eq!(e.next_deadline(), Some(later + Duration::from_secs(600)));
    // Nothing happens at the original expiry.
    assert!(e.on_timer(now + Duration::from_secs(600)).is_empty());
}

#[test]
fn out_of_order_refresh_gets_500() {
    let mut e = engine();
    let now = Instant::now();
    let (_, ok, _) = establish(&mut e, &blink(""), Decision::Accept, None, now);
    let tag = to_tag(&ok);
    let refresh = |cseq| {
        subscribe(
            "sip:bob@example.com",
            Some(&tag),
            cseq,
            "Event: presence\nExpires: 600\n",
        )
    };
    let (resp, _) = respond_now(e.on_subscribe(&refresh(5), flow(), Resource::Single, now));
    assert_eq!(resp.status(), Some(200));
    let (resp, actions) = respond_now(e.on_subscribe(&refresh(4), flow(), Resource::Single, now));
    assert_eq!(resp.status(), Some(500));
    assert_eq!(resp.reason(), Some("CSeq Out of Order"));
    assert!(actions.is_empty());
}

#[test]
fn refresh_below_min_expires_gets_423_and_keeps_the_subscription() {
    let mut e = engine();
    let now = Instant::now();
    let (id, ok, _) = establish(&mut e, &blink(""), Decision::Accept, None, now);
    let r = subscribe(
        "sip:bob@example.com",
        Some(&to_tag(&ok)),
        2,
        "Event: presence\nExpires: 10\n",
    );
    let (resp, _) = respond_now(e.on_subscribe(&r, flow(), Resource::Single, now));
    assert_eq!(resp.status(), Some(423));
    assert_eq!(
        e.subscription(id).map(|s| s.state()),
        Some(SubState::Active)
    );
}

#[test]
fn unsubscribe_gets_200_and_a_final_notify_then_481() {
    let mut e = engine();
    let now = Instant::now();
    let (id, ok, first) = establish(&mut e, &blink(""), Decision::Accept, Some(pidf(1)), now);
    e.on_notify_response(id, &reply(&first.request, 200, &[]), now);
    let tag = to_tag(&ok);
    let unsub = subscribe(
        "sip:bob@example.com",
        Some(&tag),
        2,
        "Event: presence\nExpires: 0\n",
    );
    let (resp, actions) = respond_now(e.on_subscribe(&unsub, flow(), Resource::Single, now));
    assert_eq!(resp.status(), Some(200));
    assert_eq!(header(&resp, "Expires"), "0");
    let n = only_notify(&actions);
    assert_eq!(state_header(&n.request), "terminated;reason=timeout");
    assert!(n.request.body().is_empty());
    assert_eq!(terminated(&actions), vec![(id, EndCause::Unsubscribed)]);
    assert_eq!(
        e.subscription(id).map(|s| s.state()),
        Some(SubState::Terminated(Reason::Timeout))
    );

    let again = subscribe(
        "sip:bob@example.com",
        Some(&tag),
        3,
        "Event: presence\nExpires: 600\n",
    );
    let (resp, _) = respond_now(e.on_subscribe(&again, flow(), Resource::Single, now));
    assert_eq!(resp.status(), Some(481));
    assert_eq!(
        e.notify(id, Some(pidf(2)), now).err(),
        Some(Gone::NoSubscription)
    );

    assert!(e
        .on_notify_response(id, &reply(&n.request, 200, &[]), now)
        .is_empty());
    assert!(e.is_empty());
    let (resp, _) = respond_now(e.on_subscribe(&again, flow(), Resource::Single, now));
    assert_eq!(resp.status(), Some(481));
}

#[test]
fn refresh_moves_notifies_to_the_new_flow_and_contact() {
    let mut e = engine();
    let now = Instant::now();
    let (id, ok, first) = establish(&mut e, &blink(""), Decision::Accept, None, now);
    e.on_notify_response(id, &reply(&first.request, 200, &[]), now);
    let refresh = parse(&format!(
        "SUBSCRIBE sip:bob@example.com SIP/2.0\n\
         Via: SIP/2.0/TCP 10.0.0.9:40000;branch=z9hG4bK.r\n\
         From: \"Alice\" <sip:alice@example.com>;tag=a1b2c3\n\
         To: <sip:bob@example.com>;tag={}\n\
         Call-ID: 4f7c2a9e-blink\n\
         CSeq: 2 SUBSCRIBE\n\
         Contact: <sip:11112222@10.0.0.9:40000;transport=tcp>\n\
         Event: presence\n\
         Expires: 600\n\
         Content-Length: 0\n\n",
        to_tag(&ok)
    ));
    let new_flow = Flow {
        dest: "tcp:198.51.100.7:40000",
        reliable: true,
        via: "SIP/2.0/TCP 192.0.2.10:5060".to_owned(),
        contact: "<sip:presence@192.0.2.10:5060;transport=tcp>".to_owned(),
    };
    let (resp, actions) = respond_now(e.on_subscribe(&refresh, new_flow, Resource::Single, now));
    assert_eq!(
        header(&resp, "Contact"),
        "<sip:presence@192.0.2.10:5060;transport=tcp>"
    );
    let n = only_notify(&actions);
    assert_eq!(n.dest, "tcp:198.51.100.7:40000");
    assert_eq!(
        n.request.request_uri(),
        Some("sip:11112222@10.0.0.9:40000;transport=tcp")
    );
    assert!(header(&n.request, "Via").starts_with("SIP/2.0/TCP 192.0.2.10:5060;branch="));
}

#[test]
fn record_route_becomes_the_route_set_in_order() {
    let mut e = engine();
    let now = Instant::now();
    let r = blink(
        "Record-Route: <sip:edge.example.com;lr>, <sip:core.example.com;lr;transport=tcp>\n\
         Record-Route: <sip:last.example.com;lr>\n",
    );
    let (_, _, n) = establish(&mut e, &r, Decision::Accept, None, now);
    assert_eq!(
        n.request.request_uri(),
        Some("sip:48213907@10.0.0.2:50123;transport=tls")
    );
    let routes: Vec<String> = headers(&n.request)
        .into_iter()
        .filter(|(name, _)| name == "Route")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        routes,
        [
            "<sip:edge.example.com;lr>",
            "<sip:core.example.com;lr;transport=tcp>",
            "<sip:last.example.com;lr>"
        ]
    );
}

#[test]
fn strict_first_route_becomes_the_request_uri() {
    let mut e = engine();
    let now = Instant::now();
    let r = blink("Record-Route: <sip:strict.example.com>, <sip:loose.example.com;lr>\n");
    let (_, _, n) = establish(&mut e, &r, Decision::Accept, None, now);
    assert_eq!(n.request.request_uri(), Some("sip:strict.example.com"));
    let routes: Vec<String> = headers(&n.request)
        .into_iter()
        .filter(|(name, _)| name == "Route")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        routes,
        [
            "<sip:loose.example.com;lr>",
            "<sip:48213907@10.0.0.2:50123;transport=tls>"
        ]
    );
}

#[test]
fn subscriptions_in_one_dialog_differ_by_event_id_and_share_the_cseq_space() {
    let mut e = engine();
    let now = Instant::now();
    let r = subscribe(
        "sip:bob@example.com",
        None,
        1,
        "Event: presence;id=1\nExpires: 600\n",
    );
    let (one, ok, n1) = establish(&mut e, &r, Decision::Accept, Some(pidf(1)), now);
    assert_eq!(header(&n1.request, "Event"), "presence;id=1");
    let tag = to_tag(&ok);
    let r2 = subscribe(
        "sip:bob@example.com",
        Some(&tag),
        2,
        "Event: presence;id=2\nExpires: 300\n",
    );
    let new = respond_decide(e.on_subscribe(&r2, flow(), Resource::Single, now));
    assert_eq!(new.event_id(), Some("2"));
    let decided = e.decide(new, Decision::Accept, Some(pidf(2)), now);
    let ok2 = response(&decided.response);
    assert_eq!(to_tag(&ok2), tag);
    let n2 = only_notify(&decided.actions);
    let two = n2.id;
    assert_ne!(one, two);
    assert_eq!(header(&n2.request, "Event"), "presence;id=2");
    assert_eq!((cseq(&n1.request), cseq(&n2.request)), (1, 2));
    assert_eq!(n2.request.call_id().ok(), Some("4f7c2a9e-blink"));

    e.on_notify_response(one, &reply(&n1.request, 200, &[]), now);
    e.on_notify_response(two, &reply(&n2.request, 200, &[]), now);
    // Unsubscribing id=2 leaves id=1 alone.
    let unsub = subscribe(
        "sip:bob@example.com",
        Some(&tag),
        3,
        "Event: presence;id=2\nExpires: 0\n",
    );
    let (resp, actions) = respond_now(e.on_subscribe(&unsub, flow(), Resource::Single, now));
    assert_eq!(resp.status(), Some(200));
    assert_eq!(terminated(&actions), vec![(two, EndCause::Unsubscribed)]);
    let fin = only_notify(&actions);
    assert_eq!(cseq(&fin.request), 3);
    e.on_notify_response(two, &reply(&fin.request, 200, &[]), now);
    let actions = e.notify(one, Some(pidf(3)), now).unwrap_or_default();
    assert_eq!(cseq(&only_notify(&actions).request), 4);
    // An id never subscribed in this dialog is a new subscription, not a refresh.
    let r3 = subscribe(
        "sip:bob@example.com",
        Some(&tag),
        5,
        "Event: presence;id=9\nExpires: 600\n",
    );
    respond_decide(e.on_subscribe(&r3, flow(), Resource::Single, now));
}

// ---------------------------------------------------------------------------- timers

#[test]
fn expiry_sends_terminated_timeout_without_sleeping() {
    let mut e = engine();
    let now = Instant::now();
    let (id, _, first) = establish(&mut e, &blink(""), Decision::Accept, Some(pidf(1)), now);
    e.on_notify_response(id, &reply(&first.request, 200, &[]), now);
    let at = now + Duration::from_secs(600);
    assert_eq!(e.next_deadline(), Some(at));
    assert!(e.on_timer(at - Duration::from_millis(1)).is_empty());
    let actions = e.on_timer(at);
    let n = only_notify(&actions);
    assert_eq!(state_header(&n.request), "terminated;reason=timeout");
    assert_eq!(terminated(&actions), vec![(id, EndCause::Expired)]);
    assert_eq!(e.next_deadline(), None);
    e.on_notify_response(id, &reply(&n.request, 200, &[]), at);
    assert!(e.is_empty());
}

#[test]
fn expiry_during_an_inflight_notify_sends_the_final_one_after_it() {
    let mut e = engine();
    let now = Instant::now();
    let (id, _, first) = establish(&mut e, &blink(""), Decision::Accept, Some(pidf(1)), now);
    let at = now + Duration::from_secs(600);
    let actions = e.on_timer(at);
    assert!(sent(&actions).is_empty());
    assert_eq!(terminated(&actions), vec![(id, EndCause::Expired)]);
    let actions = e.on_notify_response(id, &reply(&first.request, 200, &[]), at);
    assert_eq!(
        state_header(&only_notify(&actions).request),
        "terminated;reason=timeout"
    );
}

#[test]
fn notify_rate_limit_holds_and_coalesces() {
    let mut e = engine_with(Config {
        min_notify_interval: Duration::from_secs(2),
        ..config()
    });
    let now = Instant::now();
    let (id, _, first) = establish(&mut e, &blink(""), Decision::Accept, Some(pidf(1)), now);
    assert!(e
        .on_notify_response(id, &reply(&first.request, 200, &[]), now)
        .is_empty());
    // Nothing waits behind the hold yet, so only the expiry is armed.
    assert_eq!(e.next_deadline(), Some(now + Duration::from_secs(600)));
    for n in 2..=4 {
        assert!(sent(&e.notify(id, Some(pidf(n)), now).unwrap_or_default()).is_empty());
    }
    assert_eq!(e.next_deadline(), Some(now + Duration::from_secs(2)));
    assert!(e.on_timer(now + Duration::from_secs(1)).is_empty());
    let actions = e.on_timer(now + Duration::from_secs(2));
    let n = only_notify(&actions);
    assert_eq!(
        n.request.body(),
        Bytes::from("<presence entity=\"sip:bob@example.com\">4</presence>")
    );
    assert_eq!(e.next_deadline(), Some(now + Duration::from_secs(600)));
}

// ---------------------------------------------------------------------------- package-driven

#[test]
fn full_state_bodies_coalesce_behind_an_inflight_notify() {
    let mut e = engine();
    let now = Instant::now();
    let (id, _, first) = establish(&mut e, &blink(""), Decision::Accept, Some(pidf(1)), now);
    for n in 2..=5 {
        let actions = e.notify(id, Some(pidf(n)), now).unwrap_or_default();
        assert!(actions.is_empty());
    }
    let actions = e.on_notify_response(id, &reply(&first.request, 200, &[]), now);
    let n = only_notify(&actions);
    assert_eq!(
        n.request.body(),
        Bytes::from("<presence entity=\"sip:bob@example.com\">5</presence>")
    );
    assert_eq!(cseq(&n.request), 2);
    assert!(e
        .on_notify_response(id, &reply(&n.request, 200, &[]), now)
        .is_empty());
}

#[test]
fn terminate_sends_the_reason_and_never_drops_the_final_state() {
    let mut e = engine();
    let now = Instant::now();
    let (id, ok, first) = establish(&mut e, &blink(""), Decision::Accept, Some(pidf(1)), now);
    e.notify(id, Some(pidf(2)), now).unwrap_or_default();
    let actions = e
        .terminate(id, Reason::Probation(Some(120)), None, now)
        .unwrap_or_default();
    assert!(sent(&actions).is_empty());
    assert_eq!(
        terminated(&actions),
        vec![(id, EndCause::Package(Reason::Probation(Some(120))))]
    );
    assert_eq!(
        e.terminate(id, Reason::Rejected, None, now).err(),
        Some(Gone::NoSubscription)
    );
    let actions = e.on_notify_response(id, &reply(&first.request, 200, &[]), now);
    let fin = only_notify(&actions);
    assert_eq!(
        state_header(&fin.request),
        "terminated;reason=probation;retry-after=120"
    );
    assert!(fin.request.body().is_empty());

    let refresh = subscribe(
        "sip:bob@example.com",
        Some(&to_tag(&ok)),
        2,
        "Event: presence\nExpires: 600\n",
    );
    let (resp, _) = respond_now(e.on_subscribe(&refresh, flow(), Resource::Single, now));
    assert_eq!(resp.status(), Some(481));
    e.on_notify_response(id, &reply(&fin.request, 200, &[]), now);
    assert!(e.is_empty());
}

#[test]
fn every_termination_reason_is_written_per_rfc_6665() {
    let cases = [
        (Reason::Deactivated, "terminated;reason=deactivated"),
        (Reason::Probation(None), "terminated;reason=probation"),
        (Reason::Rejected, "terminated;reason=rejected"),
        (Reason::Timeout, "terminated;reason=timeout"),
        (
            Reason::Giveup(Some(30)),
            "terminated;reason=giveup;retry-after=30",
        ),
        (Reason::Noresource, "terminated;reason=noresource"),
        (Reason::Invariant, "terminated;reason=invariant"),
    ];
    for (reason, expected) in cases {
        let mut e = engine();
        let now = Instant::now();
        let (id, _, first) = establish(&mut e, &blink(""), Decision::Accept, None, now);
        e.on_notify_response(id, &reply(&first.request, 200, &[]), now);
        let actions = e
            .terminate(id, reason, Some(pidf(9)), now)
            .unwrap_or_default();
        let fin = only_notify(&actions);
        assert_eq!(state_header(&fin.request), expected);
        assert_eq!(header(&fin.request, "Content-Type"), "application/pidf+xml");
    }
}

#[test]
fn partial_bodies_go_out_in_order_and_overflow_asks_for_full_state() {
    let mut e = engine_with(Config {
        max_queued_notifies: 2,
        ..config()
    });
    let now = Instant::now();
    let r = subscribe(
        "sip:alice+presence@example.com",
        None,
        1,
        "Event: presence\nSupported: eventlist\nAccept: multipart/related\n",
    );
    let new = respond_decide(e.on_subscribe(&r, flow(), Resource::List, now));
    let v = |n: u32| Body::new("multipart/related", format!("version={n}"));
    let decided = e.decide(new, Decision::Accept, Some(v(0)), now);
    let id = decided.id.unwrap_or(SubId(0));
    let mut inflight = only_notify(&decided.actions).request;
    for n in 1..=2 {
        assert!(e.notify(id, Some(v(n)), now).unwrap_or_default().is_empty());
    }
    for n in 1..=2 {
        let actions = e.on_notify_response(id, &reply(&inflight, 200, &[]), now);
        inflight = only_notify(&actions).request;
        assert_eq!(inflight.body(), Bytes::from(format!("version={n}")));
    }
    // Three more while one is in flight: the third overflows the queue of two.
    for n in 3..=5 {
        assert!(e.notify(id, Some(v(n)), now).unwrap_or_default().is_empty());
    }
    let actions = e.on_notify_response(id, &reply(&inflight, 200, &[]), now);
    assert_eq!(content_needed(&actions), vec![(id, true)]);
    assert!(sent(&actions).is_empty());
    let actions = e
        .notify(id, Some(Body::new("multipart/related", "full")), now)
        .unwrap_or_default();
    let full = only_notify(&actions);
    assert_eq!(full.request.body(), Bytes::from("full"));

    // A refresh asks the package for content instead of repeating a delta.
    e.on_notify_response(id, &reply(&full.request, 200, &[]), now);
    let tag = to_tag(&response(&decided.response));
    let refresh = subscribe(
        "sip:alice+presence@example.com",
        Some(&tag),
        2,
        "Event: presence\nSupported: eventlist\n",
    );
    let (resp, actions) = respond_now(e.on_subscribe(&refresh, flow(), Resource::List, now));
    assert_eq!(header(&resp, "Require"), "eventlist");
    assert_eq!(content_needed(&actions), vec![(id, false)]);
    let actions = e.notify(id, Some(v(7)), now).unwrap_or_default();
    assert_eq!(
        only_notify(&actions).request.body(),
        Bytes::from("version=7")
    );
}

// ---------------------------------------------------------------------------- NOTIFY failures

#[test]
fn notify_481_or_timeout_ends_the_subscription_at_once() {
    let now = Instant::now();
    for code in [481, 404, 489, 604] {
        let mut e = engine();
        let (id, _, first) = establish(&mut e, &blink(""), Decision::Accept, None, now);
        let actions = e.on_notify_response(id, &reply(&first.request, code, &[]), now);
        assert!(sent(&actions).is_empty());
        assert_eq!(
            terminated(&actions),
            vec![(id, EndCause::NotifyFailed(Some(code)))]
        );
        assert!(e.is_empty());
        assert_eq!(e.next_deadline(), None);
    }
    let mut e = engine();
    let (id, ok, _) = establish(&mut e, &blink(""), Decision::Accept, None, now);
    let actions = e.on_notify_failed(id, now);
    assert_eq!(
        terminated(&actions),
        vec![(id, EndCause::NotifyFailed(None))]
    );
    assert!(e.is_empty());
    let refresh = subscribe(
        "sip:bob@example.com",
        Some(&to_tag(&ok)),
        2,
        "Event: presence\nExpires: 600\n",
    );
    let (resp, _) = respond_now(e.on_subscribe(&refresh, flow(), Resource::Single, now));
    assert_eq!(resp.status(), Some(481));
    // A second report for the same NOTIFY changes nothing.
    assert!(e.on_notify_failed(id, now).is_empty());
}

#[test]
fn soft_failures_retry_after_retry_after_and_end_after_three_in_a_row() {
    let mut e = engine();
    let now = Instant::now();
    let (id, _, first) = establish(&mut e, &blink(""), Decision::Accept, Some(pidf(1)), now);
    let actions = e.on_notify_response(
        id,
        &reply(&first.request, 503, &[("Retry-After", "30 (overloaded)")]),
        now,
    );
    assert!(actions.is_empty());
    assert_eq!(e.next_deadline(), Some(now + Duration::from_secs(30)));
    assert!(e.on_timer(now + Duration::from_secs(29)).is_empty());
    let t = now + Duration::from_secs(30);
    let actions = e.on_timer(t);
    let retry = only_notify(&actions);
    assert_eq!(retry.request.body(), first.request.body());
    assert_eq!(cseq(&retry.request), 2);
    assert_ne!(branch(&retry.request), branch(&first.request));

    // Success resets the count.
    e.on_notify_response(id, &reply(&retry.request, 200, &[]), t);
    let mut last = only_notify(&e.notify(id, Some(pidf(2)), t).unwrap_or_default()).request;
    let mut at = t;
    for round in 1..=3 {
        let actions = e.on_notify_response(id, &reply(&last, 500, &[]), at);
        if round == 3 {
            assert_eq!(
                terminated(&actions),
                vec![(id, EndCause::NotifyFailed(Some(500)))]
            );
            assert!(sent(&actions).is_empty());
            break;
        }
        assert!(actions.is_empty());
        // No Retry-After: the configured delay.
        at += Duration::from_secs(5);
        assert_eq!(e.next_deadline(), Some(at));
        last = only_notify(&e.on_timer(at)).request;
        assert_eq!(
            state_header(&last),
            format!("active;expires={}", 600 - 30 - 5 * round)
        );
    }
    assert!(e.is_empty());
}

#[test]
fn retry_after_is_capped_and_408_is_soft() {
    let mut e = engine_with(Config {
        max_retry_after: Duration::from_secs(60),
        ..config()
    });
    let now = Instant::now();
    let (id, _, first) = establish(&mut e, &blink(""), Decision::Accept, None, now);
    e.on_notify_response(
        id,
        &reply(&first.request, 408, &[("Retry-After", "86400")]),
        now,
    );
    assert_eq!(e.next_deadline(), Some(now + Duration::from_secs(60)));
    assert_eq!(
        e.subscription(id).map(|s| s.state()),
        Some(SubState::Active)
    );
}

#[test]
fn stale_and_provisional_responses_are_ignored() {
    let mut e = engine();
    let now = Instant::now();
    let (id, _, first) = establish(&mut e, &blink(""), Decision::Accept, None, now);
    assert!(e
        .on_notify_response(id, &reply(&first.request, 100, &[]), now)
        .is_empty());
    e.notify(id, Some(pidf(2)), now).unwrap_or_default();
    let actions = e.on_notify_response(id, &reply(&first.request, 200, &[]), now);
    let second = only_notify(&actions);
    // A late duplicate of the first NOTIFY's 481 does not touch the second one.
    assert!(e
        .on_notify_response(id, &reply(&first.request, 481, &[]), now)
        .is_empty());
    assert_eq!(
        e.subscription(id).map(|s| s.state()),
        Some(SubState::Active)
    );
    assert!(e
        .on_notify_response(SubId(999), &reply(&second.request, 200, &[]), now)
        .is_empty());
}

#[test]
fn failed_final_notify_is_not_retried() {
    let mut e = engine();
    let now = Instant::now();
    let (id, _, first) = establish(&mut e, &blink(""), Decision::Accept, None, now);
    e.on_notify_response(id, &reply(&first.request, 200, &[]), now);
    let actions = e
        .terminate(id, Reason::Deactivated, None, now)
        .unwrap_or_default();
    let fin = only_notify(&actions);
    let actions = e.on_notify_response(id, &reply(&fin.request, 503, &[]), now);
    assert!(actions.is_empty());
    assert!(e.is_empty());
}

// ---------------------------------------------------------------------------- persistence

#[test]
fn export_and_import_keep_dialogs_across_a_restart() {
    let mut e = engine();
    let now = Instant::now();
    let r = blink("Record-Route: <sip:edge.example.com;lr>\n");
    let (id, ok, first) = establish(&mut e, &r, Decision::Pending, None, now);
    e.on_notify_response(id, &reply(&first.request, 200, &[]), now);
    let later = now + Duration::from_secs(100);
    let records = e.export(later, 1_700_000_100);
    assert_eq!(records.len(), 1);
    let rec = &records[0];
    assert_eq!(
        (
            rec.dialog.id,
            rec.dialog.active,
            rec.expires_at,
            rec.dialog.local_cseq,
            rec.dialog.remote_cseq
        ),
        (id.0, false, 1_700_000_600, 1, 1)
    );
    assert_eq!(rec.dialog.local_tag, to_tag(&ok));
    assert_eq!(rec.dialog.route_set, ["<sip:edge.example.com;lr>"]);
    assert_eq!(
        rec.dialog.remote_uri,
        "\"Alice\" <sip:alice@example.com>;tag=a1b2c3"
    );
    assert_eq!(rec.flow.dest, TLS);

    // A new process, 50 s later.
    let restart = Instant::now() + Duration::from_secs(1000);
    let mut e2 = engine();
    let actions = e2.import(records.clone(), restart, 1_700_000_150);
    assert_eq!(content_needed(&actions), vec![(id, true)]);
    let actions = e2.activate(id, Some(pidf(5)), restart).unwrap_or_default();
    let n = only_notify(&actions);
    assert_eq!(cseq(&n.request), 2);
    assert_eq!(state_header(&n.request), "active;expires=450");
    assert_eq!(header(&n.request, "Route"), "<sip:edge.example.com;lr>");
    assert_eq!(e2.next_deadline(), Some(restart + Duration::from_secs(450)));
    // The subscriber's refresh still finds its dialog.
    e2.on_notify_response(id, &reply(&n.request, 200, &[]), restart);
    let refresh = subscribe(
        "sip:bob@example.com",
        Some(&to_tag(&ok)),
        2,
        "Event: presence\nExpires: 600\n",
    );
    let (resp, _) = respond_now(e2.on_subscribe(&refresh, flow(), Resource::Single, restart));
    assert_eq!(resp.status(), Some(200));
    // New subscriptions do not reuse the imported id.
    let (id2, _, _) = establish(
        &mut e2,
        &subscribe("sip:carol@example.com", None, 1, "Event: presence\n"),
        Decision::Accept,
        None,
        restart,
    );
    assert!(id2 > id);

    // Expired records, duplicates and unknown packages are skipped.
    let mut e3 = engine_with(Config {
        packages: vec![winfo()],
        ..Config::default()
    });
    assert!(e3
        .import(records.clone(), restart, 1_700_000_150)
        .is_empty());
    let mut e4 = engine();
    assert!(e4
        .import(records.clone(), restart, 1_700_000_600)
        .is_empty());
    assert_eq!(e2.import(records, restart, 1_700_000_150).len(), 0);
}
