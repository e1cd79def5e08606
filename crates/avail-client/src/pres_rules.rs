//! The pres-rules document (`org.openmobilealliance.pres-rules/…/index`, blink-compat §1.6,
//! RFC 4745, RFC 5025, OMA common-policy): only Blink's rule ids survive normalisation, each
//! with its canonical condition, no transformations and exactly one forced `sub-handling`.

use serde::{Deserialize, Serialize};
use simple_payloads::encode_any_uri;

use crate::account::Account;
use crate::ns::{CP, OCP, PR};
use crate::xml::{Document, Element, Node, Style, XmlError};

pub const STYLE: Style = Style {
    fixed: &[(CP, "cp", true), (PR, "pr", true), (OCP, "ocp", true)],
};

const GRANTED: &str = "wp_prs_grantedcontacts";
const BLOCKED: &str = "wp_prs_blockedcontacts";
const UNLISTED: &str = "wp_prs_unlisted";
const ALLOW_UNLISTED: &str = "wp_prs_allow_unlisted";
const ANONYMOUS: &str = "wp_prs_block_anonymous";
const OWN: &str = "wp_prs_allow_own";
const RULE_ORDER: [&str; 3] = ["conditions", "actions", "transformations"];

/// What happens to watchers that are in no list: the `wp_prs_unlisted` rule's sub-handling, or
/// `wp_prs_allow_unlisted` for `allow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum DefaultPolicy {
    Allow,
    #[default]
    Confirm,
    Block,
    PoliteBlock,
}

fn rank(value: &str) -> Option<u8> {
    match value {
        "block" => Some(0),
        "confirm" => Some(10),
        "polite-block" => Some(20),
        "allow" => Some(30),
        _ => None,
    }
}

pub fn parse(text: Option<&str>) -> Result<Document, XmlError> {
    match text {
        Some(text) => Document::parse(text, CP, "ruleset"),
        None => Ok(Document::new(Element::new(CP, "ruleset"))),
    }
}

/// The highest sub-handling of a rule (block < confirm < polite-block < allow).
fn highest(rule: &Element) -> Option<String> {
    rule.child(CP, "actions")?
        .elements()
        .filter(|a| a.is(PR, "sub-handling"))
        .map(|a| a.text().trim().to_owned())
        .filter_map(|v| rank(&v).map(|r| (r, v)))
        .max_by_key(|(r, _)| *r)
        .map(|(_, v)| v)
}

/// The default policy a document expresses.
pub fn default_policy(doc: &Document) -> DefaultPolicy {
    for rule in doc.root.elements().filter(|r| r.is(CP, "rule")) {
        match rule.attr("id") {
            Some(ALLOW_UNLISTED) => return DefaultPolicy::Allow,
            Some(UNLISTED) => {
                return match highest(rule).as_deref() {
                    Some("block") => DefaultPolicy::Block,
                    Some("polite-block") => DefaultPolicy::PoliteBlock,
                    _ => DefaultPolicy::Confirm,
                }
            }
            _ => {}
        }
    }
    DefaultPolicy::Confirm
}

fn external_list(account: &Account, list: &str) -> Element {
    Element::new(OCP, "external-list").with_child(
        Element::new(OCP, "entry").with_attr("anc", &encode_any_uri(&account.list_url(list))),
    )
}

/// Normalises `doc` in place, with `policy` as the default policy (`None`: keep the document's).
pub fn normalise(doc: &mut Document, account: &Account, policy: Option<DefaultPolicy>) {
    let policy = policy.unwrap_or_else(|| default_policy(doc));
    let (unlisted_id, unlisted_value) = match policy {
        DefaultPolicy::Allow => (ALLOW_UNLISTED, "allow"),
        DefaultPolicy::Confirm => (UNLISTED, "confirm"),
        DefaultPolicy::Block => (UNLISTED, "block"),
        DefaultPolicy::PoliteBlock => (UNLISTED, "polite-block"),
    };
    let anonymous_value = doc
        .root
        .elements()
        .find(|r| r.is(CP, "rule") && r.attr("id") == Some(ANONYMOUS))
        .and_then(highest)
        .filter(|v| v == "polite-block")
        .unwrap_or_else(|| "block".to_owned());
    let wanted: [(&str, Element, &str); 5] = [
        (
            GRANTED,
            external_list(account, "oma_grantedcontacts"),
            "allow",
        ),
        (
            BLOCKED,
            external_list(account, "oma_blockedcontacts"),
            "polite-block",
        ),
        (
            unlisted_id,
            Element::new(OCP, "other-identity"),
            unlisted_value,
        ),
        (
            ANONYMOUS,
            Element::new(OCP, "anonymous-request"),
            &anonymous_value,
        ),
        (
            OWN,
            Element::new(CP, "identity").with_child(
                Element::new(CP, "one").with_attr("id", &encode_any_uri(&account.aor())),
            ),
            "allow",
        ),
    ];
    let mut seen: Vec<String> = Vec::new();
    // Unknown ids, the other unlisted variant and duplicates go; foreign non-rule children stay.
    doc.root.remove_elements(|r| {
        if !r.is(CP, "rule") {
            return false;
        }
        let keep = r
            .attr("id")
            .filter(|id| wanted.iter().any(|(w, _, _)| w == id) && !seen.iter().any(|s| s == id))
            .map(|id| seen.push(id.to_owned()));
        keep.is_none()
    });
    for (id, condition, value) in wanted {
        let is_rule = |r: &Element| r.is(CP, "rule") && r.attr("id") == Some(id);
        if !doc.root.elements().any(is_rule) {
            doc.root.push(Element::new(CP, "rule").with_attr("id", id));
        }
        let Some(rule) = doc.root.elements_mut().find(|r| is_rule(r)) else {
            continue;
        };
        rule.remove_elements(|c| c.is(CP, "transformations"));
        rule.ensure_child(CP, "conditions", &RULE_ORDER).children = vec![Node::Element(condition)];
        let actions = rule.ensure_child(CP, "actions", &RULE_ORDER);
        actions.remove_elements(|a| a.is(PR, "sub-handling"));
        actions.children.insert(
            0,
            Node::Element(Element::new(PR, "sub-handling").with_text(value)),
        );
    }
}
