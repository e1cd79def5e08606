use std::cell::Cell;

use simple_payloads::common_policy::{Attribute, ProvideSet, Selector, UserInput};

use super::*;

const BLINK_RULES: &str =
    include_str!("../../simple-payloads/tests/corpus/pres-rules/valid/blink-rules.xml");
const ALICE: &str = "sip:alice@example.com";
const XCAP_DOC: &str =
    "https://xcap.example.com/xcap-root/resource-lists/users/sip:alice@example.com/index";

/// Alice's resource-lists as Blink stores them: percent-encoded entries, one without a scheme.
fn blink_lists(anchor: &ListAnchor) -> Vec<String> {
    assert_eq!(anchor.document, XCAP_DOC);
    let entries: &[&str] = match anchor.lists.as_slice() {
        [name] if name == "oma_grantedcontacts" => &[
            "sip%3Abob%40example.com",
            "carol%40example.org",
            "sip%3Adave%40example.net%3Btransport%3Dtcp",
            "sip%3Amallory%40example.com",
        ],
        [name] if name == "oma_blockedcontacts" => &[
            "sip%3Aeve%40evil.example.com",
            "sip%3Amallory%40example.com",
        ],
        _ => &[],
    };
    entries.iter().map(|e| (*e).to_owned()).collect()
}

fn rules(text: &str) -> Ruleset {
    Ruleset::parse(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn request(watcher: Option<&str>) -> Request<'_> {
    Request {
        presentity: ALICE,
        watcher,
        now: 1_750_000_000,
        sphere: None,
    }
}

fn handling(rules: Option<&Ruleset>, watcher: Option<&str>) -> SubHandling {
    authorize(rules, &request(watcher), &blink_lists).handling
}

/// A ruleset in the pres-rules namespaces with the given rules.
fn ruleset(body: &str) -> Ruleset {
    rules(&format!(
        r#"<cp:ruleset xmlns:cp="urn:ietf:params:xml:ns:common-policy"
            xmlns:pr="urn:ietf:params:xml:ns:pres-rules" xmlns:ocp="urn:oma:xml:xdm:common-policy">{body}</cp:ruleset>"#
    ))
}

fn rule(id: &str, conditions: &str, handling: &str, transformations: &str) -> String {
    format!(
        "<cp:rule id=\"{id}\"><cp:conditions>{conditions}</cp:conditions>\
         <cp:actions><pr:sub-handling>{handling}</pr:sub-handling></cp:actions>\
         <cp:transformations>{transformations}</cp:transformations></cp:rule>"
    )
}

#[test]
fn blink_rules_take_every_path() {
    let blink = rules(BLINK_RULES);
    let blink = Some(&blink);
    let cases = [
        (Some("sip:bob@example.com"), SubHandling::Allow),
        (Some("sip:carol@example.org"), SubHandling::Allow),
        (Some("sip:dave@EXAMPLE.net"), SubHandling::Allow),
        (Some("sip:eve@evil.example.com"), SubHandling::PoliteBlock),
        (Some("sip:stranger@example.com"), SubHandling::Confirm),
        (None, SubHandling::Block),
        (Some(ALICE), SubHandling::Allow),
    ];
    for (watcher, expected) in cases {
        let decision = authorize(blink, &request(watcher), &blink_lists);
        assert_eq!(decision.handling, expected, "{watcher:?}");
        assert_eq!(decision.transformations, None, "{watcher:?}");
    }
    assert!(authorize(blink, &request(Some("sip:bob@example.com")), &blink_lists).full_document());
}

#[test]
fn rules_combine_by_maximum_sub_handling() {
    let blink = rules(BLINK_RULES);
    // Mallory is on both lists: allow (30) beats polite-block (20).
    assert_eq!(
        handling(Some(&blink), Some("sip:mallory@example.com")),
        SubHandling::Allow
    );
    let set = ruleset(&format!(
        "{}{}",
        rule(
            "a",
            "<cp:identity><cp:many domain=\"example.com\"/></cp:identity>",
            "confirm",
            ""
        ),
        rule(
            "b",
            "<cp:identity><cp:one id=\"sip%3Abob%40example.com\"/></cp:identity>",
            "block",
            ""
        )
    ));
    assert_eq!(
        handling(Some(&set), Some("sip:bob@example.com")),
        SubHandling::Confirm
    );
    assert_eq!(
        handling(Some(&set), Some("sip:joe@example.com")),
        SubHandling::Confirm
    );
}

#[test]
fn other_identity_only_matches_watchers_no_other_rule_names() {
    let allow_unlisted = BLINK_RULES.replace(
        "<cp:rule id=\"wp_prs_unlisted\"><cp:conditions><ocp:other-identity/></cp:conditions>\n    <cp:actions><pr:sub-handling>confirm",
        "<cp:rule id=\"wp_prs_allow_unlisted\"><cp:conditions><ocp:other-identity/></cp:conditions>\n    <cp:actions><pr:sub-handling>allow",
    );
    assert_ne!(allow_unlisted, BLINK_RULES);
    let set = rules(&allow_unlisted);
    assert_eq!(
        handling(Some(&set), Some("sip:stranger@example.com")),
        SubHandling::Allow
    );
    // Eve is on the blocked list, so other-identity does not apply to her.
    assert_eq!(
        handling(Some(&set), Some("sip:eve@evil.example.com")),
        SubHandling::PoliteBlock
    );
    // Anonymous requests have no identity at all.
    assert_eq!(handling(Some(&set), None), SubHandling::Block);
}

#[test]
fn anonymous_requests_match_only_anonymous_request() {
    let set = ruleset(&format!(
        "{}{}",
        rule("anon", "<ocp:anonymous-request/>", "polite-block", ""),
        rule("all", "<cp:identity><cp:many/></cp:identity>", "allow", "")
    ));
    assert_eq!(handling(Some(&set), None), SubHandling::PoliteBlock);
    assert_eq!(
        handling(Some(&set), Some("sip:x@y.example")),
        SubHandling::Allow
    );
}

#[test]
fn without_a_document_or_a_matching_rule_the_answer_is_confirm() {
    assert_eq!(
        authorize(None, &request(Some("sip:bob@example.com")), &blink_lists),
        Decision::CONFIRM
    );
    assert_eq!(handling(None, None), SubHandling::Confirm);
    let set = ruleset(&rule(
        "only-bob",
        "<cp:identity><cp:one id=\"sip:bob@example.com\"/></cp:identity>",
        "block",
        "",
    ));
    assert_eq!(
        handling(Some(&set), Some("sip:carol@example.com")),
        SubHandling::Confirm
    );
    assert_eq!(
        handling(Some(&set), Some("sip:bob@example.com")),
        SubHandling::Block
    );
    let no_action = ruleset("<cp:rule id=\"empty\"/>");
    assert_eq!(handling(Some(&no_action), None), SubHandling::Confirm);
}

#[test]
fn own_subscription_is_allowed_whatever_the_rules() {
    let set = ruleset(&rule(
        "all",
        "",
        "block",
        "<pr:provide-note>true</pr:provide-note>",
    ));
    assert_eq!(
        handling(Some(&set), Some("sip:bob@example.com")),
        SubHandling::Block
    );
    assert_eq!(
        authorize(
            Some(&set),
            &request(Some("sip:alice@EXAMPLE.com;transport=tls")),
            &blink_lists
        ),
        Decision::ALLOW_ALL
    );
}

#[test]
fn many_with_except() {
    let set = ruleset(&rule(
        "r",
        "<cp:identity><cp:many domain=\"Example.com\"><cp:except id=\"sip%3Aboss%40example.com\"/>\
         </cp:many><cp:many><cp:except domain=\"example.com\"/><cp:except domain=\"evil.example.com\"/>\
         </cp:many></cp:identity>",
        "allow",
        "",
    ));
    let cases = [
        ("sip:bob@example.com", SubHandling::Allow),
        ("sip:boss@example.com", SubHandling::Confirm),
        ("sip:x@other.example", SubHandling::Allow),
        ("sip:x@evil.example.com", SubHandling::Confirm),
        ("tel:+123", SubHandling::Confirm),
    ];
    for (watcher, expected) in cases {
        assert_eq!(handling(Some(&set), Some(watcher)), expected, "{watcher}");
    }
    assert_eq!(handling(Some(&set), None), SubHandling::Confirm);
}

#[test]
fn external_lists_resolve_escaped_selectors_and_are_resolved_once() {
    let calls = Cell::new(0);
    let resolver = |anchor: &ListAnchor| {
        calls.set(calls.get() + 1);
        assert_eq!(anchor.lists, ["oma_allowedlist"]);
        vec!["bob@example.com".to_owned()]
    };
    let anchor = "http://xcap.example.com/xcap-root/resource-lists/users/sip:alice@example.com/index/~~/resource-lists/list%5B@name=%22oma_allowedlist%22%5D";
    let list = format!(
        "<ocp:external-list><ocp:entry anc=\"{}\"/></ocp:external-list>",
        simple_payloads::encode_any_uri(anchor)
    );
    let set = ruleset(&format!(
        "{}{}",
        rule("a", &list, "allow", ""),
        rule("b", &list, "polite-block", "")
    ));
    let decision = authorize(Some(&set), &request(Some("sip:bob@example.com")), &resolver);
    assert_eq!(decision.handling, SubHandling::Allow);
    assert_eq!(calls.get(), 1);
    let decision = authorize(
        Some(&set),
        &request(Some("sip:carl@example.com")),
        &resolver,
    );
    assert_eq!(decision.handling, SubHandling::Confirm);
}

#[test]
fn unresolvable_anchors_and_unknown_conditions_never_match() {
    let set = ruleset(&format!(
        "{}{}{}",
        rule(
            "bad-anchor",
            "<ocp:external-list><ocp:entry anc=\"http://x/index/~~/resource-lists/list[1]\"/></ocp:external-list>",
            "allow",
            ""
        ),
        rule(
            "empty-list",
            "<ocp:external-list/>",
            "allow",
            ""
        ),
        rule("foreign", "<x:when xmlns:x=\"urn:example\"/>", "allow", "")
    ));
    let resolver = |_: &ListAnchor| vec!["sip:bob@example.com".to_owned()];
    let decision = authorize(Some(&set), &request(Some("sip:bob@example.com")), &resolver);
    assert_eq!(decision, Decision::CONFIRM);
}

#[test]
fn sphere_and_validity_conditions() {
    let set = ruleset(&rule(
        "work-hours",
        "<cp:sphere value=\"work office\"/><cp:validity>\
         <cp:from>2025-06-15T00:00:00Z</cp:from><cp:until>2025-06-16T00:00:00+02:00</cp:until>\
         </cp:validity>",
        "allow",
        "",
    ));
    let at = |now: i64, sphere: Option<&'static str>| {
        authorize(
            Some(&set),
            &Request {
                presentity: ALICE,
                watcher: Some("sip:bob@example.com"),
                now,
                sphere,
            },
            &blink_lists,
        )
        .handling
    };
    let start = 1_749_945_600; // 2025-06-15T00:00:00Z
    assert_eq!(at(start, Some("Work")), SubHandling::Allow);
    assert_eq!(at(start, Some("office")), SubHandling::Allow);
    assert_eq!(at(start, Some("home")), SubHandling::Confirm);
    assert_eq!(at(start, None), SubHandling::Confirm);
    assert_eq!(at(start - 1, Some("work")), SubHandling::Confirm);
    assert_eq!(at(start + 22 * 3600 - 1, Some("work")), SubHandling::Allow);
    assert_eq!(at(start + 22 * 3600, Some("work")), SubHandling::Confirm);
}

#[test]
fn transformations_of_allowing_rules_are_combined() {
    let set = ruleset(&format!(
        "{}{}{}",
        rule(
            "a",
            "<cp:identity><cp:many/></cp:identity>",
            "allow",
            "<pr:provide-note>true</pr:provide-note><pr:provide-persons><pr:all-persons/></pr:provide-persons>"
        ),
        rule(
            "b",
            "<cp:identity><cp:one id=\"sip:bob@example.com\"/></cp:identity>",
            "confirm",
            "<pr:provide-mood>true</pr:provide-mood>"
        ),
        rule(
            "c",
            "<cp:identity><cp:one id=\"sip:eve@example.com\"/></cp:identity>",
            "block",
            ""
        )
    ));
    let decision = authorize(
        Some(&set),
        &request(Some("sip:bob@example.com")),
        &blink_lists,
    );
    assert_eq!(decision.handling, SubHandling::Allow);
    assert!(!decision.full_document());
    let t = decision.transformations.unwrap();
    assert_eq!(t.attributes, [Attribute::Note, Attribute::Mood]);
    assert_eq!(t.persons, Some(ProvideSet::All));
    assert_eq!(t.services, None);
    // Block and confirm carry no view.
    let decision = authorize(
        Some(&set),
        &request(Some("sip:eve@example.com")),
        &blink_lists,
    );
    assert_eq!(decision.handling, SubHandling::Allow);
    let only_block = ruleset(&rule(
        "x",
        "",
        "block",
        "<pr:provide-note>true</pr:provide-note>",
    ));
    assert_eq!(
        authorize(Some(&only_block), &request(None), &blink_lists),
        Decision {
            handling: SubHandling::Block,
            transformations: None
        }
    );
}

/// RFC 4745 §10.2: permissions of every matching rule add up, whatever rule grants them.
#[test]
fn permissions_combine_as_a_union() {
    let everyone = "<cp:identity><cp:many/></cp:identity>";
    let bob = "<cp:identity><cp:one id=\"sip:bob@example.com\"/></cp:identity>";
    let set = ruleset(&format!(
        "{}{}{}",
        rule(
            "services",
            everyone,
            "allow",
            "<pr:provide-services><pr:occurrence-id>t1</pr:occurrence-id></pr:provide-services>\
             <pr:provide-devices><pr:deviceID>d1</pr:deviceID></pr:provide-devices>\
             <pr:provide-user-input>bare</pr:provide-user-input>\
             <pr:provide-unknown-attribute ns=\"urn:x\" name=\"a\">false</pr:provide-unknown-attribute>"
        ),
        rule(
            "more",
            bob,
            "confirm",
            "<pr:provide-services><pr:class>work</pr:class></pr:provide-services>\
             <pr:provide-devices><pr:all-devices/></pr:provide-devices>\
             <pr:provide-user-input>thresholds</pr:provide-user-input>\
             <pr:provide-unknown-attribute ns=\"urn:x\" name=\"a\">true</pr:provide-unknown-attribute>"
        ),
        // Grants nothing by RFC 5025; it does not make bob's view whole either.
        rule("blink-style", bob, "allow", ""),
    ));
    let decision = authorize(
        Some(&set),
        &request(Some("sip:bob@example.com")),
        &blink_lists,
    );
    assert_eq!(decision.handling, SubHandling::Allow);
    let t = decision.transformations.expect("filtered view");
    assert_eq!(
        t.services,
        Some(ProvideSet::Some(vec![
            Selector::OccurrenceId("t1".into()),
            Selector::Class("work".into())
        ]))
    );
    assert_eq!(t.devices, Some(ProvideSet::All), "all-devices wins");
    assert_eq!(t.persons, None, "no rule provides persons");
    assert_eq!(t.user_input, Some(UserInput::Thresholds));
    assert!(t.unknown_attributes.iter().all(|u| u.provide));
    assert_eq!(t.unknown_attributes.len(), 1);

    // Carol matches only the first rule: her view is exactly its permissions.
    let carol = authorize(
        Some(&set),
        &request(Some("sip:carol@example.com")),
        &blink_lists,
    );
    assert_eq!(
        carol.transformations.unwrap().user_input,
        Some(UserInput::Bare)
    );

    // Rules without a single transformation give the whole document (blink-compat §1.6).
    let blink = ruleset(&rule("allow-all", everyone, "allow", ""));
    let decision = authorize(
        Some(&blink),
        &request(Some("sip:bob@example.com")),
        &blink_lists,
    );
    assert!(decision.full_document(), "{decision:?}");
}

#[test]
fn transitions_between_decisions() {
    let of = |handling| Decision {
        handling,
        transformations: None,
    };
    let filtered = Decision {
        handling: SubHandling::Allow,
        transformations: Some(Transformations {
            all_attributes: true,
            ..Transformations::default()
        }),
    };
    use SubHandling::*;
    use Transition::*;
    let cases = [
        (of(Confirm), of(Allow), Activate),
        (of(Confirm), of(PoliteBlock), Activate),
        (of(Block), of(Allow), Activate),
        (of(Allow), of(Block), Terminate),
        (of(Confirm), of(Block), Terminate),
        (of(Allow), of(Confirm), Suspend),
        (of(Block), of(Confirm), Suspend),
        (of(Allow), of(PoliteBlock), Renotify),
        (of(PoliteBlock), of(Allow), Renotify),
        (of(Allow), filtered.clone(), Renotify),
        (filtered.clone(), filtered.clone(), Unchanged),
        (of(Allow), of(Allow), Unchanged),
        (of(PoliteBlock), of(PoliteBlock), Unchanged),
        (of(Confirm), of(Confirm), Unchanged),
        (of(Block), of(Block), Unchanged),
    ];
    for (previous, next, expected) in cases {
        assert_eq!(
            transition(&previous, &next),
            expected,
            "{previous:?} → {next:?}"
        );
    }
}
