//! The presence agent, sans-IO: RFC 3856 (the `presence` event package) on top of the RFC 3903
//! state compositor ([`publication::Esc`]) and the RFC 6665 notifier
//! ([`sip_subscription::SubscriptionEngine`]), with watcher authorization from pres-rules (RFC
//! 5025 via [`presence_auth`]) and watcher information (RFC 3857 `presence.winfo`, RFC 3858
//! documents) and the owner's XCAP document changes (RFC 5875 `xcap-diff`, RFC 5874
//! documents; see [`xcap_diff`]).
//!
//! The shell authenticates requests, keeps the transactions and reads the presentity's policy
//! documents from storage; the agent knows nothing of sockets, SQL or the clock:
//!
//! ```text
//! policy not loaded (tracks() false)  -> load documents, set_policy(presentity, policy, now)
//! PUBLISH (authenticated)             -> on_publish(request, user, now) -> Answer
//! SUBSCRIBE (authenticated)           -> on_subscribe(request, flow, user, now) -> Answer
//! Answer                              -> respond on the server transaction, then send notifies
//! Notify                              -> client transaction; its final response ->
//!                                        on_notify_response, its timeout -> on_notify_failed
//! policy document changed             -> set_policy again (re-evaluates every subscription)
//! start                               -> import(records) -> Restored; load those policies and
//!                                        document lists; resume(now) -> NOTIFYs
//! after changes                       -> export(now) -> records to store
//! xcap-diff SUBSCRIBE, owner untracked -> load the owner's document list, set_documents
//! any XCAP document written or removed -> on_document_changed (NOTIFYs xcap-diff watchers)
//! next_deadline()                     -> on_timer(now) at that instant
//! ```
//!
//! Composition (RFC 3903 §4, RFC 4479 §4) happens once per change of a presentity's state and
//! the resulting body is shared by every watcher allowed to see it. What a watcher sees follows
//! its decision (RFC 5025 §3.2.1): `allow` the composed document, `polite-block` the neutral
//! closed document, `confirm` nothing (pending), `block` a 403. A change of the rules applies
//! [`presence_auth::transition`] to every subscription of the presentity before anything is
//! notified, so no NOTIFY ever carries state the new rules forbid.
//!
//! An `allow` watcher whose matching rules carry `provide-*` transformations (RFC 5025 §3.3,
//! combined per RFC 4745 §10.2) gets the composed document filtered by
//! [`pidf::transform`], rendered once per distinct permission set and cached next to the
//! composed document. Rules without any transformation give the whole document: that is what
//! Blink's rules, which never carry one, mean (blink-compat §1.6).

mod persist;
mod policy;
mod views;
mod watch;
pub mod xcap_diff;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use bytes::Bytes;
use presence_auth::{authorize, transition, Decision, SubHandling, Transformations, Transition};
use publication::{Esc, EventConfig, Operation};
use rand::rngs::StdRng;
use rand::RngCore;
use simple_payloads::pidf::{self, DuplicateIds, PidfDocument};
use simple_payloads::watcherinfo::{
    State, Watcher, WatcherEvent, WatcherInfo, WatcherList, WatcherStatus,
};
use sip_message::{response_to, Message, Uri};
use sip_subscription::{
    Action, Body, ContentMode, EndCause, Flow, PackageConfig, Reason, Resource, SubId, SubState,
    SubscribeOutcome, SubscriptionEngine,
};
use views::FilteredViews;
use xcap_diff::{Documents, Watch};

pub use persist::{Changes, RecordKind, Restored, StateRecord};
pub use policy::{list_entries, Policy};
pub use sip_subscription::SubId as SubscriptionId;
pub use watch::{WatchState, WatchUpdate};

pub const PRESENCE: &str = "presence";
pub const WINFO: &str = "presence.winfo";
pub const PIDF: &str = "application/pidf+xml";
pub const WATCHERINFO: &str = "application/watcherinfo+xml";
pub const XCAP_DIFF: &str = "xcap-diff";

/// Limits and expiry policy of both halves.
#[derive(Debug, Clone)]
pub struct Config {
    /// The `presence` event must be among `publication.events`.
    pub publication: publication::Config,
    /// Must configure the `presence`, `presence.winfo` and `xcap-diff` packages.
    pub subscription: sip_subscription::Config,
    /// Absolute XCAP root URI, the `xcap-root` of xcap-diff documents (RFC 5874 §4).
    pub xcap_root: String,
}

impl Config {
    /// Both packages and PUBLISH with the same expiry bounds (seconds).
    pub fn new(min_expires: u32, max_expires: u32, default_expires: u32) -> Config {
        let mut event = EventConfig::new(PRESENCE, &[PIDF]);
        event.min_expires = min_expires;
        event.max_expires = max_expires;
        event.default_expires = default_expires;
        let package = |name: &str, accept: &str, mode| PackageConfig {
            min_expires,
            max_expires,
            default_expires,
            mode,
            ..PackageConfig::new(name, &[accept])
        };
        Config {
            publication: publication::Config {
                events: vec![event],
                ..publication::Config::default()
            },
            subscription: sip_subscription::Config {
                packages: vec![
                    package(PRESENCE, PIDF, ContentMode::FullState),
                    // Versioned deltas must all arrive, in order (RFC 3858 §4.2).
                    package(WINFO, WATCHERINFO, ContentMode::Partial),
                    // Each NOTIFY names the documents changed since the one before, so
                    // none may be dropped (RFC 5875 §4.4.2).
                    package(
                        XCAP_DIFF,
                        simple_payloads::xcap_diff::CONTENT_TYPE,
                        ContentMode::Partial,
                    ),
                ],
                ..sip_subscription::Config::default()
            },
            xcap_root: String::new(),
        }
    }
}

/// What composition keeps of a live publication: when its body last changed (the sequence
/// of that PUBLISH; composition puts the newest first) and the body as parsed when it
/// arrived, so recomposing a presentity does not parse its publications again.
#[derive(Debug, Default)]
struct Published {
    modified: u64,
    document: Option<PidfDocument>,
}

/// A NOTIFY to send in a new client transaction; report its outcome with
/// [`PresenceAgent::on_notify_response`] or [`PresenceAgent::on_notify_failed`].
pub use sip_subscription::Notify;

/// The response to a PUBLISH or SUBSCRIBE (send it first) and the NOTIFYs it caused.
#[derive(Debug)]
pub struct Answer<D> {
    pub status: u16,
    pub response: Bytes,
    pub notifies: Vec<Notify<D>>,
}

/// `sip:user@host` (user unescaped, host lower-cased): how presentities and watchers are keyed
/// and compared. None for URIs that name no SIP user.
pub fn aor(uri: &str) -> Option<String> {
    aor_of(&Uri::parse(uri.trim()).ok()?)
}

/// [`aor`] of a URI already parsed (a request's, see
/// [`sip_message::Message::parsed_request_uri`]).
pub fn aor_of(uri: &Uri<'_>) -> Option<String> {
    uri.aor_key().map(|key| ["sip:", &key].concat())
}

/// What a subscription is about.
#[derive(Debug, Clone)]
enum Kind {
    /// A watcher of `presentity`; `decision` is what the rules said last.
    Presence {
        presentity: String,
        watcher: String,
        decision: Decision,
        event: WatcherEvent,
    },
    /// The owner's watcher-info subscription; `version` is the next document's.
    Winfo { owner: String, version: u64 },
    /// The owner's subscription to changes of its XCAP documents.
    XcapDiff { owner: String, watch: Watch },
}

#[derive(Debug, Default)]
struct Presentity {
    policy: Policy,
    /// The composed document every `allow` watcher gets; None until rendered.
    document: Option<Body>,
    /// `document` filtered for the permission sets of `allow` watchers with transformations.
    views: FilteredViews,
    /// Each watcher with what its last decision shows it, kept here so that a fan-out needs
    /// no visit to the subscription of every watcher shown the whole document: that visit
    /// was a cache miss per NOTIFY.
    watchers: BTreeMap<SubId, Shown>,
    winfo: BTreeSet<SubId>,
    /// Back-end watches (the RLS's list members) by watcher AOR.
    backend: BTreeMap<String, watch::BackendWatch>,
}

/// What a watcher's decision shows it of the composed document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shown {
    Whole,
    /// A view filtered by the decision's transformations.
    Filtered,
    /// Nothing that changes with the publications (pending, polite-block, block).
    Unchanging,
}

impl Shown {
    fn of(decision: &Decision) -> Shown {
        match (decision.handling, hiding(decision)) {
            (SubHandling::Allow, None) => Shown::Whole,
            (SubHandling::Allow, Some(_)) => Shown::Filtered,
            _ => Shown::Unchanging,
        }
    }
}

pub struct PresenceAgent<D> {
    esc: Esc,
    engine: SubscriptionEngine<D>,
    rng: StdRng,
    /// Presentities with a loaded policy: those with subscriptions or publications, and the
    /// one a request is being handled for. Keyed by the domain's own AORs (accounts, not
    /// names a peer makes up), like `published` (our entity tags) and `documents` (XCAP
    /// owners), so a fast hash serves: SipHash on these strings was 3% of a NOTIFY's cost.
    presentities: HashMap<String, Presentity, foldhash::fast::RandomState>,
    /// Keyed by the engine's handles: a fast hash serves (no chosen keys).
    subs: HashMap<SubId, Kind, foldhash::fast::RandomState>,
    /// What composition keeps of each live publication, by entity tag.
    published: HashMap<String, Published, foldhash::fast::RandomState>,
    sequence: u64,
    /// Wall-clock unix seconds for validity conditions, as of the last policy update.
    unix_now: i64,
    /// XCAP documents of owners with xcap-diff subscriptions (and of the one a request is
    /// being handled for).
    documents: HashMap<String, Documents, foldhash::fast::RandomState>,
    xcap_root: String,
    /// The engine's actions for imported subscriptions, run by `resume`.
    held: Vec<Action<D>>,
    /// Back-end watch states changed since the shell last took them.
    watch_updates: Vec<WatchUpdate>,
    next_watch_id: u64,
}

impl<D: Clone> PresenceAgent<D> {
    pub fn new(config: Config, mut rng: StdRng) -> PresenceAgent<D> {
        let xcap_root = config.xcap_root;
        let esc_rng = rand::SeedableRng::seed_from_u64(rng.next_u64());
        let engine_rng = rand::SeedableRng::seed_from_u64(rng.next_u64());
        PresenceAgent {
            esc: Esc::new(config.publication, esc_rng),
            engine: SubscriptionEngine::new(config.subscription, engine_rng),
            rng,
            presentities: HashMap::default(),
            subs: HashMap::default(),
            published: HashMap::default(),
            sequence: 0,
            unix_now: 0,
            documents: HashMap::default(),
            xcap_root,
            held: Vec::new(),
            watch_updates: Vec::new(),
            next_watch_id: 0,
        }
    }

    /// Whether `presentity`'s policy is loaded; if not, the shell loads it and calls
    /// [`Self::set_policy`] before handing over a request for it.
    pub fn tracks(&self, presentity: &str) -> bool {
        self.presentities.contains_key(presentity)
    }

    /// Every presentity whose policy is loaded (to reload after missed change events).
    pub fn tracked(&self) -> impl Iterator<Item = &str> {
        self.presentities.keys().map(String::as_str)
    }

    pub fn subscriptions(&self) -> usize {
        self.engine.len()
    }

    pub fn publications(&self) -> usize {
        self.esc.len()
    }

    /// Installs `presentity`'s policy snapshot and applies it: every subscription to it is
    /// re-authorized (pending → active with its view, active → terminated or pending), and
    /// a changed pidf-manipulation document is composed and notified. `unix_now` is the wall
    /// clock for validity conditions.
    pub fn set_policy(
        &mut self,
        presentity: &str,
        policy: Policy,
        unix_now: i64,
        now: Instant,
    ) -> Vec<Notify<D>> {
        self.unix_now = unix_now;
        let entry = self.presentities.entry(presentity.to_owned()).or_default();
        entry.policy = policy;
        let previous = entry.document.take();
        let document = self.document(presentity);
        let changed = previous.as_ref().map(|b| &b.data) != Some(&document.data);
        let watchers: Vec<SubId> = self
            .presentities
            .get(presentity)
            .map(|p| p.watchers.keys().copied().collect())
            .unwrap_or_default();
        let mut out = Vec::new();
        let mut actions = Vec::new();
        for id in watchers {
            let Some(Kind::Presence {
                watcher, decision, ..
            }) = self.subs.get(&id)
            else {
                continue;
            };
            let next = self.decide(presentity, watcher);
            let step = transition(decision, &next);
            let view = self.view(presentity, &next);
            let result = match step {
                Transition::Unchanged if changed && next.handling == SubHandling::Allow => {
                    self.engine.notify(id, view, now)
                }
                Transition::Unchanged => Ok(Vec::new()),
                Transition::Renotify => self.engine.notify(id, view, now),
                Transition::Activate => self.engine.activate(id, view, now),
                Transition::Suspend => self.engine.suspend(id, None, now),
                Transition::Terminate => self.engine.terminate(id, Reason::Rejected, None, now),
            };
            actions.extend(result.unwrap_or_default());
            let event = match step {
                Transition::Activate => Some(WatcherEvent::Approved),
                Transition::Suspend => Some(WatcherEvent::Subscribe),
                _ => None,
            };
            if let Some(shown) = self
                .presentities
                .get_mut(presentity)
                .and_then(|p| p.watchers.get_mut(&id))
            {
                *shown = Shown::of(&next);
            }
            if let Some(Kind::Presence {
                decision,
                event: last,
                ..
            }) = self.subs.get_mut(&id)
            {
                *decision = next;
                if let Some(event) = event {
                    *last = event;
                    self.engine.touch(id);
                }
            }
            if event.is_some() {
                self.watcher_changed(id, now, &mut actions);
            }
        }
        self.recheck_watches(presentity, now, &mut actions);
        self.run(actions, now, &mut out);
        out
    }

    // ------------------------------------------------------------------ XCAP documents

    /// Whether `owner`'s document list is loaded; if not, the shell loads it and calls
    /// [`Self::set_documents`] before handing over an xcap-diff SUBSCRIBE for it.
    pub fn tracks_documents(&self, owner: &str) -> bool {
        self.documents.contains_key(owner)
    }

    /// Installs `owner`'s documents as `(selector, etag)` pairs (selectors from
    /// [`xcap_diff::document_sel`], ETags as stored, quoted or not).
    pub fn set_documents<'a>(
        &mut self,
        owner: &str,
        documents: impl IntoIterator<Item = (String, &'a str)>,
    ) {
        let entry = self.documents.entry(owner.to_owned()).or_default();
        entry.etags = documents
            .into_iter()
            .map(|(sel, etag)| (sel, xcap_diff::bare(etag)))
            .collect();
    }

    /// Owners whose document lists are loaded.
    pub fn documents_tracked(&self) -> impl Iterator<Item = &str> {
        self.documents.keys().map(String::as_str)
    }

    /// Brings `owner`'s document list in line with `current` (after missed change events),
    /// notifying every difference as a change.
    pub fn resync_documents(
        &mut self,
        owner: &str,
        current: Vec<(String, String)>,
        now: Instant,
    ) -> Vec<Notify<D>> {
        let current: BTreeMap<String, String> = current.into_iter().collect();
        let gone: Vec<String> = self
            .documents
            .get(owner)
            .into_iter()
            .flat_map(|d| d.etags.keys())
            .filter(|sel| !current.contains_key(*sel))
            .cloned()
            .collect();
        let mut out = Vec::new();
        for sel in gone {
            out.extend(self.on_document_changed(owner, &sel, None, now));
        }
        for (sel, etag) in &current {
            out.extend(self.on_document_changed(owner, sel, Some(etag), now));
        }
        out
    }

    /// An XCAP write (`new_etag` Some) or removal (None) of `owner`'s document `sel`: every
    /// xcap-diff subscription watching it gets a NOTIFY naming the change (RFC 5875 §4.4.2).
    /// Changes already known (a listing raced the event) notify nothing.
    pub fn on_document_changed(
        &mut self,
        owner: &str,
        sel: &str,
        new_etag: Option<&str>,
        now: Instant,
    ) -> Vec<Notify<D>> {
        let mut out = Vec::new();
        let Some(entry) = self.documents.get_mut(owner) else {
            return out;
        };
        let new_etag = new_etag.map(xcap_diff::bare);
        let previous = match &new_etag {
            Some(etag) => entry.etags.insert(sel.to_owned(), etag.clone()),
            None => entry.etags.remove(sel),
        };
        if previous == new_etag {
            return out;
        }
        let watchers: Vec<SubId> = entry
            .subs
            .iter()
            .copied()
            .filter(|id| matches!(self.subs.get(id), Some(Kind::XcapDiff { watch, .. }) if watch.covers(sel)))
            .collect();
        let body = xcap_diff::body(
            &self.xcap_root,
            vec![simple_payloads::xcap_diff::DocumentDiff {
                sel: sel.to_owned(),
                previous_etag: previous,
                new_etag,
            }],
        );
        let mut actions = Vec::new();
        for id in watchers {
            // A subscription that ended meanwhile has nothing more to be told.
            let _ = self
                .engine
                .notify_into(id, Some(body.clone()), now, &mut actions);
        }
        self.run(actions, now, &mut out);
        out
    }

    // ------------------------------------------------------------------ PUBLISH

    /// RFC 3903 §6 for `presence`, with the owner check (only `user`, the authenticated AOR,
    /// publishes for its own AOR) and the PIDF check (a body that is not PIDF gets 400).
    pub fn on_publish(&mut self, request: &Message, user: &str, now: Instant) -> Answer<D> {
        let presentity = request.parsed_request_uri().as_ref().and_then(aor_of);
        let Some(presentity) = presentity.filter(|p| p == user) else {
            return self.refuse(request, 403, "Only the owner may publish for this address");
        };
        let document = match check_pidf(request) {
            Ok(document) => document,
            Err(reason) => return self.refuse(request, 400, &reason),
        };
        let outcome = self.esc.on_publish(request, &presentity, now);
        let mut out = Vec::new();
        if let Some(applied) = &outcome.applied {
            let sequence = self.next_sequence();
            if let Some(previous) = &applied.previous_etag {
                let kept = self.published.remove(previous);
                if applied.operation == Operation::Refresh {
                    let kept = kept.unwrap_or(Published {
                        modified: sequence,
                        document: None,
                    });
                    self.published.insert(applied.etag.clone(), kept);
                }
            }
            match applied.operation {
                Operation::Initial | Operation::Modify => {
                    let published = Published {
                        modified: sequence,
                        document,
                    };
                    self.published.insert(applied.etag.clone(), published);
                }
                Operation::Refresh | Operation::Remove => {}
            }
            if applied.operation != Operation::Refresh {
                self.recompose(&presentity, now, &mut out);
            }
        }
        self.forget_if_idle(&presentity);
        Answer {
            status: outcome.status,
            response: outcome.response,
            notifies: out,
        }
    }

    // ------------------------------------------------------------------ SUBSCRIBE

    /// RFC 6665 §4.2.1 for `presence` and `presence.winfo`; other packages get 489. `user` is
    /// the authenticated AOR of the subscriber.
    pub fn on_subscribe(
        &mut self,
        request: &Message,
        flow: Flow<D>,
        user: &str,
        now: Instant,
    ) -> Answer<D> {
        let mut out = Vec::new();
        let new = match self
            .engine
            .on_subscribe(request, flow, Resource::Single, now)
        {
            SubscribeOutcome::Respond { response, actions } => {
                self.run(actions, now, &mut out);
                return Answer {
                    status: status_of(&response),
                    response,
                    notifies: out,
                };
            }
            SubscribeOutcome::Decide(new) => new,
        };
        let resource = aor(new.resource()).unwrap_or_default();
        let (decision, body, kind) = if new.event() == XCAP_DIFF {
            // RFC 5875 §5: a user's documents are the user's business.
            let watch = Watch::from_request(new.request(), &resource, &self.xcap_root);
            match watch {
                _ if resource != user => (sip_subscription::Decision::Reject(403), None, None),
                Err(status) => (sip_subscription::Decision::Reject(status), None, None),
                Ok(watch) => {
                    let body = xcap_diff::full_state(
                        self.documents.get(&resource),
                        &watch,
                        &self.xcap_root,
                    );
                    let kind = Kind::XcapDiff {
                        owner: resource.clone(),
                        watch,
                    };
                    (sip_subscription::Decision::Accept, Some(body), Some(kind))
                }
            }
        } else if new.event() == WINFO {
            // RFC 3857 §5.1: watcher information is the presentity's own business.
            if resource != user {
                (sip_subscription::Decision::Reject(403), None, None)
            } else {
                let body = self.winfo_document(&resource, 0, now);
                let kind = Kind::Winfo {
                    owner: resource.clone(),
                    version: 1,
                };
                (sip_subscription::Decision::Accept, Some(body), Some(kind))
            }
        } else {
            let decision = self.decide(&resource, user);
            let view = self.view(&resource, &decision);
            let engine_decision = match decision.handling {
                SubHandling::Allow | SubHandling::PoliteBlock => sip_subscription::Decision::Accept,
                SubHandling::Confirm => sip_subscription::Decision::Pending,
                SubHandling::Block => sip_subscription::Decision::Reject(403),
            };
            let kind = Kind::Presence {
                presentity: resource.clone(),
                watcher: user.to_owned(),
                decision,
                event: WatcherEvent::Subscribe,
            };
            (engine_decision, view, Some(kind))
        };
        let decided = self.engine.decide(new, decision, body, now);
        let mut actions = decided.actions;
        if let (Some(id), Some(kind @ Kind::XcapDiff { .. })) = (decided.id, &kind) {
            self.documents
                .entry(resource.clone())
                .or_default()
                .subs
                .insert(id);
            self.subs.insert(id, kind.clone());
        } else if let (Some(id), Some(kind)) = (decided.id, kind) {
            let entry = self.presentities.entry(resource.clone()).or_default();
            match &kind {
                Kind::Presence { decision, .. } => {
                    entry.watchers.insert(id, Shown::of(decision));
                }
                Kind::Winfo { .. } => {
                    entry.winfo.insert(id);
                }
                Kind::XcapDiff { .. } => {}
            };
            let is_watcher = matches!(kind, Kind::Presence { .. });
            self.subs.insert(id, kind);
            if is_watcher {
                // The new watcher goes into the owner's watcher info before the actions run:
                // a fetch terminates at once, and that must follow the subscribe event.
                let mut early = Vec::new();
                self.watcher_changed(id, now, &mut early);
                early.append(&mut actions);
                actions = early;
            }
        }
        self.run(actions, now, &mut out);
        self.forget_if_idle(&resource);
        self.forget_documents_if_idle(&resource);
        Answer {
            status: status_of(&decided.response),
            response: decided.response,
            notifies: out,
        }
    }

    // ------------------------------------------------------------------ NOTIFY outcomes, timers

    pub fn on_notify_response(
        &mut self,
        id: SubId,
        response: &Message,
        now: Instant,
    ) -> Vec<Notify<D>> {
        let actions = self.engine.on_notify_response(id, response, now);
        let mut out = Vec::new();
        self.run(actions, now, &mut out);
        out
    }

    pub fn on_notify_failed(&mut self, id: SubId, now: Instant) -> Vec<Notify<D>> {
        let actions = self.engine.on_notify_failed(id, now);
        let mut out = Vec::new();
        self.run(actions, now, &mut out);
        out
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        match (self.esc.next_deadline(), self.engine.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Publication expiry (re-compose and notify, RFC 3903 §6 step 8) and the engine's timers.
    pub fn on_timer(&mut self, now: Instant) -> Vec<Notify<D>> {
        let mut out = Vec::new();
        let expired = self.esc.on_timer(now);
        let mut presentities = BTreeSet::new();
        for publication in expired {
            self.published.remove(&publication.etag);
            presentities.insert(publication.aor);
        }
        for presentity in presentities {
            self.recompose(&presentity, now, &mut out);
            self.forget_if_idle(&presentity);
        }
        let actions = self.engine.on_timer(now);
        self.run(actions, now, &mut out);
        out
    }

    // ------------------------------------------------------------------ internals

    fn next_sequence(&mut self) -> u64 {
        self.sequence += 1;
        self.sequence
    }

    fn refuse(&mut self, request: &Message, code: u16, reason: &str) -> Answer<D> {
        let tag = format!("{:016x}", self.rng.next_u64());
        Answer {
            status: code,
            response: response_to(request, code, reason, Some(&tag)).finish(None, b""),
            notifies: Vec::new(),
        }
    }

    fn decide(&self, presentity: &str, watcher: &str) -> Decision {
        let request = presence_auth::Request {
            presentity,
            watcher: Some(watcher),
            now: self.unix_now,
            sphere: None,
        };
        match self.presentities.get(presentity) {
            Some(entry) => authorize(
                entry.policy.rules.as_ref(),
                &request,
                &entry.policy.resolver(presentity),
            ),
            // No documents: only the own-AOR rule and the default apply.
            None => authorize(None, &request, &|_: &presence_auth::ListAnchor| Vec::new()),
        }
    }

    /// What a watcher with `decision` may see now.
    fn view(&mut self, presentity: &str, decision: &Decision) -> Option<Body> {
        match decision.handling {
            SubHandling::Allow => {
                let document = self.document(presentity);
                Some(match hiding(decision) {
                    Some(permissions) => self.filtered(presentity, document, permissions),
                    None => document,
                })
            }
            SubHandling::PoliteBlock => {
                Some(Body::new(PIDF, pidf::polite_block_document(presentity)))
            }
            SubHandling::Confirm | SubHandling::Block => None,
        }
    }

    /// The composed document, rendered on first use after a change.
    fn document(&mut self, presentity: &str) -> Body {
        if let Some(body) = self
            .presentities
            .get(presentity)
            .and_then(|p| p.document.clone())
        {
            return body;
        }
        // Publications restored from storage arrive unparsed; parse them once here.
        for p in self.esc.publications(PRESENCE, presentity) {
            let published = self.published.entry(p.etag.clone()).or_default();
            if published.document.is_none() {
                published.document = std::str::from_utf8(&p.body)
                    .ok()
                    .and_then(|text| PidfDocument::parse(text).ok());
            }
        }
        let publications: Vec<pidf::Publication<'_>> = self
            .esc
            .publications(PRESENCE, presentity)
            .filter_map(|p| {
                let published = self.published.get(&p.etag)?;
                Some(pidf::Publication {
                    document: published.document.as_ref()?,
                    modified: published.modified,
                })
            })
            .collect();
        let manipulation = self
            .presentities
            .get(presentity)
            .and_then(|p| p.policy.manipulation.as_ref());
        let xml = pidf::compose(
            presentity,
            &publications,
            manipulation,
            DuplicateIds::KeepNewest,
        );
        let body = Body::new(PIDF, xml);
        if let Some(entry) = self.presentities.get_mut(presentity) {
            entry.document = Some(body.clone());
        }
        body
    }

    /// `document` as `permissions` let it through (RFC 5025 §3.3), from the cache when this
    /// document was already filtered for them.
    fn filtered(
        &mut self,
        presentity: &str,
        document: Body,
        permissions: &Transformations,
    ) -> Body {
        let views = self.presentities.get_mut(presentity).map(|p| &mut p.views);
        if let Some(body) = views.as_ref().and_then(|v| v.get(&document, permissions)) {
            return body;
        }
        // The composed document always parses; should it not, nothing is the safe view.
        let xml = std::str::from_utf8(&document.data)
            .ok()
            .and_then(|text| pidf::transform(text, permissions).ok())
            .unwrap_or_else(|| pidf::closed_document(presentity));
        let body = Body::new(PIDF, xml);
        if let Some(views) = views {
            views.insert(document, permissions, body.clone());
        }
        body
    }

    /// The presentity's state changed: render once, NOTIFY every `allow` watcher if the
    /// document differs from the last one.
    fn recompose(&mut self, presentity: &str, now: Instant, out: &mut Vec<Notify<D>>) {
        let Some(entry) = self.presentities.get_mut(presentity) else {
            return;
        };
        let previous = entry.document.take();
        let document = self.document(presentity);
        if previous.is_some_and(|b| b.data == document.data) {
            return;
        }
        self.recompose_watches(presentity);
        // Watchers shown the whole document (None) share it; only the others need a view.
        let allowed: Vec<(SubId, Option<Decision>)> = self
            .presentities
            .get(presentity)
            .into_iter()
            .flat_map(|p| p.watchers.iter())
            .filter_map(|(id, shown)| match shown {
                Shown::Whole => Some((*id, None)),
                Shown::Filtered => match self.subs.get(id) {
                    Some(Kind::Presence { decision, .. }) => Some((*id, Some(decision.clone()))),
                    _ => None,
                },
                Shown::Unchanging => None,
            })
            .collect();
        // One NOTIFY per watcher, mostly: sized once instead of regrown (a realloc each
        // doubling) on every fan-out.
        let mut actions = Vec::with_capacity(allowed.len());
        for (id, filtered) in allowed {
            let view = match filtered {
                None => Some(document.clone()),
                Some(decision) => self.view(presentity, &decision),
            };
            // A subscription that ended meanwhile has nothing more to be told.
            let _ = self.engine.notify_into(id, view, now, &mut actions);
        }
        self.run(actions, now, out);
    }

    /// Executes engine actions until only NOTIFYs to send remain.
    fn run(&mut self, actions: Vec<Action<D>>, now: Instant, out: &mut Vec<Notify<D>>) {
        out.reserve(actions.len());
        let mut work = std::collections::VecDeque::from(actions);
        while let Some(action) = work.pop_front() {
            match action {
                Action::SendNotify(notify) => out.push(notify),
                Action::ContentNeeded { id, .. } => {
                    // Every body we render is complete, so a full state is always at hand.
                    let body = self.content(id, now);
                    work.extend(self.engine.notify(id, body, now).unwrap_or_default());
                }
                Action::Terminated { id, cause } => {
                    let mut more = Vec::new();
                    self.ended(id, cause, now, &mut more);
                    work.extend(more);
                }
            }
        }
    }

    fn content(&mut self, id: SubId, now: Instant) -> Option<Body> {
        match self.subs.get_mut(&id)? {
            Kind::Presence {
                presentity,
                decision,
                ..
            } => {
                let (presentity, decision) = (presentity.clone(), decision.clone());
                self.view(&presentity, &decision)
            }
            Kind::Winfo { owner, version } => {
                let (owner, current) = (owner.clone(), *version);
                *version += 1;
                self.engine.touch(id);
                Some(self.winfo_document(&owner, current, now))
            }
            Kind::XcapDiff { owner, watch } => Some(xcap_diff::full_state(
                self.documents.get(owner.as_str()),
                watch,
                &self.xcap_root,
            )),
        }
    }

    fn ended(&mut self, id: SubId, cause: EndCause, now: Instant, actions: &mut Vec<Action<D>>) {
        let Some(kind) = self.subs.get(&id) else {
            return;
        };
        match kind {
            Kind::Presence {
                presentity,
                watcher,
                ..
            } => {
                let (presentity, watcher) = (presentity.clone(), watcher.clone());
                let event = match cause {
                    EndCause::Unsubscribed | EndCause::Expired => WatcherEvent::Timeout,
                    EndCause::Package(Reason::Rejected) => WatcherEvent::Rejected,
                    EndCause::Package(Reason::Probation(_)) => WatcherEvent::Probation,
                    EndCause::Package(Reason::Giveup(_)) => WatcherEvent::Giveup,
                    EndCause::Package(Reason::Noresource) => WatcherEvent::Noresource,
                    EndCause::Package(_) | EndCause::NotifyFailed(_) => WatcherEvent::Deactivated,
                };
                let uri = self.subscriber_uri(id).unwrap_or(watcher);
                let gone = Watcher {
                    id: id.0.to_string(),
                    status: WatcherStatus::Terminated,
                    event,
                    uri,
                    display_name: None,
                    duration_subscribed: None,
                    expiration: None,
                };
                self.subs.remove(&id);
                if let Some(entry) = self.presentities.get_mut(&presentity) {
                    entry.watchers.remove(&id);
                }
                self.winfo_partial(&presentity, gone, now, actions);
                self.forget_if_idle(&presentity);
            }
            Kind::Winfo { owner, .. } => {
                let owner = owner.clone();
                self.subs.remove(&id);
                if let Some(entry) = self.presentities.get_mut(&owner) {
                    entry.winfo.remove(&id);
                }
                self.forget_if_idle(&owner);
            }
            Kind::XcapDiff { owner, .. } => {
                let owner = owner.clone();
                self.subs.remove(&id);
                if let Some(entry) = self.documents.get_mut(&owner) {
                    entry.subs.remove(&id);
                }
                self.forget_documents_if_idle(&owner);
            }
        }
    }

    fn subscriber_uri(&self, id: SubId) -> Option<String> {
        self.engine
            .subscription(id)
            .map(|s| s.subscriber().to_owned())
    }

    /// The `<watcher>` of a live presence subscription.
    fn watcher(&self, id: SubId) -> Option<Watcher> {
        let Some(Kind::Presence { watcher, event, .. }) = self.subs.get(&id) else {
            return None;
        };
        let sub = self.engine.subscription(id)?;
        let status = match sub.state() {
            SubState::Active => WatcherStatus::Active,
            SubState::Pending => WatcherStatus::Pending,
            SubState::Terminated(_) => WatcherStatus::Terminated,
        };
        Some(Watcher {
            id: id.0.to_string(),
            status,
            event: *event,
            uri: if sub.subscriber().is_empty() {
                watcher.clone()
            } else {
                sub.subscriber().to_owned()
            },
            display_name: None,
            duration_subscribed: None,
            expiration: None,
        })
    }

    /// A watcher's status changed: tell the presentity's winfo subscribers.
    fn watcher_changed(&mut self, id: SubId, now: Instant, actions: &mut Vec<Action<D>>) {
        let Some(Kind::Presence { presentity, .. }) = self.subs.get(&id) else {
            return;
        };
        let presentity = presentity.clone();
        if let Some(watcher) = self.watcher(id) {
            self.winfo_partial(&presentity, watcher, now, actions);
        }
    }

    fn winfo_partial(
        &mut self,
        owner: &str,
        watcher: Watcher,
        now: Instant,
        actions: &mut Vec<Action<D>>,
    ) {
        let subscribers: Vec<SubId> = self
            .presentities
            .get(owner)
            .map(|p| p.winfo.iter().copied().collect())
            .unwrap_or_default();
        for id in subscribers {
            let Some(Kind::Winfo { version, .. }) = self.subs.get_mut(&id) else {
                continue;
            };
            let document = WatcherInfo {
                version: *version,
                state: State::Partial,
                lists: vec![WatcherList {
                    resource: owner.to_owned(),
                    package: PRESENCE.to_owned(),
                    watchers: vec![watcher.clone()],
                }],
            };
            *version += 1;
            self.engine.touch(id);
            let body = Body::new(WATCHERINFO, document.to_xml());
            // A subscription that ended meanwhile has nothing more to be told.
            let _ = self.engine.notify_into(id, Some(body), now, actions);
        }
    }

    fn winfo_document(&self, owner: &str, version: u64, _now: Instant) -> Body {
        let watchers = self
            .presentities
            .get(owner)
            .into_iter()
            .flat_map(|p| p.watchers.keys())
            .filter_map(|id| self.watcher(*id))
            .chain(self.backend_watchers(owner))
            .collect();
        let document = WatcherInfo {
            version,
            state: State::Full,
            lists: vec![WatcherList {
                resource: owner.to_owned(),
                package: PRESENCE.to_owned(),
                watchers,
            }],
        };
        Body::new(WATCHERINFO, document.to_xml())
    }

    /// Policies are kept only for presentities somebody watches or publishes for, which the
    /// subscription and publication limits bound.
    fn forget_if_idle(&mut self, presentity: &str) {
        let idle =
            self.presentities.get(presentity).is_some_and(|p| {
                p.watchers.is_empty() && p.winfo.is_empty() && p.backend.is_empty()
            }) && self.esc.publications(PRESENCE, presentity).next().is_none();
        if idle {
            self.presentities.remove(presentity);
        }
    }

    /// Document lists are kept only for owners with xcap-diff subscriptions.
    fn forget_documents_if_idle(&mut self, owner: &str) {
        if self.documents.get(owner).is_some_and(|d| d.subs.is_empty()) {
            self.documents.remove(owner);
        }
    }
}

/// RFC 3903 §6 step 5 leaves body checks to the event package; RFC 3856 §6 wants PIDF, so a
/// `presence` PUBLISH whose PIDF body cannot be read is refused (other types get the
/// compositor's 415).
/// A PUBLISH body that claims to be PIDF for `presence` must parse as PIDF; the parsed
/// document is kept for composition.
fn check_pidf(request: &Message) -> Result<Option<PidfDocument>, String> {
    let body = request.body();
    if body.is_empty() {
        return Ok(None);
    }
    let is_presence =
        matches!(request.event(), Ok(Some(e)) if e.package.eq_ignore_ascii_case(PRESENCE));
    let is_pidf = matches!(request.content_type(), Ok(Some(t))
        if t.mtype.eq_ignore_ascii_case("application") && t.subtype.eq_ignore_ascii_case("pidf+xml"));
    if !is_presence || !is_pidf {
        return Ok(None);
    }
    let text = std::str::from_utf8(&body).map_err(|_| "Body is not UTF-8".to_owned())?;
    PidfDocument::parse(text)
        .map(Some)
        .map_err(|e| format!("Invalid PIDF: {e}"))
}

/// The permissions an allowed watcher's view is filtered by, when they hide anything.
fn hiding(decision: &Decision) -> Option<&Transformations> {
    decision
        .transformations
        .as_ref()
        .filter(|permissions| !permissions.provides_full_document())
}

/// The status code of an encoded response (`SIP/2.0 200 OK`).
fn status_of(response: &Bytes) -> u16 {
    response
        .get(8..11)
        .and_then(|code| std::str::from_utf8(code).ok())
        .and_then(|code| code.parse().ok())
        .unwrap_or(500)
}

#[cfg(test)]
mod tests;
