//! The notifier state machine: SUBSCRIBE processing (RFC 6665 §4.2.1), subscription and
//! dialog state (RFC 6665 §4.1.2, §4.3; RFC 3261 §12.1.1, §12.2.2), NOTIFY scheduling and
//! failure handling (RFC 6665 §4.2.2, RFC 5057 §5.1), expiry (RFC 6665 §4.2.1.2).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use sip_message::{ContactValue, HeaderName, Message, Method};

use crate::notify::{self, DialogView, NotifyHead, NotifySpec};
use crate::{
    Action, Body, Config, ContentMode, Decided, Decision, EndCause, Flow, Gone, NewSubscription,
    Notify, PackageConfig, Reason, Resource, StoredDialog, SubId, SubState, SubscribeOutcome,
    SubscriptionRecord,
};

/// Dialog identifier (RFC 3261 §12): Call-ID, our tag, the subscriber's tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct DialogKey {
    call_id: String,
    local_tag: String,
    remote_tag: String,
}

/// Handle of a dialog inside the engine: a subscription reaches its dialog by this on every
/// NOTIFY, so the hot path hashes a number instead of the Call-ID and both tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct DialogId(u64);

/// Dialog state shared by the subscriptions of one dialog: NOTIFYs of all of them draw from
/// one local CSeq space, and SUBSCRIBEs from one remote CSeq space.
#[derive(Debug)]
struct Dialog<D> {
    local_uri: String,
    remote_uri: String,
    remote_target: String,
    route_set: Vec<String>,
    local_cseq: u32,
    remote_cseq: u32,
    /// `local_cseq` as last reported by [`SubscriptionEngine::take_changes`].
    saved_cseq: u32,
    /// What every NOTIFY of the dialog shares, written at its first NOTIFY (which is parsed
    /// in full to check it: later ones differ only in values we generate) and again after a
    /// target refresh.
    head: Option<NotifyHead>,
    flow: Flow<D>,
    subs: Vec<SubId>,
}

/// How far a dialog's local CSeq may run ahead of what [`SubscriptionEngine::take_changes`]
/// last reported before the subscription counts as changed again. Sending a NOTIFY alone
/// does not make a subscription changed: persistence restores CSeq with a margin well
/// above this step (RFC 3261 §12.2.1.1 only wants the numbers to keep increasing), so
/// saving every NOTIFY's CSeq would be wasted work.
pub const CSEQ_SAVE_STEP: u32 = 100;

#[derive(Debug)]
struct InFlight {
    cseq: u32,
    body: Option<Body>,
}

/// One subscription (a dialog usage, RFC 6665 §4.3).
#[derive(Debug)]
pub struct Subscription {
    dialog: DialogKey,
    dialog_id: DialogId,
    package: usize,
    event: String,
    event_id: Option<String>,
    subscriber: String,
    subscriber_key: String,
    resource: String,
    resource_key: String,
    accept: Vec<String>,
    state: SubState,
    expires_at: Instant,
    /// The body of the most recent NOTIFY sent; None until one was (after import, too).
    last: Option<Option<Body>>,
    /// Bodies waiting for the in-flight NOTIFY to finish (full-state mode: at most one).
    queue: VecDeque<Option<Body>>,
    /// A NOTIFY is due even without a new body (refresh, retry after a soft failure).
    resend: bool,
    /// Partial mode: waiting bodies were dropped, the next one must be full state.
    need_full: bool,
    /// [`Action::ContentNeeded`] was emitted and not yet answered.
    awaiting: bool,
    /// The terminated NOTIFY has been sent.
    final_sent: bool,
    in_flight: Option<InFlight>,
    hold_until: Option<Instant>,
    failures: u32,
    timer: Option<Instant>,
}

impl Subscription {
    pub fn event(&self) -> &str {
        &self.event
    }
    pub fn event_id(&self) -> Option<&str> {
        self.event_id.as_deref()
    }
    /// From URI of the SUBSCRIBE (the watcher).
    pub fn subscriber(&self) -> &str {
        &self.subscriber
    }
    /// Request-URI of the SUBSCRIBE (the presentity or list).
    pub fn resource(&self) -> &str {
        &self.resource
    }
    /// Accept values of the creating SUBSCRIBE, as written.
    pub fn accept(&self) -> &[String] {
        &self.accept
    }
    pub fn state(&self) -> SubState {
        self.state
    }
    pub fn expires_at(&self) -> Instant {
        self.expires_at
    }
    pub fn call_id(&self) -> &str {
        &self.dialog.call_id
    }
}

/// A refusal of a SUBSCRIBE before any state exists.
struct Rejection {
    code: u16,
    reason: Option<String>,
    headers: Vec<(&'static str, String)>,
}

impl Rejection {
    fn new(code: u16) -> Rejection {
        Rejection {
            code,
            reason: None,
            headers: Vec::new(),
        }
    }
    fn bad(reason: impl ToString) -> Rejection {
        Rejection {
            reason: Some(reason.to_string()),
            ..Rejection::new(400)
        }
    }
    fn with(mut self, name: &'static str, value: String) -> Rejection {
        self.headers.push((name, value));
        self
    }
}

/// The RFC 6665 notifier for every configured event package.
#[derive(Debug)]
pub struct SubscriptionEngine<D> {
    config: Config,
    rng: StdRng,
    next_id: u64,
    /// Keyed by handles we number, so a fast hash that is no defence against chosen keys
    /// (which the maps keyed by peers' names keep) serves; these are looked up several
    /// times per NOTIFY.
    subs: HashMap<SubId, Subscription, foldhash::fast::RandomState>,
    dialogs: HashMap<DialogId, Dialog<D>, foldhash::fast::RandomState>,
    /// How a request names a dialog (Call-ID and tags) to its handle.
    dialog_ids: HashMap<DialogKey, DialogId>,
    next_dialog: u64,
    per_subscriber: HashMap<String, usize>,
    per_resource: HashMap<String, usize>,
    timers: BTreeSet<(Instant, SubId)>,
    /// Subscriptions created, changed or gone since the last [`Self::take_changes`].
    changed: BTreeSet<SubId>,
}

impl<D: Clone> SubscriptionEngine<D> {
    /// `rng` makes tags and branches; seed it from entropy in the server.
    pub fn new(config: Config, rng: StdRng) -> SubscriptionEngine<D> {
        SubscriptionEngine {
            config,
            rng,
            next_id: 1,
            subs: HashMap::default(),
            dialogs: HashMap::default(),
            dialog_ids: HashMap::new(),
            next_dialog: 0,
            per_subscriber: HashMap::new(),
            per_resource: HashMap::new(),
            timers: BTreeSet::new(),
            changed: BTreeSet::new(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Subscriptions held, including terminated ones whose final NOTIFY is still going.
    pub fn len(&self) -> usize {
        self.subs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }

    pub fn subscription(&self, id: SubId) -> Option<&Subscription> {
        self.subs.get(&id)
    }

    pub fn subscriptions(&self) -> impl Iterator<Item = (SubId, &Subscription)> + '_ {
        self.subs.iter().map(|(id, s)| (*id, s))
    }

    /// Whether an in-dialog request (a refreshing SUBSCRIBE) belongs to one of our dialogs:
    /// how a shell with several engines (single resources, lists) picks the one to hand it to.
    pub fn holds_dialog(&self, request: &Message) -> bool {
        let (Ok(call_id), Ok(from), Ok(to)) = (
            request.call_id(),
            request.from_header(),
            request.to_header(),
        ) else {
            return false;
        };
        let (Some(remote_tag), Some(local_tag)) = (from.tag(), to.tag()) else {
            return false;
        };
        self.dialog_ids.contains_key(&DialogKey {
            call_id: call_id.to_owned(),
            local_tag: local_tag.to_owned(),
            remote_tag: remote_tag.to_owned(),
        })
    }

    // ------------------------------------------------------------------ SUBSCRIBE

    /// Process a SUBSCRIBE the transaction layer delivered. `flow` is where it came from;
    /// `resource` says whether its Request-URI is a resource list.
    pub fn on_subscribe(
        &mut self,
        request: &Message,
        flow: Flow<D>,
        resource: Resource,
        now: Instant,
    ) -> SubscribeOutcome<D> {
        match self.subscribe(request, flow, resource, now) {
            Ok(outcome) => outcome,
            Err(rejection) => SubscribeOutcome::Respond {
                response: self.reject(request, &rejection),
                actions: Vec::new(),
            },
        }
    }

    fn subscribe(
        &mut self,
        request: &Message,
        flow: Flow<D>,
        resource: Resource,
        now: Instant,
    ) -> Result<SubscribeOutcome<D>, Rejection> {
        if request.method() != Some(&Method::Subscribe) {
            return Err(Rejection::new(405).with("Allow", "SUBSCRIBE".to_owned()));
        }
        let call_id = request.call_id().map_err(Rejection::bad)?;
        let cseq = request.cseq().map_err(Rejection::bad)?;
        let from = request.from_header().map_err(Rejection::bad)?;
        let from_tag = from
            .tag()
            .ok_or_else(|| Rejection::bad("Missing From tag"))?;
        let to = request.to_header().map_err(Rejection::bad)?;
        let event = request.event().map_err(Rejection::bad)?;
        let expires = request
            .u32_header(&HeaderName::Expires)
            .map_err(Rejection::bad)?;
        let contact = match request.contacts().map_err(Rejection::bad)?.as_slice() {
            [] => None,
            [ContactValue::Addr(addr)] => Some(addr.uri.text.to_owned()),
            _ => return Err(Rejection::bad("Invalid Contact header")),
        };
        // RFC 6665 §8.2.1 makes Event mandatory; without one no package can be meant.
        let event = event.ok_or_else(|| self.bad_event())?;

        let Some(to_tag) = to.tag() else {
            let package = self
                .find_package(event.package, resource)
                .ok_or_else(|| self.bad_event())?;
            let remote_target = contact.ok_or_else(|| Rejection::bad("Missing Contact header"))?;
            // RFC 3261 §12.1.1: the UAS keeps Record-Route in the order received (only the
            // UAC reverses it), so the first entry is the proxy nearest to us.
            let route_set = request
                .name_addrs(&HeaderName::RecordRoute)
                .map_err(Rejection::bad)?
                .iter()
                .map(|na| na.text.to_owned())
                .collect();
            let new = self.new_subscription(
                request,
                flow,
                package,
                event.id,
                expires,
                None,
                remote_target,
                route_set,
            )?;
            return Ok(SubscribeOutcome::Decide(Box::new(new)));
        };

        let key = DialogKey {
            call_id: call_id.to_owned(),
            local_tag: to_tag.to_owned(),
            remote_tag: from_tag.to_owned(),
        };
        let dialog = self
            .dialog_ids
            .get(&key)
            .and_then(|id| self.dialogs.get_mut(id))
            .ok_or_else(|| Rejection::new(481))?;
        // RFC 3261 §12.2.2: a lower (or repeated, since retransmissions never get here)
        // sequence number is out of order.
        if cseq.seq <= dialog.remote_cseq {
            return Err(Rejection {
                reason: Some("CSeq Out of Order".to_owned()),
                ..Rejection::new(500)
            });
        }
        dialog.remote_cseq = cseq.seq;
        // SUBSCRIBE is a target refresh request (RFC 6665 §4.1.2.1); the flow follows the
        // latest SUBSCRIBE too, since the subscriber may have reconnected.
        if let Some(target) = &contact {
            dialog.remote_target.clone_from(target);
        }
        dialog.flow = flow;
        // The target and our Via and Contact may have changed.
        dialog.head = None;
        // Every usage of the dialog records its CSeq and target.
        self.changed.extend(dialog.subs.iter().copied());
        let found = dialog.subs.iter().copied().find(|id| {
            self.subs.get(id).is_some_and(|s| {
                s.event.eq_ignore_ascii_case(event.package) && s.event_id.as_deref() == event.id
            })
        });
        let Some(id) = found else {
            // A further usage of the dialog (RFC 6665 §4.5.2): a new subscription like any.
            let (flow, remote_target, route_set) = (
                dialog.flow.clone(),
                dialog.remote_target.clone(),
                dialog.route_set.clone(),
            );
            let package = self
                .find_package(event.package, resource)
                .ok_or_else(|| self.bad_event())?;
            let new = self.new_subscription(
                request,
                flow,
                package,
                event.id,
                expires,
                Some(key),
                remote_target,
                route_set,
            )?;
            return Ok(SubscribeOutcome::Decide(Box::new(new)));
        };
        self.refresh(request, id, expires, now)
    }

    /// In-dialog SUBSCRIBE for an existing subscription: refresh or unsubscribe.
    fn refresh(
        &mut self,
        request: &Message,
        id: SubId,
        expires: Option<u32>,
        now: Instant,
    ) -> Result<SubscribeOutcome<D>, Rejection> {
        let sub = self.subs.get(&id).ok_or_else(|| Rejection::new(481))?;
        if matches!(sub.state, SubState::Terminated(_)) {
            return Err(Rejection::new(481));
        }
        let package = sub.package;
        let granted = self.grant(package, expires)?;
        let mut actions = Vec::new();
        if granted == 0 {
            self.end(
                id,
                Reason::Timeout,
                EndCause::Unsubscribed,
                None,
                now,
                &mut actions,
            );
        } else if let Some(sub) = self.subs.get_mut(&id) {
            sub.expires_at = now + Duration::from_secs(u64::from(granted));
            self.changed.insert(id);
            // RFC 6665 §4.2.1.2: a refresh is answered with a NOTIFY too.
            sub.resend = true;
            self.flush(id, now, &mut actions);
        }
        let response = self.accept_response(request, id, 200, granted);
        Ok(SubscribeOutcome::Respond { response, actions })
    }

    // The arguments are the parsed pieces of one SUBSCRIBE; a struct would only rename them.
    #[allow(clippy::too_many_arguments)]
    fn new_subscription(
        &self,
        request: &Message,
        flow: Flow<D>,
        package: usize,
        event_id: Option<&str>,
        expires: Option<u32>,
        in_dialog: Option<DialogKey>,
        remote_target: String,
        route_set: Vec<String>,
    ) -> Result<NewSubscription<D>, Rejection> {
        let pkg = self.package(package)?;
        if pkg.list && !request.has_token(&HeaderName::Supported, "eventlist") {
            return Err(Rejection::new(421).with("Require", "eventlist".to_owned()));
        }
        let (accept, fits) = notify::negotiate(request, &pkg.accept);
        if !fits {
            return Err(Rejection::new(406).with("Accept", pkg.accept.join(", ")));
        }
        let granted = self.grant(package, expires)?;
        let subscriber = request
            .from_header()
            .map_err(Rejection::bad)?
            .uri
            .text
            .to_owned();
        let resource = request.request_uri().unwrap_or_default().to_owned();
        self.check_limits(&notify::uri_key(&subscriber), &notify::uri_key(&resource))?;
        Ok(NewSubscription {
            request: request.clone(),
            flow,
            package,
            event: pkg.event.clone(),
            event_id: event_id.map(str::to_owned),
            expires: granted,
            subscriber,
            resource,
            accept,
            in_dialog,
            remote_target,
            route_set,
        })
    }

    /// Create the subscription the package decided on, answer the SUBSCRIBE and send the
    /// immediate NOTIFY (RFC 6665 §4.2.1.2) with `body` (the current state; None for none,
    /// e.g. while pending).
    pub fn decide(
        &mut self,
        new: Box<NewSubscription<D>>,
        decision: Decision,
        body: Option<Body>,
        now: Instant,
    ) -> Decided<D> {
        match self.create(&new, decision, body, now) {
            Ok(decided) => decided,
            Err(rejection) => Decided {
                response: self.reject(&new.request, &rejection),
                id: None,
                actions: Vec::new(),
            },
        }
    }

    fn create(
        &mut self,
        new: &NewSubscription<D>,
        decision: Decision,
        body: Option<Body>,
        now: Instant,
    ) -> Result<Decided<D>, Rejection> {
        let state = match decision {
            Decision::Accept => SubState::Active,
            Decision::Pending => SubState::Pending,
            Decision::Reject(code) => {
                return Err(Rejection::new(if (300..=699).contains(&code) {
                    code
                } else {
                    403
                }))
            }
        };
        let subscriber_key = notify::uri_key(&new.subscriber);
        let resource_key = notify::uri_key(&new.resource);
        // Checked again: other subscriptions may have been created while the package decided.
        self.check_limits(&subscriber_key, &resource_key)?;
        let request = &new.request;
        let (key, dialog_id) = match &new.in_dialog {
            Some(key) => match self.dialog_ids.get(key) {
                Some(id) => (key.clone(), *id),
                None => return Err(Rejection::new(481)),
            },
            None => {
                let call_id = request.call_id().map_err(Rejection::bad)?.to_owned();
                let from = request.from_header().map_err(Rejection::bad)?;
                let remote_tag = from.tag().unwrap_or_default().to_owned();
                let cseq = request.cseq().map_err(Rejection::bad)?.seq;
                let local_tag = notify::token(&mut self.rng, 10);
                let to_value = request.header(&HeaderName::To).unwrap_or_default();
                let from_value = request.header(&HeaderName::From).unwrap_or_default();
                let key = DialogKey {
                    call_id,
                    local_tag,
                    remote_tag,
                };
                let dialog_id = self.new_dialog_id(&key);
                self.dialogs.insert(
                    dialog_id,
                    Dialog {
                        local_uri: format!("{};tag={}", to_value, key.local_tag),
                        remote_uri: from_value.to_owned(),
                        remote_target: new.remote_target.clone(),
                        route_set: new.route_set.clone(),
                        local_cseq: 0,
                        remote_cseq: cseq,
                        saved_cseq: 0,
                        head: None,
                        flow: new.flow.clone(),
                        subs: Vec::new(),
                    },
                );
                (key, dialog_id)
            }
        };
        let id = SubId(self.next_id);
        self.next_id += 1;
        if let Some(dialog) = self.dialogs.get_mut(&dialog_id) {
            dialog.subs.push(id);
        }
        let mut sub = Subscription {
            dialog: key,
            dialog_id,
            package: new.package,
            event: new.event.clone(),
            event_id: new.event_id.clone(),
            subscriber: new.subscriber.clone(),
            subscriber_key,
            resource: new.resource.clone(),
            resource_key,
            accept: new.accept.clone(),
            state,
            expires_at: now + Duration::from_secs(u64::from(new.expires)),
            last: None,
            queue: VecDeque::new(),
            resend: false,
            need_full: false,
            awaiting: false,
            final_sent: false,
            in_flight: None,
            hold_until: None,
            failures: 0,
            timer: None,
        };
        sub.queue.push_back(body.clone());
        self.insert(id, sub);
        let mut actions = Vec::new();
        if new.expires == 0 {
            // A fetch (RFC 6665 §4.4.3): one NOTIFY with the state, which also ends it.
            self.end(
                id,
                Reason::Timeout,
                EndCause::Unsubscribed,
                body,
                now,
                &mut actions,
            );
        } else {
            self.flush(id, now, &mut actions);
        }
        let code = if state == SubState::Pending && self.config.accepted_for_pending {
            202
        } else {
            200
        };
        let response = self.accept_response(request, id, code, new.expires);
        Ok(Decided {
            response,
            id: Some(id),
            actions,
        })
    }

    // ------------------------------------------------------------------ package-driven

    /// New state for `id`: sent now, or when the in-flight NOTIFY completes (full-state
    /// packages keep only the newest waiting body). Also the answer to
    /// [`Action::ContentNeeded`].
    pub fn notify(
        &mut self,
        id: SubId,
        body: Option<Body>,
        now: Instant,
    ) -> Result<Vec<Action<D>>, Gone> {
        let mut actions = Vec::new();
        self.notify_into(id, body, now, &mut actions)?;
        Ok(actions)
    }

    /// [`Self::notify`] appending to `actions`: a fan-out to many subscriptions gathers
    /// their NOTIFYs in one vector instead of allocating one per subscription.
    pub fn notify_into(
        &mut self,
        id: SubId,
        body: Option<Body>,
        now: Instant,
        actions: &mut Vec<Action<D>>,
    ) -> Result<(), Gone> {
        self.live(id)?;
        self.push_body(id, body);
        self.flush(id, now, actions);
        Ok(())
    }

    /// Pending → active (authorisation granted), with the state the subscriber may now see.
    pub fn activate(
        &mut self,
        id: SubId,
        body: Option<Body>,
        now: Instant,
    ) -> Result<Vec<Action<D>>, Gone> {
        self.move_to(id, SubState::Active, body, now)
    }

    /// Active → pending (authorisation withdrawn until the resource owner decides again,
    /// RFC 6665 §4.1.2 allows the notifier to move back), with the state the subscriber may
    /// still see (usually none).
    pub fn suspend(
        &mut self,
        id: SubId,
        body: Option<Body>,
        now: Instant,
    ) -> Result<Vec<Action<D>>, Gone> {
        self.move_to(id, SubState::Pending, body, now)
    }

    /// Change a live subscription's state and notify the subscriber of it.
    fn move_to(
        &mut self,
        id: SubId,
        state: SubState,
        body: Option<Body>,
        now: Instant,
    ) -> Result<Vec<Action<D>>, Gone> {
        self.live(id)?;
        if let Some(sub) = self.subs.get_mut(&id) {
            sub.state = state;
            self.changed.insert(id);
        }
        self.notify(id, body, now)
    }

    /// End `id` with `reason` (RFC 6665 §4.1.3); the final NOTIFY carries `body`, if any.
    pub fn terminate(
        &mut self,
        id: SubId,
        reason: Reason,
        body: Option<Body>,
        now: Instant,
    ) -> Result<Vec<Action<D>>, Gone> {
        self.live(id)?;
        let mut actions = Vec::new();
        self.end(
            id,
            reason,
            EndCause::Package(reason),
            body,
            now,
            &mut actions,
        );
        Ok(actions)
    }

    // ------------------------------------------------------------------ NOTIFY outcomes

    /// A final response to `id`'s in-flight NOTIFY. Provisional responses and responses to
    /// an older NOTIFY (CSeq mismatch) are ignored.
    pub fn on_notify_response(
        &mut self,
        id: SubId,
        response: &Message,
        now: Instant,
    ) -> Vec<Action<D>> {
        let mut actions = Vec::new();
        let Some(status) = response.status().filter(|s| *s >= 200) else {
            return actions;
        };
        let Some(sub) = self.subs.get_mut(&id) else {
            return actions;
        };
        let matches = match (&sub.in_flight, response.cseq()) {
            (Some(flight), Ok(cseq)) => cseq.seq == flight.cseq && cseq.method == Method::Notify,
            _ => false,
        };
        let Some(flight) = sub.in_flight.take().filter(|_| matches) else {
            return actions;
        };
        if sub.final_sent {
            self.remove(id);
        } else if (200..300).contains(&status) {
            sub.failures = 0;
            if !self.config.min_notify_interval.is_zero() {
                sub.hold_until = Some(now + self.config.min_notify_interval);
            }
            self.flush(id, now, &mut actions);
        } else if destroys_usage(status) {
            self.fail(id, Some(status), &mut actions);
        } else {
            sub.failures += 1;
            if sub.failures >= self.config.max_notify_failures {
                self.fail(id, Some(status), &mut actions);
                return actions;
            }
            let delay = response
                .retry_after()
                .map(|secs| Duration::from_secs(u64::from(secs)).min(self.config.max_retry_after))
                .unwrap_or(self.config.notify_retry_delay);
            sub.hold_until = Some(now + delay);
            let mode = self.config.packages.get(sub.package).map(|p| p.mode);
            if !matches!(sub.state, SubState::Terminated(_)) {
                // Deltas must arrive in order, so the failed one goes first again; a full
                // state is superseded by whatever is newest.
                if mode == Some(ContentMode::Partial) {
                    sub.queue.push_front(flight.body);
                } else {
                    sub.resend = true;
                }
            }
            self.flush(id, now, &mut actions);
        }
        actions
    }

    /// `id`'s in-flight NOTIFY got no response (Timer F) or could not be sent: the
    /// subscription ends without a further NOTIFY (RFC 6665 §4.2.2).
    pub fn on_notify_failed(&mut self, id: SubId, _now: Instant) -> Vec<Action<D>> {
        let mut actions = Vec::new();
        if self
            .subs
            .get_mut(&id)
            .and_then(|s| s.in_flight.take())
            .is_some()
        {
            self.fail(id, None, &mut actions);
        }
        actions
    }

    // ------------------------------------------------------------------ timers

    /// When [`SubscriptionEngine::on_timer`] must next run.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.first().map(|(at, _)| *at)
    }

    /// Expire subscriptions (final NOTIFY `terminated;reason=timeout`) and send NOTIFYs
    /// whose hold (rate limit, Retry-After) has passed.
    pub fn on_timer(&mut self, now: Instant) -> Vec<Action<D>> {
        let mut actions = Vec::new();
        let due: Vec<(Instant, SubId)> = self
            .timers
            .range(..=(now, SubId(u64::MAX)))
            .copied()
            .collect();
        for (at, id) in due {
            self.timers.remove(&(at, id));
            let Some(sub) = self.subs.get_mut(&id) else {
                continue;
            };
            sub.timer = None;
            if !matches!(sub.state, SubState::Terminated(_)) && sub.expires_at <= now {
                self.end(
                    id,
                    Reason::Timeout,
                    EndCause::Expired,
                    None,
                    now,
                    &mut actions,
                );
            } else {
                self.flush(id, now, &mut actions);
            }
        }
        actions
    }

    // ------------------------------------------------------------------ persistence

    /// Every live (not terminated) subscription as plain data; `now_unix` is `now` in unix
    /// seconds. In-flight and waiting NOTIFYs are not part of it: after an import the
    /// package renders the state afresh.
    pub fn export(&self, now: Instant, now_unix: u64) -> Vec<SubscriptionRecord<D>> {
        let mut records: Vec<SubscriptionRecord<D>> = self
            .subs
            .keys()
            .filter_map(|id| self.record(*id, now, now_unix))
            .collect();
        records.sort_by_key(|r| r.dialog.id);
        records
    }

    /// What changed since the last call (or since creation), in id order: the live
    /// subscriptions among them as plain data (as [`Self::export`] gives them), and the ids
    /// that are gone or terminated. Persistence stores just these instead of a whole export.
    /// A NOTIFY changes a subscription only every [`CSEQ_SAVE_STEP`] CSeq numbers.
    pub fn take_changes(
        &mut self,
        now: Instant,
        now_unix: u64,
    ) -> (Vec<SubscriptionRecord<D>>, Vec<SubId>) {
        let mut records = Vec::new();
        let mut removed = Vec::new();
        for id in std::mem::take(&mut self.changed) {
            match self.record(id, now, now_unix) {
                Some(record) => {
                    let dialog_id = self.subs.get(&id).map(|s| s.dialog_id);
                    if let Some(dialog) = dialog_id.and_then(|d| self.dialogs.get_mut(&d)) {
                        dialog.saved_cseq = dialog.local_cseq;
                    }
                    records.push(record);
                }
                None => removed.push(id),
            }
        }
        (records, removed)
    }

    /// Marks `id` changed, so the next [`Self::take_changes`] reports it (as gone when no
    /// such live subscription exists): for package state kept beside the subscription, or
    /// rows read back on start that must be rewritten or deleted.
    pub fn touch(&mut self, id: SubId) {
        self.changed.insert(id);
    }

    /// `id` as plain data, if it is live.
    fn record(&self, id: SubId, now: Instant, now_unix: u64) -> Option<SubscriptionRecord<D>> {
        let sub = self.subs.get(&id)?;
        let active = match sub.state {
            SubState::Active => true,
            SubState::Pending => false,
            SubState::Terminated(_) => return None,
        };
        let dialog = self.dialogs.get(&sub.dialog_id)?;
        let pkg = self.config.packages.get(sub.package)?;
        Some(SubscriptionRecord {
            dialog: StoredDialog {
                id: id.0,
                event: pkg.event.clone(),
                list: pkg.list,
                event_id: sub.event_id.clone(),
                active,
                subscriber: sub.subscriber.clone(),
                resource: sub.resource.clone(),
                accept: sub.accept.clone(),
                call_id: sub.dialog.call_id.clone(),
                local_tag: sub.dialog.local_tag.clone(),
                remote_tag: sub.dialog.remote_tag.clone(),
                local_uri: dialog.local_uri.clone(),
                remote_uri: dialog.remote_uri.clone(),
                remote_target: dialog.remote_target.clone(),
                route_set: dialog.route_set.clone(),
                local_cseq: dialog.local_cseq,
                remote_cseq: dialog.remote_cseq,
                reliable: dialog.flow.reliable,
            },
            expires_at: now_unix
                .saturating_add(sub.expires_at.saturating_duration_since(now).as_secs()),
            flow: dialog.flow.clone(),
        })
    }

    /// Restore exported subscriptions. Records that expired meanwhile, name a package no
    /// longer configured, or reuse a live id are skipped. Every restored subscription gets
    /// [`Action::ContentNeeded`] with `full_state: true`, so the subscriber learns whatever
    /// changed while the server was down.
    pub fn import(
        &mut self,
        records: impl IntoIterator<Item = SubscriptionRecord<D>>,
        now: Instant,
        now_unix: u64,
    ) -> Vec<Action<D>> {
        let mut actions = Vec::new();
        for SubscriptionRecord {
            dialog: r,
            expires_at,
            flow,
        } in records
        {
            let id = SubId(r.id);
            let package = self
                .config
                .packages
                .iter()
                .position(|p| p.event.eq_ignore_ascii_case(&r.event) && p.list == r.list);
            let (Some(package), true, false) =
                (package, expires_at > now_unix, self.subs.contains_key(&id))
            else {
                continue;
            };
            let key = DialogKey {
                call_id: r.call_id,
                local_tag: r.local_tag,
                remote_tag: r.remote_tag,
            };
            let dialog_id = match self.dialog_ids.get(&key) {
                Some(id) => *id,
                None => self.new_dialog_id(&key),
            };
            let dialog = self.dialogs.entry(dialog_id).or_insert_with(|| Dialog {
                local_uri: r.local_uri,
                remote_uri: r.remote_uri,
                remote_target: r.remote_target,
                route_set: r.route_set,
                local_cseq: r.local_cseq,
                remote_cseq: r.remote_cseq,
                saved_cseq: r.local_cseq,
                head: None,
                flow,
                subs: Vec::new(),
            });
            dialog.local_cseq = dialog.local_cseq.max(r.local_cseq);
            dialog.remote_cseq = dialog.remote_cseq.max(r.remote_cseq);
            dialog.subs.push(id);
            self.next_id = self.next_id.max(r.id.saturating_add(1));
            let sub = Subscription {
                dialog: key,
                dialog_id,
                package,
                event: r.event,
                event_id: r.event_id,
                subscriber_key: notify::uri_key(&r.subscriber),
                subscriber: r.subscriber,
                resource_key: notify::uri_key(&r.resource),
                resource: r.resource,
                accept: r.accept,
                state: if r.active {
                    SubState::Active
                } else {
                    SubState::Pending
                },
                expires_at: now + Duration::from_secs(expires_at - now_unix),
                last: None,
                queue: VecDeque::new(),
                resend: true,
                need_full: false,
                awaiting: false,
                final_sent: false,
                in_flight: None,
                hold_until: None,
                failures: 0,
                timer: None,
            };
            self.insert(id, sub);
            self.flush(id, now, &mut actions);
        }
        actions
    }

    // ------------------------------------------------------------------ internals

    fn live(&self, id: SubId) -> Result<(), Gone> {
        match self.subs.get(&id) {
            Some(sub) if !matches!(sub.state, SubState::Terminated(_)) => Ok(()),
            _ => Err(Gone::NoSubscription),
        }
    }

    fn package(&self, index: usize) -> Result<&PackageConfig, Rejection> {
        self.config
            .packages
            .get(index)
            .ok_or_else(|| Rejection::new(500))
    }

    fn find_package(&self, event: &str, resource: Resource) -> Option<usize> {
        let list = resource == Resource::List;
        self.config
            .packages
            .iter()
            .position(|p| p.event.eq_ignore_ascii_case(event) && p.list == list)
    }

    /// 489 with every package we serve (RFC 6665 §8.3.2).
    fn bad_event(&self) -> Rejection {
        let mut names: Vec<&str> = Vec::new();
        for p in &self.config.packages {
            if !names.iter().any(|n| n.eq_ignore_ascii_case(&p.event)) {
                names.push(&p.event);
            }
        }
        Rejection::new(489).with("Allow-Events", names.join(", "))
    }

    /// The lifetime to grant (RFC 6665 §4.2.1.1): default when absent, 423 below the
    /// minimum, shortened to the maximum; 0 stays 0 (unsubscribe or fetch).
    fn grant(&self, package: usize, requested: Option<u32>) -> Result<u32, Rejection> {
        let pkg = self.package(package)?;
        match requested {
            None => Ok(pkg.default_expires.min(pkg.max_expires)),
            Some(0) => Ok(0),
            Some(e) if e < pkg.min_expires => {
                Err(Rejection::new(423).with("Min-Expires", pkg.min_expires.to_string()))
            }
            Some(e) => Ok(e.min(pkg.max_expires)),
        }
    }

    fn check_limits(&self, subscriber_key: &str, resource_key: &str) -> Result<(), Rejection> {
        if self.subs.len() >= self.config.max_subscriptions {
            return Err(Rejection::new(503)
                .with("Retry-After", self.config.overload_retry_after.to_string()));
        }
        let count = |map: &HashMap<String, usize>, key: &str| map.get(key).copied().unwrap_or(0);
        if count(&self.per_subscriber, subscriber_key) >= self.config.max_per_subscriber {
            return Err(Rejection {
                reason: Some("Too Many Subscriptions From This Subscriber".to_owned()),
                ..Rejection::new(403)
            });
        }
        if count(&self.per_resource, resource_key) >= self.config.max_per_resource {
            return Err(Rejection {
                reason: Some("Too Many Subscriptions To This Resource".to_owned()),
                ..Rejection::new(403)
            });
        }
        Ok(())
    }

    fn reject(&mut self, request: &Message, rejection: &Rejection) -> Bytes {
        // A fresh tag is only used when the To has none (RFC 3261 §8.2.6.2).
        let tag = notify::token(&mut self.rng, 10);
        let headers: Vec<(&str, &str)> = rejection
            .headers
            .iter()
            .map(|(n, v)| (*n, v.as_str()))
            .collect();
        notify::respond(
            request,
            rejection.code,
            rejection.reason.as_deref(),
            &tag,
            &headers,
        )
    }

    /// 2xx to a SUBSCRIBE: Contact always (Blink fails without it), Expires, and
    /// `Require: eventlist` for list packages (RFC 4662 §5).
    fn accept_response(&self, request: &Message, id: SubId, code: u16, expires: u32) -> Bytes {
        let sub = self.subs.get(&id);
        let list = sub
            .and_then(|s| self.config.packages.get(s.package))
            .is_some_and(|p| p.list);
        let dialog = sub.and_then(|s| Some((s, self.dialogs.get(&s.dialog_id)?)));
        let (tag, contact) = dialog
            .map(|(s, d)| (s.dialog.local_tag.as_str(), d.flow.contact.as_str()))
            .unwrap_or_default();
        let expires = expires.to_string();
        let mut headers = vec![("Contact", contact), ("Expires", expires.as_str())];
        if list {
            headers.push(("Require", "eventlist"));
        }
        notify::respond(request, code, None, tag, &headers)
    }

    /// A handle for a new dialog named `key`.
    fn new_dialog_id(&mut self, key: &DialogKey) -> DialogId {
        let id = DialogId(self.next_dialog);
        self.next_dialog += 1;
        self.dialog_ids.insert(key.clone(), id);
        id
    }

    fn insert(&mut self, id: SubId, sub: Subscription) {
        *self
            .per_subscriber
            .entry(sub.subscriber_key.clone())
            .or_insert(0) += 1;
        *self
            .per_resource
            .entry(sub.resource_key.clone())
            .or_insert(0) += 1;
        self.subs.insert(id, sub);
        self.changed.insert(id);
    }

    fn remove(&mut self, id: SubId) {
        let Some(sub) = self.subs.remove(&id) else {
            return;
        };
        self.changed.insert(id);
        if let Some(at) = sub.timer {
            self.timers.remove(&(at, id));
        }
        decrement(&mut self.per_subscriber, &sub.subscriber_key);
        decrement(&mut self.per_resource, &sub.resource_key);
        if let Some(dialog) = self.dialogs.get_mut(&sub.dialog_id) {
            dialog.subs.retain(|s| *s != id);
            if dialog.subs.is_empty() {
                self.dialogs.remove(&sub.dialog_id);
                self.dialog_ids.remove(&sub.dialog);
            }
        }
    }

    fn push_body(&mut self, id: SubId, body: Option<Body>) {
        let max = self.config.max_queued_notifies;
        let Some(sub) = self.subs.get_mut(&id) else {
            return;
        };
        if sub.awaiting {
            sub.awaiting = false;
            sub.need_full = false;
            sub.resend = false;
        }
        let mode = self.config.packages.get(sub.package).map(|p| p.mode);
        if mode == Some(ContentMode::Partial) {
            if sub.queue.len() >= max {
                sub.queue.clear();
                sub.need_full = true;
            } else {
                sub.queue.push_back(body);
            }
        } else {
            sub.queue.clear();
            sub.queue.push_back(body);
        }
    }

    /// Move `id` to terminated; its final NOTIFY (with `body`) supersedes anything waiting.
    fn end(
        &mut self,
        id: SubId,
        reason: Reason,
        cause: EndCause,
        body: Option<Body>,
        now: Instant,
        actions: &mut Vec<Action<D>>,
    ) {
        let Some(sub) = self.subs.get_mut(&id) else {
            return;
        };
        sub.state = SubState::Terminated(reason);
        self.changed.insert(id);
        sub.queue.clear();
        sub.queue.push_back(body);
        sub.need_full = false;
        sub.awaiting = false;
        sub.resend = false;
        self.flush(id, now, actions);
        actions.push(Action::Terminated { id, cause });
    }

    /// The subscription cannot be reached any more: drop it without a NOTIFY.
    fn fail(&mut self, id: SubId, status: Option<u16>, actions: &mut Vec<Action<D>>) {
        let Some(sub) = self.subs.get(&id) else {
            return;
        };
        let already_ended = matches!(sub.state, SubState::Terminated(_));
        self.remove(id);
        if !already_ended {
            actions.push(Action::Terminated {
                id,
                cause: EndCause::NotifyFailed(status),
            });
        }
    }

    /// Send the next NOTIFY of `id` if one is due and nothing holds it back, then re-arm
    /// its timer.
    fn flush(&mut self, id: SubId, now: Instant, actions: &mut Vec<Action<D>>) {
        self.send_next(id, now, actions);
        self.reschedule(id);
    }

    fn send_next(&mut self, id: SubId, now: Instant, actions: &mut Vec<Action<D>>) {
        let Some(sub) = self.subs.get_mut(&id) else {
            return;
        };
        if sub.in_flight.is_some() {
            return;
        }
        // The rate limit paces changes of state, never the end: an unsubscribe gets its final
        // NOTIFY at once. A soft failure's back-off (failures > 0) holds that one too.
        let ends = matches!(sub.state, SubState::Terminated(_)) && sub.failures == 0;
        match sub.hold_until {
            Some(until) if now < until && !ends => return,
            _ => sub.hold_until = None,
        }
        let Some(pkg) = self.config.packages.get(sub.package) else {
            return;
        };
        let body = if matches!(sub.state, SubState::Terminated(_)) {
            if sub.final_sent {
                return;
            }
            sub.final_sent = true;
            sub.queue.pop_front().flatten()
        } else if pkg.mode == ContentMode::Partial && sub.need_full {
            sub.queue.clear();
            sub.need_full = false;
            sub.awaiting = true;
            actions.push(Action::ContentNeeded {
                id,
                full_state: true,
            });
            return;
        } else if let Some(body) = sub.queue.pop_front() {
            body
        } else if sub.resend && !sub.awaiting {
            match (&sub.last, pkg.mode) {
                (Some(last), ContentMode::FullState) => last.clone(),
                (last, _) => {
                    sub.awaiting = true;
                    actions.push(Action::ContentNeeded {
                        id,
                        full_state: last.is_none(),
                    });
                    return;
                }
            }
        } else {
            return;
        };
        sub.resend = false;
        let Some(dialog) = self.dialogs.get_mut(&sub.dialog_id) else {
            return;
        };
        dialog.local_cseq = dialog.local_cseq.saturating_add(1);
        let cseq = dialog.local_cseq;
        if cseq.wrapping_sub(dialog.saved_cseq) >= CSEQ_SAVE_STEP {
            self.changed.insert(id);
        }
        let branch = notify::branch(&mut self.rng);
        let first_of_head = dialog.head.is_none();
        let head = dialog.head.get_or_insert_with(|| {
            notify::notify_head(&DialogView {
                call_id: &sub.dialog.call_id,
                local_uri: &dialog.local_uri,
                remote_uri: &dialog.remote_uri,
                remote_target: &dialog.remote_target,
                route_set: &dialog.route_set,
                via: &dialog.flow.via,
                contact: &dialog.flow.contact,
            })
        });
        let data = notify::build_notify(
            head,
            &NotifySpec {
                event: &sub.event,
                event_id: sub.event_id.as_deref(),
                state: sub.state,
                expires: sub.expires_at.saturating_duration_since(now).as_secs(),
                list: pkg.list,
                body: body.as_ref(),
                cseq,
                branch: &branch,
            },
        );
        // Only a remote target or route our parser accepted but cannot re-read could fail
        // here; such a subscription could never be notified, so it ends.
        if first_of_head && Message::parse(data.clone(), &notify::OWN_MESSAGES).is_err() {
            dialog.head = None;
            self.fail(id, None, actions);
            return;
        }
        actions.push(Action::SendNotify(Notify {
            id,
            data,
            branch: branch.into_boxed_str(),
            dest: dialog.flow.dest.clone(),
            reliable: dialog.flow.reliable,
        }));
        sub.last = Some(body.clone());
        sub.in_flight = Some(InFlight { cseq, body });
    }

    fn reschedule(&mut self, id: SubId) {
        let Some(sub) = self.subs.get_mut(&id) else {
            return;
        };
        let expiry = (!matches!(sub.state, SubState::Terminated(_))).then_some(sub.expires_at);
        // A hold with nothing waiting behind it needs no timer: the next body finds the hold
        // over (or arms it then). Arming one after every answered NOTIFY would cost a timer
        // and a wakeup per NOTIFY under load.
        let waiting = !sub.queue.is_empty() || sub.resend || sub.need_full;
        let hold = sub
            .hold_until
            .filter(|_| sub.in_flight.is_none() && waiting);
        let due = match (expiry, hold) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if sub.timer != due {
            if let Some(old) = sub.timer {
                self.timers.remove(&(old, id));
            }
            if let Some(at) = due {
                self.timers.insert((at, id));
            }
            sub.timer = due;
        }
    }
}

fn decrement(map: &mut HashMap<String, usize>, key: &str) {
    if let Some(n) = map.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(key);
        }
    }
}

/// Responses after which the subscription usage is gone (RFC 6665 §4.2.2 for 481; RFC 5057
/// §5.1 for the rest): retrying would only meet the same answer.
fn destroys_usage(status: u16) -> bool {
    matches!(
        status,
        404 | 405 | 410 | 416 | 480 | 481 | 482 | 483 | 484 | 485 | 489 | 501 | 604
    )
}
