//! Document, element, attribute and namespace-binding operations: RFC 4825 §8.2 (PUT: locating
//! the parent §8.2.1, verifying the body §8.2.2, creation §8.2.3, replacement §8.2.4, validation
//! §8.2.5 including the idempotency check), §8.3 (GET), §8.4 (DELETE) and §10 (namespace binding
//! format).
//!
//! Edits splice the stored text using the byte ranges roxmltree reports, so everything outside
//! the edited node — comments, whitespace, foreign elements, prefixes, quoting style — stays
//! byte-identical. An inserted element copies the whitespace that precedes its neighbour, and a
//! deleted one takes its preceding whitespace along, so an insert followed by a delete restores
//! the original bytes exactly.

use std::ops::Range;

use roxmltree::{Document, Node, ParsingOptions};

use crate::error::XcapError;
use crate::generated::escape;
use crate::selector::{
    apply_predicates, find_attribute, name_matched_children, walk, AttrName, NodeSelector,
    Predicate, Step, Terminal, Walk,
};
use crate::uri::XcapUri;
use crate::usage::{ApplicationUsage, ConstraintContext};
use crate::Limits;

/// MIME type of element bodies (§15.2.1).
pub const ELEMENT_TYPE: &str = "application/xcap-el+xml";
/// MIME type of attribute bodies (§15.2.2).
pub const ATTRIBUTE_TYPE: &str = "application/xcap-att+xml";
/// MIME type of namespace-binding bodies (§15.2.3).
pub const NAMESPACES_TYPE: &str = "application/xcap-ns+xml";

/// A successful GET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    /// Content-Type of the response.
    pub content_type: String,
    /// Response body.
    pub body: String,
}

/// A successful PUT: the document to store (compare-and-swap on the old ETag) and whether a new
/// resource was created (201) rather than replaced (200).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutOutcome {
    /// Complete new document text.
    pub new_document: String,
    /// The document, element or attribute did not exist before.
    pub created: bool,
}

/// A successful DELETE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// The URI names the whole document: the shell removes it from storage.
    Document,
    /// An element or attribute was removed; store this text.
    Updated(String),
}

/// What a request URI addresses.
enum Target<'a> {
    Document,
    Element(&'a NodeSelector),
    Attribute(&'a NodeSelector, &'a AttrName),
}

/// A splice: replace `range` of the source with `text`; `marker` locates the new element or
/// attribute value inside `text`, for the idempotency check.
struct Edit {
    range: Range<usize>,
    text: String,
    marker: Range<usize>,
}

impl Edit {
    fn apply(&self, source: &str) -> String {
        let mut out = String::with_capacity(source.len() + self.text.len());
        out.push_str(&source[..self.range.start]);
        out.push_str(&self.text);
        out.push_str(&source[self.range.end..]);
        out
    }

    /// Absolute range of the marker in the edited document.
    fn marker_in_result(&self) -> Range<usize> {
        self.range.start + self.marker.start..self.range.start + self.marker.end
    }
}

/// The sans-IO XCAP engine for one application usage.
pub struct Engine<'u> {
    usage: &'u dyn ApplicationUsage,
    limits: Limits,
}

impl<'u> Engine<'u> {
    /// An engine for `usage` with the given limits.
    pub fn new(usage: &'u dyn ApplicationUsage, limits: Limits) -> Self {
        Engine { usage, limits }
    }

    /// GET (§8.3) of the resource `uri` names inside the stored `document`. A missing document is
    /// the shell's 404.
    pub fn get(&self, uri: &XcapUri, document: &str) -> Result<Selected, XcapError> {
        let Some(node) = &uri.node else {
            return Ok(Selected {
                content_type: self.usage.mime_type().to_owned(),
                body: document.to_owned(),
            });
        };
        let doc = self.parse_stored(document)?;
        let Walk::Found(elem) = walk(&doc, &node.steps, self.usage.default_namespace()) else {
            return Err(XcapError::NotFound);
        };
        let (content_type, body) = match &node.terminal {
            None => (ELEMENT_TYPE, document[elem.range()].to_owned()),
            // The value as written (an AttValue without its quotes), so it can be PUT back as is.
            Some(Terminal::Attribute(name)) => {
                let attr = find_attribute(&elem, name).ok_or(XcapError::NotFound)?;
                (ATTRIBUTE_TYPE, document[attr.range_value()].to_owned())
            }
            Some(Terminal::Namespaces) => (NAMESPACES_TYPE, namespace_bindings(document, elem)),
        };
        Ok(Selected {
            content_type: content_type.to_owned(),
            body,
        })
    }

    /// PUT (§8.2). `current` is the stored document, `None` if it does not exist.
    pub fn put(
        &self,
        uri: &XcapUri,
        current: Option<&str>,
        body: &[u8],
        content_type: &str,
    ) -> Result<PutOutcome, XcapError> {
        let target = self.writable_target(uri)?;
        let expected = match target {
            Target::Document => self.usage.mime_type(),
            Target::Element(_) => ELEMENT_TYPE,
            Target::Attribute(..) => ATTRIBUTE_TYPE,
        };
        let given = content_type.split(';').next().unwrap_or("").trim();
        if !given.eq_ignore_ascii_case(expected) {
            return Err(XcapError::UnsupportedMediaType {
                expected: expected.to_owned(),
            });
        }
        if body.len() > self.limits.max_document_bytes {
            return Err(XcapError::TooLarge);
        }
        let body = std::str::from_utf8(body).map_err(|_| XcapError::NotUtf8)?;
        let (new_document, created) = match target {
            Target::Document => {
                if declares_foreign_encoding(body) {
                    return Err(XcapError::NotUtf8);
                }
                self.finish(uri, body, |_| Ok(()))?;
                (body.to_owned(), current.is_none())
            }
            Target::Element(node) => {
                let current = current.ok_or(XcapError::NoParent { ancestor: None })?;
                self.put_element(uri, node, current, body)?
            }
            Target::Attribute(node, name) => {
                let current = current.ok_or(XcapError::NoParent { ancestor: None })?;
                self.put_attribute(uri, node, name, current, body)?
            }
        };
        Ok(PutOutcome {
            new_document,
            created,
        })
    }

    /// DELETE (§8.4) of the resource `uri` names inside the stored `current` document.
    pub fn delete(&self, uri: &XcapUri, current: &str) -> Result<DeleteOutcome, XcapError> {
        let (node, attr) = match self.writable_target(uri)? {
            Target::Document => return Ok(DeleteOutcome::Document),
            Target::Element(node) => (node, None),
            Target::Attribute(node, name) => (node, Some(name)),
        };
        let ns = self.usage.default_namespace();
        let doc = self.parse_stored(current)?;
        let Walk::Found(elem) = walk(&doc, &node.steps, ns) else {
            return Err(XcapError::NotFound);
        };
        let range = match attr {
            None if elem.parent().is_some_and(|p| p.is_root()) => {
                return Err(XcapError::CannotDelete {
                    phrase: "the root element can only go with the whole document",
                })
            }
            None => whitespace_before(current, elem).start..elem.range().end,
            Some(name) => {
                let attr = find_attribute(&elem, name).ok_or(XcapError::NotFound)?;
                let start = attr.range().start;
                let ws = current[..start].trim_end_matches(is_xml_space).len();
                ws..attr.range().end
            }
        };
        let edit = Edit {
            range,
            text: String::new(),
            marker: 0..0,
        };
        let new = edit.apply(current);
        self.finish(uri, &new, |doc| match (walk(doc, &node.steps, ns), attr) {
            (Walk::Found(e), Some(name)) if find_attribute(&e, name).is_none() => Ok(()),
            (Walk::Found(_), _) => Err(XcapError::CannotDelete {
                phrase: "the request URI would still select a node after the delete",
            }),
            (Walk::Missing { .. }, _) => Ok(()),
        })?;
        Ok(DeleteOutcome::Updated(new))
    }

    fn writable_target<'a>(&self, uri: &'a XcapUri) -> Result<Target<'a>, XcapError> {
        let read_only = XcapError::MethodNotAllowed { allow: "GET" };
        if self.usage.is_generated() {
            return Err(read_only);
        }
        Ok(match &uri.node {
            None => Target::Document,
            Some(node) => match &node.terminal {
                None => Target::Element(node),
                Some(Terminal::Attribute(name)) => Target::Attribute(node, name),
                Some(Terminal::Namespaces) => return Err(read_only),
            },
        })
    }

    fn options<'i>(&self) -> ParsingOptions<'i> {
        ParsingOptions {
            allow_dtd: false,
            nodes_limit: self.limits.max_nodes,
            ..Default::default()
        }
    }

    fn parse_stored<'i>(&self, text: &'i str) -> Result<Document<'i>, XcapError> {
        Document::parse_with_options(text, self.options())
            .map_err(|e| XcapError::CorruptDocument(e.to_string()))
    }

    fn parse_body<'i>(&self, text: &'i str) -> Result<Document<'i>, XcapError> {
        Document::parse_with_options(text, self.options()).map_err(|e| match e {
            roxmltree::Error::NodesLimitReached => XcapError::TooLarge,
            e => XcapError::NotWellFormed {
                phrase: e.to_string(),
            },
        })
    }

    /// §8.2.5/§8.4 checks on a candidate document: size, well-formedness, the operation's
    /// idempotency check, schema validation, then the usage's constraints.
    fn finish(
        &self,
        uri: &XcapUri,
        new_document: &str,
        idempotent: impl FnOnce(&Document<'_>) -> Result<(), XcapError>,
    ) -> Result<(), XcapError> {
        if new_document.len() > self.limits.max_document_bytes {
            return Err(XcapError::TooLarge);
        }
        let doc = self.parse_body(new_document)?;
        idempotent(&doc)?;
        self.usage
            .validate(new_document)
            .map_err(XcapError::SchemaValidation)?;
        self.usage
            .check_constraints(&doc, &ConstraintContext { uri })?;
        Ok(())
    }

    fn no_parent(uri: &XcapUri, existing_steps: usize) -> XcapError {
        XcapError::NoParent {
            ancestor: Some(uri.ancestor_path(existing_steps)),
        }
    }

    fn put_element(
        &self,
        uri: &XcapUri,
        node: &NodeSelector,
        current: &str,
        body: &str,
    ) -> Result<(String, bool), XcapError> {
        let ns = self.usage.default_namespace();
        let doc = self.parse_stored(current)?;
        let (edit, created) = match walk(&doc, &node.steps, ns) {
            Walk::Found(elem) => {
                let frag = self.fragment(body, elem.parent_element())?;
                let marker = 0..frag.len();
                (
                    Edit {
                        range: elem.range(),
                        text: frag.to_owned(),
                        marker,
                    },
                    false,
                )
            }
            Walk::Missing { failed, context } if failed + 1 == node.steps.len() => {
                if context.is_root() {
                    return Err(XcapError::CannotInsert {
                        phrase: "a document has exactly one root element",
                    });
                }
                let frag = self.fragment(body, Some(context))?;
                (
                    insertion(current, context, &node.steps[failed], ns, frag)?,
                    true,
                )
            }
            Walk::Missing { failed, .. } => return Err(Self::no_parent(uri, failed)),
        };
        let inserted = edit.marker_in_result();
        let new = edit.apply(current);
        self.finish(uri, &new, |doc| match walk(doc, &node.steps, ns) {
            Walk::Found(e) if e.range() == inserted => Ok(()),
            _ => Err(XcapError::CannotInsert {
                phrase: "the request URI would not select the element in the body",
            }),
        })?;
        Ok((new, created))
    }

    fn put_attribute(
        &self,
        uri: &XcapUri,
        node: &NodeSelector,
        name: &AttrName,
        current: &str,
        body: &str,
    ) -> Result<(String, bool), XcapError> {
        let ns = self.usage.default_namespace();
        let doc = self.parse_stored(current)?;
        let elem = match walk(&doc, &node.steps, ns) {
            Walk::Found(e) => e,
            Walk::Missing { failed, .. } => return Err(Self::no_parent(uri, failed)),
        };
        // An AttValue with its quotes removed: quotes may appear raw, `<` and stray `&` may not.
        let probe = format!("<a v=\"{}\"/>", body.replace('"', "&quot;"));
        if Document::parse_with_options(&probe, self.options()).is_err() {
            return Err(XcapError::NotXmlAttValue);
        }
        let (edit, created) = match find_attribute(&elem, name) {
            Some(attr) => {
                let value = attr.range_value();
                let quote = if current.as_bytes().get(value.end) == Some(&b'\'') {
                    '\''
                } else {
                    '"'
                };
                let text = requote(body, quote);
                let marker = 0..text.len();
                (
                    Edit {
                        range: value,
                        text,
                        marker,
                    },
                    false,
                )
            }
            None => {
                let (decl, qname) = attribute_qname(elem, name)?;
                let value = requote(body, '"');
                let head = format!(" {decl}{qname}=\"");
                let marker = head.len()..head.len() + value.len();
                let at = start_tag_content_end(current, elem);
                (
                    Edit {
                        range: at..at,
                        text: format!("{head}{value}\""),
                        marker,
                    },
                    true,
                )
            }
        };
        let written = edit.marker_in_result();
        let new = edit.apply(current);
        self.finish(uri, &new, |doc| match walk(doc, &node.steps, ns) {
            Walk::Found(e)
                if find_attribute(&e, name).is_some_and(|a| a.range_value() == written) =>
            {
                Ok(())
            }
            _ => Err(XcapError::CannotInsert {
                phrase: "the request URI would not select the attribute after the PUT",
            }),
        })?;
        Ok((new, created))
    }

    /// §8.2.2: the body must be exactly one element, read with the namespace bindings in scope
    /// at the insertion point (so it may use the document's prefixes and default namespace).
    /// Returns the element's text, without surrounding whitespace.
    fn fragment<'b>(
        &self,
        body: &'b str,
        context: Option<Node<'_, '_>>,
    ) -> Result<&'b str, XcapError> {
        let mut wrapper = String::from("<xcap-fragment");
        if let Some(ctx) = context {
            push_namespace_declarations(&mut wrapper, ctx);
        }
        wrapper.push('>');
        let offset = wrapper.len();
        wrapper.push_str(body);
        wrapper.push_str("</xcap-fragment>");
        let doc = self.parse_body(&wrapper)?;
        let root = doc.root_element();
        let mut elements = root.children().filter(Node::is_element);
        let (Some(elem), None) = (elements.next(), elements.next()) else {
            return Err(XcapError::NotXmlFrag);
        };
        let stray = root.children().any(|c| {
            c.is_comment()
                || c.is_pi()
                || (c.is_text() && !wrapper[c.range()].chars().all(is_xml_space))
        });
        // The element must lie inside the body, not in a wrapper the body closed early.
        let range = elem.range();
        if stray || range.start < offset || range.end > offset + body.len() {
            return Err(XcapError::NotXmlFrag);
        }
        Ok(&body[range.start - offset..range.end - offset])
    }
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// True when an XML declaration names an encoding other than UTF-8 (§8.2.2 `<not-utf-8>`).
fn declares_foreign_encoding(body: &str) -> bool {
    let body = body.strip_prefix('\u{feff}').unwrap_or(body);
    let Some(decl) = body
        .strip_prefix("<?xml")
        .and_then(|d| d.split("?>").next())
    else {
        return false;
    };
    let Some(after) = decl.split("encoding").nth(1) else {
        return false;
    };
    let value = after.trim_start().trim_start_matches('=').trim_start();
    let name = value
        .trim_matches(|c| c == '"' || c == '\'')
        .split(['"', '\''])
        .next()
        .unwrap_or("");
    !name.eq_ignore_ascii_case("utf-8") && !name.eq_ignore_ascii_case("utf8")
}

/// Replaces raw occurrences of the delimiting quote with a reference.
fn requote(value: &str, quote: char) -> String {
    let reference = if quote == '"' { "&quot;" } else { "&apos;" };
    value.replace(quote, reference)
}

/// Declares every namespace in scope on `elem` except the built-in `xml` prefix.
fn push_namespace_declarations(out: &mut String, elem: Node<'_, '_>) {
    for ns in elem.namespaces() {
        match ns.name() {
            Some("xml") => {}
            Some(prefix) => {
                out.push_str(&format!(" xmlns:{prefix}=\"{}\"", escape(ns.uri())));
            }
            None if ns.uri().is_empty() => {}
            None => out.push_str(&format!(" xmlns=\"{}\"", escape(ns.uri()))),
        }
    }
}

/// §10: an empty element with the selected element's prefix and local name, carrying one
/// declaration per namespace binding in scope.
fn namespace_bindings(source: &str, elem: Node<'_, '_>) -> String {
    let mut out = format!("<{}", start_tag_qname(source, elem));
    push_namespace_declarations(&mut out, elem);
    out.push_str("/>");
    out
}

/// The qualified name as written in the element's start tag.
fn start_tag_qname<'s>(source: &'s str, elem: Node<'_, '_>) -> &'s str {
    let tag = source.get(elem.range().start + 1..).unwrap_or("");
    let end = tag
        .find(|c: char| is_xml_space(c) || c == '/' || c == '>')
        .unwrap_or(tag.len());
    &tag[..end]
}

/// Offset just past the last attribute (or the name) of the element's start tag, before any
/// whitespace and the closing `>` or `/>`.
fn start_tag_content_end(source: &str, elem: Node<'_, '_>) -> usize {
    let start = elem.range().start;
    let mut quote = None;
    let mut close = elem.range().end;
    for (i, b) in source.as_bytes()[start..].iter().enumerate() {
        match (quote, *b) {
            (None, b'"' | b'\'') => quote = Some(*b),
            (Some(q), b) if b == q => quote = None,
            (None, b'>') => {
                close = start + i;
                break;
            }
            _ => {}
        }
    }
    let head = &source[start..close];
    let head = head.strip_suffix('/').unwrap_or(head);
    start + head.trim_end_matches(is_xml_space).len()
}

/// The whitespace-only text node right before `node`, or an empty range at its start.
fn whitespace_before(source: &str, node: Node<'_, '_>) -> Range<usize> {
    node.prev_sibling()
        .filter(|p| p.is_text() && source[p.range()].chars().all(is_xml_space))
        .map_or(node.range().start..node.range().start, |p| p.range())
}

/// The name to write for a new attribute, with a namespace declaration when the attribute's
/// namespace has no prefix in scope.
fn attribute_qname(elem: Node<'_, '_>, name: &AttrName) -> Result<(String, String), XcapError> {
    let Some(uri) = &name.ns else {
        return Ok((String::new(), name.local.clone()));
    };
    let in_scope = elem
        .namespaces()
        .find(|n| n.uri() == uri)
        .and_then(|n| n.name());
    if let Some(prefix) = in_scope {
        return Ok((String::new(), format!("{prefix}:{}", name.local)));
    }
    match &name.prefix {
        Some(prefix) if elem.lookup_namespace_uri(Some(prefix)).is_none() => Ok((
            format!("xmlns:{prefix}=\"{}\" ", escape(uri)),
            format!("{prefix}:{}", name.local),
        )),
        _ => Err(XcapError::CannotInsert {
            phrase: "the attribute's prefix is bound to another namespace on this element",
        }),
    }
}

enum Anchor<'a, 'i> {
    After(Node<'a, 'i>),
    Before(Node<'a, 'i>),
}

/// §8.2.3 insertion point for a new child of `parent` selected by `step`: without a position,
/// after the last sibling matching the step's name (or after the last child element); with
/// `[n]`, so that it becomes the n-th of the siblings the earlier predicates leave. Positions
/// that would leave a gap are refused here; everything else is settled by the idempotency check.
fn insertion(
    source: &str,
    parent: Node<'_, '_>,
    step: &Step,
    default_ns: &str,
    frag: &str,
) -> Result<Edit, XcapError> {
    let named = name_matched_children(parent, step, default_ns);
    let position = step
        .predicates
        .iter()
        .enumerate()
        .rev()
        .find_map(|(k, p)| match p {
            Predicate::Position(n) => Some((k, *n)),
            Predicate::Attr(..) => None,
        });
    let anchor = match position {
        None => named.last().copied().map(Anchor::After),
        Some((k, n)) => {
            let list = apply_predicates(named.clone(), &step.predicates[..k]);
            match n.checked_sub(1) {
                Some(i) if i < list.len() => Some(Anchor::Before(list[i])),
                Some(i) if i == list.len() => {
                    list.last().or(named.last()).copied().map(Anchor::After)
                }
                _ => {
                    return Err(XcapError::CannotInsert {
                        phrase: "the position is beyond the end of the sibling list",
                    })
                }
            }
        }
    };
    let anchor = anchor.or_else(|| parent.last_element_child().map(Anchor::After));
    Ok(match anchor {
        Some(Anchor::After(sibling)) => {
            let ws = &source[whitespace_before(source, sibling)];
            let at = sibling.range().end;
            Edit {
                range: at..at,
                text: format!("{ws}{frag}"),
                marker: ws.len()..ws.len() + frag.len(),
            }
        }
        Some(Anchor::Before(sibling)) => {
            let ws = &source[whitespace_before(source, sibling)];
            let at = sibling.range().start;
            Edit {
                range: at..at,
                text: format!("{frag}{ws}"),
                marker: 0..frag.len(),
            }
        }
        None => {
            let range = parent.range();
            let element = &source[range.clone()];
            if element.ends_with("/>") {
                // <x a="1"/> becomes <x a="1">frag</x>
                let qname = start_tag_qname(source, parent);
                Edit {
                    range: range.end - 2..range.end,
                    text: format!(">{frag}</{qname}>"),
                    marker: 1..1 + frag.len(),
                }
            } else {
                let end_tag = element
                    .rfind("</")
                    .map(|i| range.start + i)
                    .ok_or_else(|| {
                        XcapError::CorruptDocument("element without end tag".to_owned())
                    })?;
                Edit {
                    range: end_tag..end_tag,
                    text: frag.to_owned(),
                    marker: 0..frag.len(),
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_encoding_declarations() {
        assert!(!declares_foreign_encoding("<a/>"));
        assert!(!declares_foreign_encoding(
            "<?xml version='1.0' encoding='UTF-8'?><a/>"
        ));
        assert!(!declares_foreign_encoding(
            "\u{feff}<?xml version=\"1.0\" encoding = \"utf-8\"?><a/>"
        ));
        assert!(!declares_foreign_encoding("<?xml version=\"1.0\"?><a/>"));
        assert!(declares_foreign_encoding(
            "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a/>"
        ));
        assert!(declares_foreign_encoding(
            "<?xml version='1.0' encoding='UTF-16'?><a/>"
        ));
    }

    #[test]
    fn start_tag_scanning() {
        let src = r#"<r><a x="1>2" y='/>' /><b/><c></c></r>"#;
        let doc = Document::parse(src).unwrap();
        let kids: Vec<_> = doc.root_element().children().collect();
        assert_eq!(
            &src[..start_tag_content_end(src, kids[0])],
            r#"<r><a x="1>2" y='/>'"#
        );
        assert_eq!(
            &src[..start_tag_content_end(src, kids[1])],
            r#"<r><a x="1>2" y='/>' /><b"#
        );
        assert_eq!(start_tag_qname(src, kids[2]), "c");
    }
}
