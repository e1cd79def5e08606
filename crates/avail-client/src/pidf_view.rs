//! Reading the PIDF documents contacts publish (RFC 3863, RFC 4479 data model, RFC 4480 RPID,
//! RFC 4482 CIPID, RFC 5196 caps, AG Projects' extensions), as Blink does (blink-compat §0,
//! §3.2, §5.1, §5.5): the document is schema-checked and discarded whole when invalid, anyURI
//! values are percent-decoded once, only `available`, `away`, `busy` and `offline` count as
//! extended status, and a `time-offset` above 720 minutes wraps to negative (py3's bug).
//!
//! [`PresenceDocument`] is the "presence information" view of §5.5: every person, tuple and
//! device element this client understands, plus the names of the ones it does not.

use serde::Serialize;
use simple_payloads::{decode_any_uri, validate, Usage};
use time::format_description::well_known::Rfc3339;

use crate::ns::{AGP_CAPS, AGP_PIDF, CAPS, CIPID, DM, PIDF, RPID};
use crate::xml::{Document, Element};

/// Elements of one kind read from a document; more are ignored.
const MAX_ELEMENTS: usize = 256;

/// `agp-pidf:extended`, the state Blink shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExtendedStatus {
    Available,
    Away,
    Busy,
    Offline,
}

impl ExtendedStatus {
    fn parse(text: &str) -> Option<ExtendedStatus> {
        match text.trim() {
            "available" => Some(ExtendedStatus::Available),
            "away" => Some(ExtendedStatus::Away),
            "busy" => Some(ExtendedStatus::Busy),
            "offline" => Some(ExtendedStatus::Offline),
            _ => None,
        }
    }
}

/// `rpid:user-input`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserInput {
    pub idle: bool,
    pub last_input: Option<String>,
    pub idle_threshold: Option<u64>,
}

/// `agp-pidf:device-info`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceInfo {
    pub id: Option<String>,
    pub hostname: Option<String>,
    pub user_agent: Option<String>,
    /// Minutes east of UTC, wrapped into −720..=720.
    pub time_offset: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tuple {
    pub id: String,
    /// `Some(true)` for `basic=open`.
    pub open: Option<bool>,
    pub extended: Option<ExtendedStatus>,
    pub notes: Vec<String>,
    /// Percent-decoded.
    pub contact: Option<String>,
    pub timestamp: Option<String>,
    pub display_name: Option<String>,
    pub icon: Option<String>,
    pub homepage: Option<String>,
    pub map: Option<String>,
    pub device_id: Option<String>,
    pub device_info: Option<DeviceInfo>,
    pub user_input: Option<UserInput>,
    /// `caps:servcaps` flags that are `true`, by local name.
    pub capabilities: Vec<String>,
}

impl Tuple {
    /// Microseconds since the epoch; a missing or unreadable timestamp counts as the epoch.
    pub fn timestamp_micros(&self) -> i128 {
        self.timestamp.as_deref().map_or(0, timestamp_micros)
    }

    /// Blink Qt's rank: 100 with `extended`, 10 if open, else 0 (§5.1).
    fn rank(&self) -> u8 {
        if self.extended.is_some() {
            100
        } else if self.open == Some(true) {
            10
        } else {
            0
        }
    }

    /// `extended`, else available if open, offline if closed.
    pub fn state(&self) -> ExtendedStatus {
        self.extended.unwrap_or(if self.open == Some(true) {
            ExtendedStatus::Available
        } else {
            ExtendedStatus::Offline
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Person {
    pub id: String,
    pub activities: Vec<String>,
    pub notes: Vec<String>,
    pub timestamp: Option<String>,
    pub user_input: Option<UserInput>,
    pub icon: Option<String>,
    pub homepage: Option<String>,
    pub map: Option<String>,
    /// `rpid:time-offset` (Cocoa), minutes.
    pub time_offset: Option<i32>,
    /// Qualified names of other child elements (mood, place-is, ...).
    pub other: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Device {
    pub id: String,
    pub device_id: Option<String>,
    pub notes: Vec<String>,
    pub timestamp: Option<String>,
}

/// One contact's PIDF, decoded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PresenceDocument {
    /// Percent-decoded.
    pub entity: String,
    pub tuples: Vec<Tuple>,
    pub notes: Vec<String>,
    pub persons: Vec<Person>,
    pub devices: Vec<Device>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PidfReadError {
    #[error("invalid PIDF: {0}")]
    Invalid(String),
}

fn text_of(e: &Element, ns: &str, name: &str) -> Option<String> {
    e.child_text(ns, name).map(|t| t.trim().to_owned())
}

fn uri_of(e: &Element, ns: &str, name: &str) -> Option<String> {
    text_of(e, ns, name).map(|t| decode_any_uri(&t).into_owned())
}

fn texts(e: &Element, ns: &str, name: &str) -> Vec<String> {
    e.elements()
        .filter(|c| c.is(ns, name))
        .take(MAX_ELEMENTS)
        .map(|c| c.text().trim().to_owned())
        .collect()
}

fn user_input(e: &Element) -> Option<UserInput> {
    let input = e.child(RPID, "user-input")?;
    Some(UserInput {
        idle: input.text().trim() == "idle",
        last_input: input.attr("last-input").map(str::to_owned),
        idle_threshold: input.attr("idle-threshold").and_then(|v| v.parse().ok()),
    })
}

/// py3 sends `utcoffset.seconds / 60` as a float, so negative offsets arrive as 1440 − n.
fn time_offset(text: &str) -> Option<i32> {
    let minutes = text.trim().parse::<f64>().ok()?;
    if !minutes.is_finite() || !(-1440.0..=1440.0).contains(&minutes) {
        return None;
    }
    // In range, so the cast cannot truncate meaningfully.
    let minutes = minutes.round() as i32;
    Some(if minutes > 720 {
        minutes - 1440
    } else {
        minutes
    })
}

fn read_tuple(e: &Element) -> Tuple {
    let status = e.child(PIDF, "status");
    let device_info = e.child(AGP_PIDF, "device-info").map(|d| DeviceInfo {
        id: d.attr("id").map(str::to_owned),
        hostname: text_of(d, AGP_PIDF, "description"),
        user_agent: text_of(d, AGP_PIDF, "user-agent"),
        time_offset: d
            .child_text(AGP_PIDF, "time-offset")
            .and_then(|t| time_offset(&t)),
    });
    let capabilities = e
        .child(CAPS, "servcaps")
        .map(|caps| {
            caps.elements()
                .filter(|c| c.ns.as_deref() == Some(CAPS) || c.ns.as_deref() == Some(AGP_CAPS))
                .filter(|c| matches!(c.text().trim(), "true" | "True"))
                .take(MAX_ELEMENTS)
                .map(|c| c.name.clone())
                .collect()
        })
        .unwrap_or_default();
    Tuple {
        id: e.attr("id").unwrap_or_default().to_owned(),
        open: status
            .and_then(|s| text_of(s, PIDF, "basic"))
            .map(|b| b == "open"),
        extended: status
            .and_then(|s| s.child_text(AGP_PIDF, "extended"))
            .and_then(|t| ExtendedStatus::parse(&t)),
        notes: texts(e, PIDF, "note"),
        contact: uri_of(e, PIDF, "contact"),
        timestamp: text_of(e, PIDF, "timestamp"),
        display_name: text_of(e, CIPID, "display-name"),
        icon: uri_of(e, CIPID, "icon"),
        homepage: uri_of(e, CIPID, "homepage"),
        map: uri_of(e, CIPID, "map"),
        device_id: text_of(e, DM, "deviceID"),
        device_info,
        user_input: user_input(e),
        capabilities,
    }
}

fn read_person(e: &Element) -> Person {
    let known = |c: &Element| {
        c.is(RPID, "activities")
            || c.is(DM, "note")
            || c.is(DM, "timestamp")
            || c.is(RPID, "user-input")
            || c.is(CIPID, "icon")
            || c.is(CIPID, "homepage")
            || c.is(CIPID, "map")
            || c.is(RPID, "time-offset")
    };
    Person {
        id: e.attr("id").unwrap_or_default().to_owned(),
        activities: e
            .child(RPID, "activities")
            .map(|a| {
                a.elements()
                    .take(MAX_ELEMENTS)
                    .map(|act| match act.name.as_str() {
                        "other" => act.text().trim().to_owned(),
                        name => name.to_owned(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        notes: texts(e, DM, "note"),
        timestamp: text_of(e, DM, "timestamp"),
        user_input: user_input(e),
        icon: uri_of(e, CIPID, "icon"),
        homepage: uri_of(e, CIPID, "homepage"),
        map: uri_of(e, CIPID, "map"),
        time_offset: e
            .child_text(RPID, "time-offset")
            .and_then(|t| time_offset(&t)),
        other: e
            .elements()
            .filter(|c| !known(c))
            .take(MAX_ELEMENTS)
            .map(|c| format!("{{{}}}{}", c.ns.as_deref().unwrap_or_default(), c.name))
            .collect(),
    }
}

impl PresenceDocument {
    /// Validates and reads a PIDF document; an invalid one is refused whole (§0.3).
    pub fn parse(text: &str) -> Result<PresenceDocument, PidfReadError> {
        validate(Usage::PidfManipulation, text)
            .map_err(|e| PidfReadError::Invalid(e.to_string()))?;
        let doc = Document::parse(text, PIDF, "presence")
            .map_err(|e| PidfReadError::Invalid(e.to_string()))?;
        let root = &doc.root;
        let of = |ns: &'static str, name: &'static str| {
            root.elements()
                .filter(move |e| e.is(ns, name))
                .take(MAX_ELEMENTS)
        };
        Ok(PresenceDocument {
            entity: decode_any_uri(root.attr("entity").unwrap_or_default()).into_owned(),
            tuples: of(PIDF, "tuple").map(read_tuple).collect(),
            notes: texts(root, PIDF, "note"),
            persons: of(DM, "person").map(read_person).collect(),
            devices: of(DM, "device")
                .map(|d| Device {
                    id: d.attr("id").unwrap_or_default().to_owned(),
                    device_id: text_of(d, DM, "deviceID"),
                    notes: texts(d, DM, "note"),
                    timestamp: text_of(d, DM, "timestamp"),
                })
                .collect(),
        })
    }
}

/// Microseconds since the epoch of an RFC 3339 timestamp; unreadable → the epoch.
pub fn timestamp_micros(text: &str) -> i128 {
    time::OffsetDateTime::parse(text.trim(), &Rfc3339)
        .map(|t| t.unix_timestamp_nanos() / 1000)
        .unwrap_or(0)
}

/// Blink Qt's choice among every tuple of every document (§5.1): highest (rank, timestamp).
pub fn winning_tuple<'a>(
    documents: impl IntoIterator<Item = &'a PresenceDocument>,
) -> Option<&'a Tuple> {
    documents
        .into_iter()
        .flat_map(|d| d.tuples.iter())
        .max_by_key(|t| (t.rank(), t.timestamp_micros()))
}
