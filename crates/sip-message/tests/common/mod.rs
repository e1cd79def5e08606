//! Helpers shared by the integration tests (each test binary uses a subset).
#![allow(dead_code)]

use std::path::PathBuf;

use bytes::Bytes;
use sip_message::{FramingError, HeaderName, Limits, Message, StreamDecoder, StreamItem};

pub fn torture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("torture")
}

/// Raw bytes of `tests/torture/<name>.sip`.
pub fn torture(name: &str) -> Vec<u8> {
    let path = torture_dir().join(format!("{name}.sip"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

pub fn parse(bytes: &[u8]) -> Result<Message, sip_message::ParseError> {
    Message::parse(Bytes::copy_from_slice(bytes), &Limits::default())
}

/// Collapse every run of SP / HTAB / CR / LF to one SP and trim: header values are equal
/// "modulo unfolding" when their normalised forms are equal (RFC 3261 §7.3.1).
pub fn normalize_ws(value: &str) -> String {
    value
        .split([' ', '\t', '\r', '\n'])
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Header fields as (name, value) with the name canonical for known headers (so `v`, `VIA`
/// and `Via` compare equal) and lower-cased as written for the others. Content-Length is left
/// out: `serialize` always writes one that matches the body.
pub fn header_list(m: &Message) -> Vec<(String, String)> {
    m.headers()
        .filter(|h| *h.name != HeaderName::ContentLength)
        .map(|h| {
            let name = if *h.name == HeaderName::Other {
                h.name_as_written.to_ascii_lowercase()
            } else {
                h.name.canonical().to_string()
            };
            (name, normalize_ws(h.value))
        })
        .collect()
}

/// The equivalence `serialize()` promises: same start line, same header names and values in
/// order (modulo folding), same body, and a Content-Length equal to the body length.
pub fn assert_equivalent(a: &Message, b: &Message, what: &str) {
    assert_eq!(a.start_line(), b.start_line(), "{what}: start line");
    assert_eq!(a.request_uri(), b.request_uri(), "{what}: Request-URI");
    assert_eq!(a.status(), b.status(), "{what}: status");
    assert_eq!(a.reason(), b.reason(), "{what}: reason phrase");
    assert_eq!(header_list(a), header_list(b), "{what}: header fields");
    assert_eq!(a.body(), b.body(), "{what}: body");
}

/// Parse, serialize, re-parse; the two parses must be equivalent, the serialized form must
/// carry a Content-Length equal to the body, and serializing again must be a fixed point.
pub fn assert_roundtrip(m: &Message, what: &str) -> Message {
    let out = m.serialize();
    let again = Message::parse(out.clone(), &Limits::default()).unwrap_or_else(|e| {
        panic!(
            "{what}: serialized form does not re-parse: {e:?}\n{}",
            String::from_utf8_lossy(&out)
        )
    });
    assert_equivalent(m, &again, what);
    assert_eq!(
        again
            .u32_header(&HeaderName::ContentLength)
            .expect("Content-Length readable"),
        Some(m.body().len() as u32),
        "{what}: serialized Content-Length must match the body"
    );
    assert_eq!(
        again.serialize(),
        out,
        "{what}: serialize is not a fixed point"
    );
    again
}

/// Small deterministic PRNG (xorshift64*), so failures reproduce without a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// In `1..=max`.
    pub fn chunk(&mut self, max: usize) -> usize {
        1 + (self.next() % max as u64) as usize
    }
}

/// Everything a decoder produced for one input.
#[derive(Debug, Default)]
pub struct Decoded {
    pub items: Vec<StreamItem>,
    pub error: Option<FramingError>,
    pub buffered: usize,
}

impl Decoded {
    pub fn messages(&self) -> Vec<Bytes> {
        self.items
            .iter()
            .filter_map(|i| match i {
                StreamItem::Message(b) => Some(b.clone()),
                _ => None,
            })
            .collect()
    }
}

/// Feed `data` to a fresh decoder in chunks whose sizes come from `sizes`, draining items after
/// every chunk; stops at the first error (the connection would be closed).
pub fn decode_chunked(data: &[u8], mut sizes: impl FnMut() -> usize) -> Decoded {
    let mut dec = StreamDecoder::new(Limits::default());
    let mut out = Decoded::default();
    let mut pos = 0;
    while pos < data.len() {
        let n = sizes().clamp(1, data.len() - pos);
        dec.push(&data[pos..pos + n]);
        pos += n;
        loop {
            match dec.next_item() {
                Ok(Some(item)) => out.items.push(item),
                Ok(None) => break,
                Err(e) => {
                    out.error = Some(e);
                    out.buffered = dec.buffered();
                    return out;
                }
            }
        }
    }
    out.buffered = dec.buffered();
    out
}

/// Call every typed view on a parsed message (results ignored): used to prove that no view
/// panics on whatever the parser accepted.
pub fn exercise_views(m: &Message) {
    let _ = m.as_bytes();
    let _ = m.start_line();
    let _ = m.is_request();
    let _ = m.method().map(|x| x.as_str().len());
    if let Some(ruri) = m.request_uri() {
        if let Ok(u) = sip_message::Uri::parse(ruri) {
            let _ = u.is_sip();
            let _ = u.user_unescaped();
            let _ = u.aor_key();
            let _ = u.param("transport");
            let _ = u.equivalent(&u);
        }
    }
    let _ = m.status();
    let _ = m.reason();
    for h in m.headers() {
        let _ = h.name.canonical();
        let _ = h.name.is_list();
    }
    let names = [
        HeaderName::Via,
        HeaderName::Contact,
        HeaderName::Route,
        HeaderName::RecordRoute,
        HeaderName::Path,
        HeaderName::Accept,
        HeaderName::Supported,
        HeaderName::Require,
        HeaderName::Allow,
        HeaderName::AllowEvents,
        HeaderName::Expires,
        HeaderName::MinExpires,
        HeaderName::MaxForwards,
        HeaderName::ContentLength,
        HeaderName::Other,
    ];
    for n in &names {
        let _ = m.header(n);
        let _ = m.header_values(n).count();
        let _ = m.u32_header(n);
        let _ = m.has_token(n, "100rel");
    }
    let _ = m.other_header("x-unknown");
    let _ = m.body();
    let _ = m.call_id();
    let _ = m.cseq();
    if let Ok(na) = m.from_header() {
        let _ = na.tag();
        let _ = na.params.iter().count();
        let _ = na.uri.user_unescaped();
    }
    if let Ok(na) = m.to_header() {
        let _ = na.tag();
        let _ = na.uri.aor_key();
    }
    if let Ok(vias) = m.vias() {
        for v in vias {
            let _ = v.branch();
            let _ = v.sent_by();
            let _ = v.params.iter().count();
        }
    }
    let _ = m.top_via();
    let _ = m.contacts();
    let _ = m.name_addrs(&HeaderName::Route);
    let _ = m.name_addrs(&HeaderName::RecordRoute);
    let _ = m.name_addrs(&HeaderName::Path);
    let _ = m.event();
    let _ = m.subscription_state();
    if let Ok(Some(ct)) = m.content_type() {
        let _ = ct.is("application", "pidf+xml");
        let _ = ct.params.get("boundary");
    }
    let _ = m.credentials(&HeaderName::Authorization);
    let _ = m.credentials(&HeaderName::ProxyAuthorization);
    for h in [HeaderName::WwwAuthenticate, HeaderName::ProxyAuthenticate] {
        if let Some(v) = m.header(&h) {
            let _ = sip_message::Challenge::parse(v);
        }
    }
    let _ = m.serialize();
}
