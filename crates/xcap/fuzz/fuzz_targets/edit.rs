//! GET/PUT/DELETE (RFC 4825 §8) of attacker-chosen selectors and bodies on a fixed seed
//! document. Input: first byte picks the operation, then `selector\nbody`. Checks that nothing
//! panics, that every accepted edit yields well-formed XML, and the §8.2.5 idempotency promise:
//! a GET after a successful element or attribute PUT returns the content that was put.
#![no_main]

use libfuzzer_sys::fuzz_target;
use roxmltree::Document;
use xcap::{
    resource_lists_uniqueness, ApplicationUsage, ConstraintContext, ConstraintFailure,
    DeleteOutcome, Engine, Limits, ValidationFailure, XcapUri, ATTRIBUTE_TYPE, ELEMENT_TYPE,
};

const SEED: &str = r#"<?xml version='1.0' encoding='UTF-8'?>
<!-- seed -->
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists" xmlns:x="urn:x">
  <list name="a">
    <entry uri='sip:b@example.com'><display-name>B &amp; c</display-name></entry>
    <entry uri="sip:c@example.com"/>
    <x:foreign x:k="v"/>
  </list>
  <list name="e"/>
</resource-lists>
"#;

struct Lists;

impl ApplicationUsage for Lists {
    fn auid(&self) -> &str {
        "resource-lists"
    }
    fn default_namespace(&self) -> &str {
        "urn:ietf:params:xml:ns:resource-lists"
    }
    fn mime_type(&self) -> &str {
        "application/resource-lists+xml"
    }
    fn validate(&self, _: &str) -> Result<(), ValidationFailure> {
        Ok(())
    }
    fn check_constraints(
        &self,
        doc: &Document<'_>,
        _: &ConstraintContext<'_>,
    ) -> Result<(), ConstraintFailure> {
        resource_lists_uniqueness(doc)
    }
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fuzz_target!(|data: &[u8]| {
    let Some((&op, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let (selector, body) = text.split_once('\n').unwrap_or((text, ""));
    let path = format!("resource-lists/users/sip:a@example.com/index/~~{selector}");
    let limits = Limits::default();
    let Ok(uri) = XcapUri::parse(&path, Some("xmlns(x=urn:x)"), &limits) else {
        return;
    };
    let engine = Engine::new(&Lists, limits);
    match op % 3 {
        0 => {
            let _ = engine.get(&uri, SEED);
        }
        1 => {
            let attribute = matches!(
                uri.node.as_ref().and_then(|n| n.terminal.as_ref()),
                Some(xcap::Terminal::Attribute(_))
            );
            let ct = if attribute {
                ATTRIBUTE_TYPE
            } else {
                ELEMENT_TYPE
            };
            if let Ok(out) = engine.put(&uri, Some(SEED), body.as_bytes(), ct) {
                Document::parse(&out.new_document).expect("PUT produced malformed XML");
                let got = engine.get(&uri, &out.new_document).expect("GET after PUT");
                if !attribute {
                    assert_eq!(got.body, body.trim_matches(is_xml_space));
                }
            }
        }
        _ => {
            if let Ok(DeleteOutcome::Updated(new)) = engine.delete(&uri, SEED) {
                Document::parse(&new).expect("DELETE produced malformed XML");
            }
        }
    }
});
