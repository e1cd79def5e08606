//! The rls-services document (blink-compat §1.5, RFC 4826 §4): Blink maintains
//! `sip:<user>+presence@<domain>` and `sip:<user>+dialog@<domain>`, each pointing with a
//! percent-encoded `<resource-list>` at the matching `sipsimple_*_rls` list of the user's own
//! resource-lists document. Existing services are corrected in place; unrelated ones are kept.

use simple_payloads::{decode_any_uri, encode_any_uri};

use crate::account::Account;
use crate::ns::{RL, RLS};
use crate::xml::{Document, Element, Style, XmlError};

/// Blink writes this document with the default namespace.
pub const STYLE: Style = Style {
    fixed: &[(RLS, "", true), (RL, "rl", false)],
};

/// `(service user suffix, list, package)` for the two services Blink keeps.
const SERVICES: [(&str, &str, &str); 2] = [
    ("presence", "sipsimple_presence_rls", "presence"),
    ("dialog", "sipsimple_dialog_rls", "dialog"),
];

pub fn parse(text: Option<&str>) -> Result<Document, XmlError> {
    match text {
        Some(text) => Document::parse(text, RLS, "rls-services"),
        None => Ok(Document::new(Element::new(RLS, "rls-services"))),
    }
}

/// The decoded `sip:<user>+presence@<domain>` URI of the buddy-list service.
pub fn presence_service_uri(account: &Account) -> String {
    format!("sip:{}+presence@{}", account.user, account.domain)
}

/// Ensures both services exist with the right list reference and package.
pub fn normalise(doc: &mut Document, account: &Account) {
    for (suffix, list, package) in SERVICES {
        let uri = format!("sip:{}+{suffix}@{}", account.user, account.domain);
        let reference = encode_any_uri(&account.list_url(list));
        let existing = doc.root.elements_mut().find(|s| {
            s.is(RLS, "service")
                && s.attr("uri").map(|u| decode_any_uri(u) == uri.as_str()) == Some(true)
        });
        let service = match existing {
            Some(service) => service,
            None => {
                doc.root
                    .push(Element::new(RLS, "service").with_attr("uri", &encode_any_uri(&uri)));
                doc.root
                    .elements_mut()
                    .last()
                    .expect("the service was just added")
            }
        };
        service.remove_elements(|c| {
            c.is(RLS, "resource-list") || c.is(RLS, "list") || c.is(RLS, "packages")
        });
        // resource-list and packages lead, in that order; foreign children follow.
        service.children.insert(
            0,
            crate::xml::Node::Element(Element::new(RLS, "resource-list").with_text(&reference)),
        );
        service.children.insert(
            1,
            crate::xml::Node::Element(
                Element::new(RLS, "packages")
                    .with_child(Element::new(RLS, "package").with_text(package)),
            ),
        );
    }
}

/// The decoded `<resource-list>` of the service with decoded URI `uri`.
pub fn resource_list_of(doc: &Document, uri: &str) -> Option<String> {
    doc.root
        .elements()
        .find(|s| {
            s.is(RLS, "service") && s.attr("uri").map(|u| decode_any_uri(u) == uri) == Some(true)
        })
        .and_then(|s| s.child_text(RLS, "resource-list"))
        .map(|r| decode_any_uri(r.trim()).into_owned())
}
