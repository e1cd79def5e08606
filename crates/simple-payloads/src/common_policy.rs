//! Presence authorization rules: common-policy (RFC 4745 §5–§9), pres-rules (RFC 5025 §3–§5)
//! and the OMA common-policy conditions Blink writes (`ocp:external-list`, `ocp:other-identity`,
//! `ocp:anonymous-request`; blink-compat §1.6), read into [`Ruleset`].
//!
//! Reading is structural only: evaluation against a watcher belongs to the `presence-auth`
//! crate. Every `xs:anyURI` value (`one/@id`, `except/@id`, `entry/@anc`) is percent-decoded
//! once, because Blink percent-encodes them (blink-compat §0.1).

use roxmltree::{Document, Node, ParsingOptions};

use crate::uri::decode_any_uri;

/// `urn:ietf:params:xml:ns:common-policy` (RFC 4745 §13.2).
pub const COMMON_POLICY_NS: &str = "urn:ietf:params:xml:ns:common-policy";
/// `urn:ietf:params:xml:ns:pres-rules` (RFC 5025 §9).
pub const PRES_RULES_NS: &str = "urn:ietf:params:xml:ns:pres-rules";
/// `urn:oma:xml:xdm:common-policy` (OMA XDM common policy).
pub const OMA_COMMON_POLICY_NS: &str = "urn:oma:xml:xdm:common-policy";

/// Largest document [`Ruleset::parse`] accepts.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// Most rules kept from one document; evaluation cost grows with it.
pub const MAX_RULES: usize = 1024;
/// Most XML nodes in a parsed document.
const MAX_NODES: u32 = 200_000;

/// Why a pres-rules document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Larger than [`MAX_DOCUMENT_BYTES`].
    #[error("the document is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge,
    /// Not well-formed XML, a DTD, or too many nodes.
    #[error("not well-formed: {0}")]
    NotWellFormed(String),
    /// The document element is not `{urn:ietf:params:xml:ns:common-policy}ruleset`.
    #[error("the document element is not a common-policy <ruleset>")]
    NotRuleset,
    /// A rule lacks its `id`.
    #[error("a <rule> lacks its id")]
    MissingRuleId,
    /// More than [`MAX_RULES`] rules.
    #[error("more than {MAX_RULES} rules")]
    TooManyRules,
}

/// A parsed `<ruleset>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    /// The rules in document order.
    pub rules: Vec<Rule>,
}

/// One `<rule>` (RFC 4745 §6).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    /// The rule's `id`.
    pub id: String,
    /// What must hold for the rule to apply.
    pub conditions: Conditions,
    /// The `pr:sub-handling` action (RFC 5025 §3.2.1); the highest when several are present.
    pub sub_handling: Option<SubHandling>,
    /// The `pr:provide-*` transformations (RFC 5025 §4), `None` when the rule has none.
    pub transformations: Option<Transformations>,
}

/// The conditions of a rule (RFC 4745 §7, OMA extensions). All of them must hold; a rule without
/// conditions applies to every request (RFC 4745 §10.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    /// `cp:identity` elements; each must match (RFC 4745 §7.1).
    pub identities: Vec<Identity>,
    /// `cp:sphere/@value` of each `cp:sphere` element (RFC 4745 §7.2).
    pub spheres: Vec<String>,
    /// `cp:validity` elements, each a list of intervals (RFC 4745 §7.3).
    pub validities: Vec<Vec<Interval>>,
    /// `ocp:external-list` elements, each the percent-decoded `anc` of its entries: the watcher
    /// must be in one of the lists of every element.
    pub external_lists: Vec<Vec<String>>,
    /// `ocp:other-identity` is present.
    pub other_identity: bool,
    /// `ocp:anonymous-request` is present.
    pub anonymous_request: bool,
    /// A condition this implementation does not know is present: it evaluates to false, so
    /// the rule never applies (RFC 4745 §7: unknown conditions are not satisfied).
    pub unsupported: bool,
}

/// A `cp:identity` condition: matches if any of its `one` or `many` children matches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// `cp:one/@id`, percent-decoded.
    pub one: Vec<String>,
    /// `cp:many` children.
    pub many: Vec<Many>,
}

/// `cp:many`: every authenticated identity, or those of one domain, minus exceptions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Many {
    /// `@domain`; `None` matches every domain.
    pub domain: Option<String>,
    /// `cp:except` children.
    pub except: Vec<Except>,
}

/// A `cp:except` child of `cp:many`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Except {
    /// `@domain`: no identity of this domain.
    Domain(String),
    /// `@id`, percent-decoded: not this identity.
    Id(String),
}

/// A `cp:validity` interval, the `from` and `until` `xs:dateTime` texts as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interval {
    /// Start of validity.
    pub from: String,
    /// End of validity.
    pub until: String,
}

/// `pr:sub-handling` (RFC 5025 §3.2.1). The discriminant is the RFC's numeric value, which
/// orders the permissions for combination: the maximum of all matching rules wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum SubHandling {
    /// Reject the subscription.
    Block = 0,
    /// Keep it pending until the presentity decides.
    Confirm = 10,
    /// Accept it but send only neutral, closed presence.
    PoliteBlock = 20,
    /// Accept it and send presence.
    Allow = 30,
}

impl SubHandling {
    /// Reads the token.
    pub fn parse(token: &str) -> Option<SubHandling> {
        match token.trim() {
            "block" => Some(SubHandling::Block),
            "confirm" => Some(SubHandling::Confirm),
            "polite-block" => Some(SubHandling::PoliteBlock),
            "allow" => Some(SubHandling::Allow),
            _ => None,
        }
    }

    /// The token written in documents.
    pub fn as_str(self) -> &'static str {
        match self {
            SubHandling::Block => "block",
            SubHandling::Confirm => "confirm",
            SubHandling::PoliteBlock => "polite-block",
            SubHandling::Allow => "allow",
        }
    }

    /// The RFC 5025 §3.2.1 value: 0, 10, 20 or 30.
    pub fn value(self) -> u8 {
        self as u8
    }
}

/// What `provide-services`, `provide-persons` or `provide-devices` lets through (RFC 5025 §4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProvideSet {
    /// `all-services` / `all-persons` / `all-devices`.
    All,
    /// Only the elements selected by any of these (none: nothing).
    Some(Vec<Selector>),
}

/// A selector inside a `provide-services|persons|devices` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// `pr:service-uri`, percent-decoded.
    ServiceUri(String),
    /// `pr:service-uri-scheme`.
    ServiceUriScheme(String),
    /// `pr:occurrence-id`.
    OccurrenceId(String),
    /// `pr:class`.
    Class(String),
    /// `pr:deviceID` (provide-devices only), percent-decoded.
    DeviceId(String),
    /// An element of another namespace, kept by its namespace and local name.
    Other {
        /// Namespace of the element.
        namespace: String,
        /// Local name of the element.
        name: String,
    },
}

/// A boolean `pr:provide-*` attribute permission (RFC 5025 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Attribute {
    /// `provide-activities`.
    Activities,
    /// `provide-class`.
    Class,
    /// `provide-deviceID`.
    DeviceId,
    /// `provide-mood`.
    Mood,
    /// `provide-place-is`.
    PlaceIs,
    /// `provide-place-type`.
    PlaceType,
    /// `provide-privacy`.
    Privacy,
    /// `provide-relationship`.
    Relationship,
    /// `provide-status-icon`.
    StatusIcon,
    /// `provide-sphere`.
    Sphere,
    /// `provide-time-offset`.
    TimeOffset,
    /// `provide-note`.
    Note,
}

impl Attribute {
    fn from_element(name: &str) -> Option<Attribute> {
        Some(match name {
            "provide-activities" => Attribute::Activities,
            "provide-class" => Attribute::Class,
            "provide-deviceID" => Attribute::DeviceId,
            "provide-mood" => Attribute::Mood,
            "provide-place-is" => Attribute::PlaceIs,
            "provide-place-type" => Attribute::PlaceType,
            "provide-privacy" => Attribute::Privacy,
            "provide-relationship" => Attribute::Relationship,
            "provide-status-icon" => Attribute::StatusIcon,
            "provide-sphere" => Attribute::Sphere,
            "provide-time-offset" => Attribute::TimeOffset,
            "provide-note" => Attribute::Note,
            _ => return None,
        })
    }
}

/// `pr:provide-user-input` (RFC 5025 §4.3.13), ordered from least to most revealing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UserInput {
    /// `false`.
    False,
    /// `bare`.
    Bare,
    /// `thresholds`.
    Thresholds,
    /// `full`.
    Full,
}

/// `pr:provide-unknown-attribute` (RFC 5025 §4.3.14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownAttribute {
    /// `@ns`.
    pub namespace: String,
    /// `@name`.
    pub name: String,
    /// The boolean content.
    pub provide: bool,
}

/// The transformations of a rule (RFC 5025 §4); absent elements are `None`/empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transformations {
    /// `pr:provide-services`.
    pub services: Option<ProvideSet>,
    /// `pr:provide-persons`.
    pub persons: Option<ProvideSet>,
    /// `pr:provide-devices`.
    pub devices: Option<ProvideSet>,
    /// `pr:provide-all-attributes` is present.
    pub all_attributes: bool,
    /// The boolean attribute permissions that were granted (content `true`/`1`).
    pub attributes: Vec<Attribute>,
    /// `pr:provide-user-input`.
    pub user_input: Option<UserInput>,
    /// `pr:provide-unknown-attribute` elements.
    pub unknown_attributes: Vec<UnknownAttribute>,
}

impl Transformations {
    /// True if no `pr:provide-*` element was present (RFC 5025 then provides almost nothing;
    /// Blink means "everything", blink-compat §1.6).
    pub fn is_empty(&self) -> bool {
        *self == Transformations::default()
    }

    /// True if these permissions let the whole document through unfiltered: all services,
    /// persons and devices with all attributes.
    pub fn provides_full_document(&self) -> bool {
        self.services == Some(ProvideSet::All)
            && self.persons == Some(ProvideSet::All)
            && self.devices == Some(ProvideSet::All)
            && self.all_attributes
    }

    /// Combines the permissions of another matching rule into these: the union of what either
    /// provides (RFC 4745 §10.2 with RFC 5025 §4's set and boolean combining rules).
    pub fn combine(&mut self, other: &Transformations) {
        combine_set(&mut self.services, &other.services);
        combine_set(&mut self.persons, &other.persons);
        combine_set(&mut self.devices, &other.devices);
        self.all_attributes |= other.all_attributes;
        for attribute in &other.attributes {
            if !self.attributes.contains(attribute) {
                self.attributes.push(*attribute);
            }
        }
        self.user_input = self.user_input.max(other.user_input);
        for unknown in &other.unknown_attributes {
            match self
                .unknown_attributes
                .iter_mut()
                .find(|u| u.namespace == unknown.namespace && u.name == unknown.name)
            {
                Some(existing) => existing.provide |= unknown.provide,
                None => self.unknown_attributes.push(unknown.clone()),
            }
        }
    }
}

fn combine_set(mine: &mut Option<ProvideSet>, other: &Option<ProvideSet>) {
    match (mine.as_mut(), other) {
        (_, None) | (Some(ProvideSet::All), _) => {}
        (None, Some(set)) => *mine = Some(set.clone()),
        (Some(_), Some(ProvideSet::All)) => *mine = Some(ProvideSet::All),
        (Some(ProvideSet::Some(selectors)), Some(ProvideSet::Some(more))) => {
            for selector in more {
                if !selectors.contains(selector) {
                    selectors.push(selector.clone());
                }
            }
        }
    }
}

impl Ruleset {
    /// Reads a pres-rules document (IETF `pres-rules` or OMA `org.openmobilealliance.pres-rules`).
    /// Elements of unknown namespaces are skipped where RFC 4745 allows extensions: in actions
    /// and transformations they grant nothing, in conditions they make the rule inapplicable.
    pub fn parse(text: &str) -> Result<Ruleset, PolicyError> {
        if text.len() > MAX_DOCUMENT_BYTES {
            return Err(PolicyError::TooLarge);
        }
        let options = ParsingOptions {
            allow_dtd: false,
            nodes_limit: MAX_NODES,
            ..ParsingOptions::default()
        };
        let doc = Document::parse_with_options(text, options)
            .map_err(|e| PolicyError::NotWellFormed(e.to_string()))?;
        let root = doc.root_element();
        if !is(root, COMMON_POLICY_NS, "ruleset") {
            return Err(PolicyError::NotRuleset);
        }
        let mut rules = Vec::new();
        for node in elements(root).filter(|n| is(*n, COMMON_POLICY_NS, "rule")) {
            if rules.len() == MAX_RULES {
                return Err(PolicyError::TooManyRules);
            }
            rules.push(read_rule(node)?);
        }
        Ok(Ruleset { rules })
    }
}

fn read_rule(node: Node<'_, '_>) -> Result<Rule, PolicyError> {
    let id = node
        .attribute("id")
        .ok_or(PolicyError::MissingRuleId)?
        .trim()
        .to_owned();
    let mut rule = Rule {
        id,
        ..Rule::default()
    };
    for part in elements(node) {
        if is(part, COMMON_POLICY_NS, "conditions") {
            read_conditions(part, &mut rule.conditions);
        } else if is(part, COMMON_POLICY_NS, "actions") {
            let handlings = elements(part)
                .filter(|n| is(*n, PRES_RULES_NS, "sub-handling"))
                .filter_map(|n| SubHandling::parse(n.text().unwrap_or_default()));
            rule.sub_handling = rule.sub_handling.max(handlings.max());
        } else if is(part, COMMON_POLICY_NS, "transformations") {
            let transformations = read_transformations(part);
            if !transformations.is_empty() {
                rule.transformations = Some(transformations);
            }
        }
    }
    Ok(rule)
}

fn read_conditions(node: Node<'_, '_>, conditions: &mut Conditions) {
    for condition in elements(node) {
        let name = condition.tag_name();
        match (name.namespace(), name.name()) {
            (Some(COMMON_POLICY_NS), "identity") => {
                conditions.identities.push(read_identity(condition));
            }
            (Some(COMMON_POLICY_NS), "sphere") => conditions
                .spheres
                .push(condition.attribute("value").unwrap_or_default().to_owned()),
            (Some(COMMON_POLICY_NS), "validity") => {
                conditions.validities.push(read_validity(condition));
            }
            (Some(OMA_COMMON_POLICY_NS), "external-list") => conditions.external_lists.push(
                elements(condition)
                    .filter(|n| is(*n, OMA_COMMON_POLICY_NS, "entry"))
                    .filter_map(|n| n.attribute("anc"))
                    .map(|anc| decode_any_uri(anc.trim()).into_owned())
                    .collect(),
            ),
            (Some(OMA_COMMON_POLICY_NS), "other-identity") => conditions.other_identity = true,
            (Some(OMA_COMMON_POLICY_NS), "anonymous-request") => {
                conditions.anonymous_request = true;
            }
            _ => conditions.unsupported = true,
        }
    }
}

fn read_identity(node: Node<'_, '_>) -> Identity {
    let mut identity = Identity::default();
    for child in elements(node) {
        if is(child, COMMON_POLICY_NS, "one") {
            if let Some(id) = child.attribute("id") {
                identity.one.push(decode_any_uri(id.trim()).into_owned());
            }
        } else if is(child, COMMON_POLICY_NS, "many") {
            let except = elements(child)
                .filter(|n| is(*n, COMMON_POLICY_NS, "except"))
                .flat_map(|n| {
                    let domain = n
                        .attribute("domain")
                        .map(|d| Except::Domain(d.trim().into()));
                    let id = n
                        .attribute("id")
                        .map(|id| Except::Id(decode_any_uri(id.trim()).into_owned()));
                    domain.into_iter().chain(id)
                })
                .collect();
            identity.many.push(Many {
                domain: child.attribute("domain").map(|d| d.trim().to_owned()),
                except,
            });
        }
    }
    identity
}

fn read_validity(node: Node<'_, '_>) -> Vec<Interval> {
    let mut intervals = Vec::new();
    let mut from = None;
    for child in elements(node) {
        let text = child.text().unwrap_or_default().trim().to_owned();
        if is(child, COMMON_POLICY_NS, "from") {
            from = Some(text);
        } else if is(child, COMMON_POLICY_NS, "until") {
            if let Some(from) = from.take() {
                intervals.push(Interval { from, until: text });
            }
        }
    }
    intervals
}

fn read_transformations(node: Node<'_, '_>) -> Transformations {
    let mut t = Transformations::default();
    for child in elements(node).filter(|n| n.tag_name().namespace() == Some(PRES_RULES_NS)) {
        let text = child.text().unwrap_or_default().trim();
        match child.tag_name().name() {
            "provide-services" => t.services = Some(read_provide_set(child, "all-services")),
            "provide-persons" => t.persons = Some(read_provide_set(child, "all-persons")),
            "provide-devices" => t.devices = Some(read_provide_set(child, "all-devices")),
            "provide-all-attributes" => t.all_attributes = true,
            "provide-user-input" => {
                t.user_input = match text {
                    "false" => Some(UserInput::False),
                    "bare" => Some(UserInput::Bare),
                    "thresholds" => Some(UserInput::Thresholds),
                    "full" => Some(UserInput::Full),
                    _ => t.user_input,
                }
            }
            "provide-unknown-attribute" => t.unknown_attributes.push(UnknownAttribute {
                namespace: child.attribute("ns").unwrap_or_default().to_owned(),
                name: child.attribute("name").unwrap_or_default().to_owned(),
                provide: is_true(text),
            }),
            name => {
                if let Some(attribute) = Attribute::from_element(name) {
                    if is_true(text) && !t.attributes.contains(&attribute) {
                        t.attributes.push(attribute);
                    }
                }
            }
        }
    }
    t
}

fn read_provide_set(node: Node<'_, '_>, all: &str) -> ProvideSet {
    let mut selectors = Vec::new();
    for child in elements(node) {
        let name = child.tag_name();
        let text = || child.text().unwrap_or_default().trim().to_owned();
        let selector = match (name.namespace(), name.name()) {
            (Some(PRES_RULES_NS), local) if local == all => return ProvideSet::All,
            (Some(PRES_RULES_NS), "service-uri") => {
                Selector::ServiceUri(decode_any_uri(&text()).into_owned())
            }
            (Some(PRES_RULES_NS), "service-uri-scheme") => Selector::ServiceUriScheme(text()),
            (Some(PRES_RULES_NS), "occurrence-id") => Selector::OccurrenceId(text()),
            (Some(PRES_RULES_NS), "class") => Selector::Class(text()),
            (Some(PRES_RULES_NS), "deviceID") => {
                Selector::DeviceId(decode_any_uri(&text()).into_owned())
            }
            (namespace, local) => Selector::Other {
                namespace: namespace.unwrap_or_default().to_owned(),
                name: local.to_owned(),
            },
        };
        selectors.push(selector);
    }
    ProvideSet::Some(selectors)
}

/// `xs:boolean` true, plus Blink's `True` (blink-compat §0.2).
fn is_true(text: &str) -> bool {
    matches!(text, "true" | "1" | "True")
}

fn elements<'a, 'input>(node: Node<'a, 'input>) -> impl Iterator<Item = Node<'a, 'input>> {
    node.children().filter(Node::is_element)
}

fn is(node: Node<'_, '_>, namespace: &str, name: &str) -> bool {
    node.tag_name().namespace() == Some(namespace) && node.tag_name().name() == name
}

#[cfg(test)]
mod tests;
