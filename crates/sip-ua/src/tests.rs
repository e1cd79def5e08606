//! Whole exchanges driven with canned server messages; challenges come from the real
//! server-side digest code and the answers are verified by it.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::SeedableRng;
use sip_auth::{Algorithm, AuthOutcome, DigestCredentials, Nonces};
use sip_message::{response_to, HeaderName, Limits, Message, MessageWriter, Method};

use crate::*;

const SERVER: u8 = 1;
const NONCE_TIME: u64 = 1_000_000;

fn agent() -> UserAgent<u8> {
    UserAgent::new(Config::default(), StdRng::seed_from_u64(7))
}

fn flow() -> Flow<u8> {
    Flow {
        dest: SERVER,
        reliable: true,
        via: "SIP/2.0/TCP 192.0.2.10:5070;rport".into(),
        contact: "sip:dev1@192.0.2.10:5070;transport=tcp".into(),
    }
}

fn identity(password: Option<&str>) -> Identity {
    Identity {
        aor: "sip:alice@example.com".into(),
        display_name: Some("Alice \"A\"".into()),
        credentials: password.map(|p| Credentials {
            username: "alice".into(),
            password: p.into(),
        }),
    }
}

const INSTANCE: &str = "urn:uuid:00000000-0000-4000-8000-00000000000a";

fn register_params(password: Option<&str>) -> RegisterParams<u8> {
    RegisterParams {
        identity: identity(password),
        flow: flow(),
        instance: INSTANCE.into(),
        expires: 600,
    }
}

fn parse(bytes: Bytes) -> Message {
    Message::parse(bytes, &Limits::default()).expect("valid message")
}

/// The messages among the outputs (keepalives excluded), all to the server.
fn sent(out: &[Output<u8>]) -> Vec<Message> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send { dest, data } if data.as_ref() != b"\r\n\r\n" => {
                assert_eq!(*dest, SERVER);
                Some(parse(data.clone()))
            }
            _ => None,
        })
        .collect()
}

fn only_sent(out: &[Output<u8>]) -> Message {
    let mut messages = sent(out);
    assert_eq!(messages.len(), 1, "expected one message in {out:?}");
    messages.remove(0)
}

fn events(out: &[Output<u8>]) -> Vec<Event> {
    out.iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e.clone()),
            Output::Send { .. } => None,
        })
        .collect()
}

fn header<'a>(message: &'a Message, name: &str) -> Option<&'a str> {
    match HeaderName::from_wire(name) {
        HeaderName::Other => message.other_header(name),
        known => message.header(&known),
    }
}

/// A response to `request` with `extra` headers, as the server would send it.
fn reply(request: &Message, status: u16, extra: &[(&str, &str)]) -> Message {
    let mut w = response_to(
        request,
        status,
        sip_message::default_reason(status),
        Some("srv"),
    );
    for (name, value) in extra {
        w.header(name, value);
    }
    parse(w.finish(None, b""))
}

fn deliver(ua: &mut UserAgent<u8>, message: Message, now: Instant) -> Vec<Output<u8>> {
    ua.on_message(message, SERVER, true, now)
}

fn nonces() -> Nonces {
    Nonces::new(b"test secret of sufficient length!")
}

/// A 401 (or 407) offering MD5 and SHA-256 like avail-server does.
fn challenge(request: &Message, status: u16, stale: bool) -> Message {
    let name = if status == 407 {
        "Proxy-Authenticate"
    } else {
        "WWW-Authenticate"
    };
    let values = nonces().challenges(
        "example.com",
        stale,
        &[Algorithm::Md5, Algorithm::Sha256],
        NONCE_TIME,
    );
    let extra: Vec<(&str, &str)> = values.iter().map(|v| (name, v.as_str())).collect();
    reply(request, status, &extra)
}

/// Verify the request's credentials like the server does; returns the nc used.
fn verify(request: &Message, header: HeaderName, password: &str, nonces: &Nonces) -> AuthOutcome {
    let values = request.credentials(&header);
    assert_eq!(values.len(), 1, "one set of credentials");
    let credentials = values[0].clone().expect("parsable credentials");
    let digest = DigestCredentials::from_header(&credentials, "example.com");
    let algorithm = Algorithm::from_param(digest.algorithm).expect("known algorithm");
    assert_eq!(
        algorithm,
        Algorithm::Sha256,
        "the stronger algorithm is chosen"
    );
    assert_eq!(digest.uri, request.request_uri().unwrap());
    let stored = sip_auth::ha1(algorithm, "alice", "example.com", password);
    nonces.verify(
        request.method().unwrap().as_str(),
        &digest,
        &stored,
        NONCE_TIME + 1,
    )
}

fn fire(ua: &mut UserAgent<u8>, at: Instant) -> Vec<Output<u8>> {
    assert!(
        ua.next_deadline().is_some_and(|d| d <= at),
        "a deadline is due by then: {:?}",
        ua.next_deadline()
    );
    ua.on_timer(at)
}

#[test]
fn registration_answers_the_challenge_reads_gruus_refreshes_and_keeps_alive() {
    let mut ua = agent();
    let t0 = Instant::now();
    let (id, out) = ua.register(register_params(Some("secret")), t0).unwrap();
    let first = only_sent(&out);
    assert_eq!(first.method(), Some(&Method::Register));
    assert_eq!(first.request_uri(), Some("sip:example.com"));
    assert_eq!(
        header(&first, "Contact"),
        Some("<sip:dev1@192.0.2.10:5070;transport=tcp>;+sip.instance=\"<urn:uuid:00000000-0000-4000-8000-00000000000a>\"")
    );
    assert!(first.has_token(&HeaderName::Supported, "gruu"));
    assert!(first.has_token(&HeaderName::Supported, "path"));
    assert_eq!(first.u32_header(&HeaderName::Expires).unwrap(), Some(600));
    assert_eq!(
        first.from_header().unwrap().display_name.as_deref(),
        Some("Alice \"A\"")
    );
    assert!(first.header(&HeaderName::Authorization).is_none());

    let out = deliver(&mut ua, challenge(&first, 401, false), t0);
    let second = only_sent(&out);
    assert_eq!(second.call_id().unwrap(), first.call_id().unwrap());
    assert_eq!(second.cseq().unwrap().seq, first.cseq().unwrap().seq + 1);
    let server = nonces();
    assert_eq!(
        verify(&second, HeaderName::Authorization, "secret", &server),
        AuthOutcome::Ok
    );

    let contact = "<sip:other@198.51.100.1>;expires=900;+sip.instance=\"<urn:uuid:other>\";pub-gruu=\"sip:alice@example.com;gr=urn:uuid:other\", \
                   <sip:dev1@192.0.2.10:5070;transport=tcp>;expires=300;+sip.instance=\"<urn:uuid:00000000-0000-4000-8000-00000000000A>\";\
                   pub-gruu=\"sip:alice@example.com;gr=urn:uuid:00000000-0000-4000-8000-00000000000a\";temp-gruu=\"sip:tgruu.7@example.com;gr\"";
    let out = deliver(&mut ua, reply(&second, 200, &[("Contact", contact)]), t0);
    assert_eq!(
        events(&out),
        [Event::Registered {
            id,
            expires: 300,
            gruu: Some(
                "sip:alice@example.com;gr=urn:uuid:00000000-0000-4000-8000-00000000000a".into()
            ),
            temp_gruu: Some("sip:tgruu.7@example.com;gr".into()),
        }]
    );

    // CRLF keepalives every 30 s on the reliable flow.
    assert_eq!(ua.next_deadline(), Some(t0 + Duration::from_secs(30)));
    let out = fire(&mut ua, t0 + Duration::from_secs(30));
    assert_eq!(
        out,
        [Output::Send {
            dest: SERVER,
            data: Bytes::from_static(b"\r\n\r\n")
        }]
    );

    // Refresh at max(300/2, 300-60) = 240 s, with the next nonce count of the same nonce.
    let refresh_at = t0 + Duration::from_secs(240);
    let mut refresh = None;
    let mut at = t0 + Duration::from_secs(30);
    while at < refresh_at {
        at = ua.next_deadline().unwrap();
        refresh = sent(&ua.on_timer(at)).pop().or(refresh);
    }
    assert_eq!(at, refresh_at);
    let refresh = refresh.expect("a refresh REGISTER");
    assert_eq!(refresh.call_id().unwrap(), first.call_id().unwrap());
    let credentials = refresh.credentials(&HeaderName::Authorization);
    assert_eq!(credentials[0].as_ref().unwrap().nc, Some("00000002"));
    assert_eq!(
        verify(&refresh, HeaderName::Authorization, "secret", &server),
        AuthOutcome::Ok
    );
}

#[test]
fn proxy_challenge_stale_nonce_and_wrong_password() {
    let mut ua = agent();
    let t0 = Instant::now();
    let (id, out) = ua.register(register_params(Some("wrong")), t0).unwrap();
    let first = only_sent(&out);
    let second = only_sent(&deliver(&mut ua, challenge(&first, 407, false), t0));
    assert!(second.header(&HeaderName::ProxyAuthorization).is_some());
    assert!(second.header(&HeaderName::Authorization).is_none());

    // A stale nonce is not a refusal: answered again at once.
    let third = only_sent(&deliver(&mut ua, challenge(&second, 407, true), t0));
    assert_eq!(third.cseq().unwrap().seq, second.cseq().unwrap().seq + 1);

    // A fresh challenge to a request that carried an answer: wrong credentials.
    let out = deliver(&mut ua, challenge(&third, 407, false), t0);
    assert!(sent(&out).is_empty());
    let [Event::RegistrationFailed {
        id: failed,
        status: 407,
        retry_at,
    }] = events(&out)[..]
    else {
        panic!("expected a failure, got {out:?}");
    };
    assert_eq!(failed, id);
    // First back-off step: between half and all of the 30 s base.
    assert!(retry_at >= t0 + Duration::from_secs(15) && retry_at <= t0 + Duration::from_secs(30));

    // The retry starts without the refused answer.
    let retry = only_sent(&fire(&mut ua, retry_at));
    assert!(retry.header(&HeaderName::ProxyAuthorization).is_none());
}

#[test]
fn registration_without_credentials_fails_on_a_challenge() {
    let mut ua = agent();
    let t0 = Instant::now();
    let (_, out) = ua.register(register_params(None), t0).unwrap();
    let out = deliver(&mut ua, challenge(&only_sent(&out), 401, false), t0);
    assert!(matches!(
        events(&out)[..],
        [Event::RegistrationFailed { status: 401, .. }]
    ));
}

#[test]
fn interval_too_brief_retries_with_min_expires() {
    let mut ua = agent();
    let t0 = Instant::now();
    let (_, out) = ua.register(register_params(None), t0).unwrap();
    let first = only_sent(&out);
    let retry = only_sent(&deliver(
        &mut ua,
        reply(&first, 423, &[("Min-Expires", "1200")]),
        t0,
    ));
    assert_eq!(retry.u32_header(&HeaderName::Expires).unwrap(), Some(1200));
    // A Min-Expires not above what was refused cannot help: failure.
    let out = deliver(&mut ua, reply(&retry, 423, &[("Min-Expires", "1200")]), t0);
    assert!(matches!(
        events(&out)[..],
        [Event::RegistrationFailed { status: 423, .. }]
    ));
}

#[test]
fn unregister_sends_expires_zero_and_forgets_the_registration() {
    let mut ua = agent();
    let t0 = Instant::now();
    let (id, out) = ua.register(register_params(None), t0).unwrap();
    let first = only_sent(&out);
    // Asked while the REGISTER is in flight: the removal follows its answer.
    assert!(ua.unregister(id, t0).unwrap().is_empty());
    assert_eq!(ua.unregister(id, t0), Err(UaError::Closing));
    let out = deliver(&mut ua, reply(&first, 200, &[("Expires", "600")]), t0);
    assert!(matches!(events(&out)[..], [Event::Registered { .. }]));
    let removal = only_sent(&out);
    assert_eq!(removal.u32_header(&HeaderName::Expires).unwrap(), Some(0));
    assert_eq!(header(&removal, "Contact"), header(&first, "Contact"));
    let out = deliver(&mut ua, reply(&removal, 200, &[]), t0);
    assert_eq!(events(&out), [Event::Unregistered { id }]);
    assert_eq!(ua.unregister(id, t0), Err(UaError::UnknownId));
    assert_eq!(ua.next_deadline(), None);
}

#[test]
fn no_answer_is_a_408_and_a_broken_flow_a_503() {
    let mut ua = agent();
    let t0 = Instant::now();
    let (_, out) = ua.register(register_params(None), t0).unwrap();
    only_sent(&out);
    // Timer F: 64*T1 = 32 s.
    let out = fire(&mut ua, t0 + Duration::from_secs(32));
    let [Event::RegistrationFailed {
        status: 408,
        retry_at,
        ..
    }] = events(&out)[..]
    else {
        panic!("expected a timeout, got {out:?}");
    };
    only_sent(&fire(&mut ua, retry_at));
    let out = ua.on_flow_failed(&SERVER, retry_at);
    assert!(matches!(
        events(&out)[..],
        [Event::RegistrationFailed { status: 503, .. }]
    ));
    assert!(ua.on_flow_failed(&9, retry_at).is_empty());
}

fn publish_params() -> PublishParams<u8> {
    PublishParams {
        identity: identity(Some("secret")),
        flow: flow(),
        resource: None,
        event: "presence".into(),
        content_type: "application/pidf+xml".into(),
        body: Bytes::from_static(b"<presence v=1/>"),
        expires: 600,
    }
}

#[test]
fn publication_initial_refresh_modify_412_and_remove() {
    let mut ua = agent();
    let t0 = Instant::now();
    let (id, out) = ua.publish(publish_params(), t0).unwrap();
    let initial = only_sent(&out);
    assert_eq!(initial.method(), Some(&Method::Publish));
    assert_eq!(initial.request_uri(), Some("sip:alice@example.com"));
    assert_eq!(header(&initial, "Event"), Some("presence"));
    assert_eq!(
        header(&initial, "Content-Type"),
        Some("application/pidf+xml")
    );
    assert_eq!(initial.body().as_ref(), b"<presence v=1/>");
    assert!(initial.header(&HeaderName::SipIfMatch).is_none());

    // Digest on PUBLISH too.
    let initial = only_sent(&deliver(&mut ua, challenge(&initial, 401, false), t0));
    assert_eq!(initial.body().as_ref(), b"<presence v=1/>");
    assert_eq!(
        verify(&initial, HeaderName::Authorization, "secret", &nonces()),
        AuthOutcome::Ok
    );
    let out = deliver(
        &mut ua,
        reply(&initial, 200, &[("SIP-ETag", "e1"), ("Expires", "120")]),
        t0,
    );
    assert_eq!(
        events(&out),
        [Event::Published {
            id,
            etag: Some("e1".into()),
            expires: 120
        }]
    );

    // Refresh at max(60, 60) s: no body, SIP-If-Match.
    let t1 = t0 + Duration::from_secs(60);
    assert_eq!(ua.next_deadline(), Some(t1));
    let refresh = only_sent(&ua.on_timer(t1));
    assert_eq!(refresh.header(&HeaderName::SipIfMatch), Some("e1"));
    assert!(refresh.body().is_empty());
    assert!(refresh.header(&HeaderName::ContentType).is_none());
    deliver(
        &mut ua,
        reply(&refresh, 200, &[("SIP-ETag", "e2"), ("Expires", "120")]),
        t1,
    );

    // Modify: body and If-Match; a 412 makes it publish the current body afresh.
    let out = ua
        .modify_publication(id, Bytes::from_static(b"<presence v=2/>"), t1)
        .unwrap();
    let modify = only_sent(&out);
    assert_eq!(modify.header(&HeaderName::SipIfMatch), Some("e2"));
    assert_eq!(modify.body().as_ref(), b"<presence v=2/>");
    let fresh = only_sent(&deliver(&mut ua, reply(&modify, 412, &[]), t1));
    assert!(fresh.header(&HeaderName::SipIfMatch).is_none());
    assert_eq!(fresh.body().as_ref(), b"<presence v=2/>");
    deliver(
        &mut ua,
        reply(&fresh, 200, &[("SIP-ETag", "e3"), ("Expires", "120")]),
        t1,
    );

    let removal = only_sent(&ua.unpublish(id, t1).unwrap());
    assert_eq!(removal.u32_header(&HeaderName::Expires).unwrap(), Some(0));
    assert_eq!(removal.header(&HeaderName::SipIfMatch), Some("e3"));
    assert!(removal.body().is_empty());
    let out = deliver(&mut ua, reply(&removal, 200, &[]), t1);
    assert_eq!(events(&out), [Event::Unpublished { id }]);
    assert_eq!(ua.next_deadline(), None);
}

#[test]
fn publication_changes_wait_for_the_request_in_flight() {
    let mut ua = agent();
    let t0 = Instant::now();
    let (id, out) = ua.publish(publish_params(), t0).unwrap();
    let initial = only_sent(&out);
    assert!(ua
        .modify_publication(id, Bytes::from_static(b"<presence v=2/>"), t0)
        .unwrap()
        .is_empty());
    let out = deliver(&mut ua, reply(&initial, 200, &[("SIP-ETag", "e1")]), t0);
    let modify = only_sent(&out);
    assert_eq!(modify.header(&HeaderName::SipIfMatch), Some("e1"));
    assert_eq!(modify.body().as_ref(), b"<presence v=2/>");

    // 423 on the modification keeps it a modification, with the larger lifetime.
    let retry = only_sent(&deliver(
        &mut ua,
        reply(&modify, 423, &[("Min-Expires", "900")]),
        t0,
    ));
    assert_eq!(retry.u32_header(&HeaderName::Expires).unwrap(), Some(900));
    assert_eq!(retry.body().as_ref(), b"<presence v=2/>");

    // A failed modification is retried with its body after the back-off.
    let out = deliver(&mut ua, reply(&retry, 500, &[("Retry-After", "10")]), t0);
    let [Event::PublicationFailed {
        status: 500,
        retry_at,
        ..
    }] = events(&out)[..]
    else {
        panic!("expected a failure, got {out:?}");
    };
    assert_eq!(retry_at, t0 + Duration::from_secs(10));
    let again = only_sent(&fire(&mut ua, retry_at));
    assert_eq!(again.body().as_ref(), b"<presence v=2/>");
    assert_eq!(again.header(&HeaderName::SipIfMatch), Some("e1"));
}

#[test]
fn oversized_and_unsafe_parameters_are_refused() {
    let mut ua = agent();
    let t0 = Instant::now();
    let mut params = publish_params();
    params.body = Bytes::from(vec![b'x'; Config::default().max_body_bytes + 1]);
    assert_eq!(ua.publish(params, t0).unwrap_err(), UaError::BodyTooLarge);
    let mut params = publish_params();
    params.event = "presence\r\nX-Injected: 1".into();
    assert_eq!(
        ua.publish(params, t0).unwrap_err(),
        UaError::InvalidParameter("event")
    );
    let mut params = register_params(None);
    params.identity.aor = "sip:example.com".into();
    assert_eq!(
        ua.register(params, t0).unwrap_err(),
        UaError::InvalidParameter("aor")
    );
    let mut params = register_params(None);
    params.expires = 0;
    assert_eq!(
        ua.register(params, t0).unwrap_err(),
        UaError::InvalidParameter("expires")
    );
    let mut params = subscribe_params();
    params.target = "sip:bob@exa mple.com".into();
    assert_eq!(
        ua.subscribe(params, t0).unwrap_err(),
        UaError::InvalidParameter("target")
    );
    assert_eq!(
        ua.unsubscribe(SubscriptionId(99), t0),
        Err(UaError::UnknownId)
    );
}

fn subscribe_params() -> SubscribeParams<u8> {
    SubscribeParams {
        identity: identity(Some("secret")),
        flow: flow(),
        target: "sip:alice+presence@example.com".into(),
        event: "presence".into(),
        event_id: Some("7".into()),
        accept: vec![
            "multipart/related".into(),
            "application/rlmi+xml".into(),
            "application/pidf+xml".into(),
        ],
        list: true,
        expires: 600,
        body: None,
    }
}

/// A NOTIFY in the dialog of `subscribe`, from the notifier whose tag is `tag`.
fn notify(
    subscribe: &Message,
    tag: &str,
    cseq: u32,
    state: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) -> Message {
    let from = subscribe.from_header().unwrap();
    let mut w = MessageWriter::request(&Method::Notify, "sip:dev1@192.0.2.10:5070;transport=tcp");
    w.header_fmt(
        "Via",
        format_args!("SIP/2.0/TCP 203.0.113.5;branch=z9hG4bKn{cseq}{tag}"),
    )
    .header("Max-Forwards", "70")
    .header_fmt(
        "From",
        format_args!("<sip:alice+presence@example.com>;tag={tag}"),
    )
    .header("To", from.text)
    .header("Call-ID", subscribe.call_id().unwrap())
    .header_fmt("CSeq", format_args!("{cseq} NOTIFY"))
    .header("Event", "presence;id=7")
    .header("Subscription-State", state);
    for (name, value) in extra {
        w.header(name, value);
    }
    let content_type = (!body.is_empty()).then_some("application/rlmi+xml");
    parse(w.finish(content_type, body))
}

/// The status of the response among the outputs (to the NOTIFY).
fn answered(out: &[Output<u8>]) -> u16 {
    sent(out)
        .iter()
        .find(|m| !m.is_request())
        .and_then(Message::status)
        .expect("a response")
}

#[test]
fn notify_before_the_2xx_creates_the_dialog() {
    let mut ua = agent();
    let t0 = Instant::now();
    let (id, out) = ua.subscribe(subscribe_params(), t0).unwrap();
    let subscribe = only_sent(&out);
    assert_eq!(
        subscribe.request_uri(),
        Some("sip:alice+presence@example.com")
    );
    assert_eq!(header(&subscribe, "Event"), Some("presence;id=7"));
    assert!(subscribe.has_token(&HeaderName::Supported, "eventlist"));
    assert_eq!(
        subscribe
            .header_values(&HeaderName::Accept)
            .collect::<Vec<_>>(),
        [
            "multipart/related",
            "application/rlmi+xml",
            "application/pidf+xml"
        ]
    );
    assert_eq!(
        header(&subscribe, "Contact"),
        Some("<sip:dev1@192.0.2.10:5070;transport=tcp>")
    );
    assert!(subscribe.to_header().unwrap().tag().is_none());

    let first = notify(
        &subscribe,
        "n1",
        1,
        "active;expires=600",
        &[
            ("Contact", "<sip:rls@203.0.113.5;transport=tcp>"),
            (
                "Record-Route",
                "<sip:p1.example.com;lr>, <sip:p2.example.com;lr>",
            ),
        ],
        b"<list/>",
    );
    let out = deliver(&mut ua, first, t0);
    assert_eq!(answered(&out), 200);
    let status = SubscriptionStatus::Active { expires: Some(600) };
    assert_eq!(
        events(&out),
        [
            Event::Notify {
                id,
                status: status.clone(),
                content_type: Some("application/rlmi+xml".into()),
                body: Bytes::from_static(b"<list/>"),
            },
            Event::SubscriptionState {
                id,
                status,
                resubscribe_at: None
            }
        ]
    );

    // The 2xx arrives later with the same tag: nothing new for the application.
    let ok = reply(
        &subscribe,
        200,
        &[("Expires", "600"), ("Contact", "<sip:other@203.0.113.9>")],
    );
    let out = deliver(&mut ua, ok, t0);
    assert!(out.is_empty(), "{out:?}");

    // The refresh goes in the dialog the NOTIFY made: its Contact, its Record-Route in order.
    let t1 = t0 + Duration::from_secs(540);
    assert_eq!(ua.next_deadline(), Some(t1));
    let refresh = only_sent(&ua.on_timer(t1));
    assert_eq!(
        refresh.request_uri(),
        Some("sip:rls@203.0.113.5;transport=tcp")
    );
    assert_eq!(refresh.to_header().unwrap().tag(), Some("n1"));
    assert_eq!(refresh.call_id().unwrap(), subscribe.call_id().unwrap());
    assert_eq!(
        refresh
            .header_values(&HeaderName::Route)
            .collect::<Vec<_>>(),
        ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    );
}

#[test]
fn the_2xx_creates_the_dialog_with_the_route_set_reversed() {
    let mut ua = agent();
    let t0 = Instant::now();
    let (_, out) = ua.subscribe(subscribe_params(), t0).unwrap();
    let subscribe = only_sent(&out);
    let ok = reply(
        &subscribe,
        200,
        &[
            ("Expires", "100"),
            ("Contact", "<sip:notifier@203.0.113.5>"),
            ("Record-Route", "<sip:p2.example.com;lr>"),
            ("Record-Route", "<sip:p1.example.com;lr>"),
        ],
    );
    assert!(deliver(&mut ua, ok, t0).is_empty());
    // Refresh at max(50, 40) s.
    let t1 = t0 + Duration::from_secs(50);
    assert_eq!(ua.next_deadline(), Some(t1));
    let refresh = only_sent(&ua.on_timer(t1));
    assert_eq!(refresh.request_uri(), Some("sip:notifier@203.0.113.5"));
    assert_eq!(refresh.to_header().unwrap().tag(), Some("srv"));
    assert_eq!(
        refresh
            .header_values(&HeaderName::Route)
            .collect::<Vec<_>>(),
        ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    );
    assert_eq!(refresh.u32_header(&HeaderName::Expires).unwrap(), Some(600));

    // A NOTIFY from another dialog (a fork) is refused; one from ours is taken.
    let stray = notify(
        &subscribe,
        "other",
        1,
        "active",
        &[("Contact", "<sip:x@h>")],
        b"",
    );
    assert_eq!(answered(&deliver(&mut ua, stray, t1)), 481);
    let ours = notify(&subscribe, "srv", 5, "active;expires=60", &[], b"");
    assert_eq!(answered(&deliver(&mut ua, ours, t1)), 200);
    // Lower CSeq than the last one from the notifier: out of order.
    let old = notify(&subscribe, "srv", 4, "active", &[], b"");
    assert_eq!(answered(&deliver(&mut ua, old, t1)), 500);
}

#[test]
fn malformed_or_unknown_notifies_are_refused() {
    let mut ua = agent();
    let t0 = Instant::now();
    let (_, out) = ua.subscribe(subscribe_params(), t0).unwrap();
    let subscribe = only_sent(&out);
    let contact = [("Contact", "<sip:n@203.0.113.5>")];

    let mut other = subscribe_params();
    other.event = "presence.winfo".into();
    let (_, out) = ua.subscribe(other, t0).unwrap();
    let winfo = only_sent(&out);
    // Event presence;id=7 does not match the winfo subscription's dialog.
    assert_eq!(
        answered(&deliver(
            &mut ua,
            notify(&winfo, "a", 1, "active", &contact, b""),
            t0
        )),
        489
    );
    let no_state = {
        let text = String::from_utf8(
            notify(&subscribe, "a", 1, "active", &contact, b"")
                .as_bytes()
                .to_vec(),
        )
        .unwrap();
        parse(Bytes::from(
            text.replace("Subscription-State: active\r\n", ""),
        ))
    };
    assert_eq!(answered(&deliver(&mut ua, no_state, t0)), 400);
    let no_contact = notify(&subscribe, "a", 1, "active", &[], b"");
    assert_eq!(answered(&deliver(&mut ua, no_contact, t0)), 400);

    // Unknown dialog: 481; and requests other than NOTIFY: 405.
    let mut unknown_sub = subscribe.as_bytes().to_vec();
    let text = String::from_utf8(std::mem::take(&mut unknown_sub)).unwrap();
    let unknown = parse(Bytes::from(
        text.replace(subscribe.call_id().unwrap(), "nobody"),
    ));
    let unknown = notify(&unknown, "a", 1, "active", &contact, b"");
    assert_eq!(answered(&deliver(&mut ua, unknown, t0)), 481);
    let mut options = MessageWriter::request(&Method::Options, "sip:dev1@192.0.2.10");
    options
        .header("Via", "SIP/2.0/TCP 203.0.113.5;branch=z9hG4bKopt")
        .header("From", "<sip:x@example.com>;tag=1")
        .header("To", "<sip:dev1@192.0.2.10>")
        .header("Call-ID", "o")
        .header("CSeq", "1 OPTIONS");
    let out = deliver(&mut ua, parse(options.finish(None, b"")), t0);
    assert_eq!(answered(&out), 405);
    assert_eq!(header(&sent(&out)[0], "Allow"), Some("NOTIFY"));
}

/// Drive a subscription to active and terminate it with `state`; returns the outputs of the
/// terminating NOTIFY, the SUBSCRIBE and the time.
fn terminate(
    state: &str,
) -> (
    UserAgent<u8>,
    SubscriptionId,
    Message,
    Vec<Output<u8>>,
    Instant,
) {
    let mut ua = agent();
    let t0 = Instant::now();
    let (id, out) = ua.subscribe(subscribe_params(), t0).unwrap();
    let subscribe = only_sent(&out);
    deliver(
        &mut ua,
        reply(
            &subscribe,
            200,
            &[("Expires", "600"), ("Contact", "<sip:n@203.0.113.5>")],
        ),
        t0,
    );
    let active = notify(&subscribe, "srv", 1, "active;expires=600", &[], b"");
    assert_eq!(answered(&deliver(&mut ua, active, t0)), 200);
    let out = deliver(&mut ua, notify(&subscribe, "srv", 2, state, &[], b""), t0);
    assert_eq!(answered(&out), 200);
    (ua, id, subscribe, out, t0)
}

fn terminated_event(out: &[Output<u8>]) -> (SubscriptionStatus, Option<Instant>) {
    events(out)
        .into_iter()
        .find_map(|e| match e {
            Event::SubscriptionState {
                status: status @ SubscriptionStatus::Terminated { .. },
                resubscribe_at,
                ..
            } => Some((status, resubscribe_at)),
            _ => None,
        })
        .expect("a terminated state")
}

#[test]
fn deactivated_and_timeout_resubscribe_at_once_in_a_new_dialog() {
    for reason in ["deactivated", "timeout"] {
        let (_, _, subscribe, out, t0) = terminate(&format!("terminated;reason={reason}"));
        let (_, resubscribe_at) = terminated_event(&out);
        assert_eq!(resubscribe_at, Some(t0));
        let again = sent(&out)
            .into_iter()
            .find(Message::is_request)
            .expect("a new SUBSCRIBE");
        assert_eq!(again.method(), Some(&Method::Subscribe));
        assert_ne!(again.call_id().unwrap(), subscribe.call_id().unwrap());
        assert!(again.to_header().unwrap().tag().is_none());
        assert_eq!(again.request_uri(), Some("sip:alice+presence@example.com"));
    }
}

#[test]
fn probation_and_giveup_wait_for_retry_after() {
    for reason in ["probation", "giveup"] {
        let (mut ua, _, _, out, t0) =
            terminate(&format!("terminated;reason={reason};retry-after=120"));
        let (status, resubscribe_at) = terminated_event(&out);
        assert_eq!(
            status,
            SubscriptionStatus::Terminated {
                reason: Some(TerminationReason::parse(reason)),
                retry_after: Some(120)
            }
        );
        let at = t0 + Duration::from_secs(120);
        assert_eq!(resubscribe_at, Some(at));
        assert!(sent(&out).iter().all(|m| !m.is_request()));
        assert_eq!(ua.next_deadline(), Some(at));
        let again = only_sent(&ua.on_timer(at));
        assert_eq!(again.method(), Some(&Method::Subscribe));
    }
}

#[test]
fn rejected_noresource_and_invariant_end_the_subscription() {
    for reason in ["rejected", "noresource", "invariant"] {
        let (mut ua, id, _, out, t0) = terminate(&format!("terminated;reason={reason}"));
        let (_, resubscribe_at) = terminated_event(&out);
        assert_eq!(resubscribe_at, None);
        assert!(sent(&out).iter().all(|m| !m.is_request()));
        assert_eq!(ua.unsubscribe(id, t0), Err(UaError::UnknownId));
        assert_eq!(ua.next_deadline(), None, "{reason}");
    }
}

#[test]
fn unsubscribe_then_final_notify() {
    let (mut ua, id, subscribe, _, t0) = terminate("active;expires=600");
    let out = ua.unsubscribe(id, t0).unwrap();
    let request = only_sent(&out);
    assert_eq!(request.u32_header(&HeaderName::Expires).unwrap(), Some(0));
    assert_eq!(request.to_header().unwrap().tag(), Some("srv"));
    assert!(deliver(&mut ua, reply(&request, 200, &[("Expires", "0")]), t0).is_empty());
    let last = notify(&subscribe, "srv", 3, "terminated;reason=timeout", &[], b"");
    let out = deliver(&mut ua, last, t0);
    assert_eq!(answered(&out), 200);
    assert_eq!(events(&out).last(), Some(&Event::Unsubscribed { id }));
    assert!(
        sent(&out).iter().all(|m| !m.is_request()),
        "no re-subscription"
    );
    assert_eq!(ua.next_deadline(), None);
}

#[test]
fn unsubscribe_without_final_notify_ends_after_the_wait() {
    let (mut ua, id, _, _, t0) = terminate("active;expires=600");
    let request = only_sent(&ua.unsubscribe(id, t0).unwrap());
    deliver(&mut ua, reply(&request, 200, &[]), t0);
    let out = fire(&mut ua, t0 + Config::default().final_notify_wait);
    assert_eq!(events(&out), [Event::Unsubscribed { id }]);
}

#[test]
fn refresh_refused_with_481_starts_a_new_subscription() {
    let (mut ua, id, subscribe, _, t0) = terminate("active;expires=600");
    let t1 = t0 + Duration::from_secs(540);
    let refresh = only_sent(&fire(&mut ua, t1));
    let out = deliver(&mut ua, reply(&refresh, 481, &[]), t1);
    let (_, resubscribe_at) = terminated_event(&out);
    assert_eq!(resubscribe_at, Some(t1));
    let again = only_sent(&out);
    assert_ne!(again.call_id().unwrap(), subscribe.call_id().unwrap());
    // The old dialog's NOTIFYs are no longer ours.
    let late = notify(&subscribe, "srv", 9, "active", &[], b"");
    assert_eq!(answered(&deliver(&mut ua, late, t1)), 481);
    let _ = id;
}

#[test]
fn a_refused_refresh_keeps_the_subscription_until_it_expires() {
    let (mut ua, id, _, _, t0) = terminate("active;expires=600");
    let t1 = t0 + Duration::from_secs(540);
    let refresh = only_sent(&fire(&mut ua, t1));
    // Retry-After 30 s is before the end of the lifetime (600 s): the dialog is kept.
    let out = deliver(&mut ua, reply(&refresh, 503, &[("Retry-After", "30")]), t1);
    assert_eq!(
        events(&out),
        [Event::SubscriptionFailed {
            id,
            status: 503,
            retry_at: t1 + Duration::from_secs(30)
        }]
    );
    let retry = only_sent(&fire(&mut ua, t1 + Duration::from_secs(30)));
    assert_eq!(retry.to_header().unwrap().tag(), Some("srv"));
    // Past the lifetime the dialog is lost and a new subscription starts.
    let at = t0 + Duration::from_secs(600);
    let out = deliver(
        &mut ua,
        reply(&retry, 503, &[("Retry-After", "60")]),
        t1 + Duration::from_secs(30),
    );
    let (_, resubscribe_at) = terminated_event(&out);
    assert!(resubscribe_at.is_some_and(|r| r > at));
    let again = only_sent(&fire(&mut ua, resubscribe_at.unwrap()));
    assert!(again.to_header().unwrap().tag().is_none());
}

#[test]
fn subscribe_answers_challenges_and_keeps_call_id_and_tag() {
    let mut ua = agent();
    let t0 = Instant::now();
    let (_, out) = ua.subscribe(subscribe_params(), t0).unwrap();
    let first = only_sent(&out);
    let second = only_sent(&deliver(&mut ua, challenge(&first, 401, false), t0));
    assert_eq!(second.call_id().unwrap(), first.call_id().unwrap());
    assert_eq!(
        second.from_header().unwrap().tag(),
        first.from_header().unwrap().tag()
    );
    assert_eq!(
        verify(&second, HeaderName::Authorization, "secret", &nonces()),
        AuthOutcome::Ok
    );
    // 489: the package is not supported; retried after the back-off.
    let out = deliver(&mut ua, reply(&second, 489, &[]), t0);
    assert!(matches!(
        events(&out)[..],
        [Event::SubscriptionFailed { status: 489, .. }]
    ));
}

#[test]
fn a_notify_may_shorten_the_lifetime() {
    let (mut ua, _, subscribe, _, t0) = terminate("active;expires=600");
    let short = notify(&subscribe, "srv", 3, "active;expires=100", &[], b"");
    deliver(&mut ua, short, t0);
    assert_eq!(ua.next_deadline(), Some(t0 + Duration::from_secs(50)));
}

#[test]
fn refresh_points() {
    use crate::request::refresh_delay;
    assert_eq!(refresh_delay(600), Duration::from_secs(540));
    assert_eq!(refresh_delay(3600), Duration::from_secs(3540));
    assert_eq!(refresh_delay(100), Duration::from_secs(50));
    assert_eq!(refresh_delay(1), Duration::from_secs(1));
}

#[test]
fn a_2xx_listing_our_binding_as_expired_is_a_failure_not_a_refresh_loop() {
    let mut ua = agent();
    let t0 = Instant::now();
    let (_, out) = ua.register(register_params(None), t0).unwrap();
    let first = only_sent(&out);
    let contact = format!(
        "<sip:dev1@192.0.2.10:5070;transport=tcp>;expires=0;+sip.instance=\"<{INSTANCE}>\""
    );
    let out = deliver(&mut ua, reply(&first, 200, &[("Contact", &contact)]), t0);
    assert!(matches!(
        events(&out)[..],
        [Event::RegistrationFailed { status: 200, .. }]
    ));
    assert!(sent(&out).is_empty());
}

#[test]
fn no_keepalives_on_datagram_flows() {
    let mut ua = agent();
    let t0 = Instant::now();
    let mut params = register_params(None);
    params.flow.reliable = false;
    let (_, out) = ua.register(params, t0).unwrap();
    let first = only_sent(&out);
    deliver(&mut ua, reply(&first, 200, &[("Expires", "600")]), t0);
    // Only the transaction's own timer (Timer K) and the refresh at 540 s remain.
    while let Some(next) = ua.next_deadline() {
        if next >= t0 + Duration::from_secs(540) {
            break;
        }
        assert!(
            ua.on_timer(next).is_empty(),
            "nothing sent at {:?}",
            next - t0
        );
    }
    assert_eq!(ua.next_deadline(), Some(t0 + Duration::from_secs(540)));
}

#[test]
fn pending_then_active_is_reported_and_the_subscribe_body_goes_on_the_initial_request() {
    let mut ua = agent();
    let t0 = Instant::now();
    let mut params = subscribe_params();
    params.event = "xcap-diff".into();
    params.event_id = None;
    params.list = false;
    params.body = Some((
        "application/resource-lists+xml".into(),
        Bytes::from_static(b"<resource-lists/>"),
    ));
    let (id, out) = ua.subscribe(params, t0).unwrap();
    let subscribe = only_sent(&out);
    assert_eq!(subscribe.body().as_ref(), b"<resource-lists/>");
    assert!(!subscribe.has_token(&HeaderName::Supported, "eventlist"));
    deliver(
        &mut ua,
        reply(
            &subscribe,
            200,
            &[("Expires", "600"), ("Contact", "<sip:n@h>")],
        ),
        t0,
    );
    let text = |state: &str, cseq: u32| {
        let raw = notify(&subscribe, "srv", cseq, state, &[], b"");
        let text = String::from_utf8(raw.as_bytes().to_vec()).unwrap();
        parse(Bytes::from(
            text.replace("Event: presence;id=7", "Event: xcap-diff"),
        ))
    };
    let states = |out: &[Output<u8>]| -> Vec<SubscriptionStatus> {
        events(out)
            .into_iter()
            .filter_map(|e| match e {
                Event::SubscriptionState {
                    id: sub, status, ..
                } if sub == id => Some(status),
                _ => None,
            })
            .collect()
    };
    let out = deliver(&mut ua, text("pending;expires=600", 1), t0);
    assert_eq!(
        states(&out),
        [SubscriptionStatus::Pending { expires: Some(600) }]
    );
    // The same state again is a NOTIFY, not a state change.
    let out = deliver(&mut ua, text("pending;expires=600", 2), t0);
    assert!(states(&out).is_empty());
    let out = deliver(&mut ua, text("active;expires=600", 3), t0);
    assert_eq!(
        states(&out),
        [SubscriptionStatus::Active { expires: Some(600) }]
    );
    // Refreshes carry no body.
    let refresh = only_sent(&fire(&mut ua, t0 + Duration::from_secs(540)));
    assert!(refresh.body().is_empty());
}

#[test]
fn a_notifier_that_keeps_deactivating_gets_back_off_not_a_loop() {
    let mut ua = agent();
    let t0 = Instant::now();
    let (_, out) = ua.subscribe(subscribe_params(), t0).unwrap();
    let mut subscribe = only_sent(&out);
    for round in 1..=4 {
        let contact = [("Contact", "<sip:n@203.0.113.5>")];
        let end = notify(
            &subscribe,
            "srv",
            1,
            "terminated;reason=deactivated",
            &contact,
            b"",
        );
        let out = deliver(&mut ua, end, t0);
        let (_, resubscribe_at) = terminated_event(&out);
        if round <= 3 {
            assert_eq!(resubscribe_at, Some(t0), "round {round}");
            subscribe = sent(&out).into_iter().find(Message::is_request).unwrap();
        } else {
            assert!(resubscribe_at.is_some_and(|at| at >= t0 + Duration::from_secs(15)));
            assert!(sent(&out).iter().all(|m| !m.is_request()));
        }
    }
}

#[test]
fn is_ours_tells_our_responses_and_notifies_from_the_rest() {
    let config = Config {
        max_subscriptions: 1,
        ..Config::default()
    };
    let mut ua = UserAgent::new(config, StdRng::seed_from_u64(3));
    let t0 = Instant::now();
    let (_, out) = ua.subscribe(subscribe_params(), t0).unwrap();
    assert_eq!(
        ua.subscribe(subscribe_params(), t0).unwrap_err(),
        UaError::TooMany
    );
    let subscribe = only_sent(&out);
    let ok = reply(&subscribe, 200, &[("Contact", "<sip:n@h>")]);
    assert!(ua.is_ours(&ok));
    let contact = [("Contact", "<sip:n@h>")];
    let ours = notify(&subscribe, "srv", 1, "active", &contact, b"");
    assert!(ua.is_ours(&ours));

    let text = String::from_utf8(ok.as_bytes().to_vec()).unwrap();
    let branch = subscribe.top_via().unwrap().branch().unwrap().to_owned();
    let foreign = parse(Bytes::from(text.replace(&branch, "z9hG4bKsomeoneelse")));
    assert!(!ua.is_ours(&foreign));
    let text = String::from_utf8(ours.as_bytes().to_vec()).unwrap();
    let stranger = parse(Bytes::from(
        text.replace(subscribe.call_id().unwrap(), "other-call"),
    ));
    assert!(!ua.is_ours(&stranger));

    // Once its transaction is over, a response is no longer ours (reliable: at once).
    deliver(&mut ua, ok.clone(), t0);
    assert!(!ua.is_ours(&ok));
}
