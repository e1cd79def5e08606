//! The documents Blink keeps (blink-compat §1.1) and the sans-IO update step of §2.2 items 3–4:
//! fetched bodies → normalised (§1.2–§1.6) → journal applied → bodies to write, in Blink's write
//! order. A document whose normalised form equals what the server holds is not written.

use std::collections::BTreeMap;

use simple_payloads::{validate, Usage};

use crate::account::Account;
use crate::content::{offline_document, Icon};
use crate::journal::Operation;
use crate::xml::XmlError;
use crate::{pres_rules, resource_lists, rls_services};

/// A document the manager handles. Declaration order is Blink's write order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DocumentKind {
    ResourceLists,
    RlsServices,
    PresRules,
    PidfManipulation,
    StatusIcon,
}

impl DocumentKind {
    pub const ALL: [DocumentKind; 5] = [
        DocumentKind::ResourceLists,
        DocumentKind::RlsServices,
        DocumentKind::PresRules,
        DocumentKind::PidfManipulation,
        DocumentKind::StatusIcon,
    ];

    pub fn auid(self) -> &'static str {
        match self {
            DocumentKind::ResourceLists => "resource-lists",
            DocumentKind::RlsServices => "rls-services",
            DocumentKind::PresRules => "org.openmobilealliance.pres-rules",
            DocumentKind::PidfManipulation => "pidf-manipulation",
            DocumentKind::StatusIcon => "org.openmobilealliance.pres-content",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            DocumentKind::ResourceLists => "application/resource-lists+xml",
            DocumentKind::RlsServices => "application/rls-services+xml",
            DocumentKind::PresRules => "application/auth-policy+xml",
            DocumentKind::PidfManipulation => "application/pidf+xml",
            DocumentKind::StatusIcon => "application/vnd.oma.pres-content+xml",
        }
    }

    pub fn usage(self) -> Usage {
        match self {
            DocumentKind::ResourceLists => Usage::ResourceLists,
            DocumentKind::RlsServices => Usage::RlsServices,
            DocumentKind::PresRules => Usage::OmaPresRules,
            DocumentKind::PidfManipulation => Usage::PidfManipulation,
            DocumentKind::StatusIcon => Usage::OmaPresContent,
        }
    }

    /// The three documents without which presence stays off (blink-compat §2.2 item 1).
    pub fn required(self) -> bool {
        matches!(
            self,
            DocumentKind::ResourceLists | DocumentKind::RlsServices | DocumentKind::PresRules
        )
    }
}

/// The server's current copies of the supported documents (`None`: it has none).
pub type Fetched = BTreeMap<DocumentKind, Option<String>>;

/// One write: a new body, or `None` for a DELETE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub kind: DocumentKind,
    pub body: Option<String>,
}

/// Why no update could be planned.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{0:?} document unreadable: {1}")]
    Unreadable(DocumentKind, XmlError),
    #[error("produced an invalid {0:?} document: {1}")]
    Invalid(DocumentKind, simple_payloads::ValidationError),
}

fn read<T>(kind: DocumentKind, r: Result<T, XmlError>) -> Result<T, PlanError> {
    r.map_err(|e| PlanError::Unreadable(kind, e))
}

/// Normalises the fetched documents, applies `operations`, and returns the writes needed, in
/// write order. Only documents present in `fetched` (the supported ones) are touched.
pub fn plan(
    account: &Account,
    fetched: &Fetched,
    operations: &[Operation],
) -> Result<Vec<Update>, PlanError> {
    let mut updates = Vec::new();
    let mut push = |kind: DocumentKind, before: Option<String>, after: Option<String>| {
        if before != after {
            updates.push(Update { kind, body: after });
        }
    };
    for (&kind, body) in fetched {
        let body = body.as_deref();
        match kind {
            DocumentKind::ResourceLists => {
                let mut doc = read(kind, resource_lists::parse(body))?;
                let before = body.map(|_| doc.serialize(&resource_lists::STYLE));
                resource_lists::normalise(&mut doc, account);
                for op in operations {
                    op.apply_to_resource_lists(&mut doc);
                }
                resource_lists::normalise(&mut doc, account);
                push(kind, before, Some(doc.serialize(&resource_lists::STYLE)));
            }
            DocumentKind::RlsServices => {
                let mut doc = read(kind, rls_services::parse(body))?;
                let before = body.map(|_| doc.serialize(&rls_services::STYLE));
                rls_services::normalise(&mut doc, account);
                push(kind, before, Some(doc.serialize(&rls_services::STYLE)));
            }
            DocumentKind::PresRules => {
                let mut doc = read(kind, pres_rules::parse(body))?;
                let before = body.map(|_| doc.serialize(&pres_rules::STYLE));
                let policy = operations.iter().rev().find_map(|op| match op {
                    Operation::SetDefaultPolicy { policy } => Some(*policy),
                    _ => None,
                });
                pres_rules::normalise(&mut doc, account, policy);
                push(kind, before, Some(doc.serialize(&pres_rules::STYLE)));
            }
            DocumentKind::PidfManipulation => {
                let note = operations.iter().rev().find_map(|op| match op {
                    Operation::SetOfflineNote { note } => Some(note),
                    _ => None,
                });
                if let Some(note) = note {
                    let after = note.as_deref().map(|n| offline_document(account, n));
                    push(kind, body.map(str::to_owned), after);
                }
            }
            DocumentKind::StatusIcon => {
                let icon = operations.iter().rev().find_map(|op| match op {
                    Operation::SetIcon { icon } => Some(icon),
                    _ => None,
                });
                let after = match icon {
                    Some(icon) => icon.as_ref().map(Icon::to_document),
                    // A fetched icon Blink cannot use is deleted during normalisation.
                    None => body.filter(|b| Icon::parse(b).is_some()).map(str::to_owned),
                };
                push(kind, body.map(str::to_owned), after);
            }
        }
    }
    for update in &updates {
        if let Some(body) = &update.body {
            validate(update.kind.usage(), body).map_err(|e| PlanError::Invalid(update.kind, e))?;
        }
    }
    Ok(updates)
}
