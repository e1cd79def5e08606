//! The RLS's back-end subscriptions to resources of other domains (RFC 4662 §4.4: the RLS
//! subscribes to each resource on behalf of the list's subscriber). One `presence`
//! subscription per watch, sent with the subscriber's identity as From by the sans-IO
//! [`sip_ua::UserAgent`] over TCP, to the next hop of the resource's domain: a configured
//! route (`[rls] routes`), else the TCP targets RFC 3263 §4 finds for the resource (SRV
//! `_sip._tcp`, else the domain's address records on port 5060; no NAPTR). When the
//! connection to one target fails before the domain has answered, the subscription starts
//! over at the next target (§4.3). What each NOTIFY says becomes the watch's
//! [`rls::ResourceState`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use rls::{ResourceState, WatchKey, WatchStatus};
use sip_locate::{Destination, Locator};
use sip_message::Message;
use sip_subscription::{Body, Reason};
use sip_transport::{Target, Transport};
use sip_ua::{
    Event, Flow, Identity, Output, SubscribeParams, SubscriptionId, SubscriptionStatus,
    TerminationReason, UserAgent,
};
use tracing::{debug, info, warn};

use crate::config::Config;

/// Lifetime asked for back-end subscriptions; the agent refreshes them.
const EXPIRES: u32 = 3600;

pub struct RemoteWatches {
    ua: UserAgent<Target>,
    by_key: HashMap<WatchKey, SubscriptionId>,
    by_id: HashMap<SubscriptionId, WatchKey>,
    /// Configured next hops by domain (lower case).
    routes: HashMap<String, SocketAddr>,
    /// Host part of our Via and Contact.
    local_host: String,
    locator: Locator,
    /// Watches whose domain has not answered yet and that have targets left to try.
    failover: HashMap<WatchKey, Failover>,
    /// Watches whose target failed, to move to their next one at [`Self::moves_due`].
    moving: HashSet<WatchKey>,
    moves_due: Option<Instant>,
}

/// The targets of a watch (RFC 3263 §4.3): the one in use and those after it, never empty.
struct Failover {
    current: SocketAddr,
    next: VecDeque<SocketAddr>,
}

/// Sends to carry out and watch states learnt.
#[derive(Default)]
pub struct Effects {
    pub sends: Vec<(Target, bytes::Bytes)>,
    pub states: Vec<(WatchKey, ResourceState)>,
}

impl RemoteWatches {
    pub fn new(config: &Config, local_tcp: Option<SocketAddr>, locator: Locator) -> RemoteWatches {
        // Checked when the configuration was loaded.
        let routes = config
            .rls
            .route_table()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let fallback = config.domains.first().cloned().unwrap_or_default();
        let local_host = match local_tcp {
            Some(addr) if !addr.ip().is_unspecified() => addr.to_string(),
            Some(addr) => format!("{fallback}:{}", addr.port()),
            None => fallback,
        };
        RemoteWatches {
            ua: UserAgent::new(sip_ua::Config::default(), rand::SeedableRng::from_entropy()),
            by_key: HashMap::new(),
            by_id: HashMap::new(),
            routes,
            local_host,
            locator,
            failover: HashMap::new(),
            moving: HashSet::new(),
            moves_due: None,
        }
    }

    /// Subscribes to `key.resource` for `key.subscriber`. A domain that cannot be located
    /// leaves the resource terminated (`noresource`) without holding up the list.
    pub async fn watch(&mut self, key: &WatchKey, now: Instant) -> Effects {
        let mut effects = Effects::default();
        if self.by_key.contains_key(key) {
            return effects;
        }
        let mut targets = self.next_hops(&key.resource).await;
        let Some(first) = targets.pop_front() else {
            effects
                .states
                .push((key.clone(), terminated(Reason::Noresource)));
            return effects;
        };
        if !targets.is_empty() {
            let failover = Failover {
                current: first,
                next: targets,
            };
            self.failover.insert(key.clone(), failover);
        }
        self.subscribe(key, first, now, &mut effects);
        effects
    }

    /// A new back-end subscription for `key`, to `addr`.
    fn subscribe(&mut self, key: &WatchKey, addr: SocketAddr, now: Instant, effects: &mut Effects) {
        let params = SubscribeParams {
            identity: Identity {
                aor: key.subscriber.clone(),
                display_name: None,
                credentials: None,
            },
            flow: Flow {
                dest: Target::Connect {
                    transport: Transport::Tcp,
                    addr,
                    server_name: None,
                },
                reliable: true,
                via: format!("SIP/2.0/TCP {}", self.local_host),
                contact: format!("sip:rls@{};transport=tcp", self.local_host),
            },
            target: key.resource.clone(),
            event: rls::PRESENCE.to_owned(),
            event_id: None,
            accept: vec!["application/pidf+xml".to_owned()],
            list: false,
            expires: EXPIRES,
            body: None,
        };
        match self.ua.subscribe(params, now) {
            Ok((id, outputs)) => {
                self.by_key.insert(key.clone(), id);
                self.by_id.insert(id, key.clone());
                self.apply(outputs, effects);
            }
            Err(error) => {
                warn!(%error, resource = %key.resource, "back-end subscription refused");
                effects
                    .states
                    .push((key.clone(), terminated(Reason::Noresource)));
            }
        }
    }

    pub fn unwatch(&mut self, key: &WatchKey, now: Instant) -> Effects {
        let mut effects = Effects::default();
        self.failover.remove(key);
        self.moving.remove(key);
        if let Some(id) = self.by_key.remove(key) {
            self.by_id.remove(&id);
            match self.ua.unsubscribe(id, now) {
                Ok(outputs) => self.apply(outputs, &mut effects),
                Err(error) => debug!(%error, "back-end unsubscribe"),
            }
        }
        effects
    }

    /// Whether a message is a response or NOTIFY of ours.
    pub fn is_ours(&self, message: &Message) -> bool {
        self.ua.is_ours(message)
    }

    pub fn on_message(
        &mut self,
        message: Message,
        source: Target,
        reliable: bool,
        now: Instant,
    ) -> Effects {
        let outputs = self.ua.on_message(message, source, reliable, now);
        let mut effects = Effects::default();
        self.apply(outputs, &mut effects);
        effects
    }

    /// The flow to `dest` broke: what was in flight on it fails (and is retried later). A
    /// watch whose domain has not answered yet and that has another target moves on to it
    /// instead (RFC 3263 §4.3), at the next timer: the caller takes only the states from
    /// here, while it is still sending.
    pub fn on_flow_failed(&mut self, dest: &Target, now: Instant) -> Effects {
        let moving: Vec<WatchKey> = match dest {
            Target::Connect {
                transport: Transport::Tcp,
                addr,
                ..
            } => self
                .failover
                .iter()
                .filter(|(_, failover)| failover.current == *addr)
                .map(|(key, _)| key.clone())
                .collect(),
            _ => Vec::new(),
        };
        let outputs = self.ua.on_flow_failed(dest, now);
        let mut effects = Effects::default();
        self.apply(outputs, &mut effects);
        // Not pending: the next target may well answer.
        effects.states.retain(|(key, _)| !moving.contains(key));
        if !moving.is_empty() {
            self.moving.extend(moving);
            self.moves_due = Some(now);
        }
        effects
    }

    pub fn next_deadline(&mut self) -> Option<Instant> {
        [self.ua.next_deadline(), self.moves_due]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn on_timer(&mut self, now: Instant) -> Effects {
        let mut effects = Effects::default();
        if self.moves_due.is_some_and(|due| due <= now) {
            self.move_on(now, &mut effects);
        }
        let outputs = self.ua.on_timer(now);
        self.apply(outputs, &mut effects);
        effects
    }

    /// Each watch whose target failed starts over at its next target: a new SUBSCRIBE, so a
    /// new transaction (RFC 3263 §4.3).
    fn move_on(&mut self, now: Instant, effects: &mut Effects) {
        self.moves_due = None;
        for key in std::mem::take(&mut self.moving) {
            let Some(failover) = self.failover.get_mut(&key) else {
                continue;
            };
            let Some(next) = failover.next.pop_front() else {
                continue;
            };
            failover.current = next;
            if failover.next.is_empty() {
                self.failover.remove(&key);
            }
            if let Some(id) = self.by_key.remove(&key) {
                self.by_id.remove(&id);
                // Ends the old subscription; an un-SUBSCRIBE only if its dialog had begun.
                match self.ua.unsubscribe(id, now) {
                    Ok(outputs) => self.apply(outputs, effects),
                    Err(error) => debug!(%error, "back-end unsubscribe"),
                }
            }
            info!(resource = %key.resource, %next, "back-end subscription moves to the next target");
            self.subscribe(&key, next, now, effects);
        }
    }

    /// Where back-end SUBSCRIBEs for `resource` go, in order: its domain's configured route,
    /// else the targets RFC 3263 finds over TCP, the only transport of the back-end (its Via
    /// and Contact are our TCP listener's). Empty when there is nowhere to go.
    async fn next_hops(&self, resource: &str) -> VecDeque<SocketAddr> {
        let destination = match Destination::from_uri(resource) {
            Ok(destination) => destination,
            Err(error) => {
                warn!(%error, resource, "back-end subscription impossible");
                return VecDeque::new();
            }
        };
        if let Some(addr) = self.routes.get(&destination.host.to_string()) {
            return VecDeque::from([*addr]);
        }
        let located = self
            .locator
            .locate(&destination, &[sip_locate::Transport::Tcp])
            .await;
        let targets = match located {
            Ok(targets) => targets,
            Err(error) => {
                warn!(%error, resource, "no route to the resource's domain");
                return VecDeque::new();
            }
        };
        let tcp: VecDeque<SocketAddr> = targets
            .iter()
            .filter(|target| target.transport == sip_locate::Transport::Tcp)
            .map(|target| target.addr)
            .collect();
        if tcp.is_empty() {
            warn!(
                resource,
                ?targets,
                "no TCP target for the resource's domain"
            );
        }
        tcp
    }

    fn apply(&mut self, outputs: Vec<Output<Target>>, effects: &mut Effects) {
        for output in outputs {
            match output {
                Output::Send { dest, data } => effects.sends.push((dest, data)),
                Output::Event(event) => self.on_event(event, effects),
            }
        }
    }

    fn on_event(&mut self, event: Event, effects: &mut Effects) {
        if let Event::Notify { id, .. } | Event::SubscriptionState { id, .. } = &event {
            // The domain answered over this target: no moving elsewhere any more.
            if let Some(key) = self.by_id.get(id) {
                self.failover.remove(key);
            }
        }
        let (id, state) = match event {
            Event::Notify {
                id,
                status,
                content_type,
                body,
            } => {
                let body = content_type
                    .filter(|t| t.to_ascii_lowercase().starts_with("application/pidf+xml"))
                    .filter(|_| !body.is_empty())
                    .map(|t| Body::new(&t, body));
                (id, resource_state(&status, body))
            }
            // An active state comes with the NOTIFY that carries the document; reporting it
            // before would show the resource active and empty for a moment.
            Event::SubscriptionState {
                status: SubscriptionStatus::Active { .. },
                ..
            } => return,
            Event::SubscriptionState { id, status, .. } => (id, resource_state(&status, None)),
            // The remote side does not answer (or refuses): show the resource as pending
            // until a retry succeeds, so the rest of the list is not held up.
            Event::SubscriptionFailed { id, status, .. } => {
                debug!(status, "back-end SUBSCRIBE failed");
                let state = match status {
                    403 | 603 => terminated(Reason::Rejected),
                    404 | 480 | 484 | 489 => terminated(Reason::Noresource),
                    _ => ResourceState {
                        status: WatchStatus::Pending,
                        body: None,
                    },
                };
                (id, state)
            }
            Event::Unsubscribed { id } => {
                if let Some(key) = self.by_id.remove(&id) {
                    self.by_key.remove(&key);
                }
                return;
            }
            _ => return,
        };
        if let Some(key) = self.by_id.get(&id) {
            effects.states.push((key.clone(), state));
        }
    }
}

fn terminated(reason: Reason) -> ResourceState {
    ResourceState {
        status: WatchStatus::Terminated(reason),
        body: None,
    }
}

fn resource_state(status: &SubscriptionStatus, body: Option<Body>) -> ResourceState {
    let status = match status {
        SubscriptionStatus::Active { .. } => WatchStatus::Active,
        SubscriptionStatus::Pending { .. } => WatchStatus::Pending,
        SubscriptionStatus::Terminated {
            reason,
            retry_after,
        } => WatchStatus::Terminated(match reason {
            Some(TerminationReason::Rejected) => Reason::Rejected,
            Some(TerminationReason::Noresource) => Reason::Noresource,
            Some(TerminationReason::Timeout) => Reason::Timeout,
            Some(TerminationReason::Probation) => Reason::Probation(*retry_after),
            Some(TerminationReason::Giveup) => Reason::Giveup(*retry_after),
            Some(TerminationReason::Invariant) => Reason::Invariant,
            _ => Reason::Deactivated,
        }),
    };
    ResourceState { status, body }
}
