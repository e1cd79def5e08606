//! The user's own presence (blink-compat §3.2, §3.3, §5.4): the PIDF Blink publishes for
//! Available, Away and Busy, the closed/offline document for Invisible, and the state machine
//! behind them: auto-away after idle time (Cocoa), Busy with "On the phone" during a call (Qt)
//! restored afterwards, self-presence sync from the user's other devices (§4.3) and the history
//! of the last 7 (state, note) choices.
//!
//! Everything here is sans-IO: times are passed in, documents come out as text.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use md5::{Digest as _, Md5};
use serde::{Deserialize, Serialize};
use simple_payloads::encode_any_uri;

use crate::content::PIDF_STYLE;
use crate::ns::{AGP_CAPS, AGP_PIDF, CAPS, CIPID, DM, PIDF, RPID};
use crate::pidf_view::{ExtendedStatus, PresenceDocument};
use crate::xml::{Document, Element};

/// History entries kept (Qt's state menu, §5.4).
pub const HISTORY_LEN: usize = 7;
/// Notes longer than this are refused.
pub const MAX_NOTE_BYTES: usize = 1024;
/// The internal note of Busy during a call (Qt's wording, §5.4).
pub const ON_THE_PHONE: &str = "On the phone";
/// Blink's default idle threshold (`gui.idle_threshold`, §5.4).
pub const DEFAULT_IDLE_THRESHOLD: Duration = Duration::from_secs(600);

/// A state the user can choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Available,
    Away,
    Busy,
    Invisible,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Available => "available",
            Status::Away => "away",
            Status::Busy => "busy",
            Status::Invisible => "invisible",
        }
    }

    pub fn parse(word: &str) -> Option<Status> {
        match word {
            "available" => Some(Status::Available),
            "away" => Some(Status::Away),
            "busy" => Some(Status::Busy),
            "invisible" => Some(Status::Invisible),
            _ => None,
        }
    }
}

/// A state with its note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    pub status: Status,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresenceError {
    #[error("note longer than {MAX_NOTE_BYTES} bytes")]
    NoteTooLong,
    #[error("note contains control characters")]
    NoteControl,
}

fn check_note(note: &str) -> Result<(), PresenceError> {
    if note.len() > MAX_NOTE_BYTES {
        return Err(PresenceError::NoteTooLong);
    }
    if note.chars().any(|c| c.is_control()) {
        return Err(PresenceError::NoteControl);
    }
    Ok(())
}

/// What goes into the published document, after auto-away and calls are accounted for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    pub status: Status,
    pub note: Option<String>,
    /// `Some(last input)` while idle (`user-input=idle`), else active.
    pub idle_since: Option<SystemTime>,
    /// When the user (or a sync) last changed the state; the documents' timestamp (Cocoa).
    pub changed_at: SystemTime,
    pub idle_threshold: Duration,
}

/// The persisted part of [`OwnPresence`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedPresence {
    pub chosen: Choice,
    #[serde(default)]
    pub history: VecDeque<Choice>,
}

/// The user's own state machine.
#[derive(Debug, Clone)]
pub struct OwnPresence {
    chosen: Choice,
    /// The choice auto-away replaced, restored on activity.
    before_away: Option<Choice>,
    idle_since: Option<SystemTime>,
    in_call: bool,
    history: VecDeque<Choice>,
    changed_at: SystemTime,
    idle_threshold: Duration,
}

impl OwnPresence {
    pub fn new(saved: Option<SavedPresence>, idle_threshold: Duration, now: SystemTime) -> Self {
        let saved = saved.unwrap_or(SavedPresence {
            chosen: Choice {
                status: Status::Available,
                note: None,
            },
            history: VecDeque::new(),
        });
        OwnPresence {
            chosen: saved.chosen,
            before_away: None,
            idle_since: None,
            in_call: false,
            history: saved.history,
            changed_at: now,
            idle_threshold,
        }
    }

    pub fn saved(&self) -> SavedPresence {
        SavedPresence {
            chosen: self.before_away.clone().unwrap_or(self.chosen.clone()),
            history: self.history.clone(),
        }
    }

    pub fn history(&self) -> impl Iterator<Item = &Choice> {
        self.history.iter()
    }

    pub fn idle_threshold(&self) -> Duration {
        self.idle_threshold
    }

    pub fn in_call(&self) -> bool {
        self.in_call
    }

    /// The user picks a state and note. Invisible carries no note (Qt disables it).
    pub fn set(
        &mut self,
        status: Status,
        note: Option<String>,
        now: SystemTime,
    ) -> Result<bool, PresenceError> {
        let note = note.filter(|n| !n.trim().is_empty() && status != Status::Invisible);
        if let Some(note) = &note {
            check_note(note)?;
        }
        let choice = Choice { status, note };
        self.before_away = None;
        self.idle_since = None;
        Ok(self.adopt(choice, now))
    }

    fn adopt(&mut self, choice: Choice, now: SystemTime) -> bool {
        if choice.note.is_some() {
            self.history.retain(|c| c != &choice);
            self.history.push_front(choice.clone());
            self.history.truncate(HISTORY_LEN);
        }
        if choice == self.chosen {
            return false;
        }
        self.chosen = choice;
        self.changed_at = now;
        true
    }

    /// The system reports `idle` time without input (Cocoa's 1 s timer). Over the threshold,
    /// Available or Away switches to Away with `user-input=idle`; input restores the previous
    /// choice. Busy and Invisible never change automatically. Returns whether to republish.
    pub fn on_idle(&mut self, idle: Duration, now: SystemTime) -> bool {
        let idle_now = idle >= self.idle_threshold;
        match (idle_now, self.before_away.is_some()) {
            (true, false) => {
                if !matches!(self.chosen.status, Status::Available | Status::Away) {
                    return false;
                }
                self.before_away = Some(self.chosen.clone());
                self.idle_since = Some(now.checked_sub(idle).unwrap_or(now));
                self.chosen = Choice {
                    status: Status::Away,
                    note: self.chosen.note.clone(),
                };
                self.changed_at = now;
                true
            }
            (false, true) => {
                self.chosen = self.before_away.take().unwrap_or(self.chosen.clone());
                self.idle_since = None;
                self.changed_at = now;
                true
            }
            _ => false,
        }
    }

    /// A call started or ended (an API call marks it). Returns whether to republish.
    pub fn set_in_call(&mut self, active: bool, now: SystemTime) -> bool {
        if self.in_call == active {
            return false;
        }
        self.in_call = active;
        if self.chosen.status == Status::Invisible {
            return false;
        }
        self.changed_at = now;
        true
    }

    /// Another device of the user published `choice` (§4.3); during auto-away it becomes the
    /// state to restore.
    pub fn adopt_remote(&mut self, choice: Choice, now: SystemTime) -> bool {
        if let Some(before) = &mut self.before_away {
            *before = choice.clone();
            if choice.note.is_some() {
                self.history.retain(|c| c != &choice);
                self.history.push_front(choice);
                self.history.truncate(HISTORY_LEN);
            }
            return false;
        }
        self.adopt(choice, now)
    }

    pub fn effective(&self) -> Effective {
        let (status, note) = if self.in_call && self.chosen.status != Status::Invisible {
            (Status::Busy, Some(ON_THE_PHONE.to_owned()))
        } else {
            (self.chosen.status, self.chosen.note.clone())
        };
        Effective {
            status,
            note,
            idle_since: self.idle_since,
            changed_at: self.changed_at,
            idle_threshold: self.idle_threshold,
        }
    }

    /// The choice as the user last made it (auto-away and calls not applied).
    pub fn chosen(&self) -> &Choice {
        self.before_away.as_ref().unwrap_or(&self.chosen)
    }
}

/// Media capabilities advertised in `caps:servcaps` (RFC 5196 plus AG Projects' extensions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Capabilities {
    pub audio: bool,
    pub message: bool,
    pub text: bool,
    pub file_transfer: bool,
    pub screen_sharing_server: bool,
    pub screen_sharing_client: bool,
}

impl Capabilities {
    /// What Blink Qt advertises (§3.2).
    pub const BLINK_QT: Capabilities = Capabilities {
        audio: true,
        message: true,
        text: false,
        file_transfer: true,
        screen_sharing_server: true,
        screen_sharing_client: true,
    };

    fn element(&self) -> Element {
        let flag = |ns: &str, name: &str, value: bool| {
            Element::new(ns, name).with_text(if value { "true" } else { "false" })
        };
        // RFC 5196's servcaps is a sequence in alphabetical order, extensions last.
        Element::new(CAPS, "servcaps")
            .with_child(flag(CAPS, "audio", self.audio))
            .with_child(flag(CAPS, "message", self.message))
            .with_child(flag(CAPS, "text", self.text))
            .with_child(flag(AGP_CAPS, "file-transfer", self.file_transfer))
            .with_child(flag(
                AGP_CAPS,
                "screen-sharing-server",
                self.screen_sharing_server,
            ))
            .with_child(flag(
                AGP_CAPS,
                "screen-sharing-client",
                self.screen_sharing_client,
            ))
    }
}

/// The publishing device: one installation with its instance id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceDescription {
    /// Canonical UUID (no `urn:uuid:`), the base of the tuple and device ids.
    pub instance_uuid: String,
    pub hostname: String,
    pub user_agent: String,
    /// Minutes east of UTC.
    pub time_offset_minutes: i32,
}

/// Per-account facts of the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publisher {
    /// `user@domain`.
    pub address: String,
    pub display_name: Option<String>,
    pub device: DeviceDescription,
    pub capabilities: Capabilities,
    /// The status icon URL with its `#blink-icon<token>` fragment, when an icon is set.
    pub icon_url: Option<String>,
    pub homepage: Option<String>,
    /// "Country" or "Country/City".
    pub map: Option<String>,
}

impl Publisher {
    fn aor(&self) -> String {
        format!("sip:{}", self.address)
    }

    /// `md5hex(user@domain)`, the person id and the Invisible tuple id base.
    pub fn account_hash(&self) -> String {
        account_hash(&self.address)
    }

    /// The ids the device publishes under: `SID-<uuid>` and `SID-<md5>` (Invisible).
    pub fn own_tuple_ids(&self) -> [String; 2] {
        [
            format!("SID-{}", self.device.instance_uuid),
            format!("SID-{}", self.account_hash()),
        ]
    }

    /// The document for `state`: §3.2 for Available, Away, Busy; §3.3 (Qt) for Invisible.
    /// `contact` is the public GRUU when the registrar gave one.
    pub fn document(&self, state: &Effective, contact: Option<&str>) -> String {
        let timestamp = format_timestamp(state.changed_at);
        let aor = self.aor();
        let root = Element::new(PIDF, "presence").with_attr("entity", &encode_any_uri(&aor));
        let root = if state.status == Status::Invisible {
            self.invisible(root, &aor, &timestamp)
        } else {
            self.visible(root, state, contact.unwrap_or(&aor), &timestamp)
        };
        Document::new(root).serialize(&PIDF_STYLE)
    }

    fn cipid(&self, mut tuple: Element) -> Element {
        if let Some(name) = &self.display_name {
            tuple.push(Element::new(CIPID, "display-name").with_text(name));
        }
        if let Some(icon) = &self.icon_url {
            tuple.push(Element::new(CIPID, "icon").with_text(&encode_any_uri(icon)));
        }
        tuple
    }

    fn visible(&self, root: Element, state: &Effective, contact: &str, timestamp: &str) -> Element {
        let device = &self.device;
        let extended = match state.status {
            Status::Available => "available",
            Status::Away => "away",
            _ => "busy",
        };
        let mut tuple = Element::new(PIDF, "tuple")
            .with_attr("id", &format!("SID-{}", device.instance_uuid))
            .with_child(
                Element::new(PIDF, "status")
                    .with_child(Element::new(PIDF, "basic").with_text("open"))
                    .with_child(Element::new(AGP_PIDF, "extended").with_text(extended)),
            )
            .with_child(self.capabilities.element());
        tuple = self.cipid(tuple);
        if let Some(homepage) = &self.homepage {
            tuple.push(Element::new(CIPID, "homepage").with_text(&encode_any_uri(homepage)));
        }
        if let Some(map) = &self.map {
            tuple.push(Element::new(CIPID, "map").with_text(&encode_any_uri(map)));
        }
        tuple.push(
            Element::new(AGP_PIDF, "device-info")
                .with_attr("id", &device.instance_uuid)
                .with_child(Element::new(AGP_PIDF, "description").with_text(&device.hostname))
                .with_child(Element::new(AGP_PIDF, "user-agent").with_text(&device.user_agent))
                .with_child(
                    Element::new(AGP_PIDF, "time-offset")
                        .with_text(&format!("{:.1}", f64::from(device.time_offset_minutes))),
                ),
        );
        let mut user_input = Element::new(RPID, "user-input").with_attr(
            "idle-threshold",
            &state.idle_threshold.as_secs().to_string(),
        );
        match state.idle_since {
            Some(last) => {
                user_input.set_attr("last-input", &format_timestamp(last));
                user_input.set_text("idle");
            }
            None => user_input.set_text("active"),
        }
        tuple.push(user_input);
        tuple.push(Element::new(DM, "deviceID").with_text(&device.instance_uuid));
        tuple.push(Element::new(PIDF, "contact").with_text(&encode_any_uri(contact)));
        if let Some(note) = &state.note {
            tuple.push(Element::new(PIDF, "note").with_text(note));
        }
        tuple.push(Element::new(PIDF, "timestamp").with_text(timestamp));
        let activity = match state.status {
            Status::Available => Element::new(RPID, "other").with_text("available"),
            Status::Away => Element::new(RPID, "away"),
            _ => Element::new(RPID, "busy"),
        };
        let person = Element::new(DM, "person")
            .with_attr("id", &format!("PID-{}", self.account_hash()))
            .with_child(Element::new(RPID, "activities").with_child(activity))
            .with_child(Element::new(DM, "timestamp").with_text(timestamp));
        let device_element = Element::new(DM, "device")
            .with_attr("id", &format!("DID-{}", device.instance_uuid))
            .with_child(Element::new(DM, "deviceID").with_text(&device.instance_uuid))
            .with_child(
                Element::new(DM, "note")
                    .with_text(&format!("{} at {}", device.user_agent, device.hostname)),
            )
            .with_child(Element::new(DM, "timestamp").with_text(timestamp));
        root.with_child(tuple)
            .with_child(person)
            .with_child(device_element)
    }

    fn invisible(&self, root: Element, aor: &str, timestamp: &str) -> Element {
        let hash = self.account_hash();
        let mut tuple = Element::new(PIDF, "tuple")
            .with_attr("id", &format!("SID-{hash}"))
            .with_child(
                Element::new(PIDF, "status")
                    .with_child(Element::new(PIDF, "basic").with_text("closed"))
                    .with_child(Element::new(AGP_PIDF, "extended").with_text("offline")),
            )
            .with_child(Element::new(CAPS, "servcaps"));
        tuple = self.cipid(tuple);
        tuple.push(Element::new(PIDF, "contact").with_text(&encode_any_uri(aor)));
        tuple.push(Element::new(PIDF, "timestamp").with_text(timestamp));
        let person = Element::new(DM, "person")
            .with_attr("id", &format!("PID-{hash}"))
            .with_child(
                Element::new(RPID, "activities")
                    .with_child(Element::new(RPID, "other").with_text("offline")),
            )
            .with_child(Element::new(DM, "timestamp").with_text(timestamp));
        root.with_child(tuple).with_child(person)
    }
}

/// `md5hex(user@domain)`.
pub fn account_hash(address: &str) -> String {
    hex::encode(Md5::digest(address.as_bytes()))
}

/// Microseconds since the Unix epoch, the scale of [`crate::pidf_view::Tuple::timestamp_micros`].
fn unix_micros(at: SystemTime) -> i128 {
    time::OffsetDateTime::from(at).unix_timestamp_nanos() / 1000
}

/// RFC 3339 with microseconds, in UTC (`+00:00`): Blink writes local time with its offset,
/// which is the same instant.
pub fn format_timestamp(at: SystemTime) -> String {
    let t = time::OffsetDateTime::from(at);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}+00:00",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// What another device of the user published, if the newest tuple with `extended` is not
/// ours and is newer than our own last change, `own_changed_at` (§4.3, as Cocoa compares):
/// its state and first note; `offline` becomes Invisible without a note.
///
/// The time check matters because a NOTIFY can be older than the user's latest choice: one
/// composed before our PUBLISH of that choice reached the server still shows our previous
/// tuple, and another device's older tuple as the newest; adopting it would undo the choice.
pub fn remote_choice(
    document: &PresenceDocument,
    own_tuple_ids: &[String],
    own_changed_at: SystemTime,
) -> Option<Choice> {
    let newest = document
        .tuples
        .iter()
        .filter(|t| t.extended.is_some())
        .max_by_key(|t| t.timestamp_micros())?;
    if own_tuple_ids.iter().any(|id| id == &newest.id)
        || newest.timestamp_micros() <= unix_micros(own_changed_at)
    {
        return None;
    }
    let status = match newest.extended? {
        ExtendedStatus::Available => Status::Available,
        ExtendedStatus::Away => Status::Away,
        ExtendedStatus::Busy => Status::Busy,
        ExtendedStatus::Offline => Status::Invisible,
    };
    let note = (status != Status::Invisible)
        .then(|| newest.notes.first().cloned())
        .flatten();
    Some(Choice { status, note })
}

#[cfg(test)]
mod tests;
