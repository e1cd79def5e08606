//! The proxy in the server (RFC 3261 §16): which requests are proxied rather than answered
//! here, the 407 challenge for callers of the served domains (§22.3), the target set from the
//! registrar (§16.5: every registered contact of an AOR, or the one instance a GRUU names,
//! RFC 5627 §5.3), the relay policy, next hops located by RFC 3263 §4 (NAPTR, SRV, then
//! address records; a branch fails over to the next target, §4.3), and flows mapped to
//! transport targets. The protocol itself is the sans-IO `proxy` crate.
//!
//! A next hop that must be looked up in DNS is located by a task of its own (see
//! [`Lookups`]): the request waits in [`ProxyService::on_located`]'s table, its server
//! transaction in the transaction layer (absorbing retransmissions; an INVITE is answered
//! 100 Trying first, RFC 3261 §16.2, §17.2.1), and every other message goes on meanwhile.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use proxy::{Destination, Flow, Inbound, Listener, Proxy, Rejection, Routing};
use registrar::Binding;
use sip_locate::LocateError;
use sip_message::{Message, Method, Uri};
use sip_transaction::{Action, ClientTxId, ServerTxId, TransactionLayer, TxId};
use sip_transport::{Target, Transport, TransportHandle};
use store::Store;
use tracing::{debug, info, warn};

use crate::auth::{simple, unix_now, Authenticator};
use crate::config::Config;
use crate::connect::Connector;
use crate::register::Registration;
use crate::reply::{self, Origin};
use crate::server::BoxError;
use crate::sip_core::lookups::{Lookups, Purpose, Requester, LOCATE_TIMEOUT};
use crate::sip_core::new_tag;

/// What the server parts the proxy needs for one request.
pub struct Parts<'a> {
    pub layer: &'a mut TransactionLayer<Target>,
    pub auth: &'a mut Authenticator,
    pub registration: &'a Registration,
    pub lookups: &'a mut Lookups,
}

/// What became of a request offered to the proxy.
// `Local` is the common case (every request the server answers itself); boxing it would
// cost an allocation per request.
#[allow(clippy::large_enum_variant)]
pub enum Outcome {
    /// Not for the proxy: the server answers it itself.
    Local(Message),
    /// The proxy's answer for the server transaction (refusal, challenge, 404, 480...).
    Respond(u16, Bytes),
    /// Forwarded: the transaction actions to carry out.
    Forwarded(Vec<Action<Target>>),
    /// Waiting for its next hop to be located (see [`ProxyService::on_located`]): the
    /// transaction actions to carry out meanwhile (an INVITE's 100 Trying).
    Locating(Vec<Action<Target>>),
}

pub struct ProxyService {
    config: Arc<Config>,
    core: Proxy<Target>,
    /// Takes the sends that must connect first.
    connector: Connector,
    /// Requests waiting for their next hop to be located, by server transaction. A CANCEL
    /// or the end of the transaction removes its request, and the late result finds nothing.
    locating: HashMap<ServerTxId, Inbound>,
    /// The transports an SRV lookup may pick (see `SipConfig::outgoing_transports`).
    outgoing: Vec<sip_locate::Transport>,
    /// Our UDP socket's address: a datagram reaches only its address family.
    udp_listener: Option<SocketAddr>,
}

impl ProxyService {
    /// The key of the flow tokens in our Record-Route is a persisted secret, so that the
    /// dialogs recorded before a restart still follow their flows after it.
    pub async fn start(
        config: Arc<Config>,
        store: &Store,
        transport: &TransportHandle,
        connector: Connector,
    ) -> Result<ProxyService, BoxError> {
        let flow_secret = store
            .get_or_create_secret("proxy-flow-token", sip_auth::generate_secret)
            .await?;
        let fallback_host = config.domains.first().cloned().unwrap_or_default();
        let listeners = [Transport::Udp, Transport::Tcp, Transport::Tls]
            .into_iter()
            .filter_map(|kind| {
                let addr = transport.local_addr(kind)?;
                let host = match addr.ip() {
                    ip if ip.is_unspecified() => fallback_host.clone(),
                    IpAddr::V6(ip) => format!("[{ip}]"),
                    IpAddr::V4(ip) => ip.to_string(),
                };
                Some(Listener {
                    transport: kind,
                    host,
                    port: addr.port(),
                })
            })
            .collect();
        let core = Proxy::new(
            proxy::Config {
                listeners,
                domains: config.domains.clone(),
                timer_c: Duration::from_secs(config.proxy.timer_c_secs),
                cancel_grace: sip_transaction::Config::default().timeout(),
                max_contexts: config.limits.max_transactions,
                max_branches: config.registrar.max_contacts_per_aor.max(1),
                seed: rand::random(),
            },
            &flow_secret,
            flow_target,
        );
        Ok(ProxyService {
            outgoing: config.sip.outgoing_transports(),
            udp_listener: transport.local_addr(Transport::Udp),
            config,
            core,
            connector,
            locating: HashMap::new(),
        })
    }

    /// The connector the proxy's sends go through, shared with the rest of the core.
    pub fn connector(&self) -> &Connector {
        &self.connector
    }

    pub fn owns(&self, id: ClientTxId) -> bool {
        self.core.owns(id)
    }

    /// Whether server transaction `id` is being proxied: forwarded, or waiting for its
    /// next hop (a CANCEL for it goes to [`Self::cancel`]).
    pub fn is_proxying(&self, id: ServerTxId) -> bool {
        self.core.is_proxying(id) || self.locating.contains_key(&id)
    }

    pub fn next_deadline(&mut self) -> Option<Instant> {
        self.core.next_deadline()
    }

    pub fn on_timer(
        &mut self,
        layer: &mut TransactionLayer<Target>,
        now: Instant,
    ) -> Vec<Action<Target>> {
        let actions = self.core.on_timer(layer, now);
        self.detach_connects(actions)
    }

    pub fn on_response(
        &mut self,
        layer: &mut TransactionLayer<Target>,
        id: ClientTxId,
        response: Message,
        now: Instant,
    ) -> Vec<Action<Target>> {
        let actions = self.core.on_response(layer, id, response, now);
        self.detach_connects(actions)
    }

    /// RFC 3261 §16.10. An INVITE still waiting for its next hop has no branch to cancel:
    /// it is answered 487 at once, as a UAS would (§9.2), and never forwarded.
    pub fn cancel(
        &mut self,
        layer: &mut TransactionLayer<Target>,
        invite: ServerTxId,
        now: Instant,
    ) -> Vec<Action<Target>> {
        if let Some(inbound) = self.locating.remove(&invite) {
            return answer(
                layer,
                invite,
                inbound.request(),
                487,
                "Request Terminated",
                now,
            );
        }
        let actions = self.core.cancel(layer, invite, now);
        self.detach_connects(actions)
    }

    /// Sends that must connect first go to the [`Connector`] (one unreachable contact must
    /// not stall the event loop); every other action is returned for the caller.
    fn detach_connects(&self, actions: Vec<Action<Target>>) -> Vec<Action<Target>> {
        actions
            .into_iter()
            .filter_map(|action| match action {
                Action::Send { dest, data } => self
                    .connector
                    .detach(dest, data)
                    .map(|(dest, data)| Action::Send { dest, data }),
                other => Some(other),
            })
            .collect()
    }

    /// The transaction layer's actions minus those about the proxy's own transactions. A
    /// request whose server transaction ended while its next hop was being located is
    /// forgotten: nothing may be sent for it any more.
    pub fn absorb<C>(&mut self, layer: &mut TransactionLayer<Target>, actions: C, now: Instant) -> C
    where
        C: IntoIterator<Item = Action<Target>> + FromIterator<Action<Target>>,
        for<'a> &'a C: IntoIterator<Item = &'a Action<Target>>,
    {
        let actions = self.core.absorb(layer, actions, now);
        if !self.locating.is_empty() {
            for action in &actions {
                if let Action::Terminated(TxId::Server(id)) = action {
                    self.locating.remove(id);
                }
            }
        }
        actions
    }

    /// An ACK outside any transaction (the ACK for a 2xx, RFC 3261 §13.2.2.4) follows the
    /// dialog's route set through us statelessly; any other is dropped (§17.2.3). A next hop
    /// to look up first gets its ACK in [`Self::on_ack_located`]; with no room for the
    /// lookup the ACK is dropped, and the UAS's next retransmission of its 2xx brings
    /// another (§13.3.1.4).
    pub fn on_ack(
        &mut self,
        ack: Message,
        origin: Origin,
        lookups: &mut Lookups,
    ) -> Option<Action<Target>> {
        let inbound = self.core.inspect(ack, origin_flow(origin)).ok()?;
        let Routing::NextHop { uri, flow } = inbound.routing() else {
            return None;
        };
        if !inbound.followed_our_route() {
            return None;
        }
        if let Some(flow) = flow {
            return self.forward_ack(&inbound, NextHop::recorded(flow, uri));
        }
        let destination = match sip_locate::Destination::from_uri(uri) {
            Ok(destination) => destination,
            Err(error) => {
                info!(%error, uri, "ACK not forwarded: its next hop is no SIP URI");
                return None;
            }
        };
        if lookups.has_room(Requester::Proxy) {
            lookups.start(Purpose::Ack(Box::new(inbound)), destination, &self.outgoing);
        } else {
            debug!(uri, "ACK dropped: too many next hops being located");
        }
        None
    }

    /// The next hop of an ACK for a 2xx was looked up: the ACK goes there, if anywhere.
    pub fn on_ack_located(
        &mut self,
        inbound: &Inbound,
        located: Result<Vec<sip_locate::Target>, LocateError>,
    ) -> Option<Action<Target>> {
        let hop = located_hop(inbound.request_uri(), located, self.udp_listener).ok()?;
        self.forward_ack(inbound, hop)
    }

    /// The ACK's send, unless the connector took it over (its next hop needs a connection).
    /// An ACK is sent once, to the first flow only (it has no transaction to fail).
    fn forward_ack(&mut self, inbound: &Inbound, hop: NextHop) -> Option<Action<Target>> {
        let send = self
            .core
            .forward_stateless(inbound, &hop.destination(inbound));
        self.detach_connects(vec![send]).pop()
    }

    /// A new request (server transaction `id`): forwarded, answered by the proxy, or handed
    /// back for the server's own handlers.
    pub async fn on_request(
        &mut self,
        parts: Parts<'_>,
        id: ServerTxId,
        request: Message,
        origin: Origin,
        now: Instant,
    ) -> Outcome {
        if !may_be_proxied(&request) {
            return Outcome::Local(request);
        }
        let inbound = match self.core.inspect(request.clone(), origin_flow(origin)) {
            Ok(inbound) => inbound,
            Err(rejection) => return refuse(&request, &rejection),
        };
        let hop = match inbound.routing() {
            Routing::NextHop { uri, flow } => Some((uri.to_owned(), flow)),
            Routing::RequestUri => None,
        };
        if let Some((uri, flow)) = hop {
            // Only a dialog we record-routed (a signed flow token proves it) may leave for
            // a next hop we would not relay to; a bare Route to us proves nothing.
            let dialog = inbound.has_dialog_flows() && inbound.in_dialog();
            if !dialog && !self.relays_to(&uri) {
                return respond(&request, 403, "Relaying not allowed");
            }
            return self.forward_to_hop(parts, id, inbound, &uri, flow, now);
        }
        if handled_here(&request) || inbound.in_dialog() {
            return Outcome::Local(request);
        }
        let Ok(target) = Uri::parse(inbound.request_uri()) else {
            return respond(&request, 400, "Invalid Request-URI");
        };
        let domain = target.host_text.to_ascii_lowercase();
        let served = self.config.serves(&domain);
        if !served && !self.config.proxy.relays_to(&domain) {
            return respond(&request, 403, "Relaying not allowed");
        }
        if let Err(refusal) = self
            .authenticate_caller(parts.auth, &request, origin, now)
            .await
        {
            return refusal;
        }
        if !served {
            let uri = inbound.request_uri().to_owned();
            return self.forward_to_hop(parts, id, inbound, &uri, None, now);
        }
        let destinations = match self
            .target_set(parts.auth, parts.registration, &target, now)
            .await
        {
            Ok(destinations) => destinations,
            Err((status, reason)) => return respond(&request, status, reason),
        };
        debug!(target = %inbound.request_uri(), branches = destinations.len(), "request forked");
        let actions = self
            .core
            .forward(parts.layer, id, inbound, destinations, now);
        Outcome::Forwarded(self.detach_connects(actions))
    }

    /// Forwards to the one next hop `uri`, over `flow` when a route set recorded it, else
    /// once a lookup has located `uri` (RFC 3263 §4; see [`Self::on_located`]).
    fn forward_to_hop(
        &mut self,
        parts: Parts<'_>,
        id: ServerTxId,
        inbound: Inbound,
        uri: &str,
        flow: Option<Flow>,
        now: Instant,
    ) -> Outcome {
        if let Some(flow) = flow {
            let hop = NextHop::recorded(flow, uri);
            return Outcome::Forwarded(self.forward_to(parts.layer, id, inbound, hop, now));
        }
        let destination = match sip_locate::Destination::from_uri(uri) {
            Ok(destination) => destination,
            Err(error) => {
                info!(%error, uri, "next hop not located");
                let (status, reason) = location_failure(&error);
                return respond(inbound.request(), status, reason);
            }
        };
        if !parts.lookups.has_room(Requester::Proxy) {
            info!(uri, "too many next hops being located");
            // By then every lookup in flight has finished.
            return Outcome::Respond(503, reply::unavailable(inbound.request(), LOCATE_TIMEOUT));
        }
        parts
            .lookups
            .start(Purpose::Request(id), destination, &self.outgoing);
        let mut actions = Vec::new();
        if inbound.request().method() == Some(&Method::Invite) {
            // The lookup may take seconds: the caller must learn at once that the INVITE
            // arrived, or it retransmits it over UDP (RFC 3261 §16.2, §17.2.1).
            let trying =
                sip_message::response_to(inbound.request(), 100, "Trying", None).finish(None, b"");
            match parts.layer.respond(id, trying, 100, now) {
                Ok(sends) => actions = sends,
                Err(error) => warn!(%error, "100 Trying not sent"),
            }
        }
        self.locating.insert(id, inbound);
        Outcome::Locating(actions)
    }

    /// The next hop of the request of server transaction `id` was looked up: the request goes
    /// there, or gets the status the failure maps to. A request no longer waiting (CANCELled,
    /// its transaction ended) is left alone.
    pub fn on_located(
        &mut self,
        layer: &mut TransactionLayer<Target>,
        id: ServerTxId,
        located: Result<Vec<sip_locate::Target>, LocateError>,
        now: Instant,
    ) -> Vec<Action<Target>> {
        let Some(inbound) = self.locating.remove(&id) else {
            debug!(?id, "next hop located for a request no longer waiting");
            return Vec::new();
        };
        match located_hop(inbound.request_uri(), located, self.udp_listener) {
            Ok(hop) => self.forward_to(layer, id, inbound, hop, now),
            Err((status, reason)) => answer(layer, id, inbound.request(), status, reason, now),
        }
    }

    fn forward_to(
        &mut self,
        layer: &mut TransactionLayer<Target>,
        id: ServerTxId,
        inbound: Inbound,
        hop: NextHop,
        now: Instant,
    ) -> Vec<Action<Target>> {
        let destination = hop.destination(&inbound);
        let actions = self
            .core
            .forward(layer, id, inbound, vec![destination], now);
        self.detach_connects(actions)
    }

    /// Requests from a user of a served domain are challenged (407) unless they carry valid
    /// credentials of that user; requests from elsewhere are not (another domain's users
    /// cannot hold our credentials).
    async fn authenticate_caller(
        &self,
        auth: &mut Authenticator,
        request: &Message,
        origin: Origin,
        now: Instant,
    ) -> Result<(), Outcome> {
        let from = request
            .from_header()
            .map_err(|error| respond(request, 400, &error.0))?;
        let realm = from.uri.host_text.to_ascii_lowercase();
        if !self.config.serves(&realm) {
            return Ok(());
        }
        let from_user = from.uri.user_unescaped().map(|u| u.into_owned());
        match auth
            .authenticate_proxied(request, &realm, origin, now)
            .await
        {
            Ok(user) if Some(&user) == from_user.as_ref() => Ok(()),
            Ok(_) => Err(respond(
                request,
                403,
                "Credentials do not match the From user",
            )),
            Err((status, response)) => Err(Outcome::Respond(status, response)),
        }
    }

    /// §16.5 for a URI of a served domain: the instance a GRUU names, or every contact of the
    /// AOR; 404 for unknown users and GRUUs, 480 when nothing is registered.
    async fn target_set(
        &self,
        auth: &mut Authenticator,
        registration: &Registration,
        target: &Uri<'_>,
        now: Instant,
    ) -> Result<Vec<Destination>, (u16, &'static str)> {
        let registrar = registration.registrar();
        let unix = i64::try_from(unix_now()).unwrap_or(i64::MAX);
        if let Some(gruu) = registrar.lookup_gruu(target) {
            let destinations: Vec<Destination> = registrar
                .bindings(&gruu.aor, unix)
                .filter(|b| b.instance.as_deref() == Some(gruu.instance.as_str()))
                .filter_map(destination)
                .collect();
            return if destinations.is_empty() {
                Err((480, "Temporarily Unavailable"))
            } else {
                Ok(destinations)
            };
        }
        if target.param("gr").is_some() {
            return Err((404, "Unknown GRUU"));
        }
        let (Some(aor), Some(user)) = (target.aor_key(), target.user_unescaped()) else {
            return Err((404, "Not Found"));
        };
        let destinations: Vec<Destination> = registrar
            .bindings(&aor, unix)
            .filter_map(destination)
            .collect();
        if !destinations.is_empty() {
            return Ok(destinations);
        }
        let domain = target.host_text.to_ascii_lowercase();
        if auth.has_account(&user, &domain, now).await {
            Err((480, "Temporarily Unavailable"))
        } else {
            Err((404, "Not Found"))
        }
    }

    /// Whether a next hop URI may be reached although no dialog through us leads there.
    fn relays_to(&self, uri: &str) -> bool {
        Uri::parse(uri).is_ok_and(|uri| {
            let host = uri.host_text.to_ascii_lowercase();
            self.config.serves(&host) || self.config.proxy.relays_to(&host)
        })
    }
}

/// Where a request goes next: the flow to try first, those to fail over to (RFC 3263 §4.3),
/// and the name a TLS next hop must prove (RFC 5922 §4).
#[derive(Debug, PartialEq)]
struct NextHop {
    flow: Flow,
    alternates: Vec<Flow>,
    server_name: Option<String>,
}

impl NextHop {
    /// A flow a route set recorded for the next hop `uri`: the connection, or the address,
    /// the dialog runs over. Should a TLS connection have to be opened again, the peer must
    /// prove the URI's host (RFC 5922 §4), or its address when the host is one.
    fn recorded(flow: Flow, uri: &str) -> NextHop {
        // Only a TLS connection checks a name: no URI parsing for the others.
        let server_name = (flow.transport == proxy::Transport::Tls)
            .then(|| sip_locate::Destination::from_uri(uri).ok())
            .flatten()
            .and_then(|destination| destination.server_name().map(str::to_owned));
        NextHop {
            flow,
            alternates: Vec::new(),
            server_name,
        }
    }

    /// The one destination of `inbound`'s copy: its Request-URI unchanged.
    fn destination(self, inbound: &Inbound) -> Destination {
        Destination {
            request_uri: inbound.request_uri().to_owned(),
            flow: self.flow,
            route: Vec::new(),
            alternates: self.alternates,
            server_name: self.server_name,
        }
    }
}

/// Where the next hop of a request for `request_uri` leads, given what its lookup found (RFC
/// 3263 §4): the flows to those of its targets our listeners can send to, in order.
/// Otherwise the status to answer with.
fn located_hop(
    request_uri: &str,
    located: Result<Vec<sip_locate::Target>, LocateError>,
    udp_listener: Option<SocketAddr>,
) -> Result<NextHop, (u16, &'static str)> {
    let targets = located.map_err(|error| {
        info!(%error, request_uri, "next hop not located");
        location_failure(&error)
    })?;
    let mut flows = targets
        .iter()
        .filter_map(|target| sendable_flow(target, udp_listener));
    let Some(flow) = flows.next() else {
        info!(
            request_uri,
            ?targets,
            "no next hop target our listeners can send to"
        );
        return Err(UNREACHABLE);
    };
    Ok(NextHop {
        flow,
        alternates: flows.collect(),
        // One destination's targets all carry its domain.
        server_name: targets.first().and_then(|t| t.server_name.clone()),
    })
}

/// The answer to a request whose next hop could not be located. A domain that DNS says has
/// no SIP server gets 404, not 503, which would only send the caller to another server of
/// ours (RFC 3263 §4.3) to learn the same.
fn location_failure(error: &LocateError) -> (u16, &'static str) {
    if error.is_negative_answer() {
        (404, "Domain Not Found")
    } else {
        UNREACHABLE
    }
}

const UNREACHABLE: (u16, &str) = (503, "Next hop not reachable");

/// Answers server transaction `id` of `request` with a response of our own.
fn answer(
    layer: &mut TransactionLayer<Target>,
    id: ServerTxId,
    request: &Message,
    status: u16,
    reason: &str,
    now: Instant,
) -> Vec<Action<Target>> {
    let (status, response) = simple(request, status, reason);
    layer
        .respond(id, response, status, now)
        .unwrap_or_else(|error| {
            warn!(%error, status, "response not sent");
            Vec::new()
        })
}

/// Methods the proxy may forward when nothing else says otherwise; REGISTER, PUBLISH,
/// SUBSCRIBE and NOTIFY outside a route set are the server's own business.
fn may_be_proxied(request: &Message) -> bool {
    request.header(&sip_message::HeaderName::Route).is_some() || !handled_here(request)
}

/// Requests the server answers itself once no route leads elsewhere: its registrar and
/// presence methods, and anything for the server itself (a Request-URI without a user, such
/// as an OPTIONS probe).
fn handled_here(request: &Message) -> bool {
    match request.method() {
        Some(Method::Register | Method::Publish | Method::Subscribe | Method::Notify) => true,
        _ => request
            .request_uri()
            .and_then(|uri| Uri::parse(uri).ok())
            .is_none_or(|uri| uri.user.is_none()),
    }
}

fn refuse(request: &Message, rejection: &Rejection) -> Outcome {
    let mut writer = reply::response(request, rejection.status, &rejection.reason, &new_tag());
    if let Some(tags) = &rejection.unsupported {
        writer.header("Unsupported", tags);
    }
    Outcome::Respond(rejection.status, writer.finish(None, b""))
}

fn respond(request: &Message, status: u16, reason: &str) -> Outcome {
    let (status, response) = simple(request, status, reason);
    Outcome::Respond(status, response)
}

/// A binding as a branch target: its contact, over the flow its REGISTER came on (Blink
/// behind NAT uses no Outbound, so only that flow reaches it), after its Path.
fn destination(binding: &Binding) -> Option<Destination> {
    Some(Destination {
        request_uri: binding.contact.clone(),
        flow: Flow {
            transport: proxy::Transport::from_name(&binding.transport)?,
            addr: binding.source.parse().ok()?,
        },
        route: binding.path.clone(),
        alternates: Vec::new(),
        server_name: None,
    })
}

/// A located next hop as a flow, if our listeners can send there: a datagram leaves from
/// our UDP socket, which reaches only its own address family.
fn sendable_flow(target: &sip_locate::Target, udp_listener: Option<SocketAddr>) -> Option<Flow> {
    let transport = target.transport;
    if transport == proxy::Transport::Udp && udp_listener?.is_ipv4() != target.addr.is_ipv4() {
        return None;
    }
    Some(Flow {
        transport,
        addr: target.addr,
    })
}

fn origin_flow(origin: Origin) -> Flow {
    Flow {
        transport: origin.transport,
        addr: origin.peer,
    }
}

/// A flow as a send target: a datagram, or the live connection from that address (the one
/// the peer opened, RFC 3261 §18.2.2) or a new one, whose TLS peer must prove `server_name`.
fn flow_target(flow: &Flow, server_name: Option<&str>) -> Target {
    Target::to(flow.transport, flow.addr, server_name.map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, uri: &str) -> Message {
        let text = format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK1\r\n\
             From: <sip:a@example.com>;tag=1\r\nTo: <{uri}>\r\nCall-ID: c\r\nCSeq: 1 {method}\r\n\
             Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        Message::parse(Bytes::from(text), &sip_message::Limits::default()).expect("valid")
    }

    #[test]
    fn the_server_keeps_its_own_methods_and_requests_for_itself() {
        assert!(handled_here(&request("REGISTER", "sip:example.com")));
        assert!(handled_here(&request("SUBSCRIBE", "sip:bob@example.com")));
        assert!(handled_here(&request("OPTIONS", "sip:example.com")));
        assert!(handled_here(&request("INVITE", "sip:192.0.2.9:5060")));
        assert!(!handled_here(&request("OPTIONS", "sip:bob@example.com")));
        assert!(!handled_here(&request("MESSAGE", "sip:bob@example.com")));
        assert!(!handled_here(&request("INFO", "sip:bob@example.net")));
    }

    fn binding(transport: &str, source: &str) -> Binding {
        Binding {
            aor: "bob@example.com".into(),
            contact: "sip:bob@10.0.0.1:5062".into(),
            instance: None,
            q: None,
            call_id: "c".into(),
            cseq: 1,
            expires_at: 0,
            path: vec!["<sip:edge.example.com;lr>".into()],
            transport: transport.into(),
            source: source.into(),
            user_agent: None,
            temp_gruus: Vec::new(),
        }
    }

    #[test]
    fn a_binding_is_reached_over_its_registration_flow() {
        let target = destination(&binding("tls", "203.0.113.5:40001")).expect("usable");
        assert_eq!(target.request_uri, "sip:bob@10.0.0.1:5062");
        assert_eq!(target.flow.transport, proxy::Transport::Tls);
        assert_eq!(target.flow.addr, "203.0.113.5:40001".parse().unwrap());
        assert_eq!(target.route, ["<sip:edge.example.com;lr>"]);
        assert_eq!(
            flow_target(&target.flow, None),
            Target::Connect {
                transport: Transport::Tls,
                addr: "203.0.113.5:40001".parse().unwrap(),
                server_name: None
            }
        );
        assert!(destination(&binding("sctp", "203.0.113.5:40001")).is_none());
        assert!(destination(&binding("udp", "not an address")).is_none());
    }

    #[test]
    fn a_failed_lookup_answers_404_only_when_dns_said_there_is_no_sip_server() {
        let ipv4: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        let failed = |error| located_hop("sip:bob@example.net", Err(error), Some(ipv4));
        assert_eq!(
            failed(LocateError::NoAddresses("example.net".into())),
            Err((404, "Domain Not Found"))
        );
        assert_eq!(
            failed(LocateError::NoService("example.net".into())),
            Err((404, "Domain Not Found"))
        );
        assert_eq!(
            failed(LocateError::TimedOut("example.net".into())),
            Err(UNREACHABLE),
            "a silent name server"
        );
        let refused = LocateError::Lookup {
            name: "_sip._udp.example.net".into(),
            reason: "REFUSED".into(),
        };
        assert_eq!(failed(refused), Err(UNREACHABLE));
        let ipv6_only = vec![sip_locate::Target {
            transport: sip_locate::Transport::Udp,
            addr: "[2001:db8::1]:5060".parse().unwrap(),
            server_name: None,
        }];
        assert_eq!(
            located_hop("sip:bob@example.net", Ok(ipv6_only), Some(ipv4)),
            Err(UNREACHABLE),
            "located, but nowhere our listeners can send to"
        );
    }

    #[test]
    fn a_recorded_flow_names_the_next_hops_host_for_a_new_tls_connection() {
        let flow = Flow {
            transport: proxy::Transport::Tls,
            addr: "192.0.2.1:5061".parse().unwrap(),
        };
        let hop = NextHop::recorded(flow, "sip:proxy.Example.net;lr;transport=tls");
        assert_eq!(hop.server_name.as_deref(), Some("proxy.example.net"));
        assert_eq!(hop.flow, flow);
        assert!(hop.alternates.is_empty());
        assert_eq!(
            NextHop::recorded(flow, "sip:bob@192.0.2.1:5061;transport=tls").server_name,
            None,
            "an address is checked as one"
        );
    }

    #[test]
    fn a_located_next_hop_keeps_every_sendable_target_and_the_domain_name() {
        let ipv4: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        let target = |transport, addr: &str| sip_locate::Target {
            transport,
            addr: addr.parse().unwrap(),
            server_name: Some("example.net".into()),
        };
        let flow = |transport, addr: &str| Flow {
            transport,
            addr: addr.parse().unwrap(),
        };
        let located = vec![
            target(sip_locate::Transport::Tls, "192.0.2.1:5061"),
            target(sip_locate::Transport::Udp, "[2001:db8::1]:5060"),
            target(sip_locate::Transport::Tls, "192.0.2.2:5061"),
        ];
        assert_eq!(
            located_hop("sips:bob@example.net", Ok(located), Some(ipv4)),
            Ok(NextHop {
                flow: flow(proxy::Transport::Tls, "192.0.2.1:5061"),
                alternates: vec![flow(proxy::Transport::Tls, "192.0.2.2:5061")],
                server_name: Some("example.net".into()),
            }),
            "the IPv6 datagram target is out of our IPv4 socket's reach"
        );
        assert_eq!(
            flow_target(
                &flow(proxy::Transport::Tls, "192.0.2.1:5061"),
                Some("example.net")
            ),
            Target::Connect {
                transport: Transport::Tls,
                addr: "192.0.2.1:5061".parse().unwrap(),
                server_name: Some("example.net".into())
            }
        );
    }

    #[test]
    fn located_next_hops_become_flows_our_listeners_can_send_on() {
        let located = |transport, addr: &str| sip_locate::Target {
            transport,
            addr: addr.parse().unwrap(),
            server_name: Some("example.net".into()),
        };
        let ipv4: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        let udp = located(sip_locate::Transport::Udp, "192.0.2.7:5060");
        assert_eq!(
            sendable_flow(&udp, Some(ipv4)),
            Some(Flow {
                transport: proxy::Transport::Udp,
                addr: "192.0.2.7:5060".parse().unwrap()
            })
        );
        assert_eq!(sendable_flow(&udp, None), None, "no UDP listener");
        let udp6 = located(sip_locate::Transport::Udp, "[2001:db8::1]:5060");
        assert_eq!(
            sendable_flow(&udp6, Some(ipv4)),
            None,
            "an IPv4 socket cannot reach IPv6"
        );
        let tcp6 = located(sip_locate::Transport::Tcp, "[2001:db8::1]:5070");
        let flow = sendable_flow(&tcp6, Some(ipv4)).expect("a connection of either family");
        assert_eq!(
            flow_target(&flow, None),
            Target::Connect {
                transport: Transport::Tcp,
                addr: "[2001:db8::1]:5070".parse().unwrap(),
                server_name: None
            }
        );
    }
}
