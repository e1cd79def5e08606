//! `multipart/related` bodies (RFC 2387, with the RFC 2046 §5.1.1 boundary syntax), as resource
//! list NOTIFYs carry them (RFC 4662 §5.1): a root part named by `start`, here the RLMI
//! document, followed by one part per resource state, each with a `Content-ID` (RFC 2392).
//!
//! Parts travel unencoded (`Content-Transfer-Encoding: binary`): SIP is 8-bit clean and Blink
//! decodes no transfer encoding (blink-compat §4.2). Line ends between parts are CRLF.

use std::fmt::Write as _;

/// Most parts [`Related::parse`] accepts.
pub const MAX_PARTS: usize = 20_000;
/// Largest header block of one part.
const MAX_PART_HEADER_BYTES: usize = 4096;
/// Longest boundary RFC 2046 allows.
const MAX_BOUNDARY_LEN: usize = 70;

/// One body part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Full Content-Type value of the part.
    pub content_type: String,
    /// Content-ID without the angle brackets, e.g. `bob-9@rls.example.com`.
    pub content_id: String,
    pub body: Vec<u8>,
}

/// A `multipart/related` body: the root part's type and Content-ID, and every part in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Related {
    /// The `type` parameter: the root part's media type.
    pub root_type: String,
    /// Content-ID of the root part (without brackets); absent means the first part.
    pub start: Option<String>,
    pub parts: Vec<Part>,
}

/// Why a body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MultipartError {
    #[error("the content type is not multipart/related")]
    NotRelated,
    #[error("the content type has no usable boundary parameter")]
    NoBoundary,
    #[error("the content type has no type parameter")]
    NoType,
    #[error("no delimiter line opens the first part")]
    NoFirstPart,
    #[error("part {0} is not closed by a delimiter")]
    Unterminated(usize),
    #[error("part {0} has a malformed header block")]
    BadPartHeaders(usize),
    #[error("part {0} uses the transfer encoding {1}, which is not supported")]
    TransferEncoding(usize, String),
    #[error("more than {MAX_PARTS} parts")]
    TooManyParts,
    #[error("the start parameter names no part")]
    NoRoot,
}

impl Related {
    /// A body with `parts[0]` as root: its type becomes `type`, its Content-ID `start`.
    pub fn with_root_first(parts: Vec<Part>) -> Related {
        Related {
            root_type: parts
                .first()
                .map(|p| media_type(&p.content_type).to_owned())
                .unwrap_or_default(),
            start: parts.first().map(|p| p.content_id.clone()),
            parts,
        }
    }

    /// The root part: the one `start` names, else the first (RFC 2387 §3.2).
    pub fn root(&self) -> Option<&Part> {
        match &self.start {
            Some(cid) => self.part(cid),
            None => self.parts.first(),
        }
    }

    /// The part with this Content-ID (given without brackets).
    pub fn part(&self, content_id: &str) -> Option<&Part> {
        self.parts.iter().find(|p| p.content_id == content_id)
    }

    /// Serialises the body and returns `(Content-Type value, body)`. The boundary is
    /// `seed` made unique: a candidate that occurs inside any part is replaced by the next
    /// one, so no part can contain a delimiter line.
    pub fn to_bytes(&self, seed: &str) -> (String, Vec<u8>) {
        let boundary = unique_boundary(seed, &self.parts);
        let mut content_type = String::with_capacity(96);
        let _ = write!(
            content_type,
            "multipart/related;type=\"{}\"",
            quoted_safe(&self.root_type)
        );
        if let Some(start) = &self.start {
            let _ = write!(content_type, ";start=\"<{}>\"", quoted_safe(start));
        }
        let _ = write!(content_type, ";boundary=\"{boundary}\"");
        let size: usize = self.parts.iter().map(|p| p.body.len() + 160).sum();
        let mut out = Vec::with_capacity(size + boundary.len() + 8);
        for part in &self.parts {
            out.extend_from_slice(b"--");
            out.extend_from_slice(boundary.as_bytes());
            out.extend_from_slice(b"\r\nContent-Type: ");
            out.extend_from_slice(header_safe(&part.content_type).as_bytes());
            out.extend_from_slice(b"\r\nContent-ID: <");
            out.extend_from_slice(header_safe(&part.content_id).as_bytes());
            out.extend_from_slice(b">\r\nContent-Transfer-Encoding: binary\r\n\r\n");
            out.extend_from_slice(&part.body);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"--");
        out.extend_from_slice(boundary.as_bytes());
        out.extend_from_slice(b"--\r\n");
        (content_type, out)
    }

    /// Reads a body given its Content-Type value. Part bodies are taken verbatim;
    /// `Content-ID` angle brackets are removed; a `start` that names no part is an error.
    pub fn parse(content_type: &str, body: &[u8]) -> Result<Related, MultipartError> {
        let (media, params) = split_parameters(content_type);
        if !media.eq_ignore_ascii_case("multipart/related") {
            return Err(MultipartError::NotRelated);
        }
        let param = |name: &str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let boundary = param("boundary")
            .filter(|b| !b.is_empty() && b.len() <= MAX_BOUNDARY_LEN)
            .ok_or(MultipartError::NoBoundary)?;
        let root_type = param("type").ok_or(MultipartError::NoType)?;
        let start = param("start").map(|s| strip_brackets(&s).to_owned());
        let opening = format!("--{boundary}");
        let delimiter = format!("\r\n--{boundary}");
        // The first delimiter may start the body or follow a preamble line.
        let mut rest = if body.starts_with(opening.as_bytes()) {
            &body[opening.len()..]
        } else {
            let at = find(body, delimiter.as_bytes()).ok_or(MultipartError::NoFirstPart)?;
            &body[at + delimiter.len()..]
        };
        let mut parts = Vec::new();
        loop {
            if rest.starts_with(b"--") {
                break;
            }
            let index = parts.len();
            if index >= MAX_PARTS {
                return Err(MultipartError::TooManyParts);
            }
            // Transport padding (RFC 2046 §5.1.1) then the CRLF ending the delimiter line.
            let line_end = find(rest, b"\r\n").ok_or(MultipartError::Unterminated(index))?;
            if rest[..line_end].iter().any(|b| !matches!(b, b' ' | b'\t')) {
                return Err(MultipartError::BadPartHeaders(index));
            }
            rest = &rest[line_end + 2..];
            let end =
                find(rest, delimiter.as_bytes()).ok_or(MultipartError::Unterminated(index))?;
            parts.push(read_part(index, &rest[..end])?);
            rest = &rest[end + delimiter.len()..];
        }
        let related = Related {
            root_type,
            start,
            parts,
        };
        if related.root().is_none() {
            return Err(MultipartError::NoRoot);
        }
        Ok(related)
    }
}

fn read_part(index: usize, raw: &[u8]) -> Result<Part, MultipartError> {
    let bad = || MultipartError::BadPartHeaders(index);
    let (head, body) = if raw.starts_with(b"\r\n") {
        (&raw[..0], &raw[2..])
    } else {
        let split = find(raw, b"\r\n\r\n").ok_or_else(bad)?;
        (&raw[..split], &raw[split + 4..])
    };
    if head.len() > MAX_PART_HEADER_BYTES {
        return Err(bad());
    }
    let head = std::str::from_utf8(head).map_err(|_| bad())?;
    let mut content_type = "text/plain".to_owned();
    let mut content_id = String::new();
    let mut lines: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        // Folded continuation lines belong to the header before them.
        match (line.starts_with([' ', '\t']), lines.last_mut()) {
            (true, Some(last)) => last.push_str(line),
            (true, None) => return Err(bad()),
            (false, _) => lines.push(line.to_owned()),
        }
    }
    for line in &lines {
        let (name, value) = line.split_once(':').ok_or_else(bad)?;
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-type" => value.clone_into(&mut content_type),
            "content-id" => strip_brackets(value).clone_into(&mut content_id),
            "content-transfer-encoding"
                if !["binary", "8bit", "7bit"]
                    .iter()
                    .any(|e| value.eq_ignore_ascii_case(e)) =>
            {
                return Err(MultipartError::TransferEncoding(index, value.to_owned()));
            }
            _ => {}
        }
    }
    Ok(Part {
        content_type,
        content_id,
        body: body.to_vec(),
    })
}

/// The media type of a Content-Type value, without parameters.
fn media_type(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or_default().trim()
}

/// Splits `type/subtype;name=value;name="quoted value"` into the media type and parameters.
fn split_parameters(content_type: &str) -> (&str, Vec<(String, String)>) {
    let media = media_type(content_type);
    let mut params = Vec::new();
    let mut rest = content_type.find(';').map_or("", |at| &content_type[at..]);
    while let Some(after) = rest.strip_prefix(';') {
        let Some((name, value)) = after.split_once('=') else {
            break;
        };
        let value = value.trim_start();
        let (value, tail) = match value.strip_prefix('"') {
            Some(quoted) => {
                let mut text = String::new();
                let mut chars = quoted.char_indices();
                let mut end = quoted.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, escaped)) = chars.next() {
                                text.push(escaped);
                            }
                        }
                        '"' => {
                            end = i + 1;
                            break;
                        }
                        _ => text.push(c),
                    }
                }
                (text, &quoted[end.min(quoted.len())..])
            }
            None => {
                let end = value.find(';').unwrap_or(value.len());
                (value[..end].trim().to_owned(), &value[end..])
            }
        };
        params.push((name.trim().to_owned(), value));
        rest = tail.trim_start();
    }
    (media, params)
}

fn strip_brackets(value: &str) -> &str {
    let value = value.trim();
    value
        .strip_prefix('<')
        .and_then(|v| v.strip_suffix('>'))
        .unwrap_or(value)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Header values we write must stay on one line.
fn header_safe(value: &str) -> String {
    value.replace(['\r', '\n'], " ")
}

/// Values written inside a quoted parameter: no quote, backslash or line break.
fn quoted_safe(value: &str) -> String {
    value.replace(['"', '\\', '\r', '\n'], "")
}

/// `seed` reduced to boundary characters (RFC 2046 `bchars` without space), then suffixed
/// with a counter until no part contains `--boundary`.
fn unique_boundary(seed: &str, parts: &[Part]) -> String {
    let base: String = seed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "'()+_,-./:=?".contains(*c))
        .take(MAX_BOUNDARY_LEN - 12)
        .collect();
    let base = if base.is_empty() { "=_part" } else { &base };
    let mut candidate = base.to_owned();
    let mut counter = 0u32;
    loop {
        let marker = format!("--{candidate}");
        if !parts
            .iter()
            .any(|p| find(&p.body, marker.as_bytes()).is_some())
        {
            return candidate;
        }
        counter += 1;
        candidate = format!("{base}.{counter}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn part(content_type: &str, cid: &str, body: &str) -> Part {
        Part {
            content_type: content_type.into(),
            content_id: cid.into(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn writes_rfc_4662_headers_and_crlf_lines() {
        let related = Related::with_root_first(vec![
            part("application/rlmi+xml", "list-7@rls", "<list/>"),
            part("application/pidf+xml", "bob-9@rls", "<presence/>"),
        ]);
        let (content_type, body) = related.to_bytes("b42");
        assert_eq!(
            content_type,
            "multipart/related;type=\"application/rlmi+xml\";start=\"<list-7@rls>\";boundary=\"b42\""
        );
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "--b42\r\nContent-Type: application/rlmi+xml\r\nContent-ID: <list-7@rls>\r\n\
             Content-Transfer-Encoding: binary\r\n\r\n<list/>\r\n\
             --b42\r\nContent-Type: application/pidf+xml\r\nContent-ID: <bob-9@rls>\r\n\
             Content-Transfer-Encoding: binary\r\n\r\n<presence/>\r\n--b42--\r\n"
        );
    }

    #[test]
    fn the_boundary_never_occurs_in_a_part() {
        let related = Related::with_root_first(vec![
            part("text/plain", "a", "x\r\n--b42\r\ny --b42.1"),
            part("text/plain", "b", "--b42.2"),
        ]);
        let (content_type, body) = related.to_bytes("b42");
        assert!(
            content_type.ends_with("boundary=\"b42.3\""),
            "{content_type}"
        );
        assert_eq!(Related::parse(&content_type, &body), Ok(related));
    }

    #[test]
    fn parses_the_blink_compat_example() {
        let content_type = "multipart/related;type=\"application/rlmi+xml\";start=\"<list-7@rls.example.com>\";boundary=\"b42\"";
        let body = "preamble\r\n--b42\r\nContent-Type: application/rlmi+xml\r\nContent-ID: <list-7@rls.example.com>\r\n\r\n<list/>\r\n\
                    --b42 \r\ncontent-type: application/pidf+xml\r\nContent-ID:\r\n <bob-9@rls.example.com>\r\n\r\n<presence/>\r\n--b42--\r\nepilogue";
        let related = Related::parse(content_type, body.as_bytes()).unwrap();
        assert_eq!(related.root().unwrap().body, b"<list/>");
        let bob = related.part("bob-9@rls.example.com").unwrap();
        assert_eq!(
            (bob.content_type.as_str(), bob.body.as_slice()),
            ("application/pidf+xml", b"<presence/>".as_slice())
        );
    }

    #[test]
    fn rejects_bad_bodies_precisely() {
        let ct = " Multipart/Related ; type=\"a/b\"; boundary=x";
        let cases: [(&str, &[u8], MultipartError); 7] = [
            ("application/pidf+xml", b"", MultipartError::NotRelated),
            (
                "multipart/related;type=\"a/b\"",
                b"",
                MultipartError::NoBoundary,
            ),
            ("multipart/related;boundary=x", b"", MultipartError::NoType),
            (ct, b"nothing", MultipartError::NoFirstPart),
            (ct, b"--x\r\n\r\nbody", MultipartError::Unterminated(0)),
            (
                ct,
                b"--x\r\nContent-Transfer-Encoding: base64\r\n\r\nQQ==\r\n--x--",
                MultipartError::TransferEncoding(0, "base64".into()),
            ),
            (
                "multipart/related;type=\"a/b\";start=\"<z>\";boundary=x",
                b"--x\r\nContent-ID: <y>\r\n\r\nb\r\n--x--",
                MultipartError::NoRoot,
            ),
        ];
        for (content_type, body, expected) in cases {
            assert_eq!(Related::parse(content_type, body), Err(expected));
        }
    }

    proptest! {
        #[test]
        fn round_trips(bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..5),
                       seed in "[a-z0-9]{0,6}") {
            let parts: Vec<Part> = bodies
                .into_iter()
                .enumerate()
                .map(|(i, body)| Part {
                    content_type: "application/pidf+xml".into(),
                    content_id: format!("p{i}@rls"),
                    body,
                })
                .collect();
            let related = Related::with_root_first(parts);
            let (content_type, body) = related.to_bytes(&seed);
            prop_assert_eq!(Related::parse(&content_type, &body), Ok(related));
        }

        #[test]
        fn boundary_resists_bodies_made_of_it(repeats in 1usize..6) {
            let body = "\r\n--b".repeat(repeats) + &(1..repeats).map(|i| format!("--b.{i}")).collect::<String>();
            let related = Related::with_root_first(vec![part("text/plain", "a", &body)]);
            let (content_type, bytes) = related.to_bytes("b");
            prop_assert_eq!(Related::parse(&content_type, &bytes), Ok(related));
        }

        #[test]
        fn parse_never_panics(content_type in "\\PC{0,40}", body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Related::parse(&content_type, &body);
        }
    }
}
