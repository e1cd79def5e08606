//! The SIP core's side of the resource list server (RFC 4662): list SUBSCRIBEs go to the
//! [`ListServer`], its back-end watches to the presence agent (local resources, RFC 4662
//! §4.4 with the list subscriber as watcher) or to [`RemoteWatches`] (other domains), and
//! every state those report back to the list subscriptions that contain the resource.

use std::time::Instant;

use rls::{Command, List, ResourceState, Subscribe, WatchKey, WatchStatus};
use sip_message::Message;
use sip_transport::Target;

use super::SipCore;
use crate::backend::Effects;
use crate::reply::Origin;

impl SipCore {
    /// Whether a SUBSCRIBE is for the list server: an in-dialog one of its dialogs, or a new
    /// one addressed to a service URI (returned as `(owner, service)`). A user's own address
    /// is that user's presence whatever any rls-services document says, so no one takes
    /// over another user's address by naming it as a service; and the common SUBSCRIBE, to
    /// a user, needs no service lookup.
    pub(super) async fn list_target(
        &mut self,
        request: &Message,
        now: Instant,
    ) -> Option<ListTarget> {
        let in_dialog = request.to_header().is_ok_and(|to| to.tag().is_some());
        if in_dialog {
            return self
                .lists
                .holds_dialog(request)
                .then_some(ListTarget::Dialog);
        }
        if self.local_account(request, now).await == Some(true) {
            return None;
        }
        let (owner, service) = self.lists.service_of(request).await?;
        Some(ListTarget::Service { owner, service })
    }

    /// A SUBSCRIBE for the list server from `identity` (authenticated, or asserted by
    /// another domain).
    pub(super) async fn on_list_subscribe(
        &mut self,
        id: sip_transaction::ServerTxId,
        request: &Message,
        origin: Origin,
        identity: &str,
        target: ListTarget,
        now: Instant,
    ) {
        let list = match target {
            ListTarget::Dialog => List {
                service: String::new(),
                packages: Vec::new(),
                entries: Vec::new(),
                problems: Vec::new(),
            },
            // A user's buddy list is the user's own business (as its documents are).
            ListTarget::Service { owner, .. } if owner != identity => {
                return self
                    .respond(
                        id,
                        request,
                        403,
                        "Only the owner may subscribe to this list",
                        now,
                    )
                    .await
            }
            ListTarget::Service { owner, service } => {
                match self.lists.expand(&owner, &service).await {
                    Some(list) => list,
                    None => return self.respond(id, request, 404, "Not Found", now).await,
                }
            }
        };
        let dest = origin.response_target(request);
        let local = self.transport.local_addr(origin.transport);
        let flow = self.presence.flow(origin, dest, local);
        let answer = match self
            .lists
            .agent()
            .on_subscribe(request, flow, identity, list, now)
        {
            Subscribe::Answered(answer) => answer,
            Subscribe::Opening(mut opening) => {
                // Local states are known at once: the first NOTIFY carries them.
                let commands = std::mem::take(&mut opening.commands);
                self.run_watch_commands(commands, now).await;
                self.lists.agent().open(opening, now)
            }
        };
        self.respond_with(id, answer.response, answer.status, now)
            .await;
        self.lists.defer(rls::Output {
            notifies: answer.notifies,
            commands: answer.commands,
        });
    }

    /// Runs the list server's backlog (NOTIFYs, back-end commands) until it is empty, and
    /// first passes on the presence agent's changed watch states. Called once an event has
    /// been handled.
    pub(super) async fn settle_lists(&mut self, now: Instant) {
        // Called after every message: most leave nothing to settle, and taking the empty
        // queues apart cost more than the check.
        if !self.presence.has_watch_updates() && !self.lists.has_backlog() {
            return;
        }
        self.pump_watches(now);
        loop {
            let (notifies, commands) = self.lists.take_backlog();
            if notifies.is_empty() && commands.is_empty() {
                break;
            }
            self.send_notifies(super::Notifier::Lists, notifies, now)
                .await;
            self.run_watch_commands(commands, now).await;
            self.pump_watches(now);
        }
    }

    /// Starts and ends back-end watches; states known at once go straight to the lists.
    pub(super) async fn run_watch_commands(&mut self, commands: Vec<Command>, now: Instant) {
        for command in commands {
            match command {
                Command::Watch(key) if self.is_local(&key.resource) => {
                    let mut notifies = self.presence.ensure_policy(&key.resource, now).await;
                    let (state, more) =
                        self.presence
                            .agent()
                            .watch(&key.resource, &key.subscriber, now);
                    notifies.extend(more);
                    self.lists
                        .agent()
                        .on_resource_state(&key, resource_state(state), now);
                    self.send_notifies(super::Notifier::Presence, notifies, now)
                        .await;
                }
                Command::Watch(key) => {
                    let effects = self.remote.watch(&key, &mut self.lookups, now);
                    self.apply_backend(effects, now).await;
                }
                Command::Unwatch(key) if self.is_local(&key.resource) => {
                    let notifies =
                        self.presence
                            .agent()
                            .unwatch(&key.resource, &key.subscriber, now);
                    self.send_notifies(super::Notifier::Presence, notifies, now)
                        .await;
                }
                Command::Unwatch(key) => {
                    let effects = self.remote.unwatch(&key, now);
                    self.apply_backend(effects, now).await;
                }
            }
        }
    }

    /// Hands the presence agent's changed watch states to the lists.
    pub(super) fn pump_watches(&mut self, now: Instant) {
        for update in self.presence.take_watch_updates() {
            let key = WatchKey {
                resource: update.presentity,
                subscriber: update.watcher,
            };
            self.lists
                .agent()
                .on_resource_state(&key, resource_state(update.state), now);
        }
    }

    /// Sends what the back-end agent asked for and passes the states it learnt on.
    pub(super) async fn apply_backend(&mut self, effects: Effects, now: Instant) {
        let mut states = effects.states;
        for (dest, data) in effects.sends {
            // A send that must connect first runs beside the core (a dead peer may take the
            // whole connect timeout); its failure comes back through `on_failed_send`.
            let Some((dest, data)) = self.connector.detach(dest, data) else {
                continue;
            };
            if let Err(error) = self.transport.send(dest.clone(), data).await {
                // The other domain cannot be reached: its requests fail now (and retry after
                // a back-off) instead of waiting for their transactions to time out.
                tracing::debug!(%error, "back-end send failed");
                states.extend(self.remote.on_flow_failed(&dest, now).states);
            }
        }
        for (key, state) in states {
            self.lists.agent().on_resource_state(&key, state, now);
        }
    }

    /// A response or NOTIFY for a back-end subscription.
    pub(super) async fn on_backend_message(
        &mut self,
        message: Message,
        origin: Origin,
        now: Instant,
    ) {
        let source = match origin.connection {
            Some(connection) => Target::Connection(connection),
            None => Target::Udp(origin.peer),
        };
        let effects = self
            .remote
            .on_message(message, source, origin.is_reliable(), now);
        self.apply_backend(effects, now).await;
    }

    /// The list server's timers (batching windows, expiry) and the back-end agent's.
    pub(super) async fn on_list_timers(&mut self, now: Instant) {
        let output = self.lists.on_timer(now);
        self.lists.defer(output);
        let effects = self.remote.on_timer(now);
        self.apply_backend(effects, now).await;
    }

    /// An XCAP write: every list read from the document is expanded again.
    pub(super) async fn on_list_document_change(
        &mut self,
        change: &xcap::DocumentChange,
        now: Instant,
    ) {
        let Some(owner) = change.user.as_deref().and_then(presence::aor) else {
            return;
        };
        let affected = self
            .lists
            .services_reading(&change.auid, &owner, &change.document);
        for (owner, service) in affected {
            let output = match self.lists.expand(&owner, &service).await {
                Some(list) => self.lists.agent().on_list_changed(&service, list, now),
                None => {
                    self.lists.forget_service(&service);
                    self.lists.agent().on_service_removed(&service, now)
                }
            };
            self.lists.defer(output);
        }
    }

    /// A new subscription's resource must be a user of ours (RFC 6665 §4.2.1.1: 404 for a
    /// resource that does not exist); in-dialog requests and other domains pass.
    pub(super) async fn resource_exists(&mut self, request: &Message, now: Instant) -> bool {
        if request.to_header().is_ok_and(|to| to.tag().is_some()) {
            return true;
        }
        self.local_account(request, now).await.unwrap_or(true)
    }

    /// Whether the Request-URI names an account of ours; None when it names no user of a
    /// domain we serve.
    async fn local_account(&mut self, request: &Message, now: Instant) -> Option<bool> {
        let uri = request
            .request_uri()
            .and_then(|text| sip_message::Uri::parse(text).ok())?;
        let user = uri
            .user_unescaped()
            .filter(|_| self.config.serves(uri.host_text))?;
        let domain = uri.host_text.to_ascii_lowercase();
        Some(self.auth.has_account(&user, &domain, now).await)
    }

    fn is_local(&self, resource: &str) -> bool {
        sip_message::Uri::parse(resource).is_ok_and(|uri| self.config.serves(uri.host_text))
    }
}

/// Where a list SUBSCRIBE goes.
pub(super) enum ListTarget {
    Dialog,
    Service { owner: String, service: String },
}

fn resource_state(state: presence::WatchState) -> ResourceState {
    match state {
        presence::WatchState::Active(body) => ResourceState {
            status: WatchStatus::Active,
            body: Some(body),
        },
        presence::WatchState::Pending => ResourceState {
            status: WatchStatus::Pending,
            body: None,
        },
        presence::WatchState::Terminated(reason) => ResourceState {
            status: WatchStatus::Terminated(reason),
            body: None,
        },
    }
}
