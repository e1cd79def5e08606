//! A presentity's policy documents as the agent uses them: pres-rules (RFC 5025, with the OMA
//! extensions), the resource-lists its `external-list` conditions point into (RFC 4826 §3.2)
//! and pidf-manipulation (RFC 4827 §3). The shell reads them from storage and hands over a
//! [`Policy`]; nothing here does I/O.

use presence_auth::{ListAnchor, ListResolver, Ruleset};
use simple_payloads::pidf::PidfDocument;

/// `urn:ietf:params:xml:ns:resource-lists` (RFC 4826 §3.2).
const RESOURCE_LISTS_NS: &str = "urn:ietf:params:xml:ns:resource-lists";
/// Most XML nodes read from a resource-lists document; XCAP already bounds its size.
const MAX_NODES: u32 = 200_000;
/// Deepest list nesting followed.
const MAX_DEPTH: usize = 16;

/// One `<list>` of a resource-lists document: its name, the `entry/@uri` values directly
/// inside it (as stored) and its sub-lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct List {
    name: String,
    entries: Vec<String>,
    lists: Vec<List>,
}

/// The policy snapshot of one presentity. Absent or unreadable documents count as absent:
/// XCAP validated them on the way in, so a document that fails here is not one a client
/// wrote through us.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub(crate) rules: Option<Ruleset>,
    lists: Vec<List>,
    pub(crate) manipulation: Option<PidfDocument>,
}

impl Policy {
    /// Reads the documents as stored: pres-rules, resource-lists `index`, pidf-manipulation.
    pub fn from_documents(
        pres_rules: Option<&[u8]>,
        resource_lists: Option<&[u8]>,
        manipulation: Option<&[u8]>,
    ) -> Policy {
        Policy {
            rules: utf8(pres_rules).and_then(|t| Ruleset::parse(t).ok()),
            lists: utf8(resource_lists)
                .and_then(parse_lists)
                .unwrap_or_default(),
            manipulation: utf8(manipulation).and_then(|t| PidfDocument::parse(t).ok()),
        }
    }

    /// The resolver for `presentity`'s external-list anchors: only anchors into that
    /// presentity's own `resource-lists/users/<xui>/index` resolve, so nobody can authorise
    /// watchers through someone else's lists.
    pub fn resolver<'a>(&'a self, presentity: &'a str) -> impl ListResolver + 'a {
        move |anchor: &ListAnchor| -> Vec<String> {
            if !own_document(&anchor.document, presentity) {
                return Vec::new();
            }
            let mut level = &self.lists;
            let mut found = None;
            for name in &anchor.lists {
                match level.iter().find(|l| &l.name == name) {
                    Some(list) => {
                        level = &list.lists;
                        found = Some(list);
                    }
                    None => return Vec::new(),
                }
            }
            found.map(|l| l.entries.clone()).unwrap_or_default()
        }
    }
}

fn utf8(bytes: Option<&[u8]>) -> Option<&str> {
    bytes.and_then(|b| std::str::from_utf8(b).ok())
}

/// Whether an anchor's document part names `…/resource-lists/users/<presentity>/index`.
fn own_document(document: &str, presentity: &str) -> bool {
    let Some((_, rest)) = document.rsplit_once("/resource-lists/users/") else {
        return false;
    };
    let rest = rest.trim_end_matches('/');
    match rest.rsplit_once('/') {
        Some((xui, "index")) => xui.eq_ignore_ascii_case(presentity),
        _ => false,
    }
}

/// Every `entry/@uri` of a resource-lists document, lists flattened in document order
/// (RFC 4826 §3.2); None when it is not one.
pub fn list_entries(text: &str) -> Option<Vec<String>> {
    fn flatten(lists: Vec<List>, out: &mut Vec<String>) {
        for list in lists {
            out.extend(list.entries);
            flatten(list.lists, out);
        }
    }
    let lists = parse_lists(text)?;
    let mut out = Vec::new();
    flatten(lists, &mut out);
    Some(out)
}

fn parse_lists(text: &str) -> Option<Vec<List>> {
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, options).ok()?;
    let root = doc.root_element();
    if !root.has_tag_name((RESOURCE_LISTS_NS, "resource-lists")) {
        return None;
    }
    Some(children(root, 0))
}

fn children(node: roxmltree::Node<'_, '_>, depth: usize) -> Vec<List> {
    if depth >= MAX_DEPTH {
        return Vec::new();
    }
    node.children()
        .filter(|c| c.has_tag_name((RESOURCE_LISTS_NS, "list")))
        .map(|list| List {
            name: list.attribute("name").unwrap_or_default().to_owned(),
            entries: list
                .children()
                .filter(|c| c.has_tag_name((RESOURCE_LISTS_NS, "entry")))
                .filter_map(|e| e.attribute("uri").map(str::to_owned))
                .collect(),
            lists: children(list, depth + 1),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">
  <list name="oma_allowedlist"><entry uri="sip:bob%40example.com"/><entry uri="carol@example.com"/></list>
  <list name="outer"><list name="inner"><entry uri="sip:dave@example.com"/></list></list>
</resource-lists>"#;

    fn entries(policy: &Policy, presentity: &str, anchor: &str) -> Vec<String> {
        let anchor = ListAnchor::parse(anchor).expect("anchor");
        policy.resolver(presentity).entries(&anchor)
    }

    #[test]
    fn resolves_own_lists_including_nested_ones() {
        let policy = Policy::from_documents(None, Some(LISTS.as_bytes()), None);
        let base = "https://x/xcap-root/resource-lists/users/sip:alice@example.com/index/~~/resource-lists";
        assert_eq!(
            entries(
                &policy,
                "sip:alice@example.com",
                &format!("{base}/list%5B@name=%22oma_allowedlist%22%5D")
            ),
            ["sip:bob%40example.com", "carol@example.com"]
        );
        assert_eq!(
            entries(
                &policy,
                "sip:alice@example.com",
                &format!("{base}/list%5B@name=%22outer%22%5D/list%5B@name=%22inner%22%5D")
            ),
            ["sip:dave@example.com"]
        );
        assert!(entries(
            &policy,
            "sip:alice@example.com",
            &format!("{base}/list%5B@name=%22none%22%5D")
        )
        .is_empty());
    }

    #[test]
    fn anchors_into_another_users_document_resolve_to_nothing() {
        let policy = Policy::from_documents(None, Some(LISTS.as_bytes()), None);
        let anchor = "https://x/xcap-root/resource-lists/users/sip:mallory@example.com/index/~~/resource-lists/list%5B@name=%22oma_allowedlist%22%5D";
        assert!(entries(&policy, "sip:alice@example.com", anchor).is_empty());
    }

    #[test]
    fn unreadable_documents_count_as_absent() {
        let policy = Policy::from_documents(Some(b"<nope"), Some(b"\xff"), Some(b"<x/>"));
        assert!(policy.rules.is_none() && policy.lists.is_empty() && policy.manipulation.is_none());
    }
}
