//! The transaction table and the four state machines of RFC 3261 §17 (with RFC 6026).
//!
//! Public entry points take parsed [`Message`]s, extract the matching key once
//! ([`crate::key`]) and hand the key to the `route_*`/`start_client` cores, which never look
//! at a message again except to build the ACK of §17.1.1.3.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sip_message::{HeaderName, Message, MessageWriter, Method};

use crate::absorb::Absorbing;
use crate::key::{response_to_tag, ClientKey, ClientKeyView, RequestInfo, ResponseKey, ServerKey};
use crate::table::Table;
use crate::timer::{TimerKind, TimerQueue, TxTimers};
use crate::{
    Action, CancelTarget, ClientEvent, ClientTxId, Config, RespondError, ResponseActions,
    SendError, ServerEvent, ServerTxId, TxId,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServerState {
    /// Non-INVITE before any response.
    Trying,
    Proceeding,
    Completed,
    /// INVITE: ACK received for the non-2xx final response.
    Confirmed,
    /// INVITE: 2xx sent (RFC 6026 §8.5).
    Accepted,
}

#[derive(Debug)]
struct ServerTx<D> {
    key: ServerKey,
    invite: bool,
    state: ServerState,
    dest: D,
    reliable: bool,
    /// Resent on request retransmissions and by Timer G.
    last_response: Option<Bytes>,
    /// Legacy keys only: the To tag of our final response, which the ACK must carry.
    response_to_tag: Option<Box<str>>,
    timers: TxTimers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientState {
    /// INVITE before any response.
    Calling,
    /// Non-INVITE before any response.
    Trying,
    Proceeding,
    Completed,
    /// INVITE: 2xx received (RFC 6026 §8.4).
    Accepted,
}

#[derive(Debug)]
struct ClientTx<D> {
    key: ClientKey,
    invite: bool,
    state: ClientState,
    dest: D,
    reliable: bool,
    request_bytes: Bytes,
    /// INVITE only: the request the ACK for a non-2xx response is built from (boxed, as
    /// the many non-INVITE transactions would otherwise each carry its room).
    request: Option<Box<Message>>,
    /// INVITE only: the ACK sent in Completed, resent for each retransmitted final response.
    ack: Option<Bytes>,
    timers: TxTimers,
}

/// How a request was routed, before the message is attached to the event.
pub(crate) enum RoutedRequest<D> {
    New(ServerTxId),
    Cancel(ServerTxId, CancelTarget),
    Retransmission(Vec<Action<D>>),
    AckForFinal(ServerTxId, Vec<Action<D>>),
    Ack2xx(ServerTxId),
    StrayAck,
    Overloaded,
}

/// How a response was routed, before the message is attached to the event.
pub(crate) enum RoutedResponse<D> {
    Deliver(ClientTxId, ResponseActions<D>),
    Absorbed(ResponseActions<D>),
    Stray,
}

/// All transactions of one SIP element. See the crate documentation.
#[derive(Debug)]
pub struct TransactionLayer<D> {
    config: Config,
    servers: Table<ServerTx<D>>,
    server_index: HashMap<ServerKey, ServerTxId>,
    clients: Table<ClientTx<D>>,
    /// Keyed by branches we generated, so a fast hash that is no defence against chosen
    /// keys (which the server index, keyed by peers' branches, keeps) serves.
    client_index: HashMap<ClientKey, ClientTxId, foldhash::fast::RandomState>,
    /// Completed non-INVITE client transactions over UDP, as their keys' hashes (Timer K).
    absorbing: Absorbing,
    queue: TimerQueue,
}

impl<D: Clone> TransactionLayer<D> {
    pub fn new(config: Config) -> Self {
        TransactionLayer {
            config,
            servers: Table::default(),
            server_index: HashMap::new(),
            clients: Table::default(),
            client_index: HashMap::default(),
            absorbing: Absorbing::default(),
            queue: TimerQueue::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Live server transactions.
    pub fn server_count(&self) -> usize {
        self.servers.len()
    }

    /// Live client transactions.
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    // ---------------------------------------------------------------- server side

    /// A request arrived from `source` (where its responses will be sent) over a reliable
    /// (stream) or unreliable (datagram) transport.
    pub fn on_request(
        &mut self,
        request: Message,
        source: D,
        reliable: bool,
        now: Instant,
    ) -> ServerEvent<D> {
        let info = match RequestInfo::from_message(&request) {
            Ok(info) => info,
            Err(reason) => return ServerEvent::Invalid { request, reason },
        };
        match self.route_request(info, source, reliable, now) {
            RoutedRequest::New(id) => ServerEvent::NewRequest { id, request },
            RoutedRequest::Cancel(id, target) => ServerEvent::Cancel {
                id,
                request,
                target,
            },
            RoutedRequest::Retransmission(actions) => ServerEvent::Retransmission(actions),
            RoutedRequest::AckForFinal(id, actions) => ServerEvent::AckForFinal { id, actions },
            RoutedRequest::Ack2xx(invite) => ServerEvent::Ack2xx {
                invite,
                ack: request,
            },
            RoutedRequest::StrayAck => ServerEvent::StrayAck(request),
            RoutedRequest::Overloaded => ServerEvent::Overloaded(request),
        }
    }

    pub(crate) fn route_request(
        &mut self,
        info: RequestInfo,
        source: D,
        reliable: bool,
        now: Instant,
    ) -> RoutedRequest<D> {
        if info.method == Method::Ack {
            return self.route_ack(&info, now);
        }
        if let Some(&id) = self.server_index.get(&info.key) {
            return RoutedRequest::Retransmission(self.absorb_request(id, source));
        }
        if self.servers.len() >= self.config.max_server_transactions {
            return RoutedRequest::Overloaded;
        }
        let cancel_target = (info.method == Method::Cancel).then(|| {
            let invite = self.server_index.get(&info.key.with_method(Method::Invite));
            match invite.and_then(|id| self.servers.get(id.0).map(|tx| (*id, tx.state))) {
                Some((id, ServerState::Proceeding)) => CancelTarget::Pending(id),
                Some((id, _)) => CancelTarget::AlreadyAnswered(id),
                None => CancelTarget::NotFound,
            }
        });
        let invite = info.method == Method::Invite;
        let id = ServerTxId(self.servers.insert_with(|_| ServerTx {
            key: info.key.clone(),
            invite,
            state: if invite {
                ServerState::Proceeding
            } else {
                ServerState::Trying
            },
            dest: source,
            reliable,
            last_response: None,
            response_to_tag: None,
            timers: TxTimers::default(),
        }));
        self.server_index.insert(info.key, id);
        match cancel_target {
            Some(target) => RoutedRequest::Cancel(id, target),
            None => RoutedRequest::New(id),
        }
    }

    /// A retransmitted request (§17.2.1, §17.2.2): resend the last response where the state
    /// machine says so. The response goes to the newest source, which matters when a stream
    /// client retransmits over a new connection after the old one closed.
    fn absorb_request(&mut self, id: ServerTxId, source: D) -> Vec<Action<D>> {
        let Some(tx) = self.servers.get_mut(id.0) else {
            return Vec::new();
        };
        tx.dest = source;
        let resend = matches!(tx.state, ServerState::Proceeding | ServerState::Completed);
        match (&tx.last_response, resend) {
            (Some(data), true) => vec![Action::Send {
                dest: tx.dest.clone(),
                data: data.clone(),
            }],
            _ => Vec::new(),
        }
    }

    fn route_ack(&mut self, info: &RequestInfo, now: Instant) -> RoutedRequest<D> {
        let found = self
            .server_index
            .get(&info.key)
            .or_else(|| {
                info.key
                    .without_to_tag()
                    .and_then(|k| self.server_index.get(&k))
            })
            .copied();
        let Some(id) = found else {
            return RoutedRequest::StrayAck;
        };
        let Some(tx) = self.servers.get_mut(id.0) else {
            return RoutedRequest::StrayAck;
        };
        if let Some(expected) = &tx.response_to_tag {
            if info.to_tag.as_ref() != Some(expected) {
                return RoutedRequest::StrayAck;
            }
        }
        match tx.state {
            ServerState::Completed => {
                tx.state = ServerState::Confirmed;
                tx.timers.stop_running();
                let timer_i = if tx.reliable {
                    Duration::ZERO
                } else {
                    self.config.t4
                };
                let mut actions = Vec::new();
                self.linger_server(id, timer_i, now, &mut actions);
                RoutedRequest::AckForFinal(id, actions)
            }
            ServerState::Confirmed => RoutedRequest::Retransmission(Vec::new()),
            ServerState::Accepted => RoutedRequest::Ack2xx(id),
            // No final response yet, so the ACK acknowledges nothing of ours.
            ServerState::Trying | ServerState::Proceeding => RoutedRequest::StrayAck,
        }
    }

    /// Send a response on server transaction `id` and advance its state machine.
    /// `status` must be the status code written in `response`.
    pub fn respond(
        &mut self,
        id: ServerTxId,
        response: Bytes,
        status: u16,
        now: Instant,
    ) -> Result<Vec<Action<D>>, RespondError> {
        if !(100..=699).contains(&status) {
            return Err(RespondError::InvalidStatus(status));
        }
        let timeout = self.config.timeout();
        let t1 = self.config.t1;
        let tx = self
            .servers
            .get_mut(id.0)
            .ok_or(RespondError::UnknownTransaction)?;
        let tid = TxId::Server(id);
        let mut actions = vec![Action::Send {
            dest: tx.dest.clone(),
            data: response.clone(),
        }];
        let open = matches!(tx.state, ServerState::Trying | ServerState::Proceeding);
        if status < 200 {
            if !open {
                return Err(RespondError::FinalAlreadySent);
            }
            tx.state = ServerState::Proceeding;
            tx.last_response = Some(response);
            return Ok(actions);
        }
        if !open {
            // RFC 6026 §8.5: the TU may pass further 2xx (e.g. its own retransmissions).
            if tx.invite && tx.state == ServerState::Accepted && status < 300 {
                return Ok(actions);
            }
            return Err(RespondError::FinalAlreadySent);
        }
        if tx.invite && tx.key.is_legacy() {
            tx.response_to_tag = response_to_tag(&response);
        }
        tx.last_response = Some(response);
        if !tx.invite {
            tx.state = ServerState::Completed;
            let timer_j = if tx.reliable { Duration::ZERO } else { timeout };
            self.linger_server(id, timer_j, now, &mut actions);
        } else if status < 300 {
            tx.state = ServerState::Accepted;
            tx.timers
                .arm(&mut self.queue, tid, TimerKind::Linger, now, timeout); // Timer L
        } else {
            tx.state = ServerState::Completed;
            if !tx.reliable {
                tx.timers.interval = t1;
                tx.timers
                    .arm(&mut self.queue, tid, TimerKind::Retransmit, now, t1);
                // Timer G
            }
            tx.timers
                .arm(&mut self.queue, tid, TimerKind::Timeout, now, timeout); // Timer H
        }
        Ok(actions)
    }

    /// Arm Timer I/J, or terminate now when it is zero (reliable transports) or there is no
    /// room to linger ([`may_linger`]).
    fn linger_server(
        &mut self,
        id: ServerTxId,
        delay: Duration,
        now: Instant,
        actions: &mut Vec<Action<D>>,
    ) {
        if delay.is_zero() || !may_linger(self.servers.len(), self.config.max_server_transactions) {
            self.remove_server(id, actions);
        } else if let Some(tx) = self.servers.get_mut(id.0) {
            tx.timers.arm(
                &mut self.queue,
                TxId::Server(id),
                TimerKind::Linger,
                now,
                delay,
            );
        }
    }

    fn remove_server(&mut self, id: ServerTxId, actions: &mut Vec<Action<D>>) {
        if let Some(tx) = self.servers.remove(id.0) {
            if self.server_index.get(&tx.key) == Some(&id) {
                self.server_index.remove(&tx.key);
            }
            actions.push(Action::Terminated(TxId::Server(id)));
        }
    }

    fn fire_server(
        &mut self,
        id: ServerTxId,
        kind: TimerKind,
        at: Instant,
        now: Instant,
        actions: &mut Vec<Action<D>>,
    ) {
        let t2 = self.config.t2;
        let Some(tx) = self.servers.get_mut(id.0) else {
            return;
        };
        if !tx.timers.is_armed(kind, at) {
            return;
        }
        *tx.timers.slot(kind) = None;
        match kind {
            TimerKind::Retransmit => {
                // Timer G (§17.2.1): only armed in Completed, stopped by the ACK.
                if let Some(data) = &tx.last_response {
                    actions.push(Action::Send {
                        dest: tx.dest.clone(),
                        data: data.clone(),
                    });
                }
                tx.timers.interval = tx.timers.interval.saturating_mul(2).min(t2);
                tx.timers
                    .rearm_retransmit(&mut self.queue, TxId::Server(id), at, now);
            }
            TimerKind::Timeout => {
                // Timer H: no ACK for our non-2xx final response.
                actions.push(Action::Timeout(TxId::Server(id)));
                self.remove_server(id, actions);
            }
            TimerKind::Linger => self.remove_server(id, actions),
        }
    }

    // ---------------------------------------------------------------- client side

    /// Start a client transaction for `request` (built by the TU, with a fresh
    /// `z9hG4bK` branch in its top Via) and send it to `dest`. Returns the one action
    /// starting a transaction takes, the [`Action::Send`] of the request (no vector for it:
    /// a NOTIFY fan-out starts one per NOTIFY, and a vector cost an allocation each).
    pub fn send_request(
        &mut self,
        request: Message,
        dest: D,
        reliable: bool,
        now: Instant,
    ) -> Result<(ClientTxId, Action<D>), SendError> {
        let method = request.method().ok_or(SendError::NotARequest)?.clone();
        if method == Method::Ack {
            return Err(SendError::AckWithoutTransaction);
        }
        let branch = request
            .top_via()
            .ok()
            .and_then(|via| via.branch().map(Box::from))
            .ok_or(SendError::MissingBranch)?;
        let invite = method == Method::Invite;
        let data = request.as_bytes().clone();
        let stored = invite.then_some(request);
        self.start_client(
            ClientKey { branch, method },
            data,
            stored,
            dest,
            reliable,
            now,
        )
    }

    /// Start a non-INVITE client transaction for a request the TU wrote itself and knows to
    /// be well formed, given as its bytes, method and top-Via `branch`: all a non-INVITE
    /// client transaction needs (§17.1.3 matches responses by branch and method), so the
    /// request is never parsed. The NOTIFY fan-out goes this way. INVITE needs the parsed
    /// request (for CANCEL and the ACK of a failure) and goes through [`Self::send_request`].
    /// Returns what [`Self::send_request`] returns.
    pub fn send_built(
        &mut self,
        method: Method,
        branch: Box<str>,
        data: Bytes,
        dest: D,
        reliable: bool,
        now: Instant,
    ) -> Result<(ClientTxId, Action<D>), SendError> {
        match method {
            Method::Ack => return Err(SendError::AckWithoutTransaction),
            Method::Invite => return Err(SendError::InviteNeedsMessage),
            _ => {}
        }
        if branch.is_empty() {
            return Err(SendError::MissingBranch);
        }
        let key = ClientKey { branch, method };
        self.start_client(key, data, None, dest, reliable, now)
    }

    pub(crate) fn start_client(
        &mut self,
        key: ClientKey,
        data: Bytes,
        request: Option<Message>,
        dest: D,
        reliable: bool,
        now: Instant,
    ) -> Result<(ClientTxId, Action<D>), SendError> {
        if self.clients.len() >= self.config.max_client_transactions {
            return Err(SendError::Overloaded);
        }
        let Entry::Vacant(index_entry) = self.client_index.entry(key.clone()) else {
            return Err(SendError::DuplicateBranch);
        };
        let invite = key.method == Method::Invite;
        let send = Action::Send {
            dest: dest.clone(),
            data: data.clone(),
        };
        let (queue, config) = (&mut self.queue, &self.config);
        let id = ClientTxId(self.clients.insert_with(|handle| {
            let tid = TxId::Client(ClientTxId(handle));
            let mut timers = TxTimers::default();
            if reliable {
                timers.arm(queue, tid, TimerKind::Timeout, now, config.timeout());
            // B / F
            } else {
                timers.interval = config.t1;
                timers.arm(queue, tid, TimerKind::Retransmit, now, config.t1); // A / E
                timers.defer_timeout(now, config.timeout()); // B / F
            }
            ClientTx {
                key,
                invite,
                state: if invite {
                    ClientState::Calling
                } else {
                    ClientState::Trying
                },
                dest,
                reliable,
                request_bytes: data,
                request: request.map(Box::new),
                ack: None,
                timers,
            }
        }));
        index_entry.insert(id);
        Ok((id, send))
    }

    /// The live client transaction that sent a request with this top-Via `branch` and
    /// method: how a shell that sent the request's bytes on its own (a connection attempt
    /// left to a task) finds the transaction to report a transport error to.
    pub fn client_for(&self, branch: &str, method: Method) -> Option<ClientTxId> {
        let key = ResponseKey::new(branch, method);
        self.client_index.get(&key as &dyn ClientKeyView).copied()
    }

    /// A response arrived from the transport.
    pub fn on_response(&mut self, response: Message, now: Instant) -> ClientEvent<D> {
        let routed = match (response.status(), ResponseKey::of(&response)) {
            (Some(status), Some(key)) => self.route_response(&key, status, Some(&response), now),
            _ => RoutedResponse::Stray,
        };
        match routed {
            RoutedResponse::Deliver(id, actions) => ClientEvent::Response {
                id,
                response,
                actions,
            },
            RoutedResponse::Absorbed(actions) => ClientEvent::Retransmission(actions),
            RoutedResponse::Stray => ClientEvent::Stray(response),
        }
    }

    pub(crate) fn route_response(
        &mut self,
        key: &dyn ClientKeyView,
        status: u16,
        response: Option<&Message>,
        now: Instant,
    ) -> RoutedResponse<D> {
        let Some(&id) = self.client_index.get(key) else {
            return if self
                .absorbing
                .absorbs(absorb_hash(&self.client_index, key), now)
            {
                RoutedResponse::Absorbed(ResponseActions::new())
            } else {
                RoutedResponse::Stray
            };
        };
        let Some(tx) = self.clients.get_mut(id.0) else {
            return RoutedResponse::Stray;
        };
        let tid = TxId::Client(id);
        let mut actions = ResponseActions::new();
        let linger = match (tx.invite, tx.state) {
            (true, ClientState::Calling | ClientState::Proceeding) => {
                // Any response stops Timers A and B (§17.1.1.2).
                tx.timers.stop_running();
                if status < 200 {
                    tx.state = ClientState::Proceeding;
                    return RoutedResponse::Deliver(id, actions);
                }
                if status < 300 {
                    tx.state = ClientState::Accepted;
                    let timer_m = self.config.timeout();
                    tx.timers
                        .arm(&mut self.queue, tid, TimerKind::Linger, now, timer_m);
                    return RoutedResponse::Deliver(id, actions);
                }
                tx.state = ClientState::Completed;
                tx.ack = tx
                    .request
                    .as_ref()
                    .zip(response)
                    .and_then(|(req, resp)| build_ack(req, resp));
                if let Some(ack) = &tx.ack {
                    actions.push(Action::Send {
                        dest: tx.dest.clone(),
                        data: ack.clone(),
                    });
                }
                if tx.reliable {
                    Duration::ZERO
                } else {
                    self.config.timer_d
                }
            }
            (true, ClientState::Accepted) => {
                // RFC 6026 §8.4: further 2xx (retransmissions, other forks) go to the TU.
                return if (200..300).contains(&status) {
                    RoutedResponse::Deliver(id, actions)
                } else {
                    RoutedResponse::Absorbed(actions)
                };
            }
            (true, ClientState::Completed) => {
                if status >= 300 {
                    if let Some(ack) = &tx.ack {
                        actions.push(Action::Send {
                            dest: tx.dest.clone(),
                            data: ack.clone(),
                        });
                    }
                }
                return RoutedResponse::Absorbed(actions);
            }
            (false, ClientState::Trying | ClientState::Proceeding) => {
                if status < 200 {
                    // Timer E keeps running; once it fires in Proceeding its interval is T2.
                    tx.state = ClientState::Proceeding;
                    return RoutedResponse::Deliver(id, actions);
                }
                tx.timers.stop_running();
                if !tx.reliable {
                    // Timer K: the key alone stays, to absorb retransmissions for T4.
                    self.absorbing.insert(
                        absorb_hash(&self.client_index, &tx.key),
                        now + self.config.t4,
                        now,
                        self.config.max_client_transactions,
                    );
                }
                Duration::ZERO
            }
            // Combinations that cannot occur (a non-INVITE client transaction ends with its
            // final response, so it is never found Completed).
            _ => return RoutedResponse::Absorbed(actions),
        };
        if linger.is_zero() {
            self.remove_client(id, &mut actions);
        } else {
            tx.timers
                .arm(&mut self.queue, tid, TimerKind::Linger, now, linger);
        }
        RoutedResponse::Deliver(id, actions)
    }

    fn remove_client(&mut self, id: ClientTxId, actions: &mut impl Extend<Action<D>>) {
        if let Some(tx) = self.clients.remove(id.0) {
            if let Entry::Occupied(entry) = self.client_index.entry(tx.key) {
                if *entry.get() == id {
                    entry.remove();
                }
            }
            actions.extend([Action::Terminated(TxId::Client(id))]);
        }
    }

    fn fire_client(
        &mut self,
        id: ClientTxId,
        kind: TimerKind,
        at: Instant,
        now: Instant,
        actions: &mut Vec<Action<D>>,
    ) {
        let t2 = self.config.t2;
        let Some(tx) = self.clients.get_mut(id.0) else {
            return;
        };
        if !tx.timers.is_armed(kind, at) {
            return;
        }
        *tx.timers.slot(kind) = None;
        match kind {
            TimerKind::Retransmit => {
                tx.timers.interval = match tx.state {
                    // Timer A doubles without bound (§17.1.1.2).
                    ClientState::Calling => tx.timers.interval.saturating_mul(2),
                    ClientState::Trying => tx.timers.interval.saturating_mul(2).min(t2),
                    ClientState::Proceeding => t2,
                    // Stopped on leaving those states; nothing to do.
                    ClientState::Completed | ClientState::Accepted => return,
                };
                actions.push(Action::Send {
                    dest: tx.dest.clone(),
                    data: tx.request_bytes.clone(),
                });
                let remaining = self.config.timeout().saturating_sub(self.config.t1);
                tx.timers
                    .queue_deferred_timeout(&mut self.queue, TxId::Client(id), remaining);
                tx.timers
                    .rearm_retransmit(&mut self.queue, TxId::Client(id), at, now);
            }
            TimerKind::Timeout => {
                // Timer B / F.
                actions.push(Action::Timeout(TxId::Client(id)));
                self.remove_client(id, actions);
            }
            TimerKind::Linger => self.remove_client(id, actions),
        }
    }

    // ---------------------------------------------------------------- both sides

    /// Fire every timer due at `now`; call when `now >= next_deadline()`.
    pub fn on_timer(&mut self, now: Instant) -> Vec<Action<D>> {
        let mut actions = Vec::new();
        while let Some((at, kind, id)) = self.queue.pop_due(now) {
            match id {
                TxId::Server(id) => self.fire_server(id, kind, at, now, &mut actions),
                TxId::Client(id) => self.fire_client(id, kind, at, now, &mut actions),
            }
        }
        actions
    }

    /// When [`Self::on_timer`] should next be called; None when no timer is armed.
    /// Takes `&mut self` to discard cancelled timers at the head of the queue, so the caller
    /// is not woken for nothing.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        self.compact_timers();
        while let Some((at, kind, id)) = self.queue.peek() {
            if self.timer_is_live(at, kind, id) {
                return Some(at);
            }
            self.queue.pop();
        }
        None
    }

    #[cfg(test)]
    pub(crate) fn queued_timers(&self) -> usize {
        self.queue.len()
    }

    fn timer_is_live(&self, at: Instant, kind: TimerKind, id: TxId) -> bool {
        match id {
            TxId::Server(id) => self
                .servers
                .get(id.0)
                .is_some_and(|tx| tx.timers.is_armed(kind, at)),
            TxId::Client(id) => self
                .clients
                .get(id.0)
                .is_some_and(|tx| tx.timers.is_armed(kind, at)),
        }
    }

    /// Drop cancelled heap entries once they clearly outnumber the armed ones (at most three
    /// per transaction), so a burst of short transactions on reliable transports, each
    /// leaving a cancelled 64*T1 entry behind, cannot grow the heap for long. Amortised
    /// O(1) per armed timer: after a pass the heap must grow by the live size again first.
    fn compact_timers(&mut self) {
        let live_bound = 3 * (self.servers.len() + self.clients.len());
        if self.queue.len() > 2 * live_bound + 1024 {
            let mut queue = std::mem::take(&mut self.queue);
            queue.retain(|at, kind, id| self.timer_is_live(at, kind, id));
            self.queue = queue;
        }
    }

    /// The transport could not deliver a message of transaction `id` (§17.1.4, §17.2.4,
    /// after any §18.2.2 fallback the caller tried). Terminates the transaction.
    pub fn on_transport_error(&mut self, id: TxId) -> Vec<Action<D>> {
        let mut actions = vec![Action::TransportError(id)];
        match id {
            TxId::Server(id) => self.remove_server(id, &mut actions),
            TxId::Client(id) => self.remove_client(id, &mut actions),
        }
        if actions.len() == 1 {
            // Unknown or already terminated: nothing to report.
            actions.clear();
        }
        actions
    }
}

/// The hash Timer K keeps for a client transaction's key. Inserts and lookups must hash
/// alike: the same hasher, and the key always seen through its [`ClientKeyView`], as a
/// response's key is.
fn absorb_hash(
    index: &HashMap<ClientKey, ClientTxId, foldhash::fast::RandomState>,
    key: &dyn ClientKeyView,
) -> u64 {
    index.hasher().hash_one(key)
}

/// Whether a completed server transaction may linger (Timers I and J only absorb
/// retransmissions) when `live` transactions, itself included, exist under `limit`.
/// Lingering stops at half the limit: over UDP enough of them otherwise fill the table and
/// refuse every new transaction (with a limit of 100,000, from 3,200 requests/s for Timer
/// J's 32 s). Past that a transaction ends at once, as over a reliable transport: a late
/// retransmitted request is taken for a new one.
fn may_linger(live: usize, limit: usize) -> bool {
    live <= limit / 2
}

/// The ACK for a non-2xx final response (§17.1.1.3): Request-URI, Call-ID, From and CSeq
/// number of the request, only its top Via, its Route headers, and the response's To (which
/// carries the UAS's tag).
fn build_ack(request: &Message, response: &Message) -> Option<Bytes> {
    let uri = request.request_uri()?;
    let via = request.top_via().ok()?;
    let cseq = request.cseq().ok()?;
    let from = request.header(&HeaderName::From)?;
    let call_id = request.header(&HeaderName::CallId)?;
    let to = response.header(&HeaderName::To)?;
    let mut writer = MessageWriter::request(&Method::Ack, uri);
    writer
        .header("Via", via.text)
        .copy_headers(request, &HeaderName::Route)
        .header("Max-Forwards", "70")
        .header("From", from)
        .header("To", to)
        .header("Call-ID", call_id)
        .header_fmt("CSeq", format_args!("{} ACK", cseq.seq));
    Some(writer.finish(None, &[]))
}
