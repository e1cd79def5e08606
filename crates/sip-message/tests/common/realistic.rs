//! Realistic Avail traffic (Blink / SIP SIMPLE SDK shapes, see shared/reference/blink-compat.md),
//! shared by tests/differential.rs and benches/parse.rs (included there by `#[path]`).
#![allow(dead_code)]

/// The PIDF document Blink Qt publishes (blink-compat.md §3.2), state Away with a note.
pub const BLINK_PIDF: &str = r#"<?xml version='1.0' encoding='UTF-8'?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" xmlns:c="urn:ietf:params:xml:ns:pidf:cipid" xmlns:caps="urn:ietf:params:xml:ns:pidf:caps" xmlns:agp-caps="urn:ag-projects:xml:ns:pidf:caps" xmlns:agp-pidf="urn:ag-projects:xml:ns:pidf" entity="sip%3Aalice%40example.com">
  <tuple id="SID-8c1e7d7a-3f2b-4d7e-9a51-0b6f2a9c4e11">
    <status><basic>open</basic><agp-pidf:extended>away</agp-pidf:extended></status>
    <caps:servcaps>
      <caps:audio>true</caps:audio><caps:message>true</caps:message><caps:text>false</caps:text>
      <agp-caps:file-transfer>true</agp-caps:file-transfer>
      <agp-caps:screen-sharing-server>true</agp-caps:screen-sharing-server>
      <agp-caps:screen-sharing-client>true</agp-caps:screen-sharing-client>
    </caps:servcaps>
    <c:display-name>Alice Example</c:display-name>
    <agp-pidf:device-info id="8c1e7d7a-3f2b-4d7e-9a51-0b6f2a9c4e11">
      <agp-pidf:description>alice-laptop</agp-pidf:description>
      <agp-pidf:user-agent>Blink 6.0.4 (Linux)</agp-pidf:user-agent>
      <agp-pidf:time-offset>120.0</agp-pidf:time-offset>
    </agp-pidf:device-info>
    <rpid:user-input idle-threshold="600">active</rpid:user-input>
    <dm:deviceID>8c1e7d7a-3f2b-4d7e-9a51-0b6f2a9c4e11</dm:deviceID>
    <contact>sip%3Aalice%40example.com%3Bgr%3Durn%3Auuid%3A8c1e7d7a-3f2b-4d7e-9a51-0b6f2a9c4e11</contact>
    <note>In a meeting</note>
    <timestamp>2025-05-15T10:22:05.123456+02:00</timestamp>
  </tuple>
  <dm:person id="PID-c160f8cc69a4f0bf2b0362752353d060">
    <rpid:activities><rpid:away/></rpid:activities>
    <dm:timestamp>2025-05-15T10:22:05.123456+02:00</dm:timestamp>
  </dm:person>
</presence>
"#;

/// `head` is the start line and header fields separated by "\n" (no Content-Length); the
/// result has CRLF line ends, a Content-Length and the body.
pub fn build(head: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in head.trim().lines() {
        out.extend_from_slice(line.trim_start().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
    out
}

fn crlf(text: &str) -> Vec<u8> {
    text.replace("\r\n", "\n")
        .replace('\n', "\r\n")
        .into_bytes()
}

pub fn blink_publish() -> Vec<u8> {
    build(
        "PUBLISH sip:alice@example.com SIP/2.0
        Via: SIP/2.0/TLS 192.0.2.4:50312;rport;branch=z9hG4bKPjb6d9a5f3-41a9-4c69-8d8a-3b1e3a0f7c21;alias
        Max-Forwards: 70
        From: \"Alice Example\" <sip:alice@example.com>;tag=0d1f4a2b7c9e4f3aa1b2
        To: \"Alice Example\" <sip:alice@example.com>
        Call-ID: 4c7b1d0e9f2a4e6b8d3c5a7f1e9b2d4c
        CSeq: 1 PUBLISH
        User-Agent: Blink 6.0.4 (Linux)
        Event: presence
        Expires: 600
        SIP-If-Match: 1bc6e2a0.5f3d
        Content-Type: application/pidf+xml",
        BLINK_PIDF.as_bytes(),
    )
}

pub fn register_gruu() -> Vec<u8> {
    build(
        "REGISTER sip:example.com SIP/2.0
        Via: SIP/2.0/TLS 192.0.2.4:50312;rport;branch=z9hG4bKPj2a0c9b7e-54ad-4f10-b1d4-7f1e0c3a9b55;alias
        Max-Forwards: 70
        From: \"Alice Example\" <sip:alice@example.com>;tag=6a1c0e8f2b3d4a5c
        To: \"Alice Example\" <sip:alice@example.com>
        Call-ID: 91f0a3c2e7b84d6a9c1e5f7b3d2a8c40
        CSeq: 12 REGISTER
        User-Agent: Blink 6.0.4 (Linux)
        Supported: gruu, path, outbound
        Contact: <sip:58213090@192.0.2.4:50312;transport=tls>;+sip.instance=\"<urn:uuid:8c1e7d7a-3f2b-4d7e-9a51-0b6f2a9c4e11>\";reg-id=1;expires=600
        Expires: 600
        Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"Z3x1bWJlcnMtbm9uY2U\", uri=\"sip:example.com\", response=\"6629fae49393a05397450978507c4ef1\", algorithm=MD5, cnonce=\"0a4f113b\", qop=auth, nc=00000001",
        b"",
    )
}

pub fn register_ok_gruu() -> Vec<u8> {
    build(
        "SIP/2.0 200 OK
        Via: SIP/2.0/TLS 192.0.2.4:50312;rport=50312;received=198.51.100.7;branch=z9hG4bKPj2a0c9b7e-54ad-4f10-b1d4-7f1e0c3a9b55;alias
        From: \"Alice Example\" <sip:alice@example.com>;tag=6a1c0e8f2b3d4a5c
        To: \"Alice Example\" <sip:alice@example.com>;tag=as-7d3e9a1f
        Call-ID: 91f0a3c2e7b84d6a9c1e5f7b3d2a8c40
        CSeq: 12 REGISTER
        Contact: <sip:58213090@192.0.2.4:50312;transport=tls>;expires=600;+sip.instance=\"<urn:uuid:8c1e7d7a-3f2b-4d7e-9a51-0b6f2a9c4e11>\";reg-id=1;pub-gruu=\"sip:alice@example.com;gr=urn:uuid:8c1e7d7a-3f2b-4d7e-9a51-0b6f2a9c4e11\";temp-gruu=\"sip:tgruu.7hs==jd7vnzga5w7fajsc7-ajd6fabz0f8g5@example.com;gr\"
        Require: outbound
        Supported: gruu, path, outbound
        Date: Thu, 15 May 2025 08:22:05 GMT
        Server: Avail 0.1",
        b"",
    )
}

pub fn subscribe_rls() -> Vec<u8> {
    build(
        "SUBSCRIBE sip:alice+presence@example.com SIP/2.0
        Via: SIP/2.0/TLS 192.0.2.4:50312;rport;branch=z9hG4bKPj0e4c1d2f-8a3b-4c5d-9e6f-7a8b9c0d1e2f;alias
        Max-Forwards: 70
        From: \"Alice Example\" <sip:alice@example.com>;tag=c7d2e9f0a1b34c5d
        To: <sip:alice+presence@example.com>
        Contact: <sip:84520931@192.0.2.4:50312;transport=tls>
        Call-ID: 3e5a7c9b1d2f4a6c8e0b2d4f6a8c0e1f
        CSeq: 2 SUBSCRIBE
        Event: presence
        Expires: 600
        Supported: eventlist
        Accept: multipart/related, application/rlmi+xml, application/pidf+xml
        User-Agent: Blink 6.0.4 (Linux)",
        b"",
    )
}

pub fn notify_multipart_body() -> Vec<u8> {
    crlf(concat!(
        "--b42\n",
        "Content-Type: application/rlmi+xml\n",
        "Content-ID: <list-7@rls.example.com>\n",
        "\n",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
        "<list xmlns=\"urn:ietf:params:xml:ns:rlmi\" uri=\"sip:alice+presence@example.com\" version=\"3\" fullState=\"false\">\n",
        "  <resource uri=\"sip:bob@example.com\"><instance id=\"i1\" state=\"active\" cid=\"bob-9@rls.example.com\"/></resource>\n",
        "  <resource uri=\"sip:carol@example.org\"><instance id=\"i2\" state=\"pending\"/></resource>\n",
        "</list>\n",
        "--b42\n",
        "Content-Type: application/pidf+xml\n",
        "Content-ID: <bob-9@rls.example.com>\n",
        "\n",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:bob@example.com\"><tuple id=\"t1\"><status><basic>open</basic></status><note>Lunch</note></tuple></presence>\n",
        "--b42--\n",
    ))
}

pub fn notify_multipart() -> Vec<u8> {
    build(
        "NOTIFY sip:84520931@192.0.2.4:50312;transport=tls SIP/2.0
        Via: SIP/2.0/TLS 203.0.113.10:5061;branch=z9hG4bK-avail-5b1f0e3c9d7a
        Max-Forwards: 70
        From: <sip:alice+presence@example.com>;tag=avail-4f2e1d0c
        To: \"Alice Example\" <sip:alice@example.com>;tag=c7d2e9f0a1b34c5d
        Contact: <sip:avail@203.0.113.10:5061;transport=tls>
        Call-ID: 3e5a7c9b1d2f4a6c8e0b2d4f6a8c0e1f
        CSeq: 17 NOTIFY
        Event: presence
        Subscription-State: active;expires=587
        Require: eventlist
        Content-Type: multipart/related;type=\"application/rlmi+xml\";start=\"<list-7@rls.example.com>\";boundary=\"b42\"",
        &notify_multipart_body(),
    )
}

pub fn notify_pidf() -> Vec<u8> {
    build(
        "NOTIFY sip:84520931@192.0.2.4:50312;transport=tls SIP/2.0
        Via: SIP/2.0/TLS 203.0.113.10:5061;branch=z9hG4bK-avail-7c2a9e1b4d60
        Max-Forwards: 70
        From: \"Alice Example\" <sip:alice@example.com>;tag=avail-81c3
        To: \"Alice Example\" <sip:alice@example.com>;tag=9d0e1f2a3b4c
        Contact: <sip:avail@203.0.113.10:5061;transport=tls>
        Call-ID: 5d7f9b1c3e5a7c9e1b3d5f7a9c1e3b5d
        CSeq: 4 NOTIFY
        Event: presence
        Subscription-State: active;expires=600
        Content-Type: application/pidf+xml",
        BLINK_PIDF.as_bytes(),
    )
}

pub fn publish_ok() -> Vec<u8> {
    build(
        "SIP/2.0 200 OK
        Via: SIP/2.0/TLS 192.0.2.4:50312;rport=50312;received=198.51.100.7;branch=z9hG4bKPjb6d9a5f3-41a9-4c69-8d8a-3b1e3a0f7c21;alias
        From: \"Alice Example\" <sip:alice@example.com>;tag=0d1f4a2b7c9e4f3aa1b2
        To: \"Alice Example\" <sip:alice@example.com>;tag=avail-2b9d
        Call-ID: 4c7b1d0e9f2a4e6b8d3c5a7f1e9b2d4c
        CSeq: 1 PUBLISH
        SIP-ETag: 1bc6e2a0.5f3e
        Expires: 600",
        b"",
    )
}

pub fn unauthorized() -> Vec<u8> {
    build(
        "SIP/2.0 401 Unauthorized
        v: SIP/2.0/UDP [2001:db8::4]:5060;rport=5060;branch=z9hG4bK.ae3f1b2c
        f: \"Bob \\\"the builder\\\"\" <sip:bob@example.org>;tag=b1
        t: <sip:bob@example.org>;tag=avail-0c1d
        i: 0f1e2d3c4b5a@2001:db8::4
        CSeq: 1 SUBSCRIBE
        WWW-Authenticate: Digest realm=\"example.org\", nonce=\"bm9uY2UtMTIzNDU2Nzg5MA\", algorithm=SHA-256, qop=\"auth\", opaque=\"6f70617175\"
        WWW-Authenticate: Digest realm=\"example.org\", nonce=\"bm9uY2UtMTIzNDU2Nzg5MA\", algorithm=MD5, qop=\"auth\", opaque=\"6f70617175\"",
        b"",
    )
}

pub fn winfo_subscribe_compact() -> Vec<u8> {
    build(
        "SUBSCRIBE sip:alice@example.com SIP/2.0
        v: SIP/2.0/TCP 192.0.2.4:50313;branch=z9hG4bKPj91ab;rport
        Max-Forwards: 70
        f: <sip:alice@example.com>;tag=77aa
        t: <sip:alice@example.com>
        m: <sip:11223344@192.0.2.4:50313;transport=tcp>
        i: winfo-6b8d0f2a4c6e
        CSeq: 1 SUBSCRIBE
        o: presence.winfo
        Accept: application/watcherinfo+xml
        Expires: 600",
        b"",
    )
}

pub fn options_ping() -> Vec<u8> {
    build(
        "OPTIONS sip:example.com SIP/2.0
        Via: SIP/2.0/UDP 198.51.100.20:5060;branch=z9hG4bK776asdhds
        Max-Forwards: 70
        To: <sip:example.com>
        From: <sip:monitor@example.net>;tag=1928301774
        Call-ID: a84b4c76e66710@pc33.example.net
        CSeq: 63104 OPTIONS
        Accept: application/sdp",
        b"",
    )
}

/// (name, bytes) of every realistic message.
pub fn all() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("blink_publish", blink_publish()),
        ("publish_ok", publish_ok()),
        ("register_gruu", register_gruu()),
        ("register_ok_gruu", register_ok_gruu()),
        ("subscribe_rls", subscribe_rls()),
        ("winfo_subscribe_compact", winfo_subscribe_compact()),
        ("notify_multipart", notify_multipart()),
        ("notify_pidf", notify_pidf()),
        ("unauthorized", unauthorized()),
        ("options_ping", options_ping()),
    ]
}
