//! The application usages Avail serves (RFC 4825 §5), as `xcap::ApplicationUsage` impls that
//! bridge to the `simple_payloads` schema validators:
//!
//! - `resource-lists` (RFC 4826 §3.4): list/entry/entry-ref/external uniqueness, and
//!   references into the XCAP tree must stay inside the owner's own documents;
//! - `rls-services` (RFC 4826 §4.4): `service@uri` unique inside the document here; across
//!   all users and the `<resource-list>` resolution are checked by the server, which has the
//!   store (see `handler.rs`);
//! - `pres-rules` (RFC 5025 §9) and `org.openmobilealliance.pres-rules` (OMA Presence XDM):
//!   `rule@id` uniqueness is an xs:ID constraint, so the schema validator enforces it;
//! - `pidf-manipulation` (RFC 4827);
//! - `org.openmobilealliance.pres-content` (OMA Presence Content XDM §5.1): publicly
//!   readable, MIME type, encoding and size constraints;
//! - `xcap-caps` (RFC 4825 §12) and `org.openmobilealliance.xcap-directory` (OMA XDM Core):
//!   generated, read-only.
//!
//! Per blink-compat §0.1 every xs:anyURI value is compared after one percent-decoding.

use std::collections::HashSet;

use roxmltree::Document;
use simple_payloads::{decode_any_uri, Constraints, Usage, ValidationError};
use xcap::{
    resource_lists_uniqueness, ApplicationUsage, ConstraintContext, ConstraintFailure, Limits,
    Tree, UniquenessConflict, ValidationFailure, XcapUri,
};

pub(crate) const RESOURCE_LISTS_NS: &str = "urn:ietf:params:xml:ns:resource-lists";
pub(crate) const RLS_SERVICES_NS: &str = "urn:ietf:params:xml:ns:rls-services";

/// One served application usage.
pub(crate) struct Payload {
    usage: Usage,
    mime: &'static str,
    /// Needed to recognise references into this server's XCAP tree.
    root: String,
    limits: Limits,
    constraints: Constraints,
}

impl Payload {
    pub(crate) fn usage(&self) -> Usage {
        self.usage
    }
}

/// Every usage, in the order xcap-caps lists them.
pub(crate) fn all(root: &str, limits: &Limits, constraints: &Constraints) -> Vec<Payload> {
    [
        (Usage::ResourceLists, "application/resource-lists+xml"),
        (Usage::RlsServices, "application/rls-services+xml"),
        (Usage::OmaPresRules, "application/auth-policy+xml"),
        (Usage::PresRules, "application/auth-policy+xml"),
        (Usage::PidfManipulation, "application/pidf+xml"),
        (
            Usage::OmaPresContent,
            "application/vnd.oma.pres-content+xml",
        ),
        (Usage::XcapCaps, "application/xcap-caps+xml"),
        (
            Usage::XcapDirectory,
            "application/vnd.oma.xcap-directory+xml",
        ),
    ]
    .into_iter()
    .map(|(usage, mime)| Payload {
        usage,
        mime,
        root: root.to_owned(),
        limits: limits.clone(),
        constraints: *constraints,
    })
    .collect()
}

impl ApplicationUsage for Payload {
    fn auid(&self) -> &str {
        self.usage.auid().unwrap_or_default()
    }

    fn default_namespace(&self) -> &str {
        self.usage.namespace()
    }

    fn mime_type(&self) -> &str {
        self.mime
    }

    fn validate(&self, document: &str) -> Result<(), ValidationFailure> {
        simple_payloads::validate_schema(self.usage, document).map_err(|e| ValidationFailure {
            phrase: Some(e.to_string()),
        })
    }

    fn check_constraints(
        &self,
        document: &Document<'_>,
        ctx: &ConstraintContext<'_>,
    ) -> Result<(), ConstraintFailure> {
        match self.usage {
            Usage::ResourceLists => {
                resource_lists_uniqueness(document)?;
                self.references_stay_home(document, ctx.uri)
            }
            Usage::RlsServices => service_uris_unique(document),
            Usage::OmaPresContent => {
                // The schema passed already; this re-runs the validator for the OMA data
                // constraints (MIME type, encoding, size), which it only reports together.
                match simple_payloads::validate_with(
                    self.usage,
                    document.input_text(),
                    &self.constraints,
                ) {
                    Err(ValidationError::Constraint(phrase)) => {
                        Err(ConstraintFailure::Other(Some(phrase)))
                    }
                    _ => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    fn is_generated(&self) -> bool {
        matches!(self.usage, Usage::XcapCaps | Usage::XcapDirectory)
    }

    fn public_read(&self) -> bool {
        self.usage == Usage::OmaPresContent
    }
}

impl Payload {
    /// RFC 4826 §3.4.4/§3.4.5: `entry-ref@ref` (relative to the XCAP root) and
    /// `external@anchor` (absolute) may point at lists of the same user only, so a user
    /// cannot make the server expand another user's private lists. Anchors outside this
    /// server's XCAP root are not judged: they cannot be resolved here.
    fn references_stay_home(
        &self,
        document: &Document<'_>,
        uri: &XcapUri,
    ) -> Result<(), ConstraintFailure> {
        let Tree::Users(owner) = &uri.tree else {
            return Ok(());
        };
        let owner = crate::Xui::parse(owner);
        for node in document
            .descendants()
            .filter(|n| n.tag_name().namespace() == Some(RESOURCE_LISTS_NS))
        {
            let target = match node.tag_name().name() {
                "entry-ref" => node.attribute("ref").map(|r| (r, false)),
                "external" => node.attribute("anchor").map(|a| (a, true)),
                _ => None,
            };
            let Some((value, absolute)) = target else {
                continue;
            };
            let decoded = decode_any_uri(value);
            let target = if absolute {
                match crate::xcap_path_of(&decoded, &self.root) {
                    Some(path) => XcapUri::parse(path.0, path.1, &self.limits).ok(),
                    None => continue,
                }
            } else {
                let (path, query) = match decoded.split_once('?') {
                    Some((p, q)) => (p, Some(q)),
                    None => (&*decoded, None),
                };
                XcapUri::parse(path, query, &self.limits).ok()
            };
            let home = target.as_ref().is_some_and(|t| match &t.tree {
                Tree::Users(xui) => owner.is_some() && crate::Xui::parse(xui) == owner,
                Tree::Global => false,
            });
            if !home {
                return Err(ConstraintFailure::Other(Some(format!(
                    "{} must reference a list in the same user's documents",
                    node.tag_name().name()
                ))));
            }
        }
        Ok(())
    }
}

/// RFC 4826 §4.1: `service@uri` is unique (here: within the document, compared decoded).
fn service_uris_unique(document: &Document<'_>) -> Result<(), ConstraintFailure> {
    let uris = service_uris(document);
    let mut seen = HashSet::new();
    let duplicates: Vec<&String> = uris.iter().filter(|u| !seen.insert(*u)).collect();
    if duplicates.is_empty() {
        return Ok(());
    }
    Err(ConstraintFailure::Uniqueness(
        duplicates
            .into_iter()
            .map(|u| UniquenessConflict {
                field: "rls-services/service/@uri".into(),
                alt_values: alternative_service_uris(u, |c| uris.contains(c)),
            })
            .collect(),
    ))
}

/// The decoded `service@uri` values of an rls-services document, in document order.
pub(crate) fn service_uris(document: &Document<'_>) -> Vec<String> {
    document
        .descendants()
        .filter(|n| n.tag_name().namespace() == Some(RLS_SERVICES_NS))
        .filter(|n| n.tag_name().name() == "service")
        .filter_map(|n| n.attribute("uri"))
        .map(|u| decode_any_uri(u).into_owned())
        .collect()
}

/// Up to three free variants of a service URI (`sip:a+presence-2@example.com`, …) for the
/// `<alt-value>` suggestions of RFC 4825 §11.2.
pub(crate) fn alternative_service_uris(uri: &str, taken: impl Fn(&String) -> bool) -> Vec<String> {
    let (user, host) = match uri.rsplit_once('@') {
        Some((user, host)) => (user, Some(host)),
        None => (uri, None),
    };
    (2..100)
        .map(|i| match host {
            Some(host) => format!("{user}-{i}@{host}"),
            None => format!("{user}-{i}"),
        })
        .filter(|c| !taken(c))
        .take(3)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(u: Usage) -> Payload {
        all("/xcap-root", &Limits::default(), &Constraints::default())
            .into_iter()
            .find(|p| p.usage == u)
            .unwrap()
    }

    fn check(u: Usage, path: &str, xml: &str) -> Result<(), ConstraintFailure> {
        let uri = XcapUri::parse(path, None, &Limits::default()).unwrap();
        let doc = Document::parse(xml).unwrap();
        usage(u).check_constraints(&doc, &ConstraintContext { uri: &uri })
    }

    #[test]
    fn duplicate_service_uris_compare_decoded_and_get_alternatives() {
        let xml = r#"<rls-services xmlns="urn:ietf:params:xml:ns:rls-services">
            <service uri="sip%3Aa%40x"><list/></service>
            <service uri="sip:a@x"><list/></service></rls-services>"#;
        let err = check(Usage::RlsServices, "rls-services/users/sip:a@x/index", xml).unwrap_err();
        assert_eq!(
            err,
            ConstraintFailure::Uniqueness(vec![UniquenessConflict {
                field: "rls-services/service/@uri".into(),
                alt_values: vec!["sip:a-2@x".into(), "sip:a-3@x".into(), "sip:a-4@x".into()],
            }])
        );
    }

    #[test]
    fn resource_list_references_must_stay_in_the_owners_tree() {
        let own = r#"<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list name="a">
            <external anchor="https%3A//h/xcap-root/resource-lists/users/sip%3Aalice%40example.com/index/~~/resource-lists/list%5B%40name%3D%22b%22%5D"/>
            <entry-ref ref="resource-lists/users/sip:alice@example.com/index/~~/resource-lists/list%5b@name=%22b%22%5d"/>
            <external anchor="http://elsewhere.example.net/lists/1"/>
            </list></resource-lists>"#;
        let path = "resource-lists/users/sip:alice@example.com/index";
        assert_eq!(check(Usage::ResourceLists, path, own), Ok(()));
        let foreign = r#"<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list name="a">
            <entry-ref ref="resource-lists/users/sip:bob@example.com/index/~~/resource-lists/list"/>
            </list></resource-lists>"#;
        assert!(matches!(
            check(Usage::ResourceLists, path, foreign),
            Err(ConstraintFailure::Other(Some(p))) if p.contains("entry-ref")
        ));
    }

    #[test]
    fn pres_content_data_constraints_are_constraint_failures() {
        let xml = r#"<content xmlns="urn:oma:xml:prs:pres-content"><mime-type>text/plain</mime-type>
            <encoding>base64</encoding><data>aGk=</data></content>"#;
        let path = "org.openmobilealliance.pres-content/users/sip:a@x/oma_status-icon/index";
        assert!(matches!(
            check(Usage::OmaPresContent, path, xml),
            Err(ConstraintFailure::Other(Some(_)))
        ));
        assert!(usage(Usage::OmaPresContent).public_read());
        assert!(usage(Usage::XcapCaps).is_generated());
        assert!(!usage(Usage::ResourceLists).is_generated());
    }
}
