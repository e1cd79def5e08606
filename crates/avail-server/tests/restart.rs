//! Presence state across a crash (issue 4 item 7): a publication and a subscription made
//! before SIGKILL are restored; the watcher's dialog keeps receiving NOTIFYs (same Call-ID and
//! tags, CSeq increasing) at its next hop (Contact, or first route; host names looked up on
//! start), and the old SIP-ETag still refreshes.

mod ua;
mod xcap_common;

use std::time::Duration;

use ua::{body, digest, header, Ua};
use xcap_common::common::{unique, Server, SipConn, SipUdp, DOMAIN};

const USERS: &[(&str, &str)] = &[("alice", "secret")];

fn pidf(note: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:alice@{DOMAIN}\">\
         <tuple id=\"t1\"><status><basic>open</basic></status><note>{note}</note></tuple></presence>"
    )
}

/// Alice watches herself from `watcher`'s UDP socket, with `contact` and `extra` headers
/// (a Record-Route); returns the dialog's Call-ID, From tag and To tag.
fn subscribe_udp(watcher: &SipUdp, contact: &str, extra: &str) -> (String, String, String) {
    let local = watcher.socket.local_addr().expect("addr");
    let uri = format!("sip:alice@{DOMAIN}");
    let call_id = format!("restart-{}", unique());
    let from_tag = format!("w{}", unique());
    let mut authorization = String::new();
    for cseq in 1..=2 {
        watcher.send(
            format!(
                "SUBSCRIBE {uri} SIP/2.0\r\n\
                 Via: SIP/2.0/UDP {local};branch=z9hG4bK-rs{};rport\r\n\
                 Max-Forwards: 70\r\nFrom: <{uri}>;tag={from_tag}\r\nTo: <{uri}>\r\n\
                 Call-ID: {call_id}\r\nCSeq: {cseq} SUBSCRIBE\r\n\
                 Contact: {contact}\r\n{extra}Event: presence\r\nAccept: application/pidf+xml\r\n\
                 Expires: 600\r\n{authorization}Content-Length: 0\r\n\r\n",
                unique()
            )
            .as_bytes(),
        );
        let response = watcher.next_response();
        if response.status() == Some(401) {
            authorization = format!(
                "Authorization: {}\r\n",
                digest(&response, "alice", "secret", "SUBSCRIBE", &uri)
            );
            continue;
        }
        assert_eq!(response.status(), Some(200));
        let to_tag = response.to_header().unwrap().tag().unwrap().to_owned();
        return (call_id, from_tag, to_tag);
    }
    panic!("SUBSCRIBE not accepted");
}

/// Alice publishes the note "before"; returns the 200 and her AOR.
fn publish_before(server: &Server) -> (sip_message::Message, String) {
    let mut alice = Ua::new(server, "alice", "secret");
    let me = alice.aor();
    let published = alice.publish(
        &me,
        "Content-Type: application/pidf+xml\r\nExpires: 600\r\n",
        &pidf("before"),
    );
    assert_eq!(published.status(), Some(200));
    (published, me)
}

#[test]
fn publications_and_subscriptions_survive_sigkill() {
    let server = Server::start(USERS);
    let watcher = SipUdp::new(server.tcp_addr());
    // Its Contact is its socket, so it stays reachable across restarts.
    let contact = format!("<sip:w@{}>", watcher.socket.local_addr().expect("addr"));
    let (call_id, from_tag, to_tag) = subscribe_udp(&watcher, &contact, "");
    let (published, me) = publish_before(&server);
    let etag = header(&published, "SIP-ETag");
    let before = watcher.request_with("before");
    let cseq_before = before.cseq().unwrap().seq;

    // Longer than the save interval, so the state is on disk.
    std::thread::sleep(Duration::from_millis(800));
    let (data_dir, temp) = server.kill();
    let server = Server::launch(data_dir, temp, &[]);

    // The restored subscription gets the full state at once, on the same dialog.
    let restored = watcher.request_with("before");
    assert_eq!(restored.call_id().unwrap(), call_id);
    assert_eq!(restored.from_header().unwrap().tag(), Some(to_tag.as_str()));
    assert_eq!(restored.to_header().unwrap().tag(), Some(from_tag.as_str()));
    let cseq_restored = restored.cseq().unwrap().seq;
    assert!(cseq_restored > cseq_before);

    let mut alice = Ua::new(&server, "alice", "secret");
    let refreshed = alice.publish(
        &me,
        &format!("SIP-If-Match: {etag}\r\nExpires: 600\r\n"),
        "",
    );
    assert_eq!(refreshed.status(), Some(200), "the old SIP-ETag is known");
    let etag = header(&refreshed, "SIP-ETag");
    let modified = alice.publish(
        &me,
        &format!("SIP-If-Match: {etag}\r\nContent-Type: application/pidf+xml\r\nExpires: 600\r\n"),
        &pidf("after"),
    );
    assert_eq!(modified.status(), Some(200));
    let after = watcher.request_with("after");
    assert_eq!(after.call_id().unwrap(), call_id);
    assert!(after.cseq().unwrap().seq > cseq_restored);
    assert!(body(&after).contains("<note>after</note>"));
}

#[test]
fn dialogs_named_by_host_name_or_routed_are_reached_after_restart() {
    let server = Server::start(USERS);
    let by_name = SipUdp::new(server.tcp_addr());
    let port = by_name.socket.local_addr().expect("addr").port();
    let (named, ..) = subscribe_udp(&by_name, &format!("<sip:w@localhost:{port}>"), "");
    // This one's Contact is unreachable (TEST-NET-1); its route set leads to its socket.
    let routed = SipUdp::new(server.tcp_addr());
    let port = routed.socket.local_addr().expect("addr").port();
    let record_route = format!("Record-Route: <sip:localhost:{port};lr>\r\n");
    let (via_route, ..) = subscribe_udp(&routed, "<sip:w@192.0.2.1:5060>", &record_route);
    publish_before(&server);
    by_name.request_with("before");
    routed.request_with("before");

    std::thread::sleep(Duration::from_millis(800));
    let (data_dir, temp) = server.kill();
    let _server = Server::launch(data_dir, temp, &[]);

    let restored = by_name.request_with("before");
    assert_eq!(restored.call_id().unwrap(), named);
    let restored = routed.request_with("before");
    assert_eq!(restored.call_id().unwrap(), via_route);
    // Loose routing (RFC 3261 §12.2.1.1): sent to the route, addressed to the Contact.
    assert_eq!(restored.request_uri(), Some("sip:w@192.0.2.1:5060"));
    assert_eq!(
        header(&restored, "Route"),
        format!("<sip:localhost:{port};lr>")
    );
}

/// A TCP port whose connection attempts hang: its accept queue (one entry) is full and
/// nobody accepts, so the SYNs of further connects go unanswered. The runtime and the
/// listener must stay alive as long as the port is used.
fn hanging_port() -> (
    tokio::runtime::Runtime,
    tokio::net::TcpListener,
    std::net::TcpStream,
    u16,
) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let listener = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind("127.0.0.1:0".parse().unwrap()).expect("bind");
        socket.listen(0).expect("listen")
    });
    let port = listener.local_addr().expect("addr").port();
    let queued = std::net::TcpStream::connect(("127.0.0.1", port)).expect("first connect");
    (runtime, listener, queued, port)
}

/// After a restart the restored subscriptions' subscribers are connected to afresh; one
/// whose connection attempt hangs (up to the 10 s connect timeout) must not hold up the
/// server's start or its answers: the connect runs beside the SIP core.
#[test]
fn a_restored_subscriber_that_cannot_be_connected_to_does_not_stall_the_server() {
    let (_runtime, _listener, _queued, port) = hanging_port();
    let server = Server::start(USERS);
    let mut watcher = SipConn::tcp(server.tcp_addr()).expect("connect");
    let uri = format!("sip:alice@{DOMAIN}");
    let subscribe = |cseq: u32, authorization: &str| {
        format!(
            "SUBSCRIBE {uri} SIP/2.0\r\n\
             Via: SIP/2.0/TCP 127.0.0.1:{port};branch=z9hG4bK-hang{cseq}\r\n\
             Max-Forwards: 70\r\nFrom: <{uri}>;tag=hang\r\nTo: <{uri}>\r\n\
             Call-ID: hang-{port}\r\nCSeq: {cseq} SUBSCRIBE\r\n\
             Contact: <sip:w@127.0.0.1:{port};transport=tcp>\r\nEvent: presence\r\n\
             Expires: 600\r\n{authorization}Content-Length: 0\r\n\r\n"
        )
    };
    watcher.send(&subscribe(1, ""));
    let challenge = watcher.recv();
    assert_eq!(challenge.status(), Some(401));
    let credentials = digest(&challenge, "alice", "secret", "SUBSCRIBE", &uri);
    watcher.send(&subscribe(2, &format!("Authorization: {credentials}\r\n")));
    let accepted = loop {
        let message = watcher.recv();
        if !message.is_request() {
            break message;
        }
    };
    assert_eq!(accepted.status(), Some(200));

    std::thread::sleep(Duration::from_millis(800));
    let (data_dir, temp) = server.kill();
    let started = std::time::Instant::now();
    let server = Server::launch(data_dir, temp, &[]);
    let mut probe = SipConn::tcp(server.tcp_addr()).expect("connect");
    probe.send(&format!(
        "OPTIONS sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK-probe{}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:probe@{DOMAIN}>;tag=p\r\nTo: <sip:{DOMAIN}>\r\n\
         Call-ID: probe-{}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        unique(),
        unique()
    ));
    let answer = probe
        .try_recv(Duration::from_secs(5))
        .expect("an answer while the restored subscriber's connect hangs");
    assert_eq!(answer.status(), Some(200));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "up and answering after {:?}",
        started.elapsed()
    );
}
