use super::*;
use crate::{validate, Usage};

const HEAD: &str = r#"<?xml version='1.0' encoding='UTF-8'?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
    xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" xmlns:c="urn:ietf:params:xml:ns:pidf:cipid"
    xmlns:caps="urn:ietf:params:xml:ns:pidf:caps" xmlns:agp-caps="urn:ag-projects:xml:ns:pidf:caps"
    xmlns:agp-pidf="urn:ag-projects:xml:ns:pidf" entity="sip%3Aalice%40example.com">"#;

const PERSON_ID: &str = "PID-c160f8cc69a4f0bf2b0362752353d060";

/// A Blink Qt publication (blink-compat §3.2) of the installation `uuid`.
fn blink(uuid: &str, extended: &str, time: &str) -> String {
    format!(
        r#"{HEAD}
  <tuple id="SID-{uuid}">
    <status><basic>open</basic><agp-pidf:extended>{extended}</agp-pidf:extended></status>
    <caps:servcaps><caps:audio>true</caps:audio><caps:message>true</caps:message></caps:servcaps>
    <agp-pidf:device-info id="{uuid}"><agp-pidf:description>host</agp-pidf:description></agp-pidf:device-info>
    <dm:deviceID>{uuid}</dm:deviceID>
    <contact>sip%3Aalice%40example.com%3Bgr%3Durn%3Auuid%3A{uuid}</contact>
    <timestamp>{time}</timestamp>
  </tuple>
  <dm:person id="{PERSON_ID}">
    <rpid:activities><rpid:{extended}/></rpid:activities>
    <dm:timestamp>{time}</dm:timestamp>
  </dm:person>
  <dm:device id="DID-{uuid}">
    <dm:deviceID>{uuid}</dm:deviceID>
    <dm:timestamp>{time}</dm:timestamp>
  </dm:device>
</presence>"#
    )
}

fn parse(text: &str) -> PidfDocument {
    PidfDocument::parse(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn valid(xml: &str) {
    validate(Usage::PidfManipulation, xml).unwrap_or_else(|e| panic!("{e}:\n{xml}"));
}

fn ids(doc: &PidfDocument, kind: ElementKind) -> Vec<&str> {
    doc.elements()
        .filter(|e| e.kind == kind)
        .filter_map(|e| e.id)
        .collect()
}

fn corpus(name: &str) -> String {
    let path = format!(
        "{}/tests/corpus/pidf-manipulation/valid/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn reads_a_blink_publication() {
    let text = corpus("blink-qt-away-publication.xml");
    let doc = parse(&text);
    assert_eq!(doc.entity(), "sip:alice@example.com");
    assert_eq!(doc.source(), text);
    let kinds: Vec<ElementKind> = doc.elements().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [ElementKind::Tuple, ElementKind::Person, ElementKind::Device]
    );
    let tuple = doc.tuples().next().unwrap();
    assert_eq!(tuple.id, Some("SID-8c1e7d7a-3f2b-4d7e-9a51-0b6f2a9c4e11"));
    assert!(tuple.source.starts_with("<tuple id=\"SID-"));
    assert!(tuple.source.ends_with("</tuple>"));
    assert!(text.contains(tuple.source));
    assert_eq!(
        doc.persons().next().unwrap().id,
        Some("PID-c160f8cc69a4f0bf2b0362752353d060")
    );
    assert!(doc
        .devices()
        .next()
        .unwrap()
        .source
        .starts_with("<dm:device id=\"DID-"));
    let bound = |prefix: Option<&str>| {
        doc.namespaces()
            .iter()
            .find(|ns| ns.prefix.as_deref() == prefix)
            .map(|ns| ns.uri.as_str())
    };
    assert_eq!(bound(None), Some(PIDF_NS));
    assert_eq!(bound(Some("dm")), Some(DATA_MODEL_NS));
    assert_eq!(bound(Some("agp-pidf")), Some("urn:ag-projects:xml:ns:pidf"));
    assert_eq!(bound(Some("xml")), None);
}

#[test]
fn every_valid_corpus_document_composes_alone_into_a_valid_document() {
    let dir = format!(
        "{}/tests/corpus/pidf-manipulation/valid",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let doc = parse(&text);
        let composed = compose(
            "sip:alice@example.com",
            &[],
            Some(&doc),
            DuplicateIds::Rename,
        );
        valid(&composed);
        for element in doc.elements() {
            assert!(composed.contains(element.source), "{}", element.source);
        }
        seen += 1;
    }
    assert!(seen >= 8);
}

#[test]
fn two_devices_compose_with_unique_ids_keeping_the_newest_person() {
    let laptop = parse(&blink("aaaa", "away", "2025-05-15T10:00:00+02:00"));
    let phone = parse(&blink("bbbb", "busy", "2025-05-15T11:00:00+02:00"));
    let publications = [
        Publication {
            document: &laptop,
            modified: 1,
        },
        Publication {
            document: &phone,
            modified: 2,
        },
    ];
    let xml = compose(
        "sip:alice@example.com",
        &publications,
        None,
        DuplicateIds::KeepNewest,
    );
    valid(&xml);
    let composed = parse(&xml);
    assert_eq!(composed.entity(), "sip:alice@example.com");
    assert!(xml.contains(" entity=\"sip:alice@example.com\">"));
    assert_eq!(ids(&composed, ElementKind::Tuple), ["SID-bbbb", "SID-aaaa"]);
    assert_eq!(ids(&composed, ElementKind::Person), [PERSON_ID]);
    assert!(composed
        .persons()
        .next()
        .unwrap()
        .source
        .contains("<rpid:busy/>"));
    assert_eq!(
        ids(&composed, ElementKind::Device),
        ["DID-bbbb", "DID-aaaa"]
    );
    // Blink's elements travel byte for byte (issue 4 acceptance).
    for doc in [&laptop, &phone] {
        for element in doc.tuples().chain(doc.devices()) {
            assert!(xml.contains(element.source));
        }
    }
    // The roots agree on every prefix, so nothing is redeclared on the copies.
    assert_eq!(xml.matches("xmlns:dm=").count(), 1);
}

#[test]
fn rename_keeps_every_element_and_renames_later_duplicates() {
    let laptop = parse(&blink("aaaa", "away", "2025-05-15T10:00:00+02:00"));
    let phone = parse(&blink("bbbb", "busy", "2025-05-15T11:00:00+02:00"));
    let publications = [
        Publication {
            document: &laptop,
            modified: 5,
        },
        Publication {
            document: &phone,
            modified: 9,
        },
    ];
    let xml = compose(
        "sip:alice@example.com",
        &publications,
        None,
        DuplicateIds::Rename,
    );
    valid(&xml);
    let composed = parse(&xml);
    let renamed = format!("{PERSON_ID}-2");
    assert_eq!(
        ids(&composed, ElementKind::Person),
        [PERSON_ID, renamed.as_str()]
    );
    let persons: Vec<&str> = composed.persons().map(|p| p.source).collect();
    assert!(persons[0].contains("<rpid:busy/>"), "newest first");
    assert!(persons[1].contains("<rpid:away/>"));
}

#[test]
fn renamed_ids_avoid_every_id_in_use() {
    let a = parse(&format!(
        "{HEAD}<tuple id='t'><status/></tuple><tuple id='t-2'><status/></tuple></presence>"
    ));
    let b = parse(&format!(
        "{HEAD}<tuple id=' t '><status/></tuple><dm:person id='t-3'/></presence>"
    ));
    let xml = compose(
        "sip:alice@example.com",
        &[
            Publication {
                document: &a,
                modified: 2,
            },
            Publication {
                document: &b,
                modified: 1,
            },
        ],
        None,
        DuplicateIds::Rename,
    );
    valid(&xml);
    assert_eq!(
        ids(&parse(&xml), ElementKind::Tuple),
        ["t", "t-2", "t-4"],
        "{xml}"
    );
}

#[test]
fn keep_newest_only_drops_the_same_kind() {
    let a = parse(&format!(
        "{HEAD}<tuple id='x'><status><basic>open</basic></status></tuple></presence>"
    ));
    let b = parse(&format!(
        "{HEAD}<tuple id='x'><status><basic>closed</basic></status></tuple><dm:person id='x'/></presence>"
    ));
    let publications = [
        Publication {
            document: &a,
            modified: 2,
        },
        Publication {
            document: &b,
            modified: 1,
        },
    ];
    let xml = compose("sip:a@b", &publications, None, DuplicateIds::KeepNewest);
    valid(&xml);
    let composed = parse(&xml);
    assert_eq!(composed.tuples().count(), 1);
    assert!(composed.tuples().next().unwrap().source.contains("open"));
    assert_eq!(ids(&composed, ElementKind::Person), ["x-2"]);
}

#[test]
fn rpid_ids_inside_elements_share_the_id_space() {
    let a = parse(&format!(
        "{HEAD}<dm:person id='p1'><rpid:activities id='a'><rpid:away/></rpid:activities></dm:person></presence>"
    ));
    let b = parse(&format!(
        "{HEAD}<dm:person id='p2'><rpid:activities id='a'><rpid:busy/></rpid:activities>\
         <rpid:mood id=\"p1\"><rpid:happy/></rpid:mood></dm:person></presence>"
    ));
    let publications = [
        Publication {
            document: &a,
            modified: 2,
        },
        Publication {
            document: &b,
            modified: 1,
        },
    ];
    for mode in [DuplicateIds::KeepNewest, DuplicateIds::Rename] {
        let xml = compose("sip:a@b", &publications, None, mode);
        valid(&xml);
        assert!(
            xml.contains("<rpid:activities id='a-2'><rpid:busy/>"),
            "{xml}"
        );
        assert!(xml.contains("<rpid:mood id=\"p1-2\">"), "{xml}");
    }
}

#[test]
fn copied_elements_keep_their_namespaces_when_prefixes_disagree() {
    // `x` means RPID in one publication and CIPID in the other; the second also writes PIDF
    // with a prefix and has no default namespace, so its unprefixed content is in no namespace.
    let a = parse(
        r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:x="urn:ietf:params:xml:ns:pidf:rpid"
            xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" entity="sip:alice@example.com">
          <tuple id="a"><status><basic>open</basic></status></tuple>
          <dm:person id="pa"><x:activities><x:away/></x:activities></dm:person></presence>"#,
    );
    let b = parse(
        r#"<p:presence xmlns:p="urn:ietf:params:xml:ns:pidf" xmlns:x="urn:ietf:params:xml:ns:pidf:cipid"
            xmlns:e="urn:example:ext" entity="sip:alice@example.com">
          <p:tuple id="b"><p:status><p:basic>closed</p:basic></p:status><x:display-name>Al</x:display-name>
          <p:note>hi</p:note></p:tuple>
          <p:note xml:lang="en">top</p:note>
          <e:ext><plain/></e:ext></p:presence>"#,
    );
    let publications = [
        Publication {
            document: &a,
            modified: 2,
        },
        Publication {
            document: &b,
            modified: 1,
        },
    ];
    let xml = compose(
        "sip:alice@example.com",
        &publications,
        None,
        DuplicateIds::Rename,
    );
    valid(&xml);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let find = |name: &str| {
        doc.descendants()
            .find(|n| n.tag_name().name() == name)
            .unwrap_or_else(|| panic!("no {name} in {xml}"))
    };
    assert_eq!(
        find("activities").tag_name().namespace(),
        Some("urn:ietf:params:xml:ns:pidf:rpid")
    );
    assert_eq!(
        find("display-name").tag_name().namespace(),
        Some("urn:ietf:params:xml:ns:pidf:cipid")
    );
    // roxmltree reports an element under `xmlns=""` as in the empty namespace.
    assert_eq!(
        find("plain")
            .tag_name()
            .namespace()
            .filter(|ns| !ns.is_empty()),
        None
    );
    assert_eq!(find("ext").tag_name().namespace(), Some("urn:example:ext"));
    // `x` is bound per element, `p` and `dm` and `e` once on the root.
    assert!(!xml[..xml.find("<tuple").unwrap()].contains("xmlns:x="));
    let order: Vec<&str> = doc
        .root_element()
        .children()
        .filter(|n| n.is_element())
        .map(|n| n.tag_name().name())
        .collect();
    assert_eq!(order, ["tuple", "tuple", "note", "person", "ext"]);
}

#[test]
fn declarations_already_on_a_copied_element_are_not_repeated() {
    let a = parse(
        r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:x="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:a@b">
          <dm:person xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:x="urn:ietf:params:xml:ns:pidf:rpid" id="p"><x:activities><x:away/></x:activities></dm:person></presence>"#,
    );
    let b = parse(
        r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:x="urn:example:other" entity="sip:a@b">
          <tuple id="t" xmlns:x='urn:example:third' ><status/><x:y/></tuple></presence>"#,
    );
    let publications = [
        Publication {
            document: &a,
            modified: 1,
        },
        Publication {
            document: &b,
            modified: 1,
        },
    ];
    let xml = compose("sip:a@b", &publications, None, DuplicateIds::Rename);
    valid(&xml);
    assert!(
        xml.contains(r#"<tuple id="t" xmlns:x='urn:example:third' >"#),
        "{xml}"
    );
    assert_eq!(
        xml.matches(r#"xmlns:x="urn:ietf:params:xml:ns:pidf:rpid""#)
            .count(),
        1
    );
}

#[test]
fn pidf_manipulation_stands_in_only_without_publications() {
    let offline = parse(&corpus("blink-qt-offline.xml"));
    let live = parse(&blink("aaaa", "away", "2025-05-15T10:00:00+02:00"));
    let without = compose(
        "sip:alice@example.com",
        &[],
        Some(&offline),
        DuplicateIds::KeepNewest,
    );
    valid(&without);
    assert!(without.contains("Gone fishing"));
    let with = compose(
        "sip:alice@example.com",
        &[Publication {
            document: &live,
            modified: 0,
        }],
        Some(&offline),
        DuplicateIds::KeepNewest,
    );
    valid(&with);
    assert!(!with.contains("Gone fishing"));
    assert!(with.contains("SID-aaaa"));
}

#[test]
fn nothing_to_show_gives_the_closed_document() {
    let closed = closed_document("sip:alice@example.com");
    valid(&closed);
    assert_eq!(polite_block_document("sip:alice@example.com"), closed);
    assert_eq!(
        compose("sip:alice@example.com", &[], None, DuplicateIds::Rename),
        closed
    );
    let empty = parse(&format!("{HEAD}</presence>"));
    assert_eq!(
        compose(
            "sip:alice@example.com",
            &[Publication {
                document: &empty,
                modified: 0
            }],
            None,
            DuplicateIds::Rename
        ),
        closed
    );
    let doc = parse(&closed);
    assert_eq!(doc.entity(), "sip:alice@example.com");
    assert_eq!(doc.tuples().count(), 1);
    assert_eq!(doc.persons().count() + doc.devices().count(), 0);
    assert!(doc
        .tuples()
        .next()
        .unwrap()
        .source
        .contains("<basic>closed</basic>"));
}

#[test]
fn renaming_invalid_ids_still_gives_well_formed_xml() {
    let a = parse(&format!(
        "{HEAD}<tuple id='a&apos;&quot;&lt;'><status/></tuple><tuple id=\"a&apos;&quot;&lt;\"><status/></tuple></presence>"
    ));
    let xml = compose(
        "sip:a@b",
        &[Publication {
            document: &a,
            modified: 0,
        }],
        None,
        DuplicateIds::Rename,
    );
    assert_eq!(ids(&parse(&xml), ElementKind::Tuple), ["a'\"<", "a'\"<-2"]);
}

#[test]
fn entity_is_escaped() {
    let xml = closed_document("sip:a&b\"<@example.com");
    assert!(xml.contains("entity=\"sip:a&amp;b&quot;&lt;@example.com\""));
    assert_eq!(parse(&xml).entity(), "sip:a&b\"<@example.com");
}

#[test]
fn rejects_what_is_not_a_pidf_document() {
    for malformed in [
        "<presence",
        "<!DOCTYPE p [<!ENTITY a 'b'>]><presence xmlns='urn:ietf:params:xml:ns:pidf' entity='x'/>",
    ] {
        assert!(matches!(
            PidfDocument::parse(malformed),
            Err(PidfError::NotWellFormed(_))
        ));
    }
    let cases = [
        ("<presence entity='x'/>", PidfError::NotPresence),
        (
            "<presence xmlns='urn:ietf:params:xml:ns:pidf'/>",
            PidfError::MissingEntity,
        ),
        (
            "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='x'><tuple><status/></tuple></presence>",
            PidfError::MissingId("tuple"),
        ),
        (
            "<presence xmlns='urn:ietf:params:xml:ns:pidf' xmlns:dm='urn:ietf:params:xml:ns:pidf:data-model' entity='x'><dm:device/></presence>",
            PidfError::MissingId("dm:device"),
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(PidfDocument::parse(text).unwrap_err(), expected, "{text}");
    }
    let big = format!("{HEAD}{}</presence>", " ".repeat(MAX_DOCUMENT_BYTES));
    assert_eq!(PidfDocument::parse(&big).unwrap_err(), PidfError::TooLarge);
    let many = format!(
        "{HEAD}{}</presence>",
        "<note>n</note>".repeat(MAX_ELEMENTS + 1)
    );
    assert_eq!(
        PidfDocument::parse(&many).unwrap_err(),
        PidfError::TooManyElements
    );
}

#[test]
fn skips_pidf_elements_the_schema_does_not_allow_at_the_top() {
    let doc = parse(&format!("{HEAD}<status/><note>n</note></presence>"));
    let kinds: Vec<ElementKind> = doc.elements().map(|e| e.kind).collect();
    assert_eq!(kinds, [ElementKind::Note]);
}
