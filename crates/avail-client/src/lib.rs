//! Avail's client library. This part is the XCAP manager of blink-compat §2: the documents Blink
//! keeps on the XCAP server (§1.1), normalised exactly as the SIP SIMPLE SDK does (§1.2–§1.6),
//! a persistent journal of the user's operations replayed on freshly fetched documents (§2.2,
//! §8 item 3), and a thin async HTTP shell with digest authentication (§2.1, RFC 7616) and
//! conditional requests (RFC 4825 §7.11, RFC 7232).
//!
//! The core ([`resource_lists`], [`rls_services`], [`pres_rules`], [`content`], [`journal`],
//! [`documents`]) is sans-IO: it turns fetched bodies plus operations into bodies to write. The
//! shell ([`http`], [`manager`]) only moves bytes, keeps the ETag cache and the journal file.
//!
//! The presence side is sans-IO too: [`config`] (the account file, §8 items 1–2),
//! [`discovery`] (XCAP TXT record selection, §2.1, and RFC 3263 SRV selection through
//! `sip-locate`, §6; its DNS lookups are thin), [`presence`] (the user's state machine and the PIDF it publishes, §3.2–§3.3, §5.4),
//! [`pidf_view`] (contacts' PIDF as Blink reads it, §5.5) and [`roster`] (RLS, watcher info
//! and xcap-diff NOTIFYs turned into contact availability and requests, §4.2–§4.5, §5.1).

pub mod account;
pub mod avatar;
pub mod config;
pub mod content;
pub mod discovery;
pub mod documents;
pub mod http;
pub mod icons;
pub mod ids;
pub mod journal;
pub mod manager;
pub mod pidf_view;
pub mod pres_rules;
pub mod presence;
pub mod resource_lists;
pub mod rls_services;
pub mod roster;
pub mod xml;

pub use account::Account;
pub use documents::{DocumentKind, Fetched, Update};
pub use journal::{Journal, Operation};
pub use manager::{ManagerError, Settings, Snapshot, SyncReport, TlsMode, XcapManager};

/// Namespaces of the documents the manager reads and writes.
pub mod ns {
    pub const RL: &str = "urn:ietf:params:xml:ns:resource-lists";
    pub const ADDRESSBOOK: &str = "urn:ag-projects:xml:ns:addressbook";
    /// Blink's attributes namespace (blink-compat §1.2), not the SDK default.
    pub const BLINK: &str = "urn:ag-projects:blink:xml:ns:addressbook";
    pub const RLS: &str = "urn:ietf:params:xml:ns:rls-services";
    pub const CP: &str = "urn:ietf:params:xml:ns:common-policy";
    pub const PR: &str = "urn:ietf:params:xml:ns:pres-rules";
    pub const OCP: &str = "urn:oma:xml:xdm:common-policy";
    pub const PIDF: &str = "urn:ietf:params:xml:ns:pidf";
    pub const DM: &str = "urn:ietf:params:xml:ns:pidf:data-model";
    pub const RPID: &str = "urn:ietf:params:xml:ns:pidf:rpid";
    pub const CIPID: &str = "urn:ietf:params:xml:ns:pidf:cipid";
    pub const CAPS: &str = "urn:ietf:params:xml:ns:pidf:caps";
    pub const AGP_CAPS: &str = "urn:ag-projects:xml:ns:pidf:caps";
    pub const AGP_PIDF: &str = "urn:ag-projects:xml:ns:pidf";
    pub const PRES_CONTENT: &str = "urn:oma:xml:prs:pres-content";
    pub const XCAP_CAPS: &str = "urn:ietf:params:xml:ns:xcap-caps";
}
