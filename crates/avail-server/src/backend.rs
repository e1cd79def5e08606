//! The RLS's back-end subscriptions to resources of other domains (RFC 4662 §4.4: the RLS
//! subscribes to each resource on behalf of the list's subscriber). One `presence`
//! subscription per watch, sent with the subscriber's identity as From by the sans-IO
//! [`sip_ua::UserAgent`] over TCP or TLS, to the next hop of the resource's domain: a
//! configured route (`[rls] routes`, TCP), else the TCP and TLS targets RFC 3263 §4 finds for
//! the resource (NAPTR `SIP+D2T` / `SIPS+D2T` records' SRV names, or `_sip._tcp` then
//! `_sips._tcp`, else the domain's address records on port 5060; TLS only with a TLS
//! listener of ours, the peer proving the domain's name, RFC 5922 §4), looked up by a task
//! of its own (see [`Lookups`]) while the watch waits, queued beyond the back-end's share of
//! lookups. When the connection to one target fails before the domain has
//! answered, the subscription starts over at the next target (§4.3). What each NOTIFY says
//! becomes the watch's [`rls::ResourceState`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use rls::{ResourceState, WatchKey, WatchStatus};
use sip_locate::{Destination, LocateError};
use sip_message::Message;
use sip_subscription::{Body, Reason};
use sip_transport::{Target, Transport};
use sip_ua::{
    Event, Flow, Identity, Output, SubscribeParams, SubscriptionId, SubscriptionStatus,
    TerminationReason, UserAgent,
};
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::sip_core::lookups::{Lookups, Purpose, Requester};

/// Lifetime asked for back-end subscriptions; the agent refreshes them.
const EXPIRES: u32 = 3600;

pub struct RemoteWatches {
    ua: UserAgent<Target>,
    by_key: HashMap<WatchKey, SubscriptionId>,
    by_id: HashMap<SubscriptionId, WatchKey>,
    /// Configured next hops by domain (lower case).
    routes: HashMap<String, SocketAddr>,
    /// Host part of our Via and Contact over TCP.
    local_host: String,
    /// The same over TLS; none without a TLS listener, and then no TLS targets.
    local_tls_host: Option<String>,
    /// Watches whose resource's domain is being located, queued or looked up, and whether
    /// they are still wanted: one unwatched meanwhile keeps its place in the queue or its
    /// lookup, so that watching it again neither queues it twice nor looks it up twice, and
    /// is dropped when its turn or its result comes.
    locating: HashMap<WatchKey, bool>,
    /// Watches waiting for room to start their lookup, in order.
    queued: VecDeque<(WatchKey, Destination)>,
    /// Watches whose domain has not answered yet and that have targets left to try.
    failover: HashMap<WatchKey, Failover>,
    /// Watches whose target failed, to move to their next one at [`Self::moves_due`].
    moving: HashSet<WatchKey>,
    moves_due: Option<Instant>,
}

/// Where a back-end subscription goes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hop {
    transport: Transport,
    addr: SocketAddr,
    /// The name a TLS peer must prove.
    server_name: Option<String>,
}

impl Hop {
    fn tcp(addr: SocketAddr) -> Hop {
        Hop {
            transport: Transport::Tcp,
            addr,
            server_name: None,
        }
    }
}

/// The targets of a watch (RFC 3263 §4.3): the one in use and those after it, never empty.
struct Failover {
    current: Hop,
    next: VecDeque<Hop>,
}

/// Sends to carry out and watch states learnt.
#[derive(Default)]
pub struct Effects {
    pub sends: Vec<(Target, bytes::Bytes)>,
    pub states: Vec<(WatchKey, ResourceState)>,
}

impl RemoteWatches {
    /// `local_tcp` and `local_tls` are our listeners', named in Via and Contact.
    pub fn new(
        config: &Config,
        local_tcp: Option<SocketAddr>,
        local_tls: Option<SocketAddr>,
    ) -> RemoteWatches {
        // Checked when the configuration was loaded.
        let routes = config
            .rls
            .route_table()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let fallback = config.domains.first().cloned().unwrap_or_default();
        let host = |addr: SocketAddr| {
            if addr.ip().is_unspecified() {
                format!("{fallback}:{}", addr.port())
            } else {
                addr.to_string()
            }
        };
        let local_tls_host = local_tls.map(host);
        let local_host = local_tcp.map_or_else(|| fallback.clone(), host);
        RemoteWatches {
            ua: UserAgent::new(sip_ua::Config::default(), rand::SeedableRng::from_entropy()),
            by_key: HashMap::new(),
            by_id: HashMap::new(),
            routes,
            local_host,
            local_tls_host,
            locating: HashMap::new(),
            queued: VecDeque::new(),
            failover: HashMap::new(),
            moving: HashSet::new(),
            moves_due: None,
        }
    }

    /// Subscribes to `key.resource` for `key.subscriber`: at once when its domain has a
    /// configured route, else once the domain is located (see [`Self::on_located`]).
    pub fn watch(&mut self, key: &WatchKey, lookups: &mut Lookups, now: Instant) -> Effects {
        let mut effects = Effects::default();
        if self.by_key.contains_key(key) {
            return effects;
        }
        if let Some(wanted) = self.locating.get_mut(key) {
            *wanted = true;
            return effects;
        }
        let destination = match Destination::from_uri(&key.resource) {
            Ok(destination) => destination,
            Err(error) => {
                warn!(%error, resource = %key.resource, "back-end subscription impossible");
                effects
                    .states
                    .push((key.clone(), terminated(Reason::Noresource)));
                return effects;
            }
        };
        if let Some(addr) = self.routes.get(&destination.host.to_string()).copied() {
            self.subscribe(key, Hop::tcp(addr), now, &mut effects);
            return effects;
        }
        self.locating.insert(key.clone(), true);
        self.queued.push_back((key.clone(), destination));
        self.start_lookups(lookups);
        effects
    }

    /// Starts the lookups of queued watches still wanted, as far as the back-end's share
    /// allows.
    fn start_lookups(&mut self, lookups: &mut Lookups) {
        while lookups.has_room(Requester::Backend) {
            let Some((key, destination)) = self.queued.pop_front() else {
                return;
            };
            if self.locating.get(&key) == Some(&true) {
                let probe: &[Transport] = if self.local_tls_host.is_some() {
                    &[Transport::Tcp, Transport::Tls]
                } else {
                    &[Transport::Tcp]
                };
                lookups.start(Purpose::Watch(key), destination, probe);
            } else {
                self.locating.remove(&key);
            }
        }
    }

    /// The lookup of `key`'s domain finished: the subscription starts at the first target
    /// it can use, the others kept for failover; a domain that cannot be located leaves the
    /// resource terminated (`noresource`) without holding up the list. A queued watch takes
    /// the freed slot.
    pub fn on_located(
        &mut self,
        key: &WatchKey,
        located: Result<Vec<sip_locate::Target>, LocateError>,
        lookups: &mut Lookups,
        now: Instant,
    ) -> Effects {
        let mut effects = Effects::default();
        if self.locating.remove(key) == Some(true) {
            let tls = self.local_tls_host.is_some();
            let mut targets = stream_targets(&key.resource, located, tls);
            match targets.pop_front() {
                Some(first) => {
                    if !targets.is_empty() {
                        let failover = Failover {
                            current: first.clone(),
                            next: targets,
                        };
                        self.failover.insert(key.clone(), failover);
                    }
                    self.subscribe(key, first, now, &mut effects);
                }
                None => effects
                    .states
                    .push((key.clone(), terminated(Reason::Noresource))),
            }
        }
        self.start_lookups(lookups);
        effects
    }

    /// A new back-end subscription for `key`, to `hop`.
    fn subscribe(&mut self, key: &WatchKey, hop: Hop, now: Instant, effects: &mut Effects) {
        let (local_host, transport_param) = match (hop.transport, &self.local_tls_host) {
            (Transport::Tls, Some(tls_host)) => (tls_host, "tls"),
            _ => (&self.local_host, "tcp"),
        };
        let via = format!("SIP/2.0/{} {local_host}", hop.transport.via_name());
        let contact = format!("sip:rls@{local_host};transport={transport_param}");
        let params = SubscribeParams {
            identity: Identity {
                aor: key.subscriber.clone(),
                display_name: None,
                credentials: None,
            },
            flow: Flow {
                dest: Target::Connect {
                    transport: hop.transport,
                    addr: hop.addr,
                    server_name: hop.server_name,
                },
                reliable: true,
                via,
                contact,
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
        if let Some(wanted) = self.locating.get_mut(key) {
            *wanted = false;
        }
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
                transport, addr, ..
            } => self
                .failover
                .iter()
                .filter(|(_, f)| f.current.transport == *transport && f.current.addr == *addr)
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
            failover.current = next.clone();
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
            info!(resource = %key.resource, next = %next.addr, transport = %next.transport, "back-end subscription moves to the next target");
            self.subscribe(&key, next, now, effects);
        }
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

/// Where back-end SUBSCRIBEs for `resource` go, in order: the targets RFC 3263 found over
/// TCP, and over TLS when `tls` (we have a listener to name in Via and Contact). Empty when
/// there is nowhere to go.
fn stream_targets(
    resource: &str,
    located: Result<Vec<sip_locate::Target>, LocateError>,
    tls: bool,
) -> VecDeque<Hop> {
    let targets = match located {
        Ok(targets) => targets,
        Err(error) => {
            warn!(%error, resource, "no route to the resource's domain");
            return VecDeque::new();
        }
    };
    let usable: VecDeque<Hop> = targets
        .iter()
        .filter(|target| match target.transport {
            Transport::Tcp => true,
            Transport::Tls => tls,
            Transport::Udp => false,
        })
        .map(|target| Hop {
            transport: target.transport,
            addr: target.addr,
            server_name: target.server_name.clone(),
        })
        .collect();
    if usable.is_empty() {
        warn!(
            resource,
            ?targets,
            "no TCP or TLS target for the resource's domain"
        );
    }
    usable
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip_core::lookups::MAX_BACKEND_LOOKUPS;

    /// A resource at an address: its lookup needs no name server and finishes at once.
    fn key(n: usize) -> WatchKey {
        WatchKey {
            resource: format!("sip:bob{n}@192.0.2.1:{};transport=tcp", 5000 + n),
            subscriber: "sip:alice@example.com".to_owned(),
        }
    }

    #[tokio::test]
    async fn watches_beyond_the_back_end_share_wait_their_turn_and_unwatched_ones_drop_out() {
        let (mut lookups, mut results) = Lookups::without_name_server();
        let mut remote = RemoteWatches::new(&Config::default(), None, None);
        let now = Instant::now();
        for n in 0..MAX_BACKEND_LOOKUPS + 2 {
            let effects = remote.watch(&key(n), &mut lookups, now);
            assert!(
                effects.sends.is_empty(),
                "nothing is sent before the lookup"
            );
        }
        assert!(!lookups.has_room(Requester::Backend));
        assert_eq!(remote.queued.len(), 2);
        let queued = key(MAX_BACKEND_LOOKUPS);
        remote.unwatch(&queued, now);

        let (purpose, result) = lookups.finish(results.recv().await.expect("a result"));
        let Purpose::Watch(located) = purpose else {
            panic!("a watch's lookup: {purpose:?}");
        };
        let effects = remote.on_located(&located, result, &mut lookups, now);
        let port = Destination::from_uri(&located.resource)
            .expect("a SIP URI")
            .port;
        let subscribed = effects.sends.iter().any(|(dest, data)| {
            data.starts_with(b"SUBSCRIBE ")
                && matches!(dest, Target::Connect { addr, .. } if Some(addr.port()) == port)
        });
        assert!(subscribed, "the SUBSCRIBE goes where the lookup led");
        assert!(
            remote.queued.is_empty() && !remote.locating.contains_key(&queued),
            "the unwatched watch gave up its turn, the next one took the slot"
        );
        assert!(!lookups.has_room(Requester::Backend));
        assert!(remote.locating.contains_key(&key(MAX_BACKEND_LOOKUPS + 1)));
    }
}
