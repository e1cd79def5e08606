//! The user agent: registrations, publications and subscriptions over one transaction layer
//! (RFC 3261 §17 client transactions for our requests, server transactions for incoming
//! NOTIFYs, §8.2 answers to requests we do not serve), and the timer queue that drives them.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::hash::Hash;
use std::time::Instant;

use bytes::Bytes;
use rand::rngs::StdRng;
use sip_message::{response_to, Limits, Message, Method};
use sip_transaction::{
    Action, ClientEvent, ClientTxId, ServerEvent, ServerTxId, TransactionLayer, TxId,
};

use crate::publication::Publication;
use crate::registration::Registration;
use crate::request::{token, Ctx, Step, TIMEOUT_STATUS, TRANSPORT_STATUS};
use crate::subscription::Subscription;
use crate::{
    Config, Flow, Output, PublicationId, PublishParams, RegisterParams, RegistrationId,
    SubscribeParams, SubscriptionId, UaError,
};

const KEEPALIVE: &[u8] = b"\r\n\r\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Owner {
    Registration(RegistrationId),
    Publication(PublicationId),
    Subscription(SubscriptionId),
}

/// See the crate documentation.
#[derive(Debug)]
pub struct UserAgent<D> {
    config: Config,
    layer: TransactionLayer<D>,
    rng: StdRng,
    next_id: u64,
    roles: Roles<D>,
    /// Current (Call-ID, our tag) of each subscription, to route NOTIFYs, and its inverse.
    dialogs: HashMap<(String, String), SubscriptionId>,
    dialog_keys: HashMap<SubscriptionId, (String, String)>,
    /// Which role and which CSeq each client transaction belongs to.
    transactions: HashMap<ClientTxId, (Owner, u32)>,
    /// Top Via branch of each client transaction, for [`UserAgent::is_ours`].
    branches: HashMap<ClientTxId, String>,
    live_branches: HashSet<String>,
    /// Deadlines of the roles; an entry is stale when the role's deadline moved since.
    timers: BinaryHeap<Reverse<(Instant, Owner)>>,
    /// The deadline last filed in `timers` per role, so an unchanged one is not filed twice.
    scheduled: HashMap<Owner, Instant>,
}

impl<D: Clone + PartialEq> UserAgent<D> {
    pub fn new(config: Config, rng: StdRng) -> UserAgent<D> {
        UserAgent {
            layer: TransactionLayer::new(config.transactions),
            config,
            rng,
            next_id: 0,
            roles: Roles {
                registrations: HashMap::new(),
                publications: HashMap::new(),
                subscriptions: HashMap::new(),
            },
            dialogs: HashMap::new(),
            dialog_keys: HashMap::new(),
            scheduled: HashMap::new(),
            transactions: HashMap::new(),
            branches: HashMap::new(),
            live_branches: HashSet::new(),
            timers: BinaryHeap::new(),
        }
    }

    fn alloc_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Start registering; [`crate::Event::Registered`] reports success, including refreshes.
    pub fn register(
        &mut self,
        params: RegisterParams<D>,
        now: Instant,
    ) -> Result<(RegistrationId, Vec<Output<D>>), UaError> {
        self.start_role(now, |id, ctx| {
            let mut registration = Registration::new(id, params, ctx)?;
            let steps = registration.start(ctx);
            Ok((registration, steps))
        })
    }

    /// Remove the binding (`Expires: 0`); [`crate::Event::Unregistered`] follows.
    pub fn unregister(
        &mut self,
        id: RegistrationId,
        now: Instant,
    ) -> Result<Vec<Output<D>>, UaError> {
        self.call_role(id, now, |registration, ctx| registration.unregister(ctx))
    }

    /// Start publishing `params.body`; refreshes follow until [`Self::unpublish`].
    pub fn publish(
        &mut self,
        params: PublishParams<D>,
        now: Instant,
    ) -> Result<(PublicationId, Vec<Output<D>>), UaError> {
        self.start_role(now, |id, ctx| {
            let mut publication = Publication::new(id, params, ctx)?;
            let steps = publication.send_next(ctx);
            Ok((publication, steps))
        })
    }

    /// Replace the published body (sent with `SIP-If-Match` once the entity exists).
    pub fn modify_publication(
        &mut self,
        id: PublicationId,
        body: Bytes,
        now: Instant,
    ) -> Result<Vec<Output<D>>, UaError> {
        self.call_role(id, now, |publication, ctx| publication.modify(body, ctx))
    }

    /// Remove the publication (`Expires: 0`); [`crate::Event::Unpublished`] follows.
    pub fn unpublish(
        &mut self,
        id: PublicationId,
        now: Instant,
    ) -> Result<Vec<Output<D>>, UaError> {
        self.call_role(id, now, |publication, ctx| publication.remove(ctx))
    }

    /// Start a subscription; it is refreshed, and renewed after terminations that allow
    /// it, until [`Self::unsubscribe`].
    pub fn subscribe(
        &mut self,
        params: SubscribeParams<D>,
        now: Instant,
    ) -> Result<(SubscriptionId, Vec<Output<D>>), UaError> {
        self.start_role(now, |id, ctx| {
            let mut subscription = Subscription::new(id, params, ctx)?;
            let steps = subscription.start(ctx);
            Ok((subscription, steps))
        })
    }

    /// End a subscription (`Expires: 0`); [`crate::Event::Unsubscribed`] follows the final
    /// NOTIFY (or [`Config::final_notify_wait`] without one).
    pub fn unsubscribe(
        &mut self,
        id: SubscriptionId,
        now: Instant,
    ) -> Result<Vec<Output<D>>, UaError> {
        self.call_role(id, now, |subscription, ctx| subscription.unsubscribe(ctx))
    }

    /// A new role of the kind of `I`, made by `create` for a fresh id (and within
    /// [`Config`]'s limit for the kind), with the steps it starts with carried out.
    fn start_role<I: RoleId<D>>(
        &mut self,
        now: Instant,
        create: impl FnOnce(I, &mut Ctx<'_>) -> Result<(I::Role, Vec<Step>), UaError>,
    ) -> Result<(I, Vec<Output<D>>), UaError> {
        if I::table(&mut self.roles).len() >= I::max(&self.config) {
            return Err(UaError::TooMany);
        }
        let id = I::from_raw(self.alloc_id());
        let mut ctx = Ctx {
            config: &self.config,
            rng: &mut self.rng,
            now,
        };
        let (role, steps) = create(id, &mut ctx)?;
        I::table(&mut self.roles).insert(id, role);
        let mut out = Vec::new();
        self.run(id.owner(), steps, now, &mut out);
        Ok((id, out))
    }

    /// What the application asks of role `id`, with the steps that follow carried out.
    fn call_role<I: RoleId<D>>(
        &mut self,
        id: I,
        now: Instant,
        call: impl FnOnce(&mut I::Role, &mut Ctx<'_>) -> Result<Vec<Step>, UaError>,
    ) -> Result<Vec<Output<D>>, UaError> {
        let role = I::table(&mut self.roles)
            .get_mut(&id)
            .ok_or(UaError::UnknownId)?;
        let mut ctx = Ctx {
            config: &self.config,
            rng: &mut self.rng,
            now,
        };
        let steps = call(role, &mut ctx)?;
        let mut out = Vec::new();
        self.run(id.owner(), steps, now, &mut out);
        Ok(out)
    }

    /// A message arrived on a flow: a response to one of our requests, or a request (a
    /// NOTIFY) from `source` over a `reliable` or datagram transport.
    pub fn on_message(
        &mut self,
        message: Message,
        source: D,
        reliable: bool,
        now: Instant,
    ) -> Vec<Output<D>> {
        let mut out = Vec::new();
        if message.is_request() {
            match self
                .layer
                .on_request(message, source.clone(), reliable, now)
            {
                ServerEvent::NewRequest { id, request } => {
                    self.on_request(id, &request, now, &mut out)
                }
                ServerEvent::Cancel { id, request, .. } => {
                    // Nothing of ours can be cancelled: we never hold a request open.
                    self.respond(
                        id,
                        &request,
                        481,
                        "Call/Transaction Does Not Exist",
                        now,
                        &mut out,
                    );
                }
                ServerEvent::Retransmission(actions) => self.actions(actions, now, &mut out),
                ServerEvent::AckForFinal { actions, .. } => self.actions(actions, now, &mut out),
                // No INVITE is ever answered here, so ACKs have nothing to acknowledge.
                ServerEvent::Ack2xx { .. } | ServerEvent::StrayAck(_) => {}
                ServerEvent::Overloaded(request) => {
                    out.push(self.stateless(&request, 503, "Service Unavailable", source))
                }
                ServerEvent::Invalid { request, reason } => {
                    out.push(self.stateless(&request, 400, reason, source))
                }
            }
            return out;
        }
        match self.layer.on_response(message, now) {
            ClientEvent::Response {
                id,
                response,
                actions,
            } => {
                if let Some(&(owner, _)) = self.transactions.get(&id) {
                    let steps =
                        self.with_role(owner, now, |role, ctx| role.on_response(&response, ctx));
                    self.run(owner, steps, now, &mut out);
                }
                self.actions(actions, now, &mut out);
            }
            ClientEvent::Retransmission(actions) => self.actions(actions, now, &mut out),
            // §18.1.2: a response matching no transaction is discarded.
            ClientEvent::Stray(_) => {}
        }
        out
    }

    /// Whether `message` is for this agent: a response to one of its requests in flight, or
    /// a NOTIFY in the dialog of one of its subscriptions. A server running the agent beside
    /// its own transaction layer (a resource list server's back-end) routes messages by this.
    pub fn is_ours(&self, message: &Message) -> bool {
        // Asked of every message the server receives: with nothing of ours in flight (the
        // usual case), the answer needs no look at the message.
        if message.is_request() {
            return !self.dialogs.is_empty()
                && message.method() == Some(&Method::Notify)
                && dialog_key(message).is_some_and(|key| self.dialogs.contains_key(&key));
        }
        !self.live_branches.is_empty()
            && message
                .top_via_branch()
                .is_some_and(|branch| self.live_branches.contains(branch))
    }

    /// The flow to `dest` failed (connection closed or refused): every request in flight on
    /// it fails as if answered 503, and each role retries after its back-off. The caller
    /// opens a new connection when it next has something to send to `dest`.
    pub fn on_flow_failed(&mut self, dest: &D, now: Instant) -> Vec<Output<D>> {
        let failed: Vec<ClientTxId> = self
            .transactions
            .iter()
            .filter(|(_, (owner, _))| self.flow(*owner).is_some_and(|f| f.dest == *dest))
            .map(|(id, _)| *id)
            .collect();
        let mut out = Vec::new();
        for id in failed {
            let actions = self.layer.on_transport_error(TxId::Client(id));
            self.actions(actions, now, &mut out);
        }
        out
    }

    /// When [`Self::on_timer`] should next be called; None when nothing is scheduled.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        let roles = loop {
            let Some(Reverse((at, owner))) = self.timers.peek().copied() else {
                break None;
            };
            if self.role_deadline(owner) == Some(at) {
                break Some(at);
            }
            self.timers.pop();
        };
        match (roles, self.layer.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Fire everything due at `now`.
    pub fn on_timer(&mut self, now: Instant) -> Vec<Output<D>> {
        let mut out = Vec::new();
        let actions = self.layer.on_timer(now);
        self.actions(actions, now, &mut out);
        while let Some(Reverse((at, owner))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            if self.role_deadline(owner) != Some(at) {
                continue;
            }
            self.scheduled.remove(&owner);
            let steps = self.with_role(owner, now, |role, ctx| role.on_timer(ctx));
            self.run(owner, steps, now, &mut out);
        }
        out
    }

    fn on_request(
        &mut self,
        id: ServerTxId,
        request: &Message,
        now: Instant,
        out: &mut Vec<Output<D>>,
    ) {
        if request.method() != Some(&Method::Notify) {
            self.respond(id, request, 405, "Method Not Allowed", now, out);
            return;
        }
        let Some(&sub_id) = dialog_key(request).and_then(|key| self.dialogs.get(&key)) else {
            self.respond(id, request, 481, "Subscription Does Not Exist", now, out);
            return;
        };
        let Some(subscription) = self.roles.subscriptions.get_mut(&sub_id) else {
            self.respond(id, request, 481, "Subscription Does Not Exist", now, out);
            return;
        };
        let mut ctx = Ctx {
            config: &self.config,
            rng: &mut self.rng,
            now,
        };
        match subscription.on_notify(request, &mut ctx) {
            Ok(steps) => {
                // Answer before acting, so a re-SUBSCRIBE never overtakes the 200.
                self.respond(id, request, 200, "OK", now, out);
                self.run(Owner::Subscription(sub_id), steps, now, out);
            }
            Err((status, reason)) => self.respond(id, request, status, reason, now, out),
        }
    }

    fn respond(
        &mut self,
        id: ServerTxId,
        request: &Message,
        status: u16,
        reason: &str,
        now: Instant,
        out: &mut Vec<Output<D>>,
    ) {
        let tag = token(&mut self.rng);
        let mut w = response_to(request, status, reason, Some(&tag));
        if status == 405 {
            w.header("Allow", "NOTIFY");
        }
        if let Ok(actions) = self.layer.respond(id, w.finish(None, b""), status, now) {
            self.actions(actions, now, out);
        }
    }

    /// An answer outside any transaction, for a request the layer could not take in.
    fn stateless(&mut self, request: &Message, status: u16, reason: &str, source: D) -> Output<D> {
        let tag = token(&mut self.rng);
        Output::Send {
            dest: source,
            data: response_to(request, status, reason, Some(&tag)).finish(None, b""),
        }
    }

    fn flow(&self, owner: Owner) -> Option<&Flow<D>> {
        let roles = &self.roles;
        match owner {
            Owner::Registration(id) => roles.registrations.get(&id).map(|r| &r.flow),
            Owner::Publication(id) => roles.publications.get(&id).map(|p| &p.flow),
            Owner::Subscription(id) => roles.subscriptions.get(&id).map(|s| &s.flow),
        }
    }

    fn role_deadline(&self, owner: Owner) -> Option<Instant> {
        let roles = &self.roles;
        match owner {
            Owner::Registration(id) => roles.registrations.get(&id).and_then(|r| r.deadline()),
            Owner::Publication(id) => roles.publications.get(&id).and_then(|p| p.deadline()),
            Owner::Subscription(id) => roles.subscriptions.get(&id).and_then(|s| s.deadline()),
        }
    }

    fn with_role(
        &mut self,
        owner: Owner,
        now: Instant,
        call: impl FnOnce(Role<'_, D>, &mut Ctx<'_>) -> Vec<Step>,
    ) -> Vec<Step> {
        let mut ctx = Ctx {
            config: &self.config,
            rng: &mut self.rng,
            now,
        };
        let roles = &mut self.roles;
        let role = match owner {
            Owner::Registration(id) => roles.registrations.get_mut(&id).map(Role::Registration),
            Owner::Publication(id) => roles.publications.get_mut(&id).map(Role::Publication),
            Owner::Subscription(id) => roles.subscriptions.get_mut(&id).map(Role::Subscription),
        };
        match role {
            Some(role) => call(role, &mut ctx),
            None => Vec::new(),
        }
    }

    /// Carry out a role's steps, then file its new deadline and drop it when finished.
    fn run(&mut self, owner: Owner, steps: Vec<Step>, now: Instant, out: &mut Vec<Output<D>>) {
        let mut queue = std::collections::VecDeque::from(steps);
        while let Some(step) = queue.pop_front() {
            match step {
                Step::Event(event) => out.push(Output::Event(event)),
                Step::Keepalive => {
                    if let Some(flow) = self.flow(owner) {
                        out.push(Output::Send {
                            dest: flow.dest.clone(),
                            data: Bytes::from_static(KEEPALIVE),
                        });
                    }
                }
                Step::Send { cseq, request } => {
                    let more = self.send(owner, cseq, request, now, out);
                    queue.extend(more);
                }
            }
        }
        self.after_role_call(owner);
    }

    /// Start a client transaction; a request the layer refuses (transaction table full)
    /// fails like a transport error, so the role backs off.
    fn send(
        &mut self,
        owner: Owner,
        cseq: u32,
        request: Bytes,
        now: Instant,
        out: &mut Vec<Output<D>>,
    ) -> Vec<Step> {
        let Some((dest, reliable)) = self.flow(owner).map(|f| (f.dest.clone(), f.reliable)) else {
            return Vec::new();
        };
        let limits = Limits {
            max_body_bytes: self.config.max_body_bytes,
            ..Limits::default()
        };
        let started = Message::parse(request, &limits).ok().and_then(|request| {
            let branch = request.top_via().ok()?.branch()?.to_owned();
            let started = self.layer.send_request(request, dest, reliable, now).ok()?;
            Some((branch, started))
        });
        match started {
            Some((branch, (tx, send))) => {
                self.transactions.insert(tx, (owner, cseq));
                self.live_branches.insert(branch.clone());
                self.branches.insert(tx, branch);
                self.actions([send], now, out);
                Vec::new()
            }
            None => self.with_role(owner, now, |role, ctx| {
                role.on_no_response(cseq, TRANSPORT_STATUS, ctx)
            }),
        }
    }

    fn after_role_call(&mut self, owner: Owner) {
        match owner {
            Owner::Registration(id) => {
                if self
                    .roles
                    .registrations
                    .get(&id)
                    .is_some_and(|r| r.finished)
                {
                    self.roles.registrations.remove(&id);
                }
            }
            Owner::Publication(id) => {
                if self.roles.publications.get(&id).is_some_and(|p| p.finished) {
                    self.roles.publications.remove(&id);
                }
            }
            Owner::Subscription(id) => self.reindex_dialog(id),
        }
        match self.role_deadline(owner) {
            Some(at) if self.scheduled.get(&owner) != Some(&at) => {
                self.scheduled.insert(owner, at);
                self.timers.push(Reverse((at, owner)));
                self.compact_timers();
            }
            Some(_) => {}
            None => {
                self.scheduled.remove(&owner);
            }
        }
    }

    /// Keep the NOTIFY routing key of subscription `id` current (it changes with each new
    /// subscription attempt), and drop the subscription once finished.
    fn reindex_dialog(&mut self, id: SubscriptionId) {
        let current = match self.roles.subscriptions.get(&id) {
            Some(s) if !s.finished => Some((s.call_id.clone(), s.local_tag.clone())),
            Some(_) => {
                self.roles.subscriptions.remove(&id);
                None
            }
            None => None,
        };
        if self.dialog_keys.get(&id) == current.as_ref() {
            return;
        }
        if let Some(old) = self.dialog_keys.remove(&id) {
            self.dialogs.remove(&old);
        }
        if let Some(key) = current {
            self.dialogs.insert(key.clone(), id);
            self.dialog_keys.insert(id, key);
        }
    }

    /// Drop stale heap entries once they outnumber the live roles, so deadlines that move
    /// often (a NOTIFY shortening a lifetime each time) cannot grow the heap without bound.
    fn compact_timers(&mut self) {
        let roles = &self.roles;
        let live = roles.registrations.len() + roles.publications.len() + roles.subscriptions.len();
        if self.timers.len() > 2 * live + 1024 {
            let entries = std::mem::take(&mut self.timers).into_vec();
            self.timers = entries
                .into_iter()
                .filter(|Reverse((at, owner))| self.scheduled.get(owner) == Some(at))
                .collect();
        }
    }

    /// Carry out transaction layer actions: sends go out, timeouts and transport errors
    /// reach the role that sent the request.
    fn actions(
        &mut self,
        actions: impl IntoIterator<Item = Action<D>>,
        now: Instant,
        out: &mut Vec<Output<D>>,
    ) {
        for action in actions {
            match action {
                Action::Send { dest, data } => out.push(Output::Send { dest, data }),
                Action::Timeout(TxId::Client(tx)) | Action::TransportError(TxId::Client(tx)) => {
                    let status = if matches!(action, Action::Timeout(_)) {
                        TIMEOUT_STATUS
                    } else {
                        TRANSPORT_STATUS
                    };
                    if let Some(&(owner, cseq)) = self.transactions.get(&tx) {
                        let steps = self.with_role(owner, now, |role, ctx| {
                            role.on_no_response(cseq, status, ctx)
                        });
                        self.run(owner, steps, now, out);
                    }
                }
                Action::Terminated(TxId::Client(tx)) => {
                    self.transactions.remove(&tx);
                    if let Some(branch) = self.branches.remove(&tx) {
                        self.live_branches.remove(&branch);
                    }
                }
                Action::Timeout(TxId::Server(_))
                | Action::TransportError(TxId::Server(_))
                | Action::Terminated(TxId::Server(_)) => {}
            }
        }
    }
}

/// The (Call-ID, To tag) of a request: for a NOTIFY, its subscription's Call-ID and our tag.
fn dialog_key(request: &Message) -> Option<(String, String)> {
    let call_id = request.call_id().ok()?;
    let to = request.to_header().ok()?;
    Some((call_id.to_owned(), to.tag()?.to_owned()))
}

/// The roles of an agent, by kind.
#[derive(Debug)]
struct Roles<D> {
    registrations: HashMap<RegistrationId, Registration<D>>,
    publications: HashMap<PublicationId, Publication<D>>,
    subscriptions: HashMap<SubscriptionId, Subscription<D>>,
}

/// The id of one kind of role: where the agent keeps that kind and how many it may hold, so
/// that it starts the three kinds, and calls on them for the application, alike.
trait RoleId<D>: Copy + Eq + Hash {
    type Role;
    fn from_raw(raw: u64) -> Self;
    fn owner(self) -> Owner;
    fn max(config: &Config) -> usize;
    fn table(roles: &mut Roles<D>) -> &mut HashMap<Self, Self::Role>;
}

impl<D> RoleId<D> for RegistrationId {
    type Role = Registration<D>;
    fn from_raw(raw: u64) -> Self {
        RegistrationId(raw)
    }
    fn owner(self) -> Owner {
        Owner::Registration(self)
    }
    fn max(config: &Config) -> usize {
        config.max_registrations
    }
    fn table(roles: &mut Roles<D>) -> &mut HashMap<Self, Self::Role> {
        &mut roles.registrations
    }
}

impl<D> RoleId<D> for PublicationId {
    type Role = Publication<D>;
    fn from_raw(raw: u64) -> Self {
        PublicationId(raw)
    }
    fn owner(self) -> Owner {
        Owner::Publication(self)
    }
    fn max(config: &Config) -> usize {
        config.max_publications
    }
    fn table(roles: &mut Roles<D>) -> &mut HashMap<Self, Self::Role> {
        &mut roles.publications
    }
}

impl<D> RoleId<D> for SubscriptionId {
    type Role = Subscription<D>;
    fn from_raw(raw: u64) -> Self {
        SubscriptionId(raw)
    }
    fn owner(self) -> Owner {
        Owner::Subscription(self)
    }
    fn max(config: &Config) -> usize {
        config.max_subscriptions
    }
    fn table(roles: &mut Roles<D>) -> &mut HashMap<Self, Self::Role> {
        &mut roles.subscriptions
    }
}

/// A borrowed role, so the agent calls the three kinds alike.
enum Role<'a, D> {
    Registration(&'a mut Registration<D>),
    Publication(&'a mut Publication<D>),
    Subscription(&'a mut Subscription<D>),
}

impl<D> Role<'_, D> {
    fn on_response(self, response: &Message, ctx: &mut Ctx<'_>) -> Vec<Step> {
        match self {
            Role::Registration(r) => r.on_response(response, ctx),
            Role::Publication(p) => p.on_response(response, ctx),
            Role::Subscription(s) => s.on_response(response, ctx),
        }
    }

    fn on_no_response(self, cseq: u32, status: u16, ctx: &mut Ctx<'_>) -> Vec<Step> {
        match self {
            Role::Registration(r) => r.on_no_response(cseq, status, ctx),
            Role::Publication(p) => p.on_no_response(cseq, status, ctx),
            Role::Subscription(s) => s.on_no_response(cseq, status, ctx),
        }
    }

    fn on_timer(self, ctx: &mut Ctx<'_>) -> Vec<Step> {
        match self {
            Role::Registration(r) => r.on_timer(ctx),
            Role::Publication(p) => p.on_timer(ctx),
            Role::Subscription(s) => s.on_timer(ctx),
        }
    }
}
