//! The resource list server in the server: finds the service a SUBSCRIBE names among the
//! users' rls-services documents (RFC 4826 §4.5: service URIs are unique server-wide, which
//! the XCAP store enforces and indexes), expands its list from the stored documents (RFC 4826
//! §4.3, every reference form followed by [`rls::expand`]) and drives the sans-IO
//! [`rls::RlsAgent`]. Back-end watches of local resources are served by the presence agent
//! (see `sip_core/lists.rs`); a list is expanded again
//! whenever XCAP changes a document it was read from (issue 5 item 5).
//!
//! List subscriptions survive a restart like presence subscriptions (README "Restart and
//! durability"): their changed records go, at most every [`SAVE_INTERVAL`], to the presence
//! writer as rows of kind `list`; on start they are imported, their lists expanded again and
//! each gets a full-state NOTIFY on its dialog.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use rls::{
    Auid, Command, DocumentRef, Documents, Expansion, ExpansionLimits, List, Notify, Output,
    RlsAgent,
};
use sip_message::Message;
use sip_transport::Target;
use store::{DocumentKey, DocumentStore, Store};
use tracing::{info, warn};

use crate::config::Config;
use crate::presence::{RemovedRow, SavedChanges, SavedRow, Saver};

/// The rls-services usage, whose service URIs the store keeps as unique keys.
const RLS_SERVICES: &str = "rls-services";
/// The `kind` of list subscription rows in the presence state table.
const ROW_KIND: &str = "list";

impl SavedChanges for rls::ListChanges {
    fn is_empty(&self) -> bool {
        rls::ListChanges::is_empty(self)
    }

    fn into_rows(self) -> (Vec<SavedRow>, Vec<RemovedRow>) {
        let rows = self
            .records
            .into_iter()
            .map(|record| (ROW_KIND, record.key, record.expires_at, record.data))
            .collect();
        let removed = self
            .removed
            .into_iter()
            .map(|key| (ROW_KIND, key))
            .collect();
        (rows, removed)
    }
}

/// A service with list subscriptions, and what its expansion read.
#[derive(Debug)]
struct Service {
    owner: String,
    documents: BTreeSet<DocumentRef>,
}

pub struct ListServer {
    agent: RlsAgent<Target>,
    store: Store,
    limits: ExpansionLimits,
    /// Path of the XCAP root, against which absolute references are resolved.
    xcap_root_path: String,
    /// Services expanded for a subscription, by service URI.
    services: HashMap<String, Service>,
    /// NOTIFYs and back-end commands not carried out yet: whatever produces them (a NOTIFY
    /// answer met deep in the transaction actions, a timer) leaves them here, and the core
    /// runs them once the event is handled, so no handler has to call back into another.
    backlog: Output<Target>,
    saver: Saver,
}

impl ListServer {
    pub fn new(config: &Config, store: Store, saver: Saver) -> ListServer {
        let r = &config.registrar;
        let mut agent_config = rls::Config::new(r.min_expires, r.max_expires, r.default_expires);
        agent_config.batch_window = config.rls.batch_window();
        agent_config.max_notify_body = config.rls.max_notify_body;
        if let Some(domain) = config.domains.first() {
            agent_config.cid_domain.clone_from(domain);
        }
        let agent = RlsAgent::new(agent_config, rand::SeedableRng::from_entropy());
        ListServer {
            agent,
            store,
            limits: ExpansionLimits {
                max_entries: config.rls.max_entries,
                max_depth: config.rls.max_depth,
                max_documents: config.rls.max_documents,
            },
            xcap_root_path: config.http.root.clone(),
            services: HashMap::new(),
            backlog: Output::default(),
            saver,
        }
    }

    /// The agent, for a call that may change its state (which schedules a save).
    pub fn agent(&mut self) -> &mut RlsAgent<Target> {
        self.saver.touch();
        &mut self.agent
    }

    /// The agent's timers (batching windows, expiry), when one is due; a core wakeup for
    /// another timer changes nothing to save.
    pub fn on_timer(&mut self, now: Instant) -> Output<Target> {
        if self.agent.next_deadline().is_some_and(|due| due <= now) {
            self.agent().on_timer(now)
        } else {
            Output::default()
        }
    }

    /// The agent's next timer, or the next save when one is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.saver.next_deadline(self.agent.next_deadline())
    }

    /// Hands the list subscriptions changed since the last save to the writer, if one is due.
    pub fn save_if_due(&mut self, now: Instant) {
        let agent = &mut self.agent;
        self.saver
            .save_if_due(now, |now, unix_now| agent.export_changes(now, unix_now));
    }

    /// Start-up: the saved list subscriptions with their lists expanded afresh; the watch
    /// commands wait in the backlog, and [`Self::resume`] follows once they have run.
    pub async fn restore(
        &mut self,
        flow: impl Fn(&str) -> Option<sip_subscription::Flow<Target>>,
        now: Instant,
    ) {
        let now_unix = crate::auth::unix_now();
        let rows = match self
            .store
            .load_presence_state(i64::try_from(now_unix).unwrap_or(i64::MAX))
            .await
        {
            Ok(rows) => rows,
            Err(error) => {
                warn!(%error, "saved list subscriptions not readable; starting empty");
                return;
            }
        };
        let records = rows
            .into_iter()
            .filter(|row| row.kind == ROW_KIND)
            .filter_map(|row| {
                Some(rls::ListRecord {
                    key: row.key,
                    expires_at: u64::try_from(row.expires_at).ok()?,
                    data: row.data,
                })
            })
            .collect();
        let restored = self.agent.import(records, flow, now, now_unix);
        for service in restored.services {
            let owner = self.owner_of(&service).await;
            let list = match owner {
                Some(owner) => self.expand(&owner, &service).await,
                None => None,
            };
            let output = match list {
                Some(list) => self.agent.on_list_changed(&service, list, now),
                None => self.agent.on_service_removed(&service, now),
            };
            self.defer(output);
        }
        info!(
            subscriptions = self.agent.subscriptions(),
            "list subscriptions restored"
        );
        self.saver.touch();
    }

    /// The restored subscriptions' full-state NOTIFYs, rendered now that the states known
    /// at once are in.
    pub fn resume(&mut self, now: Instant) {
        let output = self.agent.resume(now);
        self.defer(output);
    }

    async fn owner_of(&self, service: &str) -> Option<String> {
        let holders = self
            .store
            .unique_key_holders(RLS_SERVICES, &[service.to_owned()])
            .await
            .ok()?;
        holders
            .into_iter()
            .next()
            .and_then(|(_, key)| presence::aor(&key.owner))
    }

    pub fn holds_dialog(&self, request: &Message) -> bool {
        self.agent.holds_dialog(request)
    }

    /// The owner and service URI of the rls-services service `request` is addressed to.
    pub async fn service_of(&self, request: &Message) -> Option<(String, String)> {
        let uri = request.parsed_request_uri()?;
        let candidates: Vec<String> = [
            presence::aor_of(&uri),
            Some(format!(
                "{}:{}@{}",
                uri.scheme.to_ascii_lowercase(),
                uri.user?,
                uri.host_text
            )),
        ]
        .into_iter()
        .flatten()
        .collect();
        match self
            .store
            .unique_key_holders(RLS_SERVICES, &candidates)
            .await
        {
            Ok(holders) => holders
                .into_iter()
                .next()
                .and_then(|(service, key)| Some((presence::aor(&key.owner)?, service))),
            Err(error) => {
                warn!(%error, "service lookup failed");
                None
            }
        }
    }

    /// `service`'s list as `owner`'s documents define it now; None when the service is gone.
    pub async fn expand(&mut self, owner: &str, service: &str) -> Option<List> {
        let mut documents = Documents::new();
        let mut read = BTreeSet::new();
        loop {
            match rls::expand(
                owner,
                service,
                &documents,
                &self.limits,
                &self.xcap_root_path,
            ) {
                Expansion::Done(list) => {
                    self.services.insert(
                        service.to_owned(),
                        Service {
                            owner: owner.to_owned(),
                            documents: read,
                        },
                    );
                    return Some(list);
                }
                Expansion::NoService => return None,
                Expansion::Need(needed) => {
                    for document in needed {
                        let text = self.load(&document).await;
                        read.insert(document.clone());
                        documents.insert(document, text);
                    }
                }
            }
        }
    }

    async fn load(&self, document: &DocumentRef) -> Option<String> {
        let key = DocumentKey {
            auid: document.auid.as_str().to_owned(),
            owner: document.owner.clone(),
            path: document.name.clone(),
        };
        match self.store.get_document(&key).await {
            Ok(stored) => stored.and_then(|d| String::from_utf8(d.content).ok()),
            Err(error) => {
                warn!(%error, path = %document.path(), "list document not readable");
                None
            }
        }
    }

    /// Services whose expansion read the document `auid`/`owner`/`name`.
    pub fn services_reading(&self, auid: &str, owner: &str, name: &str) -> Vec<(String, String)> {
        let auid = match auid {
            "resource-lists" => Auid::ResourceLists,
            RLS_SERVICES => Auid::RlsServices,
            _ => return Vec::new(),
        };
        let changed = DocumentRef {
            auid,
            owner: owner.to_owned(),
            name: name.to_owned(),
        };
        self.services
            .iter()
            .filter(|(_, s)| s.documents.contains(&changed))
            .map(|(uri, s)| (s.owner.clone(), uri.clone()))
            .collect()
    }

    /// Forgets a service no list subscription uses any more.
    pub fn forget_service(&mut self, service: &str) {
        self.services.remove(service);
    }

    /// Leaves `output` for [`Self::take_backlog`].
    pub fn defer(&mut self, output: Output<Target>) {
        self.backlog.notifies.extend(output.notifies);
        self.backlog.commands.extend(output.commands);
    }

    /// Whether [`Self::take_backlog`] has anything to hand over.
    pub fn has_backlog(&self) -> bool {
        !self.backlog.notifies.is_empty() || !self.backlog.commands.is_empty()
    }

    pub fn take_backlog(&mut self) -> (Vec<Notify<Target>>, Vec<Command>) {
        let backlog = std::mem::take(&mut self.backlog);
        (backlog.notifies, backlog.commands)
    }
}
