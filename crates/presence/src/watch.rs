//! Back-end watches: a presentity's state followed on behalf of a watcher without a SIP dialog
//! of its own, which is how the resource list server observes the local members of a list
//! (RFC 4662 §4.4: the RLS acts as a subscriber to each resource, with the list subscriber's
//! identity).
//!
//! A watch is authorized exactly like a `presence` subscription from the same watcher (RFC
//! 5025 §3.2.1), sees the same view, and appears in the presentity's watcher information
//! (RFC 3857), so a buddy-list entry shows up as a contact request. Unlike a dialog, a watch
//! outlives a `block`: it reports `Terminated(Rejected)` and comes back to life when the
//! rules change, because the list keeps its member and the RLS would only subscribe again.
//!
//! ```text
//! presentity's policy loaded (tracks)  -> watch(presentity, watcher, now) -> current state
//! after any call into the agent        -> take_watch_updates() -> states that changed
//! member removed / list gone           -> unwatch(presentity, watcher, now)
//! ```

use std::time::Instant;

use presence_auth::{Decision, SubHandling};
use simple_payloads::watcherinfo::{Watcher, WatcherEvent, WatcherStatus};
use sip_subscription::{Action, Body, Reason};

use crate::{Notify, PresenceAgent};

/// What a back-end watcher may know of a presentity now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchState {
    /// Authorized (allow or polite-block): the document the watcher may see.
    Active(Body),
    /// Awaiting the presentity's decision (confirm).
    Pending,
    /// Refused (block).
    Terminated(Reason),
}

/// A changed state of the watch of `presentity` held for `watcher`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchUpdate {
    pub presentity: String,
    pub watcher: String,
    pub state: WatchState,
}

#[derive(Debug, Clone)]
pub(crate) struct BackendWatch {
    /// Unique among the presentity's watchers in watcher information documents.
    id: u64,
    decision: Decision,
    event: WatcherEvent,
    /// Last state reported, so only changes are.
    state: WatchState,
}

impl<D: Clone> PresenceAgent<D> {
    /// Starts (or joins) the watch of `presentity` for `watcher` and returns its current
    /// state, with the watcher-information NOTIFYs the new watcher causes. The shell loads
    /// the presentity's policy first, as for a SUBSCRIBE.
    pub fn watch(
        &mut self,
        presentity: &str,
        watcher: &str,
        now: Instant,
    ) -> (WatchState, Vec<Notify<D>>) {
        let mut out = Vec::new();
        if let Some(existing) = self
            .presentities
            .get(presentity)
            .and_then(|p| p.backend.get(watcher))
        {
            return (existing.state.clone(), out);
        }
        let decision = self.decide(presentity, watcher);
        let state = self.watch_state(presentity, &decision);
        self.next_watch_id += 1;
        let watch = BackendWatch {
            id: self.next_watch_id,
            decision,
            event: WatcherEvent::Subscribe,
            state: state.clone(),
        };
        let entry = self.presentities.entry(presentity.to_owned()).or_default();
        entry.backend.insert(watcher.to_owned(), watch);
        let mut actions = Vec::new();
        self.backend_watcher_changed(presentity, watcher, now, &mut actions);
        self.run(actions, now, &mut out);
        (state, out)
    }

    /// Ends the watch; the presentity's watcher information reports it gone.
    pub fn unwatch(&mut self, presentity: &str, watcher: &str, now: Instant) -> Vec<Notify<D>> {
        let mut out = Vec::new();
        let Some(watch) = self
            .presentities
            .get_mut(presentity)
            .and_then(|p| p.backend.remove(watcher))
        else {
            return out;
        };
        let gone = Watcher {
            id: backend_watcher_id(watch.id),
            status: WatcherStatus::Terminated,
            event: WatcherEvent::Timeout,
            uri: watcher.to_owned(),
            display_name: None,
            duration_subscribed: None,
            expiration: None,
        };
        let mut actions = Vec::new();
        self.winfo_partial(presentity, gone, now, &mut actions);
        self.run(actions, now, &mut out);
        self.forget_if_idle(presentity);
        out
    }

    /// Whether [`Self::take_watch_updates`] has anything to hand over.
    pub fn has_watch_updates(&self) -> bool {
        !self.watch_updates.is_empty()
    }

    /// The watch states that changed since the last call, oldest first.
    pub fn take_watch_updates(&mut self) -> Vec<WatchUpdate> {
        std::mem::take(&mut self.watch_updates)
    }

    /// Number of back-end watches held.
    pub fn watches(&self) -> usize {
        self.presentities.values().map(|p| p.backend.len()).sum()
    }

    /// Re-authorizes every watch of `presentity` after its policy changed.
    pub(crate) fn recheck_watches(
        &mut self,
        presentity: &str,
        now: Instant,
        actions: &mut Vec<Action<D>>,
    ) {
        let watchers: Vec<String> = self
            .presentities
            .get(presentity)
            .map(|p| p.backend.keys().cloned().collect())
            .unwrap_or_default();
        for watcher in watchers {
            let next = self.decide(presentity, &watcher);
            let Some(previous) = self.backend_decision(presentity, &watcher) else {
                continue;
            };
            let handling_changed = previous.handling != next.handling;
            let event = match (previous.handling, next.handling) {
                _ if !handling_changed => None,
                (_, SubHandling::Block) => Some(WatcherEvent::Rejected),
                (_, SubHandling::Confirm) => Some(WatcherEvent::Subscribe),
                _ => Some(WatcherEvent::Approved),
            };
            let state = self.watch_state(presentity, &next);
            if let Some(watch) = self
                .presentities
                .get_mut(presentity)
                .and_then(|p| p.backend.get_mut(&watcher))
            {
                watch.decision = next;
                if let Some(event) = event {
                    watch.event = event;
                }
            }
            self.report_watch(presentity, &watcher, state);
            if event.is_some() {
                self.backend_watcher_changed(presentity, &watcher, now, actions);
            }
        }
    }

    /// The composed document changed: watches allowed to see it get the new view.
    pub(crate) fn recompose_watches(&mut self, presentity: &str) {
        let allowed: Vec<(String, Decision)> = self
            .presentities
            .get(presentity)
            .into_iter()
            .flat_map(|p| p.backend.iter())
            .filter(|(_, w)| w.decision.handling == SubHandling::Allow)
            .map(|(watcher, w)| (watcher.clone(), w.decision.clone()))
            .collect();
        for (watcher, decision) in allowed {
            let state = self.watch_state(presentity, &decision);
            self.report_watch(presentity, &watcher, state);
        }
    }

    /// The `<watcher>` elements of the presentity's back-end watches.
    pub(crate) fn backend_watchers(&self, presentity: &str) -> Vec<Watcher> {
        self.presentities
            .get(presentity)
            .into_iter()
            .flat_map(|p| p.backend.iter())
            .map(|(watcher, watch)| backend_watcher(watcher, watch))
            .collect()
    }

    fn backend_decision(&self, presentity: &str, watcher: &str) -> Option<Decision> {
        self.presentities
            .get(presentity)
            .and_then(|p| p.backend.get(watcher))
            .map(|w| w.decision.clone())
    }

    fn watch_state(&mut self, presentity: &str, decision: &Decision) -> WatchState {
        match decision.handling {
            SubHandling::Confirm => WatchState::Pending,
            SubHandling::Block => WatchState::Terminated(Reason::Rejected),
            SubHandling::Allow | SubHandling::PoliteBlock => self
                .view(presentity, decision)
                .map(WatchState::Active)
                .unwrap_or(WatchState::Pending),
        }
    }

    /// Records `state` and queues an update when it differs from the last one reported.
    fn report_watch(&mut self, presentity: &str, watcher: &str, state: WatchState) {
        let Some(watch) = self
            .presentities
            .get_mut(presentity)
            .and_then(|p| p.backend.get_mut(watcher))
        else {
            return;
        };
        if watch.state == state {
            return;
        }
        watch.state = state.clone();
        self.watch_updates.push(WatchUpdate {
            presentity: presentity.to_owned(),
            watcher: watcher.to_owned(),
            state,
        });
    }

    fn backend_watcher_changed(
        &mut self,
        presentity: &str,
        watcher: &str,
        now: Instant,
        actions: &mut Vec<Action<D>>,
    ) {
        let Some(element) = self
            .presentities
            .get(presentity)
            .and_then(|p| p.backend.get(watcher))
            .map(|watch| backend_watcher(watcher, watch))
        else {
            return;
        };
        self.winfo_partial(presentity, element, now, actions);
    }
}

fn backend_watcher(watcher: &str, watch: &BackendWatch) -> Watcher {
    let status = match watch.decision.handling {
        SubHandling::Allow | SubHandling::PoliteBlock => WatcherStatus::Active,
        SubHandling::Confirm => WatcherStatus::Pending,
        SubHandling::Block => WatcherStatus::Terminated,
    };
    Watcher {
        id: backend_watcher_id(watch.id),
        status,
        event: watch.event,
        uri: watcher.to_owned(),
        display_name: None,
        duration_subscribed: None,
        expiration: None,
    }
}

/// Dialog subscriptions use their number as watcher id; back-end ones are kept apart.
fn backend_watcher_id(id: u64) -> String {
    format!("list-{id}")
}
