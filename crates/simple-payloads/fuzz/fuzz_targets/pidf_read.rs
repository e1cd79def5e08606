//! [`PidfDocument::parse`] against roxmltree on attacker-chosen text. Checks that nothing
//! panics, that a document the reader accepts is one roxmltree accepts too, and that what the
//! reader keeps of it (entity, namespace declarations, each top-level element's kind, id and
//! exact source text) is what roxmltree's tree says. roxmltree accepts some malformed XML the
//! reader refuses (see `pidf/reader/tests.rs`), so a refusal alone is not a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use roxmltree::{Document, Node, ParsingOptions};
use simple_payloads::pidf::{element_kind, has_typed_id, ElementKind, PidfDocument, PIDF_NS};

/// The `id` of an element whose name types it `xs:ID`, trimmed.
fn typed_id<'a>(node: Node<'a, '_>) -> Option<&'a str> {
    let name = node.tag_name();
    if !has_typed_id(name.namespace(), name.name()) {
        return None;
    }
    node.attributes()
        .find(|a| a.name() == "id" && a.namespace().is_none())
        .map(|a| a.value().trim())
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(ours) = PidfDocument::parse(text) else {
        return;
    };
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: 100_000,
        ..ParsingOptions::default()
    };
    let doc = match Document::parse_with_options(text, options) {
        Ok(doc) => doc,
        Err(e) => panic!("accepted, roxmltree refuses ({e}): {text:?}"),
    };
    let root = doc.root_element();
    assert_eq!(root.tag_name().namespace(), Some(PIDF_NS));
    assert_eq!(root.tag_name().name(), "presence");
    let declared: Vec<(Option<&str>, &str)> = root
        .namespaces()
        .filter(|ns| ns.name() != Some("xml"))
        .map(|ns| (ns.name(), ns.uri()))
        .collect();
    let read: Vec<(Option<&str>, &str)> = ours
        .namespaces()
        .iter()
        .map(|ns| (ns.prefix.as_deref(), ns.uri.as_str()))
        .collect();
    assert_eq!(read, declared);
    let expected: Vec<(ElementKind, Option<&str>, &str)> = root
        .children()
        .filter(Node::is_element)
        .filter_map(|child| {
            let name = child.tag_name();
            let namespace = name.namespace().filter(|ns| !ns.is_empty());
            let kind = element_kind(namespace, name.name())?;
            Some((kind, typed_id(child), &text[child.range()]))
        })
        .collect();
    let got: Vec<(ElementKind, Option<&str>, &str)> =
        ours.elements().map(|e| (e.kind, e.id, e.source)).collect();
    assert_eq!(got, expected, "{text:?}");
});
