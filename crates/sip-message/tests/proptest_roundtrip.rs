//! Property tests: messages built with `MessageWriter` from random parts parse back to the
//! parts (typed views), survive serialize / re-parse, and frame identically through
//! `StreamDecoder` for any chunking; nothing panics on arbitrary or mutated input, and whatever
//! the parser accepts round-trips.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::Bytes;
use common::*;
use proptest::prelude::*;
use sip_message::{
    ContactValue, HeaderName, Host, Limits, Message, MessageWriter, Method, StreamItem, Uri,
};

// ---------------------------------------------------------------------------------------------
// Generators

#[derive(Debug, Clone, PartialEq)]
enum GenHost {
    Name(String),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl GenHost {
    fn text(&self) -> String {
        match self {
            GenHost::Name(n) => n.clone(),
            GenHost::V4(a) => a.to_string(),
            GenHost::V6(a) => format!("[{a}]"),
        }
    }
    fn matches(&self, h: &Host<'_>) -> bool {
        match (self, h) {
            (GenHost::Name(a), Host::Name(b)) => a.eq_ignore_ascii_case(b),
            (GenHost::V4(a), Host::Ipv4(b)) => a == b,
            (GenHost::V6(a), Host::Ipv6(b)) => a == b,
            _ => false,
        }
    }
}

fn host() -> impl Strategy<Value = GenHost> {
    prop_oneof![
        "[a-z]([a-z0-9-]{0,6}[a-z0-9])?(\\.[a-z]([a-z0-9]{0,5})){0,3}".prop_map(GenHost::Name),
        any::<[u8; 4]>().prop_map(|o| GenHost::V4(Ipv4Addr::from(o))),
        any::<[u16; 8]>().prop_map(|s| GenHost::V6(Ipv6Addr::from(s))),
        // Compressed and IPv4-mapped forms are the interesting IPv6 spellings (RFC 5118).
        (any::<u16>(), any::<u16>())
            .prop_map(|(a, b)| GenHost::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, a, b))),
        any::<[u8; 4]>().prop_map(|o| GenHost::V6(Ipv4Addr::from(o).to_ipv6_mapped())),
    ]
}

#[derive(Debug, Clone)]
struct GenUri {
    sips: bool,
    /// Unescaped user part.
    user: Option<String>,
    host: GenHost,
    port: Option<u16>,
    params: Vec<(String, Option<String>)>,
}

/// RFC 3261 §25.1 `user` characters that need no escaping.
fn user_char_ok(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.!~*'()&=+$,;?/".contains(c)
}

fn escape_user(user: &str) -> String {
    let mut out = String::new();
    for b in user.bytes() {
        if user_char_ok(b as char) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl GenUri {
    fn text(&self) -> String {
        let mut s = String::from(if self.sips { "sips:" } else { "sip:" });
        if let Some(u) = &self.user {
            s.push_str(&escape_user(u));
            s.push('@');
        }
        s.push_str(&self.host.text());
        if let Some(p) = self.port {
            s.push_str(&format!(":{p}"));
        }
        for (n, v) in &self.params {
            s.push(';');
            s.push_str(n);
            if let Some(v) = v {
                s.push('=');
                s.push_str(v);
            }
        }
        s
    }

    fn check(&self, u: &Uri<'_>, what: &str) {
        assert_eq!(
            u.scheme.to_ascii_lowercase(),
            if self.sips { "sips" } else { "sip" },
            "{what}: scheme"
        );
        assert!(u.is_sip(), "{what}");
        assert_eq!(
            u.user_unescaped().as_deref(),
            self.user.as_deref(),
            "{what}: user"
        );
        assert!(
            self.host.matches(&u.host),
            "{what}: host {:?} vs {:?}",
            self.host,
            u.host
        );
        assert_eq!(u.host_text, self.host.text(), "{what}: host text");
        assert_eq!(u.port, self.port, "{what}: port");
        for (n, v) in &self.params {
            assert_eq!(u.param(n), Some(v.as_deref()), "{what}: param {n}");
        }
        assert!(
            u.equivalent(&Uri::parse(&self.text()).unwrap()),
            "{what}: equivalent to itself"
        );
    }
}

fn uri() -> impl Strategy<Value = GenUri> {
    (
        any::<bool>(),
        proptest::option::of("[a-zA-Z0-9 @:%;,?/+=\\-_.~]{1,10}"),
        host(),
        proptest::option::of(1u16..),
        proptest::collection::btree_map(
            "[a-z]{1,6}",
            proptest::option::of("[a-zA-Z0-9]{1,6}"),
            0..3,
        ),
    )
        .prop_map(|(sips, user, host, port, params)| GenUri {
            sips,
            user,
            host,
            port,
            params: params.into_iter().collect(),
        })
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!%*_+`'~.-]{1,12}"
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just("INVITE".to_string()),
        Just("REGISTER".to_string()),
        Just("SUBSCRIBE".to_string()),
        Just("NOTIFY".to_string()),
        Just("PUBLISH".to_string()),
        Just("OPTIONS".to_string()),
        Just("MESSAGE".to_string()),
        Just("BYE".to_string()),
        Just("invite".to_string()), // case-sensitive: an extension method
        token(),
    ]
    .prop_map(|t| Method::from_token(&t))
}

/// A name-addr with an optional quoted display name (with `\"` and `\\` escapes) and a tag.
#[derive(Debug, Clone)]
struct GenAddr {
    display: Option<String>,
    uri: GenUri,
    tag: Option<String>,
}

fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

impl GenAddr {
    fn text(&self) -> String {
        let mut s = String::new();
        if let Some(d) = &self.display {
            s.push_str(&quote(d));
            s.push(' ');
        }
        s.push('<');
        s.push_str(&self.uri.text());
        s.push('>');
        if let Some(t) = &self.tag {
            s.push_str(";tag=");
            s.push_str(t);
        }
        s
    }
    fn check(&self, na: &sip_message::NameAddr<'_>, what: &str) {
        assert_eq!(
            na.display_name.as_deref(),
            self.display.as_deref(),
            "{what}: display name"
        );
        self.uri.check(&na.uri, what);
        assert_eq!(na.tag(), self.tag.as_deref(), "{what}: tag");
    }
}

fn addr() -> impl Strategy<Value = GenAddr> {
    (
        proptest::option::of("[ -~]{1,12}"),
        uri(),
        proptest::option::of("[a-zA-Z0-9]{1,10}"),
    )
        .prop_map(|(display, uri, tag)| GenAddr { display, uri, tag })
}

#[derive(Debug, Clone)]
struct GenVia {
    transport: &'static str,
    host: GenHost,
    port: Option<u16>,
    branch: String,
}

impl GenVia {
    fn text(&self) -> String {
        let mut s = format!("SIP/2.0/{} {}", self.transport, self.host.text());
        if let Some(p) = self.port {
            s.push_str(&format!(":{p}"));
        }
        s.push_str(";branch=z9hG4bK");
        s.push_str(&self.branch);
        s
    }
}

fn via() -> impl Strategy<Value = GenVia> {
    (
        prop_oneof![
            Just("UDP"),
            Just("TCP"),
            Just("TLS"),
            Just("WS"),
            Just("SCTP")
        ],
        host(),
        proptest::option::of(1u16..),
        "[A-Za-z0-9.!%*_+`'~-]{1,16}",
    )
        .prop_map(|(transport, host, port, branch)| GenVia {
            transport,
            host,
            port,
            branch,
        })
}

/// Random letter case, or the compact form when there is one (RFC 3261 §7.3.3, RFC 6665 `o`).
fn spell(full: &'static str, compact: Option<&'static str>, mode: u8) -> String {
    match (mode % 4, compact) {
        (0, Some(c)) => c.to_string(),
        (1, Some(c)) => c.to_ascii_uppercase(),
        (2, _) => full.to_ascii_uppercase(),
        (3, _) => full
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_lowercase()
                } else {
                    c.to_ascii_uppercase()
                }
            })
            .collect(),
        _ => full.to_string(),
    }
}

#[derive(Debug, Clone)]
struct GenRequest {
    method: Method,
    ruri: GenUri,
    vias: Vec<GenVia>,
    /// Put the Via values in one comma-separated field.
    vias_joined: bool,
    from: GenAddr,
    to: GenAddr,
    call_id: String,
    cseq: u32,
    max_forwards: Option<u8>,
    contacts: Vec<GenAddr>,
    contacts_joined: bool,
    extras: Vec<(String, String)>,
    event: Option<String>,
    body: Vec<u8>,
    spelling: [u8; 8],
}

fn request() -> impl Strategy<Value = GenRequest> {
    (
        (
            method(),
            uri(),
            proptest::collection::vec(via(), 1..4),
            any::<bool>(),
            addr(),
            addr(),
        ),
        (
            "[A-Za-z0-9.!%*_+`'~()<>:\\\\\"/\\[\\]?{}-]{1,24}(@[a-z0-9.]{1,12})?",
            any::<u32>(),
            proptest::option::of(any::<u8>()),
        ),
        (proptest::collection::vec(addr(), 0..3), any::<bool>()),
        proptest::collection::btree_map("X-[A-Za-z0-9-]{1,10}", "[!-~]([ -~]{0,20}[!-~])?", 0..3),
        proptest::option::of("[a-z]{1,8}(\\.[a-z]{1,5})?"),
        proptest::collection::vec(any::<u8>(), 0..300),
        any::<[u8; 8]>(),
    )
        .prop_map(
            |(
                (method, ruri, vias, vias_joined, from, to),
                (call_id, cseq, max_forwards),
                (contacts, contacts_joined),
                extras,
                event,
                body,
                spelling,
            )| {
                GenRequest {
                    method,
                    ruri,
                    vias,
                    vias_joined,
                    from,
                    to,
                    call_id,
                    cseq,
                    max_forwards,
                    contacts,
                    contacts_joined,
                    // Names compare case-insensitively: keep one of `X-a` / `X-A`.
                    extras: extras.into_iter().fold(
                        Vec::new(),
                        |mut acc: Vec<(String, String)>, (n, v)| {
                            if !acc.iter().any(|(m, _)| m.eq_ignore_ascii_case(&n)) {
                                acc.push((n, v));
                            }
                            acc
                        },
                    ),
                    event,
                    body,
                    spelling,
                }
            },
        )
}

impl GenRequest {
    fn build(&self) -> Bytes {
        let s = &self.spelling;
        let mut w = MessageWriter::request(&self.method, &self.ruri.text());
        let via_name = spell("Via", Some("v"), s[0]);
        if self.vias_joined {
            let joined: Vec<String> = self.vias.iter().map(GenVia::text).collect();
            w.header(&via_name, &joined.join(" , "));
        } else {
            for v in &self.vias {
                w.header(&via_name, &v.text());
            }
        }
        if let Some(mf) = self.max_forwards {
            w.header(&spell("Max-Forwards", None, s[1]), &mf.to_string());
        }
        w.header(&spell("From", Some("f"), s[2]), &self.from.text());
        w.header(&spell("To", Some("t"), s[3]), &self.to.text());
        w.header(&spell("Call-ID", Some("i"), s[4]), &self.call_id);
        w.header_fmt(
            &spell("CSeq", None, s[5]),
            format_args!("{} {}", self.cseq, self.method.as_str()),
        );
        let contact_name = spell("Contact", Some("m"), s[6]);
        if self.contacts_joined && !self.contacts.is_empty() {
            let joined: Vec<String> = self.contacts.iter().map(GenAddr::text).collect();
            w.header(&contact_name, &joined.join(", "));
        } else {
            for c in &self.contacts {
                w.header(&contact_name, &c.text());
            }
        }
        if let Some(e) = &self.event {
            w.header(&spell("Event", Some("o"), s[7]), e);
        }
        for (n, v) in &self.extras {
            w.header(n, v);
        }
        let ct = (!self.body.is_empty()).then_some("application/octet-stream");
        w.finish(ct, &self.body)
    }

    fn check(&self, m: &Message) {
        assert!(m.is_request());
        assert_eq!(m.method(), Some(&self.method));
        assert_eq!(m.request_uri(), Some(self.ruri.text().as_str()));
        self.ruri.check(
            &Uri::parse(m.request_uri().unwrap()).unwrap(),
            "Request-URI",
        );
        let vias = m.vias().expect("Via");
        assert_eq!(vias.len(), self.vias.len());
        for (got, want) in vias.iter().zip(&self.vias) {
            assert_eq!(got.transport, want.transport);
            assert!(
                want.host.matches(&got.host),
                "Via host {:?} vs {:?}",
                want.host,
                got.host
            );
            assert_eq!(got.port, want.port);
            assert_eq!(
                got.branch().map(str::to_string),
                Some(format!("z9hG4bK{}", want.branch))
            );
        }
        assert_eq!(m.top_via_branch(), vias.first().and_then(|v| v.branch()));
        assert_eq!(
            m.u32_header(&HeaderName::MaxForwards).unwrap(),
            self.max_forwards.map(u32::from)
        );
        self.from.check(&m.from_header().expect("From"), "From");
        self.to.check(&m.to_header().expect("To"), "To");
        assert_eq!(m.call_id().unwrap(), self.call_id);
        let cseq = m.cseq().unwrap();
        assert_eq!((cseq.seq, &cseq.method), (self.cseq, &self.method));
        let contacts = m.contacts().expect("Contact");
        assert_eq!(contacts.len(), self.contacts.len());
        for (got, want) in contacts.iter().zip(&self.contacts) {
            match got {
                ContactValue::Addr(na) => want.check(na, "Contact"),
                ContactValue::Star => panic!("unexpected *"),
            }
        }
        match (&self.event, m.event().unwrap()) {
            (Some(e), Some(ev)) => assert_eq!(ev.package, e),
            (None, None) => {}
            (a, b) => panic!("Event {a:?} vs {b:?}"),
        }
        for (n, v) in &self.extras {
            assert_eq!(m.other_header(n), Some(v.as_str()), "{n}");
            assert_eq!(
                m.other_header(&n.to_ascii_lowercase()),
                Some(v.as_str()),
                "{n} case-insensitive"
            );
        }
        assert_eq!(m.body(), self.body);
        assert_eq!(m.content_type().unwrap().is_some(), !self.body.is_empty());
    }
}

#[derive(Debug, Clone)]
struct GenResponse {
    code: u16,
    reason: String,
    via: GenVia,
    from: GenAddr,
    to: GenAddr,
    call_id: String,
    cseq: u32,
    method: Method,
    etag: Option<String>,
    body: Vec<u8>,
}

fn response() -> impl Strategy<Value = GenResponse> {
    (
        100u16..700,
        "([A-Za-z][A-Za-z .-]{0,20}[A-Za-z.])?",
        via(),
        addr(),
        addr(),
        "[a-zA-Z0-9.-]{1,20}",
        any::<u32>(),
        method(),
        proptest::option::of("[a-zA-Z0-9.]{1,12}"),
        proptest::collection::vec(any::<u8>(), 0..100),
    )
        .prop_map(
            |(code, reason, via, from, to, call_id, cseq, method, etag, body)| GenResponse {
                code,
                reason,
                via,
                from,
                to,
                call_id,
                cseq,
                method,
                etag,
                body,
            },
        )
}

impl GenResponse {
    fn build(&self) -> Bytes {
        let mut w = MessageWriter::response(self.code, &self.reason);
        w.header("Via", &self.via.text())
            .header("From", &self.from.text())
            .header("To", &self.to.text())
            .header("Call-ID", &self.call_id)
            .header("CSeq", &format!("{} {}", self.cseq, self.method.as_str()));
        if let Some(e) = &self.etag {
            w.header("SIP-ETag", e);
        }
        w.finish((!self.body.is_empty()).then_some("text/plain"), &self.body)
    }
    fn check(&self, m: &Message) {
        assert!(!m.is_request());
        assert_eq!(m.status(), Some(self.code));
        assert_eq!(m.reason(), Some(self.reason.as_str()));
        assert_eq!(
            m.top_via().unwrap().branch().map(str::to_string),
            Some(format!("z9hG4bK{}", self.via.branch))
        );
        assert_eq!(m.top_via_branch(), m.top_via().unwrap().branch());
        self.from.check(&m.from_header().unwrap(), "From");
        self.to.check(&m.to_header().unwrap(), "To");
        assert_eq!(m.call_id().unwrap(), self.call_id);
        let cseq = m.cseq().unwrap();
        assert_eq!((cseq.seq, cseq.method), (self.cseq, self.method.clone()));
        assert_eq!(m.header(&HeaderName::SipETag), self.etag.as_deref());
        assert_eq!(m.body(), self.body);
    }
}

fn parse_built(bytes: &Bytes) -> Message {
    Message::parse(bytes.clone(), &Limits::default()).unwrap_or_else(|e| {
        panic!(
            "built message rejected: {e:?}\n{}",
            String::from_utf8_lossy(bytes)
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn built_requests_parse_to_what_was_built_and_roundtrip(req in request()) {
        let bytes = req.build();
        let m = parse_built(&bytes);
        req.check(&m);
        let again = assert_roundtrip(&m, "request");
        req.check(&again);
        exercise_views(&m);
    }

    #[test]
    fn built_responses_parse_to_what_was_built_and_roundtrip(resp in response()) {
        let bytes = resp.build();
        let m = parse_built(&bytes);
        resp.check(&m);
        let again = assert_roundtrip(&m, "response");
        resp.check(&again);
    }

    #[test]
    fn stream_decoder_is_independent_of_chunking(
        reqs in proptest::collection::vec(request(), 1..4),
        resps in proptest::collection::vec(response(), 0..3),
        pings in proptest::collection::vec(0usize..3, 6),
        chunks in proptest::collection::vec(1usize..200, 1..40),
    ) {
        let mut messages: Vec<Bytes> = reqs.iter().map(GenRequest::build).collect();
        messages.extend(resps.iter().map(GenResponse::build));
        let mut stream = Vec::new();
        let mut want = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            for _ in 0..pings[i % pings.len()] {
                stream.extend_from_slice(b"\r\n\r\n");
                want.push(StreamItem::Ping);
            }
            stream.extend_from_slice(m);
            want.push(StreamItem::Message(m.clone()));
        }
        // All at once: the exact item sequence, pings included.
        let whole = decode_chunked(&stream, || usize::MAX);
        prop_assert_eq!(&whole.error, &None);
        prop_assert_eq!(whole.buffered, 0);
        prop_assert_eq!(&whole.items, &want);
        // Any chunking: the same messages (a ping split across reads may legitimately come out
        // as two pongs, so keepalive items are not compared here), nothing left over.
        let mut i = 0;
        let chunked = decode_chunked(&stream, || { i += 1; chunks[i % chunks.len()] });
        prop_assert_eq!(&chunked.error, &None);
        prop_assert_eq!(chunked.buffered, 0);
        prop_assert_eq!(chunked.messages(), messages.clone());
        for m in chunked.messages() {
            prop_assert!(Message::parse(m, &Limits::default()).is_ok());
        }
    }

    #[test]
    fn stream_decoder_never_panics_on_arbitrary_bytes(
        data in proptest::collection::vec(any::<u8>(), 0..2048),
        chunk in 1usize..300,
    ) {
        let d = decode_chunked(&data, || chunk);
        for m in d.messages() {
            if let Ok(msg) = Message::parse(m, &Limits::default()) {
                exercise_views(&msg);
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_parser(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let buf = Bytes::from(data);
        if let Ok(m) = Message::parse(buf.clone(), &Limits::default()) {
            exercise_views(&m);
        }
        if let Ok(m) = Message::parse_headers_only(buf, &Limits::default()) {
            exercise_views(&m);
        }
    }

    /// Mutations of real messages reach much deeper than random bytes; whatever is still
    /// accepted must round-trip like any valid message.
    #[test]
    fn mutated_corpus_messages_never_panic_and_accepted_ones_roundtrip(
        which in 0usize..64,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let corpus = mutation_seeds();
        let mut data = corpus[which % corpus.len()].clone();
        for (idx, byte, op) in edits {
            if data.is_empty() { break; }
            let at = idx.index(data.len());
            match op {
                0 => data[at] = byte,
                1 => data.insert(at, byte),
                _ => { data.remove(at); }
            }
        }
        let d = decode_chunked(&data, || 17);
        for m in d.messages() {
            let _ = Message::parse(m, &Limits::default());
        }
        let buf = Bytes::from(data);
        let m = match Message::parse_for_reply(buf.clone(), &Limits::default()) {
            Ok(m) => Some(m),
            Err(unparsable) => {
                // What a respondable error hands back is what the reply is built from:
                // the same reply as from the structural parse alone. No other error
                // hands back anything.
                prop_assert_eq!(unparsable.headers.is_some(), unparsable.error.respondable);
                if let Some(headers) = unparsable.headers {
                    let alone = Message::parse_headers_only(buf, &Limits::default())
                        .expect("a respondable error has a structural parse");
                    let reply = |m: &Message| {
                        sip_message::response_to(m, 400, "Bad Request", Some("t")).finish(None, b"")
                    };
                    prop_assert_eq!(reply(&headers), reply(&alone));
                    prop_assert_eq!(headers.body(), alone.body());
                }
                None
            }
        };
        if let Some(m) = m {
            exercise_views(&m);
            assert_roundtrip(&m, "mutated");
            // The shortcut response matching takes agrees with the full Via parse wherever
            // that succeeds, which is always for a request (a response's Via is checked only
            // when read).
            match m.top_via() {
                Ok(via) => prop_assert_eq!(m.top_via_branch(), via.branch()),
                Err(_) => prop_assert!(!m.is_request()),
            }
        }
    }
}

fn mutation_seeds() -> Vec<Vec<u8>> {
    let mut names: Vec<String> = std::fs::read_dir(torture_dir())
        .unwrap()
        .filter_map(|e| {
            e.unwrap()
                .file_name()
                .into_string()
                .unwrap()
                .strip_suffix(".sip")
                .map(str::to_string)
        })
        .collect();
    names.sort();
    names.iter().map(|n| torture(n)).collect()
}
