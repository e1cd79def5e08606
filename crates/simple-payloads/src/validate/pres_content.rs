//! Constraints on `org.openmobilealliance.pres-content` documents beyond the schema
//! (OMA Presence Content XDM §5.1.5, as Blink uses it: blink-compat §3.4): the content is an
//! image in JPEG, PNG or GIF, base64-encoded, of bounded size.

use roxmltree::{Document, Node};

use super::schemas::PRES_CONTENT;
use super::Constraints;

const IMAGE_TYPES: [&str; 3] = ["image/jpeg", "image/png", "image/gif"];

fn child_text<'a>(root: Node<'a, '_>, name: &str) -> Option<String> {
    let element = root.children().find(|c| {
        c.is_element()
            && c.tag_name().namespace() == Some(PRES_CONTENT)
            && c.tag_name().name() == name
    })?;
    Some(
        element
            .children()
            .filter(Node::is_text)
            .filter_map(|c| c.text())
            .collect(),
    )
}

/// Checks a schema-valid pres-content document.
pub(crate) fn check(doc: &Document, constraints: &Constraints) -> Result<(), String> {
    let root = doc.root_element();
    let mime_type = child_text(root, "mime-type").ok_or("<mime-type> is required")?;
    let mime_type = mime_type.trim();
    // MIME types are case-insensitive (RFC 2045 §5.1).
    if !IMAGE_TYPES
        .iter()
        .any(|t| t.eq_ignore_ascii_case(mime_type))
    {
        return Err(format!(
            "<mime-type> must be one of {}, not '{mime_type}'",
            IMAGE_TYPES.join(", ")
        ));
    }
    let encoding = child_text(root, "encoding").ok_or("<encoding> is required")?;
    if !encoding.trim().eq_ignore_ascii_case("base64") {
        return Err(format!(
            "<encoding> must be base64, not '{}'",
            encoding.trim()
        ));
    }
    // The schema requires <data>, so it is present here.
    let data = child_text(root, "data").unwrap_or_default();
    let length = base64_length(&data)?;
    if length == 0 {
        return Err("<data> is empty".to_owned());
    }
    if length > constraints.max_pres_content_data {
        return Err(format!(
            "<data> holds {length} base64 characters, more than the {} allowed",
            constraints.max_pres_content_data
        ));
    }
    Ok(())
}

/// Validates RFC 4648 §4 base64 with padding, ignoring XML whitespace (older clients wrap lines
/// at 76 columns); returns the number of base64 characters.
fn base64_length(data: &str) -> Result<usize, String> {
    let mut length = 0usize;
    let mut padding = 0usize;
    for b in data.bytes() {
        match b {
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            b'=' => padding += 1,
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' if padding == 0 => {}
            _ => {
                return Err(format!(
                    "<data> is not valid base64: unexpected byte 0x{b:02X}"
                ));
            }
        }
        length += 1;
    }
    if length % 4 != 0 || padding > 2 {
        return Err("<data> is not valid base64: wrong length or padding".to_owned());
    }
    Ok(length)
}
