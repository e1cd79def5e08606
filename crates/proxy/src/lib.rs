//! Sans-IO stateful SIP proxy: RFC 3261 §16 (§16.3 validation, §16.4 route information,
//! §16.5–16.6 forking and forwarding, §16.7 the response context, §16.8 Timer C, §16.10
//! CANCEL, §16.12 loose routing), with RFC 6026 §8 for the 2xx responses of a fork and RFC
//! 3263 §4.3 for a next hop located at several targets (a failed branch moves on to the next).
//!
//! The proxy owns no sockets, clock or location service. The caller:
//!
//! 1. passes each request that may be proxied to [`Proxy::inspect`], which refuses it
//!    (483, 482, 420...) or tells where it goes: by its Request-URI (the caller consults the
//!    location service: registered contacts, a GRUU's instance, a relay rule) or to a next
//!    hop named by a Route;
//! 2. hands the target set to [`Proxy::forward`] (a stateful fork over client transactions
//!    of the caller's [`sip_transaction::TransactionLayer`]) or an ACK for a 2xx to
//!    [`Proxy::forward_stateless`];
//! 3. feeds responses of the proxy's client transactions to [`Proxy::on_response`], a CANCEL
//!    of a proxied INVITE to [`Proxy::cancel`], and passes every action list the transaction
//!    layer returns through [`Proxy::absorb`], which keeps the proxy's own timeouts and
//!    terminations and hands back the rest;
//! 4. drives Timer C with [`Proxy::next_deadline`] and [`Proxy::on_timer`].
//!
//! Flows: requests go to a [`Flow`] (transport and address), which the caller turns into
//! its transport destination with the function given to [`Proxy::new`]. The proxy records
//! both flows of a dialog-creating request in its Record-Route (see `flow.rs`), signed with
//! the secret given to it too, so in-dialog requests reach a UA behind NAT over the
//! flow its dialog started on, and nobody can name another user's flow.

mod context;
mod flow;
mod request;

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sip_message::{Message, Method, Uri};
use sip_transaction::{Action, ClientTxId, ServerTxId, TransactionLayer, TxId};

use flow::FlowKey;
pub use flow::{Flow, Transport};
pub use request::{Inbound, Rejection, Routing};

use context::{Branch, Context};

/// One listening address of this element: what goes into its Via `sent-by` and its
/// Record-Route on that transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub transport: Transport,
    /// Host as it is written in a URI: a domain, an IPv4 address or a bracketed IPv6 one.
    pub host: String,
    pub port: u16,
}

impl Listener {
    pub fn sent_by(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Policy and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub listeners: Vec<Listener>,
    /// Domains served here: a Route naming one of them (without a port, or with one of ours)
    /// is a Route to us, and Proxy-Authorization for their realms is consumed here.
    pub domains: Vec<String>,
    /// §16.8: how long an INVITE branch may go without a provisional response before it is
    /// cancelled (or, without any response, given up as 408). RFC 3261 requires more than
    /// 3 minutes.
    pub timer_c: Duration,
    /// How long a cancelled branch may take to send its final response before it is given
    /// up as 408 (64*T1, as for the CANCEL's own transaction, §9.1).
    pub cancel_grace: Duration,
    /// Response contexts alive at once; a request beyond it gets 503.
    pub max_contexts: usize,
    /// Branches per fork; further targets are dropped.
    pub max_branches: usize,
    /// Mixed into branches and To tags, so that they differ from one process to the next.
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listeners: Vec::new(),
            domains: Vec::new(),
            timer_c: Duration::from_secs(180),
            cancel_grace: Duration::from_secs(32),
            max_contexts: 100_000,
            max_branches: 32,
            seed: 0,
        }
    }
}

impl Config {
    fn listener(&self, transport: Transport) -> Option<&Listener> {
        self.listeners.iter().find(|l| l.transport == transport)
    }

    /// Whether `uri` addresses this element: one of our listener hosts or served domains,
    /// with no port or one of ours.
    pub fn is_local(&self, uri: &Uri<'_>) -> bool {
        if !uri.is_sip() {
            return false;
        }
        let host = uri.host_text;
        let port_matches = |port: u16| uri.port.is_none_or(|p| p == port);
        self.listeners
            .iter()
            .any(|l| l.host.eq_ignore_ascii_case(host) && port_matches(l.port))
            || (self.domains.iter().any(|d| d.eq_ignore_ascii_case(host))
                && (uri.port.is_none() || self.listeners.iter().any(|l| port_matches(l.port))))
    }

    fn is_our_sent_by(&self, sent_by: &str) -> bool {
        self.listeners
            .iter()
            .any(|l| l.sent_by().eq_ignore_ascii_case(sent_by))
    }

    /// Whether Proxy-Authorization `credentials` are for one of our realms.
    fn is_our_realm(&self, credentials: &str) -> bool {
        sip_message::Credentials::parse(credentials).is_ok_and(|c| {
            c.realm
                .as_deref()
                .is_some_and(|realm| self.domains.iter().any(|d| d.eq_ignore_ascii_case(realm)))
        })
    }
}

/// One element of the target set (§16.5): where a copy of the request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The Request-URI of the copy (a registered contact, or the request's own).
    pub request_uri: String,
    pub flow: Flow,
    /// Routes to put in front of the request's own (the binding's Path, RFC 3327 §5.3).
    pub route: Vec<String>,
    /// Further flows to the same next hop, in order (the other targets RFC 3263 located): a
    /// branch whose flow fails moves on to the next (§4.3).
    pub alternates: Vec<Flow>,
    /// The name a TLS next hop must prove it holds (RFC 5922 §4: the domain it was located
    /// for), when a connection to it has to be opened.
    pub server_name: Option<String>,
}

/// The stateful proxy core. See the crate documentation.
pub struct Proxy<D> {
    config: Config,
    flow_key: FlowKey,
    destination: fn(&Flow, Option<&str>) -> D,
    contexts: HashMap<ServerTxId, Context>,
    /// Client transactions of branches: their context and branch index.
    branches: HashMap<ClientTxId, (ServerTxId, usize)>,
    /// Client transactions of the CANCELs we sent; nothing depends on their outcome.
    cancels: HashSet<ClientTxId>,
    /// Branch timers (Timer C, then the cancel grace period); entries whose instant no
    /// longer matches their branch are stale and skipped.
    timers: BTreeSet<(Instant, ServerTxId, usize)>,
    next_unique: u64,
}

impl<D> std::fmt::Debug for Proxy<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("contexts", &self.contexts.len())
            .field("branches", &self.branches.len())
            .finish_non_exhaustive()
    }
}

impl<D: Clone> Proxy<D> {
    /// `flow_secret` signs the flow tokens of our Record-Route (see `flow.rs`): a secret
    /// of the deployment, kept across restarts so that dialogs outlive them. `destination`
    /// turns a flow, and the name a TLS peer must prove when a connection to it is opened,
    /// into what the transaction layer sends to.
    pub fn new(
        config: Config,
        flow_secret: &[u8],
        destination: fn(&Flow, Option<&str>) -> D,
    ) -> Proxy<D> {
        Proxy {
            config,
            flow_key: FlowKey::new(flow_secret),
            destination,
            contexts: HashMap::new(),
            branches: HashMap::new(),
            cancels: HashSet::new(),
            timers: BTreeSet::new(),
            next_unique: 0,
        }
    }

    /// Live response contexts.
    pub fn context_count(&self) -> usize {
        self.contexts.len()
    }

    /// §16.3 validation and §16.4 route processing of a request that arrived over `arrived`;
    /// a Route to us whose flow token we did not sign gets 403 (RFC 5626 §5.3).
    pub fn inspect(&self, request: Message, arrived: Flow) -> Result<Inbound, Rejection> {
        request::inspect(&self.config, &self.flow_key, request, arrived)
    }

    /// Whether the INVITE server transaction `id` is being proxied (a CANCEL for it goes to
    /// [`Proxy::cancel`]).
    pub fn is_proxying(&self, id: ServerTxId) -> bool {
        self.contexts.contains_key(&id)
    }

    /// Whether client transaction `id` is one of the proxy's (its responses go to
    /// [`Proxy::on_response`]).
    pub fn owns(&self, id: ClientTxId) -> bool {
        self.branches.contains_key(&id) || self.cancels.contains(&id)
    }

    /// Forks the request of server transaction `server` to every destination in parallel
    /// (§16.5, §16.6), creating its response context (§16.7). An INVITE gets 100 Trying
    /// upstream at once (§16.2), and Timer C per branch (§16.8).
    pub fn forward(
        &mut self,
        layer: &mut TransactionLayer<D>,
        server: ServerTxId,
        inbound: Inbound,
        destinations: Vec<Destination>,
        now: Instant,
    ) -> Vec<Action<D>> {
        let mut out = Vec::new();
        if self.contexts.len() >= self.config.max_contexts || destinations.is_empty() {
            let (status, reason) = if destinations.is_empty() {
                (480, "Temporarily Unavailable")
            } else {
                (503, "Service Unavailable")
            };
            let response = self.local_response(&inbound.request, status, reason);
            if let Ok(actions) = layer.respond(server, response, status, now) {
                out.extend(actions);
            }
            return self.absorb(layer, out, now);
        }
        let invite = inbound.request.method() == Some(&Method::Invite);
        if invite {
            let trying =
                sip_message::response_to(&inbound.request, 100, "Trying", None).finish(None, b"");
            if let Ok(actions) = layer.respond(server, trying, 100, now) {
                out.extend(actions);
            }
        }
        self.contexts.insert(server, Context::new(inbound, invite));
        for destination in destinations.into_iter().take(self.config.max_branches) {
            self.add_branch(layer, server, destination, now, &mut out);
        }
        self.finish_if_complete(layer, server, now, &mut out);
        self.absorb(layer, out, now)
    }

    /// Forwards a request without a transaction (§16.11): the ACK for a 2xx, which is a
    /// transaction of its own end to end (§13.2.2.4). Returns the send to perform.
    pub fn forward_stateless(&mut self, inbound: &Inbound, destination: &Destination) -> Action<D> {
        let via = self.via(destination.flow.transport, inbound.loop_hash);
        let data = request::forwarded_request(
            &self.config,
            inbound,
            &request::Copy {
                request_uri: &destination.request_uri,
                via: &via,
                record_routes: &[],
                extra_routes: &destination.route,
            },
        );
        Action::Send {
            dest: (self.destination)(&destination.flow, destination.server_name.as_deref()),
            data,
        }
    }

    /// A response for client transaction `id` (one [`Proxy::owns`]), §16.7.
    pub fn on_response(
        &mut self,
        layer: &mut TransactionLayer<D>,
        id: ClientTxId,
        response: Message,
        now: Instant,
    ) -> Vec<Action<D>> {
        let mut out = Vec::new();
        let Some(&(server, index)) = self.branches.get(&id) else {
            return out;
        };
        let Some(status) = response.status() else {
            return out;
        };
        if status < 200 {
            self.on_provisional(layer, server, index, &response, now, &mut out);
        } else {
            self.on_final(layer, server, index, status, response, now, &mut out);
        }
        self.absorb(layer, out, now)
    }

    /// §16.10: the INVITE of server transaction `server` was cancelled (the caller has
    /// answered the CANCEL with 200). Every pending branch is cancelled; the INVITE gets its
    /// final response once the branches have answered.
    pub fn cancel(
        &mut self,
        layer: &mut TransactionLayer<D>,
        server: ServerTxId,
        now: Instant,
    ) -> Vec<Action<D>> {
        let mut out = Vec::new();
        if let Some(context) = self.contexts.get_mut(&server) {
            context.cancelled = true;
            self.cancel_pending(layer, server, None, now, &mut out);
        }
        self.absorb(layer, out, now)
    }

    /// Keeps the actions that concern the proxy's own transactions (timeouts and transport
    /// errors are a 408 for their branch, §16.7 item 2; terminations end its bookkeeping)
    /// and returns every other action for the caller to carry out, in the collection the
    /// actions came in (a response's inline one, or a vector).
    pub fn absorb<C>(&mut self, layer: &mut TransactionLayer<D>, actions: C, now: Instant) -> C
    where
        C: IntoIterator<Item = Action<D>> + FromIterator<Action<D>>,
    {
        if self.branches.is_empty() && self.cancels.is_empty() && self.contexts.is_empty() {
            // Nothing is being proxied, so none of the actions can be ours: the common case
            // for a presence server, and every message passes here.
            return actions;
        }
        let mut queue: std::collections::VecDeque<_> = actions.into_iter().collect();
        let mut rest = Vec::new();
        while let Some(action) = queue.pop_front() {
            let mut more = Vec::new();
            match action {
                // §16.9: a branch whose request could not be sent counts as answered 503;
                // one that timed out, or ended without a final response, as 408 (§16.7).
                Action::Timeout(TxId::Client(id)) if self.owns(id) => {
                    if let Some(&(server, index)) = self.branches.get(&id) {
                        self.on_branch_failed(layer, server, index, 408, now, &mut more);
                    }
                }
                Action::TransportError(TxId::Client(id)) if self.owns(id) => {
                    if let Some(&(server, index)) = self.branches.get(&id) {
                        self.on_branch_failed(layer, server, index, 503, now, &mut more);
                    }
                }
                Action::Terminated(TxId::Client(id)) if self.owns(id) => {
                    self.cancels.remove(&id);
                    if let Some((server, index)) = self.branches.remove(&id) {
                        self.on_branch_failed(layer, server, index, 408, now, &mut more);
                        if let Some(branch) = self
                            .contexts
                            .get_mut(&server)
                            .and_then(|c| c.branches.get_mut(index))
                        {
                            branch.tx = None;
                        }
                        self.forget_if_done(server);
                    }
                }
                Action::Terminated(TxId::Server(id)) if self.contexts.contains_key(&id) => {
                    if let Some(context) = self.contexts.get_mut(&id) {
                        // Nothing can be answered any more.
                        context.mark_final();
                    }
                    self.forget_if_done(id);
                    rest.push(Action::Terminated(TxId::Server(id)));
                }
                other => rest.push(other),
            }
            queue.extend(more);
        }
        rest.into_iter().collect()
    }

    /// When [`Proxy::on_timer`] should next run; None when no branch timer is armed.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(&(at, server, index)) = self.timers.first() {
            if self.timer_is_live(at, server, index) {
                return Some(at);
            }
            self.timers.pop_first();
        }
        None
    }

    /// Fires the branch timers due at `now` (§16.8): a branch that has had a provisional
    /// response is cancelled; one that has not, or whose CANCEL went unanswered, ends as 408
    /// (its client transaction is abandoned).
    pub fn on_timer(&mut self, layer: &mut TransactionLayer<D>, now: Instant) -> Vec<Action<D>> {
        let mut out = Vec::new();
        while let Some(&(at, server, index)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            if !self.timer_is_live(at, server, index) {
                continue;
            }
            let Some(branch) = self
                .contexts
                .get_mut(&server)
                .and_then(|c| c.branches.get_mut(index))
            else {
                continue;
            };
            branch.timer = None;
            if branch.provisional && !branch.cancel_sent {
                self.cancel_branch(layer, server, index, now, &mut out);
            } else if let Some(tx) = branch.tx {
                // Counted as 408 before the transaction is abandoned: the transport error
                // the layer reports for that must not make it a 503 (§16.9 is for sends
                // that failed).
                self.on_branch_failed(layer, server, index, 408, now, &mut out);
                out.extend(layer.on_transport_error(TxId::Client(tx)));
            }
        }
        self.absorb(layer, out, now)
    }

    // ------------------------------------------------------------------ internals

    fn timer_is_live(&self, at: Instant, server: ServerTxId, index: usize) -> bool {
        self.contexts
            .get(&server)
            .and_then(|c| c.branches.get(index))
            .is_some_and(|b| b.timer == Some(at) && b.is_pending())
    }

    fn unique(&mut self) -> u64 {
        self.next_unique += 1;
        self.next_unique ^ self.config.seed
    }

    /// Our Via for a copy leaving over `transport` (§16.6 item 8); `rport` so that a UDP
    /// response finds us behind NAT too (RFC 3581).
    fn via(&mut self, transport: Transport, loop_hash: u64) -> String {
        let branch = request::branch(loop_hash, self.unique());
        let sent_by = self
            .config
            .listener(transport)
            .map_or_else(|| "invalid.invalid".to_owned(), Listener::sent_by);
        let rport = if transport == Transport::Udp {
            ";rport"
        } else {
            ""
        };
        format!(
            "SIP/2.0/{} {sent_by};branch={branch}{rport}",
            transport.via_name()
        )
    }

    /// Sends a copy of the request of context `server` to `destination`, as a new branch.
    fn add_branch(
        &mut self,
        layer: &mut TransactionLayer<D>,
        server: ServerTxId,
        destination: Destination,
        now: Instant,
        out: &mut Vec<Action<D>>,
    ) {
        let Some(inbound) = self
            .contexts
            .get_mut(&server)
            .and_then(|context| context.inbound.take())
        else {
            return;
        };
        let record = !inbound.in_dialog()
            && matches!(
                inbound.request.method(),
                Some(Method::Invite | Method::Subscribe | Method::Refer)
            );
        let started = self.start_branch(layer, &inbound, &destination, record, now);
        let Some(context) = self.contexts.get_mut(&server) else {
            return;
        };
        context.inbound = Some(inbound);
        let index = context.branches.len();
        context
            .branches
            .push(Branch::new(destination, started.sent));
        match started.tx {
            Some((tx, send)) => {
                self.branches.insert(tx, (server, index));
                out.push(send);
                let branch = &mut context.branches[index];
                branch.tx = Some(tx);
                if context.invite {
                    let at = now + self.config.timer_c;
                    branch.timer = Some(at);
                    self.timers.insert((at, server, index));
                }
            }
            // Nothing could be sent: the branch ends as if its next hop were down.
            None => context.record_final(index, 480, None),
        }
    }

    /// RFC 3263 §4.3: branch `index` failed before its next hop took the request: it
    /// `declined` it with a 503, or sent nothing at all, not even a provisional response
    /// (after one, the request has arrived and must not be sent twice). A copy with a new
    /// branch goes to the next target, unless the search is over.
    fn fail_over(
        &mut self,
        layer: &mut TransactionLayer<D>,
        server: ServerTxId,
        index: usize,
        declined: bool,
        now: Instant,
        out: &mut Vec<Action<D>>,
    ) {
        let Some(context) = self.contexts.get_mut(&server) else {
            return;
        };
        if context.final_sent || context.cancelled {
            return;
        }
        let Some(branch) = context.branches.get_mut(index) else {
            return;
        };
        if !declined && branch.provisional {
            return;
        }
        let Some(next) = branch.failover.take() else {
            return;
        };
        self.add_branch(layer, server, next, now, out);
    }

    fn start_branch(
        &mut self,
        layer: &mut TransactionLayer<D>,
        inbound: &Inbound,
        destination: &Destination,
        record: bool,
        now: Instant,
    ) -> StartedBranch<D> {
        let via = self.via(destination.flow.transport, inbound.loop_hash);
        let record_routes = if record {
            request::record_routes(
                &self.config,
                &self.flow_key,
                inbound.request.call_id().unwrap_or_default(),
                inbound.arrived,
                destination.flow,
            )
        } else {
            Vec::new()
        };
        let data = request::forwarded_request(
            &self.config,
            inbound,
            &request::Copy {
                request_uri: &destination.request_uri,
                via: &via,
                record_routes: &record_routes,
                extra_routes: &destination.route,
            },
        );
        let sent = request::Sent {
            request_uri: destination.request_uri.clone(),
            via,
            routes: destination
                .route
                .iter()
                .chain(&inbound.routes)
                .cloned()
                .collect(),
        };
        let tx = Message::parse(data, &sip_message::Limits::default())
            .ok()
            .and_then(|message| {
                layer
                    .send_request(
                        message,
                        (self.destination)(&destination.flow, destination.server_name.as_deref()),
                        destination.flow.transport.is_reliable(),
                        now,
                    )
                    .ok()
            });
        StartedBranch { sent, tx }
    }

    fn on_provisional(
        &mut self,
        layer: &mut TransactionLayer<D>,
        server: ServerTxId,
        index: usize,
        response: &Message,
        now: Instant,
        out: &mut Vec<Action<D>>,
    ) {
        let Some(context) = self.contexts.get_mut(&server) else {
            return;
        };
        let Some(branch) = context.branches.get_mut(index) else {
            return;
        };
        if !branch.is_pending() {
            return;
        }
        branch.provisional = true;
        let status = response.status().unwrap_or(100);
        if status > 100 {
            if context.invite && !branch.cancel_sent {
                // §16.7 item 2: a provisional response resets Timer C.
                let at = now + self.config.timer_c;
                if let Some(previous) = branch.timer.replace(at) {
                    self.timers.remove(&(previous, server, index));
                }
                self.timers.insert((at, server, index));
            }
            if !context.final_sent {
                let data = request::upstream_response(response, &[]);
                if let Ok(actions) = layer.respond(server, data, status, now) {
                    out.extend(actions);
                }
            }
        }
        let wanted = branch.cancel_wanted && !branch.cancel_sent;
        if wanted {
            self.cancel_branch(layer, server, index, now, out);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_final(
        &mut self,
        layer: &mut TransactionLayer<D>,
        server: ServerTxId,
        index: usize,
        status: u16,
        response: Message,
        now: Instant,
        out: &mut Vec<Action<D>>,
    ) {
        let Some(context) = self.contexts.get_mut(&server) else {
            return;
        };
        let timer = context.branches.get(index).and_then(|b| b.timer);
        if let Some(at) = timer {
            self.timers.remove(&(at, server, index));
        }
        if (200..300).contains(&status) {
            // §16.7 item 4 with RFC 6026 §8.4: every 2xx of an INVITE goes upstream at once,
            // those of other forks and retransmissions too; a non-INVITE has one final.
            context.record_final(index, status, None);
            if context.invite || !context.final_sent {
                let data = request::upstream_response(&response, &[]);
                if let Ok(actions) = layer.respond(server, data, status, now) {
                    out.extend(actions);
                }
            }
            let first = !context.final_sent;
            context.mark_final();
            if first && context.invite {
                // §16.7 item 10: the other branches are no longer wanted.
                self.cancel_pending(layer, server, Some(index), now, out);
            }
            return;
        }
        if !context.branches.get(index).is_some_and(Branch::is_pending) {
            return;
        }
        context.record_final(index, status, Some(response));
        if status >= 600 {
            // §16.7 item 5: a 6xx ends the search.
            self.cancel_pending(layer, server, Some(index), now, out);
        } else if status == 503 {
            self.fail_over(layer, server, index, true, now, out);
        }
        self.finish_if_complete(layer, server, now, out);
    }

    /// A branch ended without a response: `status` is what it counts as, 408 when it timed
    /// out or was abandoned (§16.7 item 2), 503 when its request could not be sent (§16.9).
    fn on_branch_failed(
        &mut self,
        layer: &mut TransactionLayer<D>,
        server: ServerTxId,
        index: usize,
        status: u16,
        now: Instant,
        out: &mut Vec<Action<D>>,
    ) {
        let Some(context) = self.contexts.get_mut(&server) else {
            return;
        };
        let Some(branch) = context.branches.get(index).filter(|b| b.is_pending()) else {
            return;
        };
        if let Some(at) = branch.timer {
            self.timers.remove(&(at, server, index));
        }
        context.record_final(index, status, None);
        self.fail_over(layer, server, index, false, now, out);
        self.finish_if_complete(layer, server, now, out);
    }

    /// Cancels every pending branch but `except`.
    fn cancel_pending(
        &mut self,
        layer: &mut TransactionLayer<D>,
        server: ServerTxId,
        except: Option<usize>,
        now: Instant,
        out: &mut Vec<Action<D>>,
    ) {
        let count = self.contexts.get(&server).map_or(0, |c| c.branches.len());
        for index in (0..count).filter(|i| Some(*i) != except) {
            self.cancel_branch(layer, server, index, now, out);
        }
    }

    /// §9.1 for one branch: CANCEL now if it has had a provisional response, otherwise as
    /// soon as it has one. Only INVITE branches are cancelled.
    fn cancel_branch(
        &mut self,
        layer: &mut TransactionLayer<D>,
        server: ServerTxId,
        index: usize,
        now: Instant,
        out: &mut Vec<Action<D>>,
    ) {
        let Some(context) = self.contexts.get_mut(&server) else {
            return;
        };
        if !context.invite {
            return;
        }
        let Some(branch) = context.branches.get_mut(index) else {
            return;
        };
        if !branch.is_pending() || branch.cancel_sent {
            return;
        }
        if !branch.provisional {
            branch.cancel_wanted = true;
            return;
        }
        let Some(cancel) = context
            .cancel_ids
            .as_ref()
            .and_then(|ids| request::cancel_request(ids, &branch.sent))
        else {
            return;
        };
        branch.cancel_sent = true;
        let at = now + self.config.cancel_grace;
        if let Some(previous) = branch.timer.replace(at) {
            self.timers.remove(&(previous, server, index));
        }
        self.timers.insert((at, server, index));
        // Over the INVITE's own connection: no new one, so no name to check.
        let dest = (self.destination)(&branch.flow, None);
        if let Ok((tx, send)) =
            layer.send_request(cancel, dest, branch.flow.transport.is_reliable(), now)
        {
            self.cancels.insert(tx);
            out.push(send);
        }
    }

    /// Sends the best response once no branch is pending (§16.7 items 6–7).
    fn finish_if_complete(
        &mut self,
        layer: &mut TransactionLayer<D>,
        server: ServerTxId,
        now: Instant,
        out: &mut Vec<Action<D>>,
    ) {
        let Some(context) = self.contexts.get_mut(&server) else {
            return;
        };
        if context.final_sent || context.branches.iter().any(Branch::is_pending) {
            self.forget_if_done(server);
            return;
        }
        let best = context.best_response();
        let request = context.mark_final();
        let (status, data) = match (best, request) {
            (context::Final::Forward(status, data), _) => (status, data),
            (context::Final::Local(status, reason), Some(request)) => {
                (status, self.local_response(&request, status, reason))
            }
            (context::Final::Local(..), None) => return,
        };
        if let Ok(actions) = layer.respond(server, data, status, now) {
            out.extend(actions);
        }
        self.forget_if_done(server);
    }

    /// A context goes once its final response is out and its branches' transactions are gone.
    fn forget_if_done(&mut self, server: ServerTxId) {
        if self
            .contexts
            .get(&server)
            .is_some_and(|c| c.final_sent && c.branches.iter().all(|b| b.tx.is_none()))
        {
            self.contexts.remove(&server);
        }
    }

    fn local_response(&mut self, request: &Message, status: u16, reason: &str) -> Bytes {
        let tag = format!("{:016x}", self.unique().wrapping_mul(0x9e37_79b9_7f4a_7c15));
        sip_message::response_to(request, status, reason, Some(&tag)).finish(None, b"")
    }
}

struct StartedBranch<D> {
    sent: request::Sent,
    tx: Option<(ClientTxId, Action<D>)>,
}
