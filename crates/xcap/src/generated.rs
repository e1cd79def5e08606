//! Server-generated documents: xcap-caps (RFC 4825 §12, schema `xcap-caps.xsd`) and the OMA
//! xcap-directory (OMA-TS-XDM_Core §C, schema `xcap-directory.xsd`). Both are built fresh from
//! server state on every GET; the matching usages report `is_generated()`.

use std::fmt::Write;

use crate::usage::ApplicationUsage;

/// Escapes text for element content and double-quoted attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// The xcap-caps document: every usage's AUID, the given extensions, and the distinct default
/// namespaces of the usages. All three containers are always present, in schema order, because
/// Blink rejects a document missing any of them.
pub fn xcap_caps(usages: &[&dyn ApplicationUsage], extensions: &[&str]) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <xcap-caps xmlns=\"urn:ietf:params:xml:ns:xcap-caps\">\n  <auids>\n",
    );
    for u in usages {
        let _ = writeln!(out, "    <auid>{}</auid>", escape(u.auid()));
    }
    out.push_str("  </auids>\n  <extensions>\n");
    for e in extensions {
        let _ = writeln!(out, "    <extension>{}</extension>", escape(e));
    }
    out.push_str("  </extensions>\n  <namespaces>\n");
    let mut seen: Vec<&str> = Vec::new();
    for u in usages {
        let ns = u.default_namespace();
        if !ns.is_empty() && !seen.contains(&ns) {
            seen.push(ns);
            let _ = writeln!(out, "    <namespace>{}</namespace>", escape(ns));
        }
    }
    out.push_str("  </namespaces>\n</xcap-caps>\n");
    out
}

/// One document listed in an xcap-directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryEntry {
    /// AUID of the folder the document belongs to.
    pub auid: String,
    /// Document URI (absolute, or relative to the XCAP root, as the shell chooses).
    pub uri: String,
    /// The document's ETag as sent in HTTP headers.
    pub etag: String,
    /// `xs:dateTime` of the last modification, formatted by the caller (the engine has no clock).
    pub last_modified: Option<String>,
    /// Document size in bytes.
    pub size: Option<u64>,
}

/// The xcap-directory document: one `<folder>` per AUID in `auids` (in that order, present even
/// when empty), then folders for any other AUIDs the entries use, in order of first appearance.
pub fn xcap_directory(auids: &[&str], entries: &[DirectoryEntry]) -> String {
    let mut folders: Vec<&str> = auids.to_vec();
    for e in entries {
        if !folders.contains(&e.auid.as_str()) {
            folders.push(&e.auid);
        }
    }
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <xcap-directory xmlns=\"urn:oma:xml:xdm:xcap-directory\">\n",
    );
    for folder in folders {
        let _ = writeln!(out, "  <folder auid=\"{}\">", escape(folder));
        for e in entries.iter().filter(|e| e.auid == folder) {
            let _ = write!(
                out,
                "    <entry uri=\"{}\" etag=\"{}\"",
                escape(&e.uri),
                escape(&e.etag)
            );
            if let Some(lm) = &e.last_modified {
                let _ = write!(out, " last-modified=\"{}\"", escape(lm));
            }
            if let Some(size) = e.size {
                let _ = write!(out, " size=\"{size}\"");
            }
            out.push_str("/>\n");
        }
        out.push_str("  </folder>\n");
    }
    out.push_str("</xcap-directory>\n");
    out
}

#[cfg(test)]
mod tests {
    use roxmltree::Document;

    use super::*;
    use crate::error::{ConstraintFailure, ValidationFailure};
    use crate::usage::ConstraintContext;

    struct U(&'static str, &'static str);
    impl ApplicationUsage for U {
        fn auid(&self) -> &str {
            self.0
        }
        fn default_namespace(&self) -> &str {
            self.1
        }
        fn mime_type(&self) -> &str {
            "application/xml"
        }
        fn validate(&self, _: &str) -> Result<(), ValidationFailure> {
            Ok(())
        }
        fn check_constraints(
            &self,
            _: &Document<'_>,
            _: &ConstraintContext<'_>,
        ) -> Result<(), ConstraintFailure> {
            Ok(())
        }
    }

    #[test]
    fn caps_lists_auids_extensions_and_distinct_namespaces() {
        let rl = U("resource-lists", "urn:ietf:params:xml:ns:resource-lists");
        let rls = U("rls-services", "urn:ietf:params:xml:ns:rls-services");
        let pr = U(
            "org.openmobilealliance.pres-rules",
            "urn:ietf:params:xml:ns:common-policy",
        );
        let dr = U(
            "org.openxcap.dialog-rules",
            "urn:ietf:params:xml:ns:common-policy",
        );
        let xml = xcap_caps(&[&rl, &rls, &pr, &dr], &["x&y"]);
        let doc = Document::parse(&xml).unwrap();
        let root = doc.root_element();
        assert_eq!(
            root.tag_name().namespace(),
            Some("urn:ietf:params:xml:ns:xcap-caps")
        );
        let sections: Vec<_> = root
            .children()
            .filter(|n| n.is_element())
            .map(|n| n.tag_name().name())
            .collect();
        assert_eq!(sections, ["auids", "extensions", "namespaces"]);
        let texts = |name: &str| -> Vec<String> {
            doc.descendants()
                .filter(|n| n.has_tag_name(name))
                .filter_map(|n| n.text().map(str::to_owned))
                .collect()
        };
        assert_eq!(texts("auid").len(), 4);
        assert_eq!(texts("extension"), ["x&y"]);
        assert_eq!(texts("namespace").len(), 3);
    }

    #[test]
    fn empty_caps_keeps_all_sections() {
        let xml = xcap_caps(&[], &[]);
        let doc = Document::parse(&xml).unwrap();
        assert_eq!(
            doc.root_element()
                .children()
                .filter(|n| n.is_element())
                .count(),
            3
        );
    }

    #[test]
    fn directory_groups_entries_by_folder() {
        let entry = |auid: &str, uri: &str, lm: Option<&str>, size: Option<u64>| DirectoryEntry {
            auid: auid.into(),
            uri: uri.into(),
            etag: "\"e\"".into(),
            last_modified: lm.map(Into::into),
            size,
        };
        let xml = xcap_directory(
            &["resource-lists", "rls-services"],
            &[
                entry(
                    "resource-lists",
                    "resource-lists/users/sip:a@b/index",
                    Some("2024-05-15T12:00:00Z"),
                    Some(42),
                ),
                entry(
                    "pidf-manipulation",
                    "pidf-manipulation/users/sip:a@b/index",
                    None,
                    None,
                ),
                entry(
                    "resource-lists",
                    "resource-lists/users/sip:a@b/other",
                    None,
                    None,
                ),
            ],
        );
        let doc = Document::parse(&xml).unwrap();
        let folders: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("folder"))
            .map(|f| {
                (
                    f.attribute("auid").unwrap(),
                    f.children().filter(|c| c.is_element()).count(),
                )
            })
            .collect();
        assert_eq!(
            folders,
            [
                ("resource-lists", 2),
                ("rls-services", 0),
                ("pidf-manipulation", 1)
            ]
        );
        let first = doc.descendants().find(|n| n.has_tag_name("entry")).unwrap();
        assert_eq!(first.attribute("etag"), Some("\"e\""));
        assert_eq!(first.attribute("size"), Some("42"));
        assert_eq!(
            first.attribute("last-modified"),
            Some("2024-05-15T12:00:00Z")
        );
    }
}
