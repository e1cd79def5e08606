//! The presence agent in the server: loads each presentity's policy documents (pres-rules,
//! resource-lists, pidf-manipulation; blink-compat §1.1) from the XCAP store before the
//! sans-IO [`presence::PresenceAgent`] decides on a request for it, reloads them when XCAP
//! reports a change (RFC 4825 writes, issue 4 item 4: re-evaluation at once), and keeps the
//! NOTIFY client transactions (RFC 6665 §4.2.2) matched to their subscriptions.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use presence::{Config as AgentConfig, Notify, Policy, PresenceAgent, SubscriptionId};
use rand::SeedableRng;
use sip_subscription::Flow;
use sip_transaction::ClientTxId;
use sip_transport::{Target, Transport};
use store::{DocumentKey, DocumentStore, Store};
use tokio::sync::broadcast::error::RecvError;
use tracing::{debug, warn};
use xcap::DocumentChange;

use crate::config::Config;
use crate::reply::Origin;

/// pres-rules AUIDs, in the order looked for: Blink's OMA one, then the IETF one (RFC 5025 §9).
const PRES_RULES: [&str; 2] = ["org.openmobilealliance.pres-rules", "pres-rules"];
const RESOURCE_LISTS: &str = "resource-lists";
const PIDF_MANIPULATION: &str = "pidf-manipulation";
/// The one document per usage that policy is read from (blink-compat §1.1).
const DOCUMENT: &str = "index";

pub struct Presence {
    agent: PresenceAgent<Target>,
    store: Store,
    /// NOTIFY client transactions in flight, bounded by the subscriptions (one each).
    notifies: HashMap<ClientTxId, SubscriptionId>,
    /// Host part of our Via and Contact when a listener is bound to a wildcard address.
    fallback_host: String,
}

impl Presence {
    pub fn new(config: &Config, store: Store) -> Presence {
        let r = &config.registrar;
        let agent = PresenceAgent::new(
            AgentConfig::new(r.min_expires, r.max_expires, r.default_expires),
            rand::rngs::StdRng::from_entropy(),
        );
        Presence {
            agent,
            store,
            notifies: HashMap::new(),
            fallback_host: config.domains.first().cloned().unwrap_or_default(),
        }
    }

    pub fn agent(&mut self) -> &mut PresenceAgent<Target> {
        &mut self.agent
    }

    /// Loads `presentity`'s policy unless the agent already has it.
    pub async fn ensure_policy(&mut self, presentity: &str, now: Instant) -> Vec<Notify<Target>> {
        if self.agent.tracks(presentity) {
            return Vec::new();
        }
        self.reload(presentity, now).await
    }

    /// Reads the policy documents afresh and applies them.
    async fn reload(&mut self, presentity: &str, now: Instant) -> Vec<Notify<Target>> {
        let mut pres_rules = None;
        for auid in PRES_RULES {
            pres_rules = self.document(auid, presentity).await;
            if pres_rules.is_some() {
                break;
            }
        }
        let lists = self.document(RESOURCE_LISTS, presentity).await;
        let manipulation = self.document(PIDF_MANIPULATION, presentity).await;
        let policy = Policy::from_documents(
            pres_rules.as_deref(),
            lists.as_deref(),
            manipulation.as_deref(),
        );
        let unix_now = i64::try_from(crate::auth::unix_now()).unwrap_or(i64::MAX);
        self.agent.set_policy(presentity, policy, unix_now, now)
    }

    async fn document(&self, auid: &str, owner: &str) -> Option<Vec<u8>> {
        let key = DocumentKey {
            auid: auid.to_owned(),
            owner: owner.to_owned(),
            path: DOCUMENT.to_owned(),
        };
        match self.store.get_document(&key).await {
            Ok(document) => document.map(|d| d.content),
            Err(error) => {
                // Without the document the agent falls back to confirm (pending), which
                // reveals nothing.
                warn!(%error, auid, owner, "policy document not readable");
                None
            }
        }
    }

    /// An XCAP write: re-evaluate the owner's subscriptions if it was a policy document of
    /// a presentity we hold state for. Missed events (a lagging receiver) reload every one.
    pub async fn on_document_change(
        &mut self,
        change: Result<DocumentChange, RecvError>,
        now: Instant,
    ) -> Vec<Notify<Target>> {
        let presentities: Vec<String> = match change {
            Ok(change) => {
                let relevant = change.document == DOCUMENT
                    && (PRES_RULES.contains(&change.auid.as_str())
                        || change.auid == RESOURCE_LISTS
                        || change.auid == PIDF_MANIPULATION);
                let presentity = change.user.as_deref().and_then(presence::aor);
                match presentity {
                    Some(p) if relevant && self.agent.tracks(&p) => vec![p],
                    _ => Vec::new(),
                }
            }
            Err(RecvError::Lagged(missed)) => {
                warn!(missed, "document changes missed; reloading every policy");
                self.agent.tracked().map(str::to_owned).collect()
            }
            Err(RecvError::Closed) => Vec::new(),
        };
        let mut notifies = Vec::new();
        for presentity in presentities {
            debug!(%presentity, "policy documents changed");
            notifies.extend(self.reload(&presentity, now).await);
        }
        notifies
    }

    pub fn sent(&mut self, tx: ClientTxId, sub: SubscriptionId) {
        self.notifies.insert(tx, sub);
    }

    /// The subscription a NOTIFY transaction belonged to, forgetting the transaction.
    pub fn finished(&mut self, tx: ClientTxId) -> Option<SubscriptionId> {
        self.notifies.remove(&tx)
    }

    /// How NOTIFYs reach the subscriber: over the flow its SUBSCRIBE came on (`dest`, the
    /// response target), with our Via and Contact for that listener (RFC 6665 §4.2.2 and
    /// blink-compat §7 "a Contact in every 2xx").
    pub fn flow(&self, origin: Origin, dest: Target, local: Option<SocketAddr>) -> Flow<Target> {
        let host = match local {
            Some(addr) if !addr.ip().is_unspecified() => addr.to_string(),
            Some(addr) => format!("{}:{}", self.fallback_host, addr.port()),
            None => self.fallback_host.clone(),
        };
        let (via, param) = match origin.transport {
            Transport::Udp => ("UDP", ""),
            Transport::Tcp => ("TCP", ";transport=tcp"),
            Transport::Tls => ("TLS", ";transport=tls"),
        };
        Flow {
            dest,
            reliable: origin.is_reliable(),
            via: format!("SIP/2.0/{via} {host}"),
            contact: format!("<sip:{host}{param}>"),
        }
    }
}
