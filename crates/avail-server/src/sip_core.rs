//! The SIP request dispatcher: drives the sans-IO transaction layer with what the
//! transports receive, picks the handler by method (RFC 3261 §8.2, §10, §11; RFC 3903 for
//! PUBLISH, RFC 6665 for SUBSCRIBE), authenticates those that change state, and executes the
//! resulting actions, including the NOTIFY client transactions (RFC 6665 §4.2.2). Time enters
//! only as arguments. No DNS lookup is awaited here: next hops of other domains (RFC 3263)
//! are located by tasks whose results come back as events (see [`lookups`]).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use presence::Notify;
use sip_message::{Limits, Message, Method, Unparsable};
use sip_subscription::SubId as SubscriptionId;
use sip_transaction::ClientTxId;
use sip_transaction::{
    Action, CancelTarget, ClientEvent, ServerEvent, ServerTxId, TransactionLayer, TxId,
};
use sip_transport::{ConnectionId, Target, Transport, TransportEvent, TransportHandle};
use tracing::{debug, info, warn};

mod lists;
pub mod lookups;

use crate::auth::{simple, Authenticator};
use crate::backend::RemoteWatches;
use crate::config::Config;
use crate::connect::{Connector, FailedSend};
use crate::presence::Presence;
use crate::proxy::{Outcome, Parts, ProxyService};
use crate::register::{Persisted, Registration};
use crate::reply::{self, Origin};
use crate::rls::ListServer;
use crate::sip_core::lookups::{Located, Lookups, Purpose};

pub struct SipCore {
    config: Arc<Config>,
    limits: Limits,
    transactions: TransactionLayer<Target>,
    auth: Authenticator,
    registration: Registration,
    presence: Presence,
    proxy: ProxyService,
    lists: ListServer,
    remote: RemoteWatches,
    /// Next hops being located, for the proxy and the RLS back-end.
    lookups: Lookups,
    /// NOTIFY client transactions in flight and the agent each reports to; bounded by the
    /// subscriptions (one NOTIFY in flight each). Keyed by the layer's handles, so a fast
    /// hash serves (no chosen keys).
    notify_txs: HashMap<ClientTxId, (Notifier, SubscriptionId), foldhash::fast::RandomState>,
    transport: TransportHandle,
    /// Takes the sends that must connect first.
    connector: Connector,
    /// Datagrams to send once the current event is handled: a PUBLISH's NOTIFY fan-out
    /// leaves in one batch (see [`SipCore::flush`]).
    outbox: Vec<(SocketAddr, Bytes)>,
    /// The same for messages on live TCP and TLS connections: one write per connection.
    stream_outbox: Vec<(ConnectionId, Bytes)>,
    /// A batch's messages, parsed before any is handled (see [`SipCore::on_transport_events`]);
    /// kept to reuse its room.
    parsed: Vec<(Result<Message, Unparsable>, Origin)>,
}

/// Which agent a NOTIFY client transaction reports to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Notifier {
    Presence,
    Lists,
}

impl SipCore {
    pub fn new(
        config: Arc<Config>,
        auth: Authenticator,
        registration: Registration,
        presence: Presence,
        lists: ListServer,
        proxy: ProxyService,
        lookups: Lookups,
    ) -> SipCore {
        let connector = proxy.connector().clone();
        let transport = connector.transport().clone();
        let limits = config.limits.sip();
        let transactions = TransactionLayer::new(sip_transaction::Config {
            max_server_transactions: config.limits.max_transactions,
            max_client_transactions: config.limits.max_transactions,
            ..sip_transaction::Config::default()
        });
        SipCore {
            remote: RemoteWatches::new(
                &config,
                transport.local_addr(Transport::Tcp),
                transport.local_addr(Transport::Tls),
            ),
            lookups,
            proxy,
            lists,
            notify_txs: HashMap::default(),
            config,
            limits,
            transactions,
            auth,
            registration,
            presence,
            transport,
            connector,
            outbox: Vec::new(),
            stream_outbox: Vec::new(),
            parsed: Vec::new(),
        }
    }

    pub fn next_deadline(&mut self) -> Option<Instant> {
        [
            self.transactions.next_deadline(),
            self.registration.next_deadline(),
            self.presence.next_deadline(),
            self.proxy.next_deadline(),
            self.lists.next_deadline(),
            self.remote.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub async fn on_timer(&mut self, now: Instant) {
        let actions = self.transactions.on_timer(now);
        self.execute(actions, now).await;
        let actions = self.proxy.on_timer(&mut self.transactions, now);
        self.execute(actions, now).await;
        self.registration.on_timer(now);
        let notifies = self.presence.on_timer(now);
        self.send_notifies(Notifier::Presence, notifies, now).await;
        self.on_list_timers(now).await;
        self.settle_lists(now).await;
        self.presence.save_if_due(now);
        self.lists.save_if_due(now);
    }

    /// Start-up: the presence state saved before the last stop, with its NOTIFYs.
    pub async fn restore(&mut self, now: Instant) {
        let notifies = self.presence.restore(&self.transport, now).await;
        self.send_notifies(Notifier::Presence, notifies, now).await;
        let (presence, transport) = (&self.presence, &self.transport);
        self.lists
            .restore(|target| presence.restored_flow(transport, target), now)
            .await;
        self.settle_lists(now).await;
        self.lists.resume(now);
        self.settle_lists(now).await;
    }

    /// A request found no connection to its next hop (see [`Connector`]): its client
    /// transaction fails now rather than at Timer B or F. A proxied branch counts as 503
    /// (RFC 3261 §16.9), a NOTIFY follows RFC 6665 §4.2.2.
    pub async fn on_failed_send(&mut self, failed: FailedSend, now: Instant) {
        if let Some(id) = self.transactions.client_for(&failed.branch, failed.method) {
            let actions = self.transactions.on_transport_error(TxId::Client(id));
            self.execute(actions, now).await;
            return;
        }
        // Not a transaction of the core: a back-end subscription's request (the back-end
        // agent keeps its own transactions), which fails over or retries like any other
        // send of it that found no connection.
        let effects = self.remote.on_flow_failed(&failed.dest, now);
        self.apply_backend(effects, now).await;
        self.settle_lists(now).await;
    }

    /// A lookup task finished (see [`lookups`]): what waited for it carries on.
    pub async fn on_located(&mut self, located: Located, now: Instant) {
        let (purpose, result) = self.lookups.finish(located);
        match purpose {
            Purpose::Request(id) => {
                let actions = self
                    .proxy
                    .on_located(&mut self.transactions, id, result, now);
                self.execute(actions, now).await;
            }
            Purpose::Ack(inbound) => {
                if let Some(send) = self.proxy.on_ack_located(&inbound, result) {
                    self.execute(vec![send], now).await;
                }
            }
            Purpose::Watch(key) => {
                let effects = self.remote.on_located(&key, result, &mut self.lookups, now);
                self.apply_backend(effects, now).await;
                self.settle_lists(now).await;
            }
        }
    }

    /// Bindings a writer batch stored (or failed to): send the REGISTER responses.
    pub async fn on_persisted(&mut self, persisted: Persisted, now: Instant) {
        for reply in self.registration.on_persisted(persisted) {
            self.respond_with(reply.id, reply.response, reply.status, now)
                .await;
        }
    }

    /// The transport events taken in one turn, in order. Every message is parsed before any
    /// is handled: parsed back to back, they find the parser's code in the instruction
    /// cache, where handling each in between (transactions, event packages) would evict it.
    pub async fn on_transport_events(&mut self, events: &mut Vec<TransportEvent>, now: Instant) {
        let mut parsed = std::mem::take(&mut self.parsed);
        parsed.extend(events.drain(..).filter_map(|event| match event {
            TransportEvent::Message(inbound) => {
                let origin = Origin {
                    transport: inbound.transport,
                    peer: inbound.peer,
                    connection: inbound.connection,
                };
                Some((Message::parse_for_reply(inbound.data, &self.limits), origin))
            }
            // Bindings keep the address their REGISTER came from; requests to them reuse a live
            // connection to that address or open one, so a closed flow needs no bookkeeping.
            TransportEvent::Closed(_) => None,
        }));
        for (message, origin) in parsed.drain(..) {
            self.on_message(message, origin, now).await;
            self.settle_lists(now).await;
        }
        self.parsed = parsed;
    }

    async fn on_message(
        &mut self,
        parsed: Result<Message, Unparsable>,
        origin: Origin,
        now: Instant,
    ) {
        let message = match parsed {
            Ok(message) => message.with_source(origin.peer),
            Err(unparsable) => return self.reject_unparsable(unparsable, origin).await,
        };
        if self.remote.is_ours(&message) {
            return self.on_backend_message(message, origin, now).await;
        }
        if !message.is_request() {
            match self.transactions.on_response(message, now) {
                ClientEvent::Response {
                    id,
                    response,
                    actions,
                } if self.proxy.owns(id) => {
                    // The response first: `actions` may terminate its transaction, which
                    // the proxy would otherwise take for a branch that failed.
                    let forwarded =
                        self.proxy
                            .on_response(&mut self.transactions, id, response, now);
                    self.execute(forwarded, now).await;
                    self.execute(actions, now).await
                }
                ClientEvent::Response {
                    id,
                    response,
                    actions,
                } => {
                    // Other requests are NOTIFYs; their final response goes to their agent.
                    if response.status().is_some_and(|s| s >= 200) {
                        if let Some((notifier, sub)) = self.notify_txs.remove(&id) {
                            let notifies = match notifier {
                                Notifier::Presence => self
                                    .presence
                                    .agent()
                                    .on_notify_response(sub, &response, now),
                                Notifier::Lists => {
                                    let output =
                                        self.lists.agent().on_notify_response(sub, &response, now);
                                    self.lists.defer(output);
                                    Vec::new()
                                }
                            };
                            self.send_notifies(Notifier::Presence, notifies, now).await;
                        }
                    }
                    self.execute(actions, now).await
                }
                ClientEvent::Retransmission(actions) => self.execute(actions, now).await,
                ClientEvent::Stray(response) => {
                    debug!(peer = %origin.peer, status = ?response.status(), "stray response dropped")
                }
            }
            return;
        }
        let reply_to = origin.response_target(&message);
        match self
            .transactions
            .on_request(message, reply_to.clone(), origin.is_reliable(), now)
        {
            ServerEvent::NewRequest { id, request } => {
                self.on_request(id, request, origin, now).await
            }
            ServerEvent::Cancel {
                id,
                request,
                target,
            } => self.on_cancel(id, request, target, now).await,
            ServerEvent::Retransmission(actions) | ServerEvent::AckForFinal { actions, .. } => {
                self.execute(actions, now).await
            }
            // The ACK for a 2xx follows the dialog's route set (through us when we proxied
            // the INVITE); any other ACK matching nothing is dropped (RFC 3261 §17.2.3).
            ServerEvent::Ack2xx { ack, .. } | ServerEvent::StrayAck(ack) => {
                if let Some(action) = self.proxy.on_ack(ack, origin, &mut self.lookups) {
                    self.execute(vec![action], now).await
                }
            }
            ServerEvent::Overloaded(request) => {
                let overload = std::time::Duration::from_secs(5);
                self.send(reply_to, reply::unavailable(&request, overload))
                    .await;
            }
            ServerEvent::Invalid { request, reason } => {
                let writer = reply::response(&request, 400, reason, &new_tag());
                self.send(reply_to, writer.finish(None, b"")).await;
            }
        }
    }

    /// RFC 3261 §8.2: a request that cannot be parsed gets a 400 (or 413/505) naming the
    /// problem when enough of it is readable to address a response; otherwise it is dropped.
    async fn reject_unparsable(&mut self, unparsable: Unparsable, origin: Origin) {
        let error = unparsable.error;
        if let Some(request) = unparsable.headers {
            let request = request.with_source(origin.peer);
            if request.is_request() && request.method() != Some(&Method::Ack) {
                info!(peer = %origin.peer, reason = %error.reason, "malformed request answered");
                let writer = reply::response(&request, error.status, &error.reason, &new_tag());
                let target = origin.response_target(&request);
                self.send(target, writer.finish(None, b"")).await;
                return;
            }
        }
        warn!(peer = %origin.peer, transport = %origin.transport, reason = %error.reason, "unparsable message dropped");
    }

    async fn on_cancel(
        &mut self,
        id: ServerTxId,
        request: Message,
        target: CancelTarget,
        now: Instant,
    ) {
        let (code, reason) = match target {
            CancelTarget::Pending(_) | CancelTarget::AlreadyAnswered(_) => (200, "OK"),
            CancelTarget::NotFound => (481, "Call/Transaction Does Not Exist"),
        };
        self.respond(id, &request, code, reason, now).await;
        // Only proxied INVITEs stay pending: their branches are cancelled, and the INVITE
        // gets its 487 once they have answered (RFC 3261 §16.10).
        if let CancelTarget::Pending(invite) = target {
            if self.proxy.is_proxying(invite) {
                let actions = self.proxy.cancel(&mut self.transactions, invite, now);
                self.execute(actions, now).await;
            }
        }
    }

    async fn on_request(&mut self, id: ServerTxId, request: Message, origin: Origin, now: Instant) {
        // Proxied requests first: Require is for the far end (RFC 3261 §16.6), and requests
        // for other domains meet the proxy's relay policy rather than a plain 403.
        let parts = Parts {
            layer: &mut self.transactions,
            auth: &mut self.auth,
            registration: &self.registration,
            lookups: &mut self.lookups,
        };
        let request = match self.proxy.on_request(parts, id, request, origin, now).await {
            Outcome::Local(request) => request,
            Outcome::Respond(status, response) => {
                return self.respond_with(id, response, status, now).await
            }
            Outcome::Forwarded(actions) | Outcome::Locating(actions) => {
                return self.execute(actions, now).await
            }
        };
        let method = request
            .method()
            .cloned()
            .unwrap_or(Method::Extension("".into()));
        if let Some(unsupported) = reply::unsupported_requirements(&request) {
            let mut writer = reply::response(&request, 420, "Bad Extension", &new_tag());
            writer.header("Unsupported", &unsupported);
            return self
                .respond_with(id, writer.finish(None, b""), 420, now)
                .await;
        }
        if let Some(refusal) = self.check_target(&request) {
            return self.respond(id, &request, 403, refusal, now).await;
        }
        match method {
            Method::Register => {
                if let Some((status, response)) = self
                    .registration
                    .handle(&mut self.auth, id, request, origin, now)
                    .await
                {
                    self.respond_with(id, response, status, now).await
                }
            }
            Method::Publish | Method::Subscribe => {
                self.on_presence(id, &method, &request, origin, now).await
            }
            // We hold no subscriptions as a subscriber (RFC 6665 §4.1.3).
            Method::Notify => {
                self.respond(id, &request, 481, "Subscription Does Not Exist", now)
                    .await
            }
            Method::Options => {
                let mut writer = reply::response(&request, 200, "OK", &new_tag());
                writer
                    .header("Allow", reply::ALLOW)
                    .header("Allow-Events", reply::ALLOW_EVENTS)
                    .header("Accept", "application/sdp")
                    .header("Accept-Encoding", "identity")
                    .header("Accept-Language", "en")
                    .header("Supported", reply::SUPPORTED);
                self.respond_with(id, writer.finish(None, b""), 200, now)
                    .await
            }
            // The proxy routes every other INVITE: this one is inside a dialog that was not
            // routed through us, so it is not ours to forward.
            Method::Invite => {
                self.respond(id, &request, 501, "Not Implemented", now)
                    .await
            }
            Method::Extension(_) => {
                self.respond(id, &request, 501, "Not Implemented", now)
                    .await
            }
            _ => {
                let mut writer = reply::response(&request, 405, "Method Not Allowed", &new_tag());
                writer.header("Allow", reply::ALLOW);
                self.respond_with(id, writer.finish(None, b""), 405, now)
                    .await
            }
        }
    }

    /// PUBLISH and SUBSCRIBE: the sender authenticates as a user of its From domain (the
    /// realm), the presentity's policy is loaded, then the agent answers.
    async fn on_presence(
        &mut self,
        id: ServerTxId,
        method: &Method,
        request: &Message,
        origin: Origin,
        now: Instant,
    ) {
        let domain = match request.from_header() {
            Ok(from) => from.uri.host_text.to_ascii_lowercase(),
            Err(error) => return self.respond(id, request, 400, &error.0, now).await,
        };
        let identity = if self.config.serves(&domain) {
            match self.auth.authenticate(request, &domain, origin, now).await {
                Ok(user) => ["sip:", &user, "@", &domain].concat(),
                Err((status, response)) => {
                    return self.respond_with(id, response, status, now).await
                }
            }
        } else if *method == Method::Subscribe {
            // A watcher of another domain (a remote RLS or user agent) cannot be challenged
            // with our credentials; like other federating presence servers we take its From
            // identity as asserted, and the presentity's rules decide what it sees.
            match request
                .from_header()
                .ok()
                .and_then(|f| presence::aor_of(&f.uri))
            {
                Some(aor) => aor,
                None => {
                    return self
                        .respond(id, request, 400, "Invalid From URI", now)
                        .await
                }
            }
        } else {
            let (status, response) = simple(request, 403, "Domain not served here");
            return self.respond_with(id, response, status, now).await;
        };
        if *method == Method::Subscribe {
            if let Some(target) = self.list_target(request, now).await {
                return self
                    .on_list_subscribe(id, request, origin, &identity, target, now)
                    .await;
            }
            if !self.resource_exists(request, now).await {
                return self.respond(id, request, 404, "Not Found", now).await;
            }
        }
        let mut notifies = Vec::new();
        if let Some(presentity) = request
            .parsed_request_uri()
            .as_ref()
            .and_then(presence::aor_of)
        {
            notifies = self.presence.ensure_policy(&presentity, now).await;
            if is_event(request, presence::XCAP_DIFF) {
                self.presence.ensure_documents(&presentity).await;
            }
        }
        let answer = if *method == Method::Publish {
            self.presence.agent().on_publish(request, &identity, now)
        } else {
            let dest = origin.response_target(request);
            let local = self.transport.local_addr(origin.transport);
            let flow = self.presence.flow(origin, dest, local);
            self.presence
                .agent()
                .on_subscribe(request, flow, &identity, now)
        };
        self.respond_with(id, answer.response, answer.status, now)
            .await;
        notifies.extend(answer.notifies);
        self.send_notifies(Notifier::Presence, notifies, now).await;
    }

    /// An XCAP write: the agent re-evaluates what depends on it.
    pub async fn on_document_change(
        &mut self,
        change: Result<xcap::DocumentChange, tokio::sync::broadcast::error::RecvError>,
        now: Instant,
    ) {
        let list_change = change.as_ref().ok().cloned();
        let notifies = self.presence.on_document_change(change, now).await;
        self.send_notifies(Notifier::Presence, notifies, now).await;
        if let Some(change) = list_change {
            self.on_list_document_change(&change, now).await;
        }
        self.settle_lists(now).await;
    }

    /// Starts a client transaction per NOTIFY; a NOTIFY that cannot even be sent fails its
    /// subscription like a timeout would.
    async fn send_notifies(
        &mut self,
        notifier: Notifier,
        notifies: Vec<Notify<Target>>,
        now: Instant,
    ) {
        let mut queue: VecDeque<(Notifier, Notify<Target>)> =
            notifies.into_iter().map(|n| (notifier, n)).collect();
        while let Some((notifier, notify)) = queue.pop_front() {
            let more = match self.transactions.send_built(
                Method::Notify,
                notify.branch,
                notify.data,
                notify.dest,
                notify.reliable,
                now,
            ) {
                Ok((tx, send)) => {
                    self.notify_txs.insert(tx, (notifier, notify.id));
                    self.execute_one(send, now).await
                }
                Err(error) => {
                    warn!(?error, "NOTIFY not sent");
                    self.notify_failed(notifier, notify.id, now)
                }
            };
            queue.extend(more.into_iter().map(|n| (Notifier::Presence, n)));
        }
    }

    /// A NOTIFY got no answer (timeout, transport error, not sendable): its agent decides
    /// what follows (RFC 6665 §4.2.2). Returns the presence agent's further NOTIFYs; the
    /// list server's wait in its backlog.
    fn notify_failed(
        &mut self,
        notifier: Notifier,
        sub: SubscriptionId,
        now: Instant,
    ) -> Vec<Notify<Target>> {
        debug!(?notifier, ?sub, "NOTIFY failed");
        match notifier {
            Notifier::Presence => self.presence.agent().on_notify_failed(sub, now),
            Notifier::Lists => {
                let output = self.lists.agent().on_notify_failed(sub, now);
                self.lists.defer(output);
                Vec::new()
            }
        }
    }

    /// The Request-URI must name this server: one of its domains, or an IP address (a
    /// request sent to the server itself, e.g. an OPTIONS probe). Anything else would make
    /// us a relay, which we are not (RFC 3261 §16.4 is the proxy's business).
    fn check_target(&self, request: &Message) -> Option<&'static str> {
        let uri = request.parsed_request_uri()?;
        if !uri.is_sip() {
            return None;
        }
        match uri.host {
            sip_message::Host::Name(name)
                if !self.config.serves(name) && !name.eq_ignore_ascii_case("localhost") =>
            {
                Some("Domain not served here")
            }
            _ => None,
        }
    }

    async fn respond(
        &mut self,
        id: ServerTxId,
        request: &Message,
        code: u16,
        reason: &str,
        now: Instant,
    ) {
        let data = reply::response(request, code, reason, &new_tag()).finish(None, b"");
        self.respond_with(id, data, code, now).await
    }

    async fn respond_with(&mut self, id: ServerTxId, data: Bytes, code: u16, now: Instant) {
        match self.transactions.respond(id, data, code, now) {
            Ok(actions) => self.execute(actions, now).await,
            Err(error) => warn!(%error, "response not sent"),
        }
    }

    async fn execute<C>(&mut self, actions: C, now: Instant)
    where
        C: IntoIterator<Item = Action<Target>> + FromIterator<Action<Target>>,
        for<'a> &'a C: IntoIterator<Item = &'a Action<Target>>,
    {
        let actions = self.proxy.absorb(&mut self.transactions, actions, now);
        let mut notifies = Vec::new();
        for action in actions {
            notifies.extend(self.execute_one(action, now).await);
        }
        if !notifies.is_empty() {
            self.send_notifies(Notifier::Presence, notifies, now).await;
        }
    }

    /// One transaction action; a failed NOTIFY transaction may end its subscription, which
    /// can produce further NOTIFYs (watcher info), returned to the caller to send.
    async fn execute_one(&mut self, action: Action<Target>, now: Instant) -> Vec<Notify<Target>> {
        match action {
            Action::Send { dest, data } => {
                if let Some((dest, data)) = self.connector.detach(dest, data) {
                    self.send(dest, data).await;
                }
            }
            Action::Timeout(TxId::Client(tx)) | Action::TransportError(TxId::Client(tx)) => {
                if let Some((notifier, sub)) = self.notify_txs.remove(&tx) {
                    return self.notify_failed(notifier, sub, now);
                }
            }
            Action::Timeout(id) => debug!(?id, "transaction timed out"),
            Action::TransportError(id) => debug!(?id, "transaction transport error"),
            Action::Terminated(TxId::Client(tx)) => {
                self.notify_txs.remove(&tx);
            }
            Action::Terminated(_) => {}
        }
        Vec::new()
    }

    /// Datagrams and messages for live connections wait in the outboxes until
    /// [`SipCore::flush`]; anything else (a connection still to be opened) is sent now.
    async fn send(&mut self, target: Target, data: Bytes) {
        if let Some(addr) = target.datagram_addr() {
            self.outbox.push((addr, data));
        } else if let Some(connection) = self.transport.live_connection(&target) {
            self.stream_outbox.push((connection, data));
        } else if let Err(error) = self.transport.send(target, data).await {
            debug!(%error, "send failed");
        }
    }

    /// Sends what was queued while handling the last batch of events, all at once: the
    /// datagrams in as few system calls as the kernel allows, and one write per connection.
    /// The event loop calls it after every batch, so a message waits no longer than the
    /// handling of the events that arrived with the one that produced it.
    pub async fn flush(&mut self) {
        if !self.outbox.is_empty() {
            for error in self.transport.send_datagrams(&self.outbox).await {
                debug!(%error, "send failed");
            }
            self.outbox.clear();
        }
        if !self.stream_outbox.is_empty() {
            for error in self.transport.send_on_connections(&mut self.stream_outbox) {
                debug!(%error, "send failed");
            }
            self.stream_outbox.clear();
        }
    }
}

fn is_event(request: &Message, package: &str) -> bool {
    matches!(request.event(), Ok(Some(e)) if e.package.eq_ignore_ascii_case(package))
}

/// A To tag (RFC 3261 §19.3: at least 32 bits of randomness).
pub fn new_tag() -> String {
    format!("{:016x}", rand::random::<u64>())
}
