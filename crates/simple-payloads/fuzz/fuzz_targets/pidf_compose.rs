//! [`compose`] over 1–4 attacker-chosen PIDF documents. The input is split at NUL bytes (which
//! XML cannot contain) into at most four documents; each is read with [`PidfDocument::parse`]
//! and those that parse are composed as publications (all of them, and with the first one as
//! the pidf-manipulation document instead), in both [`DuplicateIds`] modes. Checks that nothing
//! panics and that every composed document:
//! - is well-formed XML with a PIDF `<presence entity="…">` root naming the presentity;
//! - has unique `xs:ID` values (PIDF tuples, data-model persons and devices, RPID elements);
//! - is valid pidf-manipulation whenever every document composed was;
//! - composes to itself again (the output is a fixed point of [`compose`]);
//!
//! and that the manipulation document is ignored while there are publications.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use simple_payloads::pidf::{
    closed_document, compose, has_typed_id, DuplicateIds, PidfDocument, Publication, PIDF_NS,
};
use simple_payloads::{validate, Usage};

const PRESENTITY: &str = "sip:alice@example.com";

/// A parsed input document and whether it is valid pidf-manipulation.
struct Input {
    document: PidfDocument,
    valid: bool,
    modified: u64,
}

fuzz_target!(|data: &[u8]| {
    let inputs: Vec<Input> = data
        .splitn(4, |b| *b == 0)
        .filter_map(|part| {
            let text = String::from_utf8_lossy(part);
            let document = PidfDocument::parse(&text).ok()?;
            Some(Input {
                valid: validate(Usage::PidfManipulation, &text).is_ok(),
                document,
                // Few distinct values, so both reordering and ties are exercised.
                modified: (part.len() % 3) as u64,
            })
        })
        .collect();

    for mode in [DuplicateIds::KeepNewest, DuplicateIds::Rename] {
        assert_eq!(
            compose(PRESENTITY, &[], None, mode),
            closed_document(PRESENTITY)
        );
        let Some((first, rest)) = inputs.split_first() else {
            continue;
        };

        let all = publications(&inputs);
        let composed = compose(PRESENTITY, &all, None, mode);
        check(&composed, &inputs, mode);
        assert_eq!(
            compose(PRESENTITY, &all, Some(&first.document), mode),
            composed,
            "pidf-manipulation must be ignored while something is published"
        );

        let fallback = if rest.is_empty() {
            std::slice::from_ref(first)
        } else {
            rest
        };
        let composed = compose(PRESENTITY, &publications(rest), Some(&first.document), mode);
        check(&composed, fallback, mode);
    }
});

fn publications(inputs: &[Input]) -> Vec<Publication<'_>> {
    inputs
        .iter()
        .map(|input| Publication {
            document: &input.document,
            modified: input.modified,
        })
        .collect()
}

/// The properties every composed document has; `sources` are the documents it was built from.
fn check(composed: &str, sources: &[Input], mode: DuplicateIds) {
    let doc = roxmltree::Document::parse(composed)
        .unwrap_or_else(|e| panic!("composed document is not well-formed ({e}):\n{composed}"));
    let root = doc.root_element();
    assert!(root.has_tag_name((PIDF_NS, "presence")), "{composed}");
    assert_eq!(root.attribute("entity"), Some(PRESENTITY), "{composed}");

    let mut ids = HashSet::new();
    for node in doc.descendants().filter(|n| n.is_element()) {
        let name = node.tag_name();
        let typed = has_typed_id(name.namespace(), name.name());
        if let Some(id) = node.attribute("id").filter(|_| typed) {
            assert!(ids.insert(id.trim()), "duplicate id {id:?}:\n{composed}");
        }
    }

    if sources.iter().all(|s| s.valid) {
        if let Err(e) = validate(Usage::PidfManipulation, composed) {
            panic!("valid inputs composed into an invalid document ({e}):\n{composed}");
        }
    }

    let reread = PidfDocument::parse(composed)
        .unwrap_or_else(|e| panic!("composed document does not parse ({e}):\n{composed}"));
    let publication = Publication {
        document: &reread,
        modified: 0,
    };
    assert_eq!(
        compose(PRESENTITY, &[publication], None, mode),
        composed,
        "composing the composed document changed it"
    );
}
