//! One pass over a PIDF document that checks it is well-formed XML 1.0 with namespaces (XML 1.0
//! §2.2–2.8, §3.1, §4.1; Namespaces in XML 1.0 §3–§6; no DTD) and records only what
//! [`super::PidfDocument`] keeps: the root's name, `entity` and namespace declarations, and per
//! top-level element its name, span and `xs:ID` attributes.
//!
//! roxmltree, which did this before, builds the whole tree (nodes, attributes, namespace
//! tables, text) for a document read once: about 22,000 instructions for the 330-byte body of
//! a PUBLISH, a tenth of the server's work per NOTIFY at ten watchers per presentity. What this
//! reader accepts, rejects and records is tested against roxmltree (`tests.rs`), node limit
//! included. It follows roxmltree where that is lenient but the document still reads one way
//! (`xmlns:p=""`, a processing instruction named `xml`), and refuses what roxmltree accepts
//! although it is not well-formed: two default namespace declarations on one tag, `p:xmlns`
//! taken for a declaration, a name `:a` read as `a`, a reference in the XML declaration.

use std::borrow::Cow;
use std::collections::HashSet;
use std::ops::Range;

use memchr::{memchr, memchr2};

use super::{ElementKind, IdAttr, Item, PIDF_NS};

#[cfg(test)]
mod tests;

const XML_URI: &str = "http://www.w3.org/XML/1998/namespace";
const XMLNS_URI: &str = "http://www.w3.org/2000/xmlns/";

/// Why a document is not well-formed; the byte offset where reading stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct NotWellFormed {
    pub reason: &'static str,
    pub at: usize,
}

impl std::fmt::Display for NotWellFormed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.reason, self.at)
    }
}

/// An element's expanded name; `namespace` is `None` for no namespace (an empty binding such
/// as `xmlns=""` reads as none too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Name<'a> {
    namespace: Option<&'a str>,
    local: &'a str,
}

impl Name<'_> {
    fn kind(self) -> Option<ElementKind> {
        super::element_kind(self.namespace, self.local)
    }

    fn has_typed_id(self) -> bool {
        super::has_typed_id(self.namespace, self.local)
    }
}

/// What one pass found in a well-formed document.
#[derive(Debug, Clone)]
pub(super) struct Scanned {
    /// Whether the root is `{urn:ietf:params:xml:ns:pidf}presence`.
    pub root_is_presence: bool,
    /// The root's unprefixed `entity` attribute, normalized.
    pub entity: Option<String>,
    /// Namespaces the root declares, in order, the `xml` one excepted: (prefix, URI).
    pub namespaces: Vec<(Option<String>, String)>,
    /// The root's child elements in order; `None` for the PIDF elements
    /// [`super::element_kind`] does not keep.
    pub children: Vec<Option<Item>>,
}

/// Reads `text`: at most `max_nodes` nodes (elements, text runs, comments and processing
/// instructions, plus the document), counted as roxmltree counts them.
pub(super) fn read(text: &str, max_nodes: u32) -> Result<Scanned, NotWellFormed> {
    let mut reader = Reader {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        nodes: 1,
        max_nodes,
        bindings: Vec::with_capacity(8),
        open: Vec::with_capacity(8),
        attributes: Vec::with_capacity(8),
        scanned: Scanned {
            root_is_presence: false,
            entity: None,
            namespaces: Vec::new(),
            children: Vec::new(),
        },
    };
    reader.document()?;
    Ok(reader.scanned)
}

struct Binding<'a> {
    /// `None` for the default namespace.
    prefix: Option<&'a str>,
    uri: Cow<'a, str>,
}

struct OpenElement {
    qname: Range<usize>,
    /// `bindings.len()` before this element's declarations.
    scope: usize,
}

struct Attribute {
    prefix: Range<usize>,
    local: Range<usize>,
    /// `xmlns` or `xmlns:p`: a namespace declaration (Namespaces §3), not an attribute.
    declaration: bool,
    value: Range<usize>,
    /// The value holds a reference or a tab, CR or LF, so reading it means normalizing it.
    special: bool,
}

struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    nodes: u32,
    max_nodes: u32,
    bindings: Vec<Binding<'a>>,
    open: Vec<OpenElement>,
    /// The current start tag's attributes, reused from tag to tag.
    attributes: Vec<Attribute>,
    scanned: Scanned,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

const NAME_START: u8 = 1;
const NAME: u8 = 2;
/// A control character other than tab, LF and CR (XML 1.0 §2.2 forbids them), or 0xEF, the
/// lead byte of U+FFFE and U+FFFF, which it forbids too; other non-ASCII text is valid UTF-8
/// already.
const SUSPECT: u8 = 4;
/// `&`: a reference to check, and to replace in an attribute value.
const AMPERSAND: u8 = 8;
/// Tab, LF or CR: an attribute value with one is normalized (XML 1.0 §3.3.3).
const BREAK: u8 = 16;
/// `>`: text with one may hold the forbidden `]]>`.
const CLOSE: u8 = 32;

/// The classes above per byte. Names are ASCII in practice and text is mostly plain, so one
/// table lookup per byte, OR-ed over a run, decides whether anything slower is needed.
static CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let start = c.is_ascii_alphabetic() || c == b':' || c == b'_';
        let name = start || c.is_ascii_digit() || c == b'-' || c == b'.';
        table[b] = if start {
            NAME_START | NAME
        } else if name {
            NAME
        } else {
            match c {
                b'\t' | b'\n' | b'\r' => BREAK,
                b'&' => AMPERSAND,
                b'>' => CLOSE,
                0xEF => SUSPECT,
                c if c < 0x20 => SUSPECT,
                _ => 0,
            }
        };
        b += 1;
    }
    table
};

/// The classes of `bytes`, OR-ed.
fn classes(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0, |found, &b| found | CLASS[usize::from(b)])
}

fn is_name_start_char(c: char) -> bool {
    match u8::try_from(c) {
        Ok(b) if b < 0x80 => CLASS[usize::from(b)] & NAME_START != 0,
        _ => matches!(c as u32,
            0xC0..=0xD6 | 0xD8..=0xF6 | 0xF8..=0x2FF | 0x370..=0x37D | 0x37F..=0x1FFF
            | 0x200C..=0x200D | 0x2070..=0x218F | 0x2C00..=0x2FEF | 0x3001..=0xD7FF
            | 0xF900..=0xFDCF | 0xFDF0..=0xFFFD | 0x10000..=0xEFFFF),
    }
}

fn is_name_char(c: char) -> bool {
    match u8::try_from(c) {
        Ok(b) if b < 0x80 => CLASS[usize::from(b)] & NAME != 0,
        _ => is_name_start_char(c) || matches!(c as u32, 0xB7 | 0x300..=0x36F | 0x203F..=0x2040),
    }
}

/// The end of the run of `NameChar`s (XML 1.0 §2.3) from `pos`.
fn name_chars_end(text: &str, mut pos: usize) -> usize {
    let bytes = text.as_bytes();
    loop {
        let rest = bytes.get(pos..).unwrap_or_default();
        pos += rest
            .iter()
            .position(|&b| CLASS[usize::from(b)] & NAME == 0)
            .unwrap_or(rest.len());
        match text.get(pos..).and_then(|rest| rest.chars().next()) {
            Some(c) if !c.is_ascii() && is_name_char(c) => pos += c.len_utf8(),
            _ => return pos,
        }
    }
}

/// Where `needle` (two or three bytes) first occurs in `haystack`: a search for its last
/// byte, which the short terminators (`-->`, `?>`, `]]>`) rarely repeat elsewhere, so no
/// searcher is built for a few bytes of text.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let last = *needle.last()?;
    let before = needle.len() - 1;
    let mut from = before;
    while let Some(i) = memchr(last, haystack.get(from..).unwrap_or_default()) {
        let end = from + i;
        if haystack.get(end - before..end) == needle.get(..before) {
            return Some(end - before);
        }
        from = end + 1;
    }
    None
}

/// XML 1.0 `Char` for a character decoded from a reference (U+FFFD stands for what is no
/// character at all, as roxmltree reads it).
fn is_xml_char(c: char) -> bool {
    if (c as u32) < 0x20 {
        matches!(c, '\t' | '\n' | '\r')
    } else {
        !matches!(c as u32, 0xFFFE | 0xFFFF)
    }
}

/// The end of the `Name` (XML 1.0 §2.3) at `pos`, if one starts there.
fn name_end(text: &str, pos: usize) -> Option<usize> {
    let first = text.get(pos..)?.chars().next()?;
    is_name_start_char(first).then(|| name_chars_end(text, pos + first.len_utf8()))
}

/// The reference (XML 1.0 §4.1) whose `&` is at `start`: the character it stands for and
/// the offset after its `;`. Without a DTD only the five predefined entities exist.
fn reference(text: &str, start: usize) -> Result<(char, usize), &'static str> {
    let bytes = text.as_bytes();
    let mut pos = start + 1;
    let c = if bytes.get(pos) == Some(&b'#') {
        pos += 1;
        let hex = bytes.get(pos) == Some(&b'x');
        pos += usize::from(hex);
        let digits = pos;
        while bytes.get(pos).is_some_and(|b| {
            if hex {
                b.is_ascii_hexdigit()
            } else {
                b.is_ascii_digit()
            }
        }) {
            pos += 1;
        }
        let n = u32::from_str_radix(
            text.get(digits..pos).unwrap_or_default(),
            if hex { 16 } else { 10 },
        );
        match n.map(|n| char::from_u32(n).unwrap_or('\u{FFFD}')) {
            Ok(c) if is_xml_char(c) => c,
            _ => return Err("invalid character reference"),
        }
    } else {
        let end = name_end(text, pos).ok_or("malformed reference")?;
        let c = match text.get(pos..end) {
            Some("quot") => '"',
            Some("amp") => '&',
            Some("apos") => '\'',
            Some("lt") => '<',
            Some("gt") => '>',
            _ => return Err("unknown entity (no DTD is read)"),
        };
        pos = end;
        c
    };
    if bytes.get(pos) != Some(&b';') {
        return Err("malformed reference");
    }
    Ok((c, pos + 1))
}

/// An attribute value as XML normalizes it (XML 1.0 §3.3.3): references replaced, each tab,
/// LF, CR and CR LF one space. `special` says whether anything needs replacing; the value was
/// checked when it was read.
fn normalized(text: &str, value: Range<usize>, special: bool) -> Cow<'_, str> {
    let raw = text.get(value.clone()).unwrap_or_default();
    if !special {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut pos = value.start;
    while pos < value.end {
        let rest = text.get(pos..value.end).unwrap_or_default();
        match rest.chars().next() {
            Some('&') => match reference(text, pos) {
                Ok((c, next)) => {
                    out.push(c);
                    pos = next;
                }
                Err(_) => break,
            },
            Some('\r') if rest.as_bytes().get(1) == Some(&b'\n') => pos += 1,
            Some('\t' | '\n' | '\r') => {
                out.push(' ');
                pos += 1;
            }
            Some(c) => {
                out.push(c);
                pos += c.len_utf8();
            }
            None => break,
        }
    }
    Cow::Owned(out)
}

impl<'a> Reader<'a> {
    fn fail<T>(&self, reason: &'static str) -> Result<T, NotWellFormed> {
        Err(NotWellFormed {
            reason,
            at: self.pos,
        })
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn starts_with(&self, s: &[u8]) -> bool {
        self.bytes
            .get(self.pos..)
            .is_some_and(|rest| rest.starts_with(s))
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(is_space) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, s: &[u8], reason: &'static str) -> Result<(), NotWellFormed> {
        if !self.starts_with(s) {
            return self.fail(reason);
        }
        self.pos += s.len();
        Ok(())
    }

    fn char_at(&self, pos: usize) -> Option<char> {
        self.text.get(pos..).and_then(|rest| rest.chars().next())
    }

    fn count_node(&mut self) -> Result<(), NotWellFormed> {
        if self.nodes >= self.max_nodes {
            return self.fail("too many nodes");
        }
        self.nodes += 1;
        Ok(())
    }

    /// The bytes from `from` up to `end` are XML characters (XML 1.0 §2.2).
    fn check_chars(&self, from: usize, end: usize) -> Result<(), NotWellFormed> {
        let found = classes(self.bytes.get(from..end).unwrap_or_default());
        self.check_classified_chars(from, end, found)
    }

    /// [`Self::check_chars`] for bytes whose [`classes`] are `found`.
    fn check_classified_chars(
        &self,
        from: usize,
        end: usize,
        found: u8,
    ) -> Result<(), NotWellFormed> {
        if found & SUSPECT == 0 {
            return Ok(());
        }
        let slice = self.bytes.get(from..end).unwrap_or_default();
        for (i, &b) in slice.iter().enumerate() {
            let bad = (b < 0x20 && !is_space(b))
                || (b == 0xEF
                    && slice.get(i + 1) == Some(&0xBF)
                    && matches!(slice.get(i + 2), Some(0xBE | 0xBF)));
            if bad {
                return Err(NotWellFormed {
                    reason: "character not allowed in XML",
                    at: from + i,
                });
            }
        }
        Ok(())
    }

    /// Every reference between `from` and `end` is well-formed.
    fn check_references(&mut self, from: usize, end: usize) -> Result<(), NotWellFormed> {
        let mut at = from;
        while let Some(i) = memchr(b'&', self.bytes.get(at..end).unwrap_or_default()) {
            self.pos = at + i;
            self.reference()?;
            at = self.pos;
        }
        Ok(())
    }

    fn name(&mut self) -> Result<Range<usize>, NotWellFormed> {
        let start = self.pos;
        match name_end(self.text, start) {
            Some(end) => {
                self.pos = end;
                Ok(start..end)
            }
            None => self.fail("invalid name"),
        }
    }

    /// `QName` (Namespaces §4): prefix (empty when there is none) and local part.
    fn qname(&mut self) -> Result<(Range<usize>, Range<usize>), NotWellFormed> {
        let bytes = self.bytes;
        let start = self.pos;
        let mut end = start;
        let mut colon = None;
        while let Some(&b) = bytes.get(end) {
            if CLASS[usize::from(b)] & NAME != 0 {
                if b == b':' {
                    if colon.is_some() {
                        return self.fail("invalid name");
                    }
                    colon = Some(end);
                }
                end += 1;
            } else if b >= 0x80 {
                match self.char_at(end) {
                    Some(c) if is_name_char(c) => end += c.len_utf8(),
                    _ => break,
                }
            } else {
                break;
            }
        }
        let starts_name = |at: usize| match bytes.get(at) {
            Some(&b) if b < 0x80 => b != b':' && CLASS[usize::from(b)] & NAME_START != 0,
            Some(_) => at < end && self.char_at(at).is_some_and(is_name_start_char),
            None => false,
        };
        let (prefix, local) = match colon {
            // `:a` is a Name but no QName; roxmltree reads it as `a`.
            Some(colon) if colon == start => return self.fail("invalid name"),
            Some(colon) => (start..colon, colon + 1..end),
            None => (start..start, start..end),
        };
        if local.is_empty() || !starts_name(local.start) || (colon.is_some() && !starts_name(start))
        {
            return self.fail("invalid name");
        }
        self.pos = end;
        Ok((prefix, local))
    }

    fn slice(&self, range: Range<usize>) -> &'a str {
        self.text.get(range).unwrap_or_default()
    }

    /// A reference at `pos`; moves past it.
    fn reference(&mut self) -> Result<(), NotWellFormed> {
        let (_, next) = reference(self.text, self.pos).or_else(|reason| self.fail(reason))?;
        self.pos = next;
        Ok(())
    }

    fn at_fail<T>(&self, at: usize, reason: &'static str) -> Result<T, NotWellFormed> {
        Err(NotWellFormed { reason, at })
    }

    /// `Attribute` (XML 1.0 §3.1): a qualified name, `=` and a value.
    fn attribute(&mut self) -> Result<Attribute, NotWellFormed> {
        let (prefix, local) = self.qname()?;
        let declaration = match self.slice(prefix.clone()) {
            "xmlns" => true,
            "" => self.slice(local.clone()) == "xmlns",
            _ => false,
        };
        self.skip_spaces();
        self.expect(b"=", "expected '='")?;
        self.skip_spaces();
        let (value, special) = self.attribute_value()?;
        Ok(Attribute {
            prefix,
            local,
            declaration,
            value,
            special,
        })
    }

    /// An attribute value from its opening quote up to and past the closing one; whether it
    /// holds anything [`normalized`] replaces.
    fn attribute_value(&mut self) -> Result<(Range<usize>, bool), NotWellFormed> {
        let quote = match self.peek() {
            Some(q @ (b'"' | b'\'')) => q,
            _ => return self.fail("expected a quote"),
        };
        let start = self.pos + 1;
        let Some(len) = memchr2(quote, b'<', self.bytes.get(start..).unwrap_or_default()) else {
            return self.fail("unexpected end in attribute value");
        };
        let end = start + len;
        if self.bytes.get(end) == Some(&b'<') {
            return self.at_fail(end, "'<' in attribute value");
        }
        let found = classes(self.bytes.get(start..end).unwrap_or_default());
        self.check_classified_chars(start, end, found)?;
        if found & AMPERSAND != 0 {
            self.check_references(start, end)?;
        }
        self.pos = end + 1;
        Ok((start..end, found & (AMPERSAND | BREAK) != 0))
    }

    fn document(&mut self) -> Result<(), NotWellFormed> {
        if self.starts_with("\u{FEFF}".as_bytes()) {
            self.pos += 3;
        }
        if self.starts_with(b"<?xml ") {
            self.declaration()?;
        }
        self.misc()?;
        self.skip_spaces();
        if self.starts_with(b"<!DOCTYPE") {
            return self.fail("a DTD is not accepted");
        }
        if self.peek() != Some(b'<') {
            return self.fail("no root element");
        }
        self.element()?;
        self.misc()?;
        if self.pos != self.bytes.len() {
            return self.fail("content after the root element");
        }
        Ok(())
    }

    /// `XMLDecl` (XML 1.0 §2.8); its values are not interpreted (the text is UTF-8 already).
    fn declaration(&mut self) -> Result<(), NotWellFormed> {
        self.pos += 5; // <?xml
        self.declaration_space()?;
        if !self.starts_with(b"version") {
            return self.fail("the XML declaration lacks its version");
        }
        // Read as attributes: stricter than roxmltree, which checks no references there
        // (no declaration has any).
        self.attribute()?;
        self.declaration_space()?;
        if self.starts_with(b"encoding") {
            self.attribute()?;
            self.declaration_space()?;
        }
        if self.starts_with(b"standalone") {
            self.attribute()?;
        }
        self.skip_spaces();
        self.expect(b"?>", "unterminated XML declaration")
    }

    fn declaration_space(&mut self) -> Result<(), NotWellFormed> {
        if self.peek().is_some_and(is_space) {
            self.skip_spaces();
        } else if !self.starts_with(b"?>") && self.pos < self.bytes.len() {
            return self.fail("expected a space");
        }
        Ok(())
    }

    /// `Misc*` (XML 1.0 §2.8): spaces, comments and processing instructions.
    fn misc(&mut self) -> Result<(), NotWellFormed> {
        loop {
            self.skip_spaces();
            if self.starts_with(b"<!--") {
                self.comment()?;
            } else if self.starts_with(b"<?") {
                self.processing_instruction()?;
            } else {
                return Ok(());
            }
        }
    }

    /// Characters from `pos` up to `terminator`, and past it: the content of a comment,
    /// processing instruction or CDATA section.
    fn delimited(
        &mut self,
        terminator: &[u8],
        unterminated: &'static str,
    ) -> Result<Range<usize>, NotWellFormed> {
        let start = self.pos;
        let Some(len) = find(self.bytes.get(start..).unwrap_or_default(), terminator) else {
            return self.fail(unterminated);
        };
        self.check_chars(start, start + len)?;
        self.pos = start + len + terminator.len();
        Ok(start..start + len)
    }

    /// `Comment` (XML 1.0 §2.5): no `--` inside, and not ending in `-`.
    fn comment(&mut self) -> Result<(), NotWellFormed> {
        self.pos += 4;
        let body = self.delimited(b"-->", "unterminated comment")?;
        let text = self.slice(body.clone());
        if text.contains("--") || text.ends_with('-') {
            return self.at_fail(body.start, "'--' in a comment");
        }
        self.count_node()
    }

    /// `PI` (XML 1.0 §2.6), read as roxmltree reads it.
    fn processing_instruction(&mut self) -> Result<(), NotWellFormed> {
        if self.starts_with(b"<?xml ") {
            return self.fail("an XML declaration not at the start");
        }
        self.pos += 2;
        self.name()?;
        self.skip_spaces();
        self.delimited(b"?>", "unterminated processing instruction")?;
        self.count_node()
    }

    /// The root element and everything in it, iteratively (a deep document cannot exhaust
    /// the stack).
    fn element(&mut self) -> Result<(), NotWellFormed> {
        if !self.start_tag()? {
            return Ok(());
        }
        let mut in_text = false;
        while !self.open.is_empty() {
            match self.peek() {
                None => return self.fail("unclosed element"),
                Some(b'<') => match self.bytes.get(self.pos + 1) {
                    Some(b'/') => {
                        in_text = false;
                        self.end_tag()?;
                    }
                    Some(b'!') if self.starts_with(b"<!--") => {
                        in_text = false;
                        self.comment()?;
                    }
                    Some(b'!') if self.starts_with(b"<![CDATA[") => {
                        self.pos += 9;
                        self.delimited(b"]]>", "unterminated CDATA section")?;
                        if !in_text {
                            self.count_node()?;
                            in_text = true;
                        }
                    }
                    Some(b'!') => return self.fail("unexpected markup"),
                    Some(b'?') => {
                        in_text = false;
                        self.processing_instruction()?;
                    }
                    _ => {
                        in_text = false;
                        self.start_tag()?;
                    }
                },
                Some(_) => {
                    self.text()?;
                    if !in_text {
                        self.count_node()?;
                        in_text = true;
                    }
                }
            }
        }
        Ok(())
    }

    /// Character data up to the next `<` (XML 1.0 §2.4): characters, references, no `]]>`.
    fn text(&mut self) -> Result<(), NotWellFormed> {
        let start = self.pos;
        // Most runs are the indentation between tags: nothing in them to check.
        let rest = self.bytes.get(start..).unwrap_or_default();
        let blank = rest.iter().take_while(|&&b| is_space(b)).count();
        if matches!(rest.get(blank), None | Some(b'<')) {
            self.pos = start + blank;
            return Ok(());
        }
        let end = memchr(b'<', rest).map_or(self.bytes.len(), |i| start + i);
        let found = classes(self.bytes.get(start..end).unwrap_or_default());
        self.check_classified_chars(start, end, found)?;
        if found & AMPERSAND != 0 {
            self.check_references(start, end)?;
        }
        if found & CLOSE != 0 {
            if let Some(i) = find(self.bytes.get(start..end).unwrap_or_default(), b"]]>") {
                return self.at_fail(start + i, "']]>' in text");
            }
        }
        self.pos = end;
        Ok(())
    }

    /// A start tag at `<`; true when the element has content to read (not `/>`).
    fn start_tag(&mut self) -> Result<bool, NotWellFormed> {
        let tag_start = self.pos;
        self.pos += 1;
        let (prefix, local) = self.qname()?;
        let name_end = self.pos;
        if self.slice(prefix.clone()) == "xmlns" {
            return self.at_fail(tag_start + 1, "the element prefix xmlns is reserved");
        }
        self.attributes.clear();
        // What the start tag needs beyond its name: namespace declarations to bind, and
        // attributes to resolve and compare. Most tags have one plain attribute or none.
        let mut declares = false;
        let mut regular = 0;
        let mut prefixed = false;
        let open = loop {
            let had_space = self.peek().is_some_and(is_space);
            self.skip_spaces();
            match self.peek() {
                None => return self.fail("unterminated start tag"),
                Some(b'/') => {
                    self.pos += 1;
                    self.expect(b">", "expected '>'")?;
                    break false;
                }
                Some(b'>') => {
                    self.pos += 1;
                    break true;
                }
                Some(_) if !had_space => return self.fail("expected a space"),
                Some(_) => {
                    let attribute = self.attribute()?;
                    if attribute.declaration {
                        declares = true;
                    } else {
                        regular += 1;
                        prefixed |= !attribute.prefix.is_empty();
                    }
                    self.attributes.push(attribute);
                }
            }
        };
        let depth = self.open.len();
        let scope = self.bindings.len();
        let declared = if declares {
            self.declare(scope, depth == 0)?
        } else {
            Vec::new()
        };
        if regular > 1 || prefixed {
            self.check_attributes()?;
        }
        self.count_node()?;
        // `xml` is bound for attributes only, as in roxmltree.
        let namespace = match self.slice(prefix) {
            "" => lookup(&self.bindings, None),
            prefix => match lookup(&self.bindings, Some(prefix)) {
                Some(uri) => Some(uri),
                None => return self.at_fail(tag_start + 1, "undeclared prefix"),
            },
        };
        let local_name = self.slice(local);

        let name = Name {
            namespace: namespace.filter(|ns| !ns.is_empty()),
            local: local_name,
        };
        let id = if name.has_typed_id() {
            self.id_attribute()
        } else {
            None
        };
        match depth {
            0 => {
                self.scanned.root_is_presence =
                    name.namespace == Some(PIDF_NS) && local_name == "presence";
                self.scanned.entity = self
                    .unprefixed("entity")
                    .map(|a| self.value_of(a).into_owned());
            }
            1 => self.scanned.children.push(name.kind().map(|kind| Item {
                kind,
                range: tag_start..self.pos,
                name_end,
                id,
                inner_ids: Vec::new(),
                declared,
            })),
            _ => {
                if let (Some(id), Some(Some(child))) = (id, self.scanned.children.last_mut()) {
                    child.inner_ids.push(id);
                }
            }
        }
        if open {
            self.open.push(OpenElement {
                qname: tag_start + 1..name_end,
                scope,
            });
        } else {
            self.bindings.truncate(scope);
        }
        Ok(open)
    }

    /// The start tag's namespace declarations (Namespaces §3), bound in attribute order;
    /// the prefixes each declares, for [`Item::declared`].
    fn declare(
        &mut self,
        scope: usize,
        root: bool,
    ) -> Result<Vec<Option<Box<str>>>, NotWellFormed> {
        let mut declared = Vec::new();
        for i in 0..self.attributes.len() {
            let attribute = &self.attributes[i];
            if !attribute.declaration {
                continue;
            }
            let at = attribute.prefix.start;
            let binding =
                (!attribute.prefix.is_empty()).then(|| self.slice(attribute.local.clone()));
            declared.push(binding.map(Box::from));
            let uri = self.value_of(attribute);
            if uri == XMLNS_URI {
                return self.at_fail(at, "the xmlns namespace cannot be declared");
            }
            let is_xml_uri = uri == XML_URI;
            match binding {
                Some("xml") if !is_xml_uri => {
                    return self.at_fail(at, "the prefix xml is bound to its namespace only")
                }
                Some("xml") => continue,
                _ if is_xml_uri => {
                    return self.at_fail(at, "the xml namespace is bound to the prefix xml only")
                }
                _ => {}
            }
            if self.bindings[scope..].iter().any(|b| b.prefix == binding) {
                return self.at_fail(at, "a namespace declared twice on one element");
            }
            if root {
                self.scanned
                    .namespaces
                    .push((binding.map(str::to_owned), uri.to_string()));
            }
            self.bindings.push(Binding {
                prefix: binding,
                uri,
            });
        }
        Ok(declared)
    }

    /// Every attribute's prefix is declared, and no two share an expanded name
    /// (Namespaces §6.3).
    fn check_attributes(&self) -> Result<(), NotWellFormed> {
        // Few attributes per tag compare pairwise; a crafted tag with thousands would make
        // that quadratic, so past `FEW` they go into a set.
        const FEW: usize = 16;
        let mut few: [(Option<&str>, &str); FEW] = [(None, ""); FEW];
        let mut count = 0;
        let mut many: HashSet<(Option<&str>, &str)> = HashSet::new();
        for attribute in self.attributes.iter().filter(|a| !a.declaration) {
            let prefix = self.slice(attribute.prefix.clone());
            let local = self.slice(attribute.local.clone());
            let namespace = match prefix {
                "" => None,
                "xml" => Some(XML_URI),
                _ => match lookup(&self.bindings, Some(prefix)) {
                    Some(uri) => Some(uri),
                    None => return self.at_fail(attribute.prefix.start, "undeclared prefix"),
                },
            };
            let name = (namespace, local);
            let duplicate = if count < FEW {
                let seen = few[..count].contains(&name);
                few[count] = name;
                count += 1;
                seen
            } else {
                if many.is_empty() {
                    many.extend(few);
                }
                !many.insert(name)
            };
            if duplicate {
                return self.at_fail(attribute.prefix.start, "duplicate attribute");
            }
        }
        Ok(())
    }

    /// The current start tag's attribute `name` without a prefix.
    fn unprefixed(&self, name: &str) -> Option<&Attribute> {
        self.attributes
            .iter()
            .find(|a| a.prefix.is_empty() && self.slice(a.local.clone()) == name)
    }

    fn value_of(&self, attribute: &Attribute) -> Cow<'a, str> {
        normalized(self.text, attribute.value.clone(), attribute.special)
    }

    fn id_attribute(&self) -> Option<IdAttr> {
        let attribute = self.unprefixed("id")?;
        Some(IdAttr {
            value: self.value_of(attribute).trim().into(),
            range: attribute.value.clone(),
        })
    }

    /// `ETag` (XML 1.0 §3.1): the name of the innermost open element.
    fn end_tag(&mut self) -> Result<(), NotWellFormed> {
        let start = self.pos;
        self.pos += 2;
        let (prefix, local) = self.qname()?;
        let qname = prefix.start..local.end;
        self.skip_spaces();
        self.expect(b">", "expected '>'")?;
        let Some(open) = self.open.pop() else {
            return self.at_fail(start, "end tag without a start tag");
        };
        if self.bytes.get(open.qname) != self.bytes.get(qname) {
            return self.at_fail(start, "end tag does not match the start tag");
        }
        self.bindings.truncate(open.scope);
        if self.open.len() == 1 {
            if let Some(Some(child)) = self.scanned.children.last_mut() {
                child.range.end = self.pos;
            }
        }
        Ok(())
    }
}

/// The namespace `prefix` (`None`: the default one) is bound to in the innermost scope.
fn lookup<'b>(bindings: &'b [Binding<'_>], prefix: Option<&str>) -> Option<&'b str> {
    bindings
        .iter()
        .rev()
        .find(|b| b.prefix == prefix)
        .map(|b| &*b.uri)
}
