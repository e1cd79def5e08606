//! A small owned XML tree: documents are read with roxmltree, edited in place (like the SDK edits
//! its lxml tree, so unknown elements and attributes survive, blink-compat §1.3) and written back
//! with a single-quoted XML declaration and fixed prefixes per document type (blink-compat §0.5).
//!
//! Whitespace-only text between elements is dropped on input and the output is re-indented; text
//! in leaf or mixed-content elements is kept exactly.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The largest XCAP document accepted or produced (OMA allows 300 KiB of icon base64).
pub const MAX_DOCUMENT_BYTES: usize = 2 * 1024 * 1024;
const MAX_DEPTH: usize = 64;
const MAX_NODES: u32 = 200_000;
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("document larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge,
    #[error("document nested deeper than {MAX_DEPTH} elements")]
    TooDeep,
    #[error("malformed XML: {0}")]
    Malformed(String),
    #[error("unexpected document element {{{0}}}{1}")]
    WrongRoot(String, String),
}

/// One child of an element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    Text(String),
    Comment(String),
}

/// An attribute; `value` is the unescaped text as it stands in the document (anyURI values
/// therefore still percent-encoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    pub ns: Option<String>,
    pub name: String,
    pub value: String,
}

/// An element with a namespace-resolved name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub ns: Option<String>,
    pub name: String,
    pub attrs: Vec<Attr>,
    pub children: Vec<Node>,
}

/// A parsed document: its element plus the prefixes the source used, so foreign namespaces keep
/// their familiar prefixes when written back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub root: Element,
    prefixes: BTreeMap<String, String>,
}

/// How one document type is written: `(namespace, prefix, always declared)`; prefix `""` is the
/// default namespace.
pub struct Style {
    pub fixed: &'static [(&'static str, &'static str, bool)],
}

impl Element {
    pub fn new(ns: &str, name: &str) -> Element {
        Element {
            ns: Some(ns.to_owned()),
            name: name.to_owned(),
            attrs: Vec::new(),
            children: Vec::new(),
        }
    }

    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.ns.as_deref() == Some(ns) && self.name == name
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.ns.is_none() && a.name == name)
            .map(|a| a.value.as_str())
    }

    pub fn set_attr(&mut self, name: &str, value: &str) {
        match self
            .attrs
            .iter_mut()
            .find(|a| a.ns.is_none() && a.name == name)
        {
            Some(attr) => attr.value = value.to_owned(),
            None => self.attrs.push(Attr {
                ns: None,
                name: name.to_owned(),
                value: value.to_owned(),
            }),
        }
    }

    pub fn remove_attr(&mut self, name: &str) {
        self.attrs.retain(|a| !(a.ns.is_none() && a.name == name));
    }

    pub fn with_attr(mut self, name: &str, value: &str) -> Element {
        self.set_attr(name, value);
        self
    }

    pub fn with_text(mut self, text: &str) -> Element {
        self.children = vec![Node::Text(text.to_owned())];
        self
    }

    pub fn with_child(mut self, child: Element) -> Element {
        self.children.push(Node::Element(child));
        self
    }

    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            _ => None,
        })
    }

    pub fn elements_mut(&mut self) -> impl Iterator<Item = &mut Element> {
        self.children.iter_mut().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            _ => None,
        })
    }

    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.is(ns, name))
    }

    pub fn child_mut(&mut self, ns: &str, name: &str) -> Option<&mut Element> {
        self.elements_mut().find(|e| e.is(ns, name))
    }

    /// The concatenated text content of this element's direct text children.
    pub fn text(&self) -> String {
        self.children
            .iter()
            .filter_map(|n| match n {
                Node::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    pub fn child_text(&self, ns: &str, name: &str) -> Option<String> {
        self.child(ns, name).map(Element::text)
    }

    pub fn push(&mut self, child: Element) {
        self.children.push(Node::Element(child));
    }

    /// Removes the element children for which `drop` returns true, keeping everything else.
    pub fn remove_elements(&mut self, mut drop: impl FnMut(&Element) -> bool) {
        self.children.retain(|n| match n {
            Node::Element(e) => !drop(e),
            _ => true,
        });
    }

    /// The child `{ns}name`, created if missing at the position the schema wants: before the
    /// first existing sibling whose local name appears after `name` in `order`.
    pub fn ensure_child(&mut self, ns: &str, name: &str, order: &[&str]) -> &mut Element {
        if let Some(index) = self.position(|e| e.is(ns, name)) {
            return self.element_at(index);
        }
        let rank = order.iter().position(|n| *n == name).unwrap_or(order.len());
        let later = |e: &Element| {
            e.ns.as_deref() == Some(ns)
                && order
                    .iter()
                    .position(|n| *n == e.name)
                    .is_some_and(|r| r > rank)
        };
        let at = self
            .children
            .iter()
            .position(|n| matches!(n, Node::Element(e) if later(e) || e.ns.as_deref() != Some(ns)))
            .unwrap_or(self.children.len());
        self.children
            .insert(at, Node::Element(Element::new(ns, name)));
        self.element_at(at)
    }

    fn position(&self, pred: impl Fn(&Element) -> bool) -> Option<usize> {
        self.children
            .iter()
            .position(|n| matches!(n, Node::Element(e) if pred(e)))
    }

    fn element_at(&mut self, index: usize) -> &mut Element {
        match &mut self.children[index] {
            Node::Element(e) => e,
            // Only called with indices found by `position` over element nodes.
            _ => unreachable!("index of an element node"),
        }
    }

    pub fn set_text(&mut self, text: &str) {
        self.children = vec![Node::Text(text.to_owned())];
    }
}

impl Document {
    /// Parses `text`, requiring the document element `{ns}root`.
    pub fn parse(text: &str, ns: &str, root: &str) -> Result<Document, XmlError> {
        if text.len() > MAX_DOCUMENT_BYTES {
            return Err(XmlError::TooLarge);
        }
        let options = roxmltree::ParsingOptions {
            allow_dtd: false,
            nodes_limit: MAX_NODES,
            ..roxmltree::ParsingOptions::default()
        };
        let doc = roxmltree::Document::parse_with_options(text, options)
            .map_err(|e| XmlError::Malformed(e.to_string()))?;
        let top = doc.root_element();
        let tag = top.tag_name();
        if tag.namespace() != Some(ns) || tag.name() != root {
            return Err(XmlError::WrongRoot(
                tag.namespace().unwrap_or_default().to_owned(),
                tag.name().to_owned(),
            ));
        }
        let mut prefixes = BTreeMap::new();
        let root = convert(top, 0, &mut prefixes)?;
        Ok(Document { root, prefixes })
    }

    pub fn new(root: Element) -> Document {
        Document {
            root,
            prefixes: BTreeMap::new(),
        }
    }

    /// Writes the document with `style`'s prefixes; foreign namespaces keep their source prefix
    /// when it is free, else get `ns0`, `ns1`...
    pub fn serialize(&self, style: &Style) -> String {
        let mut used = Vec::new();
        collect_namespaces(&self.root, &mut used);
        let mut element_prefix: BTreeMap<String, String> = BTreeMap::new();
        let mut declared: Vec<(String, String)> = Vec::new();
        let mut taken: Vec<String> = vec!["xml".into(), "xmlns".into()];
        for (ns, prefix, always) in style.fixed {
            element_prefix.insert((*ns).to_owned(), (*prefix).to_owned());
            taken.push((*prefix).to_owned());
            if *always || used.iter().any(|u| u == ns) {
                declared.push(((*ns).to_owned(), (*prefix).to_owned()));
            }
        }
        let mut counter = 0;
        let mut fresh = |taken: &mut Vec<String>, hint: Option<&String>| -> String {
            if let Some(hint) = hint.filter(|h| !h.is_empty() && !taken.contains(h)) {
                taken.push(hint.clone());
                return hint.clone();
            }
            loop {
                let candidate = format!("ns{counter}");
                counter += 1;
                if !taken.contains(&candidate) {
                    taken.push(candidate.clone());
                    return candidate;
                }
            }
        };
        for ns in &used {
            if ns == XML_NS || element_prefix.contains_key(ns) {
                continue;
            }
            let prefix = fresh(&mut taken, self.prefixes.get(ns));
            element_prefix.insert(ns.clone(), prefix.clone());
            declared.push((ns.clone(), prefix));
        }
        // Attributes cannot use the default namespace; give such namespaces a named prefix too.
        let mut attr_prefix = element_prefix.clone();
        let mut attr_namespaces = Vec::new();
        collect_attr_namespaces(&self.root, &mut attr_namespaces);
        for ns in attr_namespaces {
            if ns != XML_NS && attr_prefix.get(&ns).is_some_and(|p| p.is_empty()) {
                let prefix = fresh(&mut taken, None);
                attr_prefix.insert(ns.clone(), prefix.clone());
                declared.push((ns, prefix));
            }
        }
        let mut out = String::from("<?xml version='1.0' encoding='UTF-8'?>\n");
        let writer = Writer {
            element_prefix: &element_prefix,
            attr_prefix: &attr_prefix,
        };
        writer.element(&mut out, &self.root, Some(&declared), None, 0);
        out.push('\n');
        out
    }
}

fn convert(
    node: roxmltree::Node<'_, '_>,
    depth: usize,
    prefixes: &mut BTreeMap<String, String>,
) -> Result<Element, XmlError> {
    if depth > MAX_DEPTH {
        return Err(XmlError::TooDeep);
    }
    for ns in node.namespaces() {
        prefixes
            .entry(ns.uri().to_owned())
            .or_insert_with(|| ns.name().unwrap_or_default().to_owned());
    }
    let tag = node.tag_name();
    let attrs = node
        .attributes()
        .map(|a| Attr {
            ns: a.namespace().filter(|n| !n.is_empty()).map(str::to_owned),
            name: a.name().to_owned(),
            value: a.value().to_owned(),
        })
        .collect();
    let has_elements = node.children().any(|c| c.is_element());
    let mut children = Vec::new();
    for child in node.children() {
        if child.is_element() {
            children.push(Node::Element(convert(child, depth + 1, prefixes)?));
        } else if child.is_text() {
            let text = child.text().unwrap_or_default();
            if !(has_elements && text.trim().is_empty()) {
                children.push(Node::Text(text.to_owned()));
            }
        } else if child.is_comment() {
            children.push(Node::Comment(child.text().unwrap_or_default().to_owned()));
        }
    }
    Ok(Element {
        // roxmltree reports `xmlns=""` as an empty namespace; it means none.
        ns: tag.namespace().filter(|n| !n.is_empty()).map(str::to_owned),
        name: tag.name().to_owned(),
        attrs,
        children,
    })
}

fn collect_namespaces(element: &Element, out: &mut Vec<String>) {
    if let Some(ns) = &element.ns {
        if !out.contains(ns) {
            out.push(ns.clone());
        }
    }
    for attr in &element.attrs {
        if let Some(ns) = &attr.ns {
            if !out.contains(ns) {
                out.push(ns.clone());
            }
        }
    }
    for child in element.elements() {
        collect_namespaces(child, out);
    }
}

fn collect_attr_namespaces(element: &Element, out: &mut Vec<String>) {
    for attr in &element.attrs {
        if let Some(ns) = &attr.ns {
            if !out.contains(ns) {
                out.push(ns.clone());
            }
        }
    }
    for child in element.elements() {
        collect_attr_namespaces(child, out);
    }
}

struct Writer<'a> {
    element_prefix: &'a BTreeMap<String, String>,
    attr_prefix: &'a BTreeMap<String, String>,
}

impl Writer<'_> {
    fn element(
        &self,
        out: &mut String,
        element: &Element,
        declarations: Option<&[(String, String)]>,
        default_ns: Option<&str>,
        depth: usize,
    ) {
        let prefix = element
            .ns
            .as_ref()
            .and_then(|ns| self.element_prefix.get(ns))
            .map(String::as_str);
        let qname = match prefix {
            Some(p) if !p.is_empty() => format!("{p}:{}", element.name),
            _ => element.name.clone(),
        };
        out.push('<');
        out.push_str(&qname);
        let mut inner_default = default_ns;
        if let Some(declarations) = declarations {
            for (ns, p) in declarations {
                if p.is_empty() {
                    inner_default = Some(ns);
                    let _ = write!(out, " xmlns=\"{}\"", escape_attr(ns));
                } else {
                    let _ = write!(out, " xmlns:{p}=\"{}\"", escape_attr(ns));
                }
            }
        }
        // An unprefixed element in another namespace than the inherited default redeclares it.
        match (&element.ns, prefix) {
            (Some(ns), Some("")) if inner_default != Some(ns.as_str()) => {
                let _ = write!(out, " xmlns=\"{}\"", escape_attr(ns));
                inner_default = Some(ns);
            }
            (None, _) if inner_default.is_some() => {
                out.push_str(" xmlns=\"\"");
                inner_default = None;
            }
            _ => {}
        }
        for attr in &element.attrs {
            out.push(' ');
            match attr.ns.as_deref() {
                Some(XML_NS) => out.push_str("xml:"),
                Some(ns) => {
                    if let Some(p) = self.attr_prefix.get(ns) {
                        out.push_str(p);
                        out.push(':');
                    }
                }
                None => {}
            }
            let _ = write!(out, "{}=\"{}\"", attr.name, escape_attr(&attr.value));
        }
        if element.children.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        let structured = element.children.iter().all(|c| !matches!(c, Node::Text(_)));
        for child in &element.children {
            if structured {
                out.push('\n');
                indent(out, depth + 1);
            }
            match child {
                Node::Element(e) => {
                    let next = if structured { depth + 1 } else { 0 };
                    self.element(out, e, None, inner_default, next)
                }
                Node::Text(t) => out.push_str(&escape_text(t)),
                Node::Comment(c) => {
                    // "--" is not allowed inside a comment; it cannot come from a parsed one.
                    let _ = write!(out, "<!--{}-->", c.replace("--", "- -"));
                }
            }
        }
        if structured {
            out.push('\n');
            indent(out, depth);
        }
        out.push_str("</");
        out.push_str(&qname);
        out.push('>');
    }
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

fn escape_attr(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const STYLE: Style = Style {
        fixed: &[("urn:a", "a", true), ("urn:d", "", false)],
    };

    #[test]
    fn round_trips_foreign_namespaces_comments_and_escapes() {
        let text = r#"<a:r xmlns:a="urn:a" xmlns:f="urn:foreign" f:x="1&amp;2"><!-- c --><f:e>t &lt; u</f:e><a:m>x<f:i/>y</a:m></a:r>"#;
        let doc = Document::parse(text, "urn:a", "r").unwrap();
        let out = doc.serialize(&STYLE);
        assert!(out.starts_with("<?xml version='1.0' encoding='UTF-8'?>\n<a:r xmlns:a=\"urn:a\" xmlns:f=\"urn:foreign\" f:x=\"1&amp;2\">"));
        assert!(out.contains("<!-- c -->"));
        assert!(out.contains("<f:e>t &lt; u</f:e>"));
        assert!(out.contains("<a:m>x<f:i/>y</a:m>"));
        let again = Document::parse(&out, "urn:a", "r").unwrap();
        assert_eq!(again.root, doc.root);
    }

    #[test]
    fn default_namespace_and_unqualified_children() {
        let mut root = Element::new("urn:d", "r");
        root.push(Element {
            ns: None,
            name: "plain".into(),
            attrs: vec![],
            children: vec![],
        });
        root.push(Element::new("urn:d", "k"));
        let out = Document::new(root.clone()).serialize(&STYLE);
        assert!(
            out.contains("<r xmlns:a=\"urn:a\" xmlns=\"urn:d\">"),
            "{out}"
        );
        assert!(out.contains("<plain xmlns=\"\"/>"));
        let again = Document::parse(&out, "urn:d", "r").unwrap();
        assert_eq!(again.root, root);
    }

    #[test]
    fn rejects_wrong_root_dtd_and_depth() {
        assert!(matches!(
            Document::parse("<x xmlns='urn:b'/>", "urn:a", "r"),
            Err(XmlError::WrongRoot(..))
        ));
        assert!(Document::parse(
            "<!DOCTYPE r [<!ENTITY e 'x'>]><r xmlns='urn:a'/>",
            "urn:a",
            "r"
        )
        .is_err());
        let deep = format!(
            "<r xmlns='urn:a'>{}{}</r>",
            "<r>".repeat(100),
            "</r>".repeat(100)
        );
        assert_eq!(Document::parse(&deep, "urn:a", "r"), Err(XmlError::TooDeep));
    }

    #[test]
    fn ensure_child_inserts_in_schema_order() {
        let mut e = Element::new("urn:a", "contact");
        e.push(Element::new("urn:a", "presence"));
        e.push(Element::new("urn:x", "ext"));
        e.ensure_child("urn:a", "name", &["name", "uris", "dialog", "presence"]);
        e.ensure_child("urn:a", "dialog", &["name", "uris", "dialog", "presence"]);
        let names: Vec<_> = e.elements().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["name", "dialog", "presence", "ext"]);
    }
}
