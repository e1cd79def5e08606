//! Schema-validity assessment of a parsed document against a [`SchemaSet`]
//! (XML Schema Part 1 §3.3.4 element locally valid, §3.4.4 complex type, §3.10.4 wildcards).
//!
//! One pass over the roxmltree tree. Content models are compiled once into Glushkov position
//! automata and run as a set of positions, so matching is linear in the number of children and
//! needs no backtracking even where a model is not deterministic.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use roxmltree::{Attribute, Document, Node};

use super::model::{
    Content, ElementDecl, Namespaces, Occurs, Particle, Process, SchemaSet, Term, Type, Wildcard,
};
use super::simple::{id_key, Simple};

const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";

#[derive(Debug, Clone, Copy)]
enum Leaf {
    Element(&'static ElementDecl),
    Any(Wildcard),
}

impl Leaf {
    fn matches(self, ns: Option<&str>, name: &str) -> bool {
        match self {
            Leaf::Element(decl) => ns == Some(decl.ns) && name == decl.name,
            Leaf::Any(w) => w.namespaces.allows(ns),
        }
    }

    fn describe(self) -> String {
        match self {
            Leaf::Element(decl) => format!("'{}'", decl.name),
            Leaf::Any(Wildcard {
                namespaces: Namespaces::Any,
                ..
            }) => "any element".to_owned(),
            Leaf::Any(Wildcard {
                namespaces: Namespaces::Other(ns),
                ..
            }) => {
                format!("an element outside {ns}")
            }
        }
    }
}

/// Glushkov automaton: states are the leaves of the particle tree plus an initial state.
#[derive(Debug)]
struct Automaton {
    leaves: Vec<Leaf>,
    first: Vec<usize>,
    follow: Vec<Vec<usize>>,
    last: Vec<bool>,
    nullable: bool,
}

struct Fragment {
    first: Vec<usize>,
    last: Vec<usize>,
    nullable: bool,
}

impl Automaton {
    fn new(particle: &'static Particle) -> Self {
        let mut automaton = Automaton {
            leaves: Vec::new(),
            first: Vec::new(),
            follow: Vec::new(),
            last: Vec::new(),
            nullable: false,
        };
        let fragment = automaton.fragment(particle);
        automaton.last = vec![false; automaton.leaves.len()];
        for &position in &fragment.last {
            automaton.last[position] = true;
        }
        for follow in &mut automaton.follow {
            follow.sort_unstable();
            follow.dedup();
        }
        automaton.first = fragment.first;
        automaton.first.sort_unstable();
        automaton.first.dedup();
        automaton.nullable = fragment.nullable;
        automaton
    }

    fn leaf(&mut self, leaf: Leaf) -> Fragment {
        let position = self.leaves.len();
        self.leaves.push(leaf);
        self.follow.push(Vec::new());
        Fragment {
            first: vec![position],
            last: vec![position],
            nullable: false,
        }
    }

    fn fragment(&mut self, particle: &'static Particle) -> Fragment {
        let mut fragment = match &particle.term {
            Term::Element(decl) => self.leaf(Leaf::Element(decl)),
            Term::Any(wildcard) => self.leaf(Leaf::Any(*wildcard)),
            Term::Sequence(items) => {
                let mut acc = Fragment {
                    first: Vec::new(),
                    last: Vec::new(),
                    nullable: true,
                };
                for item in *items {
                    let next = self.fragment(item);
                    for &position in &acc.last {
                        self.follow[position].extend_from_slice(&next.first);
                    }
                    if acc.nullable {
                        acc.first.extend_from_slice(&next.first);
                    }
                    if next.nullable {
                        acc.last.extend_from_slice(&next.last);
                    } else {
                        acc.last = next.last;
                    }
                    acc.nullable &= next.nullable;
                }
                acc
            }
            Term::Choice(items) => {
                let mut acc = Fragment {
                    first: Vec::new(),
                    last: Vec::new(),
                    nullable: items.is_empty(),
                };
                for item in *items {
                    let next = self.fragment(item);
                    acc.first.extend(next.first);
                    acc.last.extend(next.last);
                    acc.nullable |= next.nullable;
                }
                acc
            }
        };
        if matches!(particle.occurs, Occurs::ZeroOrMore | Occurs::OneOrMore) {
            for &position in &fragment.last {
                self.follow[position].extend_from_slice(&fragment.first);
            }
        }
        if matches!(particle.occurs, Occurs::Optional | Occurs::ZeroOrMore) {
            fragment.nullable = true;
        }
        fragment
    }
}

/// Every content model reachable from the given schema sets, keyed by the particle's address.
pub(crate) struct Compiled {
    automata: HashMap<usize, Automaton>,
}

fn key(particle: &'static Particle) -> usize {
    std::ptr::from_ref(particle) as usize
}

impl Compiled {
    pub(crate) fn new(sets: &[&'static SchemaSet]) -> Self {
        let mut automata = HashMap::new();
        let mut seen = HashSet::new();
        let mut pending: Vec<&'static Type> = sets
            .iter()
            .flat_map(|set| set.elements.iter().chain([&set.root]).map(|d| d.ty))
            .collect();
        while let Some(ty) = pending.pop() {
            if !seen.insert(std::ptr::from_ref(ty) as usize) {
                continue;
            }
            if let Content::Elements(particle) = &ty.content {
                let automaton = Automaton::new(particle);
                pending.extend(automaton.leaves.iter().filter_map(|leaf| match leaf {
                    Leaf::Element(decl) => Some(decl.ty),
                    Leaf::Any(_) => None,
                }));
                automata.insert(key(particle), automaton);
            }
        }
        Compiled { automata }
    }
}

/// Assesses `doc` against `set`; the error string is the human-readable reason. Recursion
/// follows the element nesting, which the caller has bounded.
pub(crate) fn assess(
    set: &'static SchemaSet,
    compiled: &'static LazyLock<Compiled>,
    doc: &Document,
) -> Result<(), String> {
    let root = doc.root_element();
    let mut walker = Walker {
        doc,
        set,
        compiled,
        ids: HashSet::new(),
    };
    if !Leaf::Element(set.root).matches(root.tag_name().namespace(), root.tag_name().name()) {
        return Err(walker.at(
            root,
            format!(
                "the document element must be '{}' in namespace {}",
                set.root.name, set.root.ns
            ),
        ));
    }
    walker.element(root, set.root.ty)
}

struct Walker<'a, 'input> {
    doc: &'a Document<'input>,
    set: &'static SchemaSet,
    compiled: &'static LazyLock<Compiled>,
    ids: HashSet<String>,
}

fn qualified(node: Node) -> String {
    let name = node.tag_name();
    match name.namespace() {
        Some(ns) => format!("'{}' ({ns})", name.name()),
        None => format!("'{}' (no namespace)", name.name()),
    }
}

impl<'a, 'input> Walker<'a, 'input> {
    fn at(&self, node: Node, message: String) -> String {
        let pos = self.doc.text_pos_at(node.range().start);
        format!("line {}, column {}: {message}", pos.row, pos.col)
    }

    fn element(&mut self, node: Node<'a, 'input>, ty: &'static Type) -> Result<(), String> {
        self.attributes(node, ty)?;
        match &ty.content {
            Content::Empty => {
                if let Some(child) = node.children().find(|c| c.is_element() || c.is_text()) {
                    let what = if child.is_element() {
                        "element"
                    } else {
                        "character"
                    };
                    return Err(self.at(
                        child,
                        format!(
                            "{what} content is not allowed in {}, whose content is empty",
                            qualified(node)
                        ),
                    ));
                }
                Ok(())
            }
            Content::Simple(simple) => {
                if let Some(child) = node.children().find(Node::is_element) {
                    return Err(self.at(
                        child,
                        format!(
                            "element {} is not allowed in {}, which has text content only",
                            qualified(child),
                            qualified(node)
                        ),
                    ));
                }
                let text: String = node
                    .children()
                    .filter(Node::is_text)
                    .filter_map(|c| c.text())
                    .collect();
                // No element of these schemas has type xs:ID, so simple content never enters the ID space.
                simple.check(&text).map_err(|e| {
                    self.at(
                        node,
                        format!("the content of {} must be {e}", qualified(node)),
                    )
                })
            }
            Content::Elements(particle) => self.children(node, particle),
        }
    }

    fn attributes(&mut self, node: Node<'a, 'input>, ty: &'static Type) -> Result<(), String> {
        for attribute in node.attributes() {
            let ns = attribute.namespace();
            if ns == Some(XSI_NS) {
                self.xsi_attribute(node, &attribute)?;
                continue;
            }
            let declared = ty
                .attributes
                .iter()
                .find(|d| d.ns == ns && d.name == attribute.name());
            let result = match (declared, ty.any_attribute) {
                (Some(decl), _) => self.attribute_value(decl.ty, attribute.value()),
                (None, Some(wildcard)) if wildcard.namespaces.allows(ns) => {
                    self.wild_attribute(wildcard.process, &attribute)
                }
                (None, _) => Err("not allowed here".to_owned()),
            };
            result.map_err(|e| {
                self.at(
                    node,
                    format!(
                        "attribute {} of {}: {e}",
                        attribute_name(&attribute),
                        qualified(node)
                    ),
                )
            })?;
        }
        for decl in ty.attributes.iter().filter(|d| d.required) {
            if !node
                .attributes()
                .any(|a| a.namespace() == decl.ns && a.name() == decl.name)
            {
                return Err(self.at(
                    node,
                    format!(
                        "{} lacks the required attribute '{}'",
                        qualified(node),
                        decl.name
                    ),
                ));
            }
        }
        Ok(())
    }

    fn attribute_value(&mut self, ty: Simple, value: &str) -> Result<(), String> {
        ty.check(value)
            .map_err(|e| format!("the value must be {e}"))?;
        if matches!(ty, Simple::Id) && !self.ids.insert(id_key(value).to_owned()) {
            return Err(format!(
                "the xs:ID '{}' is already used in this document",
                id_key(value)
            ));
        }
        Ok(())
    }

    fn wild_attribute(
        &mut self,
        process: Process,
        attribute: &Attribute<'a, 'input>,
    ) -> Result<(), String> {
        let global = self
            .set
            .attributes
            .iter()
            .find(|d| d.ns == attribute.namespace() && d.name == attribute.name());
        match (process, global) {
            (_, Some(decl)) => self.attribute_value(decl.ty, attribute.value()),
            (Process::Strict, None) => Err("no declaration is known for this attribute".to_owned()),
            (Process::Lax, None) => Ok(()),
        }
    }

    /// xsi:schemaLocation hints are ignored (no schema is ever fetched); no element of these
    /// schemas is nillable; type substitution through xsi:type is not supported.
    fn xsi_attribute(&self, node: Node, attribute: &Attribute) -> Result<(), String> {
        match attribute.name() {
            "schemaLocation" | "noNamespaceSchemaLocation" => Ok(()),
            "nil" => Err(self.at(
                node,
                format!("{} is not nillable (xsi:nil)", qualified(node)),
            )),
            "type" => Err(self.at(
                node,
                format!("xsi:type on {} is not supported", qualified(node)),
            )),
            other => Err(self.at(node, format!("attribute xsi:{other} is not allowed"))),
        }
    }

    fn children(
        &mut self,
        node: Node<'a, 'input>,
        particle: &'static Particle,
    ) -> Result<(), String> {
        let owned;
        let automaton = match self.compiled.automata.get(&key(particle)) {
            Some(automaton) => automaton,
            None => {
                owned = Automaton::new(particle);
                &owned
            }
        };
        let mut current: Vec<usize> = Vec::new();
        let mut next: Vec<usize> = Vec::new();
        let mut at_start = true;
        for child in node.children() {
            if child.is_text() {
                if child
                    .text()
                    .is_some_and(|t| !t.chars().all(|c| matches!(c, ' ' | '\t' | '\n' | '\r')))
                {
                    return Err(self.at(
                        child,
                        format!(
                            "character content other than whitespace is not allowed in {}",
                            qualified(node)
                        ),
                    ));
                }
                continue;
            }
            if !child.is_element() {
                continue;
            }
            let (ns, name) = (child.tag_name().namespace(), child.tag_name().name());
            next.clear();
            let matching = |&q: &usize| automaton.leaves[q].matches(ns, name);
            if at_start {
                next.extend(automaton.first.iter().copied().filter(matching));
            } else {
                for &p in &current {
                    next.extend(automaton.follow[p].iter().copied().filter(matching));
                }
            }
            next.sort_unstable();
            next.dedup();
            let chosen = next
                .iter()
                .map(|&q| automaton.leaves[q])
                .min_by_key(|leaf| matches!(leaf, Leaf::Any(_)));
            let Some(leaf) = chosen else {
                let expected = expected(automaton, at_start, &current);
                return Err(self.at(
                    child,
                    format!(
                        "element {} is not expected here in {}; expected {expected}",
                        qualified(child),
                        qualified(node)
                    ),
                ));
            };
            self.child(child, leaf)?;
            std::mem::swap(&mut current, &mut next);
            at_start = false;
        }
        let complete = if at_start {
            automaton.nullable
        } else {
            current.iter().any(|&p| automaton.last[p])
        };
        if complete {
            Ok(())
        } else {
            let expected = expected(automaton, at_start, &current);
            Err(self.at(
                node,
                format!(
                    "the content of {} is incomplete; expected {expected}",
                    qualified(node)
                ),
            ))
        }
    }

    fn child(&mut self, child: Node<'a, 'input>, leaf: Leaf) -> Result<(), String> {
        match leaf {
            Leaf::Element(decl) => self.element(child, decl.ty),
            Leaf::Any(wildcard) => self.wild_element(child, wildcard.process),
        }
    }

    fn wild_element(&mut self, child: Node<'a, 'input>, process: Process) -> Result<(), String> {
        let (ns, name) = (child.tag_name().namespace(), child.tag_name().name());
        let global = self
            .set
            .elements
            .iter()
            .find(|d| Leaf::Element(d).matches(ns, name));
        match (process, global) {
            (_, Some(decl)) => self.element(child, decl.ty),
            (Process::Strict, None) => Err(self.at(
                child,
                format!(
                    "no declaration is known for element {}, and this position requires one",
                    qualified(child)
                ),
            )),
            (Process::Lax, None) => {
                for attribute in child.attributes() {
                    if attribute.namespace() == Some(XSI_NS) {
                        self.xsi_attribute(child, &attribute)?;
                    } else {
                        self.wild_attribute(Process::Lax, &attribute).map_err(|e| {
                            self.at(
                                child,
                                format!(
                                    "attribute {} of {}: {e}",
                                    attribute_name(&attribute),
                                    qualified(child)
                                ),
                            )
                        })?;
                    }
                }
                self.any_children(child)
            }
        }
    }

    /// Content of an element without declaration: xs:anyType, whose children are assessed laxly.
    fn any_children(&mut self, node: Node<'a, 'input>) -> Result<(), String> {
        for child in node.children().filter(Node::is_element) {
            self.wild_element(child, Process::Lax)?;
        }
        Ok(())
    }
}

fn attribute_name(attribute: &Attribute) -> String {
    match attribute.namespace() {
        Some(ns) => format!("'{}' ({ns})", attribute.name()),
        None => format!("'{}'", attribute.name()),
    }
}

fn expected(automaton: &Automaton, at_start: bool, current: &[usize]) -> String {
    let mut positions: Vec<usize> = if at_start {
        automaton.first.clone()
    } else {
        current
            .iter()
            .flat_map(|&p| automaton.follow[p].iter().copied())
            .collect()
    };
    positions.sort_unstable();
    positions.dedup();
    let mut names: Vec<String> = positions
        .iter()
        .map(|&p| automaton.leaves[p].describe())
        .collect();
    names.dedup();
    let can_end = if at_start {
        automaton.nullable
    } else {
        current.iter().any(|&p| automaton.last[p])
    };
    match (names.is_empty(), can_end) {
        (true, _) => "no more elements".to_owned(),
        (false, true) => format!("one of {} or the end of the element", names.join(", ")),
        (false, false) => format!("one of {}", names.join(", ")),
    }
}
