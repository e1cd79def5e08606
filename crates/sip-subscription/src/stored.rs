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
    /// False: pending.
    pub active: bool,
    pub subscriber: String,
    pub resource: String,
    pub accept: Vec<String>,
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
    /// From value of our NOTIFYs (with our tag).
    pub local_uri: String,
    /// To value of our NOTIFYs (the subscriber's From, with its tag).
    pub remote_uri: String,
    pub remote_target: String,
    pub route_set: Vec<String>,
    pub local_cseq: u32,
    pub remote_cseq: u32,
    pub reliable: bool,
}

impl StoredDialog {
    /// Where the dialog's requests go (RFC 3261 §12.2.1.1, §8.1.2): the first entry of the
    /// route set, else the remote target. A restored dialog is reached there.
    pub fn next_hop(&self) -> &str {
        self.route_set.first().unwrap_or(&self.remote_target)
    }

    /// The record to import, reached over `flow`. NOTIFYs sent after the last save used
    /// CSeq numbers the stored dialog does not know, and RFC 3261 §12.2.1.1 wants them to
    /// keep increasing: `cseq_margin` skips past them.
    pub fn into_record<D>(
        mut self,
        expires_at: u64,
        mut flow: Flow<D>,
        cseq_margin: u32,
    ) -> SubscriptionRecord<D> {
        self.local_cseq = self.local_cseq.saturating_add(cseq_margin);
        flow.reliable &= self.reliable;
        SubscriptionRecord {
            dialog: self,
            expires_at,
            flow,
        }
    }
}
