//! PIDF documents (RFC 3863) with the RFC 4479 data model: reading publications and composing
//! the one document a watcher receives.
//!
//! - [`PidfDocument::parse`] keeps the exact source text of every top-level element (`tuple`,
//!   `note`, `dm:person`, `dm:device` and extensions such as RPID, CIPID or caps elements, RFC
//!   3863 §4.1 and RFC 4479 §4) together with its `id`, the namespace declarations of the
//!   `<presence>` element and the `entity`, percent-decoded once (blink-compat §0.1).
//! - [`compose`] merges the live publications of one presentity into one valid document (RFC
//!   4479 §4, RFC 3903 §4 composition): all tuples, then notes, then persons, devices and other
//!   extensions (the order `presence` requires), newest publication first. The
//!   `pidf-manipulation` document (RFC 4827 §3) stands in only when nothing is published.
//! - [`closed_document`] / [`polite_block_document`]: the neutral "closed" answer.
//! - [`transform`]: what a watcher whose pres-rules carry `provide-*` permissions may see of
//!   the composed document (RFC 5025 §3.3).
//!
//! Copied elements are written byte for byte, except for `xmlns` declarations added to their
//! start tag when the composed root does not bind a prefix they rely on the same way, and for
//! `xs:ID` values renamed to keep the one ID space of the composed document unique.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use crate::uri::decode_any_uri;
use crate::xcap_error::escape_into;

mod reader;
mod transform;

pub use transform::transform;

/// `urn:ietf:params:xml:ns:pidf` (RFC 3863 §4.1).
pub const PIDF_NS: &str = "urn:ietf:params:xml:ns:pidf";
/// `urn:ietf:params:xml:ns:pidf:data-model` (RFC 4479 §4).
pub const DATA_MODEL_NS: &str = "urn:ietf:params:xml:ns:pidf:data-model";
/// `urn:ietf:params:xml:ns:pidf:rpid` (RFC 4480 §2), whose elements carry optional `xs:ID`s.
pub const RPID_NS: &str = "urn:ietf:params:xml:ns:pidf:rpid";

/// Largest accepted document; PUBLISH bodies of Blink are a few KiB.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Most top-level elements kept from one document.
pub const MAX_ELEMENTS: usize = 1024;
/// Most XML nodes in one document; bounds parse time and memory before anything else is read.
const MAX_NODES: u32 = 100_000;

/// Why a PIDF document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PidfError {
    /// The document exceeds [`MAX_DOCUMENT_BYTES`].
    #[error("the document is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge,
    /// Not well-formed XML, a DTD, or more nodes than the parser is allowed to build.
    #[error("not well-formed: {0}")]
    NotWellFormed(String),
    /// The document element is not `{urn:ietf:params:xml:ns:pidf}presence`.
    #[error("the document element is not a PIDF <presence>")]
    NotPresence,
    /// `<presence>` has no `entity` attribute (RFC 3863 §4.1.1).
    #[error("<presence> lacks the entity attribute")]
    MissingEntity,
    /// A tuple, person or device has no `id` (RFC 3863 §4.1.2, RFC 4479 §4).
    #[error("a <{0}> lacks its id attribute")]
    MissingId(&'static str),
    /// More than [`MAX_ELEMENTS`] children of `<presence>`.
    #[error("more than {MAX_ELEMENTS} elements under <presence>")]
    TooManyElements,
}

/// What a top-level element of `<presence>` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ElementKind {
    /// `<tuple>` (RFC 3863 §4.1.2): a service.
    Tuple,
    /// `<note>` directly under `<presence>` (RFC 3863 §4.1.6).
    Note,
    /// `<dm:person>` (RFC 4479 §4.2).
    Person,
    /// `<dm:device>` (RFC 4479 §4.4).
    Device,
    /// Any other element of another namespace (RFC 3863 §4.1.3 extensions).
    Extension,
}

/// What a child of `<presence>` with this expanded name is; `None` for elements of the PIDF
/// namespace other than `tuple` and `note`, which the schema does not allow there.
pub fn element_kind(namespace: Option<&str>, local: &str) -> Option<ElementKind> {
    Some(match (namespace, local) {
        (Some(PIDF_NS), "tuple") => ElementKind::Tuple,
        (Some(PIDF_NS), "note") => ElementKind::Note,
        (Some(PIDF_NS), _) => return None,
        (Some(DATA_MODEL_NS), "person") => ElementKind::Person,
        (Some(DATA_MODEL_NS), "device") => ElementKind::Device,
        _ => ElementKind::Extension,
    })
}

/// Whether the schema types the `id` of an element with this expanded name `xs:ID`: PIDF
/// tuples, data-model persons and devices, and RPID elements (RFC 4480 §2). Elements of
/// namespaces without a schema are processed laxly by validators, so their `id`s are plain
/// strings.
pub fn has_typed_id(namespace: Option<&str>, local: &str) -> bool {
    match namespace {
        Some(PIDF_NS) => local == "tuple",
        Some(DATA_MODEL_NS) => matches!(local, "person" | "device"),
        Some(RPID_NS) => true,
        _ => false,
    }
}

/// A namespace declaration of the `<presence>` element; `prefix` `None` is the default namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    /// The declared prefix, `None` for `xmlns="…"`.
    pub prefix: Option<String>,
    /// The namespace name, unescaped.
    pub uri: String,
}

/// A read-only view of one top-level element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Element<'a> {
    /// What the element is.
    pub kind: ElementKind,
    /// The `id` attribute of tuples, persons and devices (and of ID-carrying extensions),
    /// whitespace-trimmed as `xs:ID` compares it.
    pub id: Option<&'a str>,
    /// The element's exact text in the source document, start tag to end tag.
    pub source: &'a str,
}

/// An `xs:ID` occurrence: its value and where the raw attribute value sits in the source.
#[derive(Debug, Clone)]
struct IdAttr {
    value: Box<str>,
    range: Range<usize>,
}

#[derive(Debug, Clone)]
struct Item {
    kind: ElementKind,
    range: Range<usize>,
    /// Offset just after the start tag's qualified name, where declarations can be inserted.
    name_end: usize,
    /// The element's own `id`, if it is ID-typed.
    id: Option<IdAttr>,
    /// ID-typed `id` attributes of descendants (RPID elements, nested data-model elements), in
    /// document order; they share the document's ID space.
    inner_ids: Vec<IdAttr>,
    /// Prefixes declared on the start tag itself (`None` = default namespace): adding the same
    /// declaration again would be a duplicate attribute.
    declared: Vec<Option<Box<str>>>,
}

/// A parsed PIDF document that owns its source text.
#[derive(Debug, Clone)]
pub struct PidfDocument {
    source: Box<str>,
    entity: String,
    namespaces: Vec<Namespace>,
    items: Vec<Item>,
}

impl PidfDocument {
    /// Reads a PIDF document. Schema validity is not checked here: the PUBLISH and XCAP paths
    /// validate with [`crate::validate()`] first, and [`compose`] only promises valid output for
    /// valid input (while never producing malformed XML).
    pub fn parse(text: &str) -> Result<PidfDocument, PidfError> {
        if text.len() > MAX_DOCUMENT_BYTES {
            return Err(PidfError::TooLarge);
        }
        let scanned =
            reader::read(text, MAX_NODES).map_err(|e| PidfError::NotWellFormed(e.to_string()))?;
        if !scanned.root_is_presence {
            return Err(PidfError::NotPresence);
        }
        let entity = scanned.entity.ok_or(PidfError::MissingEntity)?;
        let entity = decode_any_uri(entity.trim()).into_owned();
        let namespaces = scanned
            .namespaces
            .into_iter()
            .map(|(prefix, uri)| Namespace { prefix, uri })
            .collect();
        let mut items = Vec::new();
        for child in scanned.children {
            if items.len() == MAX_ELEMENTS {
                return Err(PidfError::TooManyElements);
            }
            let Some(item) = child else { continue };
            if item.id.is_none() {
                match item.kind {
                    ElementKind::Tuple => return Err(PidfError::MissingId("tuple")),
                    ElementKind::Person => return Err(PidfError::MissingId("dm:person")),
                    ElementKind::Device => return Err(PidfError::MissingId("dm:device")),
                    ElementKind::Note | ElementKind::Extension => {}
                }
            }
            items.push(item);
        }
        Ok(PidfDocument {
            source: text.into(),
            entity,
            namespaces,
            items,
        })
    }

    /// The `entity` attribute, percent-decoded once.
    pub fn entity(&self) -> &str {
        &self.entity
    }

    /// The namespace declarations in scope on `<presence>`, default namespace included.
    pub fn namespaces(&self) -> &[Namespace] {
        &self.namespaces
    }

    /// The document's source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Every kept top-level element in document order. Elements of the PIDF namespace other
    /// than `tuple` and `note` are not kept: the schema allows none.
    pub fn elements(&self) -> impl Iterator<Item = Element<'_>> {
        self.items.iter().map(|item| Element {
            kind: item.kind,
            id: item.id.as_ref().map(|id| &*id.value),
            source: &self.source[item.range.clone()],
        })
    }

    /// The `<tuple>` elements.
    pub fn tuples(&self) -> impl Iterator<Item = Element<'_>> {
        self.of_kind(ElementKind::Tuple)
    }

    /// The `<dm:person>` elements.
    pub fn persons(&self) -> impl Iterator<Item = Element<'_>> {
        self.of_kind(ElementKind::Person)
    }

    /// The `<dm:device>` elements.
    pub fn devices(&self) -> impl Iterator<Item = Element<'_>> {
        self.of_kind(ElementKind::Device)
    }

    fn of_kind(&self, kind: ElementKind) -> impl Iterator<Item = Element<'_>> {
        self.elements().filter(move |e| e.kind == kind)
    }

    /// The binding of the default namespace on `<presence>`, `""` when there is none.
    fn default_namespace(&self) -> &str {
        self.namespaces
            .iter()
            .find(|ns| ns.prefix.is_none())
            .map_or("", |ns| &ns.uri)
    }
}

/// One live publication handed to [`compose`].
#[derive(Debug, Clone, Copy)]
pub struct Publication<'a> {
    /// The parsed body as published.
    pub document: &'a PidfDocument,
    /// Orders publications: larger is newer (e.g. the sequence number or time of the last
    /// PUBLISH that carried this body). Ties keep the order of the slice.
    pub modified: u64,
}

/// What [`compose`] does with a tuple, person or device whose `id` an element of a newer
/// publication already uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DuplicateIds {
    /// Keep only the newest element of that kind with that id. Every Blink instance publishes
    /// the same `PID-<md5>` person and the invisible tuple `SID-<md5>` (blink-compat §3.3, §4.3):
    /// the same id names the same thing, and the newest state is the one to show.
    KeepNewest,
    /// Keep every element and give later duplicates the id `<id>-<n>` (smallest `n ≥ 2` that is
    /// free), so no published data is lost.
    Rename,
}

/// The tuple id of [`closed_document`].
const CLOSED_TUPLE_ID: &str = "closed";

/// The document for a presentity with nothing to show: one tuple with basic status `closed`
/// (RFC 3863 §4.1.4) and no person or device data.
pub fn closed_document(presentity: &str) -> String {
    let mut out = String::with_capacity(200 + presentity.len());
    write_root_start(&mut out, presentity, &[]);
    out.push_str("<tuple id=\"");
    out.push_str(CLOSED_TUPLE_ID);
    out.push_str("\"><status><basic>closed</basic></status></tuple>\n</presence>\n");
    out
}

/// The document a polite-blocked watcher receives (RFC 5025 §3.2.1): identical to
/// [`closed_document`], so the watcher cannot tell a block from an absent presentity.
pub fn polite_block_document(presentity: &str) -> String {
    closed_document(presentity)
}

/// Composes the document every authorized watcher of `presentity` receives.
///
/// - `presentity` is the AOR (`sip:user@domain`), written as `entity` without percent-encoding:
///   RFC 3863 expects a plain URI, and Blink percent-decodes `entity` once, which leaves a plain
///   AOR unchanged (blink-compat §4.3, §7 SIP item 4).
/// - With live `publications`, their elements in newest-first order (RFC 3863 gives tuple order
///   no meaning; clients that take the first tuple see the latest state). `manipulation` (the
///   RFC 4827 document) is ignored then: its ids collide with live ones (blink-compat §3.3).
/// - Without publications, the elements of `manipulation`; without both, or when the chosen
///   documents hold no element at all, [`closed_document`].
///
/// `xs:ID` values (tuple, person, device and RPID ids share one space) are unique in the output:
/// `duplicates` says what happens to a top-level element whose id a newer one already has; any
/// remaining collision is renamed `<id>-<n>`. No IDREF points at these ids: tuples and devices
/// are linked through the `<dm:deviceID>` URN value (RFC 4479 §4.4), so renaming breaks nothing.
pub fn compose(
    presentity: &str,
    publications: &[Publication<'_>],
    manipulation: Option<&PidfDocument>,
    duplicates: DuplicateIds,
) -> String {
    let mut sources: Vec<&PidfDocument> = if publications.is_empty() {
        manipulation.into_iter().collect()
    } else {
        let mut ordered: Vec<&Publication<'_>> = publications.iter().collect();
        ordered.sort_by_key(|p| std::cmp::Reverse(p.modified));
        ordered.into_iter().map(|p| p.document).collect()
    };
    sources.retain(|doc| !doc.items.is_empty());
    if sources.is_empty() {
        return closed_document(presentity);
    }

    let (root_bindings, conflicting) = root_bindings(&sources);
    let kept = keep(&sources, duplicates);
    let renames = assign_ids(&sources, &kept);

    let capacity = sources.iter().map(|d| d.source.len()).sum::<usize>() + 512;
    let mut out = String::with_capacity(capacity);
    write_root_start(&mut out, presentity, &root_bindings);
    // `presence` is a sequence: tuples, then notes, then extensions (RFC 3863 §4.1, pidf.xsd).
    for group in [Group::Tuples, Group::Notes, Group::Rest] {
        for (d, doc) in sources.iter().enumerate() {
            let extra = extra_declarations(doc, &conflicting);
            for (i, item) in doc.items.iter().enumerate() {
                if group.holds(item.kind) && kept[d][i] {
                    write_item(&mut out, doc, item, &extra, &renames[d][i]);
                }
            }
        }
    }
    out.push_str("</presence>\n");
    out
}

#[derive(Clone, Copy)]
enum Group {
    Tuples,
    Notes,
    Rest,
}

impl Group {
    fn holds(self, kind: ElementKind) -> bool {
        match self {
            Group::Tuples => kind == ElementKind::Tuple,
            Group::Notes => kind == ElementKind::Note,
            Group::Rest => !matches!(kind, ElementKind::Tuple | ElementKind::Note),
        }
    }
}

/// The prefixed declarations for the composed root (every prefix bound to one namespace by all
/// sources that bind it, in first-seen order) and the prefixes bound inconsistently, which stay
/// on the copied elements instead.
fn root_bindings<'d>(sources: &[&'d PidfDocument]) -> (Vec<(&'d str, &'d str)>, HashSet<&'d str>) {
    let mut order: Vec<(&str, &str)> = Vec::new();
    let mut seen: HashMap<&str, &str> = HashMap::new();
    let mut conflicting: HashSet<&str> = HashSet::new();
    for doc in sources {
        for ns in &doc.namespaces {
            let Some(prefix) = ns.prefix.as_deref() else {
                continue;
            };
            match seen.get(prefix) {
                None => {
                    seen.insert(prefix, &ns.uri);
                    order.push((prefix, &ns.uri));
                }
                Some(uri) if *uri != ns.uri => {
                    conflicting.insert(prefix);
                }
                Some(_) => {}
            }
        }
    }
    order.retain(|(prefix, _)| !conflicting.contains(prefix));
    (order, conflicting)
}

/// The declarations of a source root that the composed root does not reproduce: a default
/// namespace other than PIDF's (or none at all, which must be undeclared with `xmlns=""`) and
/// prefixes bound differently elsewhere.
fn extra_declarations<'d>(
    doc: &'d PidfDocument,
    conflicting: &HashSet<&str>,
) -> Vec<(Option<&'d str>, &'d str)> {
    let mut extra = Vec::new();
    let default = doc.default_namespace();
    if default != PIDF_NS {
        extra.push((None, default));
    }
    for ns in &doc.namespaces {
        if let Some(prefix) = ns.prefix.as_deref() {
            if conflicting.contains(prefix) {
                extra.push((Some(prefix), ns.uri.as_str()));
            }
        }
    }
    extra
}

/// Which items survive [`DuplicateIds::KeepNewest`]: sources are newest first, so the first
/// tuple, person or device with a given id wins within its kind.
fn keep(sources: &[&PidfDocument], duplicates: DuplicateIds) -> Vec<Vec<bool>> {
    let mut seen: HashSet<(ElementKind, &str)> = HashSet::new();
    sources
        .iter()
        .map(|doc| {
            doc.items
                .iter()
                .map(|item| {
                    let deduplicated = matches!(
                        item.kind,
                        ElementKind::Tuple | ElementKind::Person | ElementKind::Device
                    );
                    match (&item.id, duplicates) {
                        (Some(id), DuplicateIds::KeepNewest) if deduplicated => {
                            seen.insert((item.kind, &id.value))
                        }
                        _ => true,
                    }
                })
                .collect()
        })
        .collect()
}

/// New values for ID occurrences of one item: (raw value range in the source, new value).
type Renames = Vec<(Range<usize>, String)>;

/// The new values for ID occurrences that collide with an earlier one, as (source range, value)
/// pairs per item in source order. First come keeps its id, so the common case renames nothing.
fn assign_ids(sources: &[&PidfDocument], kept: &[Vec<bool>]) -> Vec<Vec<Renames>> {
    let occurrences = || {
        sources.iter().zip(kept).flat_map(|(doc, kept)| {
            doc.items
                .iter()
                .zip(kept)
                .filter(|(_, kept)| **kept)
                .flat_map(|(item, _)| item.id.iter().chain(&item.inner_ids))
        })
    };
    let all: HashSet<&str> = occurrences().map(|id| &*id.value).collect();
    let mut assigned: HashSet<String> = HashSet::new();
    let mut renames = Vec::with_capacity(sources.len());
    for (doc, kept) in sources.iter().zip(kept) {
        let mut per_doc = Vec::with_capacity(doc.items.len());
        for (item, kept) in doc.items.iter().zip(kept) {
            let mut per_item = Vec::new();
            if *kept {
                for id in item.id.iter().chain(&item.inner_ids) {
                    if assigned.contains(&*id.value) {
                        let mut n = 2u64;
                        let fresh = loop {
                            let candidate = format!("{}-{n}", id.value);
                            if !all.contains(candidate.as_str()) && !assigned.contains(&candidate) {
                                break candidate;
                            }
                            n += 1;
                        };
                        assigned.insert(fresh.clone());
                        per_item.push((id.range.clone(), fresh));
                    } else {
                        assigned.insert(id.value.to_string());
                    }
                }
            }
            per_doc.push(per_item);
        }
        renames.push(per_doc);
    }
    renames
}

fn write_root_start(out: &mut String, presentity: &str, bindings: &[(&str, &str)]) {
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"");
    out.push_str(PIDF_NS);
    out.push('"');
    for (prefix, uri) in bindings {
        write_declaration(out, Some(prefix), uri);
    }
    out.push_str(" entity=\"");
    escape_into(out, presentity, true);
    out.push_str("\">\n");
}

fn write_declaration(out: &mut String, prefix: Option<&str>, uri: &str) {
    out.push_str(" xmlns");
    if let Some(prefix) = prefix {
        out.push(':');
        out.push_str(prefix);
    }
    out.push_str("=\"");
    escape_into(out, uri, true);
    out.push('"');
}

fn write_item(
    out: &mut String,
    doc: &PidfDocument,
    item: &Item,
    extra: &[(Option<&str>, &str)],
    renames: &[(Range<usize>, String)],
) {
    let source = &doc.source;
    out.push_str(&source[item.range.start..item.name_end]);
    for (prefix, uri) in extra {
        if item.declared.iter().any(|d| d.as_deref() == *prefix) {
            continue;
        }
        write_declaration(out, *prefix, uri);
    }
    let mut pos = item.name_end;
    for (range, value) in renames {
        out.push_str(&source[pos..range.start]);
        // Valid ids are NCNames, but an invalid input may have smuggled quotes in through
        // character references; either quote may delimit the attribute.
        let mut escaped = String::with_capacity(value.len());
        escape_into(&mut escaped, value, true);
        out.push_str(&escaped.replace('\'', "&apos;"));
        pos = range.end;
    }
    out.push_str(&source[pos..item.range.end]);
    out.push('\n');
}

#[cfg(test)]
mod tests;
