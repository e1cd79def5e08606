//! The message structure (RFC 3261 §7): start line, header fields, body; structural parsing
//! of one complete message held in a [`Bytes`] buffer.

use bytes::Bytes;

/// Size and count limits, checked before anything is allocated for the offending part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of start line plus header block, including the blank line.
    pub max_header_bytes: usize,
    /// Number of header fields (a comma-separated multi-value field counts once).
    pub max_headers: usize,
    /// Body bytes (Content-Length).
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_header_bytes: 32 * 1024, max_headers: 128, max_body_bytes: 1024 * 1024 }
    }
}

/// Request methods; `Extension` carries any other token (RFC 3261 §25.1 `extension-method`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Register,
    Options,
    Info,
    Prack,
    Update,
    Subscribe,
    Notify,
    Publish,
    Message,
    Refer,
    Extension(Box<str>),
}

impl Method {
    /// Methods are case-sensitive (RFC 3261 §7.1): `invite` is an extension method.
    pub fn from_token(token: &str) -> Method {
        todo!()
    }
    pub fn as_str(&self) -> &str {
        todo!()
    }
}

/// Header names with a typed meaning somewhere in Avail, recognised in full and compact form
/// (RFC 3261 §7.3.3, RFC 3265/6665 `o`/`u`, RFC 3515 `r`, RFC 3891/4028 `x`, RFC 4474 `y`...).
/// Comparison is case-insensitive; everything else is `Other` and kept byte-exact.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HeaderName {
    Accept,
    AcceptEncoding,
    AcceptLanguage,
    AllowEvents,
    Allow,
    Authorization,
    CallId,
    Contact,
    ContentDisposition,
    ContentEncoding,
    ContentLength,
    ContentType,
    CSeq,
    Date,
    Event,
    Expires,
    From,
    MaxForwards,
    MinExpires,
    Path,
    ProxyAuthenticate,
    ProxyAuthorization,
    ProxyRequire,
    RecordRoute,
    ReferTo,
    Require,
    Route,
    Server,
    SessionExpires,
    SipETag,
    SipIfMatch,
    Subject,
    SubscriptionState,
    Supported,
    Timestamp,
    To,
    Unsupported,
    UserAgent,
    Via,
    Warning,
    WwwAuthenticate,
    /// Any other header; the name as written is available from [`HeaderRef::name_as_written`].
    Other,
}

impl HeaderName {
    /// Recognise a header name as written on the wire (full or compact form, any case).
    pub fn from_wire(name: &str) -> HeaderName {
        todo!()
    }
    /// Canonical full name, e.g. `Call-ID`, `CSeq`, `WWW-Authenticate`, `SIP-ETag`.
    /// `Other` has no canonical name and returns "".
    pub fn canonical(&self) -> &'static str {
        todo!()
    }
    /// Whether several values may be joined by commas in one field (RFC 3261 §7.3.1), so that
    /// [`Message::header_values`] splits them. False for e.g. WWW-Authenticate, Authorization,
    /// Date, Call-ID, From, To, CSeq and for `Other`.
    pub fn is_list(&self) -> bool {
        todo!()
    }
}

/// Start line of a parsed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    Request { method: Method },
    Response { code: u16 },
}

/// One header field as it appears in the message.
#[derive(Debug, Clone, Copy)]
pub struct HeaderRef<'a> {
    pub name: &'a HeaderName,
    /// The name exactly as received (e.g. `i`, `call-id`, `X-Foo`).
    pub name_as_written: &'a str,
    /// The value with leading/trailing whitespace removed; folded lines are unfolded
    /// (each CRLF of a fold is replaced by spaces, which RFC 3261 §7.3.1 makes equivalent).
    pub value: &'a str,
}

/// Why a message could not be parsed. `reason` is suitable for a 400 reason phrase
/// (e.g. "Missing Call-ID", "Content-Length larger than body", "CSeq method mismatch").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ParseError {
    pub reason: String,
    /// Response status that fits (400 for most problems, 505 for an unsupported SIP
    /// version, 413 for an oversized message, 416 for an unsupported URI scheme).
    pub status: u16,
    /// True when the start line and header block were split successfully, so a response
    /// can be built from [`Message::parse_headers_only`]'s result (Via, From, To, Call-ID,
    /// CSeq copied raw). False means the message must be dropped and logged.
    pub respondable: bool,
}

/// A parsed SIP message. Cheap to clone (the buffer is reference-counted).
#[derive(Debug, Clone)]
pub struct Message {
    // buffer, start line spans, header spans (name kind + name span + value span), body span.
    // Private: the implementation chooses the representation.
}

impl Message {
    /// Parse one complete message (a UDP datagram or a frame from [`crate::StreamDecoder`]) and
    /// validate it: start line, header syntax, the mandatory headers of RFC 3261 §8.1.1 for
    /// requests (To, From, CSeq, Call-ID, Max-Forwards may be absent, Via) and their syntax,
    /// CSeq method equal to the request method, Content-Length consistent with the body
    /// (absent: the body is the rest of the buffer; smaller: the excess is ignored; larger: error),
    /// numeric headers in range, and the limits.
    pub fn parse(buf: Bytes, limits: &Limits) -> Result<Message, ParseError> {
        todo!()
    }

    /// Structural parse only (start line, header split, body by Content-Length), without the
    /// semantic checks of [`Message::parse`]; used to build a 400 for a message that `parse`
    /// rejected with `respondable: true`.
    pub fn parse_headers_only(buf: Bytes, limits: &Limits) -> Result<Message, ParseError> {
        todo!()
    }

    /// The whole buffer the message was parsed from.
    pub fn as_bytes(&self) -> &Bytes {
        todo!()
    }
    pub fn start_line(&self) -> &StartLine {
        todo!()
    }
    pub fn is_request(&self) -> bool {
        todo!()
    }
    /// Request method, None for responses.
    pub fn method(&self) -> Option<&Method> {
        todo!()
    }
    /// Request-URI text as received, None for responses.
    pub fn request_uri(&self) -> Option<&str> {
        todo!()
    }
    /// Status code, None for requests.
    pub fn status(&self) -> Option<u16> {
        todo!()
    }
    /// Reason phrase (may be empty), None for requests.
    pub fn reason(&self) -> Option<&str> {
        todo!()
    }
    /// All header fields in order.
    pub fn headers(&self) -> impl Iterator<Item = HeaderRef<'_>> + '_ {
        std::iter::empty()
    }
    /// Value of the first field with that name.
    pub fn header(&self, name: &HeaderName) -> Option<&str> {
        todo!()
    }
    /// Every value of that header, in order, across all fields with that name; for list
    /// headers ([`HeaderName::is_list`]) comma-separated values are split at top level
    /// (not inside quotes or `<...>`), each trimmed.
    pub fn header_values<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        std::iter::empty()
    }
    /// Values of an `Other` header by its name, case-insensitive, not split.
    pub fn other_header(&self, name: &str) -> Option<&str> {
        todo!()
    }
    /// Body bytes (zero-copy slice of the buffer).
    pub fn body(&self) -> Bytes {
        todo!()
    }

    // Typed views. Errors name the header and the problem (usable as a 400 reason phrase).
    pub fn call_id(&self) -> Result<&str, crate::HeaderError> {
        todo!()
    }
    pub fn cseq(&self) -> Result<crate::CSeq, crate::HeaderError> {
        todo!()
    }
    pub fn from_header(&self) -> Result<crate::NameAddr<'_>, crate::HeaderError> {
        todo!()
    }
    pub fn to_header(&self) -> Result<crate::NameAddr<'_>, crate::HeaderError> {
        todo!()
    }
    pub fn top_via(&self) -> Result<crate::Via<'_>, crate::HeaderError> {
        todo!()
    }
    /// All Via values, topmost first.
    pub fn vias(&self) -> Result<Vec<crate::Via<'_>>, crate::HeaderError> {
        todo!()
    }
    /// All Contact values; `*` is [`crate::ContactValue::Star`].
    pub fn contacts(&self) -> Result<Vec<crate::ContactValue<'_>>, crate::HeaderError> {
        todo!()
    }
    /// All values of a name-addr list header (Route, Record-Route, Path).
    pub fn name_addrs(&self, name: &HeaderName) -> Result<Vec<crate::NameAddr<'_>>, crate::HeaderError> {
        todo!()
    }
    /// A header holding one unsigned decimal (Expires, Min-Expires, Max-Forwards,
    /// Content-Length); None when absent; error when not a number or above u32::MAX.
    pub fn u32_header(&self, name: &HeaderName) -> Result<Option<u32>, crate::HeaderError> {
        todo!()
    }
    pub fn event(&self) -> Result<Option<crate::Event<'_>>, crate::HeaderError> {
        todo!()
    }
    pub fn subscription_state(&self) -> Result<Option<crate::SubscriptionState<'_>>, crate::HeaderError> {
        todo!()
    }
    pub fn content_type(&self) -> Result<Option<crate::MediaType<'_>>, crate::HeaderError> {
        todo!()
    }
    /// Whether an option-tag list header (Supported, Require, Proxy-Require, Unsupported) or a
    /// token list header (Allow, Allow-Events) contains `token` (case-insensitive).
    pub fn has_token(&self, name: &HeaderName, token: &str) -> bool {
        todo!()
    }
    /// Digest credentials from Authorization or Proxy-Authorization fields (each field one set).
    pub fn credentials(&self, name: &HeaderName) -> Vec<Result<crate::Credentials<'_>, crate::HeaderError>> {
        todo!()
    }

    /// Re-serialize: start line, every header as `name-as-written: value` (unfolded),
    /// a Content-Length that matches the body, the body. Equivalent to the input per RFC 3261.
    pub fn serialize(&self) -> Bytes {
        todo!()
    }
}
