//! The schema component model the validators are written in (XML Schema Part 1 §2.2):
//! element and attribute declarations, complex types with empty, simple or element-only
//! content, particles (sequence, choice, element, wildcard) with 0/1/unbounded occurrence.
//!
//! The schemas themselves are transcribed by hand into `static` items of these types
//! (see `schemas.rs`); nothing is read from `.xsd` files at run time.

use super::simple::Simple;

pub(crate) const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Occurs {
    One,
    Optional,
    ZeroOrMore,
    OneOrMore,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Process {
    Strict,
    Lax,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Namespaces {
    /// `##any`, including unqualified names.
    Any,
    /// `##other` in a schema with this target namespace: qualified names of other namespaces.
    Other(&'static str),
}

impl Namespaces {
    pub(crate) fn allows(self, ns: Option<&str>) -> bool {
        match self {
            Namespaces::Any => true,
            Namespaces::Other(target) => ns.is_some_and(|ns| ns != target),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Wildcard {
    pub(crate) namespaces: Namespaces,
    pub(crate) process: Process,
}

#[derive(Debug)]
pub(crate) struct ElementDecl {
    pub(crate) ns: &'static str,
    pub(crate) name: &'static str,
    pub(crate) ty: &'static Type,
}

#[derive(Debug)]
pub(crate) struct AttributeDecl {
    /// `None` for unqualified (local) attributes.
    pub(crate) ns: Option<&'static str>,
    pub(crate) name: &'static str,
    pub(crate) ty: Simple,
    pub(crate) required: bool,
}

#[derive(Debug)]
pub(crate) enum Content {
    /// No element and no character children at all (not even whitespace).
    Empty,
    Simple(Simple),
    Elements(Particle),
}

#[derive(Debug)]
pub(crate) struct Type {
    pub(crate) attributes: &'static [AttributeDecl],
    pub(crate) any_attribute: Option<Wildcard>,
    pub(crate) content: Content,
}

#[derive(Debug)]
pub(crate) enum Term {
    Element(&'static ElementDecl),
    Any(Wildcard),
    Sequence(&'static [Particle]),
    Choice(&'static [Particle]),
}

#[derive(Debug)]
pub(crate) struct Particle {
    pub(crate) term: Term,
    pub(crate) occurs: Occurs,
}

/// One usage's schema set: what a wrapper XSD imports for xmllint.
#[derive(Debug)]
pub(crate) struct SchemaSet {
    /// The document element RFC 4825 §12 requires for the usage.
    pub(crate) root: &'static ElementDecl,
    /// Global element declarations, found by lax and strict wildcards.
    pub(crate) elements: &'static [&'static ElementDecl],
    /// Global attribute declarations, found by lax and strict attribute wildcards.
    pub(crate) attributes: &'static [&'static AttributeDecl],
}

// Constructors, so that the transcribed schemas read like the XSDs.

pub(crate) const fn el(decl: &'static ElementDecl) -> Particle {
    Particle {
        term: Term::Element(decl),
        occurs: Occurs::One,
    }
}

pub(crate) const fn seq(items: &'static [Particle]) -> Particle {
    Particle {
        term: Term::Sequence(items),
        occurs: Occurs::One,
    }
}

pub(crate) const fn choice(items: &'static [Particle]) -> Particle {
    Particle {
        term: Term::Choice(items),
        occurs: Occurs::One,
    }
}

pub(crate) const fn any(namespaces: Namespaces, process: Process) -> Particle {
    Particle {
        term: Term::Any(Wildcard {
            namespaces,
            process,
        }),
        occurs: Occurs::One,
    }
}

pub(crate) const fn opt(p: Particle) -> Particle {
    Particle {
        occurs: Occurs::Optional,
        ..p
    }
}

pub(crate) const fn star(p: Particle) -> Particle {
    Particle {
        occurs: Occurs::ZeroOrMore,
        ..p
    }
}

pub(crate) const fn plus(p: Particle) -> Particle {
    Particle {
        occurs: Occurs::OneOrMore,
        ..p
    }
}

pub(crate) const fn decl(ns: &'static str, name: &'static str, ty: &'static Type) -> ElementDecl {
    ElementDecl { ns, name, ty }
}

pub(crate) const fn attr(name: &'static str, ty: Simple) -> AttributeDecl {
    AttributeDecl {
        ns: None,
        name,
        ty,
        required: false,
    }
}

pub(crate) const fn required(name: &'static str, ty: Simple) -> AttributeDecl {
    AttributeDecl {
        ns: None,
        name,
        ty,
        required: true,
    }
}

pub(crate) const fn simple(ty: Simple) -> Type {
    Type {
        attributes: &[],
        any_attribute: None,
        content: Content::Simple(ty),
    }
}

pub(crate) const fn elements(particle: Particle) -> Type {
    Type {
        attributes: &[],
        any_attribute: None,
        content: Content::Elements(particle),
    }
}

pub(crate) const fn wildcard(namespaces: Namespaces, process: Process) -> Option<Wildcard> {
    Some(Wildcard {
        namespaces,
        process,
    })
}

pub(crate) static EMPTY: Type = Type {
    attributes: &[],
    any_attribute: None,
    content: Content::Empty,
};
pub(crate) static STRING: Type = simple(Simple::String);
pub(crate) static TOKEN: Type = simple(Simple::Token);
pub(crate) static ANY_URI: Type = simple(Simple::AnyUri);
pub(crate) static BOOLEAN: Type = simple(Simple::Boolean);
pub(crate) static DATE_TIME: Type = simple(Simple::DateTime);

/// `<xs:attribute ref="xml:lang"/>`.
pub(crate) const XML_LANG: AttributeDecl = AttributeDecl {
    ns: Some(XML_NS),
    name: "lang",
    ty: Simple::Language,
    required: false,
};

/// The global attributes of xml.xsd, known to every schema set that imports it.
pub(crate) static XML_ATTRIBUTES: [AttributeDecl; 3] = [
    XML_LANG,
    AttributeDecl {
        ns: Some(XML_NS),
        name: "space",
        ty: Simple::TokenEnum(&["default", "preserve"]),
        required: false,
    },
    AttributeDecl {
        ns: Some(XML_NS),
        name: "base",
        ty: Simple::AnyUri,
        required: false,
    },
];

/// A string with xml:lang, the shape of every "note"/"display-name" type.
pub(crate) static LANG_STRING: Type = Type {
    attributes: &[XML_LANG],
    any_attribute: None,
    content: Content::Simple(Simple::String),
};
