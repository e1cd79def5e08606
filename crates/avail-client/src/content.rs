//! The status icon (`org.openmobilealliance.pres-content`, blink-compat §3.4) and the offline
//! note (`pidf-manipulation`, RFC 4827, blink-compat §3.3).
//!
//! Icons are `image/png`, `image/jpeg` or `image/gif` in base64 (whitespace tolerated on input,
//! one line on output); anything else fetched is deleted by normalisation. The offline document
//! is built like Blink Qt's: closed/offline tuple `SID-<md5(user@domain)>`, person
//! `PID-<md5(user@domain)>` with activity `other=offline`, and the note.

use base64::Engine as _;
use md5::{Digest as _, Md5};
use serde::{Deserialize, Serialize};
use simple_payloads::encode_any_uri;

use crate::account::Account;
use crate::ns::{AGP_CAPS, AGP_PIDF, CAPS, CIPID, DM, PIDF, PRES_CONTENT, RPID};
use crate::xml::{Document, Element, Style};

/// OpenXCAP's limit on the base64 text (blink-compat §3.4).
pub const MAX_ICON_BASE64: usize = 300 * 1024;
/// Offline notes longer than this are refused.
pub const MAX_NOTE_BYTES: usize = 4096;
const MIME_TYPES: [&str; 3] = ["image/png", "image/jpeg", "image/gif"];

const CONTENT_STYLE: Style = Style {
    fixed: &[(PRES_CONTENT, "", true)],
};
pub(crate) const PIDF_STYLE: Style = Style {
    fixed: &[
        (PIDF, "", true),
        (DM, "dm", true),
        (RPID, "rpid", true),
        (CIPID, "c", true),
        (CAPS, "caps", true),
        (AGP_CAPS, "agp-caps", true),
        (AGP_PIDF, "agp-pidf", true),
    ],
};

/// Why an icon or note was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    #[error("unsupported icon type {0} (image/png, image/jpeg or image/gif)")]
    MimeType(String),
    #[error("icon larger than {MAX_ICON_BASE64} bytes of base64")]
    IconTooLarge,
    #[error("offline note longer than {MAX_NOTE_BYTES} bytes")]
    NoteTooLong,
}

/// A status icon, kept as the base64 text it travels as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Icon {
    pub mime_type: String,
    pub base64: String,
}

impl Icon {
    pub fn new(mime_type: &str, bytes: &[u8]) -> Result<Icon, ContentError> {
        let icon = Icon {
            mime_type: mime_type.to_owned(),
            base64: base64::engine::general_purpose::STANDARD.encode(bytes),
        };
        icon.check()?;
        Ok(icon)
    }

    pub fn check(&self) -> Result<(), ContentError> {
        if !MIME_TYPES.contains(&self.mime_type.as_str()) {
            return Err(ContentError::MimeType(self.mime_type.clone()));
        }
        if self.base64.len() > MAX_ICON_BASE64 {
            return Err(ContentError::IconTooLarge);
        }
        Ok(())
    }

    pub fn bytes(&self) -> Option<Vec<u8>> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.base64)
            .ok()
    }

    /// Reads a pres-content document; `None` when Blink would delete it (wrong type or
    /// encoding, undecodable data, or not a pres-content document at all).
    pub fn parse(text: &str) -> Option<Icon> {
        let doc = Document::parse(text, PRES_CONTENT, "content").ok()?;
        let field = |name| doc.root.child_text(PRES_CONTENT, name);
        if field("encoding")?.trim() != "base64" {
            return None;
        }
        let base64: String = field("data")?
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let icon = Icon {
            mime_type: field("mime-type")?.trim().to_owned(),
            base64,
        };
        (icon.check().is_ok() && icon.bytes().is_some()).then_some(icon)
    }

    pub fn to_document(&self) -> String {
        Document::new(
            Element::new(PRES_CONTENT, "content")
                .with_child(Element::new(PRES_CONTENT, "mime-type").with_text(&self.mime_type))
                .with_child(Element::new(PRES_CONTENT, "encoding").with_text("base64"))
                .with_child(Element::new(PRES_CONTENT, "data").with_text(&self.base64)),
        )
        .serialize(&CONTENT_STYLE)
    }
}

pub fn check_note(note: &str) -> Result<(), ContentError> {
    if note.len() > MAX_NOTE_BYTES {
        return Err(ContentError::NoteTooLong);
    }
    Ok(())
}

/// The pidf-manipulation document carrying `note` while the user is offline.
pub fn offline_document(account: &Account, note: &str) -> String {
    let hash = hex::encode(Md5::digest(
        format!("{}@{}", account.user, account.domain).as_bytes(),
    ));
    let aor = encode_any_uri(&account.aor());
    let tuple = Element::new(PIDF, "tuple")
        .with_attr("id", &format!("SID-{hash}"))
        .with_child(
            Element::new(PIDF, "status")
                .with_child(Element::new(PIDF, "basic").with_text("closed"))
                .with_child(Element::new(AGP_PIDF, "extended").with_text("offline")),
        )
        .with_child(Element::new(CAPS, "servcaps"))
        .with_child(Element::new(PIDF, "contact").with_text(&aor))
        .with_child(Element::new(PIDF, "note").with_text(note));
    let person = Element::new(DM, "person")
        .with_attr("id", &format!("PID-{hash}"))
        .with_child(
            Element::new(RPID, "activities")
                .with_child(Element::new(RPID, "other").with_text("offline")),
        )
        .with_child(Element::new(DM, "note").with_text(note));
    Document::new(
        Element::new(PIDF, "presence")
            .with_attr("entity", &aor)
            .with_child(tuple)
            .with_child(person),
    )
    .serialize(&PIDF_STYLE)
}

/// The note of a pidf-manipulation document: the first person note, else the first tuple
/// note (Qt puts it in the tuple, Cocoa in both).
pub fn offline_note(text: &str) -> Option<String> {
    let doc = Document::parse(text, PIDF, "presence").ok()?;
    let person = doc
        .root
        .elements()
        .filter(|e| e.is(DM, "person"))
        .find_map(|p| p.child_text(DM, "note"));
    person.or_else(|| {
        doc.root
            .elements()
            .filter(|e| e.is(PIDF, "tuple"))
            .find_map(|t| t.child_text(PIDF, "note"))
    })
}
