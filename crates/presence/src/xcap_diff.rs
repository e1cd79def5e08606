//! The `xcap-diff` event package (RFC 5875) on the agent's side: which of its owner's XCAP
//! documents a subscription watches (RFC 5875 §4.2: a `resource-lists` body of document
//! URIs, or none for all of them), and the documents' current entity tags, which the shell
//! loads from storage and keeps current from XCAP change events.
//!
//! Blink lists documents relative to the XCAP root and percent-encoded (blink-compat §4.5);
//! absolute URIs under our root are accepted too. An entry ending in `/` watches every
//! document below it (RFC 5875 §4.2 directory selection). Only the owner's own documents can
//! be watched; entries naming another user's or the global tree are ignored.

use std::collections::{BTreeMap, BTreeSet};

use simple_payloads::decode_any_uri;
use simple_payloads::xcap_diff::{DocumentDiff, XcapDiff};
use sip_message::Message;
use sip_subscription::{Body, SubId};

use crate::{aor, policy};

/// Most document selectors one subscription may list; Blink sends five.
pub const MAX_WATCHED: usize = 64;

/// The document URI relative to the XCAP root (RFC 4825 §6) that `sel` attributes carry.
pub fn document_sel(auid: &str, owner: &str, path: &str) -> String {
    format!("{auid}/users/{owner}/{path}")
}

/// What one subscription watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Watch {
    All,
    /// Document selectors, or directory prefixes ending in `/`.
    Only(Vec<String>),
}

impl Watch {
    /// RFC 5875 §4.2 from the SUBSCRIBE body. Err: the status to refuse it with.
    pub(crate) fn from_request(
        request: &Message,
        owner: &str,
        xcap_root: &str,
    ) -> Result<Watch, u16> {
        let body = request.body();
        if body.is_empty() {
            return Ok(Watch::All);
        }
        let is_lists = matches!(request.content_type(), Ok(Some(t))
            if t.mtype.eq_ignore_ascii_case("application")
                && t.subtype.eq_ignore_ascii_case("resource-lists+xml"));
        if !is_lists {
            return Err(415);
        }
        let text = std::str::from_utf8(&body).map_err(|_| 400u16)?;
        let entries = policy::list_entries(text).ok_or(400u16)?;
        if entries.len() > MAX_WATCHED {
            return Err(400);
        }
        let root_path = root_path(xcap_root);
        let selectors = entries
            .iter()
            .filter_map(|entry| own_selector(&decode_any_uri(entry), owner, root_path))
            .collect();
        Ok(Watch::Only(selectors))
    }

    pub(crate) fn covers(&self, sel: &str) -> bool {
        match self {
            Watch::All => true,
            Watch::Only(selectors) => selectors
                .iter()
                .any(|s| s == sel || (s.ends_with('/') && sel.starts_with(s.as_str()))),
        }
    }

    /// One line per selector (none for all), for persistence.
    pub(crate) fn encode(&self) -> Option<String> {
        match self {
            Watch::All => None,
            Watch::Only(selectors) => Some(selectors.join("\n")),
        }
    }

    pub(crate) fn decode(text: Option<&str>) -> Watch {
        match text {
            None => Watch::All,
            Some(text) => Watch::Only(
                text.lines()
                    .filter(|l| !l.is_empty())
                    .take(MAX_WATCHED)
                    .map(str::to_owned)
                    .collect(),
            ),
        }
    }
}

/// The path part of the absolute XCAP root (`/xcap-root`), empty when it has none.
fn root_path(xcap_root: &str) -> &str {
    let after_scheme = xcap_root
        .split_once("://")
        .map_or(xcap_root, |(_, rest)| rest);
    after_scheme
        .find('/')
        .map_or("", |i| after_scheme[i..].trim_end_matches('/'))
}

/// `auid/users/<owner>/path` for an entry naming one of `owner`'s documents (or a directory of
/// them), relative or absolute; None for anything else.
fn own_selector(entry: &str, owner: &str, root_path: &str) -> Option<String> {
    let relative = match entry.split_once("://") {
        Some((_, rest)) => {
            let path = &rest[rest.find('/')?..];
            path.strip_prefix(root_path)?
        }
        None => entry,
    };
    let relative = relative.trim_start_matches('/');
    let (auid, rest) = relative.split_once("/users/")?;
    if auid.is_empty() || auid.contains('/') {
        return None;
    }
    let (xui, path) = rest.split_once('/').unwrap_or((rest, ""));
    if aor(xui).as_deref() != Some(owner) {
        return None;
    }
    Some(document_sel(auid, owner, path))
}

/// One owner's documents and the subscriptions watching them.
#[derive(Debug, Default)]
pub(crate) struct Documents {
    /// Selector → bare entity tag.
    pub(crate) etags: BTreeMap<String, String>,
    pub(crate) subs: BTreeSet<SubId>,
}

/// ETags are stored quoted (the HTTP form); xcap-diff carries them bare.
pub(crate) fn bare(etag: &str) -> String {
    etag.trim().trim_matches('"').to_owned()
}

/// Every watched document that exists, with its entity tag (RFC 5875 §4.4.1).
pub(crate) fn full_state(documents: Option<&Documents>, watch: &Watch, xcap_root: &str) -> Body {
    let documents = documents
        .into_iter()
        .flat_map(|d| d.etags.iter())
        .filter(|(sel, _)| watch.covers(sel))
        .map(|(sel, etag)| DocumentDiff {
            sel: sel.clone(),
            previous_etag: None,
            new_etag: Some(etag.clone()),
        })
        .collect();
    body(xcap_root, documents)
}

pub(crate) fn body(xcap_root: &str, documents: Vec<DocumentDiff>) -> Body {
    let document = XcapDiff {
        xcap_root: xcap_root.to_owned(),
        documents,
    };
    Body::new(simple_payloads::xcap_diff::CONTENT_TYPE, document.to_xml())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "sip:alice@example.com";
    const ROOT: &str = "https://xcap.example.com/xcap-root";

    #[test]
    fn selectors_are_decoded_relative_to_the_root_and_limited_to_the_owner() {
        assert_eq!(
            own_selector(
                &decode_any_uri("resource-lists/users/sip%3Aalice%40example.com/index"),
                ALICE,
                "/xcap-root"
            )
            .as_deref(),
            Some("resource-lists/users/sip:alice@example.com/index")
        );
        assert_eq!(
            own_selector(
                "http://other:8080/xcap-root/org.openmobilealliance.pres-content/users/sip:alice@EXAMPLE.com/oma_status-icon/index",
                ALICE,
                root_path(ROOT)
            )
            .as_deref(),
            Some("org.openmobilealliance.pres-content/users/sip:alice@example.com/oma_status-icon/index")
        );
        assert_eq!(
            own_selector("pres-rules/users/sip:bob@example.com/index", ALICE, ""),
            None
        );
        assert_eq!(own_selector("xcap-caps/global/index", ALICE, ""), None);
        assert_eq!(
            own_selector(
                "https://x/elsewhere/a/users/sip:alice@example.com/index",
                ALICE,
                "/xcap-root"
            ),
            None
        );
    }

    #[test]
    fn directories_cover_the_documents_below_them() {
        let watch = Watch::Only(vec!["resource-lists/users/sip:alice@example.com/".into()]);
        assert!(watch.covers("resource-lists/users/sip:alice@example.com/index"));
        assert!(!watch.covers("pres-rules/users/sip:alice@example.com/index"));
        assert_eq!(Watch::decode(watch.encode().as_deref()), watch);
        assert_eq!(Watch::decode(Watch::All.encode().as_deref()), Watch::All);
    }
}
