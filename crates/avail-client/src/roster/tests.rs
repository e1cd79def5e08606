use std::time::{Duration, UNIX_EPOCH};

use simple_payloads::multipart::Part;
use simple_payloads::rlmi::{Instance, Resource as RlmiResource};
use simple_payloads::watcherinfo::{Watcher, WatcherEvent, WatcherList};

use super::*;
use crate::presence::{
    Capabilities, DeviceDescription, OwnPresence, Publisher, Status, DEFAULT_IDLE_THRESHOLD,
};
use crate::resource_lists::{ContactUri, Handling, PolicyElement};

const LIST: &str = "sip:alice+presence@example.com";

fn pidf(address: &str, uuid: &str, status: Status, note: Option<&str>, secs: u64) -> String {
    let publisher = Publisher {
        address: address.into(),
        display_name: None,
        device: DeviceDescription {
            instance_uuid: uuid.into(),
            hostname: "host".into(),
            user_agent: "ua".into(),
            time_offset_minutes: 1140,
        },
        capabilities: Capabilities::default(),
        icon_url: None,
        homepage: None,
        map: None,
    };
    let at = UNIX_EPOCH + Duration::from_secs(1_747_300_000 + secs);
    let mut own = OwnPresence::new(None, DEFAULT_IDLE_THRESHOLD, at);
    own.set(status, note.map(str::to_owned), at).unwrap();
    let gruu = format!("sip:{address};gr=urn:uuid:{uuid}");
    publisher.document(&own.effective(), Some(&gruu))
}

/// A resource: its URI, instance state, and the PIDF of its (single) instance.
type Entry<'a> = (&'a str, InstanceState, Option<String>);

fn notify(version: u32, full: bool, entries: &[Entry<'_>]) -> (String, Vec<u8>) {
    let mut parts = Vec::new();
    let resources = entries
        .iter()
        .enumerate()
        .map(|(i, (uri, state, body))| {
            let cid = body.as_ref().map(|b| {
                let cid = format!("r{i}-{version}@rls.example.com");
                parts.push(Part {
                    content_type: "application/pidf+xml".into(),
                    content_id: cid.clone(),
                    body: b.clone().into_bytes(),
                });
                cid
            });
            RlmiResource {
                uri: (*uri).to_owned(),
                names: Vec::new(),
                instances: vec![Instance {
                    id: format!("i{i}"),
                    state: *state,
                    reason: None,
                    cid,
                }],
            }
        })
        .collect();
    let rlmi = Rlmi {
        uri: LIST.into(),
        version,
        full_state: full,
        cid: None,
        names: Vec::new(),
        resources,
    };
    parts.insert(
        0,
        Part {
            content_type: "application/rlmi+xml".into(),
            content_id: format!("list-{version}@rls.example.com"),
            body: rlmi.to_xml().into_bytes(),
        },
    );
    Related::with_root_first(parts).to_bytes("b42")
}

fn apply(list: &mut BuddyList, (content_type, body): (String, Vec<u8>)) -> Applied {
    list.apply_list_notify(Some(&content_type), &body)
}

fn contact(uris: &[&str]) -> Contact {
    Contact {
        id: "c1".into(),
        name: "Bob".into(),
        uris: uris
            .iter()
            .enumerate()
            .map(|(i, u)| ContactUri {
                id: format!("u{i}"),
                uri: (*u).to_owned(),
                uri_type: None,
                attributes: Vec::new(),
            })
            .collect(),
        default_uri: None,
        dialog: Handling::default(),
        presence: Handling {
            policy: Policy::Allow,
            subscribe: true,
        },
        attributes: Vec::new(),
    }
}

const BOB1: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const BOB2: &str = "aaaaaaaa-0000-4000-8000-000000000002";

#[test]
fn full_then_partial_notifies_build_the_contact_state_with_qt_rule() {
    let mut list = BuddyList::default();
    let bob = contact(&["bob@example.com"]);
    assert_eq!(contact_availability(&bob, &list).state, ContactState::None);
    let first = notify(
        0,
        true,
        &[
            (
                "sip:bob@example.com",
                InstanceState::Active,
                Some(pidf("bob@example.com", BOB1, Status::Away, Some("Out"), 10)),
            ),
            ("sip:carol@example.org", InstanceState::Pending, None),
        ],
    );
    assert_eq!(
        apply(&mut list, first),
        Applied::Changed(vec![
            "sip:bob@example.com".into(),
            "sip:carol@example.org".into()
        ])
    );
    let seen = contact_availability(&bob, &list);
    assert_eq!(seen.state, ContactState::Away);
    assert_eq!(seen.colour, Some("#ffff00"));
    assert_eq!(seen.note.as_deref(), Some("Out"));
    assert!(!seen.pending);
    assert_eq!(seen.devices.len(), 1);
    assert_eq!(
        seen.devices[0].contact.as_deref(),
        Some(format!("sip:bob@example.com;gr=urn:uuid:{BOB1}").as_str()),
        "the device's GRUU, decoded"
    );
    assert_eq!(
        seen.devices[0].time_offset,
        Some(-300),
        "1140 wraps to UTC-5"
    );
    let carol = contact(&["sip:carol@example.org"]);
    assert!(contact_availability(&carol, &list).pending);

    // Bob's second device publishes later: the newer tuple wins (rank equal).
    let second = notify(
        1,
        false,
        &[(
            "sip:bob@example.com",
            InstanceState::Active,
            Some(pidf(
                "bob@example.com",
                BOB2,
                Status::Busy,
                Some("Call"),
                20,
            )),
        )],
    );
    assert!(matches!(apply(&mut list, second), Applied::Changed(_)));
    let seen = contact_availability(&bob, &list);
    assert_eq!(
        (seen.state, seen.note.as_deref()),
        (ContactState::Busy, Some("Call"))
    );
    assert_eq!(seen.colour, Some("#ff0000"));
    // The partial NOTIFY replaced Bob's resource but kept Carol's.
    assert!(contact_availability(&carol, &list).pending);
}

#[test]
fn versions_are_checked_and_gaps_ask_for_a_new_subscription() {
    let mut list = BuddyList::default();
    let bob = |v, full| {
        notify(
            v,
            full,
            &[(
                "sip:bob@example.com",
                InstanceState::Active,
                Some(pidf(
                    "bob@example.com",
                    BOB1,
                    Status::Available,
                    None,
                    u64::from(v),
                )),
            )],
        )
    };
    assert!(matches!(
        apply(&mut list, bob(3, false)),
        Applied::Resubscribe(_)
    ));
    assert!(!list.has_list_state());
    assert!(matches!(
        apply(&mut list, bob(3, true)),
        Applied::Changed(_)
    ));
    assert!(list.has_list_state());
    assert_eq!(
        apply(&mut list, bob(3, false)),
        Applied::Ignored("old version")
    );
    assert_eq!(
        apply(&mut list, bob(2, true)),
        Applied::Ignored("old version")
    );
    assert!(matches!(
        apply(&mut list, bob(4, false)),
        Applied::Changed(_)
    ));
    assert!(matches!(
        apply(&mut list, bob(6, false)),
        Applied::Resubscribe(_)
    ));
    // A full-state NOTIFY may jump; it replaces everything.
    let carol_only = notify(
        9,
        true,
        &[("sip:carol@example.org", InstanceState::Active, None)],
    );
    assert!(matches!(apply(&mut list, carol_only), Applied::Changed(_)));
    assert_eq!(
        contact_availability(&contact(&["bob@example.com"]), &list).state,
        ContactState::None
    );
    list.restart();
    assert!(matches!(
        apply(&mut list, bob(0, false)),
        Applied::Resubscribe(_)
    ));
    let single = pidf("bob@example.com", BOB1, Status::Available, None, 1);
    assert_eq!(
        list.apply_list_notify(Some("application/pidf+xml"), single.as_bytes()),
        Applied::Ignored("not multipart/related")
    );
}

#[test]
fn invalid_pidf_parts_are_discarded_and_open_tuples_without_extended_rank_lower() {
    let mut list = BuddyList::default();
    let plain = "<?xml version='1.0'?><presence xmlns='urn:ietf:params:xml:ns:pidf' \
                 entity='sip:bob@example.com'><tuple id='t1'><status><basic>open</basic>\
                 </status><timestamp>2030-01-01T00:00:00Z</timestamp></tuple></presence>";
    let duplicate_ids = "<?xml version='1.0'?><presence xmlns='urn:ietf:params:xml:ns:pidf' \
                 entity='sip:bob@example.com'><tuple id='t1'><status><basic>open</basic>\
                 </status></tuple><tuple id='t1'><status><basic>open</basic></status></tuple>\
                 </presence>";
    let n = notify(
        0,
        true,
        &[
            (
                "sip:bob@example.com",
                InstanceState::Active,
                Some(plain.into()),
            ),
            (
                "bob@example.com",
                InstanceState::Active,
                Some(pidf("bob@example.com", BOB1, Status::Away, None, 0)),
            ),
            (
                "sip:dave@example.com",
                InstanceState::Active,
                Some(duplicate_ids.into()),
            ),
        ],
    );
    apply(&mut list, n);
    let bob = contact_availability(&contact(&["sip:bob@example.com"]), &list);
    assert_eq!(
        bob.state,
        ContactState::Away,
        "extended beats a newer plain open tuple"
    );
    assert_eq!(bob.devices.len(), 2);
    let dave = contact_availability(&contact(&["dave@example.com"]), &list);
    assert_eq!(
        dave.state,
        ContactState::None,
        "invalid document discarded whole"
    );
}

#[test]
fn direct_subscriptions_feed_the_same_model() {
    let mut list = BuddyList::default();
    let body = pidf("bob@example.com", BOB1, Status::Available, Some("Hi"), 0);
    assert!(matches!(
        list.apply_direct_notify(
            "sip:bob@example.com",
            InstanceState::Active,
            Some("application/pidf+xml;charset=utf-8"),
            body.as_bytes()
        ),
        Applied::Changed(_)
    ));
    let bob = contact(&["bob@example.com"]);
    let seen = contact_availability(&bob, &list);
    assert_eq!(
        (seen.state, seen.note.as_deref()),
        (ContactState::Available, Some("Hi"))
    );
    list.apply_direct_notify("sip:bob@example.com", InstanceState::Pending, None, b"");
    let seen = contact_availability(&bob, &list);
    assert!(seen.pending);
    assert_eq!(seen.state, ContactState::None);
    list.forget_direct("sip:bob@example.com");
    assert!(!contact_availability(&bob, &list).pending);
}

fn winfo(version: u64, full: bool, watchers: &[(&str, &str, WatcherStatus)]) -> Vec<u8> {
    WatcherInfo {
        version,
        state: if full {
            watcherinfo::State::Full
        } else {
            watcherinfo::State::Partial
        },
        lists: vec![
            WatcherList {
                resource: "sip:alice@example.com".into(),
                package: "presence".into(),
                watchers: watchers
                    .iter()
                    .map(|(id, uri, status)| Watcher {
                        id: (*id).into(),
                        status: *status,
                        event: WatcherEvent::Subscribe,
                        uri: (*uri).into(),
                        display_name: None,
                        duration_subscribed: None,
                        expiration: None,
                    })
                    .collect(),
            },
            WatcherList {
                resource: "sip:alice@example.com".into(),
                package: "dialog".into(),
                watchers: vec![Watcher {
                    id: "x".into(),
                    status: WatcherStatus::Pending,
                    event: WatcherEvent::Subscribe,
                    uri: "sip:other-package@example.com".into(),
                    display_name: None,
                    duration_subscribed: None,
                    expiration: None,
                }],
            },
        ],
    }
    .to_xml()
    .into_bytes()
}

#[test]
fn watcher_info_gives_requests_and_watchers_with_version_rules() {
    let mut w = Watchers::new("sip:alice@example.com");
    let mut book = AddressBook::default();
    assert!(matches!(
        w.apply_notify(&winfo(0, false, &[])),
        Applied::Resubscribe(_)
    ));
    let first = winfo(
        0,
        true,
        &[
            ("w1", "sip:dave@example.net", WatcherStatus::Pending),
            ("w2", "sip:bob@example.com", WatcherStatus::Active),
            ("w3", "sip:alice@example.com", WatcherStatus::Pending),
            ("w4", "sip:spam@example.net", WatcherStatus::Waiting),
        ],
    );
    assert!(matches!(w.apply_notify(&first), Applied::Changed(_)));
    let uris = |v: Vec<&WatcherEntry>| v.into_iter().map(|w| w.uri.clone()).collect::<Vec<_>>();
    assert_eq!(
        uris(w.requests(&book)),
        ["sip:dave@example.net", "sip:spam@example.net"],
        "pending and waiting, not the user, not another package"
    );
    assert_eq!(uris(w.active()), ["sip:bob@example.com"]);

    book.policies.push(PolicyElement {
        id: "p1".into(),
        uri: "sip:spam@example.net".into(),
        name: String::new(),
        dialog: Handling::default(),
        presence: Handling {
            policy: Policy::Block,
            subscribe: false,
        },
        attributes: Vec::new(),
    });
    let mut dave = contact(&["dave@example.net"]);
    dave.presence.policy = Policy::Default;
    book.contacts.push(dave);
    assert_eq!(
        uris(w.requests(&book)),
        ["sip:dave@example.net"],
        "a default-policy contact is still a request; a blocked address is not"
    );

    assert_eq!(
        w.apply_notify(&winfo(0, false, &[])),
        Applied::Ignored("old version")
    );
    let accepted = winfo(
        1,
        false,
        &[("w1", "sip:dave@example.net", WatcherStatus::Active)],
    );
    assert!(matches!(w.apply_notify(&accepted), Applied::Changed(_)));
    assert!(w.requests(&book).is_empty());
    assert_eq!(
        uris(w.active()),
        ["sip:dave@example.net", "sip:bob@example.com"],
        "ordered by watcher id"
    );
    assert!(matches!(
        w.apply_notify(&winfo(3, false, &[])),
        Applied::Resubscribe(_)
    ));
}

#[test]
fn xcap_diff_names_the_documents_whose_etag_changed() {
    let account = Account::new(
        "alice",
        "example.com",
        "https://xcap.example.com/xcap-root/",
    );
    let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<xcap-diff xmlns="urn:ietf:params:xml:ns:xcap-diff" xcap-root="https://xcap.example.com/xcap-root">
  <document sel="resource-lists/users/sip:alice@example.com/index" previous-etag="7f3a" new-etag="91c2"/>
  <document sel="https://xcap.example.com/xcap-root/rls-services/users/sip%3Aalice%40example.com/index" new-etag="same"/>
  <document sel="org.openmobilealliance.pres-content/users/sip:alice@example.com/oma_status-icon/index" new-etag="i2"/>
  <document sel="resource-lists/users/sip:bob@example.com/index" new-etag="zz"/>
</xcap-diff>"#;
    let etag = |kind| match kind {
        DocumentKind::ResourceLists => Some("\"7f3a\"".to_owned()),
        DocumentKind::RlsServices => Some("\"same\"".to_owned()),
        _ => None,
    };
    assert_eq!(
        changed_documents(body, &account, etag),
        Some(vec![DocumentKind::ResourceLists, DocumentKind::StatusIcon])
    );
    assert_eq!(changed_documents(b"<nonsense", &account, etag), None);
}
