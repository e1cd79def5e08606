//! The `resource-lists/…/index` document as Blink keeps it (blink-compat §1.2–§1.4): the address
//! book inside the `sipsimple_addressbook` list (namespace `urn:ag-projects:xml:ns:addressbook`,
//! attributes in `urn:ag-projects:blink:xml:ns:addressbook`), and the lists derived from it.
//!
//! Edits happen in place on the parsed tree so foreign elements and attributes survive (§1.3).
//! Attribute values stay percent-encoded in the tree; the typed views decode anyURIs and the
//! editing functions encode them (§0.1, RFC 4826 §3.2).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use simple_payloads::{decode_any_uri, encode_any_uri};

use crate::account::Account;
use crate::ns::{ADDRESSBOOK as AB, BLINK, RL};
use crate::xml::{Document, Element, Style, XmlError};

/// Prefixes Blink writes for this document.
pub const STYLE: Style = Style {
    fixed: &[
        (RL, "rl", true),
        (AB, "addressbook", true),
        (BLINK, "blink", true),
    ],
};

/// The top-level lists normalisation guarantees, in creation order (§1.2).
pub const TOP_LEVEL_LISTS: [&str; 9] = [
    "oma_buddylist",
    "oma_grantedcontacts",
    "oma_blockedcontacts",
    "oma_allcontacts",
    "dialog_grantedcontacts",
    "dialog_blockedcontacts",
    "sipsimple_presence_rls",
    "sipsimple_dialog_rls",
    "sipsimple_addressbook",
];
const DERIVED_LISTS: [&str; 6] = [
    "oma_grantedcontacts",
    "oma_blockedcontacts",
    "dialog_grantedcontacts",
    "dialog_blockedcontacts",
    "sipsimple_presence_rls",
    "sipsimple_dialog_rls",
];
const ADDRESSBOOK: &str = "sipsimple_addressbook";
const CONTACT_ORDER: [&str; 5] = ["name", "uris", "dialog", "presence", "attributes"];
const GROUP_ORDER: [&str; 2] = ["name", "contacts"];
const POLICY_ORDER: [&str; 3] = ["name", "dialog", "presence"];

/// A presence or dialog policy of a contact or policy-element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    Allow,
    Block,
    #[default]
    Default,
}

impl Policy {
    fn as_str(self) -> &'static str {
        match self {
            Policy::Allow => "allow",
            Policy::Block => "block",
            Policy::Default => "default",
        }
    }

    fn parse(text: &str) -> Policy {
        match text.trim() {
            "allow" => Policy::Allow,
            "block" => Policy::Block,
            _ => Policy::Default,
        }
    }
}

/// The `dialog` or `presence` element: policy plus whether to subscribe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Handling {
    pub policy: Policy,
    pub subscribe: bool,
}

/// `blink:attribute` name and value (`None` is `nil="true"`).
pub type Attributes = Vec<(String, Option<String>)>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub contacts: Vec<String>,
    #[serde(default)]
    pub attributes: Attributes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactUri {
    pub id: String,
    /// As typed by the user, often without `sip:` (§1.2); decoded.
    pub uri: String,
    #[serde(default)]
    pub uri_type: Option<String>,
    #[serde(default)]
    pub attributes: Attributes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub uris: Vec<ContactUri>,
    #[serde(default)]
    pub default_uri: Option<String>,
    #[serde(default)]
    pub dialog: Handling,
    #[serde(default)]
    pub presence: Handling,
    #[serde(default)]
    pub attributes: Attributes,
}

/// Rules for an address that is not a contact, e.g. a blocked stranger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyElement {
    pub id: String,
    pub uri: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub dialog: Handling,
    #[serde(default)]
    pub presence: Handling,
    #[serde(default)]
    pub attributes: Attributes,
}

/// What the address book holds, decoded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddressBook {
    pub groups: Vec<Group>,
    pub contacts: Vec<Contact>,
    pub policies: Vec<PolicyElement>,
}

/// Parses a resource-lists document (the empty document when the server has none).
pub fn parse(text: Option<&str>) -> Result<Document, XmlError> {
    match text {
        Some(text) => Document::parse(text, RL, "resource-lists"),
        None => Ok(Document::new(Element::new(RL, "resource-lists"))),
    }
}

fn is_list(e: &Element, name: &str) -> bool {
    e.is(RL, "list") && e.attr("name") == Some(name)
}

fn addressbook(doc: &Document) -> Option<&Element> {
    doc.root.elements().find(|e| is_list(e, ADDRESSBOOK))
}

fn addressbook_mut(doc: &mut Document) -> &mut Element {
    if addressbook(doc).is_none() {
        doc.root
            .push(Element::new(RL, "list").with_attr("name", ADDRESSBOOK));
    }
    doc.root
        .elements_mut()
        .find(|e| is_list(e, ADDRESSBOOK))
        .expect("the addressbook list was just ensured")
}

fn read_attributes(e: &Element) -> Attributes {
    e.child(BLINK, "attributes")
        .map(|attrs| {
            attrs
                .elements()
                .filter(|a| a.is(BLINK, "attribute"))
                .filter_map(|a| {
                    let name = a.attr("name")?.to_owned();
                    let nil = matches!(a.attr("nil"), Some("true" | "True"));
                    Some((name, (!nil).then(|| a.text())))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn attributes_element(attributes: &Attributes) -> Element {
    let mut e = Element::new(BLINK, "attributes");
    for (name, value) in attributes {
        let a = Element::new(BLINK, "attribute").with_attr("name", name);
        e.push(match value {
            Some(v) => a.with_text(v),
            None => a.with_attr("nil", "true"),
        });
    }
    e
}

fn parse_bool(text: &str) -> bool {
    matches!(text.trim(), "true" | "True")
}

fn read_handling(e: &Element, which: &str) -> Handling {
    e.child(AB, which)
        .map(|h| Handling {
            policy: Policy::parse(&h.child_text(AB, "policy").unwrap_or_default()),
            subscribe: parse_bool(&h.child_text(AB, "subscribe").unwrap_or_default()),
        })
        .unwrap_or_default()
}

fn handling_element(which: &str, handling: Handling) -> Element {
    Element::new(AB, which)
        .with_child(Element::new(AB, "policy").with_text(handling.policy.as_str()))
        .with_child(
            Element::new(AB, "subscribe").with_text(if handling.subscribe {
                "true"
            } else {
                "false"
            }),
        )
}

fn set_handling(e: &mut Element, which: &str, handling: Handling, order: &[&str]) {
    let target = e.ensure_child(AB, which, order);
    let policy = target.ensure_child(AB, "policy", &["policy", "subscribe"]);
    policy.set_text(handling.policy.as_str());
    let subscribe = target.ensure_child(AB, "subscribe", &["policy", "subscribe"]);
    subscribe.set_text(if handling.subscribe { "true" } else { "false" });
}

fn read_contact(e: &Element) -> Option<Contact> {
    let uris_element = e.child(AB, "uris");
    let uris = uris_element
        .map(|u| {
            u.elements()
                .filter(|x| x.is(AB, "uri"))
                .filter_map(|x| {
                    Some(ContactUri {
                        id: x.attr("id")?.to_owned(),
                        uri: decode_any_uri(x.attr("uri")?).into_owned(),
                        uri_type: x.attr("type").map(str::to_owned),
                        attributes: read_attributes(x),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Some(Contact {
        id: e.attr("id")?.to_owned(),
        name: e.child_text(AB, "name").unwrap_or_default(),
        uris,
        default_uri: uris_element
            .and_then(|u| u.attr("default"))
            .map(str::to_owned),
        dialog: read_handling(e, "dialog"),
        presence: read_handling(e, "presence"),
        attributes: read_attributes(e),
    })
}

impl AddressBook {
    /// The decoded address book of a resource-lists document.
    pub fn read(doc: &Document) -> AddressBook {
        let mut book = AddressBook::default();
        let Some(list) = addressbook(doc) else {
            return book;
        };
        for e in list.elements() {
            if e.is(AB, "group") {
                if let Some(id) = e.attr("id") {
                    book.groups.push(Group {
                        id: id.to_owned(),
                        name: e.child_text(AB, "name").unwrap_or_default(),
                        contacts: e
                            .child(AB, "contacts")
                            .map(|c| {
                                c.elements()
                                    .filter(|x| x.is(AB, "contact_id"))
                                    .map(|x| x.text().trim().to_owned())
                                    .collect()
                            })
                            .unwrap_or_default(),
                        attributes: read_attributes(e),
                    });
                }
            } else if e.is(AB, "contact") {
                book.contacts.extend(read_contact(e));
            } else if e.is(AB, "policy-element") {
                if let (Some(id), Some(uri)) = (e.attr("id"), e.attr("uri")) {
                    book.policies.push(PolicyElement {
                        id: id.to_owned(),
                        uri: decode_any_uri(uri).into_owned(),
                        name: e.child_text(AB, "name").unwrap_or_default(),
                        dialog: read_handling(e, "dialog"),
                        presence: read_handling(e, "presence"),
                        attributes: read_attributes(e),
                    });
                }
            }
        }
        book
    }

    pub fn contact(&self, id: &str) -> Option<&Contact> {
        self.contacts.iter().find(|c| c.id == id)
    }

    pub fn group(&self, id: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.id == id)
    }

    /// The decoded entries of a top-level list of `doc`, in document order.
    pub fn list_entries(doc: &Document, name: &str) -> Vec<String> {
        doc.root
            .elements()
            .find(|e| is_list(e, name))
            .map(entries_of)
            .unwrap_or_default()
    }
}

fn entries_of(list: &Element) -> Vec<String> {
    list.elements()
        .filter(|e| e.is(RL, "entry"))
        .filter_map(|e| e.attr("uri"))
        .map(|u| decode_any_uri(u).into_owned())
        .collect()
}

fn uri_element(uri: &ContactUri) -> Element {
    let mut e = Element::new(AB, "uri")
        .with_attr("id", &uri.id)
        .with_attr("uri", &encode_any_uri(&uri.uri));
    if let Some(t) = &uri.uri_type {
        e.set_attr("type", t);
    }
    e.with_child(attributes_element(&uri.attributes))
}

fn contact_element(contact: &Contact) -> Element {
    let mut uris = Element::new(AB, "uris");
    if let Some(default) = &contact.default_uri {
        uris.set_attr("default", default);
    }
    for uri in &contact.uris {
        uris.push(uri_element(uri));
    }
    Element::new(AB, "contact")
        .with_attr("id", &contact.id)
        .with_child(Element::new(AB, "name").with_text(&contact.name))
        .with_child(uris)
        .with_child(handling_element("dialog", contact.dialog))
        .with_child(handling_element("presence", contact.presence))
        .with_child(attributes_element(&contact.attributes))
}

fn find_mut<'a>(doc: &'a mut Document, kind: &str, id: &str) -> Option<&'a mut Element> {
    addressbook_mut(doc)
        .elements_mut()
        .find(|e| e.is(AB, kind) && e.attr("id") == Some(id))
}

fn remove(doc: &mut Document, kind: &str, id: &str) {
    addressbook_mut(doc).remove_elements(|e| e.is(AB, kind) && e.attr("id") == Some(id));
}

/// Adds `contact`, replacing an element with the same id (and its unknown children, as the
/// SDK does, §1.3).
pub fn add_contact(doc: &mut Document, contact: &Contact) {
    let element = contact_element(contact);
    match find_mut(doc, "contact", &contact.id) {
        Some(existing) => *existing = element,
        None => addressbook_mut(doc).push(element),
    }
}

/// Changes of an existing contact; `None` leaves a field alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ContactUpdate {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub default_uri: Option<String>,
    #[serde(default)]
    pub dialog: Option<Handling>,
    #[serde(default)]
    pub presence: Option<Handling>,
    /// Attributes to set (`None` value = nil); others are kept.
    #[serde(default)]
    pub attributes: Attributes,
}

/// Applies `update` to contact `id` in place; unknown children stay. Returns false when the
/// contact no longer exists (a concurrent removal wins, §2.2 item 5).
pub fn update_contact(doc: &mut Document, id: &str, update: &ContactUpdate) -> bool {
    let Some(e) = find_mut(doc, "contact", id) else {
        return false;
    };
    if let Some(name) = &update.name {
        e.ensure_child(AB, "name", &CONTACT_ORDER).set_text(name);
    }
    if let Some(default) = &update.default_uri {
        e.ensure_child(AB, "uris", &CONTACT_ORDER)
            .set_attr("default", default);
    }
    if let Some(h) = update.dialog {
        set_handling(e, "dialog", h, &CONTACT_ORDER);
    }
    if let Some(h) = update.presence {
        set_handling(e, "presence", h, &CONTACT_ORDER);
    }
    set_attributes(e, &update.attributes);
    true
}

fn set_attributes(e: &mut Element, values: &Attributes) {
    if values.is_empty() {
        return;
    }
    let attrs = match e.child_mut(BLINK, "attributes") {
        Some(a) => a,
        None => {
            e.push(Element::new(BLINK, "attributes"));
            e.child_mut(BLINK, "attributes")
                .expect("the attributes element was just added")
        }
    };
    for (name, value) in values {
        attrs.remove_elements(|a| a.is(BLINK, "attribute") && a.attr("name") == Some(name));
        let a = Element::new(BLINK, "attribute").with_attr("name", name);
        attrs.push(match value {
            Some(v) => a.with_text(v),
            None => a.with_attr("nil", "true"),
        });
    }
}

pub fn remove_contact(doc: &mut Document, id: &str) {
    remove(doc, "contact", id);
}

/// Adds (or replaces by id) a URI of contact `contact_id`; false if the contact is gone.
pub fn add_uri(doc: &mut Document, contact_id: &str, uri: &ContactUri) -> bool {
    let Some(contact) = find_mut(doc, "contact", contact_id) else {
        return false;
    };
    let uris = contact.ensure_child(AB, "uris", &CONTACT_ORDER);
    let element = uri_element(uri);
    let same = |u: &Element| u.is(AB, "uri") && u.attr("id") == Some(uri.id.as_str());
    if uris.elements().any(same) {
        if let Some(existing) = uris.elements_mut().find(|u| same(u)) {
            *existing = element;
        }
    } else {
        uris.push(element);
    }
    true
}

/// Removes a URI; a `default` pointing at it is dropped too so the document stays consistent.
pub fn remove_uri(doc: &mut Document, contact_id: &str, uri_id: &str) {
    if let Some(contact) = find_mut(doc, "contact", contact_id) {
        if let Some(uris) = contact.child_mut(AB, "uris") {
            uris.remove_elements(|u| u.is(AB, "uri") && u.attr("id") == Some(uri_id));
            if uris.attr("default") == Some(uri_id) {
                uris.remove_attr("default");
            }
        }
    }
}

/// Adds a group, or renames an existing one keeping its members and unknown children.
pub fn add_group(doc: &mut Document, group: &Group) {
    if let Some(e) = find_mut(doc, "group", &group.id) {
        e.ensure_child(AB, "name", &GROUP_ORDER)
            .set_text(&group.name);
        set_attributes(e, &group.attributes);
        for member in &group.contacts {
            add_member(e, member);
        }
        return;
    }
    let mut contacts = Element::new(AB, "contacts");
    for member in &group.contacts {
        contacts.push(Element::new(AB, "contact_id").with_text(member));
    }
    addressbook_mut(doc).push(
        Element::new(AB, "group")
            .with_attr("id", &group.id)
            .with_child(Element::new(AB, "name").with_text(&group.name))
            .with_child(contacts)
            .with_child(attributes_element(&group.attributes)),
    );
}

pub fn remove_group(doc: &mut Document, id: &str) {
    remove(doc, "group", id);
}

fn add_member(group: &mut Element, contact_id: &str) {
    let contacts = group.ensure_child(AB, "contacts", &GROUP_ORDER);
    if !contacts
        .elements()
        .any(|c| c.is(AB, "contact_id") && c.text().trim() == contact_id)
    {
        contacts.push(Element::new(AB, "contact_id").with_text(contact_id));
    }
}

/// Adds a member; false when the group or the contact is gone.
pub fn add_group_member(doc: &mut Document, group_id: &str, contact_id: &str) -> bool {
    if find_mut(doc, "contact", contact_id).is_none() {
        return false;
    }
    match find_mut(doc, "group", group_id) {
        Some(group) => {
            add_member(group, contact_id);
            true
        }
        None => false,
    }
}

pub fn remove_group_member(doc: &mut Document, group_id: &str, contact_id: &str) {
    if let Some(contacts) =
        find_mut(doc, "group", group_id).and_then(|g| g.child_mut(AB, "contacts"))
    {
        contacts.remove_elements(|c| c.is(AB, "contact_id") && c.text().trim() == contact_id);
    }
}

/// Sets a contact's presence policy the way Blink Qt keeps the two fields in step (§1.2):
/// allow ⇒ subscribe, block ⇒ no subscription; `default` keeps the subscription flag.
pub fn set_contact_policy(doc: &mut Document, contact_id: &str, policy: Policy) -> bool {
    let Some(e) = find_mut(doc, "contact", contact_id) else {
        return false;
    };
    let subscribe = match policy {
        Policy::Allow => true,
        Policy::Block => false,
        Policy::Default => read_handling(e, "presence").subscribe,
    };
    set_handling(
        e,
        "presence",
        Handling { policy, subscribe },
        &CONTACT_ORDER,
    );
    true
}

/// Adds or replaces the policy-element for an address (matched by decoded URI, else by id).
pub fn set_policy_element(doc: &mut Document, element: &PolicyElement) {
    let encoded = encode_any_uri(&element.uri);
    let list = addressbook_mut(doc);
    let existing = list.elements_mut().find(|e| {
        e.is(AB, "policy-element")
            && (e.attr("id") == Some(element.id.as_str())
                || e.attr("uri")
                    .map(|u| decode_any_uri(u) == element.uri.as_str())
                    == Some(true))
    });
    match existing {
        Some(e) => {
            e.set_attr("uri", &encoded);
            e.ensure_child(AB, "name", &POLICY_ORDER)
                .set_text(&element.name);
            set_handling(e, "dialog", element.dialog, &POLICY_ORDER);
            set_handling(e, "presence", element.presence, &POLICY_ORDER);
            set_attributes(e, &element.attributes);
        }
        None => list.push(
            Element::new(AB, "policy-element")
                .with_attr("id", &element.id)
                .with_attr("uri", &encoded)
                .with_child(Element::new(AB, "name").with_text(&element.name))
                .with_child(handling_element("dialog", element.dialog))
                .with_child(handling_element("presence", element.presence))
                .with_child(attributes_element(&element.attributes)),
        ),
    }
}

/// Removes the policy-element for a decoded address.
pub fn remove_policy_element(doc: &mut Document, uri: &str) {
    addressbook_mut(doc).remove_elements(|e| {
        e.is(AB, "policy-element") && e.attr("uri").map(|u| decode_any_uri(u) == uri) == Some(true)
    });
}

/// Normalisation of §1.2–§1.4: missing top-level lists created in order, `oma_allcontacts`
/// pointing at the three OMA lists when first created, foreign `rl:` children dropped from the
/// address book and the derived lists, duplicate ids dropped, dangling group members removed,
/// every address-book element given its `blink:attributes`, and the derived lists recomputed.
pub fn normalise(doc: &mut Document, account: &Account) {
    for name in TOP_LEVEL_LISTS {
        if doc.root.elements().any(|e| is_list(e, name)) {
            continue;
        }
        let mut list = Element::new(RL, "list").with_attr("name", name);
        if name == "oma_allcontacts" {
            for target in [
                "oma_buddylist",
                "oma_grantedcontacts",
                "oma_blockedcontacts",
            ] {
                list.push(
                    Element::new(RL, "external")
                        .with_attr("anchor", &encode_any_uri(&account.list_url(target))),
                );
            }
        }
        doc.root.push(list);
    }
    clean_addressbook(addressbook_mut(doc));
    let book = AddressBook::read(doc);
    let derived = derive(&book);
    for (name, wanted) in DERIVED_LISTS.iter().zip(derived) {
        let Some(list) = doc.root.elements_mut().find(|e| is_list(e, name)) else {
            continue;
        };
        list.remove_elements(|e| e.ns.as_deref() == Some(RL) && e.name != "entry");
        let current = entries_of(list);
        let same = current.len() == wanted.len()
            && current.iter().collect::<HashSet<_>>() == wanted.iter().collect::<HashSet<_>>();
        if !same {
            // Rebuilt without display-names, like the SDK (§1.3).
            list.remove_elements(|e| e.is(RL, "entry"));
            for uri in wanted {
                list.push(Element::new(RL, "entry").with_attr("uri", &encode_any_uri(&uri)));
            }
        }
    }
}

fn clean_addressbook(list: &mut Element) {
    let mut seen = HashSet::new();
    list.remove_elements(|e| {
        if e.ns.as_deref() == Some(RL) {
            return true;
        }
        if e.ns.as_deref() == Some(AB) {
            if let Some(id) = e.attr("id") {
                return !seen.insert(id.to_owned());
            }
        }
        false
    });
    let contact_ids: HashSet<String> = list
        .elements()
        .filter(|e| e.is(AB, "contact"))
        .filter_map(|e| e.attr("id").map(str::to_owned))
        .collect();
    for e in list.elements_mut() {
        if e.is(AB, "group") {
            if let Some(contacts) = e.child_mut(AB, "contacts") {
                contacts.remove_elements(|c| {
                    c.is(AB, "contact_id") && !contact_ids.contains(c.text().trim())
                });
            }
        }
        if ["group", "contact", "policy-element"]
            .iter()
            .any(|kind| e.is(AB, kind))
            && e.child(BLINK, "attributes").is_none()
        {
            e.push(Element::new(BLINK, "attributes"));
        }
        if e.is(AB, "contact") {
            if let Some(uris) = e.child_mut(AB, "uris") {
                for uri in uris.elements_mut().filter(|u| u.is(AB, "uri")) {
                    if uri.child(BLINK, "attributes").is_none() {
                        uri.push(Element::new(BLINK, "attributes"));
                    }
                }
            }
        }
    }
}

/// Pushes `uri` once, keeping first-seen order.
fn push_unique(list: &mut Vec<String>, uri: &str) {
    if !list.iter().any(|u| u == uri) {
        list.push(uri.to_owned());
    }
}

/// The six derived lists in [`DERIVED_LISTS`] order (§1.4).
fn derive(book: &AddressBook) -> [Vec<String>; 6] {
    let all: HashSet<&str> = book
        .contacts
        .iter()
        .flat_map(|c| c.uris.iter().map(|u| u.uri.as_str()))
        .collect();
    let lists = |pick: fn(&Contact) -> Handling, pick_policy: fn(&PolicyElement) -> Handling| {
        let uris_with = |policy: Policy| -> HashSet<&str> {
            book.contacts
                .iter()
                .filter(|c| pick(c).policy == policy)
                .flat_map(|c| c.uris.iter().map(|u| u.uri.as_str()))
                .collect()
        };
        let contact_block = uris_with(Policy::Block);
        let policy_block: HashSet<&str> = book
            .policies
            .iter()
            .filter(|p| pick_policy(p).policy == Policy::Block)
            .map(|p| p.uri.as_str())
            .collect();
        let (mut granted, mut blocked, mut rls) = (Vec::new(), Vec::new(), Vec::new());
        for contact in &book.contacts {
            let h = pick(contact);
            for uri in contact.uris.iter().map(|u| u.uri.as_str()) {
                match h.policy {
                    Policy::Allow if !contact_block.contains(uri) => push_unique(&mut granted, uri),
                    Policy::Block => push_unique(&mut blocked, uri),
                    _ => {}
                }
                if h.subscribe {
                    push_unique(&mut rls, uri);
                }
            }
        }
        for p in &book.policies {
            let uri = p.uri.as_str();
            if all.contains(uri) {
                continue;
            }
            let h = pick_policy(p);
            match h.policy {
                Policy::Allow if !policy_block.contains(uri) => push_unique(&mut granted, uri),
                Policy::Block => push_unique(&mut blocked, uri),
                _ => {}
            }
            if h.subscribe {
                push_unique(&mut rls, uri);
            }
        }
        (granted, blocked, rls)
    };
    let (pg, pb, prls) = lists(|c| c.presence, |p| p.presence);
    let (dg, db, drls) = lists(|c| c.dialog, |p| p.dialog);
    [pg, pb, dg, db, prls, drls]
}
