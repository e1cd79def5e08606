use proptest::prelude::*;

use super::*;
use crate::common_policy::UnknownAttribute;
use crate::pidf::PidfDocument;
use crate::{validate, Usage};

const UUID: &str = "8c1e7d7a-3f2b-4d7e-9a51-0b6f2a9c4e11";
const CAPS_NS: &str = "urn:ietf:params:xml:ns:pidf:caps";
const AGP_PIDF_NS: &str = "urn:ag-projects:xml:ns:pidf";

fn corpus(name: &str) -> String {
    let path = format!(
        "{}/tests/corpus/pidf-manipulation/valid/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Blink Qt's publication (blink-compat §3.2), plus a second tuple of class `work` and a
/// presence-level note, so selectors have something to choose between.
fn blink() -> String {
    corpus("blink-qt-away-publication.xml").replacen(
        "  <dm:person",
        "  <tuple id=\"SID-work\"><status><basic>closed</basic></status>\
         <rpid:class>work</rpid:class><contact>tel:+15551234</contact></tuple>\n  \
         <note>presentity note</note>\n  <dm:person",
        1,
    )
}

fn all() -> Transformations {
    Transformations {
        services: Some(ProvideSet::All),
        persons: Some(ProvideSet::All),
        devices: Some(ProvideSet::All),
        all_attributes: true,
        ..Transformations::default()
    }
}

fn components() -> Transformations {
    Transformations {
        all_attributes: false,
        ..all()
    }
}

fn filtered(text: &str, permissions: &Transformations) -> String {
    let out = transform(text, permissions).unwrap_or_else(|e| panic!("{e}: {text}"));
    validate(Usage::PidfManipulation, &out).unwrap_or_else(|e| panic!("{e}:\n{out}"));
    out
}

#[test]
fn every_permission_keeps_the_document_byte_for_byte() {
    let text = blink();
    assert_eq!(filtered(&text, &all()), text);
}

#[test]
fn no_component_permission_withholds_every_component() {
    let text = blink();
    let out = filtered(
        &text,
        &Transformations {
            all_attributes: true,
            ..Transformations::default()
        },
    );
    for withheld in ["<tuple", "<dm:person", "<dm:device"] {
        assert!(!out.contains(withheld), "{withheld} in:\n{out}");
    }
    assert!(out.contains("presentity note"), "{out}");
    assert!(
        out.contains("entity=\"sip%3Aalice%40example.com\""),
        "{out}"
    );
}

#[test]
fn components_without_attribute_permissions_keep_only_their_core() {
    let out = filtered(&blink(), &components());
    let doc = PidfDocument::parse(&out).unwrap();
    let tuple = doc.tuples().next().unwrap().source;
    assert!(tuple.contains("<basic>open</basic>"), "{tuple}");
    assert!(tuple.contains("<contact>sip%3Aalice"), "{tuple}");
    assert!(tuple.contains("<timestamp>"), "{tuple}");
    for withheld in [
        "agp-pidf:extended",
        "caps:servcaps",
        "c:display-name",
        "c:icon",
        "device-info",
        "user-input",
        "dm:deviceID",
        "In a meeting",
    ] {
        assert!(!tuple.contains(withheld), "{withheld} in {tuple}");
    }
    let person = doc.persons().next().unwrap().source;
    assert!(!person.contains("activities") && person.contains("dm:timestamp"));
    let device = doc.devices().next().unwrap().source;
    assert!(device.contains(&format!("<dm:deviceID>{UUID}</dm:deviceID>")));
    assert!(!device.contains("dm:note"), "{device}");
    assert!(!out.contains("presentity note"));
    assert!(
        !out.contains("\n  \n"),
        "withheld elements leave no blank lines:\n{out}"
    );
}

#[test]
fn named_attribute_permissions_let_exactly_their_elements_through() {
    let permissions = Transformations {
        attributes: vec![Attribute::Activities, Attribute::Note, Attribute::DeviceId],
        unknown_attributes: vec![
            UnknownAttribute {
                namespace: AGP_PIDF_NS.into(),
                name: "extended".into(),
                provide: true,
            },
            UnknownAttribute {
                namespace: CAPS_NS.into(),
                name: "servcaps".into(),
                provide: false,
            },
        ],
        ..components()
    };
    let out = filtered(&blink(), &permissions);
    for kept in [
        "<agp-pidf:extended>away</agp-pidf:extended>",
        "<rpid:activities><rpid:away/></rpid:activities>",
        "<note>In a meeting</note>",
        "<dm:note>Blink 6.0.4",
        "<note>presentity note</note>",
        &format!("<dm:deviceID>{UUID}</dm:deviceID>\n    <contact>"),
    ] {
        assert!(out.contains(kept), "{kept} missing:\n{out}");
    }
    for withheld in ["caps:servcaps", "c:display-name", "user-input"] {
        assert!(!out.contains(withheld), "{withheld} in:\n{out}");
    }
}

#[test]
fn user_input_levels_withhold_the_finer_details() {
    let text = corpus("rpid-edge-cases.xml");
    let level = |user_input| {
        filtered(
            &text,
            &Transformations {
                user_input,
                ..components()
            },
        )
    };
    assert!(!level(None).contains("user-input"));
    assert!(!level(Some(UserInput::False)).contains("user-input"));
    let bare = level(Some(UserInput::Bare));
    assert!(bare.contains(">idle</rpid:user-input>"), "{bare}");
    assert!(!bare.contains("idle-threshold") && !bare.contains("last-input"));
    assert!(bare.contains("pidf:mustUnderstand=\"1\""), "{bare}");
    let thresholds = level(Some(UserInput::Thresholds));
    assert!(thresholds.contains("idle-threshold=\"+01\"") && !thresholds.contains("last-input"));
    let full = level(Some(UserInput::Full));
    assert!(full.contains("idle-threshold") && full.contains("last-input=\""));
}

#[test]
fn service_selectors_choose_tuples() {
    let text = blink();
    let services = |selectors: Vec<Selector>| {
        let out = filtered(
            &text,
            &Transformations {
                services: Some(ProvideSet::Some(selectors)),
                ..Transformations::default()
            },
        );
        PidfDocument::parse(&out)
            .unwrap()
            .tuples()
            .map(|t| t.id.unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let blink_tuple = format!("SID-{UUID}");
    assert_eq!(
        services(vec![Selector::OccurrenceId("SID-work".into())]),
        ["SID-work"]
    );
    assert_eq!(services(vec![Selector::Class("work".into())]), ["SID-work"]);
    assert_eq!(
        services(vec![Selector::ServiceUriScheme("SIP".into())]),
        [blink_tuple.as_str()]
    );
    // The rule's URI is compared with the contact as Blink means it, percent-decoded.
    assert_eq!(
        services(vec![Selector::ServiceUri(format!(
            "sip:alice@example.com;gr=urn:uuid:{UUID}"
        ))]),
        [blink_tuple.as_str()]
    );
    assert_eq!(
        services(vec![
            Selector::ServiceUriScheme("tel".into()),
            Selector::OccurrenceId(blink_tuple.clone()),
        ]),
        [blink_tuple.as_str(), "SID-work"]
    );
    assert!(services(vec![]).is_empty());
    assert!(services(vec![Selector::DeviceId(UUID.into())]).is_empty());
    assert!(services(vec![Selector::Other {
        namespace: "urn:example".into(),
        name: "x".into()
    }])
    .is_empty());
}

#[test]
fn person_and_device_selectors_choose_their_components() {
    let text = blink();
    let out = filtered(
        &text,
        &Transformations {
            persons: Some(ProvideSet::Some(vec![Selector::OccurrenceId(
                "PID-c160f8cc69a4f0bf2b0362752353d060".into(),
            )])),
            devices: Some(ProvideSet::Some(vec![Selector::DeviceId(UUID.into())])),
            ..Transformations::default()
        },
    );
    let doc = PidfDocument::parse(&out).unwrap();
    assert_eq!(doc.persons().count(), 1);
    assert_eq!(doc.devices().count(), 1);
    assert_eq!(doc.tuples().count(), 0);

    let out = filtered(
        &text,
        &Transformations {
            persons: Some(ProvideSet::Some(vec![Selector::Class("work".into())])),
            devices: Some(ProvideSet::Some(vec![
                Selector::DeviceId("other".into()),
                Selector::OccurrenceId("nope".into()),
            ])),
            ..Transformations::default()
        },
    );
    let doc = PidfDocument::parse(&out).unwrap();
    assert_eq!(doc.persons().count() + doc.devices().count(), 0, "{out}");
}

#[test]
fn filtering_is_idempotent_on_every_corpus_document() {
    let dir = format!(
        "{}/tests/corpus/pidf-manipulation/valid",
        env!("CARGO_MANIFEST_DIR")
    );
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for permissions in [Transformations::default(), components(), all()] {
            let once = filtered(&text, &permissions);
            assert_eq!(transform(&once, &permissions).unwrap(), once);
        }
    }
}

#[test]
fn what_is_not_a_pidf_document_is_an_error() {
    let permissions = all();
    assert!(matches!(
        transform("<presence", &permissions),
        Err(PidfError::NotWellFormed(_))
    ));
    assert_eq!(
        transform(
            "<ruleset xmlns=\"urn:ietf:params:xml:ns:common-policy\"/>",
            &permissions
        ),
        Err(PidfError::NotPresence)
    );
    let huge = format!(
        "<presence xmlns=\"{PIDF_NS}\" entity=\"sip:a@b\"><note>{}</note></presence>",
        "x".repeat(MAX_DOCUMENT_BYTES)
    );
    assert_eq!(transform(&huge, &permissions), Err(PidfError::TooLarge));
}

/// Whether `filtered` is `source` with parts left out (a subsequence of it).
fn only_cuts(source: &str, filtered: &str) -> bool {
    let mut rest = source.chars();
    filtered.chars().all(|c| rest.any(|s| s == c))
}

const ATTRIBUTES: [Attribute; 12] = [
    Attribute::Activities,
    Attribute::Class,
    Attribute::DeviceId,
    Attribute::Mood,
    Attribute::PlaceIs,
    Attribute::PlaceType,
    Attribute::Privacy,
    Attribute::Relationship,
    Attribute::StatusIcon,
    Attribute::Sphere,
    Attribute::TimeOffset,
    Attribute::Note,
];

fn selector() -> impl Strategy<Value = Selector> {
    prop_oneof![
        prop_oneof![
            Just("SID-work"),
            Just("bs35r9"),
            Just("p1"),
            Just("d1"),
            Just("PID-c160f8cc69a4f0bf2b0362752353d060"),
        ]
        .prop_map(|id| Selector::OccurrenceId(id.into())),
        prop_oneof![Just("work"), Just("home")].prop_map(|c| Selector::Class(c.into())),
        prop_oneof![Just("sip"), Just("tel"), Just("mailto"), Just("im")]
            .prop_map(|s| Selector::ServiceUriScheme(s.into())),
        Just(Selector::ServiceUri("tel:+15551234".into())),
        prop_oneof![Just(UUID), Just("urn:x:1")].prop_map(|d| Selector::DeviceId(d.into())),
    ]
}

fn provide_set() -> impl Strategy<Value = Option<ProvideSet>> {
    prop_oneof![
        Just(None),
        Just(Some(ProvideSet::All)),
        proptest::collection::vec(selector(), 0..4).prop_map(|s| Some(ProvideSet::Some(s))),
    ]
}

fn permissions() -> impl Strategy<Value = Transformations> {
    let unknown = prop_oneof![
        Just((CAPS_NS, "servcaps")),
        Just((AGP_PIDF_NS, "extended")),
        Just(("urn:ietf:params:xml:ns:pidf:cipid", "display-name")),
        Just(("urn:ietf:params:xml:ns:pidf:rpid", "service-class")),
        Just(("urn:ietf:params:xml:ns:pidf:im", "im")),
    ];
    (
        (provide_set(), provide_set(), provide_set()),
        any::<bool>(),
        proptest::collection::vec(0..ATTRIBUTES.len(), 0..6),
        proptest::option::of(prop_oneof![
            Just(UserInput::False),
            Just(UserInput::Bare),
            Just(UserInput::Thresholds),
            Just(UserInput::Full),
        ]),
        proptest::collection::vec((unknown, any::<bool>()), 0..3),
    )
        .prop_map(
            |((services, persons, devices), all_attributes, attributes, user_input, unknown)| {
                Transformations {
                    services,
                    persons,
                    devices,
                    all_attributes,
                    attributes: attributes.into_iter().map(|i| ATTRIBUTES[i]).collect(),
                    user_input,
                    unknown_attributes: unknown
                        .into_iter()
                        .map(|((namespace, name), provide)| UnknownAttribute {
                            namespace: namespace.into(),
                            name: name.into(),
                            provide,
                        })
                        .collect(),
                }
            },
        )
}

fn documents() -> Vec<String> {
    let mut documents = vec![blink()];
    for name in [
        "rpid-edge-cases.xml",
        "rfc3863-example.xml",
        "caps-full.xml",
        "blink-qt-offline.xml",
        "rfc4827-style-person-only.xml",
    ] {
        documents.push(corpus(name));
    }
    documents
}

proptest! {
    /// Filtering a valid document never makes it invalid, only ever cuts, and grants
    /// monotonically: the union of two permission sets cuts nothing either of them keeps.
    /// (It is not idempotent: a `class` selector may pick a component whose `rpid:class`
    /// the watcher may not see.)
    #[test]
    fn filtering_keeps_documents_valid_and_grants_monotonically(
        index in 0..6usize,
        a in permissions(),
        b in permissions(),
    ) {
        let text = &documents()[index];
        let out = filtered(text, &a);
        prop_assert!(only_cuts(text, &out));
        let mut union = a.clone();
        union.combine(&b);
        let wider = filtered(text, &union);
        prop_assert!(wider.len() >= out.len());
        prop_assert!(wider.len() >= filtered(text, &b).len());
        // Only whole elements and user-input attributes are cut, so the result reads back.
        prop_assert!(PidfDocument::parse(&out).is_ok());
    }
}
