use super::{
    validate, validate_bytes, validate_schema, validate_with, Constraints, Usage, ValidationError,
};
use crate::xcap_error::XcapErrorKind;

const RL_EMPTY: &str = r#"<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"/>"#;

fn pres_content(mime: &str, encoding: &str, data: &str) -> String {
    format!(
        r#"<content xmlns="urn:oma:xml:prs:pres-content"><mime-type>{mime}</mime-type><encoding>{encoding}</encoding><data>{data}</data></content>"#
    )
}

#[test]
fn auids_round_trip() {
    for usage in Usage::ALL {
        if let Some(auid) = usage.auid() {
            assert_eq!(Usage::from_auid(auid), Some(usage));
        }
    }
    assert_eq!(Usage::from_auid("org.openxcap.dialog-rules"), None);
    assert_eq!(Usage::OmaPresRules.root_element(), "ruleset");
    assert_eq!(
        Usage::OmaPresRules.namespace(),
        "urn:ietf:params:xml:ns:common-policy"
    );
}

#[test]
fn doctype_is_not_well_formed() {
    let doc = r#"<?xml version="1.0"?><!DOCTYPE resource-lists [<!ENTITY x "y">]><resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"/>"#;
    assert!(matches!(
        validate(Usage::ResourceLists, doc),
        Err(ValidationError::NotWellFormed(_))
    ));
}

#[test]
fn malformed_and_deep_documents_are_not_well_formed() {
    assert!(matches!(
        validate(Usage::ResourceLists, "<resource-lists"),
        Err(ValidationError::NotWellFormed(_))
    ));
    let open = "<rl:list>".repeat(300);
    let close = "</rl:list>".repeat(300);
    let deep = format!(
        r#"<rl:resource-lists xmlns:rl="urn:ietf:params:xml:ns:resource-lists">{open}{close}</rl:resource-lists>"#
    );
    assert!(matches!(
        validate(Usage::ResourceLists, &deep),
        Err(ValidationError::NotWellFormed(_))
    ));
    let open = "<rl:list>".repeat(250);
    let close = "</rl:list>".repeat(250);
    let nested = format!(
        r#"<rl:resource-lists xmlns:rl="urn:ietf:params:xml:ns:resource-lists">{open}{close}</rl:resource-lists>"#
    );
    assert_eq!(validate(Usage::ResourceLists, &nested), Ok(()));
}

#[test]
fn bytes_must_be_utf8_and_declared_so() {
    let c = Constraints::default();
    assert_eq!(
        validate_bytes(Usage::ResourceLists, RL_EMPTY.as_bytes(), &c),
        Ok(())
    );
    let latin1 = b"<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><list name=\"caf\xe9\"/></resource-lists>";
    assert!(matches!(
        validate_bytes(Usage::ResourceLists, latin1, &c),
        Err(ValidationError::NotUtf8(_))
    ));
    let declared = format!("<?xml version='1.0' encoding='ISO-8859-1'?>{RL_EMPTY}");
    assert!(matches!(
        validate_bytes(Usage::ResourceLists, declared.as_bytes(), &c),
        Err(ValidationError::NotUtf8(_))
    ));
    let utf8 = format!("\u{FEFF}<?xml version=\"1.0\" encoding=\"utf-8\"?>{RL_EMPTY}");
    assert_eq!(
        validate_bytes(Usage::ResourceLists, utf8.as_bytes(), &c),
        Ok(())
    );
}

#[test]
fn root_must_be_the_usage_root_even_if_declared_in_the_set() {
    // rlsservices.xsd imports resourcelists.xsd, so xmllint would accept this; XCAP must not.
    let err = validate(Usage::RlsServices, RL_EMPTY).unwrap_err();
    assert!(
        matches!(&err, ValidationError::Schema(m) if m.contains("rls-services")),
        "{err}"
    );
}

#[test]
fn schema_errors_name_the_place_and_the_problem() {
    let doc = "<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\">\n<list><entry/></list></resource-lists>";
    let Err(ValidationError::Schema(message)) = validate(Usage::ResourceLists, doc) else {
        panic!("expected a schema error");
    };
    assert!(message.starts_with("line 2, column 7:"), "{message}");
    assert!(message.contains("required attribute 'uri'"), "{message}");
    let xcap = ValidationError::Schema(message.clone()).to_xcap_error();
    assert_eq!(xcap.kind, XcapErrorKind::SchemaValidationError);
    assert_eq!(xcap.phrase.as_deref(), Some(message.as_str()));
}

#[test]
fn unexpected_element_reports_what_was_expected() {
    let doc = r#"<content xmlns="urn:oma:xml:prs:pres-content"><data>AAAA</data><mime-type>image/png</mime-type></content>"#;
    let Err(ValidationError::Schema(message)) = validate_schema(Usage::OmaPresContent, doc) else {
        panic!("expected a schema error");
    };
    assert!(
        message.contains("'mime-type'") && message.contains("not expected"),
        "{message}"
    );
}

#[test]
fn pres_content_accepts_blink_icons() {
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    for mime in ["image/png", "image/jpeg", "image/gif", " IMAGE/PNG "] {
        assert_eq!(
            validate(Usage::OmaPresContent, &pres_content(mime, "base64", png)),
            Ok(()),
            "{mime}"
        );
    }
    let wrapped: Vec<&str> = png
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap_or(""))
        .collect();
    let wrapped = format!("\n{}\n", wrapped.join("\r\n"));
    assert_eq!(
        validate(
            Usage::OmaPresContent,
            &pres_content("image/png", "base64", &wrapped)
        ),
        Ok(())
    );
    let big = "QUFB".repeat(300 * 1024 / 4 + 10);
    assert_eq!(
        validate(
            Usage::OmaPresContent,
            &pres_content("image/png", "base64", &big)
        ),
        Ok(())
    );
}

#[test]
fn pres_content_constraints_are_constraint_failures() {
    let constraint = |doc: &str, c: &Constraints| {
        assert_eq!(
            validate_schema(Usage::OmaPresContent, doc),
            Ok(()),
            "schema-valid: {doc}"
        );
        match validate_with(Usage::OmaPresContent, doc, c) {
            Err(ValidationError::Constraint(m)) => m,
            other => panic!("expected a constraint failure for {doc}, got {other:?}"),
        }
    };
    let c = Constraints::default();
    assert!(constraint(&pres_content("image/bmp", "base64", "AAAA"), &c).contains("mime-type"));
    assert!(
        constraint(&pres_content("image/png", "quoted-printable", "AAAA"), &c).contains("encoding")
    );
    assert!(constraint(&pres_content("image/png", "base64", "AAA"), &c).contains("base64"));
    assert!(constraint(&pres_content("image/png", "base64", "AA=A"), &c).contains("base64"));
    assert!(constraint(&pres_content("image/png", "base64", "A==="), &c).contains("base64"));
    assert!(constraint(&pres_content("image/png", "base64", "AA*A"), &c).contains("base64"));
    assert!(constraint(&pres_content("image/png", "base64", "  "), &c).contains("empty"));
    let no_mime = r#"<content xmlns="urn:oma:xml:prs:pres-content"><data>AAAA</data></content>"#;
    assert!(constraint(no_mime, &c).contains("mime-type"));
    let small = Constraints {
        max_pres_content_data: 8,
    };
    assert_eq!(
        validate_with(
            Usage::OmaPresContent,
            &pres_content("image/png", "base64", "AAAA AAAA"),
            &small
        ),
        Ok(())
    );
    assert!(
        constraint(&pres_content("image/png", "base64", "AAAAAAAAAAAA"), &small)
            .contains("more than the 8")
    );
    let xcap = ValidationError::Constraint("x".into()).to_xcap_error();
    assert_eq!(xcap.kind, XcapErrorKind::ConstraintFailure);
}

#[test]
fn ids_share_one_space_across_namespaces() {
    let doc = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
        xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:a@b">
        <tuple id="x1"><status/></tuple><dm:person id="p"><rpid:activities id=" x1 "/></dm:person></presence>"#;
    let err = validate(Usage::PidfManipulation, doc).unwrap_err();
    assert!(err.to_string().contains("x1"), "{err}");
}

#[test]
fn xsi_type_is_refused_and_schema_location_ignored() {
    let located = r#"<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="urn:x x.xsd"/>"#;
    assert_eq!(validate(Usage::ResourceLists, located), Ok(()));
    let typed = r#"<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="x"/>"#;
    assert!(matches!(
        validate(Usage::ResourceLists, typed),
        Err(ValidationError::Schema(_))
    ));
}

#[test]
fn large_flat_lists_validate() {
    let entries: String = (0..20_000)
        .map(|i| format!(r#"<entry uri="sip%3Auser{i}%40example.com"/>"#))
        .collect();
    let doc = format!(
        r#"<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list name="big">{entries}</list></resource-lists>"#
    );
    assert_eq!(validate(Usage::ResourceLists, &doc), Ok(()));
}
