//! Node selectors (RFC 4825 §6.3) with namespace resolution (§6.4), and their evaluation against a
//! parsed document (§6.3 "selection operation", used by §8.1–§8.4).
//!
//! Grammar accepted (after percent-decoding), one step per `/`:
//! `/name`, `/prefix:name`, `/*`, each followed by predicates `[n]` or `[@attr="value"]`
//! (single or double quotes), followed optionally by a terminal `@attr` or `namespace::*`.
//! The RFC grammar allows `[n]`, `[@a="v"]` and `[n][@a="v"]`; `[@a="v"][n]` is accepted too and,
//! as in XPath, predicates filter in order. Unprefixed element names are in the application
//! usage's default namespace; unprefixed attribute names are in no namespace.

use roxmltree::{Document, Node};

use crate::error::UriError;
use crate::Limits;

const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// An element name test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameTest {
    /// `*`: any element.
    Any,
    /// A QName; `ns: None` stands for the application usage's default namespace.
    Name {
        /// Resolved namespace URI, or `None` for "the usage's default namespace".
        ns: Option<String>,
        /// Local part.
        local: String,
    },
}

/// A resolved attribute name (`ns: None` = no namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrName {
    /// Namespace URI, `None` for unprefixed attributes.
    pub ns: Option<String>,
    /// Local part.
    pub local: String,
    /// Prefix used in the selector; used to declare the namespace when creating the attribute.
    pub prefix: Option<String>,
}

/// A step predicate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Predicate {
    /// `[n]`, 1-based.
    Position(usize),
    /// `[@name="value"]`, value with entity references resolved.
    Attr(AttrName, String),
}

/// One location step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Element name test.
    pub name: NameTest,
    /// Predicates, applied in order.
    pub predicates: Vec<Predicate>,
    /// Source text of the step, to rebuild ancestor URIs.
    pub(crate) text: String,
}

/// What follows the element steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Terminal {
    /// `@name`: an attribute of the selected element.
    Attribute(AttrName),
    /// `namespace::*`: the namespace bindings in scope on the selected element.
    Namespaces,
}

/// A parsed node selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSelector {
    /// Element steps, at least one; the first selects the root element.
    pub steps: Vec<Step>,
    /// Attribute or namespace terminal.
    pub terminal: Option<Terminal>,
}

impl NodeSelector {
    /// Parses a percent-decoded node selector (it starts with `/`) using the query's `xmlns()`
    /// bindings for prefixes.
    pub fn parse(
        text: &str,
        bindings: &[(String, String)],
        limits: &Limits,
    ) -> Result<NodeSelector, UriError> {
        if text.len() > limits.max_selector_bytes {
            return Err(UriError::TooLong);
        }
        let mut p = Parser {
            s: text,
            pos: 0,
            bindings,
        };
        let mut steps = Vec::new();
        let mut terminal = None;
        while p.pos < p.s.len() {
            if !p.eat('/') {
                return Err(UriError::BadSelector("expected '/'"));
            }
            if steps.len() >= limits.max_steps {
                return Err(UriError::TooLong);
            }
            if p.eat('@') {
                let (prefix, local) = p.qname()?;
                terminal = Some(Terminal::Attribute(p.attr_name(prefix, local)?));
                break;
            }
            if p.rest() == "namespace::*" {
                p.pos = p.s.len();
                terminal = Some(Terminal::Namespaces);
                break;
            }
            steps.push(p.step()?);
        }
        if p.pos != p.s.len() {
            return Err(UriError::BadSelector(
                "trailing text after terminal selector",
            ));
        }
        if steps.is_empty() {
            return Err(UriError::BadSelector("no element step"));
        }
        Ok(NodeSelector { steps, terminal })
    }

    /// Source text of the first `n` steps, e.g. `/resource-lists/list[@name="a"]`.
    pub(crate) fn prefix_text(&self, n: usize) -> String {
        self.steps.iter().take(n).fold(String::new(), |mut acc, s| {
            acc.push('/');
            acc.push_str(&s.text);
            acc
        })
    }
}

struct Parser<'s, 'b> {
    s: &'s str,
    pos: usize,
    bindings: &'b [(String, String)],
}

impl Parser<'_, '_> {
    fn rest(&self) -> &str {
        &self.s[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn ncname(&mut self) -> Result<&str, UriError> {
        let start = self.pos;
        let len = self
            .rest()
            .char_indices()
            .find(|&(i, c)| {
                let ok = if i == 0 {
                    c.is_alphabetic() || c == '_' || !c.is_ascii()
                } else {
                    c.is_alphanumeric() || matches!(c, '_' | '-' | '.') || !c.is_ascii()
                };
                !ok
            })
            .map_or(self.rest().len(), |(i, _)| i);
        self.pos += len;
        if len == 0 {
            return Err(UriError::BadSelector("expected a name"));
        }
        Ok(&self.s[start..self.pos])
    }

    fn qname(&mut self) -> Result<(Option<String>, String), UriError> {
        let first = self.ncname()?.to_owned();
        if self.eat(':') {
            let local = self.ncname()?.to_owned();
            Ok((Some(first), local))
        } else {
            Ok((None, first))
        }
    }

    fn resolve(&self, prefix: &str) -> Result<String, UriError> {
        if prefix == "xml" {
            return Ok(XML_NS.to_owned());
        }
        self.bindings
            .iter()
            .rev()
            .find(|(p, _)| p == prefix)
            .map(|(_, uri)| uri.clone())
            .ok_or_else(|| UriError::UnboundPrefix(prefix.to_owned()))
    }

    fn attr_name(&self, prefix: Option<String>, local: String) -> Result<AttrName, UriError> {
        let ns = prefix.as_deref().map(|p| self.resolve(p)).transpose()?;
        Ok(AttrName { ns, local, prefix })
    }

    fn step(&mut self) -> Result<Step, UriError> {
        let start = self.pos;
        let name = if self.eat('*') {
            NameTest::Any
        } else {
            let (prefix, local) = self.qname()?;
            let ns = prefix.as_deref().map(|p| self.resolve(p)).transpose()?;
            NameTest::Name { ns, local }
        };
        let mut predicates = Vec::new();
        while self.eat('[') {
            let pred = if self.eat('@') {
                let (prefix, local) = self.qname()?;
                let attr = self.attr_name(prefix, local)?;
                if !self.eat('=') {
                    return Err(UriError::BadSelector("expected '=' in attribute test"));
                }
                Predicate::Attr(attr, self.att_value()?)
            } else {
                let digits_start = self.pos;
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.pos += 1;
                }
                let n = self.s[digits_start..self.pos]
                    .parse::<usize>()
                    .map_err(|_| UriError::BadSelector("expected a position or attribute test"))?;
                Predicate::Position(n)
            };
            if !self.eat(']') {
                return Err(UriError::BadSelector("expected ']'"));
            }
            predicates.push(pred);
        }
        if !(self.pos == self.s.len() || self.peek() == Some('/')) {
            return Err(UriError::BadSelector("unexpected character in step"));
        }
        Ok(Step {
            name,
            predicates,
            text: self.s[start..self.pos].to_owned(),
        })
    }

    /// An XML `AttValue` (quoted, `<` forbidden, references resolved).
    fn att_value(&mut self) -> Result<String, UriError> {
        let quote = match self.peek() {
            Some(q @ ('"' | '\'')) => q,
            _ => return Err(UriError::BadSelector("expected a quoted attribute value")),
        };
        self.pos += 1;
        let body_start = self.pos;
        let Some(len) = self.rest().find(quote) else {
            return Err(UriError::BadSelector("unterminated attribute value"));
        };
        self.pos += len + 1;
        unescape(&self.s[body_start..body_start + len]).ok_or(UriError::BadSelector(
            "invalid reference in attribute value",
        ))
    }
}

/// Resolves the five predefined entities and character references; `None` on `<` or a bad `&`.
fn unescape(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find(['&', '<']) {
        out.push_str(&rest[..i]);
        if rest[i..].starts_with('<') {
            return None;
        }
        let end = rest[i..].find(';')? + i;
        let entity = &rest[i + 1..end];
        let c = match entity {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "apos" => '\'',
            "quot" => '"',
            _ => {
                let code = if let Some(hex) = entity.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()?
                } else {
                    entity.strip_prefix('#')?.parse::<u32>().ok()?
                };
                char::from_u32(code)?
            }
        };
        out.push(c);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

fn element_ns<'a>(node: &Node<'a, '_>) -> Option<&'a str> {
    node.tag_name().namespace().filter(|ns| !ns.is_empty())
}

pub(crate) fn name_matches(node: &Node<'_, '_>, test: &NameTest, default_ns: &str) -> bool {
    match test {
        NameTest::Any => true,
        NameTest::Name { ns, local } => {
            let want = ns.as_deref().unwrap_or(default_ns);
            node.tag_name().name() == local && element_ns(node).unwrap_or("") == want
        }
    }
}

pub(crate) fn find_attribute<'a, 'i>(
    node: &Node<'a, 'i>,
    name: &AttrName,
) -> Option<roxmltree::Attribute<'a, 'i>> {
    node.attributes().find(|a| {
        a.name() == name.local && a.namespace().filter(|n| !n.is_empty()) == name.ns.as_deref()
    })
}

/// Applies predicates in order to an ordered candidate list.
pub(crate) fn apply_predicates<'a, 'i>(
    mut list: Vec<Node<'a, 'i>>,
    predicates: &[Predicate],
) -> Vec<Node<'a, 'i>> {
    for pred in predicates {
        list = match pred {
            Predicate::Position(n) => n
                .checked_sub(1)
                .and_then(|i| list.get(i).copied())
                .into_iter()
                .collect(),
            Predicate::Attr(name, value) => list
                .into_iter()
                .filter(|n| find_attribute(n, name).is_some_and(|a| a.value() == value))
                .collect(),
        };
    }
    list
}

/// Element children of `parent` whose name matches the step's name test, in document order.
pub(crate) fn name_matched_children<'a, 'i>(
    parent: Node<'a, 'i>,
    step: &Step,
    default_ns: &str,
) -> Vec<Node<'a, 'i>> {
    parent
        .children()
        .filter(|c| c.is_element() && name_matches(c, &step.name, default_ns))
        .collect()
}

/// Result of walking the element steps.
pub(crate) enum Walk<'a, 'i> {
    /// Every step selected exactly one element.
    Found(Node<'a, 'i>),
    /// Step `failed` (0-based) selected zero or several elements; `context` is the element the
    /// previous steps selected (the document node when `failed == 0`).
    Missing {
        failed: usize,
        context: Node<'a, 'i>,
    },
}

/// Evaluates the element steps; each step must narrow the selection to exactly one element.
pub(crate) fn walk<'a, 'i>(
    doc: &'a Document<'i>,
    steps: &[Step],
    default_ns: &str,
) -> Walk<'a, 'i> {
    let mut context = doc.root();
    for (i, step) in steps.iter().enumerate() {
        let matched = apply_predicates(
            name_matched_children(context, step, default_ns),
            &step.predicates,
        );
        match matched.as_slice() {
            [one] => context = *one,
            _ => return Walk::Missing { failed: i, context },
        }
    }
    Walk::Found(context)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<NodeSelector, UriError> {
        let b = vec![
            ("p".to_owned(), "urn:p".to_owned()),
            ("q".to_owned(), "urn:q".to_owned()),
        ];
        NodeSelector::parse(s, &b, &Limits::default())
    }

    fn name(local: &str) -> NameTest {
        NameTest::Name {
            ns: None,
            local: local.to_owned(),
        }
    }

    fn attr(local: &str) -> AttrName {
        AttrName {
            ns: None,
            local: local.to_owned(),
            prefix: None,
        }
    }

    #[test]
    fn parses_every_step_form() {
        let sel = parse(r#"/a/p:b/*/c[2]/d[@x="1"]/e[3][@y='2']/f[@z="3"][4]"#).unwrap();
        let steps: Vec<_> = sel.steps.iter().map(|s| (&s.name, &s.predicates)).collect();
        assert_eq!(steps[0], (&name("a"), &vec![]));
        assert_eq!(
            steps[1].0,
            &NameTest::Name {
                ns: Some("urn:p".into()),
                local: "b".into()
            }
        );
        assert_eq!(steps[2].0, &NameTest::Any);
        assert_eq!(steps[3].1, &vec![Predicate::Position(2)]);
        assert_eq!(steps[4].1, &vec![Predicate::Attr(attr("x"), "1".into())]);
        assert_eq!(
            steps[5].1,
            &vec![
                Predicate::Position(3),
                Predicate::Attr(attr("y"), "2".into())
            ]
        );
        assert_eq!(
            steps[6].1,
            &vec![
                Predicate::Attr(attr("z"), "3".into()),
                Predicate::Position(4)
            ]
        );
        assert_eq!(sel.terminal, None);
        assert_eq!(sel.prefix_text(2), "/a/p:b");
    }

    #[test]
    fn parses_terminals() {
        let sel = parse("/a/b/@q:id").unwrap();
        assert_eq!(sel.steps.len(), 2);
        assert_eq!(
            sel.terminal,
            Some(Terminal::Attribute(AttrName {
                ns: Some("urn:q".into()),
                local: "id".into(),
                prefix: Some("q".into())
            }))
        );
        let sel = parse("/a/namespace::*").unwrap();
        assert_eq!(sel.terminal, Some(Terminal::Namespaces));
        assert!(
            matches!(parse("/a/@xml:lang").unwrap().terminal, Some(Terminal::Attribute(a)) if a.ns.as_deref() == Some(XML_NS))
        );
    }

    #[test]
    fn attribute_values_with_slashes_quotes_and_references() {
        let sel =
            parse(r#"/a/b[@uri="http://x/y?z"]/c[@v='say "hi"']/d[@w="&lt;&#65;&#x42;&amp;"]"#)
                .unwrap();
        let values: Vec<_> = sel
            .steps
            .iter()
            .skip(1)
            .map(|s| match &s.predicates[0] {
                Predicate::Attr(_, v) => v.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(values, ["http://x/y?z", "say \"hi\"", "<AB&"]);
    }

    #[test]
    fn rejects_malformed_selectors() {
        for bad in [
            "",
            "a",
            "/",
            "//a",
            "/a/",
            "/a[",
            "/a[]",
            "/a[x]",
            "/a[@b]",
            "/a[@b=c]",
            "/a[@b=\"c]",
            "/a[@b=\"<\"]",
            "/a[@b=\"&bogus;\"]",
            "/a[1",
            "/a b",
            "/@x",
            "/a/@x/b",
            "/a/namespace::*/b",
            "/a/namespace::x",
            "/1a",
            "/a:",
            "/a[99999999999999999999999]",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn unbound_prefixes_are_reported() {
        assert_eq!(parse("/x:a"), Err(UriError::UnboundPrefix("x".into())));
        assert_eq!(
            parse("/a[@x:b=\"1\"]"),
            Err(UriError::UnboundPrefix("x".into()))
        );
        assert_eq!(parse("/a/@x:b"), Err(UriError::UnboundPrefix("x".into())));
    }

    #[test]
    fn limits_are_enforced() {
        let limits = Limits {
            max_steps: 3,
            max_selector_bytes: 20,
            ..Limits::default()
        };
        assert!(NodeSelector::parse("/a/b/c", &[], &limits).is_ok());
        assert_eq!(
            NodeSelector::parse("/a/b/c/d", &[], &limits),
            Err(UriError::TooLong)
        );
        assert_eq!(
            NodeSelector::parse("/aaaaaaaaaaaaaaaaaaaaaaaa", &[], &limits),
            Err(UriError::TooLong)
        );
    }

    #[test]
    fn walk_selects_exactly_one_element() {
        let xml =
            r#"<r xmlns="urn:d" xmlns:p="urn:p"><l n="1"><e/><e/></l><l n="2"><e/></l><p:l/></r>"#;
        let doc = Document::parse(xml).unwrap();
        let found = |s: &str| match walk(&doc, &parse(s).unwrap().steps, "urn:d") {
            Walk::Found(n) => Some(&xml[n.range()]),
            Walk::Missing { .. } => None,
        };
        assert_eq!(found("/r/l[2]"), Some(r#"<l n="2"><e/></l>"#));
        assert_eq!(found(r#"/r/l[@n="2"]/e"#), Some("<e/>"));
        assert_eq!(found(r#"/r/l[@n="1"]/e"#), None, "two matches is no match");
        assert_eq!(found("/r/l"), None);
        assert_eq!(found("/r/p:l"), Some("<p:l/>"));
        assert_eq!(found("/r/*[3]"), Some("<p:l/>"));
        assert_eq!(found("/r/*[4]"), None);
        assert_eq!(found("/r/l[0]"), None);
        assert_eq!(found(r#"/r/l[1][@n="2"]"#), None);
        assert_eq!(found(r#"/r/l[@n="2"][1]"#), Some(r#"<l n="2"><e/></l>"#));
        assert_eq!(found("/q:r"), None);
        match walk(&doc, &parse(r#"/r/l[@n="1"]/e/x"#).unwrap().steps, "urn:d") {
            Walk::Missing { failed, context } => {
                assert_eq!(failed, 2);
                assert_eq!(context.attribute("n"), Some("1"));
            }
            Walk::Found(_) => panic!("should not match"),
        }
    }

    #[test]
    fn unprefixed_names_use_the_usage_default_namespace() {
        let doc = Document::parse(r#"<rl:r xmlns:rl="urn:d"><x/></rl:r>"#).unwrap();
        assert!(matches!(
            walk(&doc, &parse("/r").unwrap().steps, "urn:d"),
            Walk::Found(_)
        ));
        // <x/> is in no namespace, so the default-namespace name test does not match it.
        assert!(matches!(
            walk(&doc, &parse("/r/x").unwrap().steps, "urn:d"),
            Walk::Missing { .. }
        ));
        assert!(matches!(
            walk(&doc, &parse("/r/*").unwrap().steps, "urn:d"),
            Walk::Found(_)
        ));
    }
}
