//! [`transform`] (RFC 5025 §3.3 transformations) with attacker-chosen permissions and PIDF.
//! The input is split at the first NUL byte: the part before is read with [`Ruleset::parse`]
//! and gives permission sets (each rule's transformations, their union as RFC 4745 §10.2
//! combines them, and a set granting everything); the part after is a PIDF document, filtered
//! both as it is and as the presence agent filters it, after [`compose`]. Checks that nothing
//! panics and that every filtered document:
//! - is the input with parts cut out (a subsequence of it), well-formed, and reads back as
//!   PIDF with the same `entity`;
//! - is valid pidf-manipulation whenever the input was;
//! - grows with the permissions: the union keeps at least what each set keeps, and the set
//!   granting everything keeps the whole document.
#![no_main]

use libfuzzer_sys::fuzz_target;
use simple_payloads::common_policy::{ProvideSet, Ruleset, Transformations};
use simple_payloads::pidf::{compose, transform, DuplicateIds, PidfDocument, Publication};
use simple_payloads::{validate, Usage};

const PRESENTITY: &str = "sip:alice@example.com";
/// Permission sets tried per input: bounds the run time of one input.
const MAX_SETS: usize = 8;

fuzz_target!(|data: &[u8]| {
    let (rules_part, pidf_part) = match data.iter().position(|b| *b == 0) {
        Some(nul) => (&data[..nul], &data[nul + 1..]),
        None => (data, &[][..]),
    };
    let mut sets: Vec<Transformations> = Ruleset::parse(&String::from_utf8_lossy(rules_part))
        .map(|rules| {
            rules
                .rules
                .into_iter()
                .filter_map(|rule| rule.transformations)
                .take(MAX_SETS)
                .collect()
        })
        .unwrap_or_default();
    sets.push(Transformations::default());
    let mut union = Transformations::default();
    for set in &sets {
        union.combine(set);
    }
    let everything = Transformations {
        services: Some(ProvideSet::All),
        persons: Some(ProvideSet::All),
        devices: Some(ProvideSet::All),
        all_attributes: true,
        ..Transformations::default()
    };

    let text = String::from_utf8_lossy(pidf_part);
    let Ok(parsed) = PidfDocument::parse(&text) else {
        // Whatever the parser refuses, transform refuses too, without panicking.
        let _ = transform(&text, &union);
        return;
    };
    let composed = compose(
        PRESENTITY,
        &[Publication {
            document: &parsed,
            modified: 0,
        }],
        None,
        DuplicateIds::KeepNewest,
    );
    for document in [text.as_ref(), composed.as_str()] {
        let valid = validate(Usage::PidfManipulation, document).is_ok();
        // Composing may add declarations past the size limit; pidf_compose checks the rest.
        let Ok(reread) = PidfDocument::parse(document) else {
            continue;
        };
        let entity = reread.entity().to_owned();
        let mut widest = 0;
        for set in &sets {
            let out = check(document, set, valid, &entity);
            widest = widest.max(out.len());
        }
        let combined = check(document, &union, valid, &entity);
        assert!(
            combined.len() >= widest,
            "the union of permissions withheld more than one of them"
        );
        assert_eq!(
            check(document, &everything, valid, &entity),
            document,
            "granting everything changed the document"
        );
    }
});

/// Filters `document` with `permissions` and checks the result's properties.
fn check(document: &str, permissions: &Transformations, valid: bool, entity: &str) -> String {
    let out = transform(document, permissions)
        .unwrap_or_else(|e| panic!("a document that parses was refused ({e}):\n{document}"));
    let mut rest = document.chars();
    assert!(
        out.chars().all(|c| rest.any(|s| s == c)),
        "filtering added something:\n{document}\n---\n{out}"
    );
    let reread = PidfDocument::parse(&out)
        .unwrap_or_else(|e| panic!("filtered document does not parse ({e}):\n{out}"));
    assert_eq!(reread.entity(), entity);
    if valid {
        if let Err(e) = validate(Usage::PidfManipulation, &out) {
            panic!("a valid document filtered into an invalid one ({e}):\n{document}\n---\n{out}");
        }
    }
    out
}
