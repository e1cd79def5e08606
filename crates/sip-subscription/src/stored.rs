//! A subscription as plain serializable data: the RFC 3261 §12 dialog state (Call-ID, tags,
//! URIs, remote target, route set, CSeq numbers) and the RFC 6665 engine state it needs
//! to go on after a restart. Event packages store it with their own fields beside it
//! (`#[serde(flatten)]`), so every package persists dialogs the same way.
//!
//! How a subscriber is reached is not stored: connections die with the process, so the
//! caller derives a new [`Flow`] from the remote target when it loads a dialog.

use serde::{Deserialize, Serialize};

use crate::{Flow, SubscriptionRecord};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredDialog {
    pub id: u64,
    pub event: String,
    pub list: bool,
    pub event_id: Option<String>,
    pub active: bool,
    pub subscriber: String,
    pub resource: String,
    pub accept: Vec<String>,
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
    pub local_uri: String,
    pub remote_uri: String,
    pub remote_target: String,
    pub route_set: Vec<String>,
    pub local_cseq: u32,
    pub remote_cseq: u32,
    pub reliable: bool,
}

impl StoredDialog {
    /// The storable part of an exported record (its flow and expiry are left out).
    pub fn from_record<D>(r: SubscriptionRecord<D>) -> StoredDialog {
        StoredDialog {
            id: r.id,
            event: r.event,
            list: r.list,
            event_id: r.event_id,
            active: r.active,
            subscriber: r.subscriber,
            resource: r.resource,
            accept: r.accept,
            call_id: r.call_id,
            local_tag: r.local_tag,
            remote_tag: r.remote_tag,
            local_uri: r.local_uri,
            remote_uri: r.remote_uri,
            remote_target: r.remote_target,
            route_set: r.route_set,
            local_cseq: r.local_cseq,
            remote_cseq: r.remote_cseq,
            reliable: r.reliable,
        }
    }

    /// Where the dialog's requests go (RFC 3261 §12.2.1.1, §8.1.2): the first entry of the
    /// route set, else the remote target. A restored dialog is reached there.
    pub fn next_hop(&self) -> &str {
        self.route_set.first().unwrap_or(&self.remote_target)
    }

    /// The record to import, reached over `flow`. NOTIFYs sent after the last save used
    /// CSeq numbers the stored dialog does not know, and RFC 3261 §12.2.1.1 wants them to
    /// keep increasing: `cseq_margin` skips past them.
    pub fn into_record<D>(
        self,
        expires_at: u64,
        flow: Flow<D>,
        cseq_margin: u32,
    ) -> SubscriptionRecord<D> {
        SubscriptionRecord {
            id: self.id,
            event: self.event,
            list: self.list,
            event_id: self.event_id,
            active: self.active,
            expires_at,
            subscriber: self.subscriber,
            resource: self.resource,
            accept: self.accept,
            call_id: self.call_id,
            local_tag: self.local_tag,
            remote_tag: self.remote_tag,
            local_uri: self.local_uri,
            remote_uri: self.remote_uri,
            remote_target: self.remote_target,
            route_set: self.route_set,
            local_cseq: self.local_cseq.saturating_add(cseq_margin),
            remote_cseq: self.remote_cseq,
            reliable: flow.reliable && self.reliable,
            dest: flow.dest,
            via: flow.via,
            contact: flow.contact,
        }
    }
}
