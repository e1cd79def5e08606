//! The agent's state as plain records, so publications (RFC 3903) and subscriptions (RFC 6665
//! dialogs) survive a restart: [`PresenceAgent::export`] after changes, [`PresenceAgent::import`]
//! on start. The engine's and compositor's own records carry the protocol state; what is added
//! here is the package's bookkeeping (who watches whom, winfo versions, xcap-diff selections).
//!
//! How subscribers are reached is not stored: connections die with the process, and listener
//! addresses may change, so the shell derives a new flow from each dialog's next hop: its
//! first route, else its remote target (RFC 3261 §12.2.1.1, §8.1.2 and §18.1.1).

use std::time::Instant;

use bytes::Bytes;
use presence_auth::{Decision, SubHandling};
use publication::PublicationRecord;
use serde::{Deserialize, Serialize};
use simple_payloads::watcherinfo::WatcherEvent;
use sip_subscription::{Flow, StoredDialog, SubId, SubscriptionRecord};

use crate::xcap_diff::Watch;
use crate::{Kind, Notify, PresenceAgent, Published, Shown, PRESENCE};

/// CSeq numbers skipped on import: NOTIFYs sent after the last save used numbers the record
/// does not know, and RFC 3261 §12.2.1.1 wants them to keep increasing. A dialog's CSeq is
/// saved again once it ran [`sip_subscription::CSEQ_SAVE_STEP`] ahead, and one save interval
/// never holds the rest of the margin in NOTIFYs of one dialog (at most one is in flight).
const CSEQ_MARGIN: u32 = 1000;
const _: () = assert!(sip_subscription::CSEQ_SAVE_STEP * 2 <= CSEQ_MARGIN);

/// What a [`StateRecord`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    Publication,
    Subscription,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Publication => "publication",
            RecordKind::Subscription => "subscription",
        }
    }
    pub fn parse(text: &str) -> Option<RecordKind> {
        [RecordKind::Publication, RecordKind::Subscription]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

/// One publication or subscription; `data` is opaque to the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRecord {
    pub kind: RecordKind,
    /// The publication's first entity tag ([`publication::Publication::id`]) or the
    /// subscription id: unique within `kind`.
    pub key: String,
    /// Unix seconds.
    pub expires_at: u64,
    pub data: Vec<u8>,
}

/// A publication's record data: [`PUBLICATION_FORMAT`], `modified` (u64 LE), then the
/// entity tag, event, AOR and content type, each a u32 LE length and its bytes, then the
/// body as received up to the end. JSON, which this replaced, escaped every quote of the
/// PIDF body and cost more than writing the row to SQLite; under load a publication is
/// saved every few modifies.
const PUBLICATION_FORMAT: u8 = 1;

/// A publication as its record holds it.
#[derive(Debug, PartialEq, Eq)]
struct StoredPublication {
    etag: String,
    event: String,
    aor: String,
    content_type: String,
    body: Bytes,
    modified: u64,
}

/// The JSON records earlier versions wrote (first byte `{`), read so that an upgrade keeps
/// the publications saved before it.
#[derive(Deserialize)]
struct JsonPublication {
    etag: String,
    event: String,
    aor: String,
    content_type: String,
    body: String,
    modified: u64,
}

impl StoredPublication {
    fn encode(&self) -> Vec<u8> {
        let fields = [&self.etag, &self.event, &self.aor, &self.content_type];
        let mut data = Vec::with_capacity(
            9 + fields.iter().map(|f| 4 + f.len()).sum::<usize>() + self.body.len(),
        );
        data.push(PUBLICATION_FORMAT);
        data.extend_from_slice(&self.modified.to_le_bytes());
        for field in fields {
            // Header values of one SIP message: far below 4 GiB.
            let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
            data.extend_from_slice(&len.to_le_bytes());
            data.extend_from_slice(field.as_bytes());
        }
        data.extend_from_slice(&self.body);
        data
    }

    /// None for data that is neither format, or cut short.
    fn decode(data: &[u8]) -> Option<StoredPublication> {
        match data.split_first()? {
            (&PUBLICATION_FORMAT, rest) => {
                let (modified, mut rest) = rest.split_first_chunk::<8>()?;
                let mut field = || {
                    let (len, tail) = rest.split_first_chunk::<4>()?;
                    let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
                    let (text, tail) = tail.split_at_checked(len)?;
                    rest = tail;
                    String::from_utf8(text.to_vec()).ok()
                };
                Some(StoredPublication {
                    etag: field()?,
                    event: field()?,
                    aor: field()?,
                    content_type: field()?,
                    modified: u64::from_le_bytes(*modified),
                    body: Bytes::copy_from_slice(rest),
                })
            }
            (b'{', _) => {
                let p: JsonPublication = serde_json::from_slice(data).ok()?;
                Some(StoredPublication {
                    etag: p.etag,
                    event: p.event,
                    aor: p.aor,
                    content_type: p.content_type,
                    body: p.body.into(),
                    modified: p.modified,
                })
            }
            _ => None,
        }
    }
}

#[derive(Serialize, Deserialize)]
enum StoredKind {
    Presence {
        presentity: String,
        watcher: String,
        event: String,
    },
    Winfo {
        owner: String,
        version: u64,
    },
    XcapDiff {
        owner: String,
        watch: Option<String>,
    },
}

#[derive(Serialize, Deserialize)]
struct StoredSubscription {
    #[serde(flatten)]
    dialog: StoredDialog,
    kind: StoredKind,
}

/// What an import brought back that the shell must load before [`PresenceAgent::resume`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// Presentities with publications or watchers: load their policies (`set_policy`).
    pub presentities: Vec<String>,
    /// Owners with xcap-diff subscriptions: load their documents (`set_documents`).
    pub owners: Vec<String>,
}

/// What changed since the last [`PresenceAgent::export_changes`]: rows to write and rows to
/// delete.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub records: Vec<StateRecord>,
    /// `(kind, key)` of records that no longer exist (or never made it to a save).
    pub removed: Vec<(RecordKind, String)>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.removed.is_empty()
    }
}

impl<D: Clone> PresenceAgent<D> {
    /// Every live publication and subscription; `now_unix` is `now` in unix seconds. For a
    /// full rewrite; saves after changes use [`Self::export_changes`].
    pub fn export(&self, now: Instant, now_unix: u64) -> Vec<StateRecord> {
        let mut records: Vec<StateRecord> = self
            .esc
            .export(now, now_unix)
            .into_iter()
            .map(|p| self.publication_record(p))
            .collect();
        records.extend(
            self.engine
                .export(now, now_unix)
                .into_iter()
                .filter_map(|r| self.subscription_record(r)),
        );
        records
    }

    /// Only what changed since the last call (or since [`Self::import`], which counts every
    /// record it was given as changed): publications and subscriptions created, modified or
    /// removed, each serialised once. Its cost follows the changes, not the state held.
    ///
    /// A NOTIFY only advances its dialog's local CSeq, and that alone is reported every
    /// [`sip_subscription::CSEQ_SAVE_STEP`] numbers, not each time: the import skips
    /// [`CSEQ_MARGIN`] numbers ahead, which covers what was sent since the last save.
    pub fn export_changes(&mut self, now: Instant, now_unix: u64) -> Changes {
        let mut changes = Changes::default();
        let (publications, gone) = self.esc.take_changes(now, now_unix);
        for p in publications {
            changes.records.push(self.publication_record(p));
        }
        changes
            .removed
            .extend(gone.into_iter().map(|id| (RecordKind::Publication, id)));
        let (subscriptions, gone) = self.engine.take_changes(now, now_unix);
        for r in subscriptions {
            let id = r.dialog.id;
            match self.subscription_record(r) {
                Some(record) => changes.records.push(record),
                None => changes
                    .removed
                    .push((RecordKind::Subscription, id.to_string())),
            }
        }
        changes.removed.extend(
            gone.into_iter()
                .map(|id| (RecordKind::Subscription, id.0.to_string())),
        );
        changes
    }

    fn publication_record(&self, p: PublicationRecord) -> StateRecord {
        let key = p.id;
        let stored = StoredPublication {
            modified: self.published.get(&p.etag).map_or(0, |p| p.modified),
            body: p.body,
            etag: p.etag,
            event: p.event,
            aor: p.aor,
            content_type: p.content_type,
        };
        StateRecord {
            kind: RecordKind::Publication,
            key,
            expires_at: p.expires_at,
            data: stored.encode(),
        }
    }

    /// None for a subscription the package keeps no bookkeeping for (not stored).
    fn subscription_record(&self, r: SubscriptionRecord<D>) -> Option<StateRecord> {
        let kind = match self.subs.get(&SubId(r.dialog.id))? {
            Kind::Presence {
                presentity,
                watcher,
                event,
                ..
            } => StoredKind::Presence {
                presentity: presentity.clone(),
                watcher: watcher.clone(),
                event: event.as_str().to_owned(),
            },
            Kind::Winfo { owner, version } => StoredKind::Winfo {
                owner: owner.clone(),
                version: *version,
            },
            Kind::XcapDiff { owner, watch } => StoredKind::XcapDiff {
                owner: owner.clone(),
                watch: watch.encode(),
            },
        };
        let expires_at = r.expires_at;
        let stored = StoredSubscription {
            dialog: r.dialog,
            kind,
        };
        Some(StateRecord {
            kind: RecordKind::Subscription,
            key: stored.dialog.id.to_string(),
            expires_at,
            data: serde_json::to_vec(&stored).unwrap_or_default(),
        })
    }

    /// Restores exported state into a fresh agent. `flow` says how to reach a dialog's next
    /// hop ([`StoredDialog::next_hop`]; None drops the subscription). Nothing is sent yet: the shell loads what
    /// [`Restored`] names, then calls [`Self::resume`] for the full-state NOTIFYs RFC 6665
    /// needs after state may have been missed. Undecodable records are skipped.
    pub fn import(
        &mut self,
        records: Vec<StateRecord>,
        flow: impl Fn(&str) -> Option<Flow<D>>,
        now: Instant,
        now_unix: u64,
    ) -> Restored {
        let mut publications = Vec::new();
        let mut subscriptions = Vec::new();
        for record in records {
            // Every row read back is rewritten (restored subscriptions carry their skipped
            // CSeq) or deleted (not restored) by the next `export_changes`.
            match record.kind {
                RecordKind::Publication => self.esc.touch(&record.key),
                RecordKind::Subscription => {
                    if let Ok(id) = record.key.parse() {
                        self.engine.touch(SubId(id));
                    }
                }
            }
            match record.kind {
                RecordKind::Publication => {
                    let Some(p) = StoredPublication::decode(&record.data) else {
                        continue;
                    };
                    let published = Published {
                        modified: p.modified,
                        document: None,
                    };
                    self.published.insert(p.etag.clone(), published);
                    self.sequence = self.sequence.max(p.modified);
                    publications.push(PublicationRecord {
                        id: record.key,
                        etag: p.etag,
                        event: p.event,
                        aor: p.aor,
                        content_type: p.content_type,
                        body: p.body,
                        expires_at: record.expires_at,
                    });
                }
                RecordKind::Subscription => {
                    let Ok(s) = serde_json::from_slice::<StoredSubscription>(&record.data) else {
                        continue;
                    };
                    let Some(flow) = flow(s.dialog.next_hop()) else {
                        continue;
                    };
                    subscriptions.push((s, flow, record.expires_at));
                }
            }
        }
        let mut restored = Restored::default();
        for p in &publications {
            if p.event == PRESENCE && !restored.presentities.contains(&p.aor) {
                restored.presentities.push(p.aor.clone());
            }
        }
        self.esc.import(publications, now, now_unix);
        let mut engine_records = Vec::new();
        for (s, flow, expires_at) in subscriptions {
            let id = SubId(s.dialog.id);
            let kind = match s.kind {
                StoredKind::Presence {
                    presentity,
                    watcher,
                    event,
                } => {
                    // What the rules said is recomputed once the policy is loaded; until
                    // then the engine's state stands for it, and `set_policy` moves on
                    // from there.
                    let handling = if s.dialog.active {
                        SubHandling::Allow
                    } else {
                        SubHandling::Confirm
                    };
                    Kind::Presence {
                        presentity,
                        watcher,
                        decision: Decision {
                            handling,
                            transformations: None,
                        },
                        event: WatcherEvent::parse(&event).unwrap_or(WatcherEvent::Subscribe),
                    }
                }
                StoredKind::Winfo { owner, version } => Kind::Winfo { owner, version },
                StoredKind::XcapDiff { owner, watch } => Kind::XcapDiff {
                    owner,
                    watch: Watch::decode(watch.as_deref()),
                },
            };
            match &kind {
                Kind::Presence { presentity, .. }
                | Kind::Winfo {
                    owner: presentity, ..
                } => {
                    let entry = self.presentities.entry(presentity.clone()).or_default();
                    if let Kind::Presence { decision, .. } = &kind {
                        entry.watchers.insert(id, Shown::of(decision));
                    } else {
                        entry.winfo.insert(id);
                    }
                    if !restored.presentities.contains(presentity) {
                        restored.presentities.push(presentity.clone());
                    }
                }
                Kind::XcapDiff { owner, .. } => {
                    self.documents
                        .entry(owner.clone())
                        .or_default()
                        .subs
                        .insert(id);
                    if !restored.owners.contains(owner) {
                        restored.owners.push(owner.clone());
                    }
                }
            }
            self.subs.insert(id, kind);
            engine_records.push(s.dialog.into_record(expires_at, flow, CSEQ_MARGIN));
        }
        self.held = self.engine.import(engine_records, now, now_unix);
        // Subscriptions the engine skipped (expired meanwhile) leave no bookkeeping behind.
        let dropped: Vec<SubId> = self
            .subs
            .keys()
            .copied()
            .filter(|id| self.engine.subscription(*id).is_none())
            .collect();
        for id in dropped {
            self.subs.remove(&id);
            for p in self.presentities.values_mut() {
                p.watchers.remove(&id);
                p.winfo.remove(&id);
            }
            for d in self.documents.values_mut() {
                d.subs.remove(&id);
            }
        }
        restored
    }

    /// After an import and the loads it asked for: the restored subscriptions' NOTIFYs.
    pub fn resume(&mut self, now: Instant) -> Vec<Notify<D>> {
        let actions = std::mem::take(&mut self.held);
        let mut out = Vec::new();
        self.run(actions, now, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(body: &[u8]) -> StoredPublication {
        StoredPublication {
            etag: "5c1b7e".to_owned(),
            event: "presence".to_owned(),
            aor: "alice@example.com".to_owned(),
            content_type: "application/pidf+xml;charset=\"UTF-8\"".to_owned(),
            body: Bytes::copy_from_slice(body),
            modified: 0x0102_0304_0506_0708,
        }
    }

    #[test]
    fn a_publication_record_reads_back_as_written_and_a_cut_one_not_at_all() {
        let body = b"<?xml version=\"1.0\"?>\n<presence entity=\"sip:alice%40example.com\">\r\n\
                     <note xml:lang=\"en\">\"quoted\" \\ \xc3\xa9</note></presence>";
        let original = stored(body);
        let data = original.encode();
        assert_eq!(data[0], PUBLICATION_FORMAT);
        assert!(data.ends_with(body), "the body is kept as received");
        assert_eq!(StoredPublication::decode(&data), Some(original));
        // Every cut inside the fields fails; a cut inside the body only shortens the body.
        let body_start = data.len() - body.len();
        for end in 0..body_start {
            assert_eq!(
                StoredPublication::decode(&data[..end]),
                None,
                "cut at {end}"
            );
        }
        assert_eq!(
            StoredPublication::decode(&data[..body_start]),
            Some(stored(b""))
        );
        let mut bad_length = data.clone();
        bad_length[9..13].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(StoredPublication::decode(&bad_length), None);
        assert_eq!(
            StoredPublication::decode(b"\x02rest"),
            None,
            "unknown format"
        );
    }

    #[test]
    fn a_publication_saved_as_json_by_an_earlier_version_is_read() {
        let json = br#"{"etag":"5c1b7e","event":"presence","aor":"alice@example.com","content_type":"application/pidf+xml;charset=\"UTF-8\"","body":"<presence/>","modified":72623859790382856}"#;
        assert_eq!(
            StoredPublication::decode(json),
            Some(stored(b"<presence/>"))
        );
        assert_eq!(StoredPublication::decode(&json[..40]), None);
    }
}
