//! What registration, publication and subscription share: request construction (RFC 3261
//! §8.1.1 mandatory headers, §12.2.1.1 in-dialog requests over a loose-routing route set),
//! response reading (Expires, Min-Expires of RFC 3261 §10.3 and §20.23, Retry-After of
//! §20.33), matching answers to the one request in flight, the retries every role makes
//! alike (a challenge answered, a 423's Min-Expires granted), checks of the caller's
//! parameters, and the timing rules: when to refresh, and how long to back off after a
//! failure (RFC 5626 §4.5).

use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::Rng;
use sip_message::{quote, HeaderName, Message, MessageWriter, Method, Uri};

use crate::auth::Auth;
use crate::{Config, Credentials, Event, Flow, Identity, UaError};

/// Status reported when a request got no final response (Timer F, RFC 3261 §8.1.3.1).
pub(crate) const TIMEOUT_STATUS: u16 = 408;
/// Status reported when the request could not be sent or its transport failed (RFC 3261
/// §8.1.3.1 treats a transport error like a 503).
pub(crate) const TRANSPORT_STATUS: u16 = 503;

/// What one call into a role needs besides the role itself.
pub(crate) struct Ctx<'a> {
    pub config: &'a Config,
    pub rng: &'a mut StdRng,
    pub now: Instant,
}

/// What a role asks the agent to do.
#[derive(Debug)]
pub(crate) enum Step {
    /// Start a client transaction for this request (CSeq number `cseq`) on the role's flow.
    Send {
        cseq: u32,
        request: Bytes,
    },
    /// Send a CRLFCRLF keepalive on the role's flow (RFC 5626 §4.4.1), outside any transaction.
    Keepalive,
    Event(Event),
}

/// The dialog-forming headers of a request.
pub(crate) struct Head<'a> {
    pub method: Method,
    pub request_uri: &'a str,
    /// Via value without branch.
    pub via: &'a str,
    /// From value with our tag.
    pub from: &'a str,
    /// To value (with the remote tag inside a dialog).
    pub to: &'a str,
    pub call_id: &'a str,
    pub cseq: u32,
    /// Route set, each value sent as one Route header in order (loose routing).
    pub routes: &'a [String],
}

/// Start a request: Via with a fresh branch, Max-Forwards, Route, From, To, Call-ID, CSeq
/// and User-Agent. The role adds its own headers and finishes the message.
pub(crate) fn start(head: &Head<'_>, ctx: &mut Ctx<'_>) -> MessageWriter {
    let mut w = MessageWriter::request(&head.method, head.request_uri);
    w.header_fmt(
        "Via",
        format_args!("{};branch=z9hG4bK{}", head.via, token(ctx.rng)),
    )
    .header("Max-Forwards", "70");
    for route in head.routes {
        w.header("Route", route);
    }
    w.header("From", head.from)
        .header("To", head.to)
        .header("Call-ID", head.call_id)
        .header_fmt(
            "CSeq",
            format_args!("{} {}", head.cseq, head.method.as_str()),
        );
    if let Some(agent) = &ctx.config.user_agent {
        w.header("User-Agent", agent);
    }
    w
}

/// 64 random bits in hex: tags, Call-IDs, branches and cnonces must be unguessable so
/// that a third party cannot hijack a dialog or predict a transaction.
pub(crate) fn token(rng: &mut StdRng) -> String {
    format!("{:016x}", rng.gen::<u64>())
}

/// `"Display Name" <uri>` or `<uri>`.
pub(crate) fn name_addr(display_name: Option<&str>, uri: &str) -> String {
    match display_name {
        Some(name) => format!("{} <{uri}>", quote(name)),
        None => format!("<{uri}>"),
    }
}

/// When to refresh something that lives `expires` seconds: at the later of half-time and one
/// minute before the end, so short lifetimes keep a margin and long ones are not refreshed
/// needlessly early; never sooner than one second.
pub(crate) fn refresh_delay(expires: u32) -> Duration {
    let seconds = (expires / 2).max(expires.saturating_sub(60)).max(1);
    Duration::from_secs(u64::from(seconds))
}

/// How long to wait before retrying after the `failures`-th consecutive failure: the
/// response's Retry-After when it has one (capped), else RFC 5626 §4.5's back-off, a random
/// time between half and all of `min(max, base * 2^(failures-1))`, so that many clients
/// failing together do not retry together.
fn retry_delay(response: Option<&Message>, failures: u32, ctx: &mut Ctx<'_>) -> Duration {
    if let Some(seconds) = response.and_then(Message::retry_after) {
        return Duration::from_secs(u64::from(seconds)).min(ctx.config.max_retry_after);
    }
    let doublings = failures.saturating_sub(1).min(20);
    let ceiling = ctx
        .config
        .retry_base
        .saturating_mul(1 << doublings)
        .min(ctx.config.retry_max);
    let millis = u64::try_from(ceiling.as_millis())
        .unwrap_or(u64::MAX)
        .max(2);
    Duration::from_millis(ctx.rng.gen_range(millis / 2..=millis))
}

/// One more consecutive failure: counted in `failures`, and the time to retry at, after
/// [`retry_delay`].
pub(crate) fn next_retry(
    failures: &mut u32,
    response: Option<&Message>,
    ctx: &mut Ctx<'_>,
) -> Instant {
    *failures = failures.saturating_add(1);
    ctx.now + retry_delay(response, *failures, ctx)
}

/// The request in flight of a role: its CSeq number and what kind of request it is.
pub(crate) type Awaiting<K> = Option<(u32, K)>;

/// When `response` is the final response to the request in flight: its status and the kind
/// of that request, which is then no longer in flight. None for anything else (a
/// provisional response, a late answer to an earlier request, an unparsable one).
pub(crate) fn final_response<K: Copy>(
    response: &Message,
    awaiting: &mut Awaiting<K>,
) -> Option<(u16, K)> {
    let (Some(status), Ok(cseq)) = (response.status(), response.cseq()) else {
        return None;
    };
    let (awaited, kind) = (*awaiting)?;
    if cseq.seq != awaited || status < 200 {
        return None;
    }
    *awaiting = None;
    Some((status, kind))
}

/// When the request with `cseq` is the one in flight (it got no response: timeout or
/// transport failure): its kind, and it is no longer in flight.
pub(crate) fn take_awaited<K: Copy>(awaiting: &mut Awaiting<K>, cseq: u32) -> Option<K> {
    match *awaiting {
        Some((awaited, kind)) if awaited == cseq => {
            *awaiting = None;
            Some(kind)
        }
        _ => None,
    }
}

/// A role, as [`retry_as_asked`] sees it.
pub(crate) trait Retries {
    /// The role's digest state, the credentials it answers challenges with, and the
    /// lifetime it asks for.
    fn retry_state(&mut self) -> (&mut Auth, Option<&Credentials>, &mut u32);
}

/// Whether a failure response is one every role answers by sending the same request again:
/// a 401 or 407 whose challenge can be answered (RFC 3261 §22.2, §22.3), or, unless the
/// request `removes` what the role made (asking for no lifetime), a 423 whose Min-Expires
/// can be granted (RFC 3261 §10.2.8, RFC 3903 §4.5, RFC 6665 §4.1.2.1), which then raises
/// the role's lifetime.
pub(crate) fn retry_as_asked(
    role: &mut impl Retries,
    response: &Message,
    removes: bool,
    config: &Config,
) -> bool {
    let (auth, credentials, expires) = role.retry_state();
    match response.status() {
        Some(401 | 407) => auth.on_challenge(response, credentials).is_ok(),
        Some(423) if !removes => match raised_expires(response, *expires, config) {
            Some(raised) => {
                *expires = raised;
                true
            }
            None => false,
        },
        _ => false,
    }
}

/// The Expires header of a response, None when absent or malformed.
pub(crate) fn expires_header(response: &Message) -> Option<u32> {
    response.u32_header(&HeaderName::Expires).ok().flatten()
}

/// The lifetime to ask for after a 423 (RFC 3261 §10.2.8, RFC 3903 §4.5, RFC 6665
/// §4.1.2.1): the Min-Expires value, when it is larger than what was refused and within the
/// configured maximum. None: the 423 cannot be satisfied and counts as a failure.
fn raised_expires(response: &Message, refused: u32, config: &Config) -> Option<u32> {
    let min = response
        .u32_header(&HeaderName::MinExpires)
        .ok()
        .flatten()?;
    (min > refused && min <= config.max_expires).then_some(min)
}

/// Whether `text` can go into a header value as it is: no control characters, so no CR or
/// LF that would end the header early and let a caller inject others.
pub(crate) fn header_safe(text: &str) -> bool {
    !text.is_empty() && !text.chars().any(|c| c.is_control())
}

/// A URI the caller gave for `what`: it must parse and be safe to put in a header.
pub(crate) fn check_uri(text: &str, what: &'static str) -> Result<(), UaError> {
    if header_safe(text) && Uri::parse(text).is_ok() {
        Ok(())
    } else {
        Err(UaError::InvalidParameter(what))
    }
}

/// A token-like header value the caller gave for `what` (event package, content type...).
pub(crate) fn check_text(text: &str, what: &'static str) -> Result<(), UaError> {
    if header_safe(text) {
        Ok(())
    } else {
        Err(UaError::InvalidParameter(what))
    }
}

/// An identity is usable when its AOR is a SIP URI with a user part (a From needs one, and a
/// registrar is found from its host) and the display name has no control characters.
pub(crate) fn check_identity(identity: &Identity) -> Result<(), UaError> {
    check_uri(&identity.aor, "aor")?;
    let aor = Uri::parse(&identity.aor).map_err(|_| UaError::InvalidParameter("aor"))?;
    if !aor.is_sip() || aor.user.is_none() {
        return Err(UaError::InvalidParameter("aor"));
    }
    if let Some(name) = &identity.display_name {
        check_text(name, "display name")?;
    }
    Ok(())
}

/// A requested lifetime: zero would remove what the request is meant to create.
pub(crate) fn check_expires(expires: u32, config: &Config) -> Result<(), UaError> {
    if expires == 0 || expires > config.max_expires {
        return Err(UaError::InvalidParameter("expires"));
    }
    Ok(())
}

/// A body the caller gave, within [`Config::max_body_bytes`].
pub(crate) fn check_body(body: &[u8], config: &Config) -> Result<(), UaError> {
    if body.len() > config.max_body_bytes {
        return Err(UaError::BodyTooLarge);
    }
    Ok(())
}

/// Mark a role as being removed; refused when it already is.
pub(crate) fn begin_closing(closing: &mut bool) -> Result<(), UaError> {
    if *closing {
        return Err(UaError::Closing);
    }
    *closing = true;
    Ok(())
}

pub(crate) fn check_flow<D>(flow: &Flow<D>) -> Result<(), UaError> {
    check_text(&flow.via, "via")?;
    check_uri(&flow.contact, "contact")
}
