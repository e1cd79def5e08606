//! List subscriptions as plain records, so RFC 6665 dialogs of the RLS survive a restart:
//! [`RlsAgent::export_changes`] after changes, [`RlsAgent::import`] on start.
//!
//! A record holds the dialog (the engine's record), the service URI, the subscriber and the
//! next RLMI version; not the list's members or their states, which the shell expands and
//! watches afresh. As in the presence agent, how the subscriber is reached is derived anew
//! from the dialog's next hop (RFC 3261 §12.2.1.1, §18.1.1), and NOTIFYs sent after the last save
//! are covered by skipping CSeq and RLMI version numbers ahead: both advance once per NOTIFY
//! of a list dialog, and the engine reports a dialog again every
//! [`sip_subscription::CSEQ_SAVE_STEP`] NOTIFYs, so RFC 4662 §5.2's increasing versions and
//! RFC 3261 §12.2.1.1's increasing CSeqs both hold after the restart.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use sip_subscription::{Flow, StoredDialog, SubId, SubscriptionRecord};

use crate::RlsAgent;

/// Numbers skipped on import, for CSeq and RLMI version alike.
const MARGIN: u32 = 1000;
const _: () = assert!(sip_subscription::CSEQ_SAVE_STEP * 2 <= MARGIN);

/// One list subscription; `data` is opaque to the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRecord {
    /// The subscription id, unique among list subscriptions.
    pub key: String,
    /// Unix seconds.
    pub expires_at: u64,
    pub data: Vec<u8>,
}

/// What changed since the last [`RlsAgent::export_changes`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ListChanges {
    pub records: Vec<ListRecord>,
    /// Keys of records that no longer exist.
    pub removed: Vec<String>,
}

impl ListChanges {
    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.removed.is_empty()
    }
}

/// The services whose lists the shell expands and hands to
/// [`RlsAgent::on_list_changed`] before [`RlsAgent::resume`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Restored {
    pub services: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct StoredListSubscription {
    #[serde(flatten)]
    dialog: StoredDialog,
    service: String,
    watcher: String,
    version: u32,
}

impl<D: Clone> RlsAgent<D> {
    /// Every live list subscription, for a full rewrite.
    pub fn export(&self, now: Instant, now_unix: u64) -> Vec<ListRecord> {
        self.engine
            .export(now, now_unix)
            .into_iter()
            .filter_map(|r| self.record(r))
            .collect()
    }

    /// Only the subscriptions created, changed or gone since the last call (or since
    /// [`Self::import`], which counts every record it was given as changed).
    pub fn export_changes(&mut self, now: Instant, now_unix: u64) -> ListChanges {
        let mut changes = ListChanges::default();
        let (records, gone) = self.engine.take_changes(now, now_unix);
        for r in records {
            let id = r.dialog.id;
            match self.record(r) {
                Some(record) => changes.records.push(record),
                None => changes.removed.push(id.to_string()),
            }
        }
        changes
            .removed
            .extend(gone.into_iter().map(|id| id.0.to_string()));
        changes
    }

    fn record(&self, r: SubscriptionRecord<D>) -> Option<ListRecord> {
        let sub = self.subs.get(&SubId(r.dialog.id))?;
        let (key, expires_at) = (r.dialog.id.to_string(), r.expires_at);
        let stored = StoredListSubscription {
            dialog: r.dialog,
            service: sub.service.clone(),
            watcher: sub.subscriber.clone(),
            version: sub.version,
        };
        Some(ListRecord {
            key,
            expires_at,
            data: serde_json::to_vec(&stored).ok()?,
        })
    }

    /// Restores exported subscriptions into a fresh agent. `flow` says how to reach a
    /// dialog's next hop ([`StoredDialog::next_hop`]; None drops it). Nothing is sent yet: the shell expands the
    /// services [`Restored`] names, passes each list to [`Self::on_list_changed`] (running the
    /// Watch commands it returns), then calls [`Self::resume`] for the full-state NOTIFYs.
    /// Undecodable and expired records are skipped.
    pub fn import(
        &mut self,
        records: Vec<ListRecord>,
        flow: impl Fn(&str) -> Option<Flow<D>>,
        now: Instant,
        now_unix: u64,
    ) -> Restored {
        let mut engine_records = Vec::new();
        let mut restored = Restored::default();
        for record in records {
            // Every row read back is rewritten or deleted by the next `export_changes`.
            if let Ok(id) = record.key.parse() {
                self.engine.touch(SubId(id));
            }
            let Ok(s) = serde_json::from_slice::<StoredListSubscription>(&record.data) else {
                continue;
            };
            let Some(flow) = flow(s.dialog.next_hop()) else {
                continue;
            };
            if !restored.services.contains(&s.service) {
                restored.services.push(s.service.clone());
            }
            self.restore(
                SubId(s.dialog.id),
                s.service,
                s.watcher,
                s.version.wrapping_add(MARGIN),
            );
            engine_records.push(s.dialog.into_record(record.expires_at, flow, MARGIN));
        }
        self.held = self.engine.import(engine_records, now, now_unix);
        // Subscriptions the engine skipped (expired meanwhile) leave nothing behind.
        let dropped: Vec<SubId> = self
            .subs
            .keys()
            .copied()
            .filter(|id| self.engine.subscription(*id).is_none())
            .collect();
        for id in dropped {
            self.ended(id, &mut Vec::new());
        }
        restored.services.retain(|service| {
            let key = crate::expand::service_key(service);
            self.subs
                .values()
                .any(|sub| crate::expand::service_key(&sub.service) == key)
        });
        restored
    }
}
