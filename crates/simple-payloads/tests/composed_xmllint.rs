//! libxml2 as the oracle for the documents this crate builds: composed PIDF documents against
//! the pidf-manipulation schema set, watcherinfo documents against RFC 3858's schema and
//! xcap-diff documents against RFC 5874's.

use std::path::{Path, PathBuf};
use std::process::Command;

use simple_payloads::pidf::{closed_document, compose, DuplicateIds, PidfDocument, Publication};
use simple_payloads::watcherinfo::{
    State, Watcher, WatcherEvent, WatcherInfo, WatcherList, WatcherStatus,
};
use simple_payloads::{validate, Usage};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn xmllint_accepts(schema: &Path, name: &str, xml: &str) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("simple-payloads-built-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join(name);
    std::fs::write(&file, xml).expect("write temp file");
    let output = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(schema)
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run xmllint ({e}); install libxml2-utils"));
    let _ = std::fs::remove_file(&file);
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

fn corpus(name: &str) -> PidfDocument {
    let path = crate_dir()
        .join("tests/corpus/pidf-manipulation/valid")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("corpus file");
    PidfDocument::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn composed_documents_are_valid_for_libxml2() {
    let schema = crate_dir().join("schemas/usage-pidf-manipulation.xsd");
    let away = corpus("blink-qt-away-publication.xml");
    let offline = corpus("blink-qt-offline.xml");
    let cocoa = corpus("blink-cocoa-offline-note.xml");
    let rpid = corpus("rpid-edge-cases.xml");
    let caps = corpus("caps-full.xml");
    let rfc = corpus("rfc3863-example.xml");
    let all = [&away, &offline, &cocoa, &rpid, &caps, &rfc, &rpid, &away];
    let publications: Vec<Publication<'_>> = all
        .iter()
        .enumerate()
        .map(|(i, document)| Publication {
            document,
            modified: i as u64 % 3,
        })
        .collect();
    let mut documents = vec![
        ("closed.xml", closed_document("sip:alice@example.com")),
        (
            "manipulation.xml",
            compose(
                "sip:alice@example.com",
                &[],
                Some(&cocoa),
                DuplicateIds::Rename,
            ),
        ),
    ];
    for (name, mode) in [
        ("keep-newest.xml", DuplicateIds::KeepNewest),
        ("rename.xml", DuplicateIds::Rename),
    ] {
        documents.push((
            name,
            compose("sip:alice@example.com", &publications, Some(&offline), mode),
        ));
    }
    for (name, xml) in documents {
        validate(Usage::PidfManipulation, &xml).unwrap_or_else(|e| panic!("{name}: {e}\n{xml}"));
        xmllint_accepts(&schema, name, &xml).unwrap_or_else(|e| panic!("{name}: {e}\n{xml}"));
    }
}

#[test]
fn built_watcherinfo_documents_are_valid_for_libxml2() {
    let schema = crate_dir().join("schemas/watcherinfo.xsd");
    let watcher = |id: &str, status, event, uri: &str| Watcher {
        id: id.into(),
        status,
        event,
        uri: uri.into(),
        display_name: None,
        duration_subscribed: None,
        expiration: None,
    };
    let documents = [
        WatcherInfo {
            version: 0,
            state: State::Full,
            lists: vec![WatcherList {
                resource: "sip:alice@example.com".into(),
                package: "presence".into(),
                watchers: vec![],
            }],
        },
        WatcherInfo {
            version: u64::MAX,
            state: State::Partial,
            lists: vec![
                WatcherList {
                    resource: "sip:alice@example.com".into(),
                    package: "presence".into(),
                    watchers: vec![
                        Watcher {
                            display_name: Some("Bob \"the\" <Builder> & co\ttab".into()),
                            duration_subscribed: Some(0),
                            expiration: Some(u64::MAX),
                            ..watcher(
                                "w1",
                                WatcherStatus::Pending,
                                WatcherEvent::Subscribe,
                                "sip:bob@example.com",
                            )
                        },
                        watcher(
                            "w2",
                            WatcherStatus::Active,
                            WatcherEvent::Approved,
                            "sips:carol@example.org",
                        ),
                        watcher(
                            "w3",
                            WatcherStatus::Waiting,
                            WatcherEvent::Giveup,
                            "sip:d@e",
                        ),
                        watcher(
                            "w4",
                            WatcherStatus::Terminated,
                            WatcherEvent::Rejected,
                            "sip:e@f",
                        ),
                        watcher(
                            "w5",
                            WatcherStatus::Terminated,
                            WatcherEvent::Deactivated,
                            "sip:f@g",
                        ),
                        watcher(
                            "w6",
                            WatcherStatus::Terminated,
                            WatcherEvent::Probation,
                            "sip:g@h",
                        ),
                        watcher(
                            "w7",
                            WatcherStatus::Terminated,
                            WatcherEvent::Timeout,
                            "sip:h@i",
                        ),
                        watcher(
                            "w8",
                            WatcherStatus::Terminated,
                            WatcherEvent::Noresource,
                            "sip:i@j",
                        ),
                    ],
                },
                WatcherList {
                    resource: "sip:alice@example.com".into(),
                    package: "presence.winfo".into(),
                    watchers: vec![watcher(
                        "x&1",
                        WatcherStatus::Active,
                        WatcherEvent::Approved,
                        "sip:a<b@c",
                    )],
                },
            ],
        },
    ];
    for (i, info) in documents.iter().enumerate() {
        let xml = info.to_xml();
        xmllint_accepts(&schema, &format!("winfo-{i}.xml"), &xml)
            .unwrap_or_else(|e| panic!("{e}\n{xml}"));
        assert_eq!(WatcherInfo::parse(&xml).as_ref(), Ok(info));
    }
}

#[test]
fn built_xcap_diff_documents_are_valid_for_libxml2() {
    use simple_payloads::xcap_diff::{DocumentDiff, XcapDiff};
    let schema = crate_dir().join("schemas/xcapdiff.xsd");
    let diff = |sel: &str, previous: Option<&str>, new: Option<&str>| DocumentDiff {
        sel: sel.into(),
        previous_etag: previous.map(Into::into),
        new_etag: new.map(Into::into),
    };
    let documents = [
        XcapDiff {
            xcap_root: "http://xcap.example.com/xcap-root".into(),
            documents: vec![],
        },
        XcapDiff {
            xcap_root: "https://xcap.example.com:8443/xcap-root".into(),
            documents: vec![
                diff(
                    "resource-lists/users/sip:alice@example.com/index",
                    None,
                    Some("91c2"),
                ),
                diff(
                    "org.openmobilealliance.pres-content/users/sip:alice@example.com/oma_status-icon/index",
                    Some("7f3a"),
                    Some("\"quoted\" <&>"),
                ),
                diff("pres-rules/users/sip:alice@example.com/index", Some("1"), None),
            ],
        },
    ];
    for (i, document) in documents.iter().enumerate() {
        let xml = document.to_xml();
        xmllint_accepts(&schema, &format!("xcap-diff-{i}.xml"), &xml)
            .unwrap_or_else(|e| panic!("{e}\n{xml}"));
    }
}
