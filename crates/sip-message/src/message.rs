//! The message structure (RFC 3261 §7): start line, header fields, body; structural parsing
//! of one complete message held in a [`Bytes`] buffer.

use bytes::Bytes;
use memchr::memchr;

use crate::headers::{CSeq, HeaderError, NameAddr, Via};
use crate::syntax::{
    is_token, is_token_byte, parse_u32, split_at_byte, split_if, split_top_level, trim_lws,
};

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
        Limits {
            max_header_bytes: 32 * 1024,
            max_headers: 128,
            max_body_bytes: 1024 * 1024,
        }
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
        match token {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            "INFO" => Method::Info,
            "PRACK" => Method::Prack,
            "UPDATE" => Method::Update,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "PUBLISH" => Method::Publish,
            "MESSAGE" => Method::Message,
            "REFER" => Method::Refer,
            other => Method::Extension(other.into()),
        }
    }
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Prack => "PRACK",
            Method::Update => "UPDATE",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Publish => "PUBLISH",
            Method::Message => "MESSAGE",
            Method::Refer => "REFER",
            Method::Extension(t) => t,
        }
    }
}

/// Header names with a typed meaning somewhere in Avail, recognised in full and compact form
/// (RFC 3261 §7.3.3, RFC 3265/6665 `o`/`u`, RFC 3515 `r`, RFC 3891/4028 `x`, RFC 4474 `y`...).
/// Comparison is case-insensitive; everything else is `Other` and kept byte-exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
        HeaderName::from_wire_bytes(name.as_bytes())
    }

    fn from_wire_bytes(name: &[u8]) -> HeaderName {
        use HeaderName::*;
        let first = match name.first() {
            Some(c) => c.to_ascii_lowercase(),
            None => return Other,
        };
        if name.len() == 1 {
            return match first {
                b'i' => CallId,
                b'm' => Contact,
                b'e' => ContentEncoding,
                b'l' => ContentLength,
                b'c' => ContentType,
                b'f' => From,
                b's' => Subject,
                b'k' => Supported,
                b't' => To,
                b'v' => Via,
                b'o' => Event,
                b'u' => AllowEvents,
                b'r' => ReferTo,
                b'x' => SessionExpires,
                _ => Other,
            };
        }
        // (length, first, last) is unique among the known names, so one decision tree picks
        // the only candidate and a single case-insensitive compare confirms it.
        let last = name.last().map_or(0, u8::to_ascii_lowercase);
        let candidate = match (name.len(), first, last) {
            (2, b't', b'o') => To,
            (3, b'v', b'a') => Via,
            (4, b'c', b'q') => CSeq,
            (4, b'd', b'e') => Date,
            (4, b'f', b'm') => From,
            (4, b'p', b'h') => Path,
            (5, b'a', b'w') => Allow,
            (5, b'e', b't') => Event,
            (5, b'r', b'e') => Route,
            (6, b'a', b't') => Accept,
            (6, b's', b'r') => Server,
            (7, b'c', b'd') => CallId,
            (7, b'c', b't') => Contact,
            (7, b'e', b's') => Expires,
            (7, b'r', b'e') => Require,
            (7, b's', b't') => Subject,
            (7, b'w', b'g') => Warning,
            (8, b'r', b'o') => ReferTo,
            (8, b's', b'g') => SipETag,
            (9, b's', b'd') => Supported,
            (9, b't', b'p') => Timestamp,
            (10, b'u', b't') => UserAgent,
            (11, b'm', b's') => MinExpires,
            (11, b'u', b'd') => Unsupported,
            (12, b'a', b's') => AllowEvents,
            (12, b'c', b'e') => ContentType,
            (12, b'm', b's') => MaxForwards,
            (12, b'r', b'e') => RecordRoute,
            (12, b's', b'h') => SipIfMatch,
            (13, b'a', b'n') => Authorization,
            (13, b'p', b'e') => ProxyRequire,
            (14, b'c', b'h') => ContentLength,
            (15, b'a', b'g') => AcceptEncoding,
            (15, b'a', b'e') => AcceptLanguage,
            (15, b's', b's') => SessionExpires,
            (16, b'c', b'g') => ContentEncoding,
            (16, b'w', b'e') => WwwAuthenticate,
            (18, b'p', b'e') => ProxyAuthenticate,
            (18, b's', b'e') => SubscriptionState,
            (19, b'c', b'n') => ContentDisposition,
            (19, b'p', b'n') => ProxyAuthorization,
            _ => return Other,
        };
        // Known names are letters and '-', and no other token byte maps onto those when
        // OR-ed with 0x20, so this is an exact case-insensitive compare for token input.
        let canonical = candidate.canonical().as_bytes();
        let same = canonical.len() == name.len()
            && canonical
                .iter()
                .zip(name)
                .all(|(c, n)| c | 0x20 == n | 0x20);
        if same {
            candidate
        } else {
            Other
        }
    }
    /// Canonical full name, e.g. `Call-ID`, `CSeq`, `WWW-Authenticate`, `SIP-ETag`.
    /// `Other` has no canonical name and returns "".
    pub const fn canonical(&self) -> &'static str {
        use HeaderName::*;
        match self {
            Accept => "Accept",
            AcceptEncoding => "Accept-Encoding",
            AcceptLanguage => "Accept-Language",
            AllowEvents => "Allow-Events",
            Allow => "Allow",
            Authorization => "Authorization",
            CallId => "Call-ID",
            Contact => "Contact",
            ContentDisposition => "Content-Disposition",
            ContentEncoding => "Content-Encoding",
            ContentLength => "Content-Length",
            ContentType => "Content-Type",
            CSeq => "CSeq",
            Date => "Date",
            Event => "Event",
            Expires => "Expires",
            From => "From",
            MaxForwards => "Max-Forwards",
            MinExpires => "Min-Expires",
            Path => "Path",
            ProxyAuthenticate => "Proxy-Authenticate",
            ProxyAuthorization => "Proxy-Authorization",
            ProxyRequire => "Proxy-Require",
            RecordRoute => "Record-Route",
            ReferTo => "Refer-To",
            Require => "Require",
            Route => "Route",
            Server => "Server",
            SessionExpires => "Session-Expires",
            SipETag => "SIP-ETag",
            SipIfMatch => "SIP-If-Match",
            Subject => "Subject",
            SubscriptionState => "Subscription-State",
            Supported => "Supported",
            Timestamp => "Timestamp",
            To => "To",
            Unsupported => "Unsupported",
            UserAgent => "User-Agent",
            Via => "Via",
            Warning => "Warning",
            WwwAuthenticate => "WWW-Authenticate",
            Other => "",
        }
    }
    /// Whether several values may be joined by commas in one field (RFC 3261 §7.3.1), so that
    /// [`Message::header_values`] splits them. False for e.g. WWW-Authenticate, Authorization,
    /// Date, Call-ID, From, To, CSeq and for `Other`.
    pub fn is_list(&self) -> bool {
        use HeaderName::*;
        matches!(
            self,
            Accept
                | AcceptEncoding
                | AcceptLanguage
                | AllowEvents
                | Allow
                | Contact
                | ContentEncoding
                | Path
                | ProxyRequire
                | RecordRoute
                | Require
                | Route
                | Supported
                | Unsupported
                | Via
                | Warning
        )
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

/// What [`Message::parse_for_reply`] could not parse.
#[derive(Debug)]
pub struct Unparsable {
    pub error: ParseError,
    /// When `error` is respondable: the message as [`Message::parse_headers_only`] reads it
    /// (boxed: errors are rare, and a parse result should stay the size of a message).
    pub headers: Option<Box<Message>>,
}

/// A parsed SIP message. Cheap to clone (the buffer is reference-counted).
#[derive(Debug, Clone)]
pub struct Message {
    /// The received bytes; when the header block contained folded lines, a copy in which
    /// each fold's CR LF became spaces (same length, so every offset stays valid).
    buf: Bytes,
    /// The length of `buf`'s header block (start line and headers, up to the body), which
    /// [`Message::split`] checked as UTF-8 once: header values are read many times (every
    /// view, every response built from the message), and checking each value on every read
    /// cost more than a copy of the block, which in turn cost an allocation per message.
    head_len: u32,
    start: StartLine,
    /// The whole start line, without its CRLF.
    line: Span,
    /// Request-URI (requests) or reason phrase (responses).
    line_part: Span,
    fields: Vec<Field>,
    body: Span,
    /// The CSeq as [`Message::parse`] checked it, so the many readers of every message's
    /// CSeq (transaction matching, dialogs, the event packages) do not parse it again.
    cseq: Option<CSeq>,
    /// A request's Request-URI, top Via, From and To as [`Message::parse`] checked them, for
    /// the same reason: routing, transaction matching, the authorization, the event package
    /// and the response read each again (a PUBLISH parsed four Request-URIs, four Vias and
    /// five addresses). Boxed because a `Message` is moved whole (by memcpy past a few
    /// words), and inline these doubled its size for every response, which never fills them.
    request_parts: Option<Box<RequestParts>>,
    /// Where the transport received it from, when the caller said so: responses built with
    /// [`crate::response_to`] then carry `received`/`rport` (RFC 3261 §18.2.1, RFC 3581 §4).
    source: Option<std::net::SocketAddr>,
}

/// Byte range into [`Message::buf`]; u32 keeps a header entry at 20 bytes.
#[derive(Debug, Clone, Copy, Default)]
struct Span {
    start: u32,
    end: u32,
}

/// A parsed [`Via`] as spans of the header text it was read from.
#[derive(Debug, Clone, Copy)]
struct ViaSpans {
    transport: Span,
    host: HostSpan,
    host_text: Span,
    port: Option<u16>,
    params: Span,
    text: Span,
}

#[derive(Debug, Clone, Copy)]
struct RequestParts {
    uri: UriSpans,
    top_via: ViaSpans,
    from: NameAddrSpans,
    to: NameAddrSpans,
}

/// A parsed [`NameAddr`] as spans of the header text it was read from.
#[derive(Debug, Clone, Copy)]
struct NameAddrSpans {
    display_name: DisplayNameSpan,
    uri: UriSpans,
    params: Span,
    text: Span,
}

#[derive(Debug, Clone, Copy)]
enum DisplayNameSpan {
    Absent,
    /// As written, or the inside of a quoted name without escapes.
    Verbatim(Span),
    /// A quoted name with escapes: resolved again from the value when read (rare).
    Escaped,
}

/// A parsed [`crate::Uri`] as spans of the header text it was read from.
#[derive(Debug, Clone, Copy)]
struct UriSpans {
    scheme: Span,
    user: Option<Span>,
    password: Option<Span>,
    host: HostSpan,
    host_text: Span,
    port: Option<u16>,
    params: Span,
    headers: Option<Span>,
    opaque: Span,
    text: Span,
}

#[derive(Debug, Clone, Copy)]
enum HostSpan {
    Name(Span),
    Ipv4(std::net::Ipv4Addr),
    Ipv6(std::net::Ipv6Addr),
}

impl Span {
    fn new(start: usize, end: usize) -> Span {
        // Callers only build spans inside a buffer already checked to fit in u32.
        Span {
            start: start as u32,
            end: end as u32,
        }
    }
    fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
    fn len(self) -> usize {
        self.end.saturating_sub(self.start) as usize
    }
}

#[derive(Debug, Clone, Copy)]
struct Field {
    name: HeaderName,
    name_span: Span,
    value: Span,
}

/// What [`Message::check_headers`] parsed that the views read again.
struct Checked {
    cseq: CSeq,
    top_via: Option<ViaSpans>,
    /// A request's From and To.
    addresses: Option<(NameAddrSpans, NameAddrSpans)>,
}

/// What the structural split learns beyond the [`Message`] itself, for the strict checks.
struct SplitInfo {
    version: Span,
    /// False when the buffer ended after a header line without the blank line.
    terminated: bool,
}

/// Request-URI schemes Avail serves: SIP (RFC 3261), telephone numbers (RFC 3966) and the
/// abstract presence and IM schemes (RFC 3859, RFC 3860) a presence server may be addressed by.
/// Anything else is answered with 416 (RFC 3261 §8.2.2.1).
const SUPPORTED_SCHEMES: [&str; 5] = ["sip", "sips", "tel", "pres", "im"];

fn fail(reason: &str, status: u16, respondable: bool) -> ParseError {
    ParseError {
        reason: reason.to_owned(),
        status,
        respondable,
    }
}

fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn skip_wsp(b: &[u8], mut from: usize, end: usize) -> usize {
    while from < end && b.get(from).is_some_and(|&c| is_wsp(c)) {
        from += 1;
    }
    from
}

fn trim_wsp_end(b: &[u8], start: usize, mut end: usize) -> usize {
    while end > start && b.get(end - 1).is_some_and(|&c| is_wsp(c)) {
        end -= 1;
    }
    end
}

/// A `branch=` token that is the first of `params` and ends them or is followed by `;`,
/// read without the general parameter walk, which costs a few hundred instructions; anything
/// else (spacing, another parameter first) is left to that walk.
fn leading_branch(params: &str) -> Option<&str> {
    let value = params
        .get(..7)
        .filter(|name| name.eq_ignore_ascii_case("branch="))
        .and_then(|_| params.get(7..))?;
    let end = value
        .bytes()
        .position(|b| !is_token_byte(b))
        .unwrap_or(value.len());
    (end > 0 && matches!(value.as_bytes().get(end), None | Some(b';')))
        .then(|| value.get(..end))
        .flatten()
}

/// Replaces every fold (CR LF or LF followed by SP/HT) inside `[from, to)` with spaces,
/// which RFC 3261 §7.3.1 makes equivalent, in a copy of the buffer (folds are rare).
fn unfold(buf: &Bytes, from: usize, to: usize) -> Bytes {
    let mut v = buf.to_vec();
    let mut i = from;
    while let Some(rel) = v.get(i..to).and_then(|s| memchr(b'\n', s)) {
        let nl = i + rel;
        if v.get(nl + 1).is_some_and(|&c| is_wsp(c)) {
            if let Some(c) = v.get_mut(nl) {
                *c = b' ';
            }
            if nl > 0 && v.get(nl - 1) == Some(&b'\r') {
                if let Some(c) = v.get_mut(nl - 1) {
                    *c = b' ';
                }
            }
        }
        i = nl + 1;
    }
    Bytes::from(v)
}

/// `callid = word [ "@" word ]` (RFC 3261 §25.1).
fn is_valid_call_id(v: &str) -> bool {
    let is_word = |w: &str| {
        !w.is_empty()
            && w.bytes().all(|b| {
                is_token_byte(b)
                    || matches!(
                        b,
                        b'(' | b')'
                            | b'<'
                            | b'>'
                            | b':'
                            | b'\\'
                            | b'"'
                            | b'/'
                            | b'['
                            | b']'
                            | b'?'
                            | b'{'
                            | b'}'
                    )
            })
    };
    match split_at_byte(v, b'@') {
        Some((a, b)) => is_word(a) && is_word(b),
        None => is_word(v),
    }
}

fn invalid(name: &HeaderName) -> HeaderError {
    HeaderError(match name {
        HeaderName::MaxForwards => "Invalid Max-Forwards".to_owned(),
        HeaderName::ContentLength => "Invalid Content-Length".to_owned(),
        HeaderName::Other => "Invalid header".to_owned(),
        n => format!("Invalid {} header", n.canonical()),
    })
}

fn missing(name: &HeaderName) -> HeaderError {
    HeaderError(format!("Missing {} header", name.canonical()))
}

impl Message {
    /// Record the address the transport received this message from (see [`Self::source`]).
    pub fn with_source(mut self, source: std::net::SocketAddr) -> Message {
        self.source = Some(source);
        self
    }

    /// The transport source recorded with [`Self::with_source`].
    pub fn source(&self) -> Option<std::net::SocketAddr> {
        self.source
    }

    /// Parse one complete message (a UDP datagram or a frame from [`crate::StreamDecoder`]) and
    /// validate it: start line, header syntax, the mandatory headers of RFC 3261 §8.1.1 for
    /// requests (To, From, CSeq, Call-ID, Max-Forwards may be absent, Via) and their syntax
    /// (a response's Via, From and To syntax only when read), CSeq method equal to the request
    /// method, Content-Length consistent with the body
    /// (absent: the body is the rest of the buffer; smaller: the excess is ignored; larger: error),
    /// numeric headers in range, and the limits.
    pub fn parse(buf: Bytes, limits: &Limits) -> Result<Message, ParseError> {
        Message::parse_for_reply(buf, limits).map_err(|unparsable| unparsable.error)
    }

    /// [`Message::parse`], which on a respondable error also returns the message as
    /// [`Message::parse_headers_only`] reads it, to address the reply. A caller that would
    /// otherwise keep a clone of every buffer it parses, for the rare reply, saves that
    /// clone (for a received datagram, an allocation).
    pub fn parse_for_reply(buf: Bytes, limits: &Limits) -> Result<Message, Unparsable> {
        let (mut msg, info) = Message::split(buf, limits).map_err(|error| Unparsable {
            error,
            headers: None,
        })?;
        match msg.check(&info, limits) {
            Ok(()) => Ok(msg),
            Err(error) => {
                let headers = error.respondable.then(|| {
                    msg.trim_body_to_content_length();
                    Box::new(msg)
                });
                Err(Unparsable { error, headers })
            }
        }
    }

    /// The checks [`Message::parse`] makes after the split.
    fn check(&mut self, info: &SplitInfo, limits: &Limits) -> Result<(), ParseError> {
        let respondable = self.is_request();
        let err = |reason: &str, status| fail(reason, status, respondable);
        let uri = self
            .check_start_line(info)
            .map_err(|(reason, status)| err(reason, status))?;
        if !info.terminated {
            return Err(err("Missing blank line after headers", 400));
        }
        let checked = self.check_headers().map_err(|e| err(&e.0, 400))?;
        self.cseq = Some(checked.cseq);
        self.request_parts = match (uri, checked.top_via, checked.addresses) {
            (Some(uri), Some(top_via), Some((from, to))) => Some(Box::new(RequestParts {
                uri,
                top_via,
                from,
                to,
            })),
            _ => None,
        };
        let available = self.body.len();
        let body_len = match self.header(&HeaderName::ContentLength) {
            None => available,
            Some(v) => {
                let n = parse_u32(v).ok_or_else(|| err("Invalid Content-Length", 400))? as usize;
                if n > limits.max_body_bytes {
                    return Err(err("Body too large", 413));
                }
                if n > available {
                    return Err(err("Content-Length larger than body", 400));
                }
                n
            }
        };
        if body_len > limits.max_body_bytes {
            return Err(err("Body too large", 413));
        }
        self.body.end = self.body.start + body_len as u32;
        Ok(())
    }

    /// Structural parse only (start line, header split, body by Content-Length), without the
    /// semantic checks of [`Message::parse`]; used to build a 400 for a message that `parse`
    /// rejected with `respondable: true`.
    pub fn parse_headers_only(buf: Bytes, limits: &Limits) -> Result<Message, ParseError> {
        let (mut msg, _) = Message::split(buf, limits)?;
        msg.trim_body_to_content_length();
        Ok(msg)
    }

    /// A readable Content-Length that fits the body ends it; any other leaves the body as is.
    fn trim_body_to_content_length(&mut self) {
        let cl = self.header(&HeaderName::ContentLength).and_then(parse_u32);
        if let Some(n) = cl.filter(|&n| n as usize <= self.body.len()) {
            self.body.end = self.body.start + n;
        }
    }

    /// Start line and header split (RFC 3261 §7); every failure here leaves no usable
    /// header set, so none is respondable.
    fn split(buf: Bytes, limits: &Limits) -> Result<(Message, SplitInfo), ParseError> {
        let drop = |reason: &str, status| fail(reason, status, false);
        let b: &[u8] = &buf;
        if b.len() > u32::MAX as usize {
            return Err(drop("Message too large", 413));
        }
        // RFC 3261 §7.5: CRLFs before the start line are ignored.
        let mut line_start = 0;
        while b.get(line_start..line_start + 2) == Some(b"\r\n") {
            line_start += 2;
        }
        let too_large = |upto: usize| upto - line_start > limits.max_header_bytes;
        let Some(rel) = b.get(line_start..).and_then(|s| memchr(b'\n', s)) else {
            return Err(if too_large(b.len()) {
                drop("Header block too large", 413)
            } else {
                drop("Missing start line", 400)
            });
        };
        let line_nl = line_start + rel;
        if too_large(line_nl + 1) {
            return Err(drop("Header block too large", 413));
        }
        let line_end = if b.get(line_nl.wrapping_sub(1)) == Some(&b'\r') {
            line_nl - 1
        } else {
            line_nl
        };

        let cap = (b.len() / 24).clamp(8, 64).min(limits.max_headers.max(1));
        let mut fields: Vec<Field> = Vec::with_capacity(cap);
        let mut has_fold = false;
        let mut pos = line_nl + 1;
        // One iterator over the rest of the buffer avoids a memchr set-up per line; it is
        // lazy, so a large body after the blank line is never scanned.
        let mut newlines = memchr::memchr_iter(b'\n', b.get(pos..).unwrap_or_default());
        let (body_start, terminated) = loop {
            let Some(nl) = newlines.next().map(|rel| line_nl + 1 + rel) else {
                if pos == b.len() {
                    break (pos, false);
                }
                return Err(if too_large(b.len()) {
                    drop("Header block too large", 413)
                } else {
                    drop("Unterminated header line", 400)
                });
            };
            if too_large(nl + 1) {
                return Err(drop("Header block too large", 413));
            }
            let end = if nl > pos && b.get(nl - 1) == Some(&b'\r') {
                nl - 1
            } else {
                nl
            };
            if end == pos {
                break (nl + 1, true);
            }
            if b.get(pos).is_some_and(|&c| is_wsp(c)) {
                let Some(last) = fields.last_mut() else {
                    return Err(drop("Invalid header line", 400));
                };
                has_fold = true;
                let content = skip_wsp(b, pos, end);
                if content < end {
                    if last.value.len() == 0 {
                        last.value.start = content as u32;
                    }
                    last.value.end = trim_wsp_end(b, content, end) as u32;
                }
            } else {
                // `field-name HCOLON`, HCOLON = *( SP / HTAB ) ":" SWS
                let line = b.get(pos..end).unwrap_or_default();
                let name_end = pos
                    + line
                        .iter()
                        .position(|&c| !is_token_byte(c))
                        .unwrap_or(line.len());
                let colon = skip_wsp(b, name_end, end);
                if b.get(colon) != Some(&b':') || colon >= end {
                    return Err(drop("Invalid header line", 400));
                }
                if name_end == pos {
                    return Err(drop("Invalid header name", 400));
                }
                let name = b.get(pos..name_end).unwrap_or_default();
                if fields.len() >= limits.max_headers {
                    return Err(drop("Too many header fields", 413));
                }
                let vstart = skip_wsp(b, colon + 1, end);
                fields.push(Field {
                    name: HeaderName::from_wire_bytes(name),
                    name_span: Span::new(pos, name_end),
                    value: Span::new(vstart, trim_wsp_end(b, vstart, end)),
                });
            }
            pos = nl + 1;
        };
        let buf = if has_fold {
            unfold(&buf, line_nl + 1, body_start)
        } else {
            buf
        };
        let Ok(text) = std::str::from_utf8(buf.get(..body_start).unwrap_or_default()) else {
            return Err(drop("Invalid UTF-8 in header", 400));
        };
        let head_len = text.len() as u32;
        let Some(head) = text.get(line_start..line_end) else {
            return Err(drop("Missing start line", 400));
        };
        let (start, line_part, version) = parse_start_line(head, line_start)?;
        let msg = Message {
            head_len,
            start,
            line: Span::new(line_start, line_end),
            line_part,
            fields,
            body: Span::new(body_start, buf.len()),
            buf,
            cseq: None,
            request_parts: None,
            source: None,
        };
        Ok((
            msg,
            SplitInfo {
                version,
                terminated,
            },
        ))
    }

    /// Strict start-line grammar (RFC 3261 §7.1, §7.2, §25.1): single spaces, SIP/2.0 only,
    /// a well-formed Request-URI without headers (§19.1.1 table; RFC 4475 escruri).
    /// Returns a request's Request-URI.
    fn check_start_line(&self, info: &SplitInfo) -> Result<Option<UriSpans>, (&'static str, u16)> {
        let version = self.text(info.version);
        let well_formed_version = version.len() > 4
            && version
                .get(..4)
                .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
            && version
                .get(4..)
                .and_then(|v| split_at_byte(v, b'.'))
                .is_some_and(|(a, b)| {
                    !a.is_empty()
                        && !b.is_empty()
                        && (a.bytes().chain(b.bytes())).all(|c| c.is_ascii_digit())
                });
        match self.start {
            StartLine::Request { .. } => {
                if !well_formed_version {
                    return Err(("Invalid request line", 400));
                }
                if version.get(4..) != Some("2.0") {
                    return Err(("Version Not Supported", 505));
                }
                let uri = self.text(self.line_part);
                match crate::Uri::parse(uri) {
                    Ok(u) if u.is_sip() && u.headers.is_some() => Err(("Invalid Request-URI", 400)),
                    Ok(u)
                        if !SUPPORTED_SCHEMES
                            .iter()
                            .any(|s| s.eq_ignore_ascii_case(u.scheme)) =>
                    {
                        Err(("Unsupported URI Scheme", 416))
                    }
                    Ok(u) => Ok(Some(self.uri_spans(&u))),
                    Err(_) => Err(("Invalid Request-URI", 400)),
                }
            }
            StartLine::Response { .. } => {
                if well_formed_version && version.get(4..) == Some("2.0") {
                    Ok(None)
                } else {
                    Err(("Version Not Supported", 505))
                }
            }
        }
    }

    /// Mandatory headers (RFC 3261 §8.1.1, §8.2.2; RFC 4475 insuf, multi01, mcl01), their
    /// syntax and the numeric headers' ranges. Optional headers (Contact, Route, Date...) are
    /// checked by their typed views only, which RFC 4475 (baddate, regbadct) allows.
    ///
    /// A response's Via, From and To must be present but their syntax is left to the views:
    /// a response is matched by its top Via's branch and its CSeq (RFC 3261 §17.1.3) and
    /// nobody answers a malformed one, so whoever reads those headers gets the error then.
    /// Checking them here cost a third of parsing the 200 that answers every NOTIFY.
    /// Returns what it parsed that the views read again (see [`Checked`]).
    fn check_headers(&self) -> Result<Checked, HeaderError> {
        use HeaderName as H;
        let request = self.is_request();
        let mut counts = [0u8; 6];
        const SINGLE: [HeaderName; 6] = [
            H::CallId,
            H::From,
            H::To,
            H::CSeq,
            H::MaxForwards,
            H::ContentLength,
        ];
        let mut vias = 0usize;
        let mut top_via = None;
        let mut cseq = None;
        let (mut from, mut to) = (None, None);
        for f in &self.fields {
            let value = self.text(f.value);
            if let Some(i) = SINGLE.iter().position(|n| *n == f.name) {
                if let Some(c) = counts.get_mut(i) {
                    *c = c.saturating_add(1);
                    if *c > 1 {
                        return Err(HeaderError(format!(
                            "Multiple {} headers",
                            f.name.canonical()
                        )));
                    }
                }
            }
            let ok = match f.name {
                H::Via if !request => {
                    vias += 1;
                    true
                }
                H::Via => split_top_level(value, b',').all(|v| {
                    vias += 1;
                    match Via::parse(v) {
                        Ok(via) => {
                            if top_via.is_none() {
                                top_via = Some(self.via_spans(&via));
                            }
                            true
                        }
                        Err(_) => false,
                    }
                }),
                H::From | H::To if request => match NameAddr::parse(value) {
                    Ok(address) => {
                        let spans = Some(self.name_addr_spans(&address));
                        if f.name == H::From {
                            from = spans;
                        } else {
                            to = spans;
                        }
                        true
                    }
                    Err(_) => false,
                },
                H::From | H::To => true,
                H::CallId => is_valid_call_id(value),
                H::CSeq => {
                    cseq = CSeq::parse(value).ok();
                    cseq.is_some()
                }
                H::MaxForwards => parse_u32(value).is_some_and(|n| n <= 255),
                H::ContentLength => parse_u32(value).is_some(),
                H::Expires | H::MinExpires => parse_u32(value).is_some(),
                _ => true,
            };
            if !ok {
                return Err(invalid(&f.name));
            }
        }
        if vias == 0 {
            return Err(missing(&H::Via));
        }
        for (name, count) in SINGLE.iter().zip(counts).take(4) {
            if count == 0 {
                return Err(missing(name));
            }
        }
        let cseq = cseq.ok_or_else(|| missing(&H::CSeq))?;
        if let StartLine::Request { method } = &self.start {
            if cseq.method != *method {
                return Err(HeaderError(
                    "CSeq method does not match request method".to_owned(),
                ));
            }
        }
        let addresses = from.zip(to);
        Ok(Checked {
            cseq,
            top_via,
            addresses,
        })
    }

    /// Where `part`, a slice of the header text, lies in it (an empty part that is not
    /// such a slice, like parameters that are absent, gives an empty span).
    fn span_of(&self, part: &str) -> Span {
        let text = self.head();
        let start = (part.as_ptr() as usize).wrapping_sub(text.as_ptr() as usize);
        if part.is_empty() || start > text.len() {
            return Span::new(0, 0);
        }
        Span::new(start, start + part.len())
    }

    fn via_spans(&self, via: &Via<'_>) -> ViaSpans {
        ViaSpans {
            transport: self.span_of(via.transport),
            host: self.host_span(&via.host),
            host_text: self.span_of(via.host_text),
            port: via.port,
            params: self.span_of(via.params.raw),
            text: self.span_of(via.text),
        }
    }

    fn via_from(&self, spans: &ViaSpans) -> Via<'_> {
        Via {
            transport: self.text(spans.transport),
            host: self.host_from(spans.host),
            host_text: self.text(spans.host_text),
            port: spans.port,
            params: crate::Params {
                raw: self.text(spans.params),
            },
            text: self.text(spans.text),
        }
    }

    fn optional_span(&self, part: Option<&str>) -> Option<Span> {
        part.map(|p| self.span_of(p))
    }

    fn host_span(&self, host: &crate::Host<'_>) -> HostSpan {
        match *host {
            crate::Host::Name(name) => HostSpan::Name(self.span_of(name)),
            crate::Host::Ipv4(ip) => HostSpan::Ipv4(ip),
            crate::Host::Ipv6(ip) => HostSpan::Ipv6(ip),
        }
    }

    fn host_from(&self, host: HostSpan) -> crate::Host<'_> {
        match host {
            HostSpan::Name(name) => crate::Host::Name(self.text(name)),
            HostSpan::Ipv4(ip) => crate::Host::Ipv4(ip),
            HostSpan::Ipv6(ip) => crate::Host::Ipv6(ip),
        }
    }

    fn uri_spans(&self, uri: &crate::Uri<'_>) -> UriSpans {
        UriSpans {
            scheme: self.span_of(uri.scheme),
            user: self.optional_span(uri.user),
            password: self.optional_span(uri.password),
            host: self.host_span(&uri.host),
            host_text: self.span_of(uri.host_text),
            port: uri.port,
            params: self.span_of(uri.params.raw),
            headers: self.optional_span(uri.headers),
            opaque: self.span_of(uri.opaque),
            text: self.span_of(uri.text),
        }
    }

    fn uri_from(&self, uri: &UriSpans) -> crate::Uri<'_> {
        crate::Uri {
            scheme: self.text(uri.scheme),
            user: uri.user.map(|s| self.text(s)),
            password: uri.password.map(|s| self.text(s)),
            host: self.host_from(uri.host),
            host_text: self.text(uri.host_text),
            port: uri.port,
            params: crate::Params {
                raw: self.text(uri.params),
            },
            headers: uri.headers.map(|s| self.text(s)),
            opaque: self.text(uri.opaque),
            text: self.text(uri.text),
        }
    }

    fn name_addr_spans(&self, address: &NameAddr<'_>) -> NameAddrSpans {
        NameAddrSpans {
            display_name: match &address.display_name {
                None => DisplayNameSpan::Absent,
                Some(std::borrow::Cow::Borrowed(name)) => {
                    DisplayNameSpan::Verbatim(self.span_of(name))
                }
                Some(std::borrow::Cow::Owned(_)) => DisplayNameSpan::Escaped,
            },
            uri: self.uri_spans(&address.uri),
            params: self.span_of(address.params.raw),
            text: self.span_of(address.text),
        }
    }

    fn name_addr_from(&self, spans: &NameAddrSpans) -> NameAddr<'_> {
        let text = self.text(spans.text);
        NameAddr {
            display_name: match spans.display_name {
                DisplayNameSpan::Absent => None,
                DisplayNameSpan::Verbatim(name) => {
                    Some(std::borrow::Cow::Borrowed(self.text(name)))
                }
                DisplayNameSpan::Escaped => {
                    let end = crate::syntax::quoted_end(text.as_bytes(), 0).unwrap_or(text.len());
                    Some(crate::unquote(text.get(..end).unwrap_or(text)))
                }
            },
            uri: self.uri_from(&spans.uri),
            params: crate::Params {
                raw: self.text(spans.params),
            },
            text,
        }
    }

    /// Header-block text of a span; the block was validated as UTF-8 and spans end at ASCII
    /// delimiters, so this never falls back to "" for a parsed message.
    fn text(&self, span: Span) -> &str {
        self.head().get(span.range()).unwrap_or_default()
    }

    /// The header block as text.
    fn head(&self) -> &str {
        let block = self.buf.get(..self.head_len as usize).unwrap_or_default();
        // SAFETY: `split` checked exactly these bytes as UTF-8 and set `head_len` from them;
        // `buf` is immutable `Bytes` and never replaced after that check.
        unsafe { std::str::from_utf8_unchecked(block) }
    }

    fn fields_named(&self, name: HeaderName) -> impl Iterator<Item = &str> + '_ {
        self.fields_of(name).map(|f| self.text(f.value))
    }

    /// The fields with that name, in order.
    fn fields_of(&self, name: HeaderName) -> impl Iterator<Item = &Field> + '_ {
        self.fields.iter().filter(move |f| f.name == name)
    }

    /// The whole buffer the message was parsed from (with folded header lines unfolded).
    pub fn as_bytes(&self) -> &Bytes {
        &self.buf
    }
    pub fn start_line(&self) -> &StartLine {
        &self.start
    }
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }
    /// Request method, None for responses.
    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method } => Some(method),
            StartLine::Response { .. } => None,
        }
    }
    /// Request-URI text as received, None for responses.
    pub fn request_uri(&self) -> Option<&str> {
        self.is_request().then(|| self.text(self.line_part))
    }
    /// The Request-URI parsed: kept from [`Message::parse`], parsed afresh otherwise. None for
    /// responses and for a Request-URI that does not parse.
    pub fn parsed_request_uri(&self) -> Option<crate::Uri<'_>> {
        match self.request_parts.as_deref() {
            Some(kept) => Some(self.uri_from(&kept.uri)),
            None => crate::Uri::parse(self.request_uri()?).ok(),
        }
    }
    /// Status code, None for requests.
    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code } => Some(code),
            StartLine::Request { .. } => None,
        }
    }
    /// Reason phrase (may be empty), None for requests.
    pub fn reason(&self) -> Option<&str> {
        (!self.is_request()).then(|| self.text(self.line_part))
    }
    /// All header fields in order.
    pub fn headers(&self) -> impl Iterator<Item = HeaderRef<'_>> + '_ {
        self.fields.iter().map(|f| self.header_ref(f))
    }
    fn header_ref<'a>(&'a self, field: &'a Field) -> HeaderRef<'a> {
        HeaderRef {
            name: &field.name,
            name_as_written: self.text(field.name_span),
            value: self.text(field.value),
        }
    }
    /// The fields with that name, in order (matched before anything is sliced, so a
    /// response built from a request does not slice every field of it once per header copied).
    pub fn headers_named<'a>(
        &'a self,
        name: &'a HeaderName,
    ) -> impl Iterator<Item = HeaderRef<'a>> + 'a {
        self.fields_of(*name).map(|f| self.header_ref(f))
    }
    /// Value of the first field with that name.
    pub fn header(&self, name: &HeaderName) -> Option<&str> {
        self.fields_named(*name).next()
    }
    /// Every value of that header, in order, across all fields with that name; for list
    /// headers ([`HeaderName::is_list`]) comma-separated values are split at top level
    /// (not inside quotes or `<...>`), each trimmed.
    pub fn header_values<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        let list = name.is_list();
        self.fields_named(*name)
            .flat_map(move |v| split_if(v, list, b','))
            .map(trim_lws)
            .filter(|v| !v.is_empty())
    }
    /// Values of an `Other` header by its name, case-insensitive, not split.
    /// A known name (full or compact) finds that header too.
    pub fn other_header(&self, name: &str) -> Option<&str> {
        let kind = HeaderName::from_wire(name);
        self.fields
            .iter()
            .find(|f| {
                if kind == HeaderName::Other {
                    f.name == kind && self.text(f.name_span).eq_ignore_ascii_case(name)
                } else {
                    f.name == kind
                }
            })
            .map(|f| self.text(f.value))
    }
    /// Body bytes (zero-copy slice of the buffer).
    pub fn body(&self) -> Bytes {
        self.buf.slice(self.body.range())
    }

    // Typed views. Errors name the header and the problem (usable as a 400 reason phrase).
    pub fn call_id(&self) -> Result<&str, crate::HeaderError> {
        let v = self
            .header(&HeaderName::CallId)
            .ok_or_else(|| missing(&HeaderName::CallId))?;
        if is_valid_call_id(v) {
            Ok(v)
        } else {
            Err(invalid(&HeaderName::CallId))
        }
    }
    pub fn cseq(&self) -> Result<crate::CSeq, crate::HeaderError> {
        if let Some(cseq) = &self.cseq {
            return Ok(cseq.clone());
        }
        CSeq::parse(
            self.header(&HeaderName::CSeq)
                .ok_or_else(|| missing(&HeaderName::CSeq))?,
        )
    }
    pub fn from_header(&self) -> Result<crate::NameAddr<'_>, crate::HeaderError> {
        self.name_addr(&HeaderName::From)
    }
    pub fn to_header(&self) -> Result<crate::NameAddr<'_>, crate::HeaderError> {
        self.name_addr(&HeaderName::To)
    }

    fn name_addr(&self, name: &HeaderName) -> Result<NameAddr<'_>, HeaderError> {
        let cached = self.request_parts.as_deref().and_then(|kept| match name {
            HeaderName::From => Some(&kept.from),
            HeaderName::To => Some(&kept.to),
            _ => None,
        });
        if let Some(spans) = cached {
            return Ok(self.name_addr_from(spans));
        }
        let v = self.header(name).ok_or_else(|| missing(name))?;
        NameAddr::parse(v).map_err(|_| invalid(name))
    }

    pub fn top_via(&self) -> Result<crate::Via<'_>, crate::HeaderError> {
        if let Some(kept) = self.request_parts.as_deref() {
            return Ok(self.via_from(&kept.top_via));
        }
        let v = self
            .header_values(&HeaderName::Via)
            .next()
            .ok_or_else(|| missing(&HeaderName::Via))?;
        Via::parse(v)
    }
    /// The top Via's `branch`, read without parsing the rest of the Via: all that response
    /// matching (RFC 3261 §17.1.3) needs, on the path every response takes. Sent-protocol
    /// and sent-by contain no `;`, so the parameters start at the first one. A request from
    /// [`Message::parse`] had every Via checked in full already; a response's Via was not, and
    /// a malformed one gives a branch no transaction has, or none.
    pub fn top_via_branch(&self) -> Option<&str> {
        // Every answer to our own requests carries our branch first and bare. When the first
        // Via field's first `;` comes before any `,`, it starts the top value's parameters,
        // and a bare branch there is read off the field as it is: splitting the field into
        // its values first cost more than everything else here, on every response.
        let first_field = self.header(&HeaderName::Via)?;
        if let Some(at) = memchr::memchr2(b';', b',', first_field.as_bytes()) {
            let params = first_field
                .get(at + 1..)
                .filter(|_| first_field.as_bytes().get(at) == Some(&b';'));
            if let Some(branch) = params.and_then(leading_branch) {
                return Some(branch);
            }
        }
        let via = self.header_values(&HeaderName::Via).next()?;
        let (_, params) = split_at_byte(via, b';')?;
        leading_branch(params).or_else(|| crate::Params { raw: params }.get("branch").flatten())
    }
    /// All Via values, topmost first.
    pub fn vias(&self) -> Result<Vec<crate::Via<'_>>, crate::HeaderError> {
        self.header_values(&HeaderName::Via)
            .map(Via::parse)
            .collect()
    }
    /// All Contact values; `*` is [`crate::ContactValue::Star`].
    pub fn contacts(&self) -> Result<Vec<crate::ContactValue<'_>>, crate::HeaderError> {
        self.header_values(&HeaderName::Contact)
            .map(|v| {
                if v == "*" {
                    Ok(crate::ContactValue::Star)
                } else {
                    NameAddr::parse(v)
                        .map(crate::ContactValue::Addr)
                        .map_err(|_| invalid(&HeaderName::Contact))
                }
            })
            .collect()
    }
    /// All values of a name-addr list header (Route, Record-Route, Path).
    pub fn name_addrs(
        &self,
        name: &HeaderName,
    ) -> Result<Vec<crate::NameAddr<'_>>, crate::HeaderError> {
        let name = *name;
        self.fields_named(name)
            .flat_map(|v| split_top_level(v, b','))
            .map(trim_lws)
            .filter(|v| !v.is_empty())
            .map(|v| NameAddr::parse(v).map_err(|_| invalid(&name)))
            .collect()
    }
    /// A header holding one unsigned decimal (Expires, Min-Expires, Max-Forwards,
    /// Content-Length); None when absent; error when not a number or above u32::MAX.
    pub fn u32_header(&self, name: &HeaderName) -> Result<Option<u32>, crate::HeaderError> {
        match self.header(name) {
            None => Ok(None),
            Some(v) => parse_u32(v).map(Some).ok_or_else(|| invalid(name)),
        }
    }
    /// Leading delta-seconds of Retry-After (RFC 3261 §20.33: `120 (comment);duration=60` →
    /// 120); None when absent or not starting with digits.
    pub fn retry_after(&self) -> Option<u32> {
        let value = self.other_header("Retry-After")?.trim_start();
        let digits = value.bytes().take_while(u8::is_ascii_digit).count();
        value.get(..digits)?.parse().ok()
    }
    pub fn event(&self) -> Result<Option<crate::Event<'_>>, crate::HeaderError> {
        self.header(&HeaderName::Event)
            .map(crate::Event::parse)
            .transpose()
    }
    pub fn subscription_state(
        &self,
    ) -> Result<Option<crate::SubscriptionState<'_>>, crate::HeaderError> {
        self.header(&HeaderName::SubscriptionState)
            .map(crate::SubscriptionState::parse)
            .transpose()
    }
    pub fn content_type(&self) -> Result<Option<crate::MediaType<'_>>, crate::HeaderError> {
        self.header(&HeaderName::ContentType)
            .map(crate::MediaType::parse)
            .transpose()
    }
    /// Whether an option-tag list header (Supported, Require, Proxy-Require, Unsupported) or a
    /// token list header (Allow, Allow-Events) contains `token` (case-insensitive).
    pub fn has_token(&self, name: &HeaderName, token: &str) -> bool {
        self.fields_named(*name)
            .flat_map(|v| split_top_level(v, b','))
            .any(|v| trim_lws(v).eq_ignore_ascii_case(token))
    }
    /// Digest credentials from Authorization or Proxy-Authorization fields (each field one set).
    pub fn credentials(
        &self,
        name: &HeaderName,
    ) -> Vec<Result<crate::Credentials<'_>, crate::HeaderError>> {
        self.fields_named(*name)
            .map(crate::Credentials::parse)
            .collect()
    }

    /// Re-serialize: start line, every header as `name-as-written: value` (unfolded),
    /// a Content-Length that matches the body, the body. Equivalent to the input per RFC 3261.
    pub fn serialize(&self) -> Bytes {
        let body = self.buf.get(self.body.range()).unwrap_or_default();
        let mut out = Vec::with_capacity(self.buf.len() + 24);
        out.extend_from_slice(self.text(self.line).as_bytes());
        out.extend_from_slice(b"\r\n");
        for h in self
            .headers()
            .filter(|h| *h.name != HeaderName::ContentLength)
        {
            out.extend_from_slice(h.name_as_written.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(h.value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"Content-Length: ");
        out.extend_from_slice(body.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(body);
        Bytes::from(out)
    }
}

/// Lenient split of the start line (RFC 3261 §7.1, §7.2) so that a malformed Request-Line
/// still yields a respondable request; the strict checks come later.
/// Returns the start line, the Request-URI or reason span, and the version span.
fn parse_start_line(line: &str, offset: usize) -> Result<(StartLine, Span, Span), ParseError> {
    let at = |s: &str| offset + (s.as_ptr() as usize - line.as_ptr() as usize);
    let span = |s: &str| Span::new(at(s), at(s) + s.len());
    if line
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
    {
        let bad = || fail("Invalid status line", 400, false);
        let (version, rest) = split_at_byte(line, b' ').ok_or_else(bad)?;
        let (code, reason) = split_at_byte(rest, b' ').unwrap_or((rest, &rest[rest.len()..]));
        let code = match code.len() {
            3 => parse_u32(code).and_then(|c| u16::try_from(c).ok()),
            _ => None,
        }
        .filter(|c| (100..=699).contains(c))
        .ok_or_else(bad)?;
        return Ok((StartLine::Response { code }, span(reason), span(version)));
    }
    let (method, rest) = split_at_byte(line, b' ').unwrap_or((line, &line[line.len()..]));
    if !is_token(method) {
        return Err(fail("Invalid request line", 400, false));
    }
    let (uri, version) = rest.rsplit_once(' ').unwrap_or((rest, &rest[rest.len()..]));
    Ok((
        StartLine::Request {
            method: Method::from_token(method),
        },
        span(uri),
        span(version),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Message, ParseError> {
        Message::parse(Bytes::copy_from_slice(s.as_bytes()), &Limits::default())
    }

    fn reason(s: &str) -> String {
        parse(s).unwrap_err().reason
    }

    const PUBLISH: &str = "PUBLISH sip:alice@example.com SIP/2.0\r\n\
        Via: SIP/2.0/TCP [2001:db8::10]:5070;branch=z9hG4bK776;rport\r\n\
        Max-Forwards: 70\r\n\
        To: <sip:alice@example.com>\r\n\
        From: \"Alice \\\"A\\\" Ł\" <sip:alice@example.com>;tag=1928301774\r\n\
        Call-ID: a84b4c76e66710@pc33.example.com\r\n\
        CSeq: 314159 PUBLISH\r\n\
        Event: presence\r\n\
        Expires: 3600\r\n\
        Content-Type: application/pidf+xml\r\n\
        Content-Length: 5\r\n\
        \r\n\
        <x/>\n";

    #[test]
    fn parses_a_publish() {
        let m = parse(PUBLISH).unwrap();
        assert_eq!(m.method(), Some(&Method::Publish));
        assert_eq!(m.request_uri(), Some("sip:alice@example.com"));
        assert_eq!(m.call_id().unwrap(), "a84b4c76e66710@pc33.example.com");
        assert_eq!(
            m.cseq().unwrap(),
            CSeq {
                seq: 314159,
                method: Method::Publish
            }
        );
        let from = m.from_header().unwrap();
        assert_eq!(from.display_name.as_deref(), Some("Alice \"A\" Ł"));
        assert_eq!(from.tag(), Some("1928301774"));
        let via = m.top_via().unwrap();
        assert_eq!(via.host, crate::Host::Ipv6("2001:db8::10".parse().unwrap()));
        assert_eq!(via.sent_by(), "[2001:db8::10]:5070");
        assert_eq!(via.branch(), Some("z9hG4bK776"));
        assert_eq!(m.u32_header(&HeaderName::Expires).unwrap(), Some(3600));
        assert_eq!(m.event().unwrap().unwrap().package, "presence");
        assert!(m
            .content_type()
            .unwrap()
            .unwrap()
            .is("application", "PIDF+XML"));
        assert_eq!(&m.body()[..], b"<x/>\n");
        assert_eq!(m.headers().count(), 10);
    }

    #[test]
    fn compact_forms_and_case() {
        let m = parse(
            "NOTIFY sip:w@h SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\nt: <sip:w@h>;tag=9\r\n\
             f: <sip:p@h>;tag=8\r\ni: abc\r\nCSEQ: 2 NOTIFY\r\no: presence;id=4\r\nu: presence, dialog\r\n\
             k: eventlist\r\nm: <sip:p@10.0.0.1>\r\nc: text/plain\r\nl: 2\r\ny: sig\r\nX-Foo: bar\r\n\r\nhi",
        )
        .unwrap();
        assert_eq!(m.call_id().unwrap(), "abc");
        assert_eq!(m.event().unwrap().unwrap().id, Some("4"));
        assert!(m.has_token(&HeaderName::AllowEvents, "DIALOG"));
        assert!(m.has_token(&HeaderName::Supported, "eventlist"));
        assert_eq!(m.other_header("x-foo"), Some("bar"));
        assert_eq!(m.other_header("Identity"), None);
        assert_eq!(m.other_header("y"), Some("sig"));
        assert_eq!(m.other_header("call-id"), Some("abc"));
        let names: Vec<_> = m.headers().map(|h| h.name_as_written).collect();
        assert_eq!(names[0], "v");
        assert_eq!(&m.body()[..], b"hi");
        for (wire, name) in [
            ("I", HeaderName::CallId),
            ("x", HeaderName::SessionExpires),
            ("r", HeaderName::ReferTo),
            ("www-authenticate", HeaderName::WwwAuthenticate),
            ("sip-etag", HeaderName::SipETag),
            ("b", HeaderName::Other),
        ] {
            assert_eq!(HeaderName::from_wire(wire), name, "{wire}");
        }
        assert_eq!(
            Method::from_token("invite"),
            Method::Extension("invite".into())
        );
    }

    /// RFC 4475 §3.1.1.1 (wsinv), abridged: folding, whitespace around colons, `=`, `/` and `;`.
    #[test]
    fn whitespace_and_folding() {
        let m = parse(
            "INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0\r\n\
             TO :\r\n sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n\r\n\
             from   : \"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8\r\n\
             MaX-fOrWaRdS: 0068\r\n\
             Call-ID: wsinv.ndaksdj@192.0.2.1\r\n\
             Content-Length   : 0\r\n\
             cseq: 0009\r\n  INVITE\r\n\
             Via  : SIP  /   2.0\r\n  /UDP\r\n    192.0.2.2;branch=390skdjuw\r\n\
             s :\r\n\
             NewFangledHeader:   newfangled value\r\n continued newfangled value\r\n\
             UnknownHeaderWithUnusualValue: ;;,,;;,;\r\n\
             Route:\r\n <sip:services.example.com;lr;unknownwith=value;unknown-no-value>\r\n\
             v:  SIP  / 2.0  / TCP     spindle.example.com   ;\r\n  branch  =   z9hG4bK9ikj8  ,\r\n \
             SIP  /    2.0   / UDP  192.168.255.111   ; branch=\r\n z9hG4bK30239\r\n\
             m:\"Quoted string \\\"\\\"\" <sip:jdrosen@example.com> ; newparam =\r\n      newvalue ;\r\n  \
             secondparam ; q = 0.33\r\n\r\n",
        )
        .unwrap();
        assert_eq!(m.to_header().unwrap().tag(), Some("1918181833n"));
        let from = m.from_header().unwrap();
        assert_eq!(from.display_name.as_deref(), Some("J Rosenberg \\\""));
        assert_eq!(from.tag(), Some("98asjd8"));
        assert_eq!(m.cseq().unwrap().seq, 9);
        assert_eq!(m.u32_header(&HeaderName::MaxForwards).unwrap(), Some(68));
        let vias = m.vias().unwrap();
        assert_eq!(vias.len(), 3);
        assert_eq!(vias[0].transport, "UDP");
        assert_eq!(vias[1].host_text, "spindle.example.com");
        assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));
        assert_eq!(
            m.other_header("newfangledheader"),
            Some("newfangled value   continued newfangled value")
        );
        assert_eq!(m.header(&HeaderName::Subject), Some(""));
        let contacts = m.contacts().unwrap();
        let crate::ContactValue::Addr(c) = &contacts[0] else {
            panic!("star")
        };
        assert_eq!(c.display_name.as_deref(), Some("Quoted string \"\""));
        assert_eq!(c.params.get("q"), Some(Some("0.33")));
        assert_eq!(c.params.get("newparam"), Some(Some("newvalue")));
        assert_eq!(
            m.name_addrs(&HeaderName::Route).unwrap()[0].uri.host_text,
            "services.example.com"
        );
        // Unfolding keeps offsets, and serialize round-trips to an equivalent message.
        let again = Message::parse(m.serialize(), &Limits::default()).unwrap();
        assert_eq!(again.vias().unwrap().len(), 3);
        assert_eq!(again.header(&HeaderName::CSeq), Some("0009    INVITE"));
    }

    #[test]
    fn multi_value_splitting() {
        let m = parse(
            "OPTIONS sip:x@h SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b\r\nVia: SIP/2.0/TCP c\r\n\
             To: <sip:x@h>\r\nFrom: <sip:y@h>;tag=1\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\
             Contact: \"a, b\" <sip:a,b@h;p=1>;q=0.5, sip:b@h;expires=60\r\n\
             WWW-Authenticate: Digest realm=\"a,b\", nonce=\"n\"\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        let vias: Vec<_> = m.header_values(&HeaderName::Via).collect();
        assert_eq!(
            vias,
            [
                "SIP/2.0/UDP a;branch=z9hG4bK1",
                "SIP/2.0/UDP b",
                "SIP/2.0/TCP c"
            ]
        );
        assert_eq!(m.header_values(&HeaderName::Contact).count(), 2);
        assert_eq!(m.header_values(&HeaderName::WwwAuthenticate).count(), 1);
        let contacts = m.contacts().unwrap();
        let crate::ContactValue::Addr(b) = &contacts[1] else {
            panic!("star")
        };
        assert_eq!(b.params.get("expires"), Some(Some("60")));
        assert_eq!(b.uri.params.raw, "");
    }

    #[test]
    fn udp_body_rules() {
        let base = "MESSAGE sip:x@h SIP/2.0\r\nVia: SIP/2.0/UDP a\r\nTo: <sip:x@h>\r\nFrom: <sip:y@h>;tag=1\r\n\
                    Call-ID: c\r\nCSeq: 1 MESSAGE\r\n";
        assert_eq!(
            &parse(&format!("{base}\r\nhello")).unwrap().body()[..],
            b"hello"
        );
        assert_eq!(
            &parse(&format!("{base}Content-Length: 2\r\n\r\nhello"))
                .unwrap()
                .body()[..],
            b"he"
        );
        assert_eq!(
            reason(&format!("{base}Content-Length: 9999\r\n\r\nhello")),
            "Content-Length larger than body"
        );
        assert_eq!(
            reason(&format!("{base}Content-Length: -999\r\n\r\nhello")),
            "Invalid Content-Length"
        );
        assert_eq!(
            reason(&format!("{base}l: 5\r\nContent-Length: 5\r\n\r\nhello")),
            "Multiple Content-Length headers"
        );
        assert_eq!(reason(base), "Missing blank line after headers");
        // Two requests in one datagram (RFC 4475 dblreq): the second is ignored.
        let m = parse(&format!(
            "{base}Content-Length: 0\r\n\r\n{base}Content-Length: 0\r\n\r\n"
        ))
        .unwrap();
        assert!(m.body().is_empty());
        // Leading CRLFs are skipped (RFC 3261 §7.5).
        assert!(parse(&format!("\r\n\r\n{base}\r\n")).is_ok());
    }

    #[test]
    fn semantic_errors_have_precise_reasons() {
        let ok = "INVITE sip:x@h SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nTo: <sip:x@h>\r\n\
                  From: <sip:y@h>;tag=1\r\nCall-ID: c@h\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n\r\n";
        assert!(parse(ok).is_ok());
        let cases = [
            (
                "Via: SIP/2.0/UDP a;branch=z9hG4bK1\r\n",
                "",
                "Missing Via header",
            ),
            ("Call-ID: c@h\r\n", "", "Missing Call-ID header"),
            (
                "CSeq: 1 INVITE",
                "CSeq: 1 OPTIONS",
                "CSeq method does not match request method",
            ),
            (
                "CSeq: 1 INVITE",
                "CSeq: 36893291588 INVITE",
                "Invalid CSeq header",
            ),
            ("CSeq: 1 INVITE", "CSeq: 1INVITE", "Invalid CSeq header"),
            (
                "Max-Forwards: 70",
                "Max-Forwards: 300",
                "Invalid Max-Forwards",
            ),
            (
                "From: <sip:y@h>;tag=1",
                "From: Bell, Alexander <sip:y@h>;tag=1",
                "Invalid From header",
            ),
            (
                "To: <sip:x@h>",
                "To: \"Mr. J. User <sip:x@h>",
                "Invalid To header",
            ),
            (
                "To: <sip:x@h>",
                "To: \"Watson\" < sip:x@h >",
                "Invalid To header",
            ),
            (
                "Via: SIP/2.0/UDP a;branch=z9hG4bK1",
                "Via: SIP/2.0/UDP 192.0.2.15;;,;,,",
                "Invalid Via header",
            ),
            (
                "Call-ID: c@h\r\n",
                "Call-ID: c@h\r\nExpires: 10000000000000\r\n",
                "Invalid Expires header",
            ),
            (
                "Call-ID: c@h\r\n",
                "Call-ID: c@h\r\nCall-ID: d@h\r\n",
                "Multiple Call-ID headers",
            ),
            (
                "INVITE sip:x@h SIP/2.0",
                "INVITE <sip:x@h> SIP/2.0",
                "Invalid Request-URI",
            ),
            (
                "INVITE sip:x@h SIP/2.0",
                "INVITE sip:x@h; lr SIP/2.0",
                "Invalid Request-URI",
            ),
            (
                "INVITE sip:x@h SIP/2.0",
                "INVITE  sip:x@h  SIP/2.0",
                "Invalid Request-URI",
            ),
            (
                "INVITE sip:x@h SIP/2.0",
                "INVITE sip:x@h SIP/2.0  ",
                "Invalid request line",
            ),
            (
                "INVITE sip:x@h SIP/2.0",
                "INVITE sip:x@h?Route=%3Csip:h%3E SIP/2.0",
                "Invalid Request-URI",
            ),
        ];
        for (from, to, expected) in cases {
            let msg = ok.replacen(from, to, 1);
            let e = parse(&msg).unwrap_err();
            assert_eq!(e.reason, expected, "{msg}");
            assert_eq!(e.status, 400);
            assert!(e.respondable);
            // A respondable error always leaves a message a 400 can be built from.
            let m = Message::parse_headers_only(Bytes::from(msg), &Limits::default()).unwrap();
            assert!(m.is_request());
        }
        // Optional headers are left to their typed views (RFC 4475 baddate, regbadct).
        let lenient = ok.replacen(
            "Call-ID: c@h\r\n",
            "Call-ID: c@h\r\nDate: Fri, 01 Jan 2010 16:00:00 EST\r\nContact: sip:u@h?Route=%3Csip:h%3E\r\n",
            1,
        );
        let m = parse(&lenient).unwrap();
        assert_eq!(m.contacts().unwrap_err().0, "Invalid Contact header");
    }

    #[test]
    fn versions_and_schemes() {
        let req = |line: &str| {
            format!("{line}\r\nVia: SIP/2.0/UDP a\r\nTo: <sip:x@h>\r\nFrom: <sip:y@h>;tag=1\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n")
        };
        let e = parse(&req("OPTIONS sip:t.watson@example.org SIP/7.0")).unwrap_err();
        assert_eq!((e.status, e.respondable), (505, true));
        // RFC 4475 unkscm, novelsc: well formed, answered with 416.
        for line in [
            "OPTIONS nobodyKnowsThisScheme:totallyopaquecontent SIP/2.0",
            "OPTIONS soap.beep://192.0.2.103:3002 SIP/2.0",
        ] {
            let e = parse(&req(line)).unwrap_err();
            assert_eq!(
                (e.reason.as_str(), e.status, e.respondable),
                ("Unsupported URI Scheme", 416, true)
            );
            assert!(
                Message::parse_headers_only(Bytes::from(req(line)), &Limits::default()).is_ok()
            );
        }
        assert!(parse(&req("OPTIONS tel:+1-201-555-0123 SIP/2.0")).is_ok());
        assert!(parse(
            &req("SUBSCRIBE pres:alice@example.com SIP/2.0").replace("1 OPTIONS", "1 SUBSCRIBE")
        )
        .is_ok());
        assert!(parse(&req(
            "OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0"
        ))
        .is_ok());
        let m = parse(
            &req("!interesting-Method0123456789_*+`.%~'.~ sip:x@h SIP/2.0")
                .replace("1 OPTIONS", "1 !interesting-Method0123456789_*+`.%~'.~"),
        )
        .unwrap();
        assert_eq!(
            m.method().unwrap().as_str(),
            "!interesting-Method0123456789_*+`.%~'.~"
        );
        let e =
            parse(&req("NEWMETHOD sip:x@h SIP/2.0").replace("1 OPTIONS", "1 INVITE")).unwrap_err();
        assert_eq!(e.reason, "CSeq method does not match request method");
    }

    #[test]
    fn responses() {
        let resp = |line: &str| {
            format!("{line}\r\nVia: SIP/2.0/UDP a\r\nTo: <sip:x@h>;tag=2\r\nFrom: <sip:y@h>;tag=1\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n")
        };
        let m = parse(&resp(
            "SIP/2.0 200 = 2**3 * 5**2 но сто девяносто девять - простое",
        ))
        .unwrap();
        assert_eq!(m.status(), Some(200));
        assert!(m.reason().unwrap().ends_with("простое"));
        let m = parse(&resp("SIP/2.0 100 ")).unwrap();
        assert_eq!(m.reason(), Some(""));
        assert_eq!(m.request_uri(), None);
        for bad in [
            "SIP/2.0 4294967301 better not break the receiver",
            "SIP/2.0 099 x",
            "SIP/2.0 700 x",
            "SIP/2.0 20 x",
        ] {
            let e = parse(&resp(bad)).unwrap_err();
            assert!(!e.respondable, "{bad}");
        }
        let e = parse(&resp("SIP/2.0 503 x").replace("CSeq: 1", "CSeq: 9292394834772304023312"))
            .unwrap_err();
        assert_eq!(
            (e.reason.as_str(), e.respondable),
            ("Invalid CSeq header", false)
        );
    }

    #[test]
    fn garbage_and_encoding() {
        for g in [
            "",
            "\r\n",
            "garbage",
            "INVITE sip:x@h SIP/2.0\r\nno colon here\r\n\r\n",
            "\u{1}\u{2}\r\n\r\n",
            " INVITE x\r\n\r\n",
        ] {
            let e = parse(g).unwrap_err();
            assert!(!e.respondable, "{g:?}");
        }
        let mut bytes = b"OPTIONS sip:x@h SIP/2.0\r\nSubject: ".to_vec();
        bytes.extend_from_slice(&[0xff, 0xfe]);
        bytes.extend_from_slice(b"\r\n\r\n");
        let e = Message::parse(Bytes::from(bytes), &Limits::default()).unwrap_err();
        assert_eq!(
            (e.reason.as_str(), e.status),
            ("Invalid UTF-8 in header", 400)
        );
        // The body is raw bytes.
        let mut bytes = PUBLISH.replace("<x/>\n", "").into_bytes();
        bytes.extend_from_slice(&[0, 0xff, 1, 2, 3]);
        assert_eq!(
            Message::parse(Bytes::from(bytes), &Limits::default())
                .unwrap()
                .body()
                .len(),
            5
        );
    }

    #[test]
    fn limits() {
        let small = Limits {
            max_header_bytes: 200,
            max_headers: 5,
            max_body_bytes: 4,
        };
        let e = Message::parse(Bytes::from(PUBLISH), &small).unwrap_err();
        assert_eq!((e.status, e.respondable), (413, false));
        let few = Limits {
            max_headers: 5,
            ..Limits::default()
        };
        let e = Message::parse(Bytes::from(PUBLISH), &few).unwrap_err();
        assert_eq!(
            (e.reason.as_str(), e.status),
            ("Too many header fields", 413)
        );
        let tiny_body = Limits {
            max_body_bytes: 4,
            ..Limits::default()
        };
        let e = Message::parse(Bytes::from(PUBLISH), &tiny_body).unwrap_err();
        assert_eq!(
            (e.reason.as_str(), e.status, e.respondable),
            ("Body too large", 413, true)
        );
        assert!(Message::parse_headers_only(Bytes::from(PUBLISH), &tiny_body).is_ok());
    }

    #[test]
    fn response_addresses_are_checked_when_read() {
        let response = "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP h;branch=z9hG4bKr1\r\n\
                        From: <sip:a@h;tag=1\r\nTo: \"unterminated <sip:b@h>;tag=2\r\n\
                        Call-ID: c\r\nCSeq: 7 NOTIFY\r\nContent-Length: 0\r\n\r\n";
        let m = parse(response).unwrap();
        assert_eq!(m.top_via_branch(), Some("z9hG4bKr1"));
        assert_eq!(m.cseq().unwrap().seq, 7);
        assert_eq!(m.from_header().unwrap_err().0, "Invalid From header");
        assert_eq!(m.to_header().unwrap_err().0, "Invalid To header");
        let bad_via = response.replace("SIP/2.0/TCP h;", "SIP/2.0/TCP [h;");
        assert!(parse(&bad_via).unwrap().top_via().is_err());
        let no_via = response.replace("Via: SIP/2.0/TCP h;branch=z9hG4bKr1\r\n", "");
        assert_eq!(parse(&no_via).unwrap_err().reason, "Missing Via header");
        // The same headers in a request are refused at once.
        let request = response.replace("SIP/2.0 200 OK", "NOTIFY sip:b@h SIP/2.0");
        let e = parse(&request).unwrap_err();
        assert_eq!((e.reason.as_str(), e.status), ("Invalid From header", 400));
    }

    #[test]
    fn a_requests_top_via_kept_from_parsing_is_the_via_read_afresh() {
        for via in [
            "Via: SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bKa;rport",
            "v: SIP/2.0/TCP host.example.com ;received=198.51.100.1, SIP/2.0/UDP h2;branch=b",
            "Via: SIP/2.0/TLS [2001:db8::1]:5061;branch=z9hG4bKc;x=\"q;y\"",
            "Via: SIP/2.0/UDP folded.example.com\r\n ;branch=z9hG4bKd",
            "Via: SIP/2.0/WS h.invalid",
        ] {
            let m = parse(&format!(
                "OPTIONS sip:b@h SIP/2.0\r\n{via}\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\n\
                 Call-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            ))
            .unwrap();
            let afresh = Via::parse(m.header_values(&HeaderName::Via).next().unwrap()).unwrap();
            assert_eq!(m.top_via().unwrap(), afresh, "{via}");
            assert_eq!(m.top_via().unwrap().sent_by(), afresh.sent_by(), "{via}");
        }
    }

    #[test]
    fn a_requests_uri_kept_from_parsing_is_the_uri_read_afresh() {
        for uri in [
            "sip:alice@example.com",
            "sips:%61lice:pw@[2001:db8::1]:5061;transport=tcp;lr",
            "sip:192.0.2.7:5070;user=phone",
            "tel:+15551234567;phone-context=example.com",
            "pres:bob@example.org",
        ] {
            let m = parse(&format!(
                "OPTIONS {uri} SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKa\r\n\
                 From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n"
            ))
            .unwrap();
            let kept = m.parsed_request_uri().unwrap();
            assert_eq!(kept, crate::Uri::parse(uri).unwrap(), "{uri}");
            assert_eq!(
                kept.aor_key(),
                crate::Uri::parse(uri).unwrap().aor_key(),
                "{uri}"
            );
        }
        let response = parse(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKa\r\nFrom: <sip:a@h>;tag=1\r\n\
             To: <sip:b@h>;tag=2\r\nCall-ID: c\r\nCSeq: 1 NOTIFY\r\n\r\n",
        )
        .unwrap();
        assert_eq!(response.parsed_request_uri(), None);
    }

    #[test]
    fn a_requests_from_and_to_kept_from_parsing_are_the_addresses_read_afresh() {
        for (from, to) in [
            ("From: \"Alice\" <sip:alice@example.com>;tag=1", "To: <sip:bob@example.com>"),
            (
                "f: \"A \\\"quoted\\\" name\" <sips:a:pw@[2001:db8::1]:5061;transport=tcp?h=v>;tag=x",
                "t: Bob Smith <sip:%62ob@192.0.2.7;user=phone>;tag=y;ext=\"q\"",
            ),
            ("From: sip:carol@example.com;tag=2", "To: tel:+15551234567"),
            (
                "From: <sip:dave@example.com>\r\n ;tag=folded",
                "To: \"\" <urn:service:sos>",
            ),
        ] {
            let m = parse(&format!(
                "OPTIONS sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKa\r\n{from}\r\n{to}\r\n\
                 Call-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            ))
            .unwrap();
            for (name, kept) in [
                (HeaderName::From, m.from_header().unwrap()),
                (HeaderName::To, m.to_header().unwrap()),
            ] {
                let afresh = NameAddr::parse(m.header(&name).unwrap()).unwrap();
                assert_eq!(kept, afresh, "{from} / {to}");
                assert!(kept.text.as_ptr() == afresh.text.as_ptr(), "spans into the message");
            }
        }
        // A response's addresses are not checked when parsed; read, they parse afresh.
        let m = parse(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKa\r\nFrom: <sip:a@h>;tag=1\r\n\
             To: \"B\" <sip:b@h>;tag=2\r\nCall-ID: c\r\nCSeq: 1 NOTIFY\r\n\r\n",
        )
        .unwrap();
        assert_eq!(m.to_header().unwrap().tag(), Some("2"));
        assert_eq!(m.to_header().unwrap().display_name.as_deref(), Some("B"));
    }

    #[test]
    fn top_via_branch_agrees_with_the_parsed_via() {
        for via in [
            "v: SIP/2.0/TCP 192.0.2.1:5060 ; rport ; BRANCH = z9hG4bKa1 , SIP/2.0/UDP h;branch=b2",
            "Via: SIP/2.0/UDP [2001:db8::1]:5060;received=192.0.2.9;branch=z9hG4bKb1;x=\"a;branch=no\"",
            "Via: SIP/2.0/TLS h.example.com;x=\"q;branch=no\";branch=z9hG4bKc1",
            "Via: SIP/2.0/UDP h.example.com;rport",
            "Via: SIP/2.0/UDP h.example.com;branch=z9hG4bKd1;rport",
            "Via: SIP/2.0/UDP h.example.com;Branch=z9hG4bKe1",
            "Via: SIP/2.0/UDP h.example.com;branch=z9hG4bKf1 ;rport",
            "Via: SIP/2.0/UDP h.example.com;branch=z9hG4bKh1, SIP/2.0/UDP h2;branch=h2",
            "Via: ,SIP/2.0/UDP h.example.com;branch=z9hG4bKi1",
            "Via: SIP/2.0/UDP h.example.com, SIP/2.0/UDP h2;branch=z9hG4bKj1",
            "Via: SIP/2.0/UDP h.example.com\r\nVia: SIP/2.0/UDP h2;branch=z9hG4bKk1",
            "Via: SIP/2.0/UDP h.example.com;branch=z9hG4bKl1;rport, SIP/2.0/UDP h2",
        ] {
            let m = parse(&format!(
                "SIP/2.0 200 OK\r\n{via}\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\n\
                 Call-ID: c\r\nCSeq: 1 NOTIFY\r\nContent-Length: 0\r\n\r\n"
            ))
            .unwrap();
            assert_eq!(m.top_via_branch(), m.top_via().unwrap().branch(), "{via}");
        }
    }

    #[test]
    fn inv2543_and_intmeth_style_headers_parse() {
        let m = parse(
            "INVITE sip:UserB@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.15\r\n\
             From: <sip:UserA@example.com>;tag=1\r\nTo: sip:UserB@example.com\r\nCall-ID: inv2543.1717@192.0.2.15\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: \"BEL:\\\u{7} NUL:\\\u{0} DEL:\\\u{7f}\" <sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com>\r\n\r\n",
        )
        .unwrap();
        assert_eq!(m.top_via().unwrap().branch(), None);
        assert_eq!(m.top_via_branch(), None);
        let c = m.contacts().unwrap();
        let crate::ContactValue::Addr(c) = &c[0] else {
            panic!("star")
        };
        assert_eq!(
            c.display_name.as_deref(),
            Some("BEL:\u{7} NUL:\u{0} DEL:\u{7f}")
        );
        assert_eq!(
            c.uri.password,
            Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
        );
    }

    /// Mutated messages (bytes replaced by grammar-significant ones) never panic, whatever
    /// view is asked for.
    #[test]
    fn mutations_never_panic() {
        const ALPHABET: &[u8] = b" \t\r\n:;,<>\"\\@[]?=/%0aZ\xff\xc3";
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as usize
        };
        for _ in 0..20_000 {
            let mut bytes = PUBLISH.as_bytes().to_vec();
            for _ in 0..1 + next() % 4 {
                let at = next() % bytes.len();
                bytes[at] = ALPHABET[next() % ALPHABET.len()];
            }
            if next() % 4 == 0 {
                bytes.truncate(next() % (bytes.len() + 1));
            }
            let buf = Bytes::from(bytes);
            let _ = Message::parse(buf.clone(), &Limits::default());
            let Ok(m) = Message::parse_headers_only(buf.clone(), &Limits::default()) else {
                continue;
            };
            let _ = (
                m.call_id(),
                m.cseq(),
                m.from_header(),
                m.to_header(),
                m.vias(),
                m.contacts(),
            );
            let _ = (
                m.event(),
                m.subscription_state(),
                m.content_type(),
                m.serialize(),
            );
            let _ = crate::response_to(&m, 400, "Bad Request", Some("t")).finish(None, b"");
            let mut d = crate::StreamDecoder::new(Limits::default());
            d.push(&buf);
            while let Ok(Some(_)) = d.next_item() {}
        }
    }
}
