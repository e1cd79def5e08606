//! Lexical building blocks of RFC 3261 §25.1 (token, LWS, quoted-string, escaped) shared by
//! the header, URI and framing code. Everything works on bytes of ASCII-delimited text, so
//! slicing at the positions found here always lands on UTF-8 character boundaries.

/// `token` characters (RFC 3261 §25.1).
pub(crate) fn is_token_byte(b: u8) -> bool {
    TOKEN[b as usize]
}

/// Lookup table for [`is_token_byte`]: header names and values are scanned byte by byte
/// on the hot path, where one load beats a chain of range comparisons.
static TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        i += 1;
    }
    t
};

pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// Byte search for an ASCII delimiter; the index is always a character boundary.
pub(crate) fn find(s: &str, b: u8) -> Option<usize> {
    let bytes = s.as_bytes();
    // Most searches are within one URI part, parameter or tag: a plain scan of those beats
    // memchr, whose vector search first pays a dispatch and set-up.
    if bytes.len() < SHORT_SCAN {
        bytes.iter().position(|&c| c == b)
    } else {
        memchr::memchr(b, bytes)
    }
}

/// Below this many bytes a byte-by-byte scan is faster than memchr.
const SHORT_SCAN: usize = 32;

/// `str::split_once` for an ASCII delimiter, via [`find`].
pub(crate) fn split_at_byte(s: &str, b: u8) -> Option<(&str, &str)> {
    let i = find(s, b)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// `unreserved` = alphanum / mark.
pub(crate) fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
        )
}

/// Linear whitespace as it appears after unfolding (folds become spaces; CR/LF are also
/// accepted so that values handed in by callers unchanged still trim correctly).
pub(crate) fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

pub(crate) fn trim_lws(s: &str) -> &str {
    let b = s.as_bytes();
    let start = b.iter().position(|&c| !is_lws(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|&c| !is_lws(c)).map_or(start, |e| e + 1);
    s.get(start..end).unwrap_or("")
}

pub(crate) fn trim_lws_start(s: &str) -> &str {
    let b = s.as_bytes();
    s.get(b.iter().position(|&c| !is_lws(c)).unwrap_or(b.len())..)
        .unwrap_or("")
}

/// Whether every `%` in `s` starts a valid `escaped` triple and every other byte satisfies
/// `allowed`.
pub(crate) fn all_escaped_or(s: &str, allowed: impl Fn(u8) -> bool) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            match (b.get(i + 1), b.get(i + 2)) {
                (Some(h), Some(l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => i += 3,
                _ => return false,
            }
        } else if allowed(c) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// Byte index just past the closing quote of the quoted-string that starts at `start`
/// (which must index a `"`), honouring `\x` quoted-pairs; None when unterminated.
pub(crate) fn quoted_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while let Some(&c) = b.get(i) {
        match c {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Splits `s` at every `sep` that is not inside a quoted-string or `<...>`, yielding the
/// raw (untrimmed) pieces, empty ones included. An unterminated quote or angle bracket
/// extends to the end, leaving the error to the element parser.
pub(crate) struct TopLevelSplit<'a> {
    rest: Option<&'a str>,
    /// None yields the whole input as a single piece (a header that is not a list).
    sep: Option<u8>,
}

pub(crate) fn split_top_level(s: &str, sep: u8) -> TopLevelSplit<'_> {
    TopLevelSplit {
        rest: Some(s),
        sep: Some(sep),
    }
}

pub(crate) fn split_if(s: &str, split: bool, sep: u8) -> TopLevelSplit<'_> {
    TopLevelSplit {
        rest: Some(s),
        sep: split.then_some(sep),
    }
}

impl<'a> Iterator for TopLevelSplit<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        let Some(sep) = self.sep else {
            self.rest = None;
            return Some(s);
        };
        let b = s.as_bytes();
        let mut i = 0;
        // Jump between the three bytes that matter instead of matching every byte.
        while let Some(rel) = b.get(i..).and_then(|t| memchr::memchr3(sep, b'"', b'<', t)) {
            let at = i + rel;
            match b.get(at) {
                Some(b'"') => match quoted_end(b, at) {
                    Some(e) => i = e,
                    None => break,
                },
                Some(b'<') => match b.get(at..).and_then(|t| memchr::memchr(b'>', t)) {
                    Some(gt) => i = at + gt + 1,
                    None => break,
                },
                _ => {
                    self.rest = s.get(at + 1..);
                    return s.get(..at);
                }
            }
        }
        self.rest = None;
        Some(s)
    }
}

/// Parses an unsigned decimal that must fit in `u32` (RFC 3261 delta-seconds, CSeq,
/// Content-Length...). Leading zeros are allowed; an overflowing value is an error, not a clamp.
pub(crate) fn parse_u32(s: &str) -> Option<u32> {
    if s.is_empty() {
        return None;
    }
    // One pass with a u64 accumulator: every message carries two or three of these numbers,
    // and checking the digits, trimming zeros and calling `str::parse` walked each one thrice.
    let mut n = 0u64;
    for b in s.bytes() {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        n = n * 10 + u64::from(digit);
        if n > u64::from(u32::MAX) {
            return None;
        }
    }
    u32::try_from(n).ok()
}

/// Decodes `%XX` escapes; borrowed when there are none. Bytes that do not form UTF-8 after
/// decoding are replaced, since callers compare or display the result as text.
pub(crate) fn percent_decode(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.as_bytes().contains(&b'%') {
        return std::borrow::Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            if let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(hex_val),
                b.get(i + 2).and_then(hex_val),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => std::borrow::Cow::Owned(s),
        Err(e) => std::borrow::Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

fn hex_val(b: &u8) -> Option<u8> {
    (*b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_outside_quotes_and_angles() {
        let parts: Vec<_> =
            split_top_level(r#""a,\"b" <sip:x@y;p=1,2>;q=1, <sip:z>,"#, b',').collect();
        assert_eq!(
            parts,
            vec![r#""a,\"b" <sip:x@y;p=1,2>;q=1"#, " <sip:z>", ""]
        );
    }

    #[test]
    fn u32_range() {
        assert_eq!(parse_u32("0009"), Some(9));
        assert_eq!(parse_u32("4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32("4294967296"), None);
        assert_eq!(parse_u32("36893291588"), None);
        assert_eq!(parse_u32("-1"), None);
        assert_eq!(parse_u32(""), None);
        assert_eq!(parse_u32("000000000000004294967295"), Some(u32::MAX));
        assert_eq!(parse_u32("+1"), None);
        assert_eq!(parse_u32("1 "), None);
        assert_eq!(parse_u32("99999999999999999999999"), None);
    }

    #[test]
    fn decodes_escapes() {
        assert_eq!(percent_decode("cal%6Cer"), "caller");
        assert_eq!(percent_decode("null-%00-null"), "null-\0-null");
        assert_eq!(percent_decode("bad%zz"), "bad%zz");
    }
}
