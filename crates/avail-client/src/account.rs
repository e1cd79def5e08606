//! The account facts every document depends on: the AOR and the XCAP root. The XCAP user id is
//! `sip:<user>@<domain>` written literally in paths, and every reference to the user's own lists
//! is `<document URL>/~~/resource-lists/list[@name="…"]` (blink-compat §1.1, §1.5).

use crate::documents::DocumentKind;

/// One account's XCAP identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub user: String,
    pub domain: String,
    /// `http(s)://host[:port]/path` without a trailing `/`.
    pub xcap_root: String,
}

impl Account {
    /// `root` loses trailing slashes, as Blink strips them (blink-compat §2.1).
    pub fn new(user: &str, domain: &str, root: &str) -> Account {
        Account {
            user: user.to_owned(),
            domain: domain.to_owned(),
            xcap_root: root.trim_end_matches('/').to_owned(),
        }
    }

    /// `sip:user@domain`.
    pub fn aor(&self) -> String {
        format!("sip:{}@{}", self.user, self.domain)
    }

    /// The path of `kind` below the XCAP root, starting with `/`.
    pub fn document_path(&self, kind: DocumentKind) -> String {
        match kind {
            DocumentKind::StatusIcon => format!(
                "/{}/users/{}/oma_status-icon/index",
                kind.auid(),
                self.aor()
            ),
            _ => format!("/{}/users/{}/index", kind.auid(), self.aor()),
        }
    }

    /// The absolute URL of one of the user's resource lists, not yet percent-encoded.
    pub fn list_url(&self, list: &str) -> String {
        format!(
            "{}{}/~~/resource-lists/list[@name=\"{list}\"]",
            self.xcap_root,
            self.document_path(DocumentKind::ResourceLists)
        )
    }
}
