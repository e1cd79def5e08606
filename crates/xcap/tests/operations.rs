//! End-to-end behaviour of the engine through its public API: GET/PUT/DELETE of documents,
//! elements, attributes and namespace bindings (RFC 4825 §8, §10), error conditions (§11), byte
//! preservation, and a shell-like conditional-request flow.

use roxmltree::Document;
use xcap::{
    check_preconditions, etag_for, resource_lists_uniqueness, ApplicationUsage, ConstraintContext,
    ConstraintFailure, DeleteOutcome, Engine, Limits, Method, Precondition, PutOutcome,
    UniquenessConflict, ValidationFailure, XcapError, XcapUri, ATTRIBUTE_TYPE, ELEMENT_TYPE,
    NAMESPACES_TYPE,
};

const RL_NS: &str = "urn:ietf:params:xml:ns:resource-lists";
const RL_TYPE: &str = "application/resource-lists+xml";

/// A resource-lists usage whose "schema" rejects any document containing `INVALID`.
struct Lists {
    generated: bool,
}

impl ApplicationUsage for Lists {
    fn auid(&self) -> &str {
        "resource-lists"
    }
    fn default_namespace(&self) -> &str {
        RL_NS
    }
    fn mime_type(&self) -> &str {
        RL_TYPE
    }
    fn validate(&self, document: &str) -> Result<(), ValidationFailure> {
        if document.contains("INVALID") {
            Err(ValidationFailure {
                phrase: Some("INVALID found".into()),
            })
        } else {
            Ok(())
        }
    }
    fn check_constraints(
        &self,
        document: &Document<'_>,
        ctx: &ConstraintContext<'_>,
    ) -> Result<(), ConstraintFailure> {
        assert_eq!(ctx.uri.auid, "resource-lists");
        resource_lists_uniqueness(document)
    }
    fn is_generated(&self) -> bool {
        self.generated
    }
}

const LISTS: Lists = Lists { generated: false };

const DOC: &str = r#"<?xml version='1.0' encoding='UTF-8'?>
<!-- owned by alice -->
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists" xmlns:x="urn:example:foreign">
  <list name="friends">
    <entry uri='sip:bob@example.com'><display-name>Bob &amp; co</display-name></entry>
    <!-- keep me -->
    <entry uri="sip:carol@example.com"/>
    <x:note x:level="1">foreign <![CDATA[data]]></x:note>
  </list>
  <list name="empty"/>
  <list name="other"><external anchor="http://x/y"/></list>
</resource-lists>
"#;

fn engine() -> Engine<'static> {
    Engine::new(&LISTS, Limits::default())
}

fn uri(node: &str) -> XcapUri {
    uri_q(node, None)
}

fn uri_q(node: &str, query: Option<&str>) -> XcapUri {
    let path = if node.is_empty() {
        "resource-lists/users/sip:alice@example.com/index".to_owned()
    } else {
        format!("resource-lists/users/sip:alice@example.com/index/~~{node}")
    };
    XcapUri::parse(&path, query, &Limits::default()).unwrap()
}

fn get(node: &str) -> Result<(String, String), XcapError> {
    engine()
        .get(&uri(node), DOC)
        .map(|s| (s.content_type, s.body))
}

fn put_el(doc: &str, node: &str, body: &str) -> Result<PutOutcome, XcapError> {
    engine().put(&uri(node), Some(doc), body.as_bytes(), ELEMENT_TYPE)
}

fn put_att(doc: &str, node: &str, body: &str) -> Result<PutOutcome, XcapError> {
    engine().put(&uri(node), Some(doc), body.as_bytes(), ATTRIBUTE_TYPE)
}

fn delete(doc: &str, node: &str) -> Result<String, XcapError> {
    match engine().delete(&uri(node), doc)? {
        DeleteOutcome::Updated(s) => Ok(s),
        DeleteOutcome::Document => panic!("unexpected document delete"),
    }
}

/// Asserts `new` equals `old` with `inserted` spliced in at the first occurrence of `at`.
fn assert_inserted(old: &str, new: &str, at: &str, inserted: &str) {
    let i = old.find(at).expect("anchor present") + at.len();
    assert_eq!(new, format!("{}{}{}", &old[..i], inserted, &old[i..]));
}

// ---------------------------------------------------------------- GET

#[test]
fn get_whole_document() {
    let (ct, body) = get("").unwrap();
    assert_eq!(ct, RL_TYPE);
    assert_eq!(body, DOC);
}

#[test]
fn get_element_returns_exact_source_bytes() {
    let (ct, body) = get(r#"/resource-lists/list[@name="friends"]/entry[1]"#).unwrap();
    assert_eq!(ct, ELEMENT_TYPE);
    assert_eq!(
        body,
        "<entry uri='sip:bob@example.com'><display-name>Bob &amp; co</display-name></entry>"
    );
    let (_, body) = get("/resource-lists/list[3]/external").unwrap();
    assert_eq!(body, r#"<external anchor="http://x/y"/>"#);
    let (_, body) = get(r#"/resource-lists/list[1]/*[3]"#).unwrap();
    assert!(body.starts_with("<x:note"));
}

#[test]
fn get_element_by_every_step_form() {
    let ok = |s: &str| get(s).map(|(_, b)| b).unwrap();
    assert!(ok("/resource-lists/list[2]").contains("empty"));
    assert!(ok("/*/list[2]").contains("empty"));
    assert!(ok(r#"/resource-lists/list[@name='empty']"#).contains("empty"));
    assert!(ok(r#"/resource-lists/list[2][@name="empty"]"#).contains("empty"));
    assert!(ok(r#"/resource-lists/*[@name="empty"][1]"#).contains("empty"));
    assert!(
        ok(r#"/resource-lists/list[@name="friends"]/entry[@uri="sip:carol@example.com"]"#)
            .contains("carol")
    );
    assert_eq!(
        engine()
            .get(&uri_q("/rl:resource-lists/rl:list[1]/f:note", Some("xmlns(rl=urn:ietf:params:xml:ns:resource-lists)xmlns(f=urn:example:foreign)")), DOC)
            .unwrap()
            .body,
        r#"<x:note x:level="1">foreign <![CDATA[data]]></x:note>"#
    );
}

#[test]
fn get_misses_are_404() {
    for node in [
        "/resource-lists/list",                      // three matches
        "/resource-lists/list[4]",                   // no such position
        r#"/resource-lists/list[@name="nobody"]"#,   // no such attribute value
        r#"/resource-lists/list[1][@name="empty"]"#, // position then attribute
        "/resource-lists/list[1]/entry",             // two matches
        "/resource-lists/list[1]/note",              // foreign element, default-namespace name
        "/resource-lists/list[1]/entry[1]/@missing",
        "/resource-lists/list[9]/namespace::*",
    ] {
        assert_eq!(get(node), Err(XcapError::NotFound), "{node}");
    }
}

#[test]
fn get_attribute_returns_the_value_as_written() {
    let (ct, body) = get("/resource-lists/list[1]/entry[1]/@uri").unwrap();
    assert_eq!(ct, ATTRIBUTE_TYPE);
    assert_eq!(body, "sip:bob@example.com");
    let doc = r#"<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list name="a &amp; b"/></resource-lists>"#;
    let s = engine()
        .get(&uri("/resource-lists/list/@name"), doc)
        .unwrap();
    assert_eq!(s.body, "a &amp; b");
    let s = engine()
        .get(
            &uri_q(
                "/resource-lists/list[1]/*[3]/@f:level",
                Some("xmlns(f=urn:example:foreign)"),
            ),
            DOC,
        )
        .unwrap();
    assert_eq!(s.body, "1");
}

#[test]
fn get_namespace_bindings() {
    let (ct, body) = get("/resource-lists/list[1]/namespace::*").unwrap();
    assert_eq!(ct, NAMESPACES_TYPE);
    assert_eq!(
        body,
        r#"<list xmlns="urn:ietf:params:xml:ns:resource-lists" xmlns:x="urn:example:foreign"/>"#
    );
    // Prefix of the selected element kept; inner declarations override outer ones.
    let doc = r#"<rl:resource-lists xmlns:rl="urn:ietf:params:xml:ns:resource-lists" xmlns:a="urn:a1"><rl:list xmlns:a="urn:a2" xmlns="urn:d"/></rl:resource-lists>"#;
    let body = engine()
        .get(&uri("/resource-lists/list/namespace::*"), doc)
        .unwrap()
        .body;
    let parsed = Document::parse(&body).unwrap();
    let root = parsed.root_element();
    assert!(body.starts_with("<rl:list "));
    assert_eq!(root.lookup_namespace_uri(Some("a")), Some("urn:a2"));
    assert_eq!(root.lookup_namespace_uri(Some("rl")), Some(RL_NS));
    assert_eq!(root.default_namespace(), Some("urn:d"));
    assert!(!body.contains("xmlns:xml"));
}

// ---------------------------------------------------------------- PUT document

#[test]
fn put_document_create_and_replace() {
    let e = engine();
    let out = e.put(&uri(""), None, DOC.as_bytes(), RL_TYPE).unwrap();
    assert_eq!(
        out,
        PutOutcome {
            new_document: DOC.to_owned(),
            created: true
        }
    );
    let out = e
        .put(
            &uri(""),
            Some(DOC),
            DOC.as_bytes(),
            "Application/Resource-Lists+XML; charset=utf-8",
        )
        .unwrap();
    assert!(!out.created);
}

#[test]
fn put_document_errors() {
    let e = engine();
    let put = |body: &[u8], ct: &str| e.put(&uri(""), None, body, ct);
    assert_eq!(
        put(DOC.as_bytes(), "application/xml"),
        Err(XcapError::UnsupportedMediaType {
            expected: RL_TYPE.into()
        })
    );
    assert!(matches!(
        put(b"<resource-lists>", RL_TYPE),
        Err(XcapError::NotWellFormed { .. })
    ));
    assert!(matches!(
        put(b"", RL_TYPE),
        Err(XcapError::NotWellFormed { .. })
    ));
    assert_eq!(put(b"<a>\xff</a>", RL_TYPE), Err(XcapError::NotUtf8));
    assert_eq!(
        put(b"<?xml version='1.0' encoding='ISO-8859-1'?><a/>", RL_TYPE),
        Err(XcapError::NotUtf8)
    );
    assert_eq!(
        put(b"<a>INVALID</a>", RL_TYPE),
        Err(XcapError::SchemaValidation(ValidationFailure {
            phrase: Some("INVALID found".into())
        }))
    );
    assert!(matches!(
        put(b"<!DOCTYPE a [<!ENTITY x 'y'>]><a>&x;</a>", RL_TYPE),
        Err(XcapError::NotWellFormed { .. })
    ));
    let dup = format!(
        r#"<resource-lists xmlns="{RL_NS}"><list name="a"/><list name="a"/></resource-lists>"#
    );
    assert!(
        matches!(put(dup.as_bytes(), RL_TYPE), Err(XcapError::Uniqueness(c)) if c[0].field == "resource-lists/list/@name")
    );
    let err = put(dup.as_bytes(), RL_TYPE).unwrap_err();
    assert_eq!(
        (err.status(), err.error_element()),
        (409, Some("uniqueness-failure"))
    );
}

#[test]
fn limits_reject_oversize_bodies_and_documents() {
    let usage = Lists { generated: false };
    let small = Engine::new(
        &usage,
        Limits {
            max_document_bytes: 64,
            max_nodes: 8,
            ..Limits::default()
        },
    );
    let big = format!("<a>{}</a>", "x".repeat(100));
    assert_eq!(
        small.put(&uri(""), None, big.as_bytes(), RL_TYPE),
        Err(XcapError::TooLarge)
    );
    let many = "<a><b/><b/><b/><b/><b/><b/><b/><b/></a>";
    assert_eq!(
        small.put(&uri(""), None, many.as_bytes(), RL_TYPE),
        Err(XcapError::TooLarge)
    );
    // An element PUT whose result would exceed the limit.
    let doc = r#"<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"/>"#;
    let r = small.put(
        &uri("/resource-lists/list"),
        Some(doc),
        br#"<list name="aaaaaaaaaa"/>"#,
        ELEMENT_TYPE,
    );
    assert_eq!(r, Err(XcapError::TooLarge));
    assert_eq!(XcapError::TooLarge.status(), 413);
}

#[test]
fn generated_usages_are_read_only() {
    let usage = Lists { generated: true };
    let e = Engine::new(&usage, Limits::default());
    let err = e.put(&uri(""), None, DOC.as_bytes(), RL_TYPE).unwrap_err();
    assert_eq!(err, XcapError::MethodNotAllowed { allow: "GET" });
    assert_eq!(err.status(), 405);
    assert_eq!(
        e.delete(&uri(""), DOC),
        Err(XcapError::MethodNotAllowed { allow: "GET" })
    );
    assert!(e.get(&uri(""), DOC).is_ok());
}

// ---------------------------------------------------------------- PUT element

#[test]
fn insert_after_last_sibling_of_the_same_name_copies_indentation() {
    let out = put_el(
        DOC,
        r#"/resource-lists/list[1]/entry[@uri="sip:dave@example.com"]"#,
        r#"<entry uri="sip:dave@example.com"/>"#,
    )
    .unwrap();
    assert!(out.created);
    assert_inserted(
        DOC,
        &out.new_document,
        r#"<entry uri="sip:carol@example.com"/>"#,
        "\n    <entry uri=\"sip:dave@example.com\"/>",
    );
    // And it is now selectable.
    let s = engine()
        .get(
            &uri(r#"/resource-lists/list[1]/entry[3]"#),
            &out.new_document,
        )
        .unwrap();
    assert_eq!(s.body, r#"<entry uri="sip:dave@example.com"/>"#);
}

#[test]
fn insert_into_self_closing_and_empty_parents() {
    let out = put_el(
        DOC,
        r#"/resource-lists/list[@name="empty"]/entry"#,
        "<entry uri='u'/>",
    )
    .unwrap();
    assert!(out
        .new_document
        .contains(r#"<list name="empty"><entry uri='u'/></list>"#));
    assert_eq!(
        out.new_document.len(),
        DOC.len() + "<entry uri='u'/></list>".len() - 1
    );
    let doc = format!(r#"<resource-lists xmlns="{RL_NS}"><list name="e"></list></resource-lists>"#);
    let out = put_el(&doc, "/resource-lists/list/entry", "<entry uri='u'/>").unwrap();
    assert!(out
        .new_document
        .contains(r#"<list name="e"><entry uri='u'/></list>"#));
}

#[test]
fn insert_without_same_name_sibling_goes_after_the_last_element() {
    let out = put_el(
        DOC,
        r#"/resource-lists/list[@name="other"]/entry"#,
        "<entry uri='u'/>",
    )
    .unwrap();
    assert_inserted(
        DOC,
        &out.new_document,
        r#"<external anchor="http://x/y"/>"#,
        "<entry uri='u'/>",
    );
}

#[test]
fn positional_inserts() {
    let doc = format!(
        "<resource-lists xmlns=\"{RL_NS}\">\n  <list name=\"l\">\n    <entry uri=\"a\"/>\n    <entry uri=\"b\"/>\n  </list>\n</resource-lists>"
    );
    // [1] and [2] exist, so [2] with a different attribute inserts before the current second.
    let out = put_el(
        &doc,
        r#"/resource-lists/list/entry[2][@uri="new"]"#,
        r#"<entry uri="new"/>"#,
    )
    .unwrap();
    assert_inserted(
        &doc,
        &out.new_document,
        "<entry uri=\"a\"/>\n    ",
        "<entry uri=\"new\"/>\n    ",
    );
    // [3] appends after the last entry.
    let out = put_el(&doc, "/resource-lists/list/entry[3]", r#"<entry uri="c"/>"#).unwrap();
    assert_inserted(
        &doc,
        &out.new_document,
        r#"<entry uri="b"/>"#,
        "\n    <entry uri=\"c\"/>",
    );
    // [1] with an attribute test inserts first.
    let out = put_el(
        &doc,
        r#"/resource-lists/list/entry[1][@uri="z"]"#,
        r#"<entry uri="z"/>"#,
    )
    .unwrap();
    assert_inserted(
        &doc,
        &out.new_document,
        "<list name=\"l\">\n    ",
        "<entry uri=\"z\"/>\n    ",
    );
    // [@uri="z"][1]: the first entry with that uri (none yet) goes after the last entry.
    let out = put_el(
        &doc,
        r#"/resource-lists/list/entry[@uri="z"][1]"#,
        r#"<entry uri="z"/>"#,
    )
    .unwrap();
    assert_inserted(
        &doc,
        &out.new_document,
        r#"<entry uri="b"/>"#,
        "\n    <entry uri=\"z\"/>",
    );
    // *[3] counts every element.
    let out = put_el(
        &doc,
        "/resource-lists/list/*[3]",
        r#"<external anchor="x"/>"#,
    )
    .unwrap();
    assert_inserted(
        &doc,
        &out.new_document,
        r#"<entry uri="b"/>"#,
        "\n    <external anchor=\"x\"/>",
    );
    // Gaps and zero are impossible positions.
    for node in [
        "/resource-lists/list/entry[4]",
        "/resource-lists/list/entry[0]",
    ] {
        assert!(
            matches!(
                put_el(&doc, node, r#"<entry uri="c"/>"#),
                Err(XcapError::CannotInsert { .. })
            ),
            "{node}"
        );
    }
    // [@uri="z"][2] would be the first such entry, not the second.
    assert!(matches!(
        put_el(
            &doc,
            r#"/resource-lists/list/entry[@uri="z"][2]"#,
            r#"<entry uri="z"/>"#
        ),
        Err(XcapError::CannotInsert { .. })
    ));
}

#[test]
fn idempotency_check_refuses_bodies_the_selector_would_not_select() {
    let sel = r#"/resource-lists/list[1]/entry[@uri="sip:dave@example.com"]"#;
    for body in [
        r#"<entry uri="sip:eve@example.com"/>"#, // attribute test not met
        r#"<list name="x"/>"#,                   // wrong name
        r#"<entry xmlns="urn:other" uri="sip:dave@example.com"/>"#, // wrong namespace
    ] {
        let err = put_el(DOC, sel, body).unwrap_err();
        assert!(
            matches!(err, XcapError::CannotInsert { .. }),
            "{body}: {err:?}"
        );
        assert_eq!(err.error_element(), Some("cannot-insert"));
    }
    // Selector matching two entries: inserting a third cannot be selected afterwards.
    assert!(matches!(
        put_el(DOC, "/resource-lists/list[1]/entry", "<entry uri='z'/>"),
        Err(XcapError::CannotInsert { .. })
    ));
    // Replacing the element the selector chose by attribute with one lacking it.
    let sel = r#"/resource-lists/list[@name="empty"]"#;
    assert!(matches!(
        put_el(DOC, sel, r#"<list name="renamed"/>"#),
        Err(XcapError::CannotInsert { .. })
    ));
}

#[test]
fn replace_element_in_place() {
    let sel = r#"/resource-lists/list[1]/entry[@uri="sip:carol@example.com"]"#;
    let body =
        "\n <entry uri=\"sip:carol@example.com\"><display-name>Carol</display-name></entry>\n";
    let out = put_el(DOC, sel, body).unwrap();
    assert!(!out.created);
    assert_eq!(
        out.new_document,
        DOC.replace(r#"<entry uri="sip:carol@example.com"/>"#, body.trim())
    );
}

#[test]
fn replace_root_element() {
    let out = put_el(
        DOC,
        "/resource-lists",
        &format!(r#"<resource-lists xmlns="{RL_NS}"/>"#),
    )
    .unwrap();
    assert!(out.new_document.starts_with(
        "<?xml version='1.0' encoding='UTF-8'?>\n<!-- owned by alice -->\n<resource-lists xmlns="
    ));
    assert!(out.new_document.ends_with("/>\n"));
    assert!(matches!(
        put_el(DOC, "/other", "<other/>"),
        Err(XcapError::CannotInsert { .. })
    ));
}

#[test]
fn fragment_uses_the_parents_namespace_context() {
    // The body uses the document's `x` prefix without declaring it.
    let out = put_el(
        DOC,
        r#"/resource-lists/list[@name="other"]/*[2]"#,
        r#"<x:tag x:v="1"/>"#,
    )
    .unwrap();
    assert!(out
        .new_document
        .contains(r#"<external anchor="http://x/y"/><x:tag x:v="1"/></list>"#));
    // In a prefixed document, an unprefixed body is in no namespace, so it cannot satisfy a
    // default-namespace selector; with the prefix it can.
    let doc =
        format!(r#"<rl:resource-lists xmlns:rl="{RL_NS}"><rl:list name="a"/></rl:resource-lists>"#);
    let sel = r#"/resource-lists/list/entry"#;
    assert!(matches!(
        put_el(&doc, sel, "<entry uri='u'/>"),
        Err(XcapError::CannotInsert { .. })
    ));
    let out = put_el(&doc, sel, "<rl:entry uri='u'/>").unwrap();
    assert!(out
        .new_document
        .contains(r#"<rl:list name="a"><rl:entry uri='u'/></rl:list>"#));
    // A body declaring the default namespace itself works anywhere.
    let out = put_el(&doc, sel, &format!(r#"<entry xmlns="{RL_NS}" uri='u'/>"#)).unwrap();
    assert!(out.created);
    // An undeclared prefix is not well-formed.
    assert!(matches!(
        put_el(&doc, sel, "<zz:entry/>"),
        Err(XcapError::NotWellFormed { .. })
    ));
}

#[test]
fn element_body_errors() {
    let sel = r#"/resource-lists/list[@name="empty"]/entry"#;
    for body in [
        "<entry/><entry/>",
        "text",
        "<entry/>text",
        "<!--c--><entry/>",
        "",
        "  ",
        "<entry/><?pi x?>",
    ] {
        assert_eq!(
            put_el(DOC, sel, body),
            Err(XcapError::NotXmlFrag),
            "{body:?}"
        );
    }
    for body in [
        "<entry>",
        "<entry/></xcap-fragment><xcap-fragment>",
        "<?xml version='1.0'?><entry/>",
        "<a>&nope;</a>",
    ] {
        assert!(
            matches!(put_el(DOC, sel, body), Err(XcapError::NotWellFormed { .. })),
            "{body:?}"
        );
    }
    assert_eq!(
        engine().put(&uri(sel), Some(DOC), b"<entry/>", "application/xml"),
        Err(XcapError::UnsupportedMediaType {
            expected: ELEMENT_TYPE.into()
        })
    );
    assert_eq!(
        engine().put(&uri(sel), Some(DOC), b"<entry>\xc3</entry>", ELEMENT_TYPE),
        Err(XcapError::NotUtf8)
    );
}

#[test]
fn no_parent_reports_the_closest_existing_ancestor() {
    let err = put_el(
        DOC,
        r#"/resource-lists/list[@name="friends"]/entry[9]/display-name"#,
        "<display-name/>",
    )
    .unwrap_err();
    assert_eq!(
        err,
        XcapError::NoParent {
            ancestor: Some(
                "resource-lists/users/sip:alice@example.com/index/~~/resource-lists/list%5B@name=%22friends%22%5D".into()
            )
        }
    );
    assert_eq!(
        (err.status(), err.error_element()),
        (409, Some("no-parent"))
    );
    let err = put_el(DOC, "/nothing/list", "<list/>").unwrap_err();
    assert_eq!(
        err,
        XcapError::NoParent {
            ancestor: Some("resource-lists/users/sip:alice@example.com/index".into())
        }
    );
    // Element or attribute PUT into a document that does not exist.
    let e = engine();
    assert_eq!(
        e.put(
            &uri("/resource-lists"),
            None,
            b"<resource-lists/>",
            ELEMENT_TYPE
        ),
        Err(XcapError::NoParent { ancestor: None })
    );
    assert_eq!(
        e.put(&uri("/resource-lists/@a"), None, b"1", ATTRIBUTE_TYPE),
        Err(XcapError::NoParent { ancestor: None })
    );
    let err = put_att(DOC, "/resource-lists/list[7]/@name", "x").unwrap_err();
    assert_eq!(
        err,
        XcapError::NoParent {
            ancestor: Some(
                "resource-lists/users/sip:alice@example.com/index/~~/resource-lists".into()
            )
        }
    );
}

#[test]
fn element_put_runs_validation_and_constraints() {
    let sel = r#"/resource-lists/list[@name="INVALID"]"#;
    assert!(matches!(
        put_el(DOC, sel, r#"<list name="INVALID"/>"#),
        Err(XcapError::SchemaValidation(_))
    ));
    // A second entry with bob's URI in the same list, inserted positionally.
    let err = put_el(
        DOC,
        "/resource-lists/list[1]/entry[3]",
        "<entry uri='sip:bob@example.com'/>",
    )
    .unwrap_err();
    assert_eq!(
        err,
        XcapError::Uniqueness(vec![UniquenessConflict {
            field: "list/entry/@uri".into(),
            alt_values: vec![]
        }])
    );
}

// ---------------------------------------------------------------- PUT attribute

#[test]
fn create_attributes() {
    let out = put_att(DOC, r#"/resource-lists/list[@name="empty"]/@id"#, "x1").unwrap();
    assert!(out.created);
    assert!(out.new_document.contains(r#"<list name="empty" id="x1"/>"#));
    assert_eq!(out.new_document.len(), DOC.len() + r#" id="x1""#.len());
    let doc = format!("<resource-lists xmlns=\"{RL_NS}\"><list /></resource-lists>");
    let out = put_att(
        &doc,
        "/resource-lists/list/@name",
        r#"say "hi" & 'bye'"#.replace('&', "&amp;").as_str(),
    )
    .unwrap();
    assert!(
        out.new_document
            .contains(r#"<list name="say &quot;hi&quot; &amp; 'bye'" />"#),
        "{}",
        out.new_document
    );
    let value = engine()
        .get(&uri("/resource-lists/list/@name"), &out.new_document)
        .unwrap()
        .body;
    assert_eq!(value, "say &quot;hi&quot; &amp; 'bye'");
}

#[test]
fn create_namespaced_attributes() {
    // The document already binds the namespace: its prefix is used.
    let out = engine()
        .put(
            &uri_q(
                r#"/resource-lists/list[@name="empty"]/@f:flag"#,
                Some("xmlns(f=urn:example:foreign)"),
            ),
            Some(DOC),
            b"on",
            ATTRIBUTE_TYPE,
        )
        .unwrap();
    assert!(out
        .new_document
        .contains(r#"<list name="empty" x:flag="on"/>"#));
    // Otherwise the selector's prefix is declared.
    let out = engine()
        .put(
            &uri_q(
                r#"/resource-lists/list[@name="empty"]/@n:flag"#,
                Some("xmlns(n=urn:new)"),
            ),
            Some(DOC),
            b"on",
            ATTRIBUTE_TYPE,
        )
        .unwrap();
    assert!(out
        .new_document
        .contains(r#"<list name="empty" xmlns:n="urn:new" n:flag="on"/>"#));
    // ...unless that prefix means something else there.
    let err = engine()
        .put(
            &uri_q(
                r#"/resource-lists/list[@name="empty"]/@x:flag"#,
                Some("xmlns(x=urn:new)"),
            ),
            Some(DOC),
            b"on",
            ATTRIBUTE_TYPE,
        )
        .unwrap_err();
    assert!(matches!(err, XcapError::CannotInsert { .. }));
}

#[test]
fn replace_attribute_keeps_quote_style() {
    let out = put_att(
        DOC,
        "/resource-lists/list[1]/entry[1]/@uri",
        "sip:o'brien@example.com",
    )
    .unwrap();
    assert!(!out.created);
    assert_eq!(
        out.new_document,
        DOC.replace("'sip:bob@example.com'", "'sip:o&apos;brien@example.com'")
    );
    let out = put_att(DOC, r#"/resource-lists/list[1]/entry[2]/@uri"#, "").unwrap();
    assert!(out.new_document.contains(r#"<entry uri=""/>"#));
}

#[test]
fn attribute_body_errors() {
    for body in ["a<b", "a&b", "&bogus;", "&#0;"] {
        assert_eq!(
            put_att(DOC, "/resource-lists/list[1]/@name", body),
            Err(XcapError::NotXmlAttValue),
            "{body}"
        );
    }
    assert_eq!(
        XcapError::NotXmlAttValue.error_element(),
        Some("not-xml-att-value")
    );
    assert_eq!(
        engine().put(
            &uri("/resource-lists/list[1]/@name"),
            Some(DOC),
            b"x",
            ELEMENT_TYPE
        ),
        Err(XcapError::UnsupportedMediaType {
            expected: ATTRIBUTE_TYPE.into()
        })
    );
    // Changing the attribute the selector filters on makes the result unselectable.
    let err = put_att(DOC, r#"/resource-lists/list[@name="empty"]/@name"#, "full").unwrap_err();
    assert!(matches!(err, XcapError::CannotInsert { .. }));
    // Renaming a list onto an existing name breaks uniqueness.
    assert!(matches!(
        put_att(DOC, "/resource-lists/list[2]/@name", "friends"),
        Err(XcapError::Uniqueness(_))
    ));
}

#[test]
fn namespace_bindings_are_read_only() {
    let e = engine();
    let u = uri("/resource-lists/namespace::*");
    assert_eq!(
        e.put(&u, Some(DOC), b"<x/>", NAMESPACES_TYPE),
        Err(XcapError::MethodNotAllowed { allow: "GET" })
    );
    assert_eq!(
        e.delete(&u, DOC),
        Err(XcapError::MethodNotAllowed { allow: "GET" })
    );
}

// ---------------------------------------------------------------- DELETE

#[test]
fn delete_document_is_left_to_the_shell() {
    assert_eq!(engine().delete(&uri(""), DOC), Ok(DeleteOutcome::Document));
}

#[test]
fn delete_element_takes_its_indentation() {
    let new = delete(
        DOC,
        r#"/resource-lists/list[1]/entry[@uri="sip:carol@example.com"]"#,
    )
    .unwrap();
    assert_eq!(
        new,
        DOC.replace("\n    <entry uri=\"sip:carol@example.com\"/>", "")
    );
    let new = delete(DOC, r#"/resource-lists/list[@name="other"]/external"#).unwrap();
    assert!(new.contains(r#"<list name="other"></list>"#));
}

#[test]
fn insert_then_delete_restores_the_original_bytes() {
    let sel = r#"/resource-lists/list[1]/entry[@uri="sip:dave@example.com"]"#;
    let added = put_el(
        DOC,
        sel,
        r#"<entry uri="sip:dave@example.com"><display-name>D</display-name></entry>"#,
    )
    .unwrap();
    assert_eq!(delete(&added.new_document, sel).unwrap(), DOC);
    let added = put_att(DOC, "/resource-lists/list[2]/@id", "i").unwrap();
    assert_eq!(
        delete(&added.new_document, "/resource-lists/list[2]/@id").unwrap(),
        DOC
    );
}

#[test]
fn delete_attribute() {
    let new = delete(DOC, "/resource-lists/list[1]/entry[2]/@uri").unwrap();
    assert_eq!(
        new,
        DOC.replace(r#"<entry uri="sip:carol@example.com"/>"#, "<entry/>")
    );
    // Deleting the attribute the selector filters on is fine: the selector then selects nothing.
    let new = delete(DOC, r#"/resource-lists/list[@name="empty"]/@name"#).unwrap();
    assert!(new.contains("<list/>"));
    let new = engine()
        .delete(
            &uri_q(
                "/resource-lists/list[1]/f:note/@f:level",
                Some("xmlns(f=urn:example:foreign)"),
            ),
            DOC,
        )
        .unwrap();
    assert_eq!(
        new,
        DeleteOutcome::Updated(DOC.replace(r#" x:level="1""#, ""))
    );
}

#[test]
fn delete_errors() {
    assert_eq!(
        delete(DOC, "/resource-lists/list[5]"),
        Err(XcapError::NotFound)
    );
    assert_eq!(
        delete(DOC, "/resource-lists/list"),
        Err(XcapError::NotFound)
    );
    assert_eq!(
        delete(DOC, "/resource-lists/list[1]/@nope"),
        Err(XcapError::NotFound)
    );
    let err = delete(DOC, "/resource-lists").unwrap_err();
    assert!(matches!(err, XcapError::CannotDelete { .. }));
    // *[1] still selects an element (the former second) after the delete.
    let err = delete(DOC, "/resource-lists/*[1]").unwrap_err();
    assert!(matches!(err, XcapError::CannotDelete { .. }));
    assert_eq!(
        (err.status(), err.error_element()),
        (409, Some("cannot-delete"))
    );
    // Validation runs on the result.
    let doc = format!(
        r#"<resource-lists xmlns="{RL_NS}"><list name="INVALID"><entry uri="a"/></list></resource-lists>"#
    );
    assert!(matches!(
        delete(&doc, "/resource-lists/list/entry"),
        Err(XcapError::SchemaValidation(_))
    ));
}

// ---------------------------------------------------------------- byte preservation

#[test]
fn edits_leave_everything_else_byte_identical() {
    let sel = r#"/resource-lists/list[@name="other"]/external/@anchor"#;
    let out = put_att(DOC, sel, "http://changed").unwrap();
    assert_eq!(
        out.new_document,
        DOC.replace("http://x/y", "http://changed")
    );
    // Comments, CDATA, the foreign element, single quotes and the declaration all survive.
    for kept in [
        "<!-- owned by alice -->",
        "<!-- keep me -->",
        "<![CDATA[data]]>",
        "uri='sip:bob@example.com'",
        "<?xml version='1.0' encoding='UTF-8'?>",
        "Bob &amp; co",
    ] {
        assert!(out.new_document.contains(kept), "{kept}");
    }
}

#[test]
fn corrupt_stored_documents_are_server_errors() {
    let err = engine().get(&uri("/a"), "<a>").unwrap_err();
    assert!(matches!(err, XcapError::CorruptDocument(_)));
    assert_eq!(err.status(), 500);
}

// ---------------------------------------------------------------- shell flow

#[test]
fn conditional_put_flow_like_blink() {
    let e = engine();
    let u = uri("");
    // First write: If-None-Match: * on a missing document.
    assert_eq!(
        check_preconditions(Method::Put, None, Some("*"), None),
        Precondition::Proceed
    );
    let v1 = e
        .put(&u, None, DOC.as_bytes(), RL_TYPE)
        .unwrap()
        .new_document;
    let etag1 = etag_for(v1.as_bytes());
    // Cached GET.
    assert_eq!(
        check_preconditions(Method::Get, None, Some(&etag1), Some(&etag1)),
        Precondition::NotModified
    );
    // Another device changes the document; our If-Match is stale.
    let v2 = put_att(&v1, "/resource-lists/list[2]/@name", "renamed")
        .unwrap()
        .new_document;
    let etag2 = etag_for(v2.as_bytes());
    assert_ne!(etag1, etag2);
    assert_eq!(
        check_preconditions(Method::Put, Some(&etag1), None, Some(&etag2)),
        Precondition::Failed
    );
    assert_eq!(
        check_preconditions(Method::Put, None, Some("*"), Some(&etag2)),
        Precondition::Failed
    );
    assert_eq!(
        check_preconditions(Method::Put, Some(&etag2), None, Some(&etag2)),
        Precondition::Proceed
    );
}
