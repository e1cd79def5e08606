use super::*;

fn corpus(name: &str) -> Ruleset {
    let path = format!(
        "{}/tests/corpus/pres-rules/valid/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    Ruleset::parse(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn reads_blinks_rules() {
    let rules = corpus("blink-rules.xml").rules;
    let ids: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "wp_prs_grantedcontacts",
            "wp_prs_blockedcontacts",
            "wp_prs_unlisted",
            "wp_prs_block_anonymous",
            "wp_prs_allow_own"
        ]
    );
    let handling: Vec<Option<SubHandling>> = rules.iter().map(|r| r.sub_handling).collect();
    use SubHandling::*;
    assert_eq!(
        handling,
        [
            Some(Allow),
            Some(PoliteBlock),
            Some(Confirm),
            Some(Block),
            Some(Allow)
        ]
    );
    assert_eq!(
        rules[0].conditions.external_lists,
        [vec![
            "https://xcap.example.com/xcap-root/resource-lists/users/sip:alice@example.com/index/~~/resource-lists/list[@name=\"oma_grantedcontacts\"]".to_owned()
        ]]
    );
    assert!(rules[2].conditions.other_identity);
    assert!(rules[3].conditions.anonymous_request);
    assert_eq!(
        rules[4].conditions.identities,
        [Identity {
            one: vec!["sip:alice@example.com".into()],
            many: vec![]
        }]
    );
    assert!(rules.iter().all(|r| r.transformations.is_none()));
    assert!(rules.iter().all(|r| !r.conditions.unsupported));
}

#[test]
fn reads_identity_many_except_sphere_and_validity() {
    let rule = &corpus("identity-many-except-validity-sphere.xml").rules[0];
    let c = &rule.conditions;
    assert_eq!(
        c.identities,
        [Identity {
            one: vec!["tel:+1234".into()],
            many: vec![Many {
                domain: Some("example.com".into()),
                except: vec![
                    Except::Id("sip:boss@example.com".into()),
                    Except::Domain("evil.example.com".into())
                ],
            }],
        }]
    );
    assert_eq!(c.spheres, ["work"]);
    assert_eq!(
        c.validities,
        [vec![
            Interval {
                from: "2025-01-01T00:00:00Z".into(),
                until: "2025-12-31T23:59:59.999+01:00".into()
            },
            Interval {
                from: "2026-01-01T00:00:00".into(),
                until: "2026-02-01T00:00:00-05:00".into()
            }
        ]]
    );
    assert_eq!(rule.sub_handling, Some(SubHandling::PoliteBlock));
}

#[test]
fn reads_every_transformation() {
    let t = corpus("all-transformations.xml").rules[0]
        .transformations
        .clone()
        .unwrap();
    assert_eq!(
        t.devices,
        Some(ProvideSet::Some(vec![
            Selector::DeviceId("urn:uuid:1".into()),
            Selector::Class("c".into()),
            Selector::OccurrenceId("o".into()),
        ]))
    );
    assert_eq!(t.services, Some(ProvideSet::All));
    assert_eq!(t.persons, Some(ProvideSet::Some(vec![])));
    assert!(t.all_attributes);
    assert_eq!(t.user_input, Some(UserInput::Thresholds));
    use Attribute::*;
    // `provide-deviceID` is `0` and `provide-mood` `false`: not granted.
    assert_eq!(
        t.attributes,
        [
            Class,
            PlaceIs,
            PlaceType,
            Privacy,
            Relationship,
            StatusIcon,
            Sphere,
            TimeOffset,
            Note
        ]
    );
    assert!(!t.provides_full_document());
    assert!(!t.is_empty());
}

#[test]
fn unknown_conditions_are_flagged_and_unknown_actions_ignored() {
    let text = r#"<cp:ruleset xmlns:cp="urn:ietf:params:xml:ns:common-policy"
        xmlns:pr="urn:ietf:params:xml:ns:pres-rules" xmlns:x="urn:example:x">
      <cp:rule id="a"><cp:conditions><x:when/></cp:conditions>
        <cp:actions><x:do/><pr:sub-handling>confirm</pr:sub-handling><pr:sub-handling>allow</pr:sub-handling></cp:actions>
        <cp:transformations><x:provide-everything/></cp:transformations></cp:rule>
      <cp:rule id=" b "/>
    </cp:ruleset>"#;
    let rules = Ruleset::parse(text).unwrap().rules;
    assert!(rules[0].conditions.unsupported);
    assert_eq!(rules[0].sub_handling, Some(SubHandling::Allow));
    assert_eq!(rules[0].transformations, None);
    assert_eq!(
        rules[1],
        Rule {
            id: "b".into(),
            ..Rule::default()
        }
    );
}

#[test]
fn every_valid_corpus_document_parses() {
    let dir = format!(
        "{}/tests/corpus/pres-rules/valid",
        env!("CARGO_MANIFEST_DIR")
    );
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        Ruleset::parse(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    }
}

#[test]
fn rejects_what_is_not_a_ruleset() {
    assert!(matches!(
        Ruleset::parse("<ruleset"),
        Err(PolicyError::NotWellFormed(_))
    ));
    assert_eq!(
        Ruleset::parse("<ruleset xmlns='urn:x'/>"),
        Err(PolicyError::NotRuleset)
    );
    assert_eq!(
        Ruleset::parse("<ruleset xmlns='urn:ietf:params:xml:ns:common-policy'><rule/></ruleset>"),
        Err(PolicyError::MissingRuleId)
    );
    let many = format!(
        "<ruleset xmlns='urn:ietf:params:xml:ns:common-policy'>{}</ruleset>",
        (0..=MAX_RULES)
            .map(|i| format!("<rule id='r{i}'/>"))
            .collect::<String>()
    );
    assert_eq!(Ruleset::parse(&many), Err(PolicyError::TooManyRules));
    let big = " ".repeat(MAX_DOCUMENT_BYTES + 1);
    assert_eq!(Ruleset::parse(&big), Err(PolicyError::TooLarge));
}

#[test]
fn sub_handling_values_follow_rfc_5025() {
    use SubHandling::*;
    let values: Vec<u8> = [Block, Confirm, PoliteBlock, Allow]
        .iter()
        .map(|h| h.value())
        .collect();
    assert_eq!(values, [0, 10, 20, 30]);
    assert!(Block < Confirm && Confirm < PoliteBlock && PoliteBlock < Allow);
    for h in [Block, Confirm, PoliteBlock, Allow] {
        assert_eq!(SubHandling::parse(h.as_str()), Some(h));
    }
    assert_eq!(SubHandling::parse(" allow "), Some(Allow));
    assert_eq!(SubHandling::parse("Allow"), None);
}

#[test]
fn combining_transformations_is_a_union() {
    let mut a = Transformations {
        services: Some(ProvideSet::Some(vec![Selector::Class("x".into())])),
        persons: Some(ProvideSet::All),
        attributes: vec![Attribute::Note],
        user_input: Some(UserInput::Bare),
        unknown_attributes: vec![UnknownAttribute {
            namespace: "urn:n".into(),
            name: "k".into(),
            provide: false,
        }],
        ..Transformations::default()
    };
    let b = Transformations {
        services: Some(ProvideSet::Some(vec![
            Selector::Class("x".into()),
            Selector::ServiceUriScheme("sip".into()),
        ])),
        persons: Some(ProvideSet::Some(vec![])),
        devices: Some(ProvideSet::All),
        all_attributes: true,
        attributes: vec![Attribute::Note, Attribute::Mood],
        user_input: Some(UserInput::Full),
        unknown_attributes: vec![UnknownAttribute {
            namespace: "urn:n".into(),
            name: "k".into(),
            provide: true,
        }],
    };
    a.combine(&b);
    assert_eq!(
        a.services,
        Some(ProvideSet::Some(vec![
            Selector::Class("x".into()),
            Selector::ServiceUriScheme("sip".into())
        ]))
    );
    assert_eq!(a.persons, Some(ProvideSet::All));
    assert_eq!(a.devices, Some(ProvideSet::All));
    assert!(a.all_attributes);
    assert_eq!(a.attributes, [Attribute::Note, Attribute::Mood]);
    assert_eq!(a.user_input, Some(UserInput::Full));
    assert!(a.unknown_attributes[0].provide);
    a.combine(&Transformations {
        services: Some(ProvideSet::All),
        ..Transformations::default()
    });
    assert!(a.provides_full_document());
}
