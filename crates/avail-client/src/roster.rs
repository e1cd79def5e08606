//! The availability model (blink-compat §4.2, §4.4, §4.5, §5.1–§5.3), sans-IO:
//!
//! - [`BuddyList`]: the RLS subscription's state from multipart/related RLMI NOTIFYs (RFC 4662
//!   §5): the first NOTIFY must be full state, a version not above the last is ignored, a
//!   partial one that skips versions asks for a re-subscription. Resources from direct
//!   per-contact subscriptions (used when no RLS answers) live beside them.
//! - [`contact_availability`]: Blink Qt's rule over every PIDF whose resource matches one of the
//!   contact's URIs (minus `sip:`), with its colours; devices and their GRUUs; pending.
//! - [`Watchers`]: presence.winfo (RFC 3857/3858) with the same version rules; pending watchers
//!   are contact requests, active ones the subscribers to the user's availability.
//! - [`changed_documents`]: which XCAP documents an xcap-diff NOTIFY (RFC 5875) says changed.

use std::collections::BTreeMap;

use serde::Serialize;
use simple_payloads::multipart::Related;
use simple_payloads::rlmi::{InstanceState, Rlmi};
use simple_payloads::watcherinfo::{self, WatcherInfo, WatcherStatus};
use simple_payloads::xcap_diff::XcapDiff;

use crate::account::Account;
use crate::documents::DocumentKind;
use crate::pidf_view::{winning_tuple, ExtendedStatus, PresenceDocument};
use crate::resource_lists::{AddressBook, Contact, Policy};

/// Resources kept per list; more in one NOTIFY are ignored.
pub const MAX_RESOURCES: usize = 10_000;
/// PIDF instances kept per resource.
const MAX_INSTANCES: usize = 16;
/// Watchers kept.
pub const MAX_WATCHERS: usize = 10_000;

/// What a NOTIFY did to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The state changed; these resource URIs (or watcher URIs) were touched.
    Changed(Vec<String>),
    /// Ignored: an old version, or a body type this subscription does not use.
    Ignored(&'static str),
    /// The subscription lost track of the state and must be renewed.
    Resubscribe(String),
}

/// One resource of the buddy list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resource {
    pub uri: String,
    pub name: Option<String>,
    /// Instances combined: active > pending > terminated.
    #[serde(serialize_with = "serialize_state")]
    pub state: InstanceState,
    pub documents: Vec<PresenceDocument>,
}

fn serialize_state<S: serde::Serializer>(state: &InstanceState, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(state.as_str())
}

fn combine(states: impl Iterator<Item = InstanceState>) -> InstanceState {
    states.fold(InstanceState::Terminated, |best, s| match (best, s) {
        (InstanceState::Active, _) | (_, InstanceState::Active) => InstanceState::Active,
        (InstanceState::Pending, _) | (_, InstanceState::Pending) => InstanceState::Pending,
        _ => InstanceState::Terminated,
    })
}

/// The buddy-list state.
#[derive(Debug, Clone, Default)]
pub struct BuddyList {
    version: Option<u32>,
    list: BTreeMap<String, Resource>,
    direct: BTreeMap<String, Resource>,
}

impl BuddyList {
    /// A new subscription (or re-subscription) starts: its first NOTIFY must be full state.
    pub fn restart(&mut self) {
        self.version = None;
    }

    /// Whether a list NOTIFY was ever applied since the last restart.
    pub fn has_list_state(&self) -> bool {
        self.version.is_some()
    }

    /// Applies the body of a NOTIFY of the RLS subscription.
    pub fn apply_list_notify(&mut self, content_type: Option<&str>, body: &[u8]) -> Applied {
        let Some(content_type) = content_type else {
            return Applied::Ignored("no body");
        };
        let Ok(related) = Related::parse(content_type, body) else {
            // A single PIDF on a list dialog is ignored (§4.2).
            return Applied::Ignored("not multipart/related");
        };
        let Some(root) = related.root() else {
            return Applied::Resubscribe("no RLMI root part".into());
        };
        let rlmi = match std::str::from_utf8(&root.body)
            .map_err(|e| e.to_string())
            .and_then(|t| Rlmi::parse(t).map_err(|e| e.to_string()))
        {
            Ok(rlmi) => rlmi,
            Err(e) => return Applied::Resubscribe(format!("unreadable RLMI: {e}")),
        };
        match self.version {
            None if !rlmi.full_state => {
                return Applied::Resubscribe("first NOTIFY is not full state".into())
            }
            Some(last) if rlmi.version <= last => return Applied::Ignored("old version"),
            Some(last) if !rlmi.full_state && rlmi.version != last + 1 => {
                return Applied::Resubscribe(format!(
                    "version {} after {last}: NOTIFYs were lost",
                    rlmi.version
                ))
            }
            _ => {}
        }
        self.version = Some(rlmi.version);
        if rlmi.full_state {
            self.list.clear();
        }
        let mut touched = Vec::new();
        for resource in rlmi.resources.iter().take(MAX_RESOURCES) {
            let documents = resource
                .instances
                .iter()
                .filter_map(|i| i.cid.as_deref())
                .filter_map(|cid| related.part(cid))
                .filter_map(|part| std::str::from_utf8(&part.body).ok())
                .filter_map(|text| PresenceDocument::parse(text).ok())
                .take(MAX_INSTANCES)
                .collect();
            let entry = Resource {
                uri: resource.uri.clone(),
                name: resource.names.first().map(|n| n.text.clone()),
                state: combine(resource.instances.iter().map(|i| i.state)),
                documents,
            };
            touched.push(resource.uri.clone());
            if self.list.len() < MAX_RESOURCES || self.list.contains_key(&resource.uri) {
                self.list.insert(resource.uri.clone(), entry);
            }
        }
        Applied::Changed(touched)
    }

    /// Applies a NOTIFY of a direct subscription to `uri` (a single PIDF).
    pub fn apply_direct_notify(
        &mut self,
        uri: &str,
        state: InstanceState,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Applied {
        let pidf = content_type.is_some_and(|c| {
            c.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/pidf+xml"))
        });
        let documents = if pidf {
            match std::str::from_utf8(body).ok().map(PresenceDocument::parse) {
                Some(Ok(document)) => vec![document],
                _ => return Applied::Ignored("invalid PIDF"),
            }
        } else {
            Vec::new()
        };
        if self.direct.len() >= MAX_RESOURCES && !self.direct.contains_key(uri) {
            return Applied::Ignored("too many resources");
        }
        self.direct.insert(
            uri.to_owned(),
            Resource {
                uri: uri.to_owned(),
                name: None,
                state,
                documents,
            },
        );
        Applied::Changed(vec![uri.to_owned()])
    }

    pub fn forget_direct(&mut self, uri: &str) {
        self.direct.remove(uri);
    }

    /// Every resource matching `uri` (both compared without `sip:`/`sips:`).
    pub fn matching<'a>(&'a self, uri: &'a str) -> impl Iterator<Item = &'a Resource> + 'a {
        let wanted = strip_scheme(uri);
        self.list
            .values()
            .chain(self.direct.values())
            .filter(move |r| strip_scheme(&r.uri) == wanted)
    }
}

/// The address as Blink compares it (§4.2, §5.1): without a `sip:` or `sips:` scheme.
pub fn strip_scheme(uri: &str) -> &str {
    uri.strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))
        .unwrap_or(uri)
}

/// A contact's state as the UI shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ContactState {
    Available,
    Away,
    Busy,
    Offline,
    /// No PIDF at all: no indicator.
    None,
}

impl ContactState {
    pub fn as_str(self) -> &'static str {
        match self {
            ContactState::Available => "available",
            ContactState::Away => "away",
            ContactState::Busy => "busy",
            ContactState::Offline => "offline",
            ContactState::None => "none",
        }
    }

    /// Blink Qt's indicator colour; `None` is transparent.
    pub fn colour(self) -> Option<&'static str> {
        match self {
            ContactState::Available => Some("#00ff00"),
            ContactState::Away => Some("#ffff00"),
            ContactState::Busy => Some("#ff0000"),
            ContactState::Offline => Some("#d0d0d0"),
            ContactState::None => None,
        }
    }
}

impl From<ExtendedStatus> for ContactState {
    fn from(s: ExtendedStatus) -> ContactState {
        match s {
            ExtendedStatus::Available => ContactState::Available,
            ExtendedStatus::Away => ContactState::Away,
            ExtendedStatus::Busy => ContactState::Busy,
            ExtendedStatus::Offline => ContactState::Offline,
        }
    }
}

/// One device a contact publishes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContactDevice {
    pub tuple_id: String,
    pub state: ContactState,
    pub note: Option<String>,
    /// The device's contact (its GRUU when it has one): where to start a session to it.
    pub contact: Option<String>,
    pub user_agent: Option<String>,
    pub hostname: Option<String>,
    pub time_offset: Option<i32>,
    pub idle: bool,
}

/// What the contact list shows for one contact.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Availability {
    pub state: ContactState,
    pub colour: Option<&'static str>,
    pub note: Option<String>,
    /// Icon URL of the winning tuple, fragment included.
    pub icon: Option<String>,
    /// Some resource of the contact awaits authorization.
    pub pending: bool,
    pub devices: Vec<ContactDevice>,
}

/// Blink Qt's rule (§5.1) over every resource matching one of the contact's URIs.
pub fn contact_availability(contact: &Contact, list: &BuddyList) -> Availability {
    let resources: Vec<&Resource> = contact
        .uris
        .iter()
        .flat_map(|u| list.matching(&u.uri))
        .collect();
    let documents = resources.iter().flat_map(|r| r.documents.iter());
    let winner = winning_tuple(documents.clone());
    let state = winner.map_or(ContactState::None, |t| t.state().into());
    let devices = documents
        .flat_map(|d| d.tuples.iter())
        .map(|t| ContactDevice {
            tuple_id: t.id.clone(),
            state: t.state().into(),
            note: t.notes.first().cloned(),
            contact: t.contact.clone(),
            user_agent: t.device_info.as_ref().and_then(|d| d.user_agent.clone()),
            hostname: t.device_info.as_ref().and_then(|d| d.hostname.clone()),
            time_offset: t.device_info.as_ref().and_then(|d| d.time_offset),
            idle: t.user_input.as_ref().is_some_and(|u| u.idle),
        })
        .collect();
    Availability {
        state,
        colour: state.colour(),
        note: winner.and_then(|t| t.notes.first().cloned()),
        icon: winner.and_then(|t| t.icon.clone()),
        pending: resources.iter().any(|r| r.state == InstanceState::Pending),
        devices,
    }
}

/// One watcher of the user's presence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WatcherEntry {
    pub id: String,
    pub uri: String,
    pub status: &'static str,
    pub display_name: Option<String>,
}

fn status_word(status: WatcherStatus) -> &'static str {
    match status {
        WatcherStatus::Pending => "pending",
        WatcherStatus::Active => "active",
        WatcherStatus::Waiting => "waiting",
        WatcherStatus::Terminated => "terminated",
    }
}

/// The presence.winfo state of the user's own AOR.
#[derive(Debug, Clone)]
pub struct Watchers {
    resource: String,
    version: Option<u64>,
    watchers: BTreeMap<String, WatcherEntry>,
}

impl Watchers {
    /// `resource` is the user's AOR, `sip:user@domain`: only that list is read (§4.4).
    pub fn new(resource: &str) -> Watchers {
        Watchers {
            resource: resource.to_owned(),
            version: None,
            watchers: BTreeMap::new(),
        }
    }

    pub fn restart(&mut self) {
        self.version = None;
    }

    pub fn apply_notify(&mut self, body: &[u8]) -> Applied {
        if body.is_empty() {
            return Applied::Ignored("no body");
        }
        let info = match std::str::from_utf8(body)
            .map_err(|e| e.to_string())
            .and_then(|t| WatcherInfo::parse(t).map_err(|e| e.to_string()))
        {
            Ok(info) => info,
            Err(e) => return Applied::Resubscribe(format!("unreadable watcher info: {e}")),
        };
        let full = info.state == watcherinfo::State::Full;
        match self.version {
            None if !full => return Applied::Resubscribe("first NOTIFY is not full state".into()),
            Some(last) if info.version <= last => return Applied::Ignored("old version"),
            Some(last) if !full && info.version != last + 1 => {
                return Applied::Resubscribe(format!(
                    "version {} after {last}: NOTIFYs were lost",
                    info.version
                ))
            }
            _ => {}
        }
        self.version = Some(info.version);
        if full {
            self.watchers.clear();
        }
        let mut touched = Vec::new();
        let ours = info
            .lists
            .iter()
            .filter(|l| l.resource == self.resource && l.package == "presence");
        for watcher in ours.flat_map(|l| l.watchers.iter()) {
            if self.watchers.len() >= MAX_WATCHERS && !self.watchers.contains_key(&watcher.id) {
                break;
            }
            touched.push(watcher.uri.clone());
            self.watchers.insert(
                watcher.id.clone(),
                WatcherEntry {
                    id: watcher.id.clone(),
                    uri: watcher.uri.clone(),
                    status: status_word(watcher.status),
                    display_name: watcher.display_name.clone(),
                },
            );
        }
        Applied::Changed(touched)
    }

    /// New contact requests (§4.4): pending or waiting watchers that are not the user and
    /// have no contact or policy-element with a non-`default` presence policy.
    pub fn requests(&self, book: &AddressBook) -> Vec<&WatcherEntry> {
        let decided = |uri: &str| {
            let uri = strip_scheme(uri);
            book.contacts.iter().any(|c| {
                c.presence.policy != Policy::Default
                    && c.uris.iter().any(|u| strip_scheme(&u.uri) == uri)
            }) || book
                .policies
                .iter()
                .any(|p| p.presence.policy != Policy::Default && strip_scheme(&p.uri) == uri)
        };
        let mut seen = Vec::new();
        self.watchers
            .values()
            .filter(|w| matches!(w.status, "pending" | "waiting"))
            .filter(|w| strip_scheme(&w.uri) != strip_scheme(&self.resource))
            .filter(|w| !decided(&w.uri))
            .filter(|w| {
                let new = !seen.contains(&&w.uri);
                seen.push(&w.uri);
                new
            })
            .collect()
    }

    /// Active watchers: who currently sees the user's availability.
    pub fn active(&self) -> Vec<&WatcherEntry> {
        self.watchers
            .values()
            .filter(|w| w.status == "active")
            .collect()
    }
}

/// The documents an xcap-diff NOTIFY lists whose new ETag differs from `etag_of` (bare, without
/// quotes); `None` when the body is unreadable, which calls for a full re-fetch (§4.5).
pub fn changed_documents(
    body: &[u8],
    account: &Account,
    etag_of: impl Fn(DocumentKind) -> Option<String>,
) -> Option<Vec<DocumentKind>> {
    let diff = XcapDiff::parse(std::str::from_utf8(body).ok()?).ok()?;
    let mut changed = Vec::new();
    for document in &diff.documents {
        let sel = simple_payloads::decode_any_uri(&document.sel);
        let relative = sel
            .strip_prefix(account.xcap_root.as_str())
            .unwrap_or(&sel)
            .trim_start_matches('/');
        let Some(kind) = DocumentKind::ALL
            .into_iter()
            .find(|k| account.document_path(*k).trim_start_matches('/') == relative)
        else {
            continue;
        };
        let cached = etag_of(kind).map(|e| e.trim_matches('"').to_owned());
        if cached != document.new_etag && !changed.contains(&kind) {
            changed.push(kind);
        }
    }
    Some(changed)
}

#[cfg(test)]
mod tests;
