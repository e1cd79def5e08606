//! SIP, SIPS and other URIs (RFC 3261 §19.1, §25.1; RFC 5118 IPv6 references; RFC 3986 for
//! other schemes). Zero-copy views: components borrow the input; escapes are decoded on demand.

use std::borrow::Cow;

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
        todo!()
    }
    pub fn is_sip(&self) -> bool {
        todo!()
    }
    /// The user part with `%XX` escapes decoded.
    pub fn user_unescaped(&self) -> Option<Cow<'a, str>> {
        todo!()
    }
    /// `transport` parameter, lower-cased by the caller.
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        todo!()
    }
    /// `user@host` with the user unescaped and the host lower-cased: the key Avail uses for
    /// an address-of-record. None when there is no user part or the scheme is not sip/sips.
    pub fn aor_key(&self) -> Option<String> {
        todo!()
    }
    /// RFC 3261 §19.1.4 URI equality (scheme, user and password case-sensitive after
    /// unescaping, host case-insensitive, the listed parameters compared, headers compared).
    pub fn equivalent(&self, other: &Uri<'_>) -> bool {
        todo!()
    }
}
