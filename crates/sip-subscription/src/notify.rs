//! Message construction for the notifier: SUBSCRIBE responses (RFC 6665 §4.2.1, RFC 3261
//! §8.2.6) and in-dialog NOTIFY requests (RFC 6665 §4.2.2, §8.2.3; RFC 3261 §12.2.1.1 request
//! construction with loose and strict routing).

use bytes::Bytes;
use rand::RngCore;
use sip_message::{
    default_reason, response_to, HeaderName, Limits, MediaType, Message, Method, Uri,
};

use crate::{Body, SubState};

/// Everything a NOTIFY needs beyond its dialog's [`NotifyHead`].
pub(crate) struct NotifySpec<'a> {
    pub event: &'a str,
    pub event_id: Option<&'a str>,
    pub state: SubState,
    /// Seconds left; ignored for a terminated state.
    pub expires: u64,
    pub list: bool,
    pub body: Option<&'a Body>,
    pub cseq: u32,
    pub branch: &'a str,
}

/// The dialog fields a [`NotifyHead`] is built from.
pub(crate) struct DialogView<'a> {
    pub call_id: &'a str,
    pub local_uri: &'a str,
    pub remote_uri: &'a str,
    pub remote_target: &'a str,
    pub route_set: &'a [String],
    pub via: &'a str,
    pub contact: &'a str,
}

/// Our own NOTIFYs are parsed once per dialog (see `NotifyHead`) and when a caller inspects
/// one; their size was bounded by the SUBSCRIBE and the package's body, not by inbound limits.
pub(crate) const OWN_MESSAGES: Limits = Limits {
    max_header_bytes: usize::MAX,
    max_headers: usize::MAX,
    max_body_bytes: usize::MAX,
};

/// What every NOTIFY of a dialog shares (RFC 3261 §12.2.1.1): the request line, the Via up
/// to its branch, Max-Forwards, the Route set, From, To, Call-ID and Contact. Written once
/// per dialog (again after a target refresh) and copied into each NOTIFY, so the fan-out
/// formats only the CSeq, Event, Subscription-State and body.
#[derive(Debug, Clone)]
pub(crate) struct NotifyHead {
    /// The request line and `Via: <via>;branch=`.
    to_branch: Vec<u8>,
    /// The CRLF ending the Via through the Contact header's CRLF.
    after_branch: Vec<u8>,
}

pub(crate) fn notify_head(dialog: &DialogView<'_>) -> NotifyHead {
    // RFC 3261 §12.2.1.1: a first route without `lr` is a strict router; it becomes the
    // Request-URI and the remote target goes last in the Route set.
    let strict = dialog.route_set.first().and_then(|first| {
        let na = sip_message::NameAddr::parse(first).ok()?;
        na.uri.param("lr").is_none().then(|| na.uri.text.to_owned())
    });
    let request_uri = strict.as_deref().unwrap_or(dialog.remote_target);
    let mut to_branch = Vec::with_capacity(64 + request_uri.len() + dialog.via.len());
    for part in [
        Method::Notify.as_str(),
        " ",
        request_uri,
        " SIP/2.0\r\nVia: ",
        dialog.via,
        ";branch=",
    ] {
        to_branch.extend_from_slice(part.as_bytes());
    }
    let mut after = Vec::with_capacity(256);
    after.extend_from_slice(b"\r\nMax-Forwards: 70\r\n");
    let routes = if strict.is_some() {
        dialog.route_set.get(1..).unwrap_or_default()
    } else {
        dialog.route_set
    };
    for route in routes {
        push_header(&mut after, "Route", route);
    }
    if strict.is_some() {
        push_header(&mut after, "Route", &format!("<{}>", dialog.remote_target));
    }
    push_header(&mut after, "From", dialog.local_uri);
    push_header(&mut after, "To", dialog.remote_uri);
    push_header(&mut after, "Call-ID", dialog.call_id);
    push_header(&mut after, "Contact", dialog.contact);
    NotifyHead {
        to_branch,
        after_branch: after,
    }
}

fn push_header(buf: &mut Vec<u8>, name: &str, value: &str) {
    for part in [name, ": ", value, "\r\n"] {
        buf.extend_from_slice(part.as_bytes());
    }
}

pub(crate) fn build_notify(head: &NotifyHead, spec: &NotifySpec<'_>) -> Bytes {
    let body = spec.body.map_or(&b""[..], |b| &b.data[..]);
    let mut buf = Vec::with_capacity(
        head.to_branch.len() + head.after_branch.len() + spec.branch.len() + 192 + body.len(),
    );
    buf.extend_from_slice(&head.to_branch);
    buf.extend_from_slice(spec.branch.as_bytes());
    buf.extend_from_slice(&head.after_branch);
    // Numbers through itoa: `write!` costs more than the rest of the NOTIFY's assembly.
    let mut number = itoa::Buffer::new();
    buf.extend_from_slice(b"CSeq: ");
    buf.extend_from_slice(number.format(spec.cseq).as_bytes());
    buf.extend_from_slice(b" NOTIFY\r\nEvent: ");
    buf.extend_from_slice(spec.event.as_bytes());
    if let Some(id) = spec.event_id {
        buf.extend_from_slice(b";id=");
        buf.extend_from_slice(id.as_bytes());
    }
    buf.extend_from_slice(b"\r\nSubscription-State: ");
    match spec.state {
        SubState::Active | SubState::Pending => {
            let state = if spec.state == SubState::Active {
                &b"active"[..]
            } else {
                b"pending"
            };
            buf.extend_from_slice(state);
            buf.extend_from_slice(b";expires=");
            buf.extend_from_slice(number.format(spec.expires).as_bytes());
        }
        SubState::Terminated(reason) => {
            buf.extend_from_slice(b"terminated;reason=");
            buf.extend_from_slice(reason.as_str().as_bytes());
            if let Some(secs) = reason.retry_after() {
                buf.extend_from_slice(b";retry-after=");
                buf.extend_from_slice(number.format(secs).as_bytes());
            }
        }
    }
    buf.extend_from_slice(b"\r\n");
    if spec.list {
        push_header(&mut buf, "Require", "eventlist");
    }
    if let Some(body) = spec.body {
        push_header(&mut buf, "Content-Type", &body.content_type);
    }
    buf.extend_from_slice(b"Content-Length: ");
    buf.extend_from_slice(number.format(body.len()).as_bytes());
    buf.extend_from_slice(b"\r\n\r\n");
    buf.extend_from_slice(body);
    Bytes::from(buf)
}

/// A response to `request` with the given extra headers and no body.
pub(crate) fn respond(
    request: &Message,
    code: u16,
    reason: Option<&str>,
    to_tag: &str,
    extra: &[(&str, &str)],
) -> Bytes {
    let reason = reason.unwrap_or_else(|| default_reason(code));
    let mut w = response_to(request, code, reason, Some(to_tag));
    for (name, value) in extra {
        w.header(name, value);
    }
    w.finish(None, b"")
}

/// The SUBSCRIBE's Accept values as written, and whether one of `offered` fits them
/// (`*/*` and `type/*` wildcards included). No Accept at all means the package default
/// (RFC 6665 §7.2.1), so anything fits.
pub(crate) fn negotiate(request: &Message, offered: &[String]) -> (Vec<String>, bool) {
    let accept: Vec<String> = request
        .header_values(&HeaderName::Accept)
        .map(str::to_owned)
        .collect();
    if accept.is_empty() {
        return (accept, true);
    }
    let fits = accept
        .iter()
        .filter_map(|a| MediaType::parse(a).ok())
        .any(|a| {
            offered
                .iter()
                .filter_map(|o| MediaType::parse(o).ok())
                .any(|o| {
                    (a.mtype == "*" || a.mtype.eq_ignore_ascii_case(o.mtype))
                        && (a.subtype == "*" || a.subtype.eq_ignore_ascii_case(o.subtype))
                })
        });
    (accept, fits)
}

/// Counting key for a URI: its AOR when it has one, else the text itself.
pub(crate) fn uri_key(uri: &str) -> String {
    Uri::parse(uri)
        .ok()
        .and_then(|u| u.aor_key())
        .unwrap_or_else(|| uri.to_owned())
}

/// Random token of `len` hex digits (tags, branches): unguessable so that dialogs cannot be
/// hijacked by a third party guessing our tag.
pub(crate) fn token(rng: &mut impl RngCore, len: usize) -> String {
    let mut out = String::with_capacity(len);
    push_token(rng, len, &mut out);
    out
}

/// A Via branch: the RFC 3261 magic cookie and a random token.
pub(crate) fn branch(rng: &mut impl RngCore) -> String {
    let mut out = String::with_capacity(23);
    out.push_str("z9hG4bK");
    push_token(rng, 16, &mut out);
    out
}

fn push_token(rng: &mut impl RngCore, len: usize, out: &mut String) {
    let mut left = len;
    while left > 0 {
        let digits = hex_digits(rng.next_u64());
        let take = left.min(digits.len());
        // ASCII digits: the check is a few word compares, a `char` push per digit is not.
        let text = std::str::from_utf8(digits.get(..take).unwrap_or_default());
        out.push_str(text.unwrap_or_default());
        left -= take;
    }
}

/// The 16 lowercase hex digits of `word`'s bytes, without a `String` of their own.
fn hex_digits(word: u64) -> [u8; 16] {
    let mut digits = [0; 16];
    // 8 bytes always fit 16 digits.
    let _ = hex::encode_to_slice(word.to_le_bytes(), &mut digits);
    digits
}
