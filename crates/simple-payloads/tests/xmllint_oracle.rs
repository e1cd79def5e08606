//! Differential test of the hand-written validators against libxml2: every document of
//! `tests/corpus/<usage>/{valid,invalid}/` must get the verdict of its directory from both
//! `xmllint --schema schemas/usage-<usage>.xsd` and `simple_payloads::validate_schema`.

use std::path::{Path, PathBuf};
use std::process::Command;

use simple_payloads::xcap_error::{Exists, XcapError, XcapErrorKind};
use simple_payloads::{validate_schema, Usage};

const MIN_VALID: usize = 8;
const MIN_INVALID: usize = 10;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Corpus directory name → the usages validated with that directory's wrapper schema.
fn usages(dir: &str) -> &'static [Usage] {
    match dir {
        "resource-lists" => &[Usage::ResourceLists],
        "rls-services" => &[Usage::RlsServices],
        "pres-rules" => &[Usage::PresRules, Usage::OmaPresRules],
        "pidf-manipulation" => &[Usage::PidfManipulation],
        "pres-content" => &[Usage::OmaPresContent],
        "xcap-caps" => &[Usage::XcapCaps],
        "xcap-directory" => &[Usage::XcapDirectory],
        "xcap-error" => &[Usage::XcapError],
        "rlmi" => &[Usage::Rlmi],
        other => panic!("corpus directory {other} has no usage mapping"),
    }
}

/// xmllint's verdict: `Ok(true)` valid, `Ok(false)` invalid.
fn xmllint_valid(schema: &Path, file: &Path) -> bool {
    let output = match Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(schema)
        .arg(file)
        .output()
    {
        Ok(output) => output,
        Err(e) => panic!(
            "cannot run xmllint ({e}): the schema oracle needs libxml2's xmllint; install it \
             (Debian/Ubuntu: apt-get install libxml2-utils)"
        ),
    };
    match output.status.code() {
        Some(0) => true,
        // 1: not well-formed, 3: validation error.
        Some(1 | 3) => false,
        _ => panic!(
            "xmllint failed on {} with {:?}: {}",
            file.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    entries.sort();
    entries
}

#[test]
fn corpus_verdicts_match_xmllint_and_the_directory() {
    let corpus = crate_dir().join("tests/corpus");
    let mut failures = Vec::new();
    let mut usages_seen = 0;
    for usage_dir in sorted_entries(&corpus) {
        let name = usage_dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 directory name")
            .to_owned();
        let schema = crate_dir().join(format!("schemas/usage-{name}.xsd"));
        assert!(
            schema.is_file(),
            "missing wrapper schema {}",
            schema.display()
        );
        usages_seen += 1;
        for (kind, expected, minimum) in
            [("valid", true, MIN_VALID), ("invalid", false, MIN_INVALID)]
        {
            let files = sorted_entries(&usage_dir.join(kind));
            assert!(
                files.len() >= minimum,
                "{name}/{kind} holds {} documents, fewer than {minimum}",
                files.len()
            );
            for file in files {
                let text = std::fs::read_to_string(&file).expect("corpus files are UTF-8");
                let shown = file
                    .strip_prefix(&corpus)
                    .unwrap_or(&file)
                    .display()
                    .to_string();
                if xmllint_valid(&schema, &file) != expected {
                    failures.push(format!(
                        "{shown}: xmllint says {}",
                        if expected { "invalid" } else { "valid" }
                    ));
                }
                for &usage in usages(&name) {
                    match (validate_schema(usage, &text), expected) {
                        (Ok(()), false) => failures.push(format!("{shown}: {usage:?} accepted it")),
                        (Err(e), true) => {
                            failures.push(format!("{shown}: {usage:?} rejected it: {e}"))
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    assert_eq!(usages_seen, 9, "one corpus directory per usage schema set");
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn built_xcap_error_bodies_are_valid() {
    let schema = crate_dir().join("schemas/usage-xcap-error.xsd");
    let exists = |field: &str, alts: &[&str]| Exists {
        field: field.to_owned(),
        alt_values: alts.iter().map(|s| (*s).to_owned()).collect(),
    };
    let errors = [
        XcapError::new(XcapErrorKind::NotWellFormed),
        XcapError::with_phrase(
            XcapErrorKind::NotXmlFrag,
            "a \"quoted\" <phrase> & more\n\ttabbed",
        ),
        XcapError::new(XcapErrorKind::NoParent {
            ancestor: Some("http://xcap.example.com/xcap-root/a?b=c&d".into()),
        }),
        XcapError::with_phrase(XcapErrorKind::NoParent { ancestor: None }, "none"),
        XcapError::with_phrase(
            XcapErrorKind::SchemaValidationError,
            "line 1, column 2: bad",
        ),
        XcapError::new(XcapErrorKind::NotXmlAttValue),
        XcapError::new(XcapErrorKind::CannotInsert),
        XcapError::new(XcapErrorKind::CannotDelete),
        XcapError::with_phrase(
            XcapErrorKind::UniquenessFailure {
                first: exists(
                    "rls-services/service/@uri",
                    &["sip:a1@example.com", "sip:<a2>@example.com"],
                ),
                more: vec![exists("x", &[])],
            },
            "taken",
        ),
        XcapError::new(XcapErrorKind::ConstraintFailure),
        XcapError::with_phrase(XcapErrorKind::NotUtf8, "byte 0xFF\u{0}"),
    ];
    let dir =
        std::env::temp_dir().join(format!("simple-payloads-xcap-error-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for (i, error) in errors.iter().enumerate() {
        let xml = error.to_xml();
        validate_schema(Usage::XcapError, &xml).unwrap_or_else(|e| panic!("{xml}: {e}"));
        let file = dir.join(format!("error-{i}.xml"));
        std::fs::write(&file, &xml).expect("write temp file");
        assert!(xmllint_valid(&schema, &file), "xmllint rejects {xml}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
