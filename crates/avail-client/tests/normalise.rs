//! Normalisation and journal replay against Blink's own documents (blink-compat §1.2–§1.6,
//! corpus in crates/simple-payloads/tests/corpus/*/valid/).

use std::collections::BTreeMap;

use avail_client::content::{offline_note, Icon};
use avail_client::documents::{plan, DocumentKind, Fetched, Update};
use avail_client::journal::{Journal, Operation};
use avail_client::pres_rules::{self, DefaultPolicy};
use avail_client::resource_lists::{
    self, AddressBook, Contact, ContactUpdate, ContactUri, Group, Handling, Policy,
};
use avail_client::Account;
use simple_payloads::{validate, Usage};

fn corpus(path: &str) -> String {
    let root = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../simple-payloads/tests/corpus/"
    );
    std::fs::read_to_string(format!("{root}{path}")).expect("corpus file")
}

fn alice() -> Account {
    Account::new(
        "alice",
        "example.com",
        "https://xcap.example.com/xcap-root/",
    )
}

fn blink_documents() -> Fetched {
    BTreeMap::from([
        (
            DocumentKind::ResourceLists,
            Some(corpus(
                "resource-lists/valid/blink-normalised-addressbook.xml",
            )),
        ),
        (
            DocumentKind::RlsServices,
            Some(corpus("rls-services/valid/blink-services.xml")),
        ),
        (
            DocumentKind::PresRules,
            Some(corpus("pres-rules/valid/blink-rules.xml")),
        ),
    ])
}

fn body(updates: &[Update], kind: DocumentKind) -> String {
    updates
        .iter()
        .find(|u| u.kind == kind)
        .and_then(|u| u.body.clone())
        .unwrap_or_else(|| panic!("no {kind:?} update"))
}

fn bob() -> Contact {
    Contact {
        id: "id1715772411000001123456".into(),
        name: "Bob Smith".into(),
        uris: vec![
            ContactUri {
                id: "id1715772411000002654321".into(),
                uri: "bob@example.com".into(),
                uri_type: Some("SIP".into()),
                attributes: vec![],
            },
            ContactUri {
                id: "id1715772411000003111111".into(),
                uri: "+31201234567".into(),
                uri_type: Some("Mobile".into()),
                attributes: vec![],
            },
        ],
        default_uri: Some("id1715772411000002654321".into()),
        dialog: Handling::default(),
        presence: Handling {
            policy: Policy::Allow,
            subscribe: true,
        },
        attributes: vec![("preferred_media".into(), Some("audio".into()))],
    }
}

/// Blink's own normalised documents are already normal: nothing is written back.
#[test]
fn blink_documents_are_a_fixed_point() {
    let updates = plan(&alice(), &blink_documents(), &[]).unwrap();
    assert_eq!(updates, vec![]);
}

/// Building Bob, Friends and the blocked stranger from nothing through operations yields the
/// same address book, derived lists, services and rules as Blink's document.
#[test]
fn operations_on_empty_documents_reproduce_blinks_layout() {
    let empty: Fetched = BTreeMap::from([
        (DocumentKind::ResourceLists, None),
        (DocumentKind::RlsServices, None),
        (DocumentKind::PresRules, None),
    ]);
    let ops = vec![
        Operation::AddGroup {
            group: Group {
                id: "id1715772400123456042311".into(),
                name: "Friends".into(),
                contacts: vec![],
                attributes: vec![],
            },
        },
        Operation::AddContact { contact: bob() },
        Operation::AddGroupMember {
            group_id: "id1715772400123456042311".into(),
            contact_id: bob().id,
        },
        Operation::SetAddressPolicy {
            id: "id1715772499000000777777".into(),
            uri: "sip:spam@example.net".into(),
            name: "Spammer".into(),
            policy: Policy::Block,
        },
    ];
    let updates = plan(&alice(), &empty, &ops).unwrap();
    let kinds: Vec<_> = updates.iter().map(|u| u.kind).collect();
    assert_eq!(
        kinds,
        [
            DocumentKind::ResourceLists,
            DocumentKind::RlsServices,
            DocumentKind::PresRules
        ]
    );
    let ours = body(&updates, DocumentKind::ResourceLists);
    validate(Usage::ResourceLists, &ours).unwrap();
    let blink = resource_lists::parse(Some(&corpus(
        "resource-lists/valid/blink-normalised-addressbook.xml",
    )))
    .unwrap();
    let mine = resource_lists::parse(Some(&ours)).unwrap();
    assert_eq!(AddressBook::read(&mine), AddressBook::read(&blink));
    for list in resource_lists::TOP_LEVEL_LISTS {
        assert_eq!(
            AddressBook::list_entries(&mine, list),
            AddressBook::list_entries(&blink, list),
            "{list}"
        );
    }
    let names: Vec<_> = mine
        .root
        .elements()
        .map(|l| l.attr("name").unwrap_or_default().to_owned())
        .collect();
    assert_eq!(names, resource_lists::TOP_LEVEL_LISTS);
    // Fed back as the server's copy together with Blink's services and rules, nothing changes,
    // so our rls-services and pres-rules equal Blink's exactly after parsing.
    let mut fetched = blink_documents();
    fetched.insert(DocumentKind::ResourceLists, Some(ours.clone()));
    assert_eq!(plan(&alice(), &fetched, &[]).unwrap(), vec![]);
    for kind in [DocumentKind::RlsServices, DocumentKind::PresRules] {
        let reparsed = |text: &str| match kind {
            DocumentKind::RlsServices => {
                avail_client::rls_services::parse(Some(text)).unwrap().root
            }
            _ => pres_rules::parse(Some(text)).unwrap().root,
        };
        let blink_text = blink_documents()[&kind].clone().unwrap();
        assert_eq!(
            reparsed(&body(&updates, kind)),
            reparsed(&blink_text),
            "{kind:?}"
        );
        validate(kind.usage(), &body(&updates, kind)).unwrap();
    }
    // Exact encodings of §0.1 and §1.2.
    assert!(
        ours.starts_with("<?xml version='1.0' encoding='UTF-8'?>\n<rl:resource-lists xmlns:rl=")
    );
    assert!(ours.contains(r#"<rl:external anchor="https%3A//xcap.example.com/xcap-root/resource-lists/users/sip%3Aalice%40example.com/index/~~/resource-lists/list%5B%40name%3D%22oma_grantedcontacts%22%5D"/>"#));
    assert!(ours.contains(r#"<addressbook:policy-element id="id1715772499000000777777" uri="sip%3Aspam%40example.net">"#));
    assert!(ours.contains(r#"<rl:entry uri="%2B31201234567"/>"#));
    let rls = body(&updates, DocumentKind::RlsServices);
    assert!(
        rls.contains(r#"<service uri="sip%3Aalice%2Bpresence%40example.com">"#),
        "{rls}"
    );
    let rules = body(&updates, DocumentKind::PresRules);
    assert!(
        rules.contains(r#"<cp:one id="sip%3Aalice%40example.com"/>"#),
        "{rules}"
    );
}

/// Unknown elements, attributes and lists survive edits in place (§1.3).
#[test]
fn foreign_data_is_preserved() {
    let blink = corpus("resource-lists/valid/blink-normalised-addressbook.xml")
        .replace(
            "<blink:attributes><blink:attribute name=\"preferred_media\">",
            "<x:note xmlns:x=\"urn:example:other\" x:flag=\"1\">keep me</x:note><blink:attributes><blink:attribute name=\"preferred_media\">",
        )
        .replace(
            "<rl:list name=\"oma_buddylist\"/>",
            "<rl:list name=\"oma_buddylist\"/><rl:list name=\"work\"><rl:entry uri=\"sip%3Aboss%40example.com\"><rl:display-name>Boss</rl:display-name></rl:entry></rl:list><!-- hand edited -->",
        );
    let mut fetched = blink_documents();
    fetched.insert(DocumentKind::ResourceLists, Some(blink));
    let ops = [Operation::UpdateContact {
        id: "id1715772411000001123456".into(),
        update: ContactUpdate {
            name: Some("Robert Smith".into()),
            attributes: vec![("organization".into(), Some("ACME".into()))],
            ..ContactUpdate::default()
        },
    }];
    let updates = plan(&alice(), &fetched, &ops).unwrap();
    assert_eq!(updates.len(), 1);
    let out = body(&updates, DocumentKind::ResourceLists);
    validate(Usage::ResourceLists, &out).unwrap();
    assert!(
        out.contains(r#"<x:note xmlns:x="urn:example:other" x:flag="1">keep me</x:note>"#)
            || out.contains(r#"<x:note x:flag="1">keep me</x:note>"#),
        "{out}"
    );
    assert!(out.contains(r#"xmlns:x="urn:example:other""#));
    assert!(out.contains("<rl:display-name>Boss</rl:display-name>"));
    assert!(out.contains("<!-- hand edited -->"));
    assert!(out.contains("<addressbook:name>Robert Smith</addressbook:name>"));
    assert!(out.contains(r#"<blink:attribute name="organization">ACME</blink:attribute>"#));
    assert!(out.contains(r#"<blink:attribute name="preferred_media">audio</blink:attribute>"#));
}

/// anyURIs are decoded on input and encoded on output, whatever the characters (§0.1).
#[test]
fn any_uris_are_percent_encoded_and_decoded() {
    let mut contact = bob();
    contact.uris.truncate(1);
    contact.uris[0].uri = "sip:bob;tag=a b@example.com".into();
    let fetched = BTreeMap::from([(DocumentKind::ResourceLists, None)]);
    let updates = plan(&alice(), &fetched, &[Operation::AddContact { contact }]).unwrap();
    let out = body(&updates, DocumentKind::ResourceLists);
    assert!(
        out.contains(r#"uri="sip%3Abob%3Btag%3Da%20b%40example.com""#),
        "{out}"
    );
    let doc = resource_lists::parse(Some(&out)).unwrap();
    assert_eq!(
        AddressBook::read(&doc).contacts[0].uris[0].uri,
        "sip:bob;tag=a b@example.com"
    );
    assert_eq!(
        AddressBook::list_entries(&doc, "sipsimple_presence_rls"),
        ["sip:bob;tag=a b@example.com"]
    );
}

/// A contact overrides a policy-element for the same URI; groups lose removed contacts and
/// foreign rl children leave derived lists (§1.2, §1.4).
#[test]
fn derivation_rules() {
    let fetched = BTreeMap::from([(
        DocumentKind::ResourceLists,
        Some(
            corpus("resource-lists/valid/blink-normalised-addressbook.xml").replace(
                "<rl:list name=\"sipsimple_dialog_rls\"/>",
                "<rl:list name=\"sipsimple_dialog_rls\"><rl:list name=\"stray\"/></rl:list>",
            ),
        ),
    )]);
    let ops = [
        Operation::SetAddressPolicy {
            id: "id1".into(),
            uri: "bob@example.com".into(),
            name: String::new(),
            policy: Policy::Block,
        },
        Operation::SetAddressPolicy {
            id: "id2".into(),
            uri: "sip:spam@example.net".into(),
            name: String::new(),
            policy: Policy::Default,
        },
    ];
    let out = body(
        &plan(&alice(), &fetched, &ops).unwrap(),
        DocumentKind::ResourceLists,
    );
    let doc = resource_lists::parse(Some(&out)).unwrap();
    // Bob's contact now blocks him (both URIs); the stranger's element is gone.
    assert_eq!(
        AddressBook::list_entries(&doc, "oma_blockedcontacts"),
        ["bob@example.com", "+31201234567"]
    );
    assert!(AddressBook::list_entries(&doc, "oma_grantedcontacts").is_empty());
    assert!(AddressBook::list_entries(&doc, "sipsimple_presence_rls").is_empty());
    assert!(AddressBook::read(&doc).policies.is_empty());
    assert!(!out.contains("stray"));

    let removed = plan(
        &alice(),
        &fetched,
        &[Operation::RemoveContact { id: bob().id }],
    )
    .unwrap();
    let doc = resource_lists::parse(Some(&body(&removed, DocumentKind::ResourceLists))).unwrap();
    let book = AddressBook::read(&doc);
    assert!(book.contacts.is_empty());
    assert!(book.groups[0].contacts.is_empty());
    assert_eq!(
        AddressBook::list_entries(&doc, "oma_blockedcontacts"),
        ["sip:spam@example.net"]
    );
}

/// Unknown rules go, transformations go, sub-handling is forced, default policy switches rules.
#[test]
fn pres_rules_normalisation() {
    let doc = corpus("pres-rules/valid/blink-rules.xml")
        .replace(
            "<cp:rule id=\"wp_prs_allow_own\">",
            "<cp:rule id=\"server_rule\"><cp:conditions/><cp:actions><pr:sub-handling>allow</pr:sub-handling></cp:actions></cp:rule><cp:rule id=\"wp_prs_allow_own\">",
        )
        .replace(
            "<pr:sub-handling>polite-block</pr:sub-handling></cp:actions>",
            "<pr:sub-handling>allow</pr:sub-handling></cp:actions><cp:transformations><pr:provide-persons><pr:all-persons/></pr:provide-persons></cp:transformations>",
        );
    let fetched = BTreeMap::from([(DocumentKind::PresRules, Some(doc))]);
    let out = body(
        &plan(
            &alice(),
            &fetched,
            &[Operation::SetDefaultPolicy {
                policy: DefaultPolicy::Allow,
            }],
        )
        .unwrap(),
        DocumentKind::PresRules,
    );
    validate(Usage::OmaPresRules, &out).unwrap();
    assert!(!out.contains("server_rule"));
    assert!(!out.contains("transformations"));
    assert!(!out.contains("wp_prs_unlisted"));
    let parsed = pres_rules::parse(Some(&out)).unwrap();
    assert_eq!(pres_rules::default_policy(&parsed), DefaultPolicy::Allow);
    let ids: Vec<_> = parsed
        .root
        .elements()
        .filter_map(|r| r.attr("id"))
        .collect();
    assert_eq!(
        ids,
        [
            "wp_prs_grantedcontacts",
            "wp_prs_blockedcontacts",
            "wp_prs_block_anonymous",
            "wp_prs_allow_own",
            "wp_prs_allow_unlisted"
        ]
    );
    assert!(out.contains(
        "<cp:rule id=\"wp_prs_blockedcontacts\">\n    <cp:conditions>\n      <ocp:external-list>"
    ));
    let blocked = parsed
        .root
        .elements()
        .find(|r| r.attr("id") == Some("wp_prs_blockedcontacts"))
        .unwrap();
    assert!(format!("{blocked:?}").contains("polite-block"));
}

/// Icons Blink cannot use are deleted; ours validate; the offline note round-trips.
#[test]
fn icon_and_offline_note() {
    let bad = corpus("pres-content/valid/schema-allows-any-mime-type.xml");
    assert!(Icon::parse(&bad).is_none());
    let fetched = BTreeMap::from([
        (DocumentKind::StatusIcon, Some(bad)),
        (DocumentKind::PidfManipulation, None),
    ]);
    let updates = plan(&alice(), &fetched, &[]).unwrap();
    assert_eq!(
        updates,
        [Update {
            kind: DocumentKind::StatusIcon,
            body: None
        }]
    );
    let blink_icon = Icon::parse(&corpus("pres-content/valid/blink-icon.xml")).unwrap();
    assert_eq!(blink_icon.mime_type, "image/png");
    assert!(Icon::parse(&corpus("pres-content/valid/py2-wrapped-base64.xml")).is_some());
    let icon = Icon::new("image/png", &blink_icon.bytes().unwrap()).unwrap();
    assert!(Icon::new("image/bmp", b"x").is_err());
    let updates = plan(
        &alice(),
        &fetched,
        &[
            Operation::SetIcon {
                icon: Some(icon.clone()),
            },
            Operation::SetOfflineNote {
                note: Some("Gone <fishing> & back".into()),
            },
        ],
    )
    .unwrap();
    let icon_doc = body(&updates, DocumentKind::StatusIcon);
    validate(Usage::OmaPresContent, &icon_doc).unwrap();
    assert_eq!(Icon::parse(&icon_doc), Some(icon));
    let pidf = body(&updates, DocumentKind::PidfManipulation);
    validate(Usage::PidfManipulation, &pidf).unwrap();
    assert!(pidf.contains(r#"entity="sip%3Aalice%40example.com""#));
    assert!(pidf.contains(r#"<tuple id="SID-"#));
    assert_eq!(
        offline_note(&pidf).as_deref(),
        Some("Gone <fishing> & back")
    );
    assert_eq!(
        offline_note(&corpus(
            "pidf-manipulation/valid/blink-cocoa-offline-note.xml"
        ))
        .as_deref(),
        Some("On holiday until Monday")
    );
}

/// Replaying the journal on a copy another device changed merges both edits.
#[test]
fn journal_replay_merges_with_concurrent_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.jsonl");
    let mut journal = Journal::open(&path).unwrap();
    let mut carol = bob();
    carol.id = "id_carol".into();
    carol.name = "Carol".into();
    carol.uris = vec![ContactUri {
        id: "id_carol_uri".into(),
        uri: "carol@example.com".into(),
        uri_type: None,
        attributes: vec![],
    }];
    carol.default_uri = None;
    journal
        .push(Operation::AddContact { contact: carol })
        .unwrap();
    journal
        .push(Operation::SetContactPolicy {
            contact_id: bob().id,
            policy: Policy::Block,
        })
        .unwrap();
    assert!(journal
        .push(Operation::RemoveGroup { id: "9bad".into() })
        .is_err());
    // A crash mid-append leaves a torn line: the complete operations survive.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"{\"op\":\"add_gro"))
        .unwrap();
    let mut journal = Journal::open(&path).unwrap();
    assert_eq!(journal.operations().len(), 2);
    // The torn tail was cut, so a later append is not glued onto it.
    journal
        .push(Operation::RemoveGroup {
            id: "id_gone".into(),
        })
        .unwrap();
    let mut journal = Journal::open(&path).unwrap();
    assert_eq!(journal.operations().len(), 3);

    // Another device renamed the group meanwhile.
    let theirs = corpus("resource-lists/valid/blink-normalised-addressbook.xml")
        .replace(">Friends<", ">Best friends<");
    let fetched = BTreeMap::from([(DocumentKind::ResourceLists, Some(theirs))]);
    let out = body(
        &plan(&alice(), &fetched, journal.operations()).unwrap(),
        DocumentKind::ResourceLists,
    );
    let doc = resource_lists::parse(Some(&out)).unwrap();
    let book = AddressBook::read(&doc);
    assert_eq!(book.groups[0].name, "Best friends");
    assert_eq!(book.contacts.len(), 2);
    assert_eq!(
        book.contact("id_carol").unwrap().presence.policy,
        Policy::Allow
    );
    assert_eq!(
        book.contact(&bob().id).unwrap().presence.policy,
        Policy::Block
    );
    assert_eq!(
        AddressBook::list_entries(&doc, "oma_grantedcontacts"),
        ["carol@example.com"]
    );

    journal.complete(1).unwrap();
    assert_eq!(Journal::open(&path).unwrap().operations().len(), 2);
}
