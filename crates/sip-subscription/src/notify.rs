//! Message construction for the notifier: SUBSCRIBE responses (RFC 6665 §4.2.1, RFC 3261
//! §8.2.6) and in-dialog NOTIFY requests (RFC 6665 §4.2.2, §8.2.3; RFC 3261 §12.2.1.1 request
//! construction with loose and strict routing).

use bytes::Bytes;
use rand::RngCore;
use sip_message::{default_reason, response_to, HeaderName, MediaType, Message, Method, Uri};

use crate::{Body, SubState};

/// Everything a NOTIFY needs beyond the dialog.
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

/// The dialog fields a NOTIFY is built from.
pub(crate) struct DialogView<'a> {
    pub call_id: &'a str,
    pub local_uri: &'a str,
    pub remote_uri: &'a str,
    pub remote_target: &'a str,
    pub route_set: &'a [String],
    pub via: &'a str,
    pub contact: &'a str,
}

pub(crate) fn build_notify(dialog: &DialogView<'_>, spec: &NotifySpec<'_>) -> Bytes {
    // RFC 3261 §12.2.1.1: a first route without `lr` is a strict router; it becomes the
    // Request-URI and the remote target goes last in the Route set.
    let strict = dialog.route_set.first().and_then(|first| {
        let na = sip_message::NameAddr::parse(first).ok()?;
        na.uri.param("lr").is_none().then(|| na.uri.text.to_owned())
    });
    let request_uri = strict.as_deref().unwrap_or(dialog.remote_target);
    let mut w = sip_message::MessageWriter::request(&Method::Notify, request_uri);
    w.header_fmt("Via", format_args!("{};branch={}", dialog.via, spec.branch));
    w.header("Max-Forwards", "70");
    let routes = if strict.is_some() {
        dialog.route_set.get(1..).unwrap_or_default()
    } else {
        dialog.route_set
    };
    for route in routes {
        w.header("Route", route);
    }
    if strict.is_some() {
        w.header_fmt("Route", format_args!("<{}>", dialog.remote_target));
    }
    w.header("From", dialog.local_uri)
        .header("To", dialog.remote_uri)
        .header("Call-ID", dialog.call_id)
        .header_fmt("CSeq", format_args!("{} NOTIFY", spec.cseq))
        .header("Contact", dialog.contact);
    match spec.event_id {
        Some(id) => w.header_fmt("Event", format_args!("{};id={}", spec.event, id)),
        None => w.header("Event", spec.event),
    };
    match spec.state {
        SubState::Active => w.header_fmt(
            "Subscription-State",
            format_args!("active;expires={}", spec.expires),
        ),
        SubState::Pending => w.header_fmt(
            "Subscription-State",
            format_args!("pending;expires={}", spec.expires),
        ),
        SubState::Terminated(reason) => match reason.retry_after() {
            Some(secs) => w.header_fmt(
                "Subscription-State",
                format_args!("terminated;reason={};retry-after={}", reason.as_str(), secs),
            ),
            None => w.header_fmt(
                "Subscription-State",
                format_args!("terminated;reason={}", reason.as_str()),
            ),
        },
    };
    if spec.list {
        w.header("Require", "eventlist");
    }
    match spec.body {
        Some(body) => w.finish(Some(&body.content_type), &body.data),
        None => w.finish(None, b""),
    }
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
    while out.len() < len {
        let word = rng.next_u64();
        for i in 0..16 {
            if out.len() == len {
                break;
            }
            let nibble = ((word >> (i * 4)) & 0xf) as u32;
            out.push(char::from_digit(nibble, 16).unwrap_or('0'));
        }
    }
    out
}
