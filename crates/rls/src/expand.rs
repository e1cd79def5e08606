//! Resource list expansion (RFC 4826 §4.3 for `<service>`, §3.2 for the list forms): a service
//! of an rls-services document becomes the flat, de-duplicated list of resources the server
//! subscribes to on the subscriber's behalf.
//!
//! Every reference form is followed: the service's inline `<list>` or its `<resource-list>`
//! URI, nested `<list>`s, `<entry-ref ref>` (relative to the XCAP root, RFC 4826 §3.2.2) and
//! `<external anchor>` (an absolute XCAP URI, §3.2.3). Documents load asynchronously in the
//! shell, so expansion is resumable: [`expand`] names the documents it lacks
//! ([`Expansion::Need`]) and is called again once they are in [`Documents`]. anyURI values are
//! percent-decoded once, as Blink encodes them (blink-compat §0.1).

use std::collections::{BTreeSet, HashMap, HashSet};

use presence_auth::ListAnchor;
use roxmltree::{Document, Node, ParsingOptions};
use simple_payloads::decode_any_uri;

/// `urn:ietf:params:xml:ns:resource-lists` (RFC 4826 §3.2).
pub const RESOURCE_LISTS_NS: &str = "urn:ietf:params:xml:ns:resource-lists";
/// `urn:ietf:params:xml:ns:rls-services` (RFC 4826 §4.2).
pub const RLS_SERVICES_NS: &str = "urn:ietf:params:xml:ns:rls-services";
/// Most XML nodes read from one document; XCAP already bounds documents' size.
const MAX_NODES: u32 = 200_000;

/// The XCAP application usages a list can draw from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Auid {
    ResourceLists,
    RlsServices,
}

impl Auid {
    pub fn as_str(self) -> &'static str {
        match self {
            Auid::ResourceLists => "resource-lists",
            Auid::RlsServices => "rls-services",
        }
    }
}

/// A user document in the XCAP tree: `<auid>/users/<owner>/<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocumentRef {
    pub auid: Auid,
    /// The XUI, e.g. `sip:alice@example.com`, decoded.
    pub owner: String,
    /// The document name below the user's directory, usually `index`.
    pub name: String,
}

impl DocumentRef {
    /// The owner's `index` document of `auid`.
    pub fn index(auid: Auid, owner: &str) -> DocumentRef {
        DocumentRef {
            auid,
            owner: owner.to_owned(),
            name: "index".to_owned(),
        }
    }

    /// The document path relative to the XCAP root, e.g.
    /// `resource-lists/users/sip:alice@example.com/index`.
    pub fn path(&self) -> String {
        format!("{}/users/{}/{}", self.auid.as_str(), self.owner, self.name)
    }

    /// Reads a document path relative to the XCAP root (a leading `/` is tolerated). The
    /// XUI and name are percent-decoded, as HTTP paths carry them.
    pub fn from_path(path: &str) -> Option<DocumentRef> {
        let path = path.strip_prefix('/').unwrap_or(path);
        let (auid, rest) = path.split_once("/users/")?;
        let auid = match auid {
            "resource-lists" => Auid::ResourceLists,
            "rls-services" => Auid::RlsServices,
            _ => return None,
        };
        let (owner, name) = rest.split_once('/')?;
        let name = name.trim_end_matches('/');
        if owner.is_empty() || name.is_empty() {
            return None;
        }
        Some(DocumentRef {
            auid,
            owner: decode_any_uri(owner).into_owned(),
            name: decode_any_uri(name).into_owned(),
        })
    }
}

/// The documents loaded so far: the text, or None for a document known not to exist.
/// [`expand`] parses every resource-lists document held here, so hold the ones an expansion
/// asked for, not a cache of every user's.
#[derive(Debug, Clone, Default)]
pub struct Documents {
    texts: HashMap<DocumentRef, Option<String>>,
}

impl Documents {
    pub fn new() -> Documents {
        Documents::default()
    }

    /// Records a loaded document (`None`: it does not exist).
    pub fn insert(&mut self, document: DocumentRef, text: Option<String>) {
        self.texts.insert(document, text);
    }

    fn get(&self, document: &DocumentRef) -> Option<Option<&str>> {
        self.texts.get(document).map(Option::as_deref)
    }
}

/// Caps of one expansion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpansionLimits {
    /// Resources kept; later entries are dropped (reported as [`Problem::TooManyEntries`]).
    pub max_entries: usize,
    /// Deepest nesting of lists, counting each followed reference as a level.
    pub max_depth: usize,
    /// Distinct documents one expansion may read, the rls-services document included.
    pub max_documents: usize,
}

impl Default for ExpansionLimits {
    fn default() -> Self {
        ExpansionLimits {
            max_entries: 2000,
            max_depth: 16,
            max_documents: 16,
        }
    }
}

/// One resource of an expanded list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The entry URI decoded once, as the user wrote it (e.g. `bob@example.com`).
    pub uri: String,
    /// The entry's `display-name`, if any.
    pub name: Option<String>,
}

impl Entry {
    /// The URI echoed in RLMI `resource/@uri`: the entry verbatim, with `sip:` added when it
    /// has no scheme (blink-compat §4.2).
    pub fn resource_uri(&self) -> String {
        if has_scheme(&self.uri) {
            self.uri.clone()
        } else {
            format!("sip:{}", self.uri)
        }
    }
}

/// Something that was skipped while expanding; the rest of the list still counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A reference leads back to a list already being expanded.
    Loop(String),
    /// Lists nested deeper than [`ExpansionLimits::max_depth`].
    TooDeep,
    /// More entries than [`ExpansionLimits::max_entries`].
    TooManyEntries,
    /// More documents than [`ExpansionLimits::max_documents`].
    TooManyDocuments,
    /// A reference that is not a list or entry in a user document of this XCAP server.
    BadReference(String),
    /// A referenced document, list or entry does not exist, or is not readable.
    Missing(String),
}

/// An expanded service (RFC 4826 §4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List {
    /// The service URI, decoded, as the document writes it.
    pub service: String,
    /// `<packages>`; empty when the service names none (then every package is allowed).
    pub packages: Vec<String>,
    /// Resources in document order, de-duplicated by URI keeping the first name.
    pub entries: Vec<Entry>,
    pub problems: Vec<Problem>,
}

impl List {
    /// Whether the service offers `event` (RFC 4826 §4.2: no `<packages>` means any).
    pub fn allows(&self, event: &str) -> bool {
        self.packages.is_empty() || self.packages.iter().any(|p| p.eq_ignore_ascii_case(event))
    }
}

/// The result of one [`expand`] attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expansion {
    Done(List),
    /// Load these documents into [`Documents`] (None if absent) and call again.
    Need(Vec<DocumentRef>),
    /// The owner's rls-services document has no such service.
    NoService,
}

/// Expands `service` of `owner`'s rls-services `index` document. `xcap_root_path` is the
/// path part of this server's XCAP root (e.g. `/xcap-root`): absolute references whose path
/// is not below it point to another server and are not followed.
pub fn expand(
    owner: &str,
    service: &str,
    documents: &Documents,
    limits: &ExpansionLimits,
    xcap_root_path: &str,
) -> Expansion {
    let services = DocumentRef::index(Auid::RlsServices, owner);
    let Some(text) = documents.get(&services) else {
        return Expansion::Need(vec![services]);
    };
    let Some(doc) = text.and_then(parse) else {
        return Expansion::NoService;
    };
    let root = doc.root_element();
    if !root.has_tag_name((RLS_SERVICES_NS, "rls-services")) {
        return Expansion::NoService;
    }
    let wanted = service_key(service);
    let Some(node) = root
        .children()
        .filter(|n| n.has_tag_name((RLS_SERVICES_NS, "service")))
        .find(|n| {
            n.attribute("uri")
                .is_some_and(|u| service_key(&decode_any_uri(u)) == wanted)
        })
    else {
        return Expansion::NoService;
    };
    let parsed: HashMap<DocumentRef, Option<Document<'_>>> = documents
        .texts
        .iter()
        .filter(|(document, _)| document.auid == Auid::ResourceLists)
        .map(|(document, text)| (document.clone(), text.as_deref().and_then(parse)))
        .collect();
    let mut walker = Walker {
        limits,
        xcap_root_path,
        parsed: &parsed,
        read: BTreeSet::from([services.clone()]),
        needed: BTreeSet::new(),
        entries: Vec::new(),
        seen: HashSet::new(),
        problems: Vec::new(),
        path: Vec::new(),
    };
    let packages = node
        .children()
        .filter(|n| n.has_tag_name((RLS_SERVICES_NS, "packages")))
        .flat_map(|p| p.children())
        .filter(|n| n.has_tag_name((RLS_SERVICES_NS, "package")))
        .filter_map(|p| p.text())
        .map(|t| t.trim().to_owned())
        .collect();
    for child in node.children().filter(Node::is_element) {
        if child.has_tag_name((RLS_SERVICES_NS, "list")) {
            let id = ListId {
                document: services.clone(),
                lists: vec![format!("service {service}")],
            };
            walker.list(child, id, 0);
        } else if child.has_tag_name((RLS_SERVICES_NS, "resource-list")) {
            let reference = decode_any_uri(child.text().unwrap_or_default().trim()).into_owned();
            walker.external(&reference, 0);
        }
    }
    if !walker.needed.is_empty() {
        return Expansion::Need(walker.needed.into_iter().collect());
    }
    Expansion::Done(List {
        service: node
            .attribute("uri")
            .map(|u| decode_any_uri(u).into_owned())
            .unwrap_or_default(),
        packages,
        entries: walker.entries,
        problems: walker.problems,
    })
}

/// The service URIs (decoded) of an rls-services document, in document order; empty when it
/// is not one.
pub fn service_uris(text: &str) -> Vec<String> {
    let Some(doc) = parse(text) else {
        return Vec::new();
    };
    let root = doc.root_element();
    if !root.has_tag_name((RLS_SERVICES_NS, "rls-services")) {
        return Vec::new();
    }
    root.children()
        .filter(|n| n.has_tag_name((RLS_SERVICES_NS, "service")))
        .filter_map(|n| n.attribute("uri"))
        .map(|u| decode_any_uri(u).into_owned())
        .collect()
}

/// How service URIs compare: SIP URIs by user and host (RFC 3261 §19.1.4 for the parts a
/// Request-URI and a document share), anything else as written.
pub fn service_key(uri: &str) -> String {
    presence::aor(uri).unwrap_or_else(|| uri.trim().to_owned())
}

/// A list node: its document and the names leading to it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ListId {
    document: DocumentRef,
    lists: Vec<String>,
}

struct Walker<'p, 'd> {
    limits: &'p ExpansionLimits,
    xcap_root_path: &'p str,
    /// Every loaded resource-lists document, parsed once per expansion.
    parsed: &'p HashMap<DocumentRef, Option<Document<'d>>>,
    /// Documents read or requested, for [`ExpansionLimits::max_documents`].
    read: BTreeSet<DocumentRef>,
    needed: BTreeSet<DocumentRef>,
    entries: Vec<Entry>,
    seen: HashSet<String>,
    problems: Vec<Problem>,
    /// The lists being expanded, outermost first: a reference to one of them is a loop.
    path: Vec<ListId>,
}

impl<'p, 'd> Walker<'p, 'd> {
    fn problem(&mut self, problem: Problem) {
        // One report per kind and subject is enough for the shell's log.
        if !self.problems.contains(&problem) {
            self.problems.push(problem);
        }
    }

    fn list(&mut self, node: Node<'_, '_>, id: ListId, depth: usize) {
        if depth >= self.limits.max_depth {
            self.problem(Problem::TooDeep);
            return;
        }
        if self.path.contains(&id) {
            self.problem(Problem::Loop(id.lists.join("/")));
            return;
        }
        self.path.push(id.clone());
        for child in node.children().filter(Node::is_element) {
            if child.tag_name().namespace() != Some(RESOURCE_LISTS_NS) {
                continue;
            }
            match child.tag_name().name() {
                "entry" => {
                    if let Some(uri) = child.attribute("uri") {
                        self.entry(decode_any_uri(uri).into_owned(), display_name(child));
                    }
                }
                "list" => {
                    let mut nested = id.clone();
                    nested
                        .lists
                        .push(child.attribute("name").unwrap_or_default().to_owned());
                    self.list(child, nested, depth + 1);
                }
                "external" => {
                    if let Some(anchor) = child.attribute("anchor") {
                        self.external(&decode_any_uri(anchor), depth + 1);
                    }
                }
                "entry-ref" => {
                    if let Some(reference) = child.attribute("ref") {
                        self.entry_ref(&decode_any_uri(reference), display_name(child), depth + 1);
                    }
                }
                _ => {}
            }
        }
        self.path.pop();
    }

    fn entry(&mut self, uri: String, name: Option<String>) {
        let entry = Entry { uri, name };
        if !self.seen.insert(service_key(&entry.resource_uri())) {
            return;
        }
        if self.entries.len() >= self.limits.max_entries {
            self.problem(Problem::TooManyEntries);
            return;
        }
        self.entries.push(entry);
    }

    /// An absolute XCAP URI of a list (`<external anchor>`, `<resource-list>`).
    fn external(&mut self, anchor: &str, depth: usize) {
        let Some(target) = self.list_anchor(anchor, true) else {
            self.problem(Problem::BadReference(anchor.to_owned()));
            return;
        };
        self.follow(target, depth, anchor);
    }

    /// A reference relative to the XCAP root to an entry (`<entry-ref ref>`).
    fn entry_ref(&mut self, reference: &str, name: Option<String>, depth: usize) {
        let Some((list, uri)) = split_entry_step(reference) else {
            self.problem(Problem::BadReference(reference.to_owned()));
            return;
        };
        let Some(target) = self.list_anchor(list, false) else {
            self.problem(Problem::BadReference(reference.to_owned()));
            return;
        };
        if depth >= self.limits.max_depth {
            self.problem(Problem::TooDeep);
            return;
        }
        let Some(doc) = self.document(&target.document) else {
            return;
        };
        let found = find_list(doc.root_element(), &target.lists).and_then(|list| {
            list.children()
                .filter(|n| n.has_tag_name((RESOURCE_LISTS_NS, "entry")))
                .find(|n| n.attribute("uri").map(decode_any_uri).as_deref() == Some(uri.as_str()))
                .map(|n| {
                    (
                        decode_any_uri(n.attribute("uri").unwrap_or_default()).into_owned(),
                        display_name(n),
                    )
                })
        });
        match found {
            Some((uri, own_name)) => self.entry(uri, name.or(own_name)),
            None => self.problem(Problem::Missing(reference.to_owned())),
        }
    }

    fn follow(&mut self, target: ListId, depth: usize, reference: &str) {
        let Some(doc) = self.document(&target.document) else {
            return;
        };
        match find_list(doc.root_element(), &target.lists) {
            Some(node) => self.list(node, target, depth),
            None => self.problem(Problem::Missing(reference.to_owned())),
        }
    }

    /// The parsed document, or None after noting it as needed, missing or over the cap.
    fn document(&mut self, document: &DocumentRef) -> Option<&'p Document<'d>> {
        if !self.read.contains(document) {
            if self.read.len() >= self.limits.max_documents {
                self.problem(Problem::TooManyDocuments);
                return None;
            }
            self.read.insert(document.clone());
        }
        let parsed: &'p HashMap<DocumentRef, Option<Document<'d>>> = self.parsed;
        match parsed.get(document) {
            None => {
                self.needed.insert(document.clone());
                None
            }
            Some(None) => {
                self.problem(Problem::Missing(document.path()));
                None
            }
            Some(Some(doc)) => Some(doc),
        }
    }

    /// Reads `<document URI>/~~/resource-lists/list[@name=…]…`; `absolute` anchors carry a
    /// scheme and authority before the XCAP root path, relative ones start below the root.
    fn list_anchor(&self, anchor: &str, absolute: bool) -> Option<ListId> {
        let parsed = ListAnchor::parse(anchor)?;
        let path = if absolute {
            let after_scheme = parsed.document.split_once("://")?.1;
            let path = &after_scheme[after_scheme.find('/')?..];
            let root = self.xcap_root_path.trim_end_matches('/');
            path.strip_prefix(root)?.strip_prefix('/')?.to_owned()
        } else {
            parsed.document.clone()
        };
        let document = DocumentRef::from_path(&path)?;
        (document.auid == Auid::ResourceLists).then_some(ListId {
            document,
            lists: parsed.lists,
        })
    }
}

/// Splits `…/~~/resource-lists/list[@name="x"]/entry[@uri="y"]` into the list reference and
/// the entry URI (decoded once more, as the node selector is percent-encoded in the URI).
fn split_entry_step(reference: &str) -> Option<(&str, String)> {
    let separator = reference.find("/~~/")?;
    let selector_start = separator + 4;
    let step_start = reference[selector_start..].rfind('/')? + selector_start;
    let step = decode_any_uri(&reference[step_start + 1..]).into_owned();
    let name = step.split('[').next().unwrap_or_default();
    if name.rsplit(':').next() != Some("entry") {
        return None;
    }
    let predicate = step[step.find('[')?..]
        .strip_prefix('[')?
        .strip_suffix(']')?
        .trim();
    let value = predicate
        .strip_prefix("@uri")?
        .trim_start()
        .strip_prefix('=')?
        .trim();
    let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let uri = value.strip_prefix(quote)?.strip_suffix(quote)?;
    Some((&reference[..step_start], uri.to_owned()))
}

/// The `<list>` reached by `names` from the resource-lists document element.
fn find_list<'a, 'i>(root: Node<'a, 'i>, names: &[String]) -> Option<Node<'a, 'i>> {
    if !root.has_tag_name((RESOURCE_LISTS_NS, "resource-lists")) {
        return None;
    }
    let mut node = root;
    for name in names {
        node = node
            .children()
            .filter(|n| n.has_tag_name((RESOURCE_LISTS_NS, "list")))
            .find(|n| n.attribute("name") == Some(name.as_str()))?;
    }
    Some(node)
}

fn display_name(node: Node<'_, '_>) -> Option<String> {
    node.children()
        .find(|n| n.has_tag_name((RESOURCE_LISTS_NS, "display-name")))
        .and_then(|n| n.text())
        .map(str::to_owned)
}

fn parse(text: &str) -> Option<Document<'_>> {
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
        ..ParsingOptions::default()
    };
    Document::parse_with_options(text, options).ok()
}

/// RFC 3986 `scheme ":"` at the start.
fn has_scheme(uri: &str) -> bool {
    let Some((scheme, _)) = uri.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}
