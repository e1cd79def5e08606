//! Requests through the proxy: validation (RFC 3261 §16.3), Route and Request-URI processing
//! (§16.4 with the strict-route fix-up, §16.12 loose routing), the loop-detection branch
//! (§16.6 item 8), the forwarded copy (§16.6), the CANCEL of a branch (§9.1, §16.10) and the
//! upstream copy of a response (§16.7 item 9: our Via removed).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use bytes::Bytes;
use sip_message::{HeaderName, Message, MessageWriter, Method, NameAddr, Uri};

use crate::flow::FlowKey;
use crate::{Config, Flow, Listener};

/// Branches built by RFC 3261 elements start with it (§8.1.1.7).
const MAGIC_COOKIE: &str = "z9hG4bK";
/// Hop count given to a request that arrives without Max-Forwards (§16.6 item 3).
const DEFAULT_MAX_FORWARDS: u32 = 70;

/// Why a request is refused before any routing (§16.3): the status, reason phrase and, for
/// 420, the option tags to list in `Unsupported`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub reason: String,
    pub unsupported: Option<String>,
}

impl Rejection {
    fn new(status: u16, reason: impl Into<String>) -> Rejection {
        Rejection {
            status,
            reason: reason.into(),
            unsupported: None,
        }
    }
}

/// A request that passed §16.3, with its route set processed per §16.4.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub(crate) request: Message,
    pub(crate) arrived: Flow,
    /// The Request-URI after the strict-route fix-up.
    pub(crate) request_uri: String,
    /// Route values still to follow, in order: ours removed, and the last one when the
    /// fix-up moved it into the Request-URI.
    pub(crate) routes: Vec<String>,
    /// The two flows named by the token in our Route, when the request follows a route set
    /// we recorded.
    pub(crate) dialog_flows: Option<(Flow, Flow)>,
    pub(crate) followed_our_route: bool,
    /// The Request-URI names this element (e.g. the Contact of our own presence agent).
    pub(crate) request_uri_is_local: bool,
    pub(crate) loop_hash: u64,
    pub(crate) max_forwards: u32,
}

/// Where an [`Inbound`] request goes next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routing<'a> {
    /// No Route is left: the Request-URI names the target (§16.5), for the location service
    /// or the element itself.
    RequestUri,
    /// A Route is left (§16.12 loose routing), or the request follows a dialog's route set
    /// through us: one next hop, `uri`, reached over `flow` when the route set recorded it
    /// (otherwise the caller resolves `uri`, RFC 3263).
    NextHop { uri: &'a str, flow: Option<Flow> },
}

impl Inbound {
    pub fn request(&self) -> &Message {
        &self.request
    }

    pub fn request_uri(&self) -> &str {
        &self.request_uri
    }

    /// Whether the request came with a Route naming this proxy (a dialog's route set, or a
    /// pre-loaded outbound proxy route).
    pub fn followed_our_route(&self) -> bool {
        self.followed_our_route
    }

    /// Whether a Route (or a strict-routed Request-URI) naming us carried a flow token we
    /// signed: the request follows a dialog this proxy record-routed.
    pub fn has_dialog_flows(&self) -> bool {
        self.dialog_flows.is_some()
    }

    /// Whether the request is inside a dialog (its To carries a tag, RFC 3261 §12.2).
    pub fn in_dialog(&self) -> bool {
        self.request.to_header().is_ok_and(|to| to.tag().is_some())
    }

    pub fn routing(&self) -> Routing<'_> {
        let uri = match self.routes.first() {
            Some(route) => route_uri(route),
            // A dialog's route set ended with us: the Request-URI is the remote target,
            // unless that is us.
            None if !self.request_uri_is_local
                && (self.dialog_flows.is_some()
                    || (self.followed_our_route && self.in_dialog())) =>
            {
                self.request_uri.as_str()
            }
            None => return Routing::RequestUri,
        };
        let flow = self.dialog_flows.and_then(|(a, b)| {
            if self.arrived == a {
                Some(b)
            } else if self.arrived == b {
                Some(a)
            } else {
                None
            }
        });
        Routing::NextHop { uri, flow }
    }
}

/// §16.3 and §16.4 for a request that arrived over `arrived`; `key` checks the flow tokens
/// in our routes.
pub(crate) fn inspect(
    config: &Config,
    key: &FlowKey,
    request: Message,
    arrived: Flow,
) -> Result<Inbound, Rejection> {
    let request_uri = request
        .request_uri()
        .ok_or_else(|| Rejection::new(400, "Not a request"))?
        .to_owned();
    let uri = Uri::parse(&request_uri).map_err(|_| Rejection::new(400, "Invalid Request-URI"))?;
    if !uri.is_sip() {
        return Err(Rejection::new(416, "Unsupported URI Scheme"));
    }
    let strict_routed = is_our_record_route(config, &uri);
    let max_forwards = match request.u32_header(&HeaderName::MaxForwards) {
        Ok(Some(0)) => return Err(Rejection::new(483, "Too Many Hops")),
        Ok(Some(hops)) => hops,
        Ok(None) => DEFAULT_MAX_FORWARDS,
        Err(error) => return Err(Rejection::new(400, error.0)),
    };
    let loop_hash = loop_hash(&request)?;
    if has_looped(config, &request, loop_hash)? {
        return Err(Rejection::new(482, "Loop Detected"));
    }
    let unsupported: Vec<&str> = request.header_values(&HeaderName::ProxyRequire).collect();
    if !unsupported.is_empty() {
        return Err(Rejection {
            unsupported: Some(unsupported.join(", ")),
            ..Rejection::new(420, "Bad Extension")
        });
    }
    let mut routes: Vec<String> = request
        .header_values(&HeaderName::Route)
        .map(str::to_owned)
        .collect();
    // loop_hash has refused a request without one.
    let call_id = request.call_id().unwrap_or_default();
    let mut dialog_flows = if strict_routed {
        our_flows(key, &uri, call_id)?
    } else {
        None
    };
    let mut request_uri = request_uri;
    // §16.4: a Request-URI we recorded means the previous hop was a strict router, which
    // moved the real Request-URI into the last Route.
    if strict_routed {
        let last = routes
            .pop()
            .ok_or_else(|| Rejection::new(400, "Strict-routed request without a Route"))?;
        request_uri = route_uri(&last).to_owned();
    }
    let mut followed_our_route = strict_routed;
    while let Some(first) = routes.first() {
        let addr =
            NameAddr::parse(first).map_err(|_| Rejection::new(400, "Invalid Route header"))?;
        if !config.is_local(&addr.uri) {
            break;
        }
        followed_our_route = true;
        // Every token is checked, not only the first: none may be forged.
        let flows = our_flows(key, &addr.uri, call_id)?;
        dialog_flows = dialog_flows.or(flows);
        routes.remove(0);
    }
    let request_uri_is_local = Uri::parse(&request_uri).is_ok_and(|uri| config.is_local(&uri));
    Ok(Inbound {
        request,
        arrived,
        request_uri_is_local,
        request_uri,
        routes,
        dialog_flows,
        followed_our_route,
        loop_hash,
        max_forwards,
    })
}

/// The URI inside a Route value (`<uri>;params` or a bare URI).
fn route_uri(route: &str) -> &str {
    NameAddr::parse(route).map_or(route, |addr| addr.uri.text)
}

/// Our Record-Route URIs: our address with `lr` (§16.6 item 4).
fn is_our_record_route(config: &Config, uri: &Uri<'_>) -> bool {
    uri.param("lr").is_some() && config.is_local(uri)
}

/// Everything that decides how this proxy handles the request, without the method (so a
/// CANCEL hashes like its INVITE) and without the top Via (so a request that comes back
/// through another hop hashes as it did the first time): §16.6 item 8.
fn loop_hash(request: &Message) -> Result<u64, Rejection> {
    let mut hasher = DefaultHasher::new();
    request.request_uri().hash(&mut hasher);
    let from = request
        .from_header()
        .map_err(|error| Rejection::new(400, error.0))?;
    let to = request
        .to_header()
        .map_err(|error| Rejection::new(400, error.0))?;
    from.tag().hash(&mut hasher);
    to.tag().hash(&mut hasher);
    request
        .call_id()
        .map_err(|error| Rejection::new(400, error.0))?
        .hash(&mut hasher);
    request
        .cseq()
        .map_err(|error| Rejection::new(400, error.0))?
        .seq
        .hash(&mut hasher);
    for name in [
        HeaderName::Route,
        HeaderName::ProxyRequire,
        HeaderName::ProxyAuthorization,
    ] {
        for value in request.header_values(&name) {
            value.hash(&mut hasher);
        }
    }
    Ok(hasher.finish())
}

/// §16.3 item 4: a Via of ours whose branch carries the hash this request has now means the
/// request came back unchanged (a loop); a different hash means it is spiralling.
fn has_looped(config: &Config, request: &Message, hash: u64) -> Result<bool, Rejection> {
    let vias = request
        .vias()
        .map_err(|error| Rejection::new(400, error.0))?;
    Ok(vias.iter().any(|via| {
        config.is_our_sent_by(via.sent_by()) && via.branch().and_then(branch_hash) == Some(hash)
    }))
}

/// `z9hG4bK<hash>.<unique>`: the loop-detection part of the branch, then a part unique per
/// client transaction (each fork branch and each retry needs its own branch).
pub(crate) fn branch(hash: u64, unique: u64) -> String {
    format!("{MAGIC_COOKIE}{hash:016x}.{unique:x}")
}

fn branch_hash(branch: &str) -> Option<u64> {
    let rest = branch.strip_prefix(MAGIC_COOKIE)?;
    let (hash, _) = rest.split_once('.')?;
    if hash.len() != 16 {
        return None;
    }
    u64::from_str_radix(hash, 16).ok()
}

/// The flows named by the user part of a URI of ours (a Route, or the Request-URI a strict
/// router put our Record-Route into): none without a user part, and a 403 for one we did not
/// sign for this dialog (RFC 5626 §5.3: a tampered flow token is refused with 403). Routing
/// it by its Request-URI instead would hide the tampering, and would not reach a UA behind
/// NAT anyway: only the recorded flow does.
fn our_flows(
    key: &FlowKey,
    uri: &Uri<'_>,
    call_id: &str,
) -> Result<Option<(Flow, Flow)>, Rejection> {
    uri.user
        .map(|user| {
            key.verify(user, call_id)
                .ok_or_else(|| Rejection::new(403, "Invalid flow token"))
        })
        .transpose()
}

/// The Record-Route values for a request arriving over `inbound` and leaving over
/// `outbound` (§16.6 item 4), topmost first: one when both use the same transport, and
/// otherwise one per listener, so that each side of the dialog addresses us over its own
/// transport (e.g. TLS towards the caller, TCP towards the callee). Both carry the same token
/// of the two flows, signed with `key` for the dialog `call_id`.
pub(crate) fn record_routes(
    config: &Config,
    key: &FlowKey,
    call_id: &str,
    inbound: Flow,
    outbound: Flow,
) -> Vec<String> {
    let token = key.sign(inbound, outbound, call_id);
    let value = |listener: &Listener| {
        let param = match listener.transport {
            crate::Transport::Udp => String::new(),
            other => format!(";transport={}", other.param_name()),
        };
        format!("<sip:{token}@{}{param};lr>", listener.sent_by())
    };
    let facing_out = config.listener(outbound.transport);
    let facing_in = config.listener(inbound.transport);
    match (facing_out, facing_in) {
        (Some(out), Some(inn)) if out.transport != inn.transport => vec![value(out), value(inn)],
        (Some(one), _) | (None, Some(one)) => vec![value(one)],
        (None, None) => Vec::new(),
    }
}

/// What the forwarded copy of a request needs beyond the request itself (§16.6).
pub(crate) struct Copy<'a> {
    pub request_uri: &'a str,
    /// Our Via value, with its branch.
    pub via: &'a str,
    pub record_routes: &'a [String],
    /// Routes to put in front of the request's remaining ones (a binding's Path, RFC 3327).
    pub extra_routes: &'a [String],
}

/// §16.6 items 1–8: the copy with its new Request-URI, Max-Forwards decremented, our
/// Record-Route, the route set, and our Via on top. Credentials for our own realms were
/// for us and are not passed on (§22.3).
pub(crate) fn forwarded_request(config: &Config, inbound: &Inbound, copy: &Copy<'_>) -> Bytes {
    let request = &inbound.request;
    let method = request.method().cloned().unwrap_or(Method::Options);
    let mut writer = MessageWriter::request(&method, copy.request_uri);
    writer.header("Via", copy.via);
    for value in copy.record_routes {
        writer.header("Record-Route", value);
    }
    for route in copy.extra_routes.iter().chain(&inbound.routes) {
        writer.header("Route", route);
    }
    writer.header_fmt(
        "Max-Forwards",
        format_args!("{}", inbound.max_forwards.saturating_sub(1)),
    );
    for header in request.headers() {
        match header.name {
            HeaderName::Route | HeaderName::MaxForwards | HeaderName::ContentLength => {}
            HeaderName::ProxyAuthorization if config.is_our_realm(header.value) => {}
            _ => {
                writer.header(header.name_as_written, header.value);
            }
        }
    }
    writer.finish(None, &request.body())
}

/// The branch of a forwarded INVITE a CANCEL needs (§9.1): its Request-URI, Via and Route.
#[derive(Debug, Clone)]
pub(crate) struct Sent {
    pub request_uri: String,
    pub via: String,
    pub routes: Vec<String>,
}

/// What a CANCEL copies from the INVITE it cancels (§9.1), kept instead of the whole INVITE.
#[derive(Debug, Clone)]
pub(crate) struct CancelIds {
    from: String,
    to: String,
    call_id: String,
    cseq: u32,
}

impl CancelIds {
    pub(crate) fn of(invite: &Message) -> Option<CancelIds> {
        Some(CancelIds {
            from: invite.header(&HeaderName::From)?.to_owned(),
            to: invite.header(&HeaderName::To)?.to_owned(),
            call_id: invite.header(&HeaderName::CallId)?.to_owned(),
            cseq: invite.cseq().ok()?.seq,
        })
    }
}

/// §9.1: Request-URI, Call-ID, To, From and CSeq number of the INVITE, its one Via (our
/// branch), its Route headers.
pub(crate) fn cancel_request(ids: &CancelIds, sent: &Sent) -> Option<Message> {
    let mut writer = MessageWriter::request(&Method::Cancel, &sent.request_uri);
    writer.header("Via", &sent.via);
    for route in &sent.routes {
        writer.header("Route", route);
    }
    writer
        .header("Max-Forwards", "70")
        .header("From", &ids.from)
        .header("To", &ids.to)
        .header("Call-ID", &ids.call_id)
        .header_fmt("CSeq", format_args!("{} CANCEL", ids.cseq));
    Message::parse(writer.finish(None, b""), &sip_message::Limits::default()).ok()
}

/// A response as it goes upstream (§16.7 item 9): our Via removed, plus `extra` headers
/// (the challenges merged from other branches, §16.7 item 7).
pub(crate) fn upstream_response(response: &Message, extra: &[(&str, &str)]) -> Bytes {
    let code = response.status().unwrap_or(500);
    let mut writer = MessageWriter::response(code, response.reason().unwrap_or(""));
    let mut vias_written = false;
    for header in response.headers() {
        match header.name {
            HeaderName::ContentLength => {}
            // Every Via but ours (the topmost value, perhaps inside a comma-joined field), in
            // order, where the first Via field stood.
            HeaderName::Via if !vias_written => {
                vias_written = true;
                for value in response.header_values(&HeaderName::Via).skip(1) {
                    writer.header(header.name_as_written, value);
                }
            }
            HeaderName::Via => {}
            _ => {
                writer.header(header.name_as_written, header.value);
            }
        }
    }
    for (name, value) in extra {
        writer.header(name, value);
    }
    writer.finish(None, &response.body())
}
