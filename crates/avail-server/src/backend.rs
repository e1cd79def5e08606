//! The RLS's back-end subscriptions to resources of other domains (RFC 4662 §4.4: the RLS
//! subscribes to each resource on behalf of the list's subscriber). One `presence`
//! subscription per watch, sent with the subscriber's identity as From by the sans-IO
//! [`sip_ua::UserAgent`] over TCP, to the next hop of the resource's domain: a configured
//! route (`[rls] routes`), else the domain's address records on port 5060 (the RFC 3263 §4.2
//! fallback; NAPTR and SRV records are not consulted). What each NOTIFY says becomes the
//! watch's [`rls::ResourceState`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use rls::{ResourceState, WatchKey, WatchStatus};
use sip_message::Message;
use sip_subscription::{Body, Reason};
use sip_transport::{Target, Transport};
use sip_ua::{
    Event, Flow, Identity, Output, SubscribeParams, SubscriptionId, SubscriptionStatus,
    TerminationReason, UserAgent,
};
use tracing::{debug, warn};

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
}

/// Sends to carry out and watch states learnt.
#[derive(Default)]
pub struct Effects {
    pub sends: Vec<(Target, bytes::Bytes)>,
    pub states: Vec<(WatchKey, ResourceState)>,
}

impl RemoteWatches {
    pub fn new(config: &Config, local_tcp: Option<SocketAddr>) -> RemoteWatches {
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
        }
    }

    /// Subscribes to `key.resource` for `key.subscriber`. A domain that cannot be resolved
    /// leaves the resource terminated (`noresource`) without holding up the list.
    pub async fn watch(&mut self, key: &WatchKey, now: Instant) -> Effects {
        let mut effects = Effects::default();
        if self.by_key.contains_key(key) {
            return effects;
        }
        let Some(addr) = self.next_hop(&key.resource).await else {
            warn!(resource = %key.resource, "no route to the resource's domain");
            effects
                .states
                .push((key.clone(), terminated(Reason::Noresource)));
            return effects;
        };
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
                self.apply(outputs, &mut effects);
            }
            Err(error) => {
                warn!(%error, resource = %key.resource, "back-end subscription refused");
                effects
                    .states
                    .push((key.clone(), terminated(Reason::Noresource)));
            }
        }
        effects
    }

    pub fn unwatch(&mut self, key: &WatchKey, now: Instant) -> Effects {
        let mut effects = Effects::default();
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

    /// The flow to `dest` broke: what was in flight on it fails (and is retried later).
    pub fn on_flow_failed(&mut self, dest: &Target, now: Instant) -> Effects {
        let outputs = self.ua.on_flow_failed(dest, now);
        let mut effects = Effects::default();
        self.apply(outputs, &mut effects);
        effects
    }

    pub fn next_deadline(&mut self) -> Option<Instant> {
        self.ua.next_deadline()
    }

    pub fn on_timer(&mut self, now: Instant) -> Effects {
        let outputs = self.ua.on_timer(now);
        let mut effects = Effects::default();
        self.apply(outputs, &mut effects);
        effects
    }

    async fn next_hop(&self, resource: &str) -> Option<SocketAddr> {
        let uri = sip_message::Uri::parse(resource).ok()?;
        let domain = uri.host_text.to_ascii_lowercase();
        if let Some(addr) = self.routes.get(&domain) {
            return Some(*addr);
        }
        let port = uri.port.unwrap_or(5060);
        let host = domain
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let mut addrs = tokio::net::lookup_host((host, port)).await.ok()?;
        addrs.next()
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
