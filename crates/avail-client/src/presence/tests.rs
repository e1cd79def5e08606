use std::time::{Duration, SystemTime, UNIX_EPOCH};

use simple_payloads::{validate, Usage};

use super::*;
use crate::pidf_view::{ExtendedStatus, PresenceDocument};
use crate::xml::Document;

const UUID: &str = "8c1e7d7a-3f2b-4d7e-9a51-0b6f2a9c4e11";
const GRUU: &str = "sip:alice@example.com;gr=urn:uuid:8c1e7d7a-3f2b-4d7e-9a51-0b6f2a9c4e11";

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_747_300_000 + secs)
}

fn publisher() -> Publisher {
    Publisher {
        address: "alice@example.com".into(),
        display_name: Some("Alice Example".into()),
        device: DeviceDescription {
            instance_uuid: UUID.into(),
            hostname: "alice-laptop".into(),
            user_agent: "avail 0.1.0".into(),
            time_offset_minutes: 120,
        },
        capabilities: Capabilities::BLINK_QT,
        icon_url: Some(
            "https://xcap.example.com/xcap-root/org.openmobilealliance.pres-content/users/\
             sip:alice@example.com/oma_status-icon/index#blink-icon3f78"
                .into(),
        ),
        homepage: Some("https://alice.example.com/".into()),
        map: None,
    }
}

/// `(namespace, local name, id)` of each child of `e`, for structural comparison.
fn shape(e: &crate::xml::Element) -> Vec<(String, String)> {
    e.elements()
        .map(|c| (c.ns.clone().unwrap_or_default(), c.name.clone()))
        .collect()
}

fn names(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(ns, n)| ((*ns).to_owned(), (*n).to_owned()))
        .collect()
}

#[test]
fn away_document_matches_blink_qt_element_by_element() {
    let mut own = OwnPresence::new(None, DEFAULT_IDLE_THRESHOLD, at(0));
    own.set(Status::Away, Some("In a meeting".into()), at(5))
        .unwrap();
    let text = publisher().document(&own.effective(), Some(GRUU));
    validate(Usage::PidfManipulation, &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(text.starts_with("<?xml version='1.0' encoding='UTF-8'?>"));
    assert!(text.contains("xmlns:agp-pidf=\"urn:ag-projects:xml:ns:pidf\""));
    let doc = Document::parse(&text, PIDF, "presence").unwrap();
    assert_eq!(doc.root.attr("entity"), Some("sip%3Aalice%40example.com"));
    assert_eq!(
        shape(&doc.root),
        names(&[(PIDF, "tuple"), (DM, "person"), (DM, "device")])
    );
    let tuple = doc.root.child(PIDF, "tuple").unwrap();
    assert_eq!(tuple.attr("id"), Some(format!("SID-{UUID}").as_str()));
    assert_eq!(
        shape(tuple),
        names(&[
            (PIDF, "status"),
            (CAPS, "servcaps"),
            (CIPID, "display-name"),
            (CIPID, "icon"),
            (CIPID, "homepage"),
            (AGP_PIDF, "device-info"),
            (RPID, "user-input"),
            (DM, "deviceID"),
            (PIDF, "contact"),
            (PIDF, "note"),
            (PIDF, "timestamp"),
        ])
    );
    let status = tuple.child(PIDF, "status").unwrap();
    assert_eq!(status.child_text(PIDF, "basic").as_deref(), Some("open"));
    assert_eq!(
        status.child_text(AGP_PIDF, "extended").as_deref(),
        Some("away")
    );
    let caps = tuple.child(CAPS, "servcaps").unwrap();
    assert_eq!(
        shape(caps),
        names(&[
            (CAPS, "audio"),
            (CAPS, "message"),
            (CAPS, "text"),
            (AGP_CAPS, "file-transfer"),
            (AGP_CAPS, "screen-sharing-server"),
            (AGP_CAPS, "screen-sharing-client"),
        ])
    );
    assert_eq!(caps.child_text(CAPS, "text").as_deref(), Some("false"));
    assert!(tuple
        .child_text(CIPID, "icon")
        .unwrap()
        .ends_with("index%23blink-icon3f78"));
    let info = tuple.child(AGP_PIDF, "device-info").unwrap();
    assert_eq!(info.attr("id"), Some(UUID));
    assert_eq!(
        info.child_text(AGP_PIDF, "time-offset").as_deref(),
        Some("120.0")
    );
    let input = tuple.child(RPID, "user-input").unwrap();
    assert_eq!(input.text(), "active");
    assert_eq!(input.attr("idle-threshold"), Some("600"));
    assert_eq!(
        tuple.child_text(PIDF, "contact").as_deref(),
        Some("sip%3Aalice%40example.com%3Bgr%3Durn%3Auuid%3A8c1e7d7a-3f2b-4d7e-9a51-0b6f2a9c4e11")
    );
    assert_eq!(
        tuple.child_text(PIDF, "note").as_deref(),
        Some("In a meeting")
    );
    let stamp = tuple.child_text(PIDF, "timestamp").unwrap();
    assert_eq!(stamp, format_timestamp(at(5)));
    assert!(stamp.ends_with(".000000+00:00"), "{stamp}");

    let person = doc.root.child(DM, "person").unwrap();
    assert_eq!(
        person.attr("id"),
        Some("PID-c160f8cc69a4f0bf2b0362752353d060"),
        "md5 of alice@example.com as in blink-compat §3.2"
    );
    let activities = person.child(RPID, "activities").unwrap();
    assert_eq!(shape(activities), names(&[(RPID, "away")]));
    let device = doc.root.child(DM, "device").unwrap();
    assert_eq!(device.attr("id"), Some(format!("DID-{UUID}").as_str()));
    assert_eq!(
        shape(device),
        names(&[(DM, "deviceID"), (DM, "note"), (DM, "timestamp")])
    );
    assert_eq!(
        device.child_text(DM, "note").as_deref(),
        Some("avail 0.1.0 at alice-laptop")
    );
}

#[test]
fn available_goes_out_as_rpid_other_and_without_gruu_the_aor_is_the_contact() {
    let own = OwnPresence::new(None, DEFAULT_IDLE_THRESHOLD, at(0));
    let text = publisher().document(&own.effective(), None);
    validate(Usage::PidfManipulation, &text).unwrap();
    let read = PresenceDocument::parse(&text).unwrap();
    assert_eq!(read.entity, "sip:alice@example.com");
    let tuple = &read.tuples[0];
    assert_eq!(tuple.extended, Some(ExtendedStatus::Available));
    assert_eq!(tuple.contact.as_deref(), Some("sip:alice@example.com"));
    assert!(tuple.notes.is_empty());
    assert_eq!(read.persons[0].activities, ["available"]);
    assert_eq!(
        tuple.capabilities,
        [
            "audio",
            "message",
            "file-transfer",
            "screen-sharing-server",
            "screen-sharing-client"
        ]
    );
}

#[test]
fn invisible_is_the_closed_offline_document_of_section_3_3() {
    let mut own = OwnPresence::new(None, DEFAULT_IDLE_THRESHOLD, at(0));
    own.set(Status::Invisible, Some("ignored".into()), at(1))
        .unwrap();
    let text = publisher().document(&own.effective(), Some(GRUU));
    validate(Usage::PidfManipulation, &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let doc = Document::parse(&text, PIDF, "presence").unwrap();
    assert_eq!(shape(&doc.root), names(&[(PIDF, "tuple"), (DM, "person")]));
    let tuple = doc.root.child(PIDF, "tuple").unwrap();
    assert_eq!(
        tuple.attr("id"),
        Some("SID-c160f8cc69a4f0bf2b0362752353d060")
    );
    assert_eq!(
        shape(tuple),
        names(&[
            (PIDF, "status"),
            (CAPS, "servcaps"),
            (CIPID, "display-name"),
            (CIPID, "icon"),
            (PIDF, "contact"),
            (PIDF, "timestamp"),
        ])
    );
    assert!(tuple.child(CAPS, "servcaps").unwrap().children.is_empty());
    assert_eq!(
        tuple.child_text(PIDF, "contact").as_deref(),
        Some("sip%3Aalice%40example.com"),
        "the AOR, never the GRUU"
    );
    let read = PresenceDocument::parse(&text).unwrap();
    assert_eq!(read.tuples[0].extended, Some(ExtendedStatus::Offline));
    assert_eq!(read.tuples[0].open, Some(false));
    assert_eq!(read.persons[0].activities, ["offline"]);
}

#[test]
fn auto_away_switches_after_the_threshold_and_restores_on_input() {
    let mut own = OwnPresence::new(None, Duration::from_secs(60), at(0));
    own.set(Status::Available, Some("Working".into()), at(0))
        .unwrap();
    assert!(!own.on_idle(Duration::from_secs(59), at(59)));
    assert!(own.on_idle(Duration::from_secs(60), at(60)));
    let away = own.effective();
    assert_eq!(away.status, Status::Away);
    assert_eq!(away.note.as_deref(), Some("Working"));
    assert_eq!(away.idle_since, Some(at(0)));
    let text = publisher().document(&away, None);
    validate(Usage::PidfManipulation, &text).unwrap();
    let read = PresenceDocument::parse(&text).unwrap();
    let input = read.tuples[0].user_input.clone().unwrap();
    assert!(input.idle);
    assert_eq!(input.last_input, Some(format_timestamp(at(0))));
    assert_eq!(input.idle_threshold, Some(60));
    assert!(
        !own.on_idle(Duration::from_secs(200), at(200)),
        "already away"
    );
    assert_eq!(own.chosen().status, Status::Available);
    assert!(own.on_idle(Duration::ZERO, at(201)));
    assert_eq!(own.effective().status, Status::Available);
    assert_eq!(own.effective().idle_since, None);

    own.set(Status::Busy, None, at(300)).unwrap();
    assert!(
        !own.on_idle(Duration::from_secs(600), at(900)),
        "busy stays"
    );
    assert_eq!(own.effective().status, Status::Busy);
}

#[test]
fn a_call_shows_busy_on_the_phone_and_restores_without_history() {
    let mut own = OwnPresence::new(None, DEFAULT_IDLE_THRESHOLD, at(0));
    own.set(Status::Away, Some("Lunch".into()), at(0)).unwrap();
    assert!(own.set_in_call(true, at(1)));
    let busy = own.effective();
    assert_eq!(
        (busy.status, busy.note.as_deref()),
        (Status::Busy, Some(ON_THE_PHONE))
    );
    assert!(!own.set_in_call(true, at(2)));
    assert!(own.set_in_call(false, at(3)));
    let after = own.effective();
    assert_eq!(
        (after.status, after.note.as_deref()),
        (Status::Away, Some("Lunch"))
    );
    assert!(own
        .history()
        .all(|c| c.note.as_deref() != Some(ON_THE_PHONE)));

    own.set(Status::Invisible, None, at(4)).unwrap();
    assert!(
        !own.set_in_call(true, at(5)),
        "invisible is not changed by calls"
    );
    assert_eq!(own.effective().status, Status::Invisible);
}

#[test]
fn history_keeps_the_last_seven_notes_newest_first_without_duplicates() {
    let mut own = OwnPresence::new(None, DEFAULT_IDLE_THRESHOLD, at(0));
    for i in 0..9 {
        own.set(Status::Available, Some(format!("note {i}")), at(i))
            .unwrap();
    }
    own.set(Status::Busy, None, at(10)).unwrap();
    own.set(Status::Available, Some("note 4".into()), at(11))
        .unwrap();
    let notes: Vec<_> = own.history().map(|c| c.note.clone().unwrap()).collect();
    assert_eq!(
        notes,
        ["note 4", "note 8", "note 7", "note 6", "note 5", "note 3", "note 2"]
    );
    let saved = own.saved();
    let restored = OwnPresence::new(Some(saved), DEFAULT_IDLE_THRESHOLD, at(20));
    assert_eq!(restored.history().count(), HISTORY_LEN);
    assert_eq!(restored.chosen().note.as_deref(), Some("note 4"));
    assert_eq!(
        own.set(
            Status::Available,
            Some("x".repeat(MAX_NOTE_BYTES + 1)),
            at(30)
        ),
        Err(PresenceError::NoteTooLong)
    );
    assert_eq!(
        own.set(Status::Available, Some("a\u{7}b".into()), at(30)),
        Err(PresenceError::NoteControl)
    );
}

#[test]
fn self_sync_adopts_the_newest_tuple_of_another_device_only() {
    let me = publisher();
    let mut other = publisher();
    other.device.instance_uuid = "11111111-2222-4333-8444-555555555555".into();
    let mut theirs = OwnPresence::new(None, DEFAULT_IDLE_THRESHOLD, at(0));
    theirs
        .set(Status::Busy, Some("Deadline".into()), at(100))
        .unwrap();
    let doc = PresenceDocument::parse(&other.document(&theirs.effective(), None)).unwrap();
    let choice = remote_choice(&doc, &me.own_tuple_ids(), at(0)).unwrap();
    assert_eq!(choice.status, Status::Busy);
    assert_eq!(choice.note.as_deref(), Some("Deadline"));
    assert_eq!(
        remote_choice(&doc, &other.own_tuple_ids(), at(0)),
        None,
        "our own"
    );

    let mut own = OwnPresence::new(None, DEFAULT_IDLE_THRESHOLD, at(0));
    assert!(own.adopt_remote(choice.clone(), at(101)));
    assert_eq!(own.effective().status, Status::Busy);
    assert_eq!(own.history().next(), Some(&choice));
    assert!(
        !own.adopt_remote(choice, at(102)),
        "no change, no republish"
    );

    theirs.set(Status::Invisible, None, at(200)).unwrap();
    let doc = PresenceDocument::parse(&other.document(&theirs.effective(), None)).unwrap();
    // The invisible tuple id is shared by every device of the account: it counts as ours.
    assert_eq!(remote_choice(&doc, &me.own_tuple_ids(), at(0)), None);
}

#[test]
fn self_sync_ignores_another_devices_state_older_than_our_own_change() {
    let me = publisher();
    let mut other = publisher();
    other.device.instance_uuid = "11111111-2222-4333-8444-555555555555".into();
    let mut theirs = OwnPresence::new(None, DEFAULT_IDLE_THRESHOLD, at(0));
    theirs.set(Status::Away, None, at(100)).unwrap();
    let doc = PresenceDocument::parse(&other.document(&theirs.effective(), None)).unwrap();

    // We chose Busy after their Away was published: a NOTIFY composed before our PUBLISH
    // arrived must not take our choice back.
    let mut own = OwnPresence::new(None, DEFAULT_IDLE_THRESHOLD, at(0));
    own.set(Status::Busy, None, at(150)).unwrap();
    let changed_at = own.effective().changed_at;
    assert_eq!(remote_choice(&doc, &me.own_tuple_ids(), changed_at), None);
    // The same document is news to a device whose last change is older.
    let choice = remote_choice(&doc, &me.own_tuple_ids(), at(99)).unwrap();
    assert_eq!(choice.status, Status::Away);
}
