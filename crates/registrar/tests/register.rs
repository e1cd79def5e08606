//! REGISTER processing end to end: parsed requests in, exact response headers out.

use bytes::Bytes;
use registrar::{Binding, Config, GruuTarget, Origin, RegisterOutcome, Registrar};
use sip_message::{HeaderName, Limits, Message, Uri};

const AOR: &str = "alice@example.com";
const T0: i64 = 1_700_000_000;
const INSTANCE: &str = "<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>";
const BLINK_CONTACT: &str =
    "<sip:12345678@192.0.2.10:50123;transport=tls>;+sip.instance=\"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>\"";
const ORIGIN: Origin<'static> = Origin {
    transport: "tls",
    source: "192.0.2.10:50123",
};

fn request(call_id: &str, cseq: u32, headers: &[&str]) -> Message {
    let mut text = format!(
        "REGISTER sip:example.com SIP/2.0\r\n\
         Via: SIP/2.0/TLS 192.0.2.10:50123;branch=z9hG4bK-{cseq}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@example.com>;tag=f1\r\n\
         To: <sip:alice@example.com>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} REGISTER\r\n"
    );
    for header in headers {
        text.push_str(header);
        text.push_str("\r\n");
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    Message::parse(Bytes::from(text), &Limits::default()).expect("test request parses")
}

fn parse_response(outcome: &RegisterOutcome) -> Message {
    Message::parse(outcome.response.clone(), &Limits::default()).expect("response parses")
}

fn contact_headers(outcome: &RegisterOutcome) -> Vec<String> {
    let response = parse_response(outcome);
    response
        .header_values(&HeaderName::Contact)
        .map(str::to_owned)
        .collect()
}

/// Register and, when the binding set changed, commit it as the server would.
fn register(registrar: &mut Registrar, msg: &Message, now: i64) -> RegisterOutcome {
    let outcome = registrar.register(msg, AOR, ORIGIN, now);
    if let Some(bindings) = &outcome.bindings {
        registrar.apply(AOR, bindings.clone());
    }
    outcome
}

fn registrar() -> Registrar {
    Registrar::new(Config::default(), b"gruu key")
}

fn blink_register(call_id: &str, cseq: u32) -> Message {
    request(
        call_id,
        cseq,
        &[
            "Supported: gruu, norefersub",
            &format!("Contact: {BLINK_CONTACT}"),
            "Expires: 600",
        ],
    )
}

fn temp_gruu_uri(token: &str) -> String {
    format!("sip:tgruu.{token}@example.com;gr")
}

fn lookup(registrar: &Registrar, uri: &str) -> Option<GruuTarget> {
    registrar.lookup_gruu(&Uri::parse(uri).unwrap())
}

#[test]
fn registration_with_gruu_returns_both_gruus_on_the_instance_contact() {
    let mut reg = registrar();
    let outcome = register(&mut reg, &blink_register("c1", 1), T0);
    assert_eq!(outcome.status, 200);
    let bindings = outcome.bindings.clone().unwrap();
    assert_eq!(bindings.len(), 1);
    let b = &bindings[0];
    assert_eq!(b.contact, "sip:12345678@192.0.2.10:50123;transport=tls");
    assert_eq!(b.instance.as_deref(), Some(INSTANCE));
    assert_eq!(
        (b.call_id.as_str(), b.cseq, b.expires_at),
        ("c1", 1, T0 + 600)
    );
    assert_eq!(
        (b.transport.as_str(), b.source.as_str()),
        ("tls", "192.0.2.10:50123")
    );
    assert_eq!(b.temp_gruus.len(), 1);
    let token = &b.temp_gruus[0];
    assert_eq!(token.len(), 32);

    assert_eq!(
        contact_headers(&outcome),
        vec![format!(
            "<sip:12345678@192.0.2.10:50123;transport=tls>;expires=600\
             ;+sip.instance=\"{INSTANCE}\"\
             ;pub-gruu=\"sip:alice@example.com;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6\"\
             ;temp-gruu=\"{}\"",
            temp_gruu_uri(token)
        )]
    );
    let response = parse_response(&outcome);
    assert_eq!(response.status(), Some(200));
    assert_eq!(
        response.header(&HeaderName::Date),
        Some("Tue, 14 Nov 2023 22:13:20 GMT")
    );
    assert_eq!(response.header(&HeaderName::Supported), Some("gruu, path"));
    assert_eq!(response.header(&HeaderName::Require), None);
    assert!(response.to_header().unwrap().tag().is_some());
    assert_eq!(response.call_id().unwrap(), "c1");

    // What Blink does: take the Contact with its own instance, read pub-gruu unquoted.
    let contacts = response.contacts().unwrap();
    let sip_message::ContactValue::Addr(addr) = &contacts[0] else {
        panic!("not an address")
    };
    let pub_gruu = sip_message::unquote(addr.params.get("pub-gruu").unwrap().unwrap()).into_owned();
    assert_eq!(
        lookup(&reg, &pub_gruu),
        Some(GruuTarget {
            aor: AOR.into(),
            instance: INSTANCE.into(),
            temporary: false
        })
    );
}

#[test]
fn no_gruus_without_supported_gruu() {
    let mut reg = registrar();
    let msg = request(
        "c1",
        1,
        &[&format!("Contact: {BLINK_CONTACT}"), "Expires: 600"],
    );
    let outcome = register(&mut reg, &msg, T0);
    assert_eq!(
        outcome.bindings.clone().unwrap()[0].temp_gruus,
        Vec::<String>::new()
    );
    assert_eq!(
        contact_headers(&outcome),
        vec![format!("<sip:12345678@192.0.2.10:50123;transport=tls>;expires=600;+sip.instance=\"{INSTANCE}\"")]
    );
}

#[test]
fn public_gruu_is_stable_and_temporary_gruus_accumulate_until_call_id_changes() {
    let mut reg = registrar();
    let first = register(&mut reg, &blink_register("c1", 1), T0);
    let second = register(&mut reg, &blink_register("c1", 2), T0 + 300);
    let pub_gruu = |o: &RegisterOutcome| {
        let c = contact_headers(o).remove(0);
        c.split(";pub-gruu=")
            .nth(1)
            .unwrap()
            .split(";temp-gruu=")
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(pub_gruu(&first), pub_gruu(&second));

    let tokens = second.bindings.clone().unwrap()[0].temp_gruus.clone();
    assert_eq!(tokens.len(), 2);
    assert_eq!(tokens[0], first.bindings.clone().unwrap()[0].temp_gruus[0]);
    assert_ne!(tokens[0], tokens[1]);
    assert!(contact_headers(&second)[0]
        .ends_with(&format!(";temp-gruu=\"{}\"", temp_gruu_uri(&tokens[1]))));
    let target = Some(GruuTarget {
        aor: AOR.into(),
        instance: INSTANCE.into(),
        temporary: true,
    });
    for token in &tokens {
        assert_eq!(lookup(&reg, &temp_gruu_uri(token)), target);
    }
    assert_eq!(
        lookup(&reg, &format!("sip:tgruu.{}@other.org;gr", tokens[0])),
        None
    );
    assert_eq!(
        lookup(&reg, &temp_gruu_uri("00000000000000000000000000000000")),
        None
    );

    // A new Call-ID means the UA restarted: earlier temporary GRUUs die (RFC 5627).
    let restarted = register(&mut reg, &blink_register("c2", 1), T0 + 400);
    let new_tokens = restarted.bindings.clone().unwrap()[0].temp_gruus.clone();
    assert_eq!(new_tokens.len(), 1);
    assert!(!tokens.contains(&new_tokens[0]));
    for token in &tokens {
        assert_eq!(lookup(&reg, &temp_gruu_uri(token)), None);
    }
    assert_eq!(lookup(&reg, &temp_gruu_uri(&new_tokens[0])), target);
}

#[test]
fn temporary_gruus_are_capped_oldest_first() {
    let mut reg = Registrar::new(
        Config {
            max_temp_gruus: 2,
            ..Config::default()
        },
        b"k",
    );
    let mut all = Vec::new();
    for cseq in 1..=3 {
        let outcome = register(&mut reg, &blink_register("c1", cseq), T0 + i64::from(cseq));
        all.push(
            outcome.bindings.clone().unwrap()[0]
                .temp_gruus
                .last()
                .unwrap()
                .clone(),
        );
    }
    assert_eq!(
        reg.bindings(AOR, T0).next().unwrap().temp_gruus,
        all[1..].to_vec()
    );
    assert_eq!(lookup(&reg, &temp_gruu_uri(&all[0])), None);
    assert!(lookup(&reg, &temp_gruu_uri(&all[1])).is_some());
}

#[test]
fn too_brief_interval_gets_423_with_min_expires() {
    let mut reg = registrar();
    let msg = request("c1", 1, &["Contact: <sip:alice@192.0.2.10>", "Expires: 30"]);
    let outcome = register(&mut reg, &msg, T0);
    assert_eq!(outcome.status, 423);
    assert!(outcome.bindings.is_none());
    let response = parse_response(&outcome);
    assert_eq!(response.reason(), Some("Interval Too Brief"));
    assert_eq!(response.header(&HeaderName::MinExpires), Some("60"));
    assert_eq!(response.header(&HeaderName::Contact), None);
    // The contact parameter overrides the header, both ways.
    let msg = request(
        "c1",
        2,
        &["Contact: <sip:alice@192.0.2.10>;expires=59", "Expires: 600"],
    );
    assert_eq!(register(&mut reg, &msg, T0).status, 423);
    let msg = request(
        "c1",
        3,
        &["Contact: <sip:alice@192.0.2.10>;expires=60", "Expires: 30"],
    );
    assert_eq!(register(&mut reg, &msg, T0).status, 200);
}

#[test]
fn multiple_contacts_expiry_rules_and_q() {
    let mut reg = registrar();
    let msg = request(
        "c1",
        1,
        &[
            "Contact: <sip:alice@192.0.2.1>;expires=120;q=0.5, <sip:alice@192.0.2.2>",
            "Contact: <sip:alice@192.0.2.3>;expires=99999999999;q=1.0",
            "Expires: 600",
        ],
    );
    let outcome = register(&mut reg, &msg, T0);
    assert_eq!(outcome.status, 200);
    assert_eq!(
        contact_headers(&outcome),
        vec![
            "<sip:alice@192.0.2.1>;q=0.5;expires=120",
            "<sip:alice@192.0.2.2>;expires=600",
            "<sip:alice@192.0.2.3>;q=1;expires=3600",
        ]
    );
    // No Contact and no Expires: the default lifetime.
    let msg = request("c1", 2, &["Contact: <sip:alice@192.0.2.4>"]);
    let outcome = register(&mut reg, &msg, T0 + 10);
    assert_eq!(contact_headers(&outcome).len(), 4);
    assert_eq!(
        contact_headers(&outcome)[3],
        "<sip:alice@192.0.2.4>;expires=3600"
    );
    // Remaining lifetimes count down.
    assert_eq!(
        contact_headers(&outcome)[0],
        "<sip:alice@192.0.2.1>;q=0.5;expires=110"
    );
}

#[test]
fn query_lists_bindings_without_changing_them() {
    let mut reg = registrar();
    register(
        &mut reg,
        &request("c1", 1, &["Contact: <sip:alice@192.0.2.1>", "Expires: 600"]),
        T0,
    );
    let outcome = register(&mut reg, &request("q1", 1, &[]), T0 + 100);
    assert_eq!(outcome.status, 200);
    assert!(outcome.bindings.is_none());
    assert_eq!(
        contact_headers(&outcome),
        vec!["<sip:alice@192.0.2.1>;expires=500"]
    );
    let empty = registrar().register(&request("q1", 1, &[]), AOR, ORIGIN, T0);
    assert_eq!(contact_headers(&empty), Vec::<String>::new());
}

#[test]
fn wildcard_removes_everything_and_is_validated() {
    let mut reg = registrar();
    let msg = request(
        "c1",
        1,
        &[
            "Contact: <sip:alice@192.0.2.1>, <sip:alice@192.0.2.2>",
            "Expires: 600",
        ],
    );
    register(&mut reg, &msg, T0);
    assert_eq!(reg.bindings(AOR, T0).count(), 2);

    let bad = request("c9", 1, &["Contact: *", "Expires: 600"]);
    assert_eq!(register(&mut reg, &bad, T0).status, 400);
    let bad = request("c9", 1, &["Contact: *"]);
    assert_eq!(register(&mut reg, &bad, T0).status, 400);
    let bad = request(
        "c9",
        1,
        &["Contact: *, <sip:alice@192.0.2.3>", "Expires: 0"],
    );
    let outcome = register(&mut reg, &bad, T0);
    assert_eq!(outcome.status, 400);
    assert_eq!(
        parse_response(&outcome).reason(),
        Some("Wildcard Contact with other contacts")
    );
    assert_eq!(reg.bindings(AOR, T0).count(), 2);

    // Same Call-ID and not a higher CSeq: out of order, nothing removed.
    let stale = request("c1", 1, &["Contact: *", "Expires: 0"]);
    assert_eq!(register(&mut reg, &stale, T0).status, 500);
    assert_eq!(reg.bindings(AOR, T0).count(), 2);

    let outcome = register(
        &mut reg,
        &request("c1", 2, &["Contact: *", "Expires: 0"]),
        T0,
    );
    assert_eq!(outcome.status, 200);
    assert_eq!(outcome.bindings, Some(Vec::new()));
    assert_eq!(contact_headers(&outcome), Vec::<String>::new());
    assert_eq!(reg.bindings(AOR, T0).count(), 0);
}

#[test]
fn expires_zero_removes_one_contact_matched_by_uri_equivalence() {
    let mut reg = registrar();
    let msg = request(
        "c1",
        1,
        &["Contact: <sip:alice@192.0.2.1;transport=tcp>, <sip:alice@192.0.2.2>"],
    );
    register(&mut reg, &msg, T0);
    // Host case and parameter order do not matter (RFC 3261 §19.1.4).
    let msg = request(
        "c1",
        2,
        &["Contact: <sip:alice@192.0.2.1;TRANSPORT=tcp>;expires=0"],
    );
    let outcome = register(&mut reg, &msg, T0);
    assert_eq!(
        contact_headers(&outcome),
        vec!["<sip:alice@192.0.2.2>;expires=3600"]
    );
    // Removing a contact that is not bound changes nothing.
    let msg = request("c1", 3, &["Contact: <sip:alice@192.0.2.9>;expires=0"]);
    let outcome = register(&mut reg, &msg, T0);
    assert_eq!(outcome.status, 200);
    assert!(outcome.bindings.is_none());
}

#[test]
fn same_instance_replaces_the_old_contact() {
    let mut reg = registrar();
    register(&mut reg, &blink_register("c1", 1), T0);
    let moved = request(
        "c2",
        1,
        &[
            "Supported: gruu",
            &format!("Contact: <sip:12345678@198.51.100.7:40000;transport=tls>;+sip.instance=\"{INSTANCE}\""),
            "Expires: 600",
        ],
    );
    let outcome = register(&mut reg, &moved, T0 + 5);
    let bindings = outcome.bindings.clone().unwrap();
    assert_eq!(bindings.len(), 1);
    assert_eq!(
        bindings[0].contact,
        "sip:12345678@198.51.100.7:40000;transport=tls"
    );
    assert_eq!(contact_headers(&outcome).len(), 1);

    // A different instance at the same address is a different UA.
    let other = request(
        "c3",
        1,
        &["Contact: <sip:12345678@198.51.100.7:40000;transport=tls>;+sip.instance=\"<urn:uuid:other>\""],
    );
    assert_eq!(
        register(&mut reg, &other, T0 + 6).bindings.unwrap().len(),
        2
    );
}

#[test]
fn cseq_must_increase_within_a_call_id() {
    let mut reg = registrar();
    let contact = "Contact: <sip:alice@192.0.2.1>";
    assert_eq!(
        register(&mut reg, &request("c1", 5, &[contact]), T0).status,
        200
    );
    for cseq in [5, 4] {
        let outcome = register(&mut reg, &request("c1", cseq, &[contact, "Expires: 0"]), T0);
        assert_eq!(outcome.status, 500);
        assert_eq!(
            parse_response(&outcome).reason(),
            Some("Out of Order Request")
        );
        assert!(outcome.bindings.is_none());
    }
    assert_eq!(reg.bindings(AOR, T0).count(), 1);
    // Another Call-ID may use any CSeq.
    let outcome = register(&mut reg, &request("c2", 1, &[contact, "Expires: 120"]), T0);
    assert_eq!(outcome.status, 200);
    assert_eq!(outcome.bindings.clone().unwrap()[0].call_id, "c2");
    // The same contact twice in one request is not out of order with itself.
    let twice = request(
        "c2",
        2,
        &["Contact: <sip:alice@192.0.2.1>, <sip:alice@192.0.2.1>;expires=300"],
    );
    let outcome = register(&mut reg, &twice, T0);
    assert_eq!(
        contact_headers(&outcome),
        vec!["<sip:alice@192.0.2.1>;expires=300"]
    );
}

#[test]
fn too_many_contacts_is_403() {
    let mut reg = Registrar::new(
        Config {
            max_contacts: 2,
            ..Config::default()
        },
        b"k",
    );
    register(
        &mut reg,
        &request("c1", 1, &["Contact: <sip:a@192.0.2.1>, <sip:a@192.0.2.2>"]),
        T0,
    );
    let outcome = register(
        &mut reg,
        &request("c2", 1, &["Contact: <sip:a@192.0.2.3>"]),
        T0,
    );
    assert_eq!(outcome.status, 403);
    assert_eq!(parse_response(&outcome).reason(), Some("Too Many Contacts"));
    assert_eq!(reg.bindings(AOR, T0).count(), 2);
    // Replacing within the limit is fine.
    let swap = request(
        "c2",
        2,
        &["Contact: <sip:a@192.0.2.1>;expires=0, <sip:a@192.0.2.3>"],
    );
    assert_eq!(register(&mut reg, &swap, T0).status, 200);
}

#[test]
fn malformed_contact_parameters_are_400() {
    let reg = registrar();
    for contact in [
        "Contact: <sip:a@192.0.2.1>;expires=soon",
        "Contact: <sip:a@192.0.2.1>;expires",
        "Contact: <sip:a@192.0.2.1>;q=1.5",
        "Contact: <sip:a@192.0.2.1>;+sip.instance",
    ] {
        let outcome = reg.register(&request("c1", 1, &[contact]), AOR, ORIGIN, T0);
        assert_eq!(outcome.status, 400, "{contact}");
        assert!(outcome.bindings.is_none());
    }
}

#[test]
fn path_is_stored_and_echoed_only_when_supported() {
    let mut reg = registrar();
    let headers = [
        "Path: <sip:edge.example.com;lr>",
        "Contact: <sip:a@192.0.2.1>",
    ];
    let outcome = register(&mut reg, &request("c1", 1, &headers), T0);
    assert_eq!(
        outcome.bindings.clone().unwrap()[0].path,
        vec!["<sip:edge.example.com;lr>"]
    );
    assert_eq!(parse_response(&outcome).header(&HeaderName::Path), None);

    let headers = [
        "Supported: path",
        "Path: <sip:edge.example.com;lr>",
        "Contact: <sip:a@192.0.2.1>",
    ];
    let outcome = register(&mut reg, &request("c1", 2, &headers), T0);
    assert_eq!(
        parse_response(&outcome).header(&HeaderName::Path),
        Some("<sip:edge.example.com;lr>")
    );
}

#[test]
fn expiry_removes_stale_bindings_and_their_temporary_gruus() {
    let mut reg = registrar();
    register(&mut reg, &blink_register("c1", 1), T0);
    register(
        &mut reg,
        &request("c2", 1, &["Contact: <sip:alice@192.0.2.1>;expires=900"]),
        T0,
    );
    let token = reg
        .bindings(AOR, T0)
        .find(|b| b.instance.is_some())
        .unwrap()
        .temp_gruus[0]
        .clone();
    assert_eq!(reg.next_expiry(), Some(T0 + 600));

    assert!(reg.expire(T0 + 599).is_empty());
    let changed = reg.expire(T0 + 600);
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].0, AOR);
    assert_eq!(changed[0].1.len(), 1);
    assert_eq!(changed[0].1[0].contact, "sip:alice@192.0.2.1");
    assert_eq!(lookup(&reg, &temp_gruu_uri(&token)), None);
    assert_eq!(reg.next_expiry(), Some(T0 + 900));

    // Expired but not yet purged bindings are not listed, and a REGISTER drops them for good.
    assert_eq!(reg.bindings(AOR, T0 + 900).count(), 0);
    let outcome = register(&mut reg, &request("q", 1, &[]), T0 + 900);
    assert_eq!(outcome.bindings, Some(Vec::new()));
    assert_eq!(reg.next_expiry(), None);
}

#[test]
fn loaded_bindings_serve_requests_and_gruu_lookups() {
    let mut original = registrar();
    register(&mut original, &blink_register("c1", 1), T0);
    let saved: Vec<Binding> = original.bindings(AOR, T0).cloned().collect();
    let token = saved[0].temp_gruus[0].clone();

    let mut restarted = registrar();
    let mut expired = saved[0].clone();
    expired.aor = "bob@example.com".into();
    expired.expires_at = T0;
    restarted.load(saved.into_iter().chain([expired]), T0 + 1);
    assert_eq!(restarted.bindings("bob@example.com", 0).count(), 0);
    assert!(lookup(&restarted, &temp_gruu_uri(&token)).is_some());
    // The stored CSeq still orders requests after the restart.
    assert_eq!(
        register(&mut restarted, &blink_register("c1", 1), T0 + 2).status,
        500
    );
    assert_eq!(
        register(&mut restarted, &blink_register("c1", 2), T0 + 2).status,
        200
    );
}
