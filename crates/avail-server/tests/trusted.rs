//! Trusted networks on the wire (`--trusted CIDR`): a request from a trusted source address
//! is accepted without a digest challenge, the identity being its From user; without the
//! setting the same request is challenged.

mod common;

use std::time::Duration;

use common::{unique, Server, SipConn, SipUdp, DOMAIN};
use sip_message::Message;

/// An unauthenticated PUBLISH for `user`, over `transport` from 127.0.0.1.
fn publish(user: &str, transport: &str) -> String {
    let n = unique();
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:{user}@{DOMAIN}\">\
         <tuple id=\"t{n}\"><status><basic>open</basic></status></tuple></presence>"
    );
    format!(
        "PUBLISH sip:{user}@{DOMAIN} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} 127.0.0.1:9;branch=z9hG4bK-trust-{n};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@{DOMAIN}>;tag=t{n}\r\n\
         To: <sip:{user}@{DOMAIN}>\r\n\
         Call-ID: trusted-{n}\r\n\
         CSeq: 1 PUBLISH\r\n\
         Event: presence\r\n\
         Expires: 600\r\n\
         Content-Type: application/pidf+xml\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn over_tcp(server: &Server, request: &str) -> Message {
    let mut conn = SipConn::tcp(server.tcp_addr()).expect("connect");
    conn.send(request);
    conn.try_recv(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no response; log:\n{}", server.log()))
}

#[test]
fn publish_from_a_trusted_network_needs_no_credentials() {
    let temp = tempfile::tempdir().expect("temp dir");
    let server = Server::launch(
        temp.path().to_owned(),
        Some(temp),
        &["--trusted", "127.0.0.1/32"],
    );
    let response = over_tcp(&server, &publish("alice", "TCP"));
    assert_eq!(response.status(), Some(200), "{response:?}");
    assert!(response.other_header("SIP-ETag").is_some(), "{response:?}");

    let udp = SipUdp::new(server.tcp_addr());
    udp.send(publish("bob", "UDP").as_bytes());
    let response = udp
        .try_recv(Duration::from_secs(5))
        .expect("a response over UDP");
    assert_eq!(response.status(), Some(200), "{response:?}");

    let log = server.log();
    assert!(
        log.contains("WARN") && log.contains("127.0.0.1/32"),
        "the trusted networks are announced at start-up:\n{log}"
    );
}

#[test]
fn publish_from_an_untrusted_address_is_challenged() {
    let temp = tempfile::tempdir().expect("temp dir");
    let server = Server::launch(temp.path().to_owned(), Some(temp), &[]);
    let response = over_tcp(&server, &publish("alice", "TCP"));
    assert_eq!(response.status(), Some(401), "{response:?}");

    let temp = tempfile::tempdir().expect("temp dir");
    let elsewhere = Server::launch(
        temp.path().to_owned(),
        Some(temp),
        &["--trusted", "10.0.0.0/8", "--trusted", "::1/128"],
    );
    let response = over_tcp(&elsewhere, &publish("alice", "TCP"));
    assert_eq!(response.status(), Some(401), "{response:?}");
}
