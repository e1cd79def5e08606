//! XCAP diff documents, `application/xcap-diff+xml` (RFC 5874), as the `xcap-diff` event
//! package carries them (RFC 5875 §4.4): which documents changed, with their entity tags.
//! Built on the server side, read on the client side; only `<document>` children are modelled
//! because that is all Blink reads (blink-compat §4.5).
//!
//! Entity tags are written bare, without the quotes of the HTTP header (blink-compat §4.5:
//! they must equal the HTTP ETag once its quotes are removed).

use roxmltree::{Document, ParsingOptions};

use crate::xcap_error::escape_into;

/// `urn:ietf:params:xml:ns:xcap-diff` (RFC 5874 §8).
pub const XCAP_DIFF_NS: &str = "urn:ietf:params:xml:ns:xcap-diff";
/// The MIME type (RFC 5874 §10.1).
pub const CONTENT_TYPE: &str = "application/xcap-diff+xml";

/// Largest document [`XcapDiff::parse`] accepts.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// Most XML nodes in a parsed document.
const MAX_NODES: u32 = 200_000;

/// One `<document>`: a document that exists (`new_etag` only), was created or changed
/// (both), or was removed (`previous_etag` only) (RFC 5874 §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentDiff {
    /// The document URI relative to the XCAP root, e.g.
    /// `resource-lists/users/sip:alice@example.com/index`.
    pub sel: String,
    pub previous_etag: Option<String>,
    pub new_etag: Option<String>,
}

/// An `<xcap-diff>` document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XcapDiff {
    /// Absolute XCAP root URI the `sel` values are relative to.
    pub xcap_root: String,
    pub documents: Vec<DocumentDiff>,
}

/// Why [`XcapDiff::parse`] refused a document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XcapDiffError {
    #[error("the document is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge,
    /// Not well-formed XML, a DTD, or too many nodes.
    #[error("not well-formed: {0}")]
    NotWellFormed(String),
    #[error("the document element is not <xcap-diff>")]
    NotXcapDiff,
    #[error("<{0}> lacks a required attribute")]
    MissingAttribute(&'static str),
}

impl XcapDiff {
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(128 + self.documents.len() * 128);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xcap-diff xmlns=\"");
        out.push_str(XCAP_DIFF_NS);
        out.push_str("\" xcap-root=\"");
        escape_into(&mut out, &self.xcap_root, true);
        out.push_str("\">\n");
        for document in &self.documents {
            out.push_str("  <document sel=\"");
            escape_into(&mut out, &document.sel, true);
            out.push('"');
            for (name, etag) in [
                ("previous-etag", &document.previous_etag),
                ("new-etag", &document.new_etag),
            ] {
                if let Some(etag) = etag {
                    out.push(' ');
                    out.push_str(name);
                    out.push_str("=\"");
                    escape_into(&mut out, etag, true);
                    out.push('"');
                }
            }
            out.push_str("/>\n");
        }
        out.push_str("</xcap-diff>\n");
        out
    }

    /// Reads the `<document>` children; `<element>`, `<attribute>` and foreign content are
    /// skipped as RFC 5874 §4 allows a client that does not use them to.
    pub fn parse(text: &str) -> Result<XcapDiff, XcapDiffError> {
        if text.len() > MAX_DOCUMENT_BYTES {
            return Err(XcapDiffError::TooLarge);
        }
        let options = ParsingOptions {
            allow_dtd: false,
            nodes_limit: MAX_NODES,
            ..ParsingOptions::default()
        };
        let doc = Document::parse_with_options(text, options)
            .map_err(|e| XcapDiffError::NotWellFormed(e.to_string()))?;
        let root = doc.root_element();
        if !root.has_tag_name((XCAP_DIFF_NS, "xcap-diff")) {
            return Err(XcapDiffError::NotXcapDiff);
        }
        let xcap_root = root
            .attribute("xcap-root")
            .ok_or(XcapDiffError::MissingAttribute("xcap-diff"))?;
        let documents = root
            .children()
            .filter(|n| n.has_tag_name((XCAP_DIFF_NS, "document")))
            .map(|n| {
                Ok(DocumentDiff {
                    sel: n
                        .attribute("sel")
                        .ok_or(XcapDiffError::MissingAttribute("document"))?
                        .to_owned(),
                    previous_etag: n.attribute("previous-etag").map(str::to_owned),
                    new_etag: n.attribute("new-etag").map(str::to_owned),
                })
            })
            .collect::<Result<_, XcapDiffError>>()?;
        Ok(XcapDiff {
            xcap_root: xcap_root.to_owned(),
            documents,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(sel: &str, previous: Option<&str>, new: Option<&str>) -> DocumentDiff {
        DocumentDiff {
            sel: sel.to_owned(),
            previous_etag: previous.map(str::to_owned),
            new_etag: new.map(str::to_owned),
        }
    }

    #[test]
    fn round_trips_created_changed_and_removed_documents() {
        let document = XcapDiff {
            xcap_root: "https://xcap.example.com/xcap-root?a=\"b\"&c".into(),
            documents: vec![
                diff(
                    "resource-lists/users/sip:alice@example.com/index",
                    None,
                    Some("91c2"),
                ),
                diff(
                    "pres-rules/users/sip:alice@example.com/index",
                    Some("7f"),
                    Some("8<&"),
                ),
                diff(
                    "pidf-manipulation/users/sip:alice@example.com/index",
                    Some("x"),
                    None,
                ),
            ],
        };
        let xml = document.to_xml();
        assert!(xml.contains("previous-etag=\"7f\" new-etag=\"8&lt;&amp;\""));
        assert_eq!(XcapDiff::parse(&xml), Ok(document));
    }

    #[test]
    fn refuses_foreign_roots_and_missing_sel() {
        assert_eq!(
            XcapDiff::parse("<xcap-diff xcap-root=\"x\"/>"),
            Err(XcapDiffError::NotXcapDiff)
        );
        assert_eq!(
            XcapDiff::parse(&format!(
                "<xcap-diff xmlns=\"{XCAP_DIFF_NS}\" xcap-root=\"x\"><document/></xcap-diff>"
            )),
            Err(XcapDiffError::MissingAttribute("document"))
        );
    }
}
