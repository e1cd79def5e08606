//! Resource List Meta-Information documents, `application/rlmi+xml` (RFC 4662 §5.2–§5.3): the
//! root part of every NOTIFY of a resource list subscription. Built by the resource list
//! server, read by the client.
//!
//! URIs are written as given: `list/@uri` is the service URI and `resource/@uri` echoes the
//! list entry (blink-compat §4.2: Blink matches them by plain string comparison, so they are
//! not percent-encoded the way XCAP anyURIs are).

use std::fmt::Write as _;

use roxmltree::{Document, Node, ParsingOptions};

use crate::xcap_error::escape_into;

/// `urn:ietf:params:xml:ns:rlmi` (RFC 4662 §6).
pub const RLMI_NS: &str = "urn:ietf:params:xml:ns:rlmi";
/// The MIME type (RFC 4662 §9.2).
pub const CONTENT_TYPE: &str = "application/rlmi+xml";
/// Largest document [`Rlmi::parse`] accepts.
pub const MAX_DOCUMENT_BYTES: usize = 4 * 1024 * 1024;
/// Most XML nodes in a parsed document (a 10 000-entry list needs about 60 000).
const MAX_NODES: u32 = 400_000;

/// The state of one instance of a resource (RFC 4662 §5.2): the back-end subscription's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceState {
    Active,
    Pending,
    Terminated,
}

impl InstanceState {
    /// The keyword used in documents.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Active => "active",
            InstanceState::Pending => "pending",
            InstanceState::Terminated => "terminated",
        }
    }

    /// Reads the keyword (the schema's string enumeration: no whitespace is trimmed).
    pub fn parse(word: &str) -> Option<InstanceState> {
        match word {
            "active" => Some(InstanceState::Active),
            "pending" => Some(InstanceState::Pending),
            "terminated" => Some(InstanceState::Terminated),
            _ => None,
        }
    }
}

/// A `<name>`: a human-readable name of the list or a resource, optionally with `xml:lang`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    pub text: String,
    pub lang: Option<String>,
}

/// An `<instance>`: one back-end subscription to a resource (RFC 4662 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Unique among the resource's instances and stable across the documents of a
    /// subscription.
    pub id: String,
    pub state: InstanceState,
    /// Why the instance is terminated (a `Subscription-State` reason, e.g. `rejected`).
    pub reason: Option<String>,
    /// Content-ID (without angle brackets) of the part carrying the resource's state.
    pub cid: Option<String>,
}

/// A `<resource>`: one member of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub uri: String,
    pub names: Vec<Name>,
    pub instances: Vec<Instance>,
}

/// A `<list>` document (RFC 4662 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rlmi {
    /// The list's URI (the service URI of the subscription).
    pub uri: String,
    /// Increases by one with every NOTIFY of a subscription, starting at 0.
    pub version: u32,
    /// Whether every resource of the list is present, or only those that changed.
    pub full_state: bool,
    /// Set only when this list is itself a part of an enclosing list's NOTIFY.
    pub cid: Option<String>,
    pub names: Vec<Name>,
    pub resources: Vec<Resource>,
}

/// Why [`Rlmi::parse`] refused a document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RlmiError {
    #[error("the document is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge,
    /// Not well-formed XML, a DTD, or too many nodes.
    #[error("not well-formed: {0}")]
    NotWellFormed(String),
    #[error("the document element is not <list> in the rlmi namespace")]
    NotRlmi,
    /// A required attribute is missing or has a value the schema does not allow.
    #[error("<{element}> has a missing or invalid {attribute}")]
    BadAttribute {
        element: &'static str,
        attribute: &'static str,
    },
}

impl Rlmi {
    /// Serialises the document with a default namespace, attributes in schema order.
    pub fn to_xml(&self) -> String {
        let instances: usize = self.resources.iter().map(|r| r.instances.len()).sum();
        let mut out = String::with_capacity(
            160 + self.uri.len() + 80 * self.resources.len() + 80 * instances,
        );
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<list xmlns=\"");
        out.push_str(RLMI_NS);
        out.push_str("\" uri=\"");
        escape_into(&mut out, &self.uri, true);
        let _ = write!(
            out,
            "\" version=\"{}\" fullState=\"{}\"",
            self.version, self.full_state
        );
        if let Some(cid) = &self.cid {
            out.push_str(" cid=\"");
            escape_into(&mut out, cid, true);
            out.push('"');
        }
        out.push_str(">\n");
        write_names(&mut out, &self.names, "  ");
        for resource in &self.resources {
            out.push_str("  <resource uri=\"");
            escape_into(&mut out, &resource.uri, true);
            if resource.names.is_empty() && resource.instances.is_empty() {
                out.push_str("\"/>\n");
                continue;
            }
            out.push_str("\">\n");
            write_names(&mut out, &resource.names, "    ");
            for instance in &resource.instances {
                write_instance(&mut out, instance);
            }
            out.push_str("  </resource>\n");
        }
        out.push_str("</list>\n");
        out
    }

    /// Reads a document. Unknown attributes and the content of `<instance>` are skipped, as
    /// the schema's lax wildcards allow; elements of other namespaces are ignored.
    pub fn parse(text: &str) -> Result<Rlmi, RlmiError> {
        if text.len() > MAX_DOCUMENT_BYTES {
            return Err(RlmiError::TooLarge);
        }
        let options = ParsingOptions {
            allow_dtd: false,
            nodes_limit: MAX_NODES,
            ..ParsingOptions::default()
        };
        let doc = Document::parse_with_options(text, options)
            .map_err(|e| RlmiError::NotWellFormed(e.to_string()))?;
        let root = doc.root_element();
        if !is(root, "list") {
            return Err(RlmiError::NotRlmi);
        }
        let bad = |element, attribute| RlmiError::BadAttribute { element, attribute };
        let uri = root.attribute("uri").ok_or(bad("list", "uri"))?;
        let version = root
            .attribute("version")
            .and_then(|v| v.trim().parse::<u32>().ok())
            .ok_or(bad("list", "version"))?;
        let full_state = root
            .attribute("fullState")
            .and_then(parse_boolean)
            .ok_or(bad("list", "fullState"))?;
        let mut resources = Vec::new();
        for resource in root.children().filter(|n| is(*n, "resource")) {
            let uri = resource.attribute("uri").ok_or(bad("resource", "uri"))?;
            let instances = resource
                .children()
                .filter(|n| is(*n, "instance"))
                .map(read_instance)
                .collect::<Result<Vec<_>, _>>()?;
            resources.push(Resource {
                uri: uri.to_owned(),
                names: read_names(resource),
                instances,
            });
        }
        Ok(Rlmi {
            uri: uri.to_owned(),
            version,
            full_state,
            cid: root.attribute("cid").map(str::to_owned),
            names: read_names(root),
            resources,
        })
    }
}

fn write_names(out: &mut String, names: &[Name], indent: &str) {
    for name in names {
        out.push_str(indent);
        out.push_str("<name");
        if let Some(lang) = &name.lang {
            out.push_str(" xml:lang=\"");
            escape_into(out, lang, true);
            out.push('"');
        }
        out.push('>');
        escape_into(out, &name.text, false);
        out.push_str("</name>\n");
    }
}

fn write_instance(out: &mut String, instance: &Instance) {
    out.push_str("    <instance id=\"");
    escape_into(out, &instance.id, true);
    let _ = write!(out, "\" state=\"{}\"", instance.state.as_str());
    if let Some(reason) = &instance.reason {
        out.push_str(" reason=\"");
        escape_into(out, reason, true);
        out.push('"');
    }
    if let Some(cid) = &instance.cid {
        out.push_str(" cid=\"");
        escape_into(out, cid, true);
        out.push('"');
    }
    out.push_str("/>\n");
}

fn read_names(node: Node<'_, '_>) -> Vec<Name> {
    node.children()
        .filter(|n| is(*n, "name"))
        .map(|n| Name {
            text: n.text().unwrap_or_default().to_owned(),
            lang: n
                .attribute((roxmltree::NS_XML_URI, "lang"))
                .map(str::to_owned),
        })
        .collect()
}

fn read_instance(node: Node<'_, '_>) -> Result<Instance, RlmiError> {
    let bad = |attribute| RlmiError::BadAttribute {
        element: "instance",
        attribute,
    };
    Ok(Instance {
        id: node.attribute("id").ok_or(bad("id"))?.to_owned(),
        state: node
            .attribute("state")
            .and_then(InstanceState::parse)
            .ok_or(bad("state"))?,
        reason: node.attribute("reason").map(str::to_owned),
        cid: node.attribute("cid").map(str::to_owned),
    })
}

/// xs:boolean after whitespace collapsing.
fn parse_boolean(value: &str) -> Option<bool> {
    match value.trim_matches([' ', '\t', '\n', '\r']) {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

fn is(node: Node<'_, '_>, name: &str) -> bool {
    node.is_element()
        && node.tag_name().namespace() == Some(RLMI_NS)
        && node.tag_name().name() == name
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{validate, Usage};
    use proptest::prelude::*;

    fn sample() -> Rlmi {
        Rlmi {
            uri: "sip:alice+presence@example.com".into(),
            version: 3,
            full_state: false,
            cid: None,
            names: vec![Name {
                text: "Buddies & <co>".into(),
                lang: Some("en".into()),
            }],
            resources: vec![
                Resource {
                    uri: "sip:bob@example.com".into(),
                    names: vec![Name {
                        text: "Bob".into(),
                        lang: None,
                    }],
                    instances: vec![Instance {
                        id: "i1".into(),
                        state: InstanceState::Active,
                        reason: None,
                        cid: Some("bob-9@rls.example.com".into()),
                    }],
                },
                Resource {
                    uri: "sip:carol@example.org".into(),
                    names: vec![],
                    instances: vec![Instance {
                        id: "i2".into(),
                        state: InstanceState::Terminated,
                        reason: Some("rejected".into()),
                        cid: None,
                    }],
                },
                Resource {
                    uri: "sip:+31201234567".into(),
                    names: vec![],
                    instances: vec![],
                },
            ],
        }
    }

    #[test]
    fn writes_the_rfc_4662_shape() {
        let xml = sample().to_xml();
        assert!(xml.contains(
            "<list xmlns=\"urn:ietf:params:xml:ns:rlmi\" uri=\"sip:alice+presence@example.com\" \
             version=\"3\" fullState=\"false\">"
        ));
        assert!(xml.contains("<name xml:lang=\"en\">Buddies &amp; &lt;co&gt;</name>"));
        assert!(
            xml.contains("<instance id=\"i1\" state=\"active\" cid=\"bob-9@rls.example.com\"/>")
        );
        assert!(xml.contains("<instance id=\"i2\" state=\"terminated\" reason=\"rejected\"/>"));
        assert!(xml.contains("<resource uri=\"sip:+31201234567\"/>"));
        validate(Usage::Rlmi, &xml).unwrap_or_else(|e| panic!("{e}:\n{xml}"));
    }

    #[test]
    fn parse_inverts_to_xml() {
        let rlmi = sample();
        assert_eq!(Rlmi::parse(&rlmi.to_xml()), Ok(rlmi));
    }

    #[test]
    fn parses_the_blink_compat_example_with_prefixes_and_extensions() {
        let text = r#"<r:list xmlns:r="urn:ietf:params:xml:ns:rlmi" uri="sip:alice+presence@example.com" version=" 7 " fullState="1" x:y="z" xmlns:x="urn:x">
            <r:resource uri="sip:bob@example.com"><r:instance id="i1" state="active" cid="bob-9@rls.example.com"><x:ext/></r:instance></r:resource>
            <x:other/>
        </r:list>"#;
        let rlmi = Rlmi::parse(text).unwrap();
        assert_eq!((rlmi.version, rlmi.full_state), (7, true));
        assert_eq!(
            rlmi.resources[0].instances[0].cid.as_deref(),
            Some("bob-9@rls.example.com")
        );
    }

    #[test]
    fn rejects_bad_documents_precisely() {
        let ns = RLMI_NS;
        let cases = [
            ("<list".to_owned(), "not well-formed"),
            (
                "<list xmlns='urn:x' uri='a' version='0' fullState='true'/>".to_owned(),
                "not <list>",
            ),
            (
                format!("<list xmlns='{ns}' version='0' fullState='true'/>"),
                "<list> has a missing or invalid uri",
            ),
            (
                format!("<list xmlns='{ns}' uri='a' version='4294967296' fullState='true'/>"),
                "version",
            ),
            (
                format!("<list xmlns='{ns}' uri='a' version='0' fullState='yes'/>"),
                "fullState",
            ),
            (
                format!(
                    "<list xmlns='{ns}' uri='a' version='0' fullState='true'><resource uri='b'>\
                     <instance id='1' state='gone'/></resource></list>"
                ),
                "<instance> has a missing or invalid state",
            ),
        ];
        for (text, expected) in cases {
            let error = Rlmi::parse(&text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
        let big = " ".repeat(MAX_DOCUMENT_BYTES + 1);
        assert_eq!(Rlmi::parse(&big), Err(RlmiError::TooLarge));
    }

    fn text() -> impl Strategy<Value = String> {
        // Characters XML can carry, markup and the whitespace attribute escaping preserves.
        "[a-zA-Z0-9 :@+%&<>\"'\t\nå€-]{0,12}"
    }

    fn state() -> impl Strategy<Value = InstanceState> {
        prop_oneof![
            Just(InstanceState::Active),
            Just(InstanceState::Pending),
            Just(InstanceState::Terminated),
        ]
    }

    prop_compose! {
        fn name()(text in "[a-zA-Z0-9 &<>]{0,8}", lang in proptest::option::of("[a-z]{2}")) -> Name {
            Name { text, lang }
        }
    }

    prop_compose! {
        fn instance()(id in text(), state in state(), reason in proptest::option::of(text()),
                      cid in proptest::option::of(text())) -> Instance {
            Instance { id, state, reason, cid }
        }
    }

    prop_compose! {
        fn resource()(uri in text(), names in proptest::collection::vec(name(), 0..2),
                      instances in proptest::collection::vec(instance(), 0..3)) -> Resource {
            Resource { uri, names, instances }
        }
    }

    proptest! {
        #[test]
        fn round_trips(uri in text(), version in any::<u32>(), full_state in any::<bool>(),
                       cid in proptest::option::of(text()),
                       names in proptest::collection::vec(name(), 0..2),
                       resources in proptest::collection::vec(resource(), 0..5)) {
            let rlmi = Rlmi { uri, version, full_state, cid, names, resources };
            let xml = rlmi.to_xml();
            prop_assert_eq!(Rlmi::parse(&xml), Ok(rlmi));
        }

        #[test]
        fn parse_never_panics(text in "\\PC{0,200}") {
            let _ = Rlmi::parse(&text);
        }
    }
}
