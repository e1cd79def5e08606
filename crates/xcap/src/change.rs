//! Document change events (RFC 4825 §8.5 ETag changes, as consumed by the RFC 5875 xcap-diff
//! event package and the presence logic): one record per committed PUT or DELETE.

use crate::uri::{Tree, XcapUri};

/// A committed change to one stored document, published by the shell after the storage
/// transaction succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentChange {
    /// AUID of the document.
    pub auid: String,
    /// Owner's XUI, `None` for the global tree.
    pub user: Option<String>,
    /// Document path below the tree (`index`, `oma_status-icon/index`).
    pub document: String,
    /// ETag before the change, `None` when the document was created.
    pub old_etag: Option<String>,
    /// ETag after the change, `None` when the document was deleted.
    pub new_etag: Option<String>,
}

impl DocumentChange {
    /// The change record for the document `uri` names.
    pub fn new(uri: &XcapUri, old_etag: Option<String>, new_etag: Option<String>) -> Self {
        DocumentChange {
            auid: uri.auid.clone(),
            user: match &uri.tree {
                Tree::Global => None,
                Tree::Users(xui) => Some(xui.clone()),
            },
            document: uri.document.clone(),
            old_etag,
            new_etag,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Limits;

    #[test]
    fn built_from_a_node_uri_names_the_document() {
        let uri = XcapUri::parse(
            "resource-lists/users/sip:a@b/index/~~/resource-lists/list",
            None,
            &Limits::default(),
        )
        .unwrap();
        let c = DocumentChange::new(&uri, Some("\"1\"".into()), Some("\"2\"".into()));
        assert_eq!(c.auid, "resource-lists");
        assert_eq!(c.user.as_deref(), Some("sip:a@b"));
        assert_eq!(c.document, "index");
        let global = XcapUri::parse("xcap-caps/global/index", None, &Limits::default()).unwrap();
        assert_eq!(DocumentChange::new(&global, None, None).user, None);
    }
}
