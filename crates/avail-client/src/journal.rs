//! The persistent operation journal (blink-compat §2.2 items 3 and 5, §8 item 3): the user's
//! edits are kept as operations, applied to freshly fetched documents, and replayed whole after
//! a 412 so two devices' edits merge. Each operation is one JSON line appended and synced to
//! disk before it is acknowledged, so a crash loses nothing that was queued; a torn last line
//! (a crash mid-append) is skipped on load.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::content::{check_note, ContentError, Icon};
use crate::ids::is_valid_id;
use crate::pres_rules::DefaultPolicy;
use crate::resource_lists::{
    self as rl, Contact, ContactUpdate, ContactUri, Group, Policy, PolicyElement,
};
use crate::xml::Document;

/// Pending operations beyond this are refused (the user must sync first).
pub const MAX_OPERATIONS: usize = 10_000;
/// One serialized operation may not exceed this (an icon is the largest).
pub const MAX_LINE_BYTES: usize = 512 * 1024;
const MAX_TEXT: usize = 1024;
const MAX_URIS: usize = 100;

/// One user edit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Operation {
    AddContact {
        contact: Contact,
    },
    UpdateContact {
        id: String,
        update: ContactUpdate,
    },
    RemoveContact {
        id: String,
    },
    AddUri {
        contact_id: String,
        uri: ContactUri,
    },
    RemoveUri {
        contact_id: String,
        uri_id: String,
    },
    AddGroup {
        group: Group,
    },
    RemoveGroup {
        id: String,
    },
    AddGroupMember {
        group_id: String,
        contact_id: String,
    },
    RemoveGroupMember {
        group_id: String,
        contact_id: String,
    },
    /// A contact's presence policy (Blink Qt's "presence" tick box).
    SetContactPolicy {
        contact_id: String,
        policy: Policy,
    },
    /// The presence policy of an address: applied to the contact owning it if there is one,
    /// else kept in a policy-element (`default` removes that element).
    SetAddressPolicy {
        id: String,
        uri: String,
        name: String,
        policy: Policy,
    },
    SetDefaultPolicy {
        policy: DefaultPolicy,
    },
    /// `None` removes the icon (DELETE).
    SetIcon {
        icon: Option<Icon>,
    },
    /// `None` removes the offline note (DELETE).
    SetOfflineNote {
        note: Option<String>,
    },
}

/// Why an operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("invalid id {0:?}")]
    InvalidId(String),
    #[error("value too long or too many URIs")]
    TooLarge,
    #[error("journal full ({MAX_OPERATIONS} pending operations)")]
    Full,
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error("journal file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn id(value: &str) -> Result<(), JournalError> {
    if is_valid_id(value) {
        Ok(())
    } else {
        Err(JournalError::InvalidId(value.to_owned()))
    }
}

fn text(value: &str) -> Result<(), JournalError> {
    if value.len() > MAX_TEXT {
        Err(JournalError::TooLarge)
    } else {
        Ok(())
    }
}

fn attributes(values: &rl::Attributes) -> Result<(), JournalError> {
    if values.len() > MAX_URIS {
        return Err(JournalError::TooLarge);
    }
    values.iter().try_for_each(|(k, v)| {
        text(k)?;
        text(v.as_deref().unwrap_or_default())
    })
}

fn contact_uri(uri: &ContactUri) -> Result<(), JournalError> {
    id(&uri.id)?;
    text(&uri.uri)?;
    text(uri.uri_type.as_deref().unwrap_or_default())?;
    attributes(&uri.attributes)
}

impl Operation {
    /// Checks ids (blink-compat §0.4) and sizes before an operation is accepted.
    pub fn check(&self) -> Result<(), JournalError> {
        match self {
            Operation::AddContact { contact } => {
                id(&contact.id)?;
                text(&contact.name)?;
                if contact.uris.len() > MAX_URIS {
                    return Err(JournalError::TooLarge);
                }
                contact.uris.iter().try_for_each(contact_uri)?;
                if let Some(default) = &contact.default_uri {
                    id(default)?;
                }
                attributes(&contact.attributes)
            }
            Operation::UpdateContact { id: i, update } => {
                id(i)?;
                text(update.name.as_deref().unwrap_or_default())?;
                if let Some(default) = &update.default_uri {
                    id(default)?;
                }
                attributes(&update.attributes)
            }
            Operation::RemoveContact { id: i } | Operation::RemoveGroup { id: i } => id(i),
            Operation::AddUri { contact_id, uri } => {
                id(contact_id)?;
                contact_uri(uri)
            }
            Operation::RemoveUri { contact_id, uri_id } => {
                id(contact_id)?;
                id(uri_id)
            }
            Operation::AddGroup { group } => {
                id(&group.id)?;
                text(&group.name)?;
                group.contacts.iter().try_for_each(|c| id(c))?;
                attributes(&group.attributes)
            }
            Operation::AddGroupMember {
                group_id,
                contact_id,
            }
            | Operation::RemoveGroupMember {
                group_id,
                contact_id,
            } => {
                id(group_id)?;
                id(contact_id)
            }
            Operation::SetContactPolicy { contact_id, .. } => id(contact_id),
            Operation::SetAddressPolicy {
                id: i, uri, name, ..
            } => {
                id(i)?;
                text(uri)?;
                text(name)
            }
            Operation::SetDefaultPolicy { .. } => Ok(()),
            Operation::SetIcon { icon } => {
                Ok(icon.as_ref().map(Icon::check).transpose().map(|_| ())?)
            }
            Operation::SetOfflineNote { note } => {
                Ok(note.as_deref().map(check_note).transpose().map(|_| ())?)
            }
        }
    }

    /// Applies an address-book operation to a resource-lists document. Operations whose target
    /// has meanwhile disappeared do nothing: a concurrent removal on another device wins.
    pub fn apply_to_resource_lists(&self, doc: &mut Document) {
        match self {
            Operation::AddContact { contact } => rl::add_contact(doc, contact),
            Operation::UpdateContact { id, update } => {
                rl::update_contact(doc, id, update);
            }
            Operation::RemoveContact { id } => rl::remove_contact(doc, id),
            Operation::AddUri { contact_id, uri } => {
                rl::add_uri(doc, contact_id, uri);
            }
            Operation::RemoveUri { contact_id, uri_id } => rl::remove_uri(doc, contact_id, uri_id),
            Operation::AddGroup { group } => rl::add_group(doc, group),
            Operation::RemoveGroup { id } => rl::remove_group(doc, id),
            Operation::AddGroupMember {
                group_id,
                contact_id,
            } => {
                rl::add_group_member(doc, group_id, contact_id);
            }
            Operation::RemoveGroupMember {
                group_id,
                contact_id,
            } => rl::remove_group_member(doc, group_id, contact_id),
            Operation::SetContactPolicy { contact_id, policy } => {
                rl::set_contact_policy(doc, contact_id, *policy);
            }
            Operation::SetAddressPolicy {
                id,
                uri,
                name,
                policy,
            } => {
                let book = rl::AddressBook::read(doc);
                let owner = book
                    .contacts
                    .iter()
                    .find(|c| c.uris.iter().any(|u| &u.uri == uri))
                    .map(|c| c.id.clone());
                match (owner, policy) {
                    (Some(contact), _) => {
                        rl::set_contact_policy(doc, &contact, *policy);
                    }
                    (None, Policy::Default) => rl::remove_policy_element(doc, uri),
                    (None, _) => {
                        let handling = rl::Handling {
                            policy: *policy,
                            subscribe: false,
                        };
                        rl::set_policy_element(
                            doc,
                            &PolicyElement {
                                id: id.clone(),
                                uri: uri.clone(),
                                name: name.clone(),
                                dialog: rl::Handling::default(),
                                presence: handling,
                                attributes: Vec::new(),
                            },
                        )
                    }
                }
            }
            Operation::SetDefaultPolicy { .. }
            | Operation::SetIcon { .. }
            | Operation::SetOfflineNote { .. } => {}
        }
    }
}

/// The journal file and its operations in order.
pub struct Journal {
    path: PathBuf,
    operations: Vec<Operation>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_owned(),
        source,
    }
}

impl Journal {
    /// Opens (or starts) the journal at `path`. Lines that do not parse are skipped with a
    /// warning rather than failing start-up: only a torn final append can produce one.
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let mut operations = Vec::new();
        let mut torn = false;
        match File::open(path) {
            Ok(file) => {
                let limit = (MAX_OPERATIONS * MAX_LINE_BYTES) as u64;
                let mut reader = BufReader::new(file.take(limit));
                let mut line = String::new();
                loop {
                    line.clear();
                    let read = reader.read_line(&mut line).map_err(io(path))?;
                    if read == 0 || operations.len() >= MAX_OPERATIONS {
                        break;
                    }
                    torn = !line.ends_with('\n');
                    if line.trim().is_empty() {
                        continue;
                    }
                    match serde_json::from_str::<Operation>(&line) {
                        Ok(op) if line.len() <= MAX_LINE_BYTES && op.check().is_ok() => {
                            operations.push(op)
                        }
                        _ => {
                            tracing::warn!(path = %path.display(), "skipping an unreadable journal line")
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(path)(e)),
        }
        let mut journal = Journal {
            path: path.to_owned(),
            operations,
        };
        // Appending after a torn line would glue the next operation onto it; start clean.
        if torn {
            journal.complete(0)?;
        }
        Ok(journal)
    }

    pub fn operations(&self) -> &[Operation] {
        &self.operations
    }

    /// Checks `op`, appends it durably, then keeps it in memory.
    pub fn push(&mut self, op: Operation) -> Result<(), JournalError> {
        op.check()?;
        if self.operations.len() >= MAX_OPERATIONS {
            return Err(JournalError::Full);
        }
        let mut line = serde_json::to_string(&op).map_err(|e| io(&self.path)(e.into()))?;
        if line.len() > MAX_LINE_BYTES {
            return Err(JournalError::TooLarge);
        }
        line.push('\n');
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir).map_err(io(&self.path))?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io(&self.path))?;
        file.write_all(line.as_bytes()).map_err(io(&self.path))?;
        file.sync_data().map_err(io(&self.path))?;
        self.operations.push(op);
        Ok(())
    }

    /// Forgets the first `count` operations once the server holds their effect; later ones
    /// are rewritten to a new file that atomically replaces the old.
    pub fn complete(&mut self, count: usize) -> Result<(), JournalError> {
        let count = count.min(self.operations.len());
        let rest = self.operations.split_off(count);
        let mut text = String::new();
        for op in &rest {
            text.push_str(&serde_json::to_string(op).map_err(|e| io(&self.path)(e.into()))?);
            text.push('\n');
        }
        let temp = self.path.with_extension("tmp");
        let mut file = File::create(&temp).map_err(io(&temp))?;
        file.write_all(text.as_bytes()).map_err(io(&temp))?;
        file.sync_data().map_err(io(&temp))?;
        fs::rename(&temp, &self.path).map_err(io(&self.path))?;
        self.operations = rest;
        Ok(())
    }
}
