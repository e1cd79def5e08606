//! The view of a composed PIDF document that a watcher with `provide-*` permissions may see:
//! the transformations of presence authorization rules, RFC 5025 §3.3 (data components,
//! §3.3.1; presence attributes, §3.3.2), with RFC 4745 §10.2 combination already done by the
//! caller ([`Transformations::combine`]).
//!
//! Permissions only ever grant: whatever no permission names is withheld (RFC 4745 §10.2).
//! - A tuple, person or device is shown when `provide-services`, `provide-persons` or
//!   `provide-devices` selects it (`all-*`, or any of its selectors); without that element no
//!   component of its kind is shown.
//! - Inside a shown component, the elements that make it what it is stay: a tuple's
//!   `<status>` with `<basic>`, `<contact>` and `<timestamp>`, a device's `<dm:deviceID>` (the
//!   schema requires it), every `<dm:timestamp>`. Every other child is a presence attribute
//!   that must be granted: by its own `provide-*` element (RPID elements, `<note>`,
//!   `<dm:deviceID>` of tuples, `user-input` with its level), by `provide-unknown-attribute`
//!   naming its namespace and local name (everything else: caps, CIPID, Blink's `extended`
//!   status), or by `provide-all-attributes`. Children of `<status>` other than `<basic>` are
//!   attributes too.
//! - `<note>` and extension elements directly under `<presence>` are attributes of the
//!   presentity as a whole and follow the same rules.
//!
//! The output is the input with the withheld elements (and `user-input` attributes) cut out,
//! byte for byte otherwise: namespace declarations stay where they were and no `xs:ID` changes,
//! so a valid document stays valid and its kept elements stay as published.

use std::ops::Range;

use roxmltree::{Document, Node, ParsingOptions};

use super::{PidfError, DATA_MODEL_NS, MAX_DOCUMENT_BYTES, MAX_NODES, PIDF_NS, RPID_NS};
use crate::common_policy::{Attribute, ProvideSet, Selector, Transformations, UserInput};
use crate::uri::decode_any_uri;

/// The parts of `document` (a PIDF document, normally the composed one) that `permissions`
/// let through. Fails only when `document` is not a PIDF document within the parser's limits.
pub fn transform(document: &str, permissions: &Transformations) -> Result<String, PidfError> {
    if document.len() > MAX_DOCUMENT_BYTES {
        return Err(PidfError::TooLarge);
    }
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
        ..ParsingOptions::default()
    };
    let doc = Document::parse_with_options(document, options)
        .map_err(|e| PidfError::NotWellFormed(e.to_string()))?;
    let root = doc.root_element();
    if !root.has_tag_name((PIDF_NS, "presence")) {
        return Err(PidfError::NotPresence);
    }
    let mut cuts = Cuts::default();
    for child in root.children().filter(Node::is_element) {
        let name = child.tag_name();
        let component = match (name.namespace(), name.name()) {
            (Some(PIDF_NS), "tuple") => Some((&permissions.services, Component::Service)),
            (Some(DATA_MODEL_NS), "person") => Some((&permissions.persons, Component::Person)),
            (Some(DATA_MODEL_NS), "device") => Some((&permissions.devices, Component::Device)),
            _ => None,
        };
        match component {
            Some((provided, component)) if selects(provided.as_ref(), component, child) => {
                filter_attributes(child, component, permissions, &mut cuts);
            }
            Some(_) => cuts.element(child),
            None => attribute(child, permissions, &mut cuts),
        }
    }
    Ok(cuts.apply(document))
}

/// The kind of data component (RFC 4479 §3) being filtered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Component {
    /// A `<tuple>` (RFC 4479 service).
    Service,
    /// A `<dm:person>`.
    Person,
    /// A `<dm:device>`.
    Device,
}

/// Whether `provide-services|persons|devices` selects this component (RFC 5025 §3.3.1).
fn selects(provided: Option<&ProvideSet>, component: Component, node: Node<'_, '_>) -> bool {
    let selectors = match provided {
        None => return false,
        Some(ProvideSet::All) => return true,
        Some(ProvideSet::Some(selectors)) => selectors,
    };
    selectors.iter().any(|selector| match selector {
        Selector::OccurrenceId(id) => id_of(node) == Some(id.trim()),
        Selector::Class(class) => child_text(node, RPID_NS, "class") == Some(class.trim()),
        Selector::ServiceUri(uri) if component == Component::Service => {
            contact(node).is_some_and(|contact| contact == uri.trim())
        }
        Selector::ServiceUriScheme(scheme) if component == Component::Service => contact(node)
            .is_some_and(|contact| {
                contact
                    .split_once(':')
                    .is_some_and(|(s, _)| s.eq_ignore_ascii_case(scheme.trim()))
            }),
        Selector::DeviceId(device) if component == Component::Device => {
            child_text(node, DATA_MODEL_NS, "deviceID")
                .is_some_and(|id| decode_any_uri(id) == device.trim())
        }
        // Selectors for another kind of component, or of unknown namespaces, select nothing.
        _ => false,
    })
}

fn id_of<'a>(node: Node<'a, '_>) -> Option<&'a str> {
    node.attributes()
        .find(|a| a.name() == "id" && a.namespace().is_none())
        .map(|a| a.value().trim())
}

fn child_text<'a>(node: Node<'a, '_>, namespace: &str, name: &str) -> Option<&'a str> {
    node.children()
        .find(|c| c.has_tag_name((namespace, name)))
        .map(|c| c.text().unwrap_or_default().trim())
}

/// The tuple's `<contact>`, percent-decoded once as Blink encodes it (blink-compat §0.1),
/// like the `service-uri` it is compared with.
fn contact(tuple: Node<'_, '_>) -> Option<String> {
    child_text(tuple, PIDF_NS, "contact").map(|c| decode_any_uri(c).into_owned())
}

/// Cuts the ungranted attributes out of a shown component.
fn filter_attributes(
    component_node: Node<'_, '_>,
    component: Component,
    permissions: &Transformations,
    cuts: &mut Cuts,
) {
    for child in component_node.children().filter(Node::is_element) {
        let name = child.tag_name();
        match (name.namespace(), name.name()) {
            (Some(PIDF_NS), "contact" | "timestamp") if component == Component::Service => {}
            (Some(PIDF_NS), "status") if component == Component::Service => {
                for detail in child.children().filter(Node::is_element) {
                    if !detail.has_tag_name((PIDF_NS, "basic")) {
                        attribute(detail, permissions, cuts);
                    }
                }
            }
            (Some(DATA_MODEL_NS), "timestamp") => {}
            (Some(DATA_MODEL_NS), "deviceID") if component == Component::Device => {}
            _ => attribute(child, permissions, cuts),
        }
    }
}

/// Keeps, trims or cuts one presence attribute element (RFC 5025 §3.3.2).
fn attribute(node: Node<'_, '_>, permissions: &Transformations, cuts: &mut Cuts) {
    if permissions.all_attributes {
        return;
    }
    let name = node.tag_name();
    let namespace = name.namespace().unwrap_or_default();
    let granted = |attribute: Attribute| permissions.attributes.contains(&attribute);
    let named = match (namespace, name.name()) {
        (PIDF_NS, "note") => Some(Attribute::Note),
        (DATA_MODEL_NS, "note") => Some(Attribute::Note),
        // A device's own deviceID is kept before this; a tuple's is an attribute.
        (DATA_MODEL_NS, "deviceID") => Some(Attribute::DeviceId),
        (RPID_NS, "user-input") => {
            user_input(
                node,
                permissions.user_input.unwrap_or(UserInput::False),
                cuts,
            );
            return;
        }
        (RPID_NS, local) => rpid_attribute(local),
        _ => None,
    };
    let keep = match named {
        Some(attribute) => granted(attribute),
        None => permissions
            .unknown_attributes
            .iter()
            .any(|u| u.provide && u.namespace == namespace && u.name == name.name()),
    };
    if !keep {
        cuts.element(node);
    }
}

/// The RPID elements with a `provide-*` permission of their own (RFC 5025 §3.3.2).
fn rpid_attribute(local: &str) -> Option<Attribute> {
    Some(match local {
        "activities" => Attribute::Activities,
        "class" => Attribute::Class,
        "mood" => Attribute::Mood,
        "place-is" => Attribute::PlaceIs,
        "place-type" => Attribute::PlaceType,
        "privacy" => Attribute::Privacy,
        "relationship" => Attribute::Relationship,
        "status-icon" => Attribute::StatusIcon,
        "sphere" => Attribute::Sphere,
        "time-offset" => Attribute::TimeOffset,
        _ => return None,
    })
}

/// `provide-user-input` levels (RFC 5025 §3.3.2): `false` withholds the element, `bare` keeps
/// only its active/idle value, `thresholds` adds `idle-threshold`, `full` adds `last-input`.
fn user_input(node: Node<'_, '_>, level: UserInput, cuts: &mut Cuts) {
    if level == UserInput::False {
        cuts.element(node);
        return;
    }
    for attr in node.attributes().filter(|a| a.namespace().is_none()) {
        let withheld = match attr.name() {
            "idle-threshold" => level < UserInput::Thresholds,
            "last-input" => level < UserInput::Full,
            _ => false,
        };
        if withheld {
            cuts.ranges.push(attr.range());
        }
    }
}

/// Byte ranges of the source to leave out, collected in document order.
#[derive(Default)]
struct Cuts {
    ranges: Vec<Range<usize>>,
}

impl Cuts {
    /// Cuts an element and the indentation before it, so withheld elements leave no blank
    /// lines behind.
    fn element(&mut self, node: Node<'_, '_>) {
        let mut range = node.range();
        if let Some(space) = node
            .prev_sibling()
            .filter(|s| s.is_text() && s.text().is_some_and(|t| t.trim().is_empty()))
        {
            range.start = space.range().start;
        }
        self.ranges.push(range);
    }

    fn apply(mut self, source: &str) -> String {
        self.ranges.sort_by_key(|r| r.start);
        let mut out = String::with_capacity(source.len());
        let mut pos = 0;
        for range in self.ranges {
            // Ranges come from distinct nodes, none inside another; never step back anyway.
            if range.start >= pos {
                out.push_str(&source[pos..range.start]);
                pos = range.end;
            }
        }
        out.push_str(&source[pos..]);
        out
    }
}

#[cfg(test)]
mod tests;
