//! SIP, SIPS and other URIs (RFC 3261 §19.1, §25.1; RFC 5118 IPv6 references; RFC 3986 for
//! other schemes). Zero-copy views: components borrow the input; escapes are decoded on demand.

use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::syntax::{all_escaped_or, find, is_unreserved, percent_decode, split_at_byte};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid URI: {0}")]
pub struct UriError(pub &'static str);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host<'a> {
    /// A hostname (as written; compare case-insensitively).
    Name(&'a str),
    Ipv4(std::net::Ipv4Addr),
    /// The address inside `[...]`.
    Ipv6(std::net::Ipv6Addr),
}

/// A parsed URI. For `sip`/`sips` every component is filled; for any other scheme (tel, urn,
/// http, mailto...) only `scheme` and `opaque` (everything after `scheme:`) are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri<'a> {
    /// Lower-cased comparison is the caller's job; this is as written.
    pub scheme: &'a str,
    /// User part, still escaped (RFC 3261 §19.1.2); None when absent.
    pub user: Option<&'a str>,
    pub password: Option<&'a str>,
    pub host: Host<'a>,
    /// Host text as written (with brackets for IPv6).
    pub host_text: &'a str,
    pub port: Option<u16>,
    /// `;name[=value]` parameters, as written.
    pub params: crate::Params<'a>,
    /// `?h=v&h2=v2` headers, raw (without the `?`), None when absent.
    pub headers: Option<&'a str>,
    /// For non-SIP schemes: everything after `scheme:`.
    pub opaque: &'a str,
    /// The whole URI text.
    pub text: &'a str,
}

impl<'a> Uri<'a> {
    /// Parse a URI. SIP/SIPS URIs are checked strictly against RFC 3261 §25.1
    /// (host syntax, port range, user and parameter characters); other schemes only need a
    /// valid scheme and no whitespace.
    pub fn parse(text: &'a str) -> Result<Uri<'a>, UriError> {
        let colon = find(text, b':').ok_or(UriError("missing scheme"))?;
        let (scheme, rest) = (&text[..colon], &text[colon + 1..]);
        if !is_scheme(scheme) {
            return Err(UriError("bad scheme"));
        }
        if !(scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips")) {
            // RFC 3986 excludes these from every URI; whitespace would also make the URI
            // ambiguous inside a start line or header.
            if rest.is_empty()
                || rest
                    .bytes()
                    .any(|b| b <= b' ' || matches!(b, 0x7f | b'<' | b'>' | b'"'))
            {
                return Err(UriError("bad characters"));
            }
            return Ok(Uri {
                scheme,
                user: None,
                password: None,
                host: Host::Name(""),
                host_text: "",
                port: None,
                params: crate::Params::default(),
                headers: None,
                opaque: rest,
                text,
            });
        }
        parse_sip(text, scheme, rest)
    }
    pub fn is_sip(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("sip") || self.scheme.eq_ignore_ascii_case("sips")
    }
    /// The user part with `%XX` escapes decoded.
    pub fn user_unescaped(&self) -> Option<Cow<'a, str>> {
        self.user.map(percent_decode)
    }
    /// `transport` parameter, lower-cased by the caller.
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        self.params.get(name)
    }
    /// `user@host` with the user unescaped and the host lower-cased: the key Avail uses for
    /// an address-of-record. None when there is no user part or the scheme is not sip/sips.
    pub fn aor_key(&self) -> Option<String> {
        if !self.is_sip() {
            return None;
        }
        let user = self.user_unescaped()?;
        let mut key = String::with_capacity(user.len() + 1 + self.host_text.len());
        key.push_str(&user);
        key.push('@');
        key.extend(self.host_text.chars().map(|c| c.to_ascii_lowercase()));
        Some(key)
    }
    /// RFC 3261 §19.1.4 URI equality (scheme, user and password case-sensitive after
    /// unescaping, host case-insensitive, the listed parameters compared, headers compared).
    pub fn equivalent(&self, other: &Uri<'_>) -> bool {
        if !self.scheme.eq_ignore_ascii_case(other.scheme) {
            return false;
        }
        if !self.is_sip() {
            return self.opaque == other.opaque;
        }
        let user_eq = |a: Option<&str>, b: Option<&str>| match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => percent_decode(a) == percent_decode(b),
            _ => false,
        };
        if !user_eq(self.user, other.user)
            || !user_eq(self.password, other.password)
            || !host_eq(&self.host, &other.host)
            || self.port != other.port
        {
            return false;
        }
        let value_eq = |a: Option<&str>, b: Option<&str>| match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => percent_decode(a).eq_ignore_ascii_case(&percent_decode(b)),
            _ => false,
        };
        // Parameters present in both must match; user, ttl, method and maddr (and transport,
        // whose absence means a default that differs per scheme) must not appear on one side only.
        for p in self.params.iter() {
            match other.params.get(p.name) {
                Some(v) if !value_eq(p.value, v) => return false,
                None if is_significant_param(p.name) => return false,
                _ => {}
            }
        }
        for p in other.params.iter() {
            if is_significant_param(p.name) && self.params.get(p.name).is_none() {
                return false;
            }
        }
        headers_eq(self.headers, other.headers)
    }
}

fn is_significant_param(name: &str) -> bool {
    ["user", "ttl", "method", "maddr", "transport"]
        .iter()
        .any(|n| n.eq_ignore_ascii_case(name))
}

fn host_eq(a: &Host<'_>, b: &Host<'_>) -> bool {
    match (a, b) {
        (Host::Name(a), Host::Name(b)) => {
            percent_decode(a).eq_ignore_ascii_case(&percent_decode(b))
        }
        _ => a == b,
    }
}

/// Headers are never ignored (§19.1.4): the same set, names case-insensitive, values exact
/// after unescaping, order irrelevant.
fn headers_eq(a: Option<&str>, b: Option<&str>) -> bool {
    let split = |h: Option<&str>| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = h
            .unwrap_or("")
            .split('&')
            .filter(|s| !s.is_empty())
            .map(|kv| {
                let (k, v) = split_at_byte(kv, b'=').unwrap_or((kv, ""));
                (
                    percent_decode(k).to_ascii_lowercase(),
                    percent_decode(v).into_owned(),
                )
            })
            .collect();
        v.sort();
        v
    };
    if a.is_none() && b.is_none() {
        return true;
    }
    split(a) == split(b)
}

/// `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`
fn is_scheme(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic())
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
}

fn is_user_byte(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/')
}

fn is_password_byte(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'&' | b'=' | b'+' | b'$' | b',')
}

fn is_paramchar(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$')
}

fn is_hnv_byte(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$')
}

fn parse_sip<'a>(text: &'a str, scheme: &'a str, rest: &'a str) -> Result<Uri<'a>, UriError> {
    // The user part may contain ';' and '?' (user-unreserved) but never '@', while params
    // and headers never contain '@', so the first '@' ends the userinfo.
    let (user, password, hostpart) = match find(rest, b'@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let (user, password) = match find(userinfo, b':') {
                Some(c) => (&userinfo[..c], Some(&userinfo[c + 1..])),
                None => (userinfo, None),
            };
            if user.is_empty() || !all_escaped_or(user, is_user_byte) {
                return Err(UriError("bad user part"));
            }
            if let Some(p) = password {
                if !all_escaped_or(p, is_password_byte) {
                    return Err(UriError("bad password"));
                }
            }
            (Some(user), password, &rest[at + 1..])
        }
        None => (None, None, rest),
    };
    let (hostport, headers) = match find(hostpart, b'?') {
        Some(q) => (&hostpart[..q], Some(&hostpart[q + 1..])),
        None => (hostpart, None),
    };
    let (hostport, params) = match find(hostport, b';') {
        Some(s) => (&hostport[..s], Some(&hostport[s + 1..])),
        None => (hostport, None),
    };
    let (host_text, port) = split_host_port(hostport)?;
    let host = parse_host(host_text)?;
    if let Some(params) = params {
        for p in params.split(';') {
            let (name, value) = match split_at_byte(p, b'=') {
                Some((n, v)) => (n, Some(v)),
                None => (p, None),
            };
            if name.is_empty() || !all_escaped_or(name, is_paramchar) {
                return Err(UriError("bad parameter"));
            }
            if let Some(v) = value {
                if v.is_empty() || !all_escaped_or(v, is_paramchar) {
                    return Err(UriError("bad parameter value"));
                }
            }
        }
    }
    if let Some(h) = headers {
        for kv in h.split('&') {
            let (name, value) = split_at_byte(kv, b'=').ok_or(UriError("bad header"))?;
            if name.is_empty()
                || !all_escaped_or(name, is_hnv_byte)
                || !all_escaped_or(value, is_hnv_byte)
            {
                return Err(UriError("bad header"));
            }
        }
    }
    Ok(Uri {
        scheme,
        user,
        password,
        host,
        host_text,
        port,
        params: crate::Params {
            raw: params.unwrap_or(""),
        },
        headers,
        opaque: rest,
        text,
    })
}

/// Splits `host[:port]`, where host may be an IPv6 reference in brackets (RFC 5118).
pub(crate) fn split_host_port(s: &str) -> Result<(&str, Option<u16>), UriError> {
    let host_end = if s.starts_with('[') {
        find(s, b']').ok_or(UriError("unterminated IPv6 reference"))? + 1
    } else {
        find(s, b':').unwrap_or(s.len())
    };
    let (host, after) = s.split_at(host_end);
    let port = match after.strip_prefix(':') {
        Some(p) => Some(parse_port(p)?),
        None if after.is_empty() => None,
        None => return Err(UriError("bad host")),
    };
    Ok((host, port))
}

fn parse_port(p: &str) -> Result<u16, UriError> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UriError("bad port"));
    }
    p.parse().map_err(|_| UriError("bad port"))
}

/// `host = hostname / IPv4address / IPv6reference` (RFC 3261 §25.1, RFC 5118).
pub(crate) fn parse_host(s: &str) -> Result<Host<'_>, UriError> {
    if let Some(inner) = s.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or(UriError("bad IPv6 reference"))?;
        return inner
            .parse::<Ipv6Addr>()
            .map(Host::Ipv6)
            .map_err(|_| UriError("bad IPv6 reference"));
    }
    let b = s.as_bytes();
    if b.iter().all(|c| c.is_ascii_digit() || *c == b'.') {
        return s
            .parse::<Ipv4Addr>()
            .map(Host::Ipv4)
            .map_err(|_| UriError("bad IPv4 address"));
    }
    if is_hostname(s) {
        Ok(Host::Name(s))
    } else {
        Err(UriError("bad host"))
    }
}

/// `hostname = *( domainlabel "." ) toplabel [ "." ]`; labels are alphanumerics and inner
/// hyphens, and the top label starts with a letter.
fn is_hostname(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.is_empty() {
        return false;
    }
    let mut last = "";
    for label in s.split('.') {
        let b = label.as_bytes();
        let ok = match (b.first(), b.last()) {
            (Some(f), Some(l)) => {
                f.is_ascii_alphanumeric()
                    && l.is_ascii_alphanumeric()
                    && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            }
            _ => false,
        };
        if !ok {
            return false;
        }
        last = label;
    }
    last.as_bytes()
        .first()
        .is_some_and(|c| c.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_sip_uri() {
        let u = Uri::parse("sips:alice:secret@Example.COM:5061;transport=tcp;lr?subject=hi&x=y")
            .unwrap();
        assert_eq!(u.scheme, "sips");
        assert_eq!(u.user, Some("alice"));
        assert_eq!(u.password, Some("secret"));
        assert_eq!(u.host, Host::Name("Example.COM"));
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.param("TRANSPORT"), Some(Some("tcp")));
        assert_eq!(u.param("lr"), Some(None));
        assert_eq!(u.headers, Some("subject=hi&x=y"));
        assert_eq!(u.aor_key().as_deref(), Some("alice@example.com"));
    }

    #[test]
    fn ipv6_references() {
        let u = Uri::parse("sip:[2001:db8::10]:5070").unwrap();
        assert_eq!(u.host, Host::Ipv6("2001:db8::10".parse().unwrap()));
        assert_eq!(u.host_text, "[2001:db8::10]");
        assert_eq!(u.port, Some(5070));
        let u = Uri::parse("sip:user@[::ffff:192.0.2.1];maddr=[2001:db8::1]").unwrap();
        assert_eq!(u.host, Host::Ipv6("::ffff:192.0.2.1".parse().unwrap()));
        assert!(Uri::parse("sip:[2001:db8::10").is_err());
        assert!(Uri::parse("sip:2001:db8::10").is_err());
        assert!(Uri::parse("sip:[2001:db8:::10]").is_err());
    }

    #[test]
    fn torture_uris() {
        // RFC 4475 §3.1.1.2, §3.1.1.3, §3.1.1.4, §3.1.1.9
        let u = Uri::parse("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com").unwrap();
        assert_eq!(
            u.user,
            Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
        );
        assert_eq!(u.host_text, "example.com");
        let u = Uri::parse("sip:sips%3Auser%40example.com@example.net").unwrap();
        assert_eq!(u.user_unescaped().unwrap(), "sips:user@example.com");
        let u = Uri::parse("sip:null-%00-null@example.com").unwrap();
        assert_eq!(u.user_unescaped().unwrap(), "null-\0-null");
        let u = Uri::parse("sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(u.user, Some("user;par=u%40example.net"));
        assert!(
            Uri::parse("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31").is_ok()
        );
        assert!(Uri::parse("sip:user@example.com?Route=%3Csip:example.com%3E").is_ok());
    }

    #[test]
    fn rejects_bad_sip_uris() {
        for bad in [
            "<sip:user@example.com>",
            "sip:user@example.com; lr",
            "sip:user@exa mple.com",
            "sip:@example.com",
            "sip:user@example.com:99999",
            "sip:user@example.com;;lr",
            "sip:user@-bad.com",
            "sip:user@256.1.1.1",
            "sip:us%zzer@example.com",
            "sip:user@example.com?noequals",
            "sip:",
            "1sip:x",
        ] {
            assert!(Uri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn other_schemes_are_opaque() {
        let u = Uri::parse("soap.beep://192.0.2.103:3002").unwrap();
        assert!(!u.is_sip());
        assert_eq!(u.opaque, "//192.0.2.103:3002");
        assert!(Uri::parse("nobodyKnowsThisScheme:totallyopaquecontent").is_ok());
        assert!(Uri::parse("tel:+1-201-555-0123")
            .unwrap()
            .aor_key()
            .is_none());
        assert!(Uri::parse("urn:with space").is_err());
    }

    #[test]
    fn equivalence_rfc3261_19_1_4() {
        let eq = |a: &str, b: &str| Uri::parse(a).unwrap().equivalent(&Uri::parse(b).unwrap());
        assert!(eq(
            "sip:%61lice@atlanta.com;transport=TCP",
            "sip:alice@AtLanTa.CoM;Transport=tcp"
        ));
        assert!(eq(
            "sip:carol@chicago.com",
            "sip:carol@chicago.com;newparam=5"
        ));
        assert!(eq(
            "sip:carol@chicago.com;security=on",
            "sip:carol@chicago.com;newparam=5"
        ));
        assert!(eq(
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"
        ));
        assert!(eq(
            "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
            "sip:alice@atlanta.com?priority=urgent&subject=project%20x"
        ));
        assert!(!eq(
            "SIP:ALICE@AtLanTa.CoM;Transport=udp",
            "sip:alice@AtLanTa.CoM;Transport=UDP"
        ));
        assert!(!eq("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"));
        assert!(!eq(
            "sip:bob@biloxi.com",
            "sip:bob@biloxi.com;transport=udp"
        ));
        assert!(!eq(
            "sip:carol@chicago.com",
            "sip:carol@chicago.com?Subject=next%20meeting"
        ));
        assert!(!eq("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"));
        assert!(!eq("sip:alice@atlanta.com", "sips:alice@atlanta.com"));
    }
}
