//! The stateful proxy (RFC 3261 §16) over real sockets. SIPp plays both ends: user agent
//! servers register themselves, then answer what the proxy forwards over their registration's
//! flow; user agent clients call through the server, answering its 407 challenge. Rust wire
//! tests cover what SIPp cannot observe precisely (a GRUU's exact retargeted Request-URI next
//! to the AOR's fork, a loop coming back).

mod ua;
mod xcap_common;

use std::thread::JoinHandle;
use std::time::Duration;

use sip_message::{ContactValue, HeaderName, Message};
use xcap_common::common::{self, sipp_with, users_csv, Server, SipConn, SippRun, DOMAIN};

/// SIPp names each call's Call-ID after this pattern; caller and callees share it so that the
/// forwarded INVITE maps onto the callee's SIPp call, which began with its REGISTER.
const CALL_ID: &str = "proxy-%u@sipp";

fn callee(
    server: &Server,
    scenario: &'static str,
    user: &'static str,
    transport: &'static str,
) -> JoinHandle<SippRun> {
    let csv = users_csv(&[(user, "callee-pw")]);
    let target = server.tcp_addr();
    std::thread::spawn(move || {
        sipp_with(
            scenario,
            transport,
            target,
            &csv,
            1,
            1,
            &["-cid_str", CALL_ID],
        )
    })
}

fn caller(server: &Server, scenario: &str, callee: &str, transport: &str) -> SippRun {
    let csv = users_csv(&[("alice", "caller-pw")]);
    sipp_with(
        scenario,
        transport,
        server.tcp_addr(),
        &csv,
        1,
        1,
        &["-cid_str", CALL_ID, "-key", "callee", callee],
    )
}

fn ok(run: &SippRun) -> bool {
    run.successful == 1 && run.failed == 0
}

/// One exchange: `user` registers and runs `uas`, then alice runs `uac` towards it; both
/// scenarios must succeed.
fn exchange(
    server: &Server,
    uas: &'static str,
    uac: &str,
    user: &'static str,
    transport: &'static str,
) {
    let callee = callee(server, uas, user, transport);
    wait_for_registrations();
    let call = caller(server, uac, user, transport);
    let callee = callee.join().expect("callee thread");
    assert!(
        ok(&call),
        "{uac} over {transport}: {call:?}\n{}",
        server.log()
    );
    assert!(ok(&callee), "{uas} over {transport}: {callee:?}");
}

/// Lets the callees' REGISTERs complete before the call starts.
fn wait_for_registrations() {
    std::thread::sleep(Duration::from_millis(1500));
}

fn server() -> Server {
    Server::start(&[
        ("alice", "caller-pw"),
        ("bob", "callee-pw"),
        ("carol", "callee-pw"),
    ])
}

#[test]
fn a_call_between_registered_users_over_tcp_and_udp() {
    for transport in ["t1", "u1"] {
        let server = server();
        exchange(
            &server,
            "proxy_uas_call.xml",
            "proxy_uac_call.xml",
            "bob",
            transport,
        );
    }
}

#[test]
fn a_message_is_delivered_and_outside_senders_are_not_challenged() {
    for transport in ["t1", "u1"] {
        let server = server();
        let (uas, uac) = ("proxy_uas_message.xml", "proxy_uac_message.xml");
        exchange(&server, uas, uac, "bob", transport);
        // From another domain: no 407 (the scenario fails on anything but a 200).
        exchange(
            &server,
            uas,
            "proxy_uac_message_outside.xml",
            "carol",
            transport,
        );
    }
}

#[test]
fn cancelling_a_ringing_call_ends_it_with_487() {
    for transport in ["t1", "u1"] {
        let server = server();
        exchange(
            &server,
            "proxy_uas_ringing.xml",
            "proxy_uac_cancel.xml",
            "bob",
            transport,
        );
    }
}

/// Two contacts of one AOR: both get the INVITE; the one that answers wins, the one still
/// ringing gets the proxy's CANCEL (its scenario fails without one).
#[test]
fn a_fork_to_two_contacts_is_won_by_the_first_200_and_the_other_branch_cancelled() {
    for transport in ["t1", "u1"] {
        let server = server();
        let ringing = callee(&server, "proxy_uas_ringing.xml", "bob", transport);
        let answering = callee(&server, "proxy_uas_call.xml", "bob", transport);
        wait_for_registrations();
        let call = caller(&server, "proxy_uac_call.xml", "bob", transport);
        let answering = answering.join().expect("callee thread");
        let ringing = ringing.join().expect("callee thread");
        assert!(ok(&call), "caller over {transport}: {call:?}");
        assert!(
            ok(&answering),
            "answering contact over {transport}: {answering:?}"
        );
        assert!(
            ok(&ringing),
            "cancelled contact over {transport}: {ringing:?}"
        );
    }
}

#[test]
fn unknown_users_get_404_and_unregistered_ones_480() {
    let server = server();
    for transport in ["t1", "u1"] {
        let unknown = caller(&server, "proxy_uac_404.xml", "nobody", transport);
        assert!(ok(&unknown), "over {transport}: {unknown:?}");
        let unregistered = caller(&server, "proxy_uac_480.xml", "carol", transport);
        assert!(ok(&unregistered), "over {transport}: {unregistered:?}");
    }
}

#[test]
fn an_exhausted_hop_count_gets_483() {
    let server = server();
    for transport in ["t1", "u1"] {
        let run = caller(&server, "proxy_uac_483.xml", "bob", transport);
        assert!(ok(&run), "over {transport}: {run:?}");
    }
}

/// REGISTER `contact` for `user` over `conn`, answering the 401; returns the 200.
/// Bob registered with `contact` over a TCP connection of his own.
fn bob_over_tcp(server: &Server, contact: &str) -> SipConn {
    let mut bob = SipConn::tcp(server.tcp_addr()).unwrap();
    register(&mut bob, "bob", "callee-pw", contact);
    bob
}

fn register(conn: &mut SipConn, user: &str, password: &str, contact: &str) -> Message {
    let response = authenticated_register(conn, user, password, Some(contact));
    assert_eq!(response.status(), Some(200), "registration of {contact}");
    response
}

/// A REGISTER of `user` over `conn` with `contact`, or without one (a query, RFC 3261
/// §10.2.3), answering the 401; returns the final response.
fn authenticated_register(
    conn: &mut SipConn,
    user: &str,
    password: &str,
    contact: Option<&str>,
) -> Message {
    let call_id = format!("reg-{}", common::unique());
    let contact = contact
        .map(|contact| format!("Contact: {contact}\r\n"))
        .unwrap_or_default();
    let request = |cseq: u32, authorization: &str| {
        format!(
            "REGISTER sip:{DOMAIN} SIP/2.0\r\n\
             Via: SIP/2.0/TCP 127.0.0.1:5099;branch=z9hG4bK-r{n};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{user}@{DOMAIN}>;tag=r{n}\r\n\
             To: <sip:{user}@{DOMAIN}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} REGISTER\r\n\
             {contact}\
             Supported: gruu\r\n\
             {authorization}Content-Length: 0\r\n\r\n",
            n = common::unique()
        )
    };
    conn.send(&request(1, ""));
    let challenge = conn.recv();
    assert_eq!(challenge.status(), Some(401));
    let credentials = ua::digest(
        &challenge,
        user,
        password,
        "REGISTER",
        &format!("sip:{DOMAIN}"),
    );
    conn.send(&request(2, &format!("Authorization: {credentials}\r\n")));
    conn.recv()
}

/// An INVITE from a user of another domain (never challenged) to `uri`.
fn outside_invite(uri: &str, transport: &str) -> String {
    let n = common::unique();
    format!(
        "INVITE {uri} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} 127.0.0.1:5098;branch=z9hG4bK-i{n};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:dave@elsewhere.example.net>;tag=i{n}\r\n\
         To: <{uri}>\r\n\
         Call-ID: invite-{n}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:dave@127.0.0.1:5098;transport={transport}>\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// The next request on `conn`, skipping nothing: the proxy must send it within 5 s.
fn next_request(conn: &mut SipConn) -> Message {
    let message = conn
        .try_recv(Duration::from_secs(5))
        .expect("a forwarded request within 5 s");
    assert!(message.is_request(), "expected a request, got {message:?}");
    message
}

fn answer(conn: &mut SipConn, request: &Message, status: u16, reason: &str) {
    let response = sip_message::response_to(request, status, reason, Some("uas")).finish(None, b"");
    conn.send_bytes(&response);
}

fn pub_gruu(response: &Message) -> String {
    pub_gruus(response)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no pub-gruu in {response:?}"))
}

/// The pub-gruu of every Contact in a registrar's 200 that has one.
fn pub_gruus(response: &Message) -> Vec<String> {
    let contacts = response.contacts().expect("Contact headers");
    contacts
        .iter()
        .filter_map(|contact| match contact {
            ContactValue::Addr(addr) => addr.params.get("pub-gruu").flatten(),
            ContactValue::Star => None,
        })
        .map(|gruu| gruu.trim_matches('"').to_owned())
        .collect()
}

/// RFC 5627 §5.3: a request for a public GRUU goes to that one instance, while the AOR
/// itself forks to every contact.
#[test]
fn a_gruu_reaches_only_its_instance_and_the_aor_forks_to_all() {
    let server = server();
    let mut first = SipConn::tcp(server.tcp_addr()).unwrap();
    let mut second = SipConn::tcp(server.tcp_addr()).unwrap();
    let registered = register(
        &mut first,
        "bob",
        "callee-pw",
        "<sip:bob@192.0.2.1:5070;transport=tcp>;+sip.instance=\"<urn:uuid:00000000-0000-4000-8000-000000000001>\"",
    );
    register(
        &mut second,
        "bob",
        "callee-pw",
        "<sip:bob@192.0.2.2:5070;transport=tcp>;+sip.instance=\"<urn:uuid:00000000-0000-4000-8000-000000000002>\"",
    );
    let gruu = pub_gruu(&registered);
    assert!(
        gruu.contains(";gr=urn:uuid:00000000-0000-4000-8000-000000000001"),
        "{gruu}"
    );

    let mut caller = SipConn::tcp(server.tcp_addr()).unwrap();
    caller.send(&outside_invite(&gruu, "TCP"));
    assert_eq!(caller.recv().status(), Some(100));
    let invite = next_request(&mut first);
    assert_eq!(
        invite.request_uri(),
        Some("sip:bob@192.0.2.1:5070;transport=tcp")
    );
    assert!(
        second.try_recv(Duration::from_millis(500)).is_none(),
        "the other instance must not be reached"
    );
    answer(&mut first, &invite, 486, "Busy Here");
    let ack = next_request(&mut first);
    assert_eq!(
        ack.method(),
        Some(&sip_message::Method::Ack),
        "hop-by-hop ACK for the 486"
    );
    assert_eq!(caller.recv().status(), Some(486));

    caller.send(&outside_invite(&format!("sip:bob@{DOMAIN}"), "TCP"));
    assert_eq!(caller.recv().status(), Some(100));
    let to_first = next_request(&mut first);
    let to_second = next_request(&mut second);
    assert_eq!(
        to_first.request_uri(),
        Some("sip:bob@192.0.2.1:5070;transport=tcp")
    );
    assert_eq!(
        to_second.request_uri(),
        Some("sip:bob@192.0.2.2:5070;transport=tcp")
    );
    assert_ne!(
        to_first.top_via().unwrap().branch(),
        to_second.top_via().unwrap().branch(),
        "each branch is a client transaction of its own"
    );
}

/// `+sip.instance` UUIDs of the two SIPp user agents of Bob in the GRUU test.
const TARGET_INSTANCE: &str = "00000000-0000-4000-8000-00000000a002";
const OTHER_INSTANCE: &str = "00000000-0000-4000-8000-00000000a001";

/// A SIPp instance of Bob registering with `+sip.instance="<urn:uuid:UUID>"`.
fn bob_instance(
    server: &Server,
    scenario: &'static str,
    uuid: &'static str,
    transport: &'static str,
) -> JoinHandle<SippRun> {
    let csv = users_csv(&[("bob", "callee-pw")]);
    let target = server.tcp_addr();
    std::thread::spawn(move || {
        sipp_with(
            scenario,
            transport,
            target,
            &csv,
            1,
            1,
            &["-cid_str", CALL_ID, "-key", "instance", uuid],
        )
    })
}

/// Queries the registrar until `user` has `count` bindings (SIPp user agents registering in
/// the background, however slowly a loaded machine starts them); returns their pub-gruus.
fn wait_for_bindings(server: &Server, user: &str, password: &str, count: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut conn = SipConn::tcp(server.tcp_addr()).expect("connect");
        let response = authenticated_register(&mut conn, user, password, None);
        assert_eq!(response.status(), Some(200), "query: {response:?}");
        let bindings = response.contacts().expect("Contact headers").len();
        if bindings >= count {
            return pub_gruus(&response);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{user} has {bindings} of {count} bindings after 20 s\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// RFC 5627 §5.3 with SIPp at both ends: two instances of Bob register with their
/// `+sip.instance` and `Supported: gruu`; a MESSAGE to the target's public GRUU
/// (`sip:bob@domain;gr=urn:uuid:...`, the form the registrar hands out) reaches the target.
/// Only once that is answered does the sender write to the other instance's GRUU, and the
/// other instance's scenario fails unless the first MESSAGE it sees is that second one: the
/// first never reached it, with no quiet period to guess.
#[test]
fn a_message_to_a_gruu_reaches_only_its_instance() {
    for transport in ["t1", "u1"] {
        let server = server();
        let other = bob_instance(
            &server,
            "proxy_gruu_uas_other.xml",
            OTHER_INSTANCE,
            transport,
        );
        let target = bob_instance(
            &server,
            "proxy_gruu_uas_target.xml",
            TARGET_INSTANCE,
            transport,
        );
        let gruus = wait_for_bindings(&server, "bob", "callee-pw", 2);
        for uuid in [TARGET_INSTANCE, OTHER_INSTANCE] {
            let gruu = format!("sip:bob@{DOMAIN};gr=urn:uuid:{uuid}");
            assert!(gruus.contains(&gruu), "{gruu} not in {gruus:?}");
        }
        let sent = sipp_with(
            "proxy_gruu_uac_message.xml",
            transport,
            server.tcp_addr(),
            &users_csv(&[("alice", "caller-pw")]),
            1,
            1,
            &[
                "-cid_str",
                CALL_ID,
                "-key",
                "callee",
                "bob",
                "-key",
                "target",
                TARGET_INSTANCE,
                "-key",
                "other",
                OTHER_INSTANCE,
            ],
        );
        let target = target.join().expect("target instance thread");
        let other = other.join().expect("other instance thread");
        assert!(
            ok(&sent),
            "sender over {transport}: {sent:?}\n{}",
            server.log()
        );
        assert!(ok(&target), "target instance over {transport}: {target:?}");
        assert!(ok(&other), "other instance over {transport}: {other:?}");
    }
}

/// RFC 3261 §16.3 item 4: the forwarded INVITE sent back unchanged by a downstream element
/// carries our Via with the branch this request hashes to: 482.
#[test]
fn a_request_coming_back_unchanged_is_a_loop() {
    let server = server();
    let mut bob = bob_over_tcp(&server, "<sip:bob@192.0.2.1:5070;transport=tcp>");
    let mut caller = SipConn::tcp(server.tcp_addr()).unwrap();
    let aor = format!("sip:bob@{DOMAIN}");
    caller.send(&outside_invite(&aor, "TCP"));
    let forwarded = next_request(&mut bob);
    let text = String::from_utf8_lossy(forwarded.as_bytes()).into_owned();
    let (start_line, rest) = text.split_once("\r\n").unwrap();
    assert!(
        start_line.starts_with("INVITE sip:bob@192.0.2.1:5070"),
        "{start_line}"
    );
    let looped = format!(
        "INVITE {aor} SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.1:5070;branch=z9hG4bK-loop{}\r\n{rest}",
        common::unique()
    );
    bob.send(&looped);
    let refused = bob.recv();
    assert_eq!(refused.status(), Some(482), "{refused:?}");
    assert_eq!(refused.cseq().unwrap().method, sip_message::Method::Invite);
}

/// RFC 3261 §16.6 item 4: a request arriving over TLS and leaving over TCP records two
/// routes, the top one facing the callee's transport, so each side reaches us over its own.
#[test]
fn changing_transport_records_a_route_per_side() {
    let server = server();
    let mut bob = bob_over_tcp(&server, "<sip:bob@192.0.2.1:5070;transport=tcp>");
    let mut caller = SipConn::tls(server.tls_addr(), &server.data_dir);
    caller.send(&outside_invite(&format!("sip:bob@{DOMAIN}"), "TLS"));
    let invite = next_request(&mut bob);
    let routes: Vec<&str> = invite.header_values(&HeaderName::RecordRoute).collect();
    assert_eq!(routes.len(), 2, "{routes:?}");
    assert!(
        routes[0].contains(&format!("127.0.0.1:{};transport=tcp;lr", server.sip_port)),
        "{routes:?}"
    );
    assert!(
        routes[1].contains(&format!("127.0.0.1:{};transport=tls;lr", server.tls_port)),
        "{routes:?}"
    );
}

/// No open relay: a request for another domain is refused unless `--relay-domain` lists it,
/// and then forwarded to that domain's address.
#[test]
fn other_domains_are_relayed_only_when_configured() {
    let peer = common::SipUdp::new(std::net::SocketAddr::from(([127, 0, 0, 1], 9)));
    let peer_addr = peer.socket.local_addr().unwrap();
    let message = |n: u64| {
        format!(
            "MESSAGE sip:x@{peer_addr} SIP/2.0\r\n\
             Via: SIP/2.0/TCP 127.0.0.1:5098;branch=z9hG4bK-relay{n}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:dave@elsewhere.example.net>;tag=r{n}\r\n\
             To: <sip:x@{peer_addr}>\r\n\
             Call-ID: relay-{n}\r\n\
             CSeq: 1 MESSAGE\r\n\
             Content-Length: 0\r\n\r\n"
        )
    };
    let closed = server();
    let mut conn = SipConn::tcp(closed.tcp_addr()).unwrap();
    conn.send(&message(common::unique()));
    assert_eq!(conn.recv().status(), Some(403));

    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().to_owned();
    let open = Server::launch(data_dir, Some(temp), &["--relay-domain", "127.0.0.1"]);
    let mut conn = SipConn::tcp(open.tcp_addr()).unwrap();
    conn.send(&message(common::unique()));
    let relayed = peer
        .try_recv(Duration::from_secs(5))
        .expect("the MESSAGE relayed over UDP");
    assert_eq!(relayed.method(), Some(&sip_message::Method::Message));
    assert_eq!(relayed.vias().unwrap().len(), 2);
}

/// The flow token in a Record-Route's user part, and the flow that token names last (the
/// callee's side of the dialog).
fn recorded_token(invite: &Message) -> (String, String) {
    let route = invite.header(&HeaderName::RecordRoute).expect("recorded");
    let uri = sip_message::NameAddr::parse(route)
        .expect("a name-addr")
        .uri;
    let token = uri.user.expect("a flow token").to_owned();
    let callee_flow = token.split('-').nth(1).expect("two flows").to_owned();
    (token, callee_flow)
}

/// An in-dialog BYE from the caller of `invite`, following its route set with `token` in our
/// route.
fn bye_with_token(invite: &Message, token: &str, request_uri: &str) -> String {
    let route = invite.header(&HeaderName::RecordRoute).expect("recorded");
    let (genuine, _) = recorded_token(invite);
    let n = common::unique();
    format!(
        "BYE {request_uri} SIP/2.0\r\n\
         Via: SIP/2.0/TCP 127.0.0.1:5098;branch=z9hG4bK-b{n};rport\r\n\
         Max-Forwards: 70\r\n\
         Route: {route}\r\n\
         From: {from}\r\n\
         To: {to};tag=callee\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 2 BYE\r\n\
         Content-Length: 0\r\n\r\n",
        route = route.replace(&genuine, token),
        from = invite.header(&HeaderName::From).unwrap(),
        to = invite.header(&HeaderName::To).unwrap(),
        call_id = invite.call_id().unwrap(),
    )
}

/// The next final response on `conn`, past the 100 Trying of the INVITEs still pending.
fn final_response(conn: &mut SipConn) -> Message {
    loop {
        let message = conn.recv();
        if message.status().is_some_and(|status| status >= 200) {
            return message;
        }
    }
}

/// RFC 3261 §16.9: a contact whose connection is gone and cannot be made again fails its
/// branch at once, as if answered 503, instead of after Timer B's 32 s.
#[test]
fn a_contact_that_cannot_be_reached_fails_its_branch_at_once() {
    let server = server();
    let bob = bob_over_tcp(&server, "<sip:bob@127.0.0.1:5099;transport=tcp>");
    drop(bob);
    // The server sees the connection close; connecting to its old port is refused.
    std::thread::sleep(Duration::from_millis(300));
    let mut caller = SipConn::tcp(server.tcp_addr()).unwrap();
    let started = std::time::Instant::now();
    caller.send(&outside_invite(&format!("sip:bob@{DOMAIN}"), "TCP"));
    let response = final_response(&mut caller);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered after {:?}",
        started.elapsed()
    );
    // §16.7 step 6: the 503 the branch counts as goes to the caller as 500.
    assert_eq!(response.status(), Some(500), "{response:?}");
}

/// RFC 5626 §5.2–5.3: the flow token in our Record-Route is signed, so a caller who rewrites
/// it to name another user's connection (here Carol's, in Bob's dialog) gets 403 and nothing
/// reaches that connection; the token as recorded still leads to Bob.
#[test]
fn a_forged_flow_token_in_a_route_is_refused() {
    let server = server();
    let mut bob = bob_over_tcp(&server, "<sip:bob@192.0.2.1:5070;transport=tcp>");
    let mut carol = SipConn::tcp(server.tcp_addr()).unwrap();
    register(
        &mut carol,
        "carol",
        "callee-pw",
        "<sip:carol@192.0.2.3:5070;transport=tcp>",
    );
    let mut caller = SipConn::tcp(server.tcp_addr()).unwrap();
    caller.send(&outside_invite(&format!("sip:bob@{DOMAIN}"), "TCP"));
    let to_bob = next_request(&mut bob);
    caller.send(&outside_invite(&format!("sip:carol@{DOMAIN}"), "TCP"));
    let to_carol = next_request(&mut carol);

    let (genuine, _) = recorded_token(&to_bob);
    let (_, carols_flow) = recorded_token(&to_carol);
    let (callers_flow, tag) = genuine.split_once('-').unwrap();
    let tag = tag.split_once('-').unwrap().1;
    let forged = format!("{callers_flow}-{carols_flow}-{tag}");
    caller.send(&bye_with_token(
        &to_bob,
        &forged,
        "sip:carol@192.0.2.3:5070;transport=tcp",
    ));
    let refused = final_response(&mut caller);
    assert_eq!(refused.status(), Some(403), "{refused:?}");
    assert_eq!(refused.cseq().unwrap().method, sip_message::Method::Bye);
    assert!(
        carol.try_recv(Duration::from_millis(500)).is_none(),
        "nothing may reach Carol's connection"
    );

    caller.send(&bye_with_token(
        &to_bob,
        &genuine,
        "sip:bob@192.0.2.1:5070;transport=tcp",
    ));
    let bye = next_request(&mut bob);
    assert_eq!(bye.method(), Some(&sip_message::Method::Bye));
    assert_eq!(bye.call_id().unwrap(), to_bob.call_id().unwrap());
}

#[test]
fn a_route_to_us_without_a_flow_token_is_no_way_to_relay() {
    let server = server();
    let mut caller = SipConn::tcp(server.tcp_addr()).unwrap();
    let n = common::unique();
    caller.send(&format!(
        "MESSAGE sip:victim@elsewhere.example.net SIP/2.0\r\n\
         Via: SIP/2.0/TCP 127.0.0.1:5098;branch=z9hG4bK-r{n};rport\r\n\
         Max-Forwards: 70\r\n\
         Route: <sip:{DOMAIN};lr>\r\n\
         From: <sip:spammer@outside.example.org>;tag=s{n}\r\n\
         To: <sip:victim@elsewhere.example.net>;tag=pretend-dialog\r\n\
         Call-ID: relay-{n}\r\n\
         CSeq: 1 MESSAGE\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: 4\r\n\r\nspam"
    ));
    let refused = final_response(&mut caller);
    assert_eq!(refused.status(), Some(403), "{refused:?}");
}
