//! List subscriptions (RFC 4662 §4–§5) driven through the RFC 6665 engine: the list each
//! subscription covers, the back-end watches shared by a subscriber's lists (RFC 4662 §4.4),
//! and the batching and versioning of RLMI NOTIFYs (§5.2).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::RngCore;
use simple_payloads::rlmi::InstanceState;
use sip_message::Message;
use sip_subscription::{
    Action, Body, Decision, Flow, NewSubscription, Reason, Resource, SubId, SubscribeOutcome,
    SubscriptionEngine,
};

use crate::expand::{service_key, List};
use crate::render::{render, Header, InstanceView, ResourceView};
use crate::{Command, Config, Notify, ResourceState, WatchKey, WatchStatus};

/// The response to a SUBSCRIBE (send it first), then NOTIFYs and back-end commands.
#[derive(Debug)]
pub struct Answer<D> {
    pub status: u16,
    pub response: Bytes,
    pub notifies: Vec<Notify<D>>,
    pub commands: Vec<Command>,
}

/// NOTIFYs and back-end commands caused by anything but a SUBSCRIBE.
#[derive(Debug)]
pub struct Output<D> {
    pub notifies: Vec<Notify<D>>,
    pub commands: Vec<Command>,
}

impl<D> Default for Output<D> {
    fn default() -> Self {
        Output {
            notifies: Vec::new(),
            commands: Vec::new(),
        }
    }
}

/// The result of [`RlsAgent::on_subscribe`].
#[derive(Debug)]
pub enum Subscribe<D> {
    /// Refreshes, unsubscriptions and refusals.
    Answered(Answer<D>),
    /// A new list subscription: run its commands, then [`RlsAgent::open`] it.
    Opening(Opening<D>),
}

/// A list subscription accepted but not answered yet. Its watches are already counted:
/// the shell must pass it to [`RlsAgent::open`].
#[derive(Debug)]
#[must_use = "an opening holds watches until it is passed to RlsAgent::open"]
pub struct Opening<D> {
    new: Box<NewSubscription<D>>,
    list: List,
    subscriber: String,
    /// `Watch` for each resource not yet watched for this subscriber. Answer those whose
    /// state is known at once with [`RlsAgent::on_resource_state`] before opening, so the
    /// first NOTIFY carries it.
    pub commands: Vec<Command>,
}

/// One resource of a subscription's list.
#[derive(Debug, Clone)]
struct Member {
    /// As echoed in RLMI.
    uri: String,
    name: Option<String>,
    /// None for entries that name no SIP user: they never get state.
    key: Option<WatchKey>,
    instance_id: String,
    /// The last NOTIFY showed this instance terminated; a new state is a new instance.
    reported_terminated: bool,
}

#[derive(Debug)]
pub(crate) struct ListSub {
    /// The RLMI `list/@uri`.
    pub(crate) service: String,
    service_key: String,
    /// `sip:user@host` of the subscriber, on whose behalf resources are watched.
    pub(crate) subscriber: String,
    members: Vec<Member>,
    /// Members whose state changed since the last NOTIFY.
    dirty: BTreeSet<usize>,
    /// The next NOTIFY carries full state.
    full: bool,
    /// RLMI version of the next NOTIFY.
    pub(crate) version: u32,
    /// When the collected changes go out; may have passed while a NOTIFY was in flight.
    due: Option<Instant>,
    in_flight: bool,
}

#[derive(Debug, Default)]
struct Watch {
    state: Option<ResourceState>,
    /// Open subscriptions and openings using the watch.
    refs: usize,
    subs: BTreeSet<SubId>,
}

pub struct RlsAgent<D> {
    pub(crate) engine: SubscriptionEngine<D>,
    config: Config,
    pub(crate) subs: HashMap<SubId, ListSub>,
    watches: HashMap<WatchKey, Watch>,
    by_service: HashMap<String, BTreeSet<SubId>>,
    timers: BTreeSet<(Instant, SubId)>,
    /// The engine's actions for imported subscriptions, run by `resume`.
    pub(crate) held: Vec<Action<D>>,
    /// Random per agent, so Content-IDs stay unique across restarts (RFC 2392).
    cid_prefix: String,
    bodies: u64,
    instances: u64,
}

impl<D: Clone> RlsAgent<D> {
    pub fn new(mut config: Config, mut rng: StdRng) -> RlsAgent<D> {
        let cid_prefix = format!("{:012x}", rng.next_u64() & 0xffff_ffff_ffff);
        let engine_rng = rand::SeedableRng::seed_from_u64(rng.next_u64());
        let subscription = std::mem::take(&mut config.subscription);
        RlsAgent {
            engine: SubscriptionEngine::new(subscription, engine_rng),
            config,
            subs: HashMap::new(),
            watches: HashMap::new(),
            by_service: HashMap::new(),
            timers: BTreeSet::new(),
            held: Vec::new(),
            cid_prefix,
            bodies: 0,
            instances: 0,
        }
    }

    /// List subscriptions held.
    pub fn subscriptions(&self) -> usize {
        self.engine.len()
    }

    /// Back-end watches held.
    pub fn watches(&self) -> usize {
        self.watches.len()
    }

    /// Whether an in-dialog SUBSCRIBE refreshes one of our list subscriptions.
    pub fn holds_dialog(&self, request: &Message) -> bool {
        self.engine.holds_dialog(request)
    }

    /// A SUBSCRIBE to a service URI; `subscriber` is the authenticated `sip:user@host` and
    /// `list` the service's expansion (ignored for refreshes of existing subscriptions).
    pub fn on_subscribe(
        &mut self,
        request: &Message,
        flow: Flow<D>,
        subscriber: &str,
        list: List,
        now: Instant,
    ) -> Subscribe<D> {
        let new = match self.engine.on_subscribe(request, flow, Resource::List, now) {
            SubscribeOutcome::Respond { response, actions } => {
                let mut out = Output::default();
                self.run(actions, now, &mut out);
                return Subscribe::Answered(answer(response, out));
            }
            SubscribeOutcome::Decide(new) => new,
        };
        if !list.allows(new.event()) {
            // RFC 4826 §4.2: the service does not offer this package.
            let decided = self.engine.decide(new, Decision::Reject(489), None, now);
            return Subscribe::Answered(answer(decided.response, Output::default()));
        }
        let mut commands = Vec::new();
        for entry in &list.entries {
            if let Some(key) = watch_key(&entry.resource_uri(), subscriber) {
                self.acquire(key, &mut commands);
            }
        }
        Subscribe::Opening(Opening {
            new,
            list,
            subscriber: subscriber.to_owned(),
            commands,
        })
    }

    /// Answers an opening: the 200 and the full-state first NOTIFY with every state known.
    pub fn open(&mut self, opening: Opening<D>, now: Instant) -> Answer<D> {
        let Opening {
            new,
            list,
            subscriber,
            ..
        } = opening;
        let members: Vec<Member> = list
            .entries
            .iter()
            .map(|entry| self.member(entry, &subscriber))
            .collect();
        let mut sub = ListSub {
            service: list.service.clone(),
            service_key: service_key(&list.service),
            subscriber,
            members,
            dirty: BTreeSet::new(),
            full: true,
            version: 0,
            due: None,
            in_flight: false,
        };
        let body = self.render(&mut sub, true, now);
        let decided = self.engine.decide(new, Decision::Accept, Some(body), now);
        let mut out = Output::default();
        match decided.id {
            Some(id) => {
                for key in sub.members.iter().filter_map(|m| m.key.as_ref()) {
                    if let Some(watch) = self.watches.get_mut(key) {
                        watch.subs.insert(id);
                    }
                }
                self.by_service
                    .entry(sub.service_key.clone())
                    .or_default()
                    .insert(id);
                if let Some(due) = sub.due {
                    self.timers.insert((due, id));
                }
                self.subs.insert(id, sub);
            }
            None => {
                for key in sub.members.into_iter().filter_map(|m| m.key) {
                    self.release(&key, None, &mut out.commands);
                }
            }
        }
        self.run(decided.actions, now, &mut out);
        answer(decided.response, out)
    }

    /// A back-end watch's state: the lists containing it show it in their next NOTIFY.
    pub fn on_resource_state(&mut self, key: &WatchKey, state: ResourceState, now: Instant) {
        let Some(watch) = self.watches.get_mut(key) else {
            return;
        };
        if watch.state.as_ref() == Some(&state) {
            return;
        }
        watch.state = Some(state);
        let subs: Vec<SubId> = watch.subs.iter().copied().collect();
        for id in subs {
            let Some(sub) = self.subs.get_mut(&id) else {
                continue;
            };
            if let Some(index) = sub.members.iter().position(|m| m.key.as_ref() == Some(key)) {
                sub.dirty.insert(index);
                self.schedule(id, now + self.config.batch_window);
            }
        }
    }

    /// The service's list changed (or its documents did): members are watched or dropped
    /// and every subscription to it gets a full-state NOTIFY within the batching window.
    pub fn on_list_changed(&mut self, service: &str, list: List, now: Instant) -> Output<D> {
        let mut out = Output::default();
        let ids: Vec<SubId> = self
            .by_service
            .get(&service_key(service))
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        for id in ids {
            if !list.allows(crate::PRESENCE) {
                let actions = self
                    .engine
                    .terminate(id, Reason::Noresource, None, now)
                    .unwrap_or_default();
                self.run(actions, now, &mut out);
                continue;
            }
            let Some(sub) = self.subs.get_mut(&id) else {
                continue;
            };
            // Members are the same resource when they share a watch (or, unwatched, a URI):
            // they keep their instance id and the watch stays untouched.
            let mut old: HashMap<String, Member> = std::mem::take(&mut sub.members)
                .into_iter()
                .map(|m| (identity(&m.uri, m.key.as_ref()), m))
                .collect();
            let subscriber = sub.subscriber.clone();
            let mut members = Vec::with_capacity(list.entries.len());
            for entry in &list.entries {
                let mut member = self.member(entry, &subscriber);
                match old.remove(&identity(&member.uri, member.key.as_ref())) {
                    Some(kept) => {
                        member.instance_id = kept.instance_id;
                        member.reported_terminated = kept.reported_terminated;
                    }
                    None => {
                        if let Some(key) = &member.key {
                            self.acquire(key.clone(), &mut out.commands);
                            if let Some(watch) = self.watches.get_mut(key) {
                                watch.subs.insert(id);
                            }
                        }
                    }
                }
                members.push(member);
            }
            for gone in old.into_values() {
                if let Some(key) = &gone.key {
                    self.release(key, Some(id), &mut out.commands);
                }
            }
            if let Some(sub) = self.subs.get_mut(&id) {
                sub.members = members;
                sub.dirty.clear();
                sub.full = true;
                sub.service = list.service.clone();
            }
            self.schedule(id, now + self.config.batch_window);
        }
        out
    }

    /// The service is gone: its subscriptions end (`noresource`, RFC 6665 §4.1.3).
    pub fn on_service_removed(&mut self, service: &str, now: Instant) -> Output<D> {
        let mut out = Output::default();
        let ids: Vec<SubId> = self
            .by_service
            .get(&service_key(service))
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        for id in ids {
            let actions = self
                .engine
                .terminate(id, Reason::Noresource, None, now)
                .unwrap_or_default();
            self.run(actions, now, &mut out);
        }
        out
    }

    /// A final response to a NOTIFY.
    pub fn on_notify_response(&mut self, id: SubId, response: &Message, now: Instant) -> Output<D> {
        if response.status().is_some_and(|s| s >= 200) {
            if let Some(sub) = self.subs.get_mut(&id) {
                sub.in_flight = false;
            }
        }
        let mut out = Output::default();
        let actions = self.engine.on_notify_response(id, response, now);
        self.run(actions, now, &mut out);
        self.flush_if_due(id, now, &mut out);
        out
    }

    /// A NOTIFY timed out or could not be sent.
    pub fn on_notify_failed(&mut self, id: SubId, now: Instant) -> Output<D> {
        if let Some(sub) = self.subs.get_mut(&id) {
            sub.in_flight = false;
        }
        let mut out = Output::default();
        let actions = self.engine.on_notify_failed(id, now);
        self.run(actions, now, &mut out);
        out
    }

    /// When [`Self::on_timer`] must next run.
    pub fn next_deadline(&self) -> Option<Instant> {
        let batch = self.timers.first().map(|(at, _)| *at);
        match (self.engine.next_deadline(), batch) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Expiry and NOTIFY retries in the engine, then the batches that are due.
    pub fn on_timer(&mut self, now: Instant) -> Output<D> {
        let mut out = Output::default();
        let actions = self.engine.on_timer(now);
        self.run(actions, now, &mut out);
        let due: Vec<(Instant, SubId)> = self
            .timers
            .range(..=(now, SubId(u64::MAX)))
            .copied()
            .collect();
        for entry in due {
            self.timers.remove(&entry);
            self.flush_if_due(entry.1, now, &mut out);
        }
        out
    }

    /// Registers a subscription restored by an import: no members until the shell
    /// expands its service and calls [`Self::on_list_changed`].
    pub(crate) fn restore(&mut self, id: SubId, service: String, subscriber: String, version: u32) {
        let service_key = service_key(&service);
        self.by_service
            .entry(service_key.clone())
            .or_default()
            .insert(id);
        self.subs.insert(
            id,
            ListSub {
                service,
                service_key,
                subscriber,
                members: Vec::new(),
                dirty: BTreeSet::new(),
                full: true,
                version,
                due: None,
                in_flight: false,
            },
        );
    }

    /// After an import and the list expansions it asked for: the restored subscriptions'
    /// full-state NOTIFYs.
    pub fn resume(&mut self, now: Instant) -> Output<D> {
        let actions = std::mem::take(&mut self.held);
        let mut out = Output::default();
        self.run(actions, now, &mut out);
        out
    }

    // ------------------------------------------------------------------ internals

    fn member(&mut self, entry: &crate::Entry, subscriber: &str) -> Member {
        let uri = entry.resource_uri();
        Member {
            key: watch_key(&uri, subscriber),
            uri,
            name: entry.name.clone(),
            instance_id: self.instance_id(),
            reported_terminated: false,
        }
    }

    fn instance_id(&mut self) -> String {
        self.instances += 1;
        format!("i{}", self.instances)
    }

    fn acquire(&mut self, key: WatchKey, commands: &mut Vec<Command>) {
        let watch = self.watches.entry(key.clone()).or_default();
        watch.refs += 1;
        if watch.refs == 1 {
            commands.push(Command::Watch(key));
        }
    }

    fn release(&mut self, key: &WatchKey, id: Option<SubId>, commands: &mut Vec<Command>) {
        let Some(watch) = self.watches.get_mut(key) else {
            return;
        };
        if let Some(id) = id {
            watch.subs.remove(&id);
        }
        watch.refs = watch.refs.saturating_sub(1);
        if watch.refs == 0 {
            self.watches.remove(key);
            commands.push(Command::Unwatch(key.clone()));
        }
    }

    /// Arms the batch timer of `id` unless one is already set.
    fn schedule(&mut self, id: SubId, at: Instant) {
        let Some(sub) = self.subs.get_mut(&id) else {
            return;
        };
        if sub.due.is_none() {
            sub.due = Some(at);
            self.timers.insert((at, id));
        }
    }

    /// Sends the collected changes of `id` if their time has come and no NOTIFY is out.
    fn flush_if_due(&mut self, id: SubId, now: Instant, out: &mut Output<D>) {
        let Some(sub) = self.subs.get_mut(&id) else {
            return;
        };
        let Some(due) = sub.due.filter(|due| *due <= now && !sub.in_flight) else {
            return;
        };
        sub.due = None;
        self.timers.remove(&(due, id));
        let Some(sub) = self.subs.get(&id) else {
            return;
        };
        if !sub.full && sub.dirty.is_empty() {
            return;
        }
        let full = sub.full;
        let Some(mut sub) = self.subs.remove(&id) else {
            return;
        };
        let body = self.render(&mut sub, full, now);
        if let Some(due) = sub.due {
            self.timers.insert((due, id));
        }
        self.subs.insert(id, sub);
        let actions = self.engine.notify(id, Some(body), now).unwrap_or_default();
        self.run(actions, now, out);
    }

    /// The next NOTIFY body of `sub`: full state, or the members changed since the last.
    /// Parts cut by the body cap stay dirty for the next NOTIFY.
    fn render(&mut self, sub: &mut ListSub, full: bool, now: Instant) -> Body {
        let included: Vec<usize> = if full {
            (0..sub.members.len()).collect()
        } else {
            sub.dirty.iter().copied().collect()
        };
        sub.dirty.clear();
        sub.full = false;
        for &index in &included {
            let state = sub.members[index]
                .key
                .as_ref()
                .and_then(|k| self.watches.get(k))
                .and_then(|w| w.state.as_ref())
                .map(|s| s.status);
            let member = &mut sub.members[index];
            match state {
                Some(WatchStatus::Terminated(_)) => member.reported_terminated = true,
                Some(_) if member.reported_terminated => {
                    member.instance_id = self.instance_id();
                    member.reported_terminated = false;
                }
                _ => {}
            }
        }
        self.bodies += 1;
        let id_prefix = format!("{}.{}", self.cid_prefix, self.bodies);
        let views: Vec<ResourceView<'_>> = included
            .iter()
            .map(|&index| {
                let member = &sub.members[index];
                let state = member
                    .key
                    .as_ref()
                    .and_then(|k| self.watches.get(k))
                    .and_then(|w| w.state.as_ref());
                ResourceView {
                    uri: &member.uri,
                    name: member.name.as_deref(),
                    instance: state.map(|state| InstanceView {
                        id: &member.instance_id,
                        state: match state.status {
                            WatchStatus::Active => InstanceState::Active,
                            WatchStatus::Pending => InstanceState::Pending,
                            WatchStatus::Terminated(_) => InstanceState::Terminated,
                        },
                        reason: match state.status {
                            WatchStatus::Terminated(reason) => Some(reason.as_str()),
                            _ => None,
                        },
                        body: match state.status {
                            WatchStatus::Terminated(_) => None,
                            _ => state.body.as_ref(),
                        },
                    }),
                }
            })
            .collect();
        let rendered = render(
            &Header {
                list_uri: &sub.service,
                version: sub.version,
                full_state: full,
                id_prefix: &id_prefix,
                cid_domain: &self.config.cid_domain,
                max_body_bytes: self.config.max_notify_body,
            },
            &views,
        );
        sub.version = sub.version.wrapping_add(1);
        if !rendered.deferred.is_empty() {
            sub.dirty
                .extend(rendered.deferred.iter().map(|&i| included[i]));
            if sub.due.is_none() {
                sub.due = Some(now + self.config.batch_window);
            }
        }
        rendered.body
    }

    fn run(&mut self, actions: Vec<Action<D>>, now: Instant, out: &mut Output<D>) {
        let mut work = VecDeque::from(actions);
        while let Some(action) = work.pop_front() {
            match action {
                Action::SendNotify(notify) => {
                    if let Some(sub) = self.subs.get_mut(&notify.id) {
                        sub.in_flight = true;
                    }
                    out.notifies.push(notify);
                }
                Action::ContentNeeded { id, full_state } => {
                    let Some(mut sub) = self.subs.remove(&id) else {
                        continue;
                    };
                    let full = full_state || sub.full;
                    let body = self.render(&mut sub, full, now);
                    if let Some(due) = sub.due {
                        self.timers.insert((due, id));
                    }
                    self.subs.insert(id, sub);
                    work.extend(self.engine.notify(id, Some(body), now).unwrap_or_default());
                }
                Action::Terminated { id, .. } => self.ended(id, &mut out.commands),
            }
        }
    }

    pub(crate) fn ended(&mut self, id: SubId, commands: &mut Vec<Command>) {
        let Some(sub) = self.subs.remove(&id) else {
            return;
        };
        if let Some(due) = sub.due {
            self.timers.remove(&(due, id));
        }
        if let Some(set) = self.by_service.get_mut(&sub.service_key) {
            set.remove(&id);
            if set.is_empty() {
                self.by_service.remove(&sub.service_key);
            }
        }
        for key in sub.members.iter().filter_map(|m| m.key.as_ref()) {
            self.release(key, Some(id), commands);
        }
    }
}

/// What makes two members of one list the same resource.
fn identity(uri: &str, key: Option<&WatchKey>) -> String {
    key.map_or_else(|| uri.to_owned(), |k| k.resource.clone())
}

/// The watch for `resource_uri` on behalf of `subscriber`, if it names a SIP user at a host.
fn watch_key(resource_uri: &str, subscriber: &str) -> Option<WatchKey> {
    Some(WatchKey {
        resource: presence::aor(resource_uri)?,
        subscriber: subscriber.to_owned(),
    })
}

fn answer<D>(response: Bytes, out: Output<D>) -> Answer<D> {
    Answer {
        status: status_of(&response),
        response,
        notifies: out.notifies,
        commands: out.commands,
    }
}

/// The status code of a response we built (`SIP/2.0 NNN ...`).
fn status_of(response: &[u8]) -> u16 {
    response
        .get(8..11)
        .and_then(|code| std::str::from_utf8(code).ok())
        .and_then(|code| code.parse().ok())
        .unwrap_or(500)
}
