//! The SIP request dispatcher: drives the sans-IO transaction layer with what the
//! transports receive, picks the handler by method (RFC 3261 §8.2, §10, §11), and executes
//! the resulting actions. Time enters only as arguments.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use sip_message::{Limits, Message, Method};
use sip_transaction::{
    Action, CancelTarget, ClientEvent, ServerEvent, ServerTxId, TransactionLayer,
};
use sip_transport::{Target, TransportEvent, TransportHandle};
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::register::{Persisted, Registration};
use crate::reply::{self, Origin};

pub struct SipCore {
    config: Arc<Config>,
    limits: Limits,
    transactions: TransactionLayer<Target>,
    registration: Registration,
    transport: TransportHandle,
}

impl SipCore {
    pub fn new(
        config: Arc<Config>,
        registration: Registration,
        transport: TransportHandle,
    ) -> SipCore {
        let limits = config.limits.sip();
        let transactions = TransactionLayer::new(sip_transaction::Config {
            max_server_transactions: config.limits.max_transactions,
            ..sip_transaction::Config::default()
        });
        SipCore {
            config,
            limits,
            transactions,
            registration,
            transport,
        }
    }

    pub fn next_deadline(&mut self) -> Option<Instant> {
        let transactions = self.transactions.next_deadline();
        let registrar = self.registration.next_deadline();
        match (transactions, registrar) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub async fn on_timer(&mut self, now: Instant) {
        let actions = self.transactions.on_timer(now);
        self.execute(actions).await;
        self.registration.on_timer(now);
    }

    /// Bindings a writer batch stored (or failed to): send the REGISTER responses.
    pub async fn on_persisted(&mut self, persisted: Persisted, now: Instant) {
        for reply in self.registration.on_persisted(persisted) {
            self.respond_with(reply.id, reply.response, reply.status, now)
                .await;
        }
    }

    pub async fn on_transport_event(&mut self, event: TransportEvent, now: Instant) {
        match event {
            TransportEvent::Message(inbound) => {
                let origin = Origin {
                    transport: inbound.transport,
                    peer: inbound.peer,
                    connection: inbound.connection,
                };
                self.on_message(inbound.data, origin, now).await;
            }
            // Bindings keep the address their REGISTER came from; requests to them reuse a live
            // connection to that address or open one, so a closed flow needs no bookkeeping.
            TransportEvent::Closed(_) => {}
        }
    }

    async fn on_message(&mut self, data: Bytes, origin: Origin, now: Instant) {
        let message = match Message::parse(data.clone(), &self.limits) {
            Ok(message) => message.with_source(origin.peer),
            Err(error) => return self.reject_unparsable(data, error, origin).await,
        };
        if !message.is_request() {
            // We send no requests yet; a response can only be stray (RFC 3261 §18.1.2).
            match self.transactions.on_response(message, now) {
                ClientEvent::Response { actions, .. } | ClientEvent::Retransmission(actions) => {
                    self.execute(actions).await
                }
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
                self.execute(actions).await
            }
            // We answer INVITE with an error, so there is no 2xx to acknowledge; an ACK that
            // matches nothing is dropped (RFC 3261 §17.2.3).
            ServerEvent::Ack2xx { .. } | ServerEvent::StrayAck(_) => {}
            ServerEvent::Overloaded(request) => {
                let mut writer = reply::response(&request, 503, "Service Unavailable", &new_tag());
                writer.header("Retry-After", "5");
                self.send(reply_to, writer.finish(None, b"")).await;
            }
            ServerEvent::Invalid { request, reason } => {
                let writer = reply::response(&request, 400, reason, &new_tag());
                self.send(reply_to, writer.finish(None, b"")).await;
            }
        }
    }

    /// RFC 3261 §8.2: a request that cannot be parsed gets a 400 (or 413/505) naming the
    /// problem when enough of it is readable to address a response; otherwise it is dropped.
    async fn reject_unparsable(
        &mut self,
        data: Bytes,
        error: sip_message::ParseError,
        origin: Origin,
    ) {
        if error.respondable {
            if let Ok(request) = Message::parse_headers_only(data, &self.limits) {
                let request = request.with_source(origin.peer);
                if request.is_request() && request.method() != Some(&Method::Ack) {
                    info!(peer = %origin.peer, reason = %error.reason, "malformed request answered");
                    let writer = reply::response(&request, error.status, &error.reason, &new_tag());
                    let target = origin.response_target(&request);
                    self.send(target, writer.finish(None, b"")).await;
                    return;
                }
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
        // Every INVITE is answered at once (501 until the proxy exists), so no INVITE is
        // ever pending long enough to need the 487 of RFC 3261 §9.2.
        self.respond(id, &request, code, reason, now).await;
    }

    async fn on_request(&mut self, id: ServerTxId, request: Message, origin: Origin, now: Instant) {
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
                if let Some((status, response)) =
                    self.registration.handle(id, request, origin, now).await
                {
                    self.respond_with(id, response, status, now).await
                }
            }
            Method::Options => {
                let mut writer = reply::response(&request, 200, "OK", &new_tag());
                writer
                    .header("Allow", reply::ALLOW)
                    .header("Accept", "application/sdp")
                    .header("Accept-Encoding", "identity")
                    .header("Accept-Language", "en")
                    .header("Supported", reply::SUPPORTED);
                self.respond_with(id, writer.finish(None, b""), 200, now)
                    .await
            }
            // Routing to registered users comes with the proxy; until then the INVITE server
            // transaction ends with 501 (and absorbs the ACK).
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

    /// The Request-URI must name this server: one of its domains, or an IP address (a
    /// request sent to the server itself, e.g. an OPTIONS probe). Anything else would make
    /// us a relay, which we are not (RFC 3261 §16.4 is the proxy's business).
    fn check_target(&self, request: &Message) -> Option<&'static str> {
        let uri = request
            .request_uri()
            .and_then(|text| sip_message::Uri::parse(text).ok())?;
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
            Ok(actions) => self.execute(actions).await,
            Err(error) => warn!(%error, "response not sent"),
        }
    }

    async fn execute(&mut self, actions: Vec<Action<Target>>) {
        for action in actions {
            match action {
                Action::Send { dest, data } => self.send(dest, data).await,
                Action::Timeout(id) => debug!(?id, "transaction timed out"),
                Action::TransportError(id) => debug!(?id, "transaction transport error"),
                Action::Terminated(_) => {}
            }
        }
    }

    async fn send(&self, target: Target, data: Bytes) {
        if let Err(error) = self.transport.send(target, data).await {
            debug!(%error, "send failed");
        }
    }
}

/// A To tag (RFC 3261 §19.3: at least 32 bits of randomness).
pub fn new_tag() -> String {
    format!("{:016x}", rand::random::<u64>())
}
