//! Typed, lazily parsed header values (RFC 3261 §20, §25.1; RFC 6665 §8.2 Event and
//! Subscription-State; RFC 3903 SIP-ETag; RFC 2617/7616 digest syntax; RFC 5627 GRUU params).

use std::borrow::Cow;

use crate::syntax::{
    find, is_lws, is_token, is_token_byte, parse_u32, quoted_end, split_at_byte, split_top_level,
    trim_lws, trim_lws_start,
};

/// A header value that could not be understood. Display gives a 400 reason phrase such as
/// "Invalid Via header" or "Missing CSeq header".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HeaderError(pub String);

/// Remove surrounding double quotes and resolve `\x` quoted-pairs; returns the input
/// unchanged (borrowed) when it is not quoted.
pub fn unquote(value: &str) -> Cow<'_, str> {
    let t = trim_lws(value);
    let b = t.as_bytes();
    if b.first() != Some(&b'"') || quoted_end(b, 0) != Some(b.len()) {
        return Cow::Borrowed(value);
    }
    let inner = &t[1..t.len() - 1];
    if !inner.contains('\\') {
        return Cow::Borrowed(inner);
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(escaped) = chars.next() {
                out.push(escaped);
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn err(reason: &str) -> HeaderError {
    HeaderError(reason.to_owned())
}

/// One `name[=value]` parameter as written (value keeps its quotes, if any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param<'a> {
    pub name: &'a str,
    pub value: Option<&'a str>,
}

/// A `;`-separated parameter list, kept as its raw text (starting after the first `;`)
/// and parsed on iteration; quoted values may contain `;` and `,`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params<'a> {
    pub raw: &'a str,
}

impl<'a> Params<'a> {
    pub fn iter(&self) -> impl Iterator<Item = Param<'a>> + 'a {
        split_top_level(self.raw, b';').filter_map(|piece| {
            let piece = trim_lws(piece);
            if piece.is_empty() {
                return None;
            }
            Some(match split_at_byte(piece, b'=') {
                Some((n, v)) => Param {
                    name: trim_lws(n),
                    value: Some(trim_lws(v)),
                },
                None => Param {
                    name: piece,
                    value: None,
                },
            })
        })
    }
    /// Case-insensitive lookup: None = absent, Some(None) = present without value,
    /// Some(Some(v)) = value as written (quotes kept).
    pub fn get(&self, name: &str) -> Option<Option<&'a str>> {
        self.iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value)
    }
    /// `generic-param = token [ EQUAL gen-value ]`, `gen-value = token / host /
    /// quoted-string` (RFC 3261 §25.1), with no empty elements (RFC 4475 badinv01).
    fn is_valid_generic(&self) -> bool {
        split_top_level(self.raw, b';').all(|piece| {
            let piece = trim_lws(piece);
            match split_at_byte(piece, b'=') {
                Some((n, v)) => is_token(trim_lws(n)) && is_gen_value(trim_lws(v)),
                None => is_token(piece),
            }
        })
    }
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }
}

/// `Via: SIP/2.0/TCP host:port;branch=z9hG4bK...;received=...;rport`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via<'a> {
    /// `UDP`, `TCP`, `TLS`, `SCTP`, `WS`... as written.
    pub transport: &'a str,
    pub host: crate::Host<'a>,
    /// Host text as written (brackets kept for IPv6).
    pub host_text: &'a str,
    pub port: Option<u16>,
    pub params: Params<'a>,
    /// The whole value text.
    pub text: &'a str,
}

impl<'a> Via<'a> {
    pub fn parse(value: &'a str) -> Result<Via<'a>, HeaderError> {
        Via::parse_inner(value).ok_or_else(|| err("Invalid Via header"))
    }

    // `sent-protocol LWS sent-by *( SEMI via-params )`, where SLASH = SWS "/" SWS.
    fn parse_inner(value: &'a str) -> Option<Via<'a>> {
        let text = trim_lws(value);
        let (name, rest) = split_at_byte(text, b'/')?;
        let (version, rest) = split_at_byte(rest, b'/')?;
        if !trim_lws(name).eq_ignore_ascii_case("SIP") || trim_lws(version) != "2.0" {
            return None;
        }
        let (transport, rest) = split_token(trim_lws_start(rest));
        if transport.is_empty() || !rest.bytes().next().is_some_and(is_lws) {
            return None;
        }
        let rest = trim_lws(rest);
        let end = rest
            .find(|c: char| c == ';' || c.is_ascii() && is_lws(c as u8))
            .unwrap_or(rest.len());
        let (sent_by, rest) = rest.split_at(end);
        let (host_text, port) = crate::uri::split_host_port(sent_by).ok()?;
        let host = crate::uri::parse_host(host_text).ok()?;
        let params = trailing_params(rest)?;
        Some(Via {
            transport,
            host,
            host_text,
            port,
            params,
            text,
        })
    }
    pub fn branch(&self) -> Option<&'a str> {
        self.params.get("branch").flatten()
    }
    /// `sent-by` as written: `host[:port]`.
    pub fn sent_by(&self) -> &'a str {
        let start = (self.host_text.as_ptr() as usize).saturating_sub(self.text.as_ptr() as usize);
        let tail = self.text.get(start..).unwrap_or("");
        trim_lws(tail.split(';').next().unwrap_or(""))
    }
}

/// From, To, Contact, Route, Record-Route, Path, Refer-To values: `"Name" <uri>;params`
/// or a bare addr-spec (whose `;params` belong to the header, RFC 3261 §20.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// Display name with quotes removed and escapes resolved; None when absent.
    pub display_name: Option<Cow<'a, str>>,
    pub uri: crate::Uri<'a>,
    /// Header parameters (tag, expires, q, +sip.instance, pub-gruu...).
    pub params: Params<'a>,
    /// The whole value text.
    pub text: &'a str,
}

impl<'a> NameAddr<'a> {
    pub fn parse(value: &'a str) -> Result<NameAddr<'a>, HeaderError> {
        NameAddr::parse_inner(value).ok_or_else(|| err("Invalid address"))
    }

    fn parse_inner(value: &'a str) -> Option<NameAddr<'a>> {
        let text = trim_lws(value);
        let b = text.as_bytes();
        let (display_name, rest) = if b.first() == Some(&b'"') {
            let end = quoted_end(b, 0)?;
            let rest = trim_lws(&text[end..]);
            if !rest.starts_with('<') {
                return None;
            }
            (Some(unquote(&text[..end])), rest)
        } else if let Some(lt) = find(text, b'<') {
            // An unquoted display name is `*(token LWS)` (RFC 4475 baddn).
            let name = trim_lws(&text[..lt]);
            if !name.bytes().all(|c| is_token_byte(c) || is_lws(c)) {
                return None;
            }
            (
                if name.is_empty() {
                    None
                } else {
                    Some(Cow::Borrowed(name))
                },
                &text[lt..],
            )
        } else {
            // addr-spec: parameters belong to the header, so the URI ends at the first ';'
            // and cannot carry ',', '?' (RFC 3261 §20.10, RFC 4475 regbadct).
            let end = find(text, b';').unwrap_or(text.len());
            let uri_text = trim_lws(&text[..end]);
            if uri_text.contains([',', '?']) {
                return None;
            }
            let uri = crate::Uri::parse(uri_text).ok()?;
            let params = trailing_params(&text[end..])?;
            return Some(NameAddr {
                display_name: None,
                uri,
                params,
                text,
            });
        };
        let inner = rest.strip_prefix('<')?;
        let gt = find(inner, b'>')?;
        let uri = crate::Uri::parse(&inner[..gt]).ok()?;
        let params = trailing_params(&inner[gt + 1..])?;
        Some(NameAddr {
            display_name,
            uri,
            params,
            text,
        })
    }
    pub fn tag(&self) -> Option<&'a str> {
        self.params.get("tag").flatten()
    }
}

/// A Contact header value.
#[derive(Debug, Clone, PartialEq, Eq)]
// Boxing would cost an allocation per Contact value; Star is rare and the enum short-lived.
#[allow(clippy::large_enum_variant)]
pub enum ContactValue<'a> {
    /// `Contact: *` (RFC 3261 §10.2.2).
    Star,
    Addr(NameAddr<'a>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: crate::Method,
}

impl CSeq {
    pub fn parse(value: &str) -> Result<CSeq, HeaderError> {
        let bad = || err("Invalid CSeq header");
        let value = trim_lws(value);
        let digits = value.bytes().take_while(u8::is_ascii_digit).count();
        let (num, rest) = value.split_at(digits);
        if !rest.bytes().next().is_some_and(is_lws) {
            return Err(bad());
        }
        let seq = parse_u32(num).ok_or_else(bad)?;
        let method = trim_lws(rest);
        if !is_token(method) {
            return Err(bad());
        }
        Ok(CSeq {
            seq,
            method: crate::Method::from_token(method),
        })
    }
}

/// `Event: presence;id=7` (RFC 6665 §8.2.1); compact `o`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event<'a> {
    /// Package with template (e.g. `presence`, `presence.winfo`), as written.
    pub package: &'a str,
    pub id: Option<&'a str>,
    pub params: Params<'a>,
}

impl<'a> Event<'a> {
    pub fn parse(value: &'a str) -> Result<Event<'a>, HeaderError> {
        let value = trim_lws(value);
        let end = find(value, b';').unwrap_or(value.len());
        let package = trim_lws(&value[..end]);
        let params = trailing_params(&value[end..]).filter(|_| is_token(package));
        let params = params.ok_or_else(|| err("Invalid Event header"))?;
        Ok(Event {
            package,
            id: params.get("id").flatten(),
            params,
        })
    }
}

/// `Subscription-State: active;expires=600` / `terminated;reason=timeout` (RFC 6665 §8.2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState<'a> {
    pub state: &'a str,
    pub reason: Option<&'a str>,
    pub expires: Option<u32>,
    pub retry_after: Option<u32>,
    pub params: Params<'a>,
}

impl<'a> SubscriptionState<'a> {
    pub fn parse(value: &'a str) -> Result<SubscriptionState<'a>, HeaderError> {
        let bad = || err("Invalid Subscription-State header");
        let value = trim_lws(value);
        let end = find(value, b';').unwrap_or(value.len());
        let state = trim_lws(&value[..end]);
        let params = trailing_params(&value[end..])
            .filter(|_| is_token(state))
            .ok_or_else(bad)?;
        Ok(SubscriptionState {
            state,
            reason: params.get("reason").flatten(),
            expires: param_u32(&params, "expires").map_err(|_| bad())?,
            retry_after: param_u32(&params, "retry-after").map_err(|_| bad())?,
            params,
        })
    }
}

/// `type/subtype;param=value` (Content-Type, and each Accept value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType<'a> {
    pub mtype: &'a str,
    pub subtype: &'a str,
    pub params: Params<'a>,
}

impl<'a> MediaType<'a> {
    pub fn parse(value: &'a str) -> Result<MediaType<'a>, HeaderError> {
        let value = trim_lws(value);
        let end = find(value, b';').unwrap_or(value.len());
        let parsed = split_at_byte(&value[..end], b'/').and_then(|(t, s)| {
            let (mtype, subtype) = (trim_lws(t), trim_lws(s));
            let params = trailing_params(&value[end..])?;
            (is_token(mtype) && is_token(subtype)).then_some(MediaType {
                mtype,
                subtype,
                params,
            })
        });
        parsed.ok_or_else(|| err("Invalid Content-Type header"))
    }
    /// Case-insensitive `type/subtype` comparison, e.g. `is("application", "pidf+xml")`.
    pub fn is(&self, mtype: &str, subtype: &str) -> bool {
        self.mtype.eq_ignore_ascii_case(mtype) && self.subtype.eq_ignore_ascii_case(subtype)
    }
}

/// Authorization / Proxy-Authorization with the Digest scheme (RFC 2617 §3.2.2, RFC 7616 §3.4).
/// Values are unquoted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Credentials<'a> {
    pub scheme: &'a str,
    pub username: Option<Cow<'a, str>>,
    pub realm: Option<Cow<'a, str>>,
    pub nonce: Option<Cow<'a, str>>,
    pub uri: Option<Cow<'a, str>>,
    pub response: Option<Cow<'a, str>>,
    pub algorithm: Option<&'a str>,
    pub cnonce: Option<Cow<'a, str>>,
    pub opaque: Option<Cow<'a, str>>,
    pub qop: Option<&'a str>,
    pub nc: Option<&'a str>,
}

impl<'a> Credentials<'a> {
    pub fn parse(value: &'a str) -> Result<Credentials<'a>, HeaderError> {
        let (scheme, pairs) =
            auth_params(value).ok_or_else(|| err("Invalid Authorization header"))?;
        let mut c = Credentials {
            scheme,
            ..Credentials::default()
        };
        for (name, v) in pairs {
            let name = name.to_ascii_lowercase();
            match name.as_str() {
                "username" => c.username = Some(auth_value(v)),
                "realm" => c.realm = Some(auth_value(v)),
                "nonce" => c.nonce = Some(auth_value(v)),
                "uri" => c.uri = Some(auth_value(v)),
                "response" => c.response = Some(auth_value(v)),
                "algorithm" => c.algorithm = Some(auth_token(v)),
                "cnonce" => c.cnonce = Some(auth_value(v)),
                "opaque" => c.opaque = Some(auth_value(v)),
                "qop" => c.qop = Some(auth_token(v)),
                "nc" => c.nc = Some(auth_token(v)),
                _ => {}
            }
        }
        Ok(c)
    }
}

/// A WWW-Authenticate / Proxy-Authenticate Digest challenge, for building (servers) and
/// parsing (clients).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Challenge<'a> {
    pub realm: Cow<'a, str>,
    pub nonce: Cow<'a, str>,
    pub opaque: Option<Cow<'a, str>>,
    /// `MD5`, `SHA-256`...; None means MD5.
    pub algorithm: Option<Cow<'a, str>>,
    /// e.g. `auth`.
    pub qop: Option<Cow<'a, str>>,
    pub stale: bool,
}

impl<'a> Challenge<'a> {
    pub fn parse(value: &'a str) -> Result<Challenge<'a>, HeaderError> {
        let bad = || err("Invalid WWW-Authenticate header");
        let (_, pairs) = auth_params(value).ok_or_else(bad)?;
        let (mut realm, mut nonce) = (None, None);
        let mut c = Challenge::default();
        for (name, v) in pairs {
            let name = name.to_ascii_lowercase();
            match name.as_str() {
                "realm" => realm = Some(auth_value(v)),
                "nonce" => nonce = Some(auth_value(v)),
                "opaque" => c.opaque = Some(auth_value(v)),
                "algorithm" => c.algorithm = Some(auth_value(v)),
                "qop" => c.qop = Some(auth_value(v)),
                "stale" => c.stale = auth_value(v).eq_ignore_ascii_case("true"),
                _ => {}
            }
        }
        c.realm = realm.ok_or_else(bad)?;
        c.nonce = nonce.ok_or_else(bad)?;
        Ok(c)
    }
    /// `Digest realm="...", nonce="...", algorithm=SHA-256, qop="auth"[, opaque="..."][, stale=true]`
    pub fn to_header_value(&self) -> String {
        let mut out = String::with_capacity(96 + self.realm.len() + self.nonce.len());
        out.push_str("Digest realm=");
        push_quoted(&mut out, &self.realm);
        out.push_str(", nonce=");
        push_quoted(&mut out, &self.nonce);
        if let Some(a) = &self.algorithm {
            out.push_str(", algorithm=");
            out.push_str(a);
        }
        if let Some(q) = &self.qop {
            out.push_str(", qop=");
            push_quoted(&mut out, q);
        }
        if let Some(o) = &self.opaque {
            out.push_str(", opaque=");
            push_quoted(&mut out, o);
        }
        if self.stale {
            out.push_str(", stale=true");
        }
        out
    }
}

fn is_gen_value(v: &str) -> bool {
    let b = v.as_bytes();
    match b.first() {
        None => false,
        Some(b'"') => quoted_end(b, 0) == Some(b.len()),
        // token, or a host (IPv6 references keep their brackets and colons)
        Some(_) => b
            .iter()
            .all(|&c| is_token_byte(c) || matches!(c, b':' | b'[' | b']')),
    }
}

/// Parameters after the element proper: nothing, or `;` followed by valid generic params.
fn trailing_params<'a>(rest: &'a str) -> Option<Params<'a>> {
    let rest = trim_lws(rest);
    if rest.is_empty() {
        return Some(Params::default());
    }
    let params = Params {
        raw: rest.strip_prefix(';')?,
    };
    params.is_valid_generic().then_some(params)
}

fn split_token(s: &str) -> (&str, &str) {
    let n = s.bytes().take_while(|&b| is_token_byte(b)).count();
    s.split_at(n)
}

fn param_u32(params: &Params<'_>, name: &str) -> Result<Option<u32>, ()> {
    match params.get(name) {
        None => Ok(None),
        Some(v) => v.and_then(|v| parse_u32(&unquote(v))).map(Some).ok_or(()),
    }
}

/// A digest auth-param value, unquoted and unescaped.
fn auth_value(v: &str) -> Cow<'_, str> {
    unquote(v)
}

/// A digest auth-param value that is a token by grammar but that some clients quote anyway.
fn auth_token(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
}

/// Splits `scheme auth-param, auth-param...` into the scheme and (name, value) pairs.
fn auth_params(value: &str) -> Option<(&str, impl Iterator<Item = (&str, &str)>)> {
    let value = trim_lws(value);
    let (scheme, rest) = split_token(value);
    if scheme.is_empty() || !rest.bytes().next().is_none_or(is_lws) {
        return None;
    }
    let pairs = split_top_level(rest, b',').filter_map(|p| {
        let (n, v) = split_at_byte(p, b'=')?;
        Some((trim_lws(n), trim_lws(v)))
    });
    Some((scheme, pairs))
}

/// `text` as a quoted-string (RFC 3261 §25.1: `"` and `\` escaped as quoted-pairs); the
/// inverse of [`unquote`].
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    push_quoted(&mut out, text);
    out
}

fn push_quoted(out: &mut String, v: &str) {
    out.push('"');
    for c in v.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unquote_resolves_escapes() {
        assert_eq!(unquote("\"a\\\"b\\\\c\""), "a\"b\\c");
        assert!(matches!(unquote("\"plain\""), Cow::Borrowed("plain")));
        assert_eq!(unquote("token"), "token");
        assert_eq!(unquote("\"unterminated\\\""), "\"unterminated\\\"");
    }

    #[test]
    fn params_keep_quotes_and_split_outside_them() {
        let p = Params {
            raw: "a=1; B = \"x;y,z\" ;flag;+sip.instance=\"<urn:uuid:1>\"",
        };
        assert_eq!(p.get("b"), Some(Some("\"x;y,z\"")));
        assert_eq!(p.get("FLAG"), Some(None));
        assert_eq!(
            p.get("+sip.instance").flatten().map(unquote).as_deref(),
            Some("<urn:uuid:1>")
        );
        assert_eq!(p.get("missing"), None);
        assert_eq!(p.iter().count(), 4);
    }

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(n.display_name.as_deref(), Some("caller"));
        assert_eq!(n.tag(), Some("323"));
        let n = NameAddr::parse("sip:+1-972-555-2222@gw1.example.net;user=phone").unwrap();
        assert_eq!(n.params.get("user"), Some(Some("phone")));
        assert!(n.uri.params.is_empty());
        let n =
            NameAddr::parse("<sip:+1-972-555-2222@gw1.example.net;user=phone>;expires=60").unwrap();
        assert_eq!(n.uri.param("user"), Some(Some("phone")));
        let n = NameAddr::parse("\"\" <tel:+1-201-555-0123>").unwrap();
        assert_eq!(n.display_name.as_deref(), Some(""));
        assert_eq!(n.uri.scheme, "tel");
        let n = NameAddr::parse("<sip:user@example.com?Route=%3Csip:sip.example.com%3E>").unwrap();
        assert!(n.uri.headers.is_some());
        for bad in [
            "Bell, Alexander <sip:a@b>",
            "\"Mr. J. User <sip:j@b>",
            "<sip:a@b",
            "<sip:a@b> junk",
            "sip:u@h?x=y",
            "sip:u@h;;",
            "",
            "<sip:a@b>;tag=",
        ] {
            assert!(NameAddr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn via_forms() {
        let v = Via::parse(
            "SIP/2.0/TLS [::ffff:192.0.2.1];branch=z9hG4bK-.!%66*_+`~;received=2001:db8::9;rport",
        )
        .unwrap();
        assert_eq!(v.transport, "TLS");
        assert_eq!(v.port, None);
        assert_eq!(v.params.get("received"), Some(Some("2001:db8::9")));
        assert_eq!(v.sent_by(), "[::ffff:192.0.2.1]");
        let v = Via::parse("SIP/2.0/UNKNOWN example.com:5061 ; ttl=1").unwrap();
        assert_eq!(
            (v.transport, v.port, v.sent_by()),
            ("UNKNOWN", Some(5061), "example.com:5061")
        );
        for bad in [
            "SIP/2.0/UDP",
            "SIP/3.0/UDP h",
            "SIP/2.0/UDPh",
            "SIP/2.0/UDP h;",
            "SIP/2.0/UDP h:99999",
            "SIP/2.0/UDP h x",
        ] {
            assert!(Via::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn event_state_media() {
        let e = Event::parse("presence.winfo ; id=7;x").unwrap();
        assert_eq!((e.package, e.id), ("presence.winfo", Some("7")));
        assert!(Event::parse("").is_err());
        let s = SubscriptionState::parse("terminated;reason=timeout;retry-after=30").unwrap();
        assert_eq!(
            (s.state, s.reason, s.retry_after, s.expires),
            ("terminated", Some("timeout"), Some(30), None)
        );
        assert_eq!(
            SubscriptionState::parse("active;expires=600")
                .unwrap()
                .expires,
            Some(600)
        );
        assert!(SubscriptionState::parse("active;expires=99999999999").is_err());
        let m = MediaType::parse("multipart/related ; type=\"application/rlmi+xml\";boundary=b1")
            .unwrap();
        assert!(m.is("Multipart", "related"));
        assert_eq!(m.params.get("boundary"), Some(Some("b1")));
        assert!(MediaType::parse("text").is_err());
        assert!(MediaType::parse("text/").is_err());
    }

    #[test]
    fn cseq_values() {
        assert_eq!(CSeq::parse("4294967295 REGISTER").unwrap().seq, u32::MAX);
        assert!(CSeq::parse("4294967296 REGISTER").is_err());
        assert!(CSeq::parse("1 INVITE x").is_err());
        assert_eq!(
            CSeq::parse("  7\tRE%47IST%45R ").unwrap().method.as_str(),
            "RE%47IST%45R"
        );
    }

    #[test]
    fn digest_credentials() {
        let c = Credentials::parse(
            "Digest username=\"bob\", realm=\"biloxi.com\",nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", \
             uri=\"sip:bob@biloxi.com\", qop=auth, nc=00000001, cnonce=\"0a4f113b\", unknown=\"x,y\", \
             response=\"6629fae49393a05397450978507c4ef1\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\", algorithm=MD5",
        )
        .unwrap();
        assert_eq!(c.scheme, "Digest");
        assert_eq!(c.username.as_deref(), Some("bob"));
        assert_eq!(c.uri.as_deref(), Some("sip:bob@biloxi.com"));
        assert_eq!(
            (c.qop, c.nc, c.algorithm),
            (Some("auth"), Some("00000001"), Some("MD5"))
        );
        assert_eq!(
            c.opaque.as_deref(),
            Some("5ccc069c403ebaf9f0171e9517f40e41")
        );
        let c = Credentials::parse("Digest username=\"a\\\"b\", qop=\"auth\"").unwrap();
        assert_eq!((c.username.as_deref(), c.qop), (Some("a\"b"), Some("auth")));
        assert!(Credentials::parse("").is_err());
        assert!(Credentials::parse("Digest, x").is_err());
    }

    #[test]
    fn digest_challenge_round_trip() {
        let ch = Challenge {
            realm: "example.com".into(),
            nonce: "n\"1".into(),
            opaque: Some("o".into()),
            algorithm: Some("SHA-256".into()),
            qop: Some("auth".into()),
            stale: true,
        };
        let v = ch.to_header_value();
        assert_eq!(
            v,
            "Digest realm=\"example.com\", nonce=\"n\\\"1\", algorithm=SHA-256, qop=\"auth\", opaque=\"o\", stale=true"
        );
        assert_eq!(Challenge::parse(&v).unwrap(), ch);
        assert!(Challenge::parse("Digest realm=\"r\"").is_err());
        let c =
            Challenge::parse("Digest realm=\"r\", nonce=\"n\", qop=\"auth,auth-int\", stale=FALSE")
                .unwrap();
        assert_eq!(
            (c.qop.as_deref(), c.stale, c.algorithm),
            (Some("auth,auth-int"), false, None)
        );
    }
}

#[cfg(test)]
mod quote_tests {
    use super::{quote, unquote};

    #[test]
    fn quote_escapes_and_unquote_reverses_it() {
        let text = r#"<urn:"x"\>"#;
        let quoted = quote(text);
        assert_eq!(quoted, r#""<urn:\"x\"\\>""#);
        assert_eq!(unquote(&quoted), text);
    }
}
