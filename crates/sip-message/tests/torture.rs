//! RFC 4475 (SIP torture test messages) and RFC 5118 (IPv6 torture messages) against
//! `Message::parse`, `serialize` and `StreamDecoder`. The corpus and the expected verdicts are
//! in `tests/torture/`; see its README for how the files were made.

mod common;

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::Bytes;
use common::*;
use sip_message::{
    response_to, ContactValue, FramingError, HeaderName, Host, Limits, Message, Method, NameAddr,
    StartLine, StreamItem, Uri,
};

// ---------------------------------------------------------------------------------------------
// expected.txt

#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Valid,
    Lenient,
    Invalid,
    Unsupported,
    Drop,
}

#[derive(Debug, Clone)]
struct Expect {
    name: String,
    section: String,
    verdict: Verdict,
    /// None for "-"; the bool is true for "400?" (the start line may be unsplittable, so a
    /// drop is acceptable and `respondable` is not asserted).
    status: Option<(u16, bool)>,
    keywords: Vec<String>,
    description: String,
}

fn expectations() -> Vec<Expect> {
    let text = std::fs::read_to_string(torture_dir().join("expected.txt")).expect("expected.txt");
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = line.splitn(6, '|').map(str::trim).collect();
        assert_eq!(cols.len(), 6, "malformed expected.txt line: {line}");
        let verdict = match cols[2] {
            "valid" => Verdict::Valid,
            "lenient" => Verdict::Lenient,
            "invalid" => Verdict::Invalid,
            "unsupported" => Verdict::Unsupported,
            "drop" => Verdict::Drop,
            other => panic!("unknown verdict {other} in: {line}"),
        };
        let status = match cols[3] {
            "-" => None,
            s => {
                let optional = s.ends_with('?');
                Some((s.trim_end_matches('?').parse().expect("status"), optional))
            }
        };
        let keywords = match cols[4] {
            "-" => Vec::new(),
            k => k
                .split('/')
                .map(|s| s.trim().to_ascii_lowercase())
                .collect(),
        };
        out.push(Expect {
            name: cols[0].to_string(),
            section: cols[1].to_string(),
            verdict,
            status,
            keywords,
            description: cols[5].to_string(),
        });
    }
    out
}

fn valid_names() -> Vec<String> {
    expectations()
        .into_iter()
        .filter(|e| e.verdict == Verdict::Valid)
        .map(|e| e.name)
        .collect()
}

/// Parse a corpus message that must be accepted.
fn ok(name: &str) -> Message {
    parse(&torture(name)).unwrap_or_else(|e| panic!("{name} must parse, got {e:?}"))
}

// ---------------------------------------------------------------------------------------------
// The corpus itself

#[test]
fn corpus_and_expectations_match() {
    let files: BTreeSet<String> = std::fs::read_dir(torture_dir())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".sip").map(str::to_string)
        })
        .collect();
    let listed: BTreeSet<String> = expectations().into_iter().map(|e| e.name).collect();
    assert_eq!(
        files, listed,
        "every .sip file needs exactly one line in expected.txt"
    );
    // RFC 4475 §3 has 49 messages, RFC 5118 §4 has 12.
    assert_eq!(files.len(), 61);
}

#[test]
fn corpus_files_are_wire_format() {
    for e in expectations() {
        let bytes = torture(&e.name);
        let head_end =
            find(&bytes, b"\r\n\r\n").unwrap_or_else(|| panic!("{}: no end of headers", e.name));
        // Every line break in the header section is CRLF.
        for (i, &b) in bytes[..head_end].iter().enumerate() {
            if b == b'\n' {
                assert_eq!(bytes[i - 1], b'\r', "{}: bare LF at {i}", e.name);
            }
            if b == b'\r' {
                assert_eq!(bytes[i + 1], b'\n', "{}: bare CR at {i}", e.name);
            }
        }
    }
    // Spot checks of the <hex> and <repeat> markup.
    assert!(find(&torture("intmeth"), b"NUL:\\\x00 DEL:\\\x7f\"").is_some());
    assert!(find(&torture("noreason"), b"SIP/2.0 100 \r\n").is_some());
    assert!(find(&torture("trws"), b"SIP/2.0  \r\n").is_some());
    assert!(find(&torture("mpart01"), b"\x30\x82\x01\x52\x06\x09\x2a\x86").is_some());
    let expires = format!("Expires: 1{}\r\n", "0".repeat(100));
    assert!(find(&torture("scalar02"), expires.as_bytes()).is_some());
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// Verdicts

#[test]
fn every_message_gets_the_expected_verdict() {
    let mut failures = Vec::new();
    for e in expectations() {
        if let Err(msg) = check_verdict(&e) {
            failures.push(format!(
                "{} ({}): {msg}\n    RFC: {}",
                e.name, e.section, e.description
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} torture message(s) mishandled:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn check_verdict(e: &Expect) -> Result<(), String> {
    let bytes = torture(&e.name);
    let result = parse(&bytes);
    match e.verdict {
        Verdict::Valid | Verdict::Lenient => result
            .map(|_| ())
            .map_err(|err| format!("must parse, got {err:?}")),
        Verdict::Invalid => {
            let err = match result {
                Ok(_) => return Err("must be rejected, but parsed".into()),
                Err(err) => err,
            };
            let reason = err.reason.to_ascii_lowercase();
            if !e.keywords.iter().any(|k| reason.contains(k.as_str())) {
                return Err(format!(
                    "reason {:?} names none of {:?}",
                    err.reason, e.keywords
                ));
            }
            let is_request = !bytes.starts_with(b"SIP/");
            if let Some((status, optional)) = e.status {
                if err.status != status {
                    return Err(format!(
                        "status {} (reason {:?}), expected {status}",
                        err.status, err.reason
                    ));
                }
                if is_request && !optional && !err.respondable {
                    return Err(format!(
                        "must be respondable (a {status} is due), got {err:?}"
                    ));
                }
            }
            check_respondable_contract(&bytes, &err)
        }
        Verdict::Unsupported => {
            let err = match result {
                Ok(_) => return Err("must be rejected with 416, but parsed".into()),
                Err(err) => err,
            };
            if err.status != 416 || !err.respondable {
                return Err(format!("expected a respondable 416, got {err:?}"));
            }
            if !e
                .keywords
                .iter()
                .any(|k| err.reason.to_ascii_lowercase().contains(k.as_str()))
            {
                return Err(format!(
                    "reason {:?} names none of {:?}",
                    err.reason, e.keywords
                ));
            }
            check_respondable_contract(&bytes, &err)
        }
        Verdict::Drop => match result {
            Ok(_) => Err("must be dropped, but parsed".into()),
            Err(err) if err.respondable => Err(format!("must not be respondable, got {err:?}")),
            Err(_) => Ok(()),
        },
    }
}

/// `respondable: true` promises that `parse_headers_only` succeeds and that `response_to` can
/// build the answer from it (RFC 3261 §8.2.6: Via, From, To, Call-ID, CSeq copied).
fn check_respondable_contract(bytes: &[u8], err: &sip_message::ParseError) -> Result<(), String> {
    if !err.respondable {
        return Ok(());
    }
    let m = Message::parse_headers_only(Bytes::copy_from_slice(bytes), &Limits::default())
        .map_err(|e2| format!("respondable, but parse_headers_only failed: {e2:?}"))?;
    if !m.is_request() {
        return Err("respondable error on a response".into());
    }
    let resp = response_to(&m, err.status, &err.reason, Some("tt1")).finish(None, b"");
    let r = Message::parse_headers_only(resp.clone(), &Limits::default()).map_err(|e3| {
        format!(
            "response_to output does not parse: {e3:?}\n{}",
            String::from_utf8_lossy(&resp)
        )
    })?;
    if r.status() != Some(err.status) {
        return Err(format!("response has status {:?}", r.status()));
    }
    for name in [
        HeaderName::Via,
        HeaderName::CallId,
        HeaderName::CSeq,
        HeaderName::From,
    ] {
        let req: Vec<&str> = m
            .headers()
            .filter(|h| *h.name == name)
            .map(|h| h.value)
            .collect();
        let rsp: Vec<&str> = r
            .headers()
            .filter(|h| *h.name == name)
            .map(|h| h.value)
            .collect();
        if req != rsp {
            return Err(format!(
                "{} not copied: {req:?} vs {rsp:?}",
                name.canonical()
            ));
        }
    }
    Ok(())
}

#[test]
fn multi01_with_consistent_length_is_rejected_for_the_duplicates() {
    // The RFC's multi01 also has `l: 154` over a 152-octet body; with that fixed, the error
    // must be about the repeated single-value headers (RFC 4475 §3.3.8).
    let fixed = String::from_utf8(torture("multi01"))
        .unwrap()
        .replace("l: 154\r\n", "l: 152\r\n");
    let err = parse(fixed.as_bytes()).expect_err("multi01 must be rejected");
    assert_eq!(err.status, 400, "{err:?}");
    let reason = err.reason.to_ascii_lowercase();
    assert!(
        [
            "call-id",
            "cseq",
            "from",
            "to",
            "max-forwards",
            "multiple",
            "duplicate"
        ]
        .iter()
        .any(|k| reason.contains(k)),
        "reason should name a repeated header: {err:?}"
    );
    assert!(err.respondable, "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// Round trip of every valid message

#[test]
fn valid_messages_roundtrip_through_serialize() {
    for name in valid_names() {
        let m = ok(&name);
        exercise_views(&m);
        assert_roundtrip(&m, &name);
    }
    for name in ["baddate", "regbadct"] {
        assert_roundtrip(&ok(name), name);
    }
}

#[test]
fn dblreq_trailing_octets_are_ignored() {
    let m = ok("dblreq");
    assert_eq!(m.method(), Some(&Method::Register));
    assert!(m.body().is_empty());
    assert_eq!(
        m.call_id().unwrap(),
        "dblreq.0ha0isndaksdj99sdfafnl3lk233412"
    );
    let out = m.serialize();
    assert!(
        find(&out, b"INVITE").is_none(),
        "the trailing INVITE must not be forwarded"
    );
    let c = contacts(&m);
    assert_eq!(c[0].uri.host, Host::Name("host.example.com"));
}

// ---------------------------------------------------------------------------------------------
// Typed views on the messages with semantic content

fn contacts(m: &Message) -> Vec<NameAddr<'_>> {
    m.contacts()
        .expect("Contact parses")
        .into_iter()
        .map(|c| match c {
            ContactValue::Addr(a) => a,
            ContactValue::Star => panic!("unexpected Contact: *"),
        })
        .collect()
}

fn ruri(m: &Message) -> Uri<'_> {
    Uri::parse(m.request_uri().expect("request")).expect("Request-URI parses")
}

fn v6(s: &str) -> Host<'static> {
    Host::Ipv6(s.parse::<Ipv6Addr>().unwrap())
}

fn v4(s: &str) -> Host<'static> {
    Host::Ipv4(s.parse::<Ipv4Addr>().unwrap())
}

fn dn<'a>(na: &'a NameAddr<'_>) -> Option<&'a str> {
    na.display_name.as_ref().map(Cow::as_ref)
}

#[test]
fn wsinv_views() {
    let m = ok("wsinv");
    assert_eq!(m.method(), Some(&Method::Invite));
    assert_eq!(
        m.request_uri(),
        Some("sip:vivekg@chair-dnrc.example.com;unknownparam")
    );
    let u = ruri(&m);
    assert_eq!(u.param("unknownparam"), Some(None));
    let to = m.to_header().unwrap();
    assert_eq!(to.uri.text, "sip:vivekg@chair-dnrc.example.com");
    assert_eq!(to.tag(), Some("1918181833n"));
    let from = m.from_header().unwrap();
    assert_eq!(dn(&from), Some("J Rosenberg \\\""));
    assert_eq!(from.uri.text, "sip:jdrosen@example.com");
    assert_eq!(from.tag(), Some("98asjd8"));
    assert_eq!(m.u32_header(&HeaderName::MaxForwards).unwrap(), Some(68));
    let cseq = m.cseq().unwrap();
    assert_eq!((cseq.seq, cseq.method), (9, Method::Invite));
    assert_eq!(m.call_id().unwrap(), "wsinv.ndaksdj@192.0.2.1");
    let vias = m.vias().unwrap();
    assert_eq!(
        vias.len(),
        3,
        "one Via field plus a `v:` field with two values"
    );
    assert_eq!(
        (vias[0].transport, vias[0].host, vias[0].branch()),
        ("UDP", v4("192.0.2.2"), Some("390skdjuw"))
    );
    assert_eq!(vias[1].transport, "TCP");
    assert_eq!(vias[1].host, Host::Name("spindle.example.com"));
    assert_eq!(vias[1].branch(), Some("z9hG4bK9ikj8"));
    assert_eq!(
        (vias[2].transport, vias[2].host),
        ("UDP", v4("192.168.255.111"))
    );
    assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));
    assert_eq!(
        m.header(&HeaderName::Subject),
        Some(""),
        "empty compact `s` header"
    );
    assert_eq!(
        m.other_header("newfangledheader")
            .map(normalize_ws)
            .as_deref(),
        Some("newfangled value continued newfangled value")
    );
    assert_eq!(
        m.other_header("UnknownHeaderWithUnusualValue"),
        Some(";;,,;;,;")
    );
    let route = m.name_addrs(&HeaderName::Route).unwrap();
    assert_eq!(route.len(), 1);
    assert_eq!(route[0].uri.param("lr"), Some(None));
    assert_eq!(route[0].uri.param("unknownwith"), Some(Some("value")));
    let c = contacts(&m);
    assert_eq!(c.len(), 1);
    assert_eq!(dn(&c[0]), Some("Quoted string \"\""));
    assert_eq!(c[0].params.get("newparam"), Some(Some("newvalue")));
    assert_eq!(c[0].params.get("secondparam"), Some(None));
    assert_eq!(c[0].params.get("q"), Some(Some("0.33")));
    assert!(m.content_type().unwrap().unwrap().is("application", "sdp"));
    assert_eq!(m.body().len(), 150);
}

#[test]
fn intmeth_views() {
    let m = ok("intmeth");
    let method = "!interesting-Method0123456789_*+`.%indeed'~";
    assert_eq!(m.method(), Some(&Method::Extension(method.into())));
    assert_eq!(m.method().unwrap().as_str(), method);
    assert_eq!(Method::from_token(method), Method::Extension(method.into()));
    let cseq = m.cseq().unwrap();
    assert_eq!(
        (cseq.seq, cseq.method),
        (139122385, Method::Extension(method.into()))
    );
    let u = ruri(&m);
    assert_eq!(
        u.user,
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    assert_eq!(
        u.password,
        Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
    );
    assert_eq!(u.host, Host::Name("example.com"));
    assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bK-.!%66*_+`'~"));
    let to = m.to_header().unwrap();
    assert_eq!(
        dn(&to),
        Some("BEL:\x07 NUL:\x00 DEL:\x7f"),
        "quoted-pairs of control characters"
    );
    assert_eq!(
        to.uri.user,
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    let from = m.from_header().unwrap();
    assert_eq!(dn(&from), Some("token1~` token2'+_ token3*%!.-"));
    assert_eq!(from.tag(), Some("_token~1'+`*%!-."));
    let cyrillic = String::from_utf8(hex("D180D0B0D0B1D0BED182D0B0D18ED189D0B8D0B9")).unwrap();
    let quoted = from
        .params
        .get("fromParam''~+*_!.-%")
        .expect("param present")
        .expect("has value");
    assert_eq!(sip_message::unquote(quoted), cyrillic);
    assert_eq!(
        m.call_id().unwrap(),
        "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    );
    assert_eq!(m.u32_header(&HeaderName::MaxForwards).unwrap(), Some(255));
    let ext = String::from_utf8(hex("EFBBBFE5A4A7E5819CE99BBB")).unwrap();
    assert_eq!(
        m.other_header("extensionHeader-!.%*+_`'~"),
        Some(ext.as_str())
    );
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn esc01_views() {
    let m = ok("esc01");
    let u = ruri(&m);
    assert_eq!(u.user_unescaped().as_deref(), Some("sips:user@example.com"));
    assert_eq!(u.host, Host::Name("example.net"));
    let to = m.to_header().unwrap();
    assert_eq!(to.uri.user_unescaped().as_deref(), Some("user"));
    assert!(
        to.uri
            .equivalent(&Uri::parse("sip:user@example.com").unwrap()),
        "%75se%72 == user (RFC 3261 §19.1.4)"
    );
    let from = m.from_header().unwrap();
    assert_eq!(from.uri.user_unescaped().as_deref(), Some("I have spaces"));
    assert_eq!(from.tag(), Some("938"));
    assert_eq!(
        m.call_id().unwrap(),
        "esc01.239409asdfakjkn23onasd0-3234",
        "compact i"
    );
    assert!(
        m.content_type().unwrap().unwrap().is("application", "sdp"),
        "compact c"
    );
    let c = contacts(&m);
    assert_eq!(c[0].uri.user_unescaped().as_deref(), Some("caller"));
    assert_eq!(c[0].uri.host, Host::Name("host5.example.net"));
}

#[test]
fn escnull_views() {
    let m = ok("escnull");
    let to = m.to_header().unwrap();
    assert_eq!(to.uri.user_unescaped().as_deref(), Some("null-\0-null"));
    assert_eq!(
        to.uri.aor_key().as_deref(),
        Some("null-\0-null@example.com"),
        "AOR must not be cut at the NUL"
    );
    let c = contacts(&m);
    assert_eq!(c.len(), 2);
    assert_eq!(c[0].uri.user_unescaped().as_deref(), Some("\0"));
    assert_eq!(c[1].uri.user_unescaped().as_deref(), Some("\0\0"));
    assert!(!c[0].uri.equivalent(&c[1].uri), "two distinct contacts");
    assert_eq!(
        m.u32_header(&HeaderName::ContentLength).unwrap(),
        Some(0),
        "compact L:0"
    );
}

#[test]
fn esc02_views() {
    let m = ok("esc02");
    assert_eq!(
        m.method(),
        Some(&Method::Extension("RE%47IST%45R".into())),
        "not REGISTER"
    );
    assert_eq!(
        m.cseq().unwrap().method,
        Method::Extension("RE%47IST%45R".into())
    );
    assert_eq!(dn(&m.to_header().unwrap()), Some("%Z%45"));
    assert_eq!(dn(&m.from_header().unwrap()), Some("%Z%45"));
    assert_eq!(contacts(&m).len(), 2, "C%6Fntact is not a Contact");
    assert_eq!(
        m.other_header("C%6Fntact"),
        Some("<sip:alias2@host2.example.com>")
    );
    assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bK209%fzsnel234"));
}

#[test]
fn lwsdisp_views() {
    let m = ok("lwsdisp");
    let from = m.from_header().unwrap();
    assert_eq!(dn(&from), Some("caller"));
    assert_eq!(from.uri.user, Some("caller"));
    assert_eq!(from.tag(), Some("323"));
}

#[test]
fn longreq_views() {
    let m = ok("longreq");
    let to = m.to_header().unwrap();
    let display = format!("I have a user name of {} proportion", "extreme".repeat(10));
    assert_eq!(dn(&to), Some(display.as_str()));
    assert_eq!(to.uri.port, Some(6000));
    assert_eq!(
        to.uri.param(&format!("longparam{}", "name".repeat(25))),
        Some(Some("shortvalue"))
    );
    assert_eq!(
        to.uri.param(&format!(
            "very{}ParameterNameWithNoValue",
            "long".repeat(25)
        )),
        Some(None)
    );
    let from = m.from_header().unwrap();
    let tag = format!("12{}424", "982".repeat(50));
    assert_eq!(from.tag(), Some(tag.as_str()));
    assert_eq!(
        from.uri.user.map(str::len),
        Some(5 * "amazinglylongcallername".len())
    );
    assert_eq!(
        from.params
            .get(&format!("unknownValueless{}", "paramname".repeat(10))),
        Some(None)
    );
    let callid = format!("longreq.one{}longcallid", "really".repeat(20));
    assert_eq!(m.call_id().unwrap(), callid);
    let vias = m.vias().unwrap();
    assert_eq!(vias.len(), 34);
    assert_eq!(m.header_values(&HeaderName::Via).count(), 34);
    for (i, via) in vias.iter().take(33).enumerate() {
        let host = format!("sip{}.example.com", 33 - i);
        assert_eq!(via.host, Host::Name(host.as_str()));
        assert_eq!(via.transport, "TCP");
    }
    let branch = format!("very{}branchvalue", "long".repeat(50));
    assert_eq!(vias[33].branch(), Some(branch.as_str()));
    assert_eq!(vias[33].params.get("received"), Some(Some("192.0.2.5")));
    let c = contacts(&m);
    let user = "amazinglylongcallername".repeat(5);
    assert_eq!(c[0].uri.user, Some(user.as_str()));
    let unknown = format!("Unknown-{}-Name", "Long".repeat(20));
    let value = m
        .other_header(&unknown.to_ascii_lowercase())
        .expect("long unknown header");
    assert!(value.starts_with(&format!("unknown-{}-value;", "long".repeat(20))));
    assert_eq!(m.u32_header(&HeaderName::ContentLength).unwrap(), Some(150));
}

#[test]
fn semiuri_views() {
    let m = ok("semiuri");
    let u = ruri(&m);
    assert_eq!(u.user, Some("user;par=u%40example.net"));
    assert_eq!(
        u.user_unescaped().as_deref(),
        Some("user;par=u@example.net")
    );
    assert_eq!(u.host, Host::Name("example.com"));
    assert!(u.params.is_empty(), "the ; is inside the user part");
    let accept: Vec<&str> = m.header_values(&HeaderName::Accept).collect();
    assert_eq!(
        accept,
        [
            "application/sdp",
            "application/pkcs7-mime",
            "multipart/mixed",
            "multipart/signed",
            "message/sip",
            "message/sipfrag"
        ]
    );
}

#[test]
fn transports_views() {
    let m = ok("transports");
    let t: Vec<&str> = m.vias().unwrap().iter().map(|v| v.transport).collect();
    assert_eq!(t, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
    assert_eq!(m.call_id().unwrap(), "transports.kijh4akdnaqjkwendsasfdj");
}

#[test]
fn mpart01_views() {
    let m = ok("mpart01");
    assert_eq!(m.method(), Some(&Method::Message));
    let body = m.body();
    assert_eq!(body.len(), 553);
    assert!(body.contains(&0), "binary part with NUL octets is kept");
    assert!(body.ends_with(b"--7a9cbec02ceef655--\r\n"));
    let ct = m.content_type().unwrap().unwrap();
    assert!(ct.is("multipart", "mixed"));
    assert_eq!(ct.params.get("boundary"), Some(Some("7a9cbec02ceef655")));
    let via = m.top_via().unwrap();
    assert_eq!((via.host, via.port), (v4("127.0.0.1"), Some(5070)));
    assert_eq!(via.params.get("rport"), Some(None));
    assert_eq!(
        via.branch(),
        Some("z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-")
    );
    assert!(m
        .other_header("identity")
        .unwrap()
        .ends_with("teeivUhkMWYUA="));
    let route = m.name_addrs(&HeaderName::Route).unwrap();
    assert_eq!(
        (route[0].uri.host, route[0].uri.port),
        (v4("127.0.0.1"), Some(5080))
    );
}

#[test]
fn unreason_and_noreason_views() {
    let raw = torture("unreason");
    let line_end = find(&raw, b"\r\n").unwrap();
    let expected = std::str::from_utf8(&raw["SIP/2.0 200 ".len()..line_end]).unwrap();
    assert!(expected.starts_with("= 2**3 * 5**2 "));
    let m = ok("unreason");
    assert_eq!(m.start_line(), &StartLine::Response { code: 200 });
    assert_eq!(m.reason(), Some(expected));
    assert_eq!(m.body().len(), 154);
    let m = ok("noreason");
    assert_eq!(m.status(), Some(100));
    assert_eq!(m.reason(), Some(""));
    assert!(!m.is_request());
    assert_eq!(m.method(), None);
}

#[test]
fn application_layer_views() {
    let m = ok("badbranch");
    assert_eq!(
        m.top_via().unwrap().branch(),
        Some("z9hG4bK"),
        "bare magic cookie kept for the transaction layer"
    );

    let m = ok("unksm2");
    let to = m.to_header().unwrap();
    assert_eq!(
        (to.uri.scheme, to.uri.is_sip(), to.uri.opaque),
        ("isbn", false, "2983792873")
    );
    assert_eq!(
        to.uri.aor_key(),
        None,
        "not an AOR: a registrar answers 400"
    );
    let from = m.from_header().unwrap();
    assert_eq!((from.uri.scheme, from.tag()), ("http", Some("3234233")));
    let c = contacts(&m);
    assert_eq!((c[0].uri.scheme, c[0].uri.opaque), ("name", "John_Smith"));

    let m = ok("bext01");
    assert!(m.has_token(&HeaderName::Require, "nothingSupportsThis"));
    assert!(
        m.has_token(&HeaderName::Require, "NOTHINGSUPPORTSTHISEITHER"),
        "option tags compare case-insensitively"
    );
    assert!(m.has_token(&HeaderName::ProxyRequire, "norDoAnyProxiesSupportThis"));
    assert!(!m.has_token(&HeaderName::Require, "noProxiesSupportThis"));
    assert_eq!(m.top_via().unwrap().transport, "TLS");

    let m = ok("invut");
    assert!(m
        .content_type()
        .unwrap()
        .unwrap()
        .is("application", "unknownformat"));
    assert_eq!(m.body().len(), 40);

    let m = ok("regaut01");
    assert_eq!(
        m.header(&HeaderName::Authorization),
        Some("NoOneKnowsThisScheme opaque-data=here")
    );
    let creds = m.credentials(&HeaderName::Authorization);
    assert_eq!(creds.len(), 1);
    if let Ok(c) = &creds[0] {
        assert_eq!(
            c.scheme, "NoOneKnowsThisScheme",
            "unknown scheme must not be read as Digest"
        );
        assert_eq!(c.response, None);
    }
    assert_eq!(
        m.u32_header(&HeaderName::ContentLength).unwrap(),
        Some(0),
        "Content-Length:0 without SP"
    );

    let m = ok("bcast");
    let vias = m.vias().unwrap();
    assert_eq!(vias[1].host, v4("255.255.255.255"));
    assert_eq!(m.status(), Some(200));

    let m = ok("zeromf");
    assert_eq!(m.u32_header(&HeaderName::MaxForwards).unwrap(), Some(0));

    let m = ok("cparam01");
    let c = contacts(&m);
    assert_eq!(
        c[0].uri.param("unknownparam"),
        None,
        "bare addr-spec: the param is a contact-param"
    );
    assert_eq!(c[0].params.get("unknownparam"), Some(None));
    assert_eq!(c[0].uri.user, Some("+19725552222"));

    let m = ok("cparam02");
    let c = contacts(&m);
    assert_eq!(
        c[0].uri.param("unknownparam"),
        Some(None),
        "inside <>: a URI param"
    );
    assert!(c[0].params.is_empty());

    let m = ok("regescrt");
    let c = contacts(&m);
    assert_eq!(
        c[0].uri.headers,
        Some("Route=%3Csip:sip.example.com%3E"),
        "compact M"
    );
    assert_eq!(c[0].uri.host, Host::Name("example.com"));

    let m = ok("sdp01");
    assert_eq!(
        m.header_values(&HeaderName::Accept).collect::<Vec<_>>(),
        ["text/nobodyKnowsThis"]
    );

    let m = ok("inv2543");
    assert_eq!(
        m.body().len(),
        105,
        "no Content-Length over UDP: the body is the rest of the datagram"
    );
    assert!(m.body().ends_with(b"m=audio 49217 RTP/AVP 0\r\n"));
    assert_eq!(m.u32_header(&HeaderName::MaxForwards).unwrap(), None);
    assert_eq!(m.u32_header(&HeaderName::ContentLength).unwrap(), None);
    assert_eq!(m.from_header().unwrap().tag(), None);
    assert_eq!(m.top_via().unwrap().branch(), None);
    let rr = m.name_addrs(&HeaderName::RecordRoute).unwrap();
    assert_eq!(rr[0].uri.param("maddr"), Some(Some("ss1.example.com")));
    // A bare addr-spec's `;user=phone` is a header parameter (RFC 3261 §20.10), not a URI one.
    let to = m.to_header().unwrap();
    assert_eq!(to.uri.param("user"), None);
    assert_eq!(to.params.get("user"), Some(Some("phone")));
    let from = m.from_header().unwrap();
    assert_eq!(
        from.uri.param("user"),
        Some(Some("phone")),
        "inside <> it is a URI parameter"
    );
}

#[test]
fn lenient_messages_views() {
    let m = ok("baddate");
    assert_eq!(
        m.header(&HeaderName::Date),
        Some("Fri, 01 Jan 2010 16:00:00 EST")
    );
    let m = ok("regbadct");
    let err = m
        .contacts()
        .expect_err("a ? in a Contact addr-spec requires <> (RFC 3261 §20.10)");
    assert!(
        err.to_string().to_ascii_lowercase().contains("contact"),
        "{err}"
    );
}

#[test]
fn rfc5118_ipv6_views() {
    let m = ok("ipv6-good");
    let u = ruri(&m);
    assert_eq!(
        (u.host, u.host_text, u.port),
        (v6("2001:db8::10"), "[2001:db8::10]", None)
    );
    let via = m.top_via().unwrap();
    assert_eq!(
        (via.host, via.host_text, via.sent_by()),
        (v6("2001:db8::9:1"), "[2001:db8::9:1]", "[2001:db8::9:1]")
    );
    let c = contacts(&m);
    assert_eq!(
        (dn(&c[0]), c[0].uri.host),
        (Some("Caller"), v6("2001:db8::1"))
    );

    let m = ok("port-ambiguous");
    let u = ruri(&m);
    assert_eq!(
        (u.host, u.port),
        (v6("2001:db8::10:5070"), None),
        "the 5070 is inside the reference"
    );

    let m = ok("port-unambiguous");
    let u = ruri(&m);
    assert_eq!((u.host, u.port), (v6("2001:db8::10"), Some(5070)));

    let m = ok("via-received-param-with-delim");
    let via = m.top_via().unwrap();
    assert_eq!(via.params.get("received"), Some(Some("[2001:db8::9:255]")));
    assert_eq!(via.branch(), Some("z9hG4bKas3-111"));
    assert_eq!(m.method(), Some(&Method::Bye));

    let m = ok("via-received-param-no-delim");
    let via = m.top_via().unwrap();
    assert_eq!(via.params.get("received"), Some(Some("2001:db8::9:255")));
    assert_eq!(via.branch(), Some("z9hG4bKas3"));

    let m = ok("ipv6-in-sdp");
    let u = ruri(&m);
    assert_eq!((u.user, u.host), (Some("user"), v6("2001:db8::10")));
    assert_eq!(m.to_header().unwrap().uri.host, v6("2001:db8::10"));
    assert_eq!(m.top_via().unwrap().host, v6("2001:db8::20"));
    assert!(find(&m.body(), b"c=IN IP6 2001:db8::20\r\n").is_some());

    let m = ok("mult-ip-in-header");
    let vias = m.vias().unwrap();
    assert_eq!(vias.len(), 3);
    assert_eq!(
        (vias[0].host, vias[0].port, vias[0].sent_by()),
        (v6("2001:db8::9:1"), Some(6050), "[2001:db8::9:1]:6050")
    );
    assert_eq!((vias[1].host, vias[1].port), (v4("192.0.2.1"), None));
    assert_eq!(
        (vias[2].transport, vias[2].host),
        ("TCP", v6("2001:db8::9:255"))
    );
    assert_eq!(vias[2].params.get("received"), Some(Some("192.0.2.200")));
    assert_eq!(vias[2].branch(), Some("z9hG4bK451jj"));

    let m = ok("mult-ip-in-sdp");
    assert_eq!(m.body().len(), 189);
    assert_eq!(contacts(&m)[0].uri.host, v6("2001:db8::9:1"));

    let m = ok("ipv4-mapped-ipv6");
    let vias = m.vias().unwrap();
    assert_eq!(
        (vias[0].host, vias[0].port),
        (v6("::ffff:192.0.2.10"), Some(19823))
    );
    assert_eq!((vias[1].host, vias[1].port), (v6("::ffff:192.0.2.2"), None));
    let c = contacts(&m);
    assert_eq!(
        (dn(&c[0]), c[0].uri.host),
        (Some("T. desk phone"), v6("::ffff:192.0.2.2"))
    );

    let m = ok("ipv6-correct-abnf-2-colons");
    assert_eq!(ruri(&m).host, v6("2001:db8::192.0.2.1"));
    assert_eq!(m.to_header().unwrap().uri.host, v6("2001:db8::c000:201"));
}

// ---------------------------------------------------------------------------------------------
// Stream framing

/// What a correct stream decoder must make of `data`, computed independently from the
/// Content-Length header(s) of each message in turn.
#[derive(Debug, PartialEq)]
enum Tail {
    /// Everything was consumed.
    Clean,
    /// The last message announced more body than there is: wait for more bytes.
    Incomplete,
    MissingContentLength,
    BadContentLength,
}

fn expected_frames(data: &[u8]) -> (Vec<Vec<u8>>, Tail) {
    let mut frames = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let Some(head_end) = find(rest, b"\r\n\r\n") else {
            return (frames, Tail::Incomplete);
        };
        let head = std::str::from_utf8(&rest[..head_end]).unwrap_or("");
        // Unfold, then collect Content-Length / l values.
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        let mut values = Vec::new();
        for line in unfolded.split("\r\n").skip(1) {
            if let Some((name, value)) = line.split_once(':') {
                let name = name.trim();
                if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
                    values.push(value.trim().to_string());
                }
            }
        }
        let len = match values.as_slice() {
            [] => return (frames, Tail::MissingContentLength),
            [first, others @ ..] if others.iter().all(|v| v == first) => {
                match first.parse::<usize>() {
                    Ok(n) => n,
                    Err(_) => return (frames, Tail::BadContentLength),
                }
            }
            _ => return (frames, Tail::BadContentLength),
        };
        let total = head_end + 4 + len;
        if total > rest.len() {
            return (frames, Tail::Incomplete);
        }
        frames.push(rest[..total].to_vec());
        rest = &rest[total..];
    }
    (frames, Tail::Clean)
}

fn check_stream(name: &str, data: &[u8], decoded: &Decoded) {
    let (frames, tail) = expected_frames(data);
    let got: Vec<Vec<u8>> = decoded.messages().iter().map(|b| b.to_vec()).collect();
    assert_eq!(
        got.len(),
        frames.len(),
        "{name}: number of framed messages (tail {tail:?}, error {:?})",
        decoded.error
    );
    for (i, (g, f)) in got.iter().zip(&frames).enumerate() {
        assert!(
            g == f,
            "{name}: frame {i} differs:\n{}\n---\n{}",
            String::from_utf8_lossy(g),
            String::from_utf8_lossy(f)
        );
    }
    match tail {
        Tail::Clean => {
            assert_eq!(decoded.error, None, "{name}");
            assert_eq!(decoded.buffered, 0, "{name}: bytes left over");
        }
        Tail::Incomplete => {
            assert_eq!(
                decoded.error, None,
                "{name}: must wait for the rest of the body"
            );
            let framed: usize = frames.iter().map(Vec::len).sum();
            assert_eq!(
                decoded.buffered,
                data.len() - framed,
                "{name}: incomplete message stays buffered"
            );
        }
        Tail::MissingContentLength => {
            assert_eq!(
                decoded.error,
                Some(FramingError::MissingContentLength),
                "{name}"
            )
        }
        Tail::BadContentLength => assert_eq!(
            decoded.error,
            Some(FramingError::BadContentLength),
            "{name}"
        ),
    }
}

#[test]
fn every_corpus_file_through_the_stream_decoder_in_random_chunks() {
    let mut rng = Rng::new(4475);
    for e in expectations() {
        let data = torture(&e.name);
        // Whole, byte by byte, and a few random chunkings.
        check_stream(&e.name, &data, &decode_chunked(&data, || usize::MAX));
        check_stream(&e.name, &data, &decode_chunked(&data, || 1));
        for _ in 0..8 {
            let max = rng.chunk(64);
            check_stream(&e.name, &data, &decode_chunked(&data, || rng.chunk(max)));
        }
    }
}

#[test]
fn stream_framing_of_the_tricky_ones() {
    // Spelled out so the generic expectation above cannot hide a mistake of its own.
    let d = decode_chunked(&torture("inv2543"), || 7);
    assert_eq!(d.error, Some(FramingError::MissingContentLength));
    let d = decode_chunked(&torture("ncl"), || 5);
    assert_eq!(d.error, Some(FramingError::BadContentLength));
    let d = decode_chunked(&torture("mcl01"), || 3);
    assert_eq!(
        d.error,
        Some(FramingError::BadContentLength),
        "conflicting Content-Length values"
    );
    let clerr = torture("clerr");
    let d = decode_chunked(&clerr, || 11);
    assert!(
        d.items.is_empty() && d.error.is_none(),
        "clerr: wait for 9999 octets"
    );
    assert_eq!(d.buffered, clerr.len());
    let d = decode_chunked(&torture("dblreq"), || 13);
    let msgs = d.messages();
    assert_eq!(msgs.len(), 2, "on a stream, dblreq is two messages");
    assert!(msgs[0].starts_with(b"REGISTER ") && msgs[0].ends_with(b"Content-Length: 0\r\n\r\n"));
    assert!(msgs[1].starts_with(b"INVITE sip:joe@example.com SIP/2.0\r\n"));
}

#[test]
fn valid_messages_serialized_and_concatenated_decode_identically_for_any_chunking() {
    let mut stream = Vec::new();
    let mut expected = Vec::new();
    for name in valid_names() {
        let out = ok(&name).serialize();
        stream.extend_from_slice(&out);
        stream.extend_from_slice(b"\r\n\r\n"); // RFC 5626 keepalive between messages
        expected.push(out);
    }
    let whole = decode_chunked(&stream, || usize::MAX);
    assert_eq!(whole.error, None);
    assert_eq!(whole.buffered, 0);
    let mut want = Vec::new();
    for m in &expected {
        want.push(StreamItem::Message(m.clone()));
        want.push(StreamItem::Ping);
    }
    assert_eq!(
        whole.items, want,
        "unchunked: every message followed by a Ping"
    );
    let mut rng = Rng::new(5118);
    for round in 0..20 {
        let max = if round % 2 == 0 {
            rng.chunk(16)
        } else {
            rng.chunk(1500)
        };
        let d = decode_chunked(&stream, || rng.chunk(max));
        assert_eq!(d.error, None, "round {round}");
        assert_eq!(d.messages(), expected, "round {round} (max chunk {max})");
        for (m, name) in d.messages().into_iter().zip(valid_names()) {
            let reparsed = Message::parse(m, &Limits::default()).expect("framed message parses");
            assert_equivalent(&ok(&name), &reparsed, &name);
        }
    }
}
