//! Requests other than REGISTER, malformed input and the RFC 4475 torture messages over live
//! sockets: every answer is precise (RFC 3261 §8.2, §21) and the server keeps serving.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{options_request, Server, SipConn, SipUdp, DOMAIN};
use sip_message::{HeaderName, StreamItem};

fn request(method: &str, uri: &str, extra: &str) -> String {
    let n = common::unique();
    format!(
        "{method} {uri} SIP/2.0\r\n\
         Via: SIP/2.0/TCP 192.0.2.20:5060;branch=z9hG4bK-p{n};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:someone@{DOMAIN}>;tag=f{n}\r\n\
         To: <{uri}>\r\n\
         Call-ID: proto-{n}\r\n\
         CSeq: 1 {method}\r\n\
         {extra}Content-Length: 0\r\n\r\n"
    )
}

#[test]
fn options_advertises_capabilities() {
    let server = Server::start(&[]);
    let mut conn = SipConn::tcp(server.tcp_addr()).unwrap();
    conn.send(&request("OPTIONS", &format!("sip:{DOMAIN}"), ""));
    let response = conn.recv();
    assert_eq!(response.status(), Some(200));
    assert!(response.has_token(&HeaderName::Allow, "REGISTER"));
    assert!(response.has_token(&HeaderName::Allow, "OPTIONS"));
    assert!(response.has_token(&HeaderName::Supported, "gruu"));
    assert!(response.header(&HeaderName::Accept).is_some());
    assert!(
        response.to_header().unwrap().tag().is_some(),
        "the response carries our To tag"
    );
}

#[test]
fn unsupported_methods_and_domains_get_the_right_status() {
    let server = Server::start(&[]);
    let mut conn = SipConn::tcp(server.tcp_addr()).unwrap();
    // The server itself: requests for users go to the proxy (tests/proxy.rs).
    let uri = format!("sip:{DOMAIN}");

    conn.send(&request("INVITE", &uri, "Contact: <sip:a@192.0.2.20>\r\n"));
    assert_eq!(
        conn.recv().status(),
        Some(501),
        "INVITE for the server itself"
    );

    conn.send(&request("MESSAGE", &uri, ""));
    let not_allowed = conn.recv();
    assert_eq!(not_allowed.status(), Some(405));
    assert!(
        not_allowed.has_token(&HeaderName::Allow, "REGISTER"),
        "405 carries Allow"
    );

    conn.send(&request("FROBNICATE", &uri, ""));
    assert_eq!(
        conn.recv().status(),
        Some(501),
        "an unknown extension method"
    );

    conn.send(&request("OPTIONS", "sip:bob@elsewhere.example.net", ""));
    assert_eq!(
        conn.recv().status(),
        Some(403),
        "no relaying for foreign domains"
    );

    conn.send(&request("OPTIONS", &uri, "Require: 100rel, gruu\r\n"));
    let bad_extension = conn.recv();
    assert_eq!(bad_extension.status(), Some(420));
    assert_eq!(
        bad_extension.header(&HeaderName::Unsupported),
        Some("100rel")
    );
}

#[test]
fn malformed_requests_get_400_with_a_reason_and_garbage_is_dropped() {
    let server = Server::start(&[]);
    let udp = SipUdp::new(server.tcp_addr());
    let bad_cseq = request("OPTIONS", &format!("sip:{DOMAIN}"), "")
        .replace("CSeq: 1 OPTIONS", "CSeq: 1 REGISTER");
    udp.send(bad_cseq.as_bytes());
    let response = udp.try_recv(Duration::from_secs(5)).expect("a 400");
    assert_eq!(response.status(), Some(400));
    let local = udp.socket.local_addr().unwrap();
    let via = response.top_via().unwrap();
    assert_eq!(
        via.params.get("rport"),
        Some(Some(local.port().to_string().as_str())),
        "rport filled (RFC 3581)"
    );
    assert_eq!(
        via.params.get("received"),
        Some(Some("127.0.0.1")),
        "received added (RFC 3261 §18.2.1)"
    );
    assert!(
        response
            .reason()
            .unwrap()
            .to_ascii_lowercase()
            .contains("cseq"),
        "{:?}",
        response.reason()
    );

    udp.send(b"\x00\x01garbage that is not SIP at all\r\n\r\n");
    assert!(
        udp.try_recv(Duration::from_millis(500)).is_none(),
        "garbage gets no answer"
    );
    udp.send(options_request(server.tcp_addr(), "UDP").as_bytes());
    assert_eq!(
        udp.try_recv(Duration::from_secs(5)).map(|r| r.status()),
        Some(Some(200))
    );
}

#[test]
fn an_oversized_header_closes_only_that_connection() {
    let server = Server::start(&[]);
    let mut conn = SipConn::tcp(server.tcp_addr()).unwrap();
    let huge = format!(
        "OPTIONS sip:{DOMAIN} SIP/2.0\r\nX-Filler: {}\r\n",
        "a".repeat(64 * 1024)
    );
    conn.send(&huge);
    assert!(
        conn.closed_within(Duration::from_secs(5)),
        "the server closes a connection exceeding the header limit"
    );
    let mut fresh = SipConn::tcp(server.tcp_addr()).unwrap();
    fresh.send(&options_request(server.tcp_addr(), "TCP"));
    assert_eq!(fresh.recv().status(), Some(200));
}

/// Every RFC 4475 torture message over UDP and over its own TCP connection: an invalid
/// request gets a 4xx/5xx or nothing, never a 2xx; after each the server still answers.
#[test]
fn torture_messages_never_break_the_server() {
    let mut server = Server::start(&[]);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sip-message/tests/torture");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("torture corpus in crates/sip-message/tests/torture")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "sip"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 40,
        "the RFC 4475 corpus is present ({} files)",
        files.len()
    );
    let udp = SipUdp::new(server.tcp_addr());
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        udp.send(&bytes);
        if let Some(answer) = udp.try_recv_raw(Duration::from_millis(300)) {
            assert!(
                answer.starts_with(b"SIP/2.0 "),
                "{}: answered with a request",
                file.display()
            );
        }
        let mut conn = SipConn::tcp(server.tcp_addr()).unwrap();
        conn.send_bytes(&bytes);
        // An answer to a malformed request copies its malformed headers, so read it raw.
        if let Some(StreamItem::Message(answer)) = conn.try_recv_item(Duration::from_millis(200)) {
            assert!(
                answer.starts_with(b"SIP/2.0 "),
                "{}: answered with a request",
                file.display()
            );
        }
        assert!(server.is_running(), "server died on {}", file.display());
    }
    udp.send(options_request(server.tcp_addr(), "UDP").as_bytes());
    let mut answered = None;
    for _ in 0..20 {
        match udp.try_recv(Duration::from_secs(1)) {
            Some(r)
                if r.status() == Some(200)
                    && r.cseq()
                        .map(|c| c.method == sip_message::Method::Options)
                        .unwrap_or(false) =>
            {
                answered = Some(r);
                break;
            }
            Some(_) => continue,
            None => break,
        }
    }
    assert!(
        answered.is_some(),
        "the server still answers OPTIONS after the corpus"
    );
}
