//! Typed, lazily parsed header values (RFC 3261 §20, §25.1; RFC 6665 §8.2 Event and
//! Subscription-State; RFC 3903 SIP-ETag; RFC 2617/7616 digest syntax; RFC 5627 GRUU params).

use std::borrow::Cow;

/// A header value that could not be understood. Display gives a 400 reason phrase such as
/// "Invalid Via header" or "Missing CSeq header".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HeaderError(pub String);

/// Remove surrounding double quotes and resolve `\x` quoted-pairs; returns the input
/// unchanged (borrowed) when it is not quoted.
pub fn unquote(value: &str) -> Cow<'_, str> {
    todo!()
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
        std::iter::empty()
    }
    /// Case-insensitive lookup: None = absent, Some(None) = present without value,
    /// Some(Some(v)) = value as written (quotes kept).
    pub fn get(&self, name: &str) -> Option<Option<&'a str>> {
        todo!()
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
        todo!()
    }
    pub fn branch(&self) -> Option<&'a str> {
        todo!()
    }
    /// `sent-by` as written: `host[:port]`.
    pub fn sent_by(&self) -> &'a str {
        todo!()
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
        todo!()
    }
    pub fn tag(&self) -> Option<&'a str> {
        todo!()
    }
}

/// A Contact header value.
#[derive(Debug, Clone, PartialEq, Eq)]
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
        todo!()
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
        todo!()
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
        todo!()
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
        todo!()
    }
    /// Case-insensitive `type/subtype` comparison, e.g. `is("application", "pidf+xml")`.
    pub fn is(&self, mtype: &str, subtype: &str) -> bool {
        todo!()
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
        todo!()
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
        todo!()
    }
    /// `Digest realm="...", nonce="...", algorithm=SHA-256, qop="auth"[, opaque="..."][, stale=true]`
    pub fn to_header_value(&self) -> String {
        todo!()
    }
}
