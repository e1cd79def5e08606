//! Lexical checks for the XML Schema built-in datatypes used by the XCAP schemas
//! (XML Schema Part 2 §3.2–3.3): anyURI, boolean, ID/NCName, dateTime, the integer family,
//! language, and PIDF's `qvalue` (RFC 3863 §4.4).
//!
//! The oracle is libxml2's `xmllint --schema`, so where libxml2 deviates from the
//! recommendation the deviation is reproduced and commented: a document Avail accepts must be
//! one Blink's own (libxml2-based) validation accepts too.

/// A simple type as it occurs in the schemas (attribute values and simple element content).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Simple {
    String,
    /// xs:token and its derivations without facets: every string is a valid token.
    Token,
    AnyUri,
    Boolean,
    /// xs:ID: an NCName, unique in the document (checked by the walker).
    Id,
    DateTime,
    Integer,
    NonNegativeInteger,
    /// xs:unsignedInt: a non-negative integer up to 4294967295.
    UnsignedInt,
    PositiveInteger,
    Language,
    /// PIDF `qvalue`: xs:decimal restricted by `0(.[0-9]{0,3})?` and `1(.0{0,3})?`.
    QValue,
    /// Enumeration facet on xs:string: compared without whitespace normalisation.
    StringEnum(&'static [&'static str]),
    /// Enumeration facet on xs:token or xs:NCName: compared after collapsing whitespace.
    TokenEnum(&'static [&'static str]),
}

const fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

fn trim(value: &str) -> &str {
    value.trim_matches(is_xml_space)
}

/// Whitespace "collapse" of XML Schema Part 2 §4.3.6.
fn collapse(value: &str) -> String {
    value
        .split(is_xml_space)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Simple {
    /// Checks `value`; on failure returns what was expected, for the error message.
    pub(crate) fn check(self, value: &str) -> Result<(), String> {
        let ok = match self {
            Simple::String | Simple::Token => true,
            Simple::AnyUri => is_any_uri(value),
            Simple::Boolean => matches!(trim(value), "true" | "false" | "1" | "0"),
            Simple::Id => is_ncname(trim(value)),
            Simple::DateTime => is_date_time(value),
            Simple::Integer => integer_digits(trim(value)).is_some(),
            Simple::NonNegativeInteger => integer_digits(trim(value))
                .is_some_and(|(negative, digits)| !negative || digits.bytes().all(|b| b == b'0')),
            // libxml2 accepts only plain digits here: no sign (not even "-0" or "+5") and no
            // surrounding whitespace, although xs:unsignedInt collapses whitespace.
            Simple::UnsignedInt => {
                let significant = value.trim_start_matches('0');
                !value.is_empty()
                    && value.bytes().all(|b| b.is_ascii_digit())
                    && (significant.is_empty() || significant.parse::<u32>().is_ok())
            }
            Simple::PositiveInteger => integer_digits(trim(value))
                .is_some_and(|(negative, digits)| !negative && digits.bytes().any(|b| b != b'0')),
            Simple::Language => is_language(trim(value)),
            Simple::QValue => is_qvalue(trim(value)),
            Simple::StringEnum(values) => values.contains(&value),
            Simple::TokenEnum(values) => values.contains(&collapse(value).as_str()),
        };
        if ok {
            Ok(())
        } else {
            Err(self.describe())
        }
    }

    fn describe(self) -> String {
        match self {
            Simple::String | Simple::Token => "a string".to_owned(),
            Simple::AnyUri => "an xs:anyURI (RFC 3986 URI reference)".to_owned(),
            Simple::Boolean => "an xs:boolean (true, false, 1 or 0)".to_owned(),
            Simple::Id => "an xs:ID (an XML NCName)".to_owned(),
            Simple::DateTime => "an xs:dateTime (YYYY-MM-DDThh:mm:ss[.s][Z|±hh:mm])".to_owned(),
            Simple::Integer => "an xs:integer".to_owned(),
            Simple::NonNegativeInteger => "an xs:nonNegativeInteger".to_owned(),
            Simple::UnsignedInt => "an xs:unsignedInt (0 to 4294967295)".to_owned(),
            Simple::PositiveInteger => "an xs:positiveInteger".to_owned(),
            Simple::Language => "an xs:language tag".to_owned(),
            Simple::QValue => "a q-value between 0 and 1 with at most 3 decimals".to_owned(),
            Simple::StringEnum(values) | Simple::TokenEnum(values) => {
                format!("one of {}", values.join(", "))
            }
        }
    }
}

/// Returns the sign and digits of an xs:integer lexical form.
fn integer_digits(value: &str) -> Option<(bool, &str)> {
    let (negative, digits) = match value.as_bytes().first() {
        Some(b'-') => (true, &value[1..]),
        Some(b'+') => (false, &value[1..]),
        _ => (false, value),
    };
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some((negative, digits))
}

fn is_language(value: &str) -> bool {
    let mut subtags = value.split('-');
    let primary_ok = subtags
        .next()
        .is_some_and(|t| (1..=8).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_alphabetic()));
    primary_ok
        && subtags
            .all(|t| (1..=8).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn is_qvalue(value: &str) -> bool {
    match value.split_once('.') {
        None => value == "0" || value == "1",
        Some(("0", fraction)) => {
            fraction.len() <= 3 && fraction.bytes().all(|b| b.is_ascii_digit())
        }
        Some(("1", fraction)) => fraction.len() <= 3 && fraction.bytes().all(|b| b == b'0'),
        Some(_) => false,
    }
}

fn is_name_start_char(c: char) -> bool {
    // XML 1.0 fifth edition NameStartChar without ':'.
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z' | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}'
        | '\u{F8}'..='\u{2FF}' | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}'
        | '\u{200C}'..='\u{200D}' | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}'
        | '\u{3001}'..='\u{D7FF}' | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}'
        | '\u{10000}'..='\u{EFFFF}')
}

fn is_name_char(c: char) -> bool {
    is_name_start_char(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

pub(crate) fn is_ncname(value: &str) -> bool {
    let mut chars = value.chars();
    chars.next().is_some_and(is_name_start_char) && chars.all(is_name_char)
}

/// The collapsed form of an xs:ID value, the key of the document's ID space.
pub(crate) fn id_key(value: &str) -> &str {
    trim(value)
}

// ---------------------------------------------------------------------------------------------
// xs:anyURI.
//
// libxml2 collapses whitespace, replaces every byte that RFC 2396 calls "unwise" or that is not
// printable ASCII with '_' (so spaces and non-ASCII IRIs pass), and then requires an RFC 3986
// URI-reference. What remains invalid is structural: '%' without two hex digits, '[' or ']'
// outside an IP-literal host, a second '#', a non-numeric port, and ':' in the first segment of a
// relative reference. Blink's percent-encoded values are therefore always valid.

fn is_any_uri(value: &str) -> bool {
    let collapsed = collapse(value);
    let bytes: Vec<u8> = collapsed
        .bytes()
        .map(|b| match b {
            0..=31
            | 127..=255
            | b' '
            | b'<'
            | b'>'
            | b'"'
            | b'{'
            | b'}'
            | b'|'
            | b'\\'
            | b'^'
            | b'`'
            | b'\'' => b'_',
            other => other,
        })
        .collect();
    absolute_uri(&bytes) || relative_ref(&bytes)
}

const fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

const fn is_sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

/// Cursor over the URI bytes; every method consumes a production and reports success.
struct Uri<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Uri<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn pct_encoded_len(&self) -> usize {
        match self.s.get(self.pos..self.pos + 3) {
            Some([b'%', h1, h2]) if h1.is_ascii_hexdigit() && h2.is_ascii_hexdigit() => 3,
            _ => 0,
        }
    }

    /// Consumes one unreserved / pct-encoded / sub-delim character or one of `extra`.
    fn take_char(&mut self, extra: &[u8]) -> bool {
        let pct = self.pct_encoded_len();
        if pct > 0 {
            self.pos += pct;
            return true;
        }
        match self.peek() {
            Some(b) if is_unreserved(b) || is_sub_delim(b) || extra.contains(&b) => {
                self.pos += 1;
                true
            }
            _ => false,
        }
    }

    fn take_pchars(&mut self, forbid_colon: bool) -> usize {
        let extra: &[u8] = if forbid_colon { b"@" } else { b":@" };
        let start = self.pos;
        while self.take_char(extra) {}
        self.pos - start
    }

    fn path_abempty(&mut self) {
        while self.peek() == Some(b'/') {
            self.pos += 1;
            self.take_pchars(false);
        }
    }

    /// authority = [ userinfo "@" ] host [ ":" port ]
    fn authority(&mut self) -> bool {
        let start = self.pos;
        while self.take_char(b":") {}
        if self.peek() == Some(b'@') {
            self.pos += 1;
        } else {
            self.pos = start;
        }
        if self.peek() == Some(b'[') {
            // libxml2 accepts any content up to the closing bracket as an IP literal.
            match self.s[self.pos..].iter().position(|&b| b == b']') {
                Some(close) => self.pos += close + 1,
                None => return false,
            }
        } else {
            while self.take_char(b"") {}
        }
        if self.peek() == Some(b':') {
            self.pos += 1;
            let digits = self.s[self.pos..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            // libxml2 stores the port in an int and rejects an empty or overflowing port.
            if digits == 0 || digits > 10 {
                return false;
            }
            let port = std::str::from_utf8(&self.s[self.pos..self.pos + digits])
                .ok()
                .and_then(|p| p.parse::<i32>().ok());
            if port.is_none() {
                return false;
            }
            self.pos += digits;
        }
        true
    }

    /// [ "?" query ] [ "#" fragment ] and then the end of the input.
    fn query_fragment_end(&mut self) -> bool {
        if self.peek() == Some(b'?') {
            self.pos += 1;
            while self.take_char(b":@/?") {}
        }
        if self.peek() == Some(b'#') {
            self.pos += 1;
            while self.take_char(b":@/?") {}
        }
        self.at_end()
    }

    /// The path after the scheme or at the start of a relative reference: "//" authority
    /// path-abempty, path-absolute, or a path whose first segment is consumed by the caller.
    fn hier_path(&mut self, forbid_colon_in_first: bool) -> bool {
        if self.s[self.pos..].starts_with(b"//") {
            self.pos += 2;
            if !self.authority() {
                return false;
            }
            self.path_abempty();
        } else {
            // path-absolute, a first segment (rootless or noscheme) with more, or path-empty.
            self.take_pchars(forbid_colon_in_first);
            self.path_abempty();
        }
        true
    }
}

fn absolute_uri(s: &[u8]) -> bool {
    let scheme_len = match s.first() {
        Some(b) if b.is_ascii_alphabetic() => s
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
            .count(),
        _ => return false,
    };
    if s.get(scheme_len) != Some(&b':') {
        return false;
    }
    let mut uri = Uri {
        s,
        pos: scheme_len + 1,
    };
    uri.hier_path(false) && uri.query_fragment_end()
}

fn relative_ref(s: &[u8]) -> bool {
    let mut uri = Uri { s, pos: 0 };
    uri.hier_path(true) && uri.query_fragment_end()
}

// ---------------------------------------------------------------------------------------------
// xs:dateTime: [-]YYYY-MM-DDThh:mm:ss[.s+][Z|(+|-)hh:mm].

fn is_date_time(value: &str) -> bool {
    // libxml2 tolerates trailing but not leading whitespace here (observed with xmllint 2.9.14).
    parse_date_time(value.trim_end_matches(is_xml_space).as_bytes()).is_some()
}

fn digits_value(s: &[u8]) -> Option<u32> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0u32, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u32::from(d - b'0'))
    })
}

fn parse_date_time(s: &[u8]) -> Option<()> {
    let s = s.strip_prefix(b"-").unwrap_or(s);
    let year_len = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if year_len < 4 || (year_len > 4 && s[0] == b'0') {
        return None;
    }
    let year = digits_value(&s[..year_len]);
    // Year 0000 does not exist in XML Schema 1.0; longer years are valid (and never leap-checked
    // wrongly because only their last digits matter).
    if year == Some(0) {
        return None;
    }
    let rest = &s[year_len..];
    let fixed = |r: &[u8], i: usize| digits_value(r.get(i..i + 2)?);
    if rest.len() < 15 || rest[0] != b'-' || rest[3] != b'-' || rest[6] != b'T' {
        return None;
    }
    if rest[9] != b':' || rest[12] != b':' {
        return None;
    }
    let month = fixed(rest, 1)?;
    let day = fixed(rest, 4)?;
    let hour = fixed(rest, 7)?;
    let minute = fixed(rest, 10)?;
    let second = fixed(rest, 13)?;
    let leap = match year {
        Some(y) => (y % 4 == 0 && y % 100 != 0) || y % 400 == 0,
        // Years beyond u32 cannot be written by anyone we care about; assume leap to not reject.
        None => true,
    };
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > days_in_month || minute > 59 || second > 59 {
        return None;
    }
    let mut tail = &rest[15..];
    let mut fraction_nonzero = false;
    if let Some(after_dot) = tail.strip_prefix(b".") {
        let n = after_dot.iter().take_while(|b| b.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        fraction_nonzero = after_dot[..n].iter().any(|&b| b != b'0');
        tail = &after_dot[n..];
    }
    // 24:00:00 is the end of the day; nothing else may follow hour 24.
    if hour > 24 || (hour == 24 && (minute != 0 || second != 0 || fraction_nonzero)) {
        return None;
    }
    match tail {
        [] | [b'Z'] => Some(()),
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            let tz_hour = digits_value(&[*h1, *h2])?;
            let tz_minute = digits_value(&[*m1, *m2])?;
            (tz_minute < 60 && tz_hour * 60 + tz_minute <= 14 * 60).then_some(())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::Simple;

    fn ok(ty: Simple, value: &str) -> bool {
        ty.check(value).is_ok()
    }

    #[test]
    fn any_uri_follows_libxml2() {
        for good in [
            "sip%3Aalice%40example.com",
            "https%3A//xcap.example.com/xcap-root/resource-lists/users/sip%3Aalice%40example.com/index/~~/resource-lists/list%5B%40name%3D%22oma_buddylist%22%5D",
            "sip:alice@example.com",
            "bob@example.com",
            "+31201234567",
            "",
            "  sip:a b@c  ",
            "sip:é@x",
            "http://[::1]:80/x",
            "a:b:c",
            "//[x]/",
            "http://ho st/",
            "mailto:a@b?subject=x#frag",
        ] {
            assert!(ok(Simple::AnyUri, good), "{good:?} must be a valid anyURI");
        }
        for bad in [
            "100%",
            "1abc:def",
            "a[b]",
            "a#b#c",
            "http://a:b:c/x",
            "%zz",
            "http://x:8a/",
            "a%2",
            "http://x:/",
        ] {
            assert!(
                !ok(Simple::AnyUri, bad),
                "{bad:?} must be an invalid anyURI"
            );
        }
    }

    #[test]
    fn date_time_follows_libxml2() {
        for good in [
            "2025-05-15T10:22:05.123456+02:00",
            "2025-05-15T10:22:05Z ",
            "2024-02-29T24:00:00Z",
            "12024-01-01T00:00:00+14:00",
            "2024-01-01T10:30:00-00:00",
            "-2024-01-01T00:00:00",
        ] {
            assert!(
                ok(Simple::DateTime, good),
                "{good:?} must be a valid dateTime"
            );
        }
        for bad in [
            " 2025-05-15T10:22:05Z",
            "2025-02-29T10:22:05Z",
            "0000-01-01T00:00:00",
            "2024-01-01T00:00:00+14:01",
            "2024-01-01T00:00:60",
            "-0001-01-01T00:00:00.",
            "02024-01-01T00:00:00",
            "2024-01-01T24:30:00Z",
            "2024-01-01",
            "2024-13-01T00:00:00",
        ] {
            assert!(
                !ok(Simple::DateTime, bad),
                "{bad:?} must be an invalid dateTime"
            );
        }
    }

    #[test]
    fn booleans_are_exactly_the_four_xsd_literals() {
        for good in ["true", "false", "1", "0", " 1 "] {
            assert!(ok(Simple::Boolean, good));
        }
        for bad in ["True", "FALSE", "yes", "", "2"] {
            assert!(!ok(Simple::Boolean, bad), "{bad:?}");
        }
    }

    #[test]
    fn integers_qvalues_languages_and_ids() {
        assert!(ok(Simple::Integer, " -12 "));
        assert!(!ok(Simple::Integer, "1.0"));
        assert!(ok(Simple::NonNegativeInteger, "-0"));
        assert!(ok(Simple::NonNegativeInteger, "+5"));
        assert!(!ok(Simple::NonNegativeInteger, "-1"));
        assert!(ok(Simple::UnsignedInt, "004294967295"));
        assert!(ok(Simple::UnsignedInt, "0"));
        assert!(!ok(Simple::UnsignedInt, " 5"));
        assert!(!ok(Simple::UnsignedInt, "-0"));
        assert!(!ok(Simple::UnsignedInt, "+5"));
        assert!(!ok(Simple::UnsignedInt, "4294967296"));
        assert!(!ok(Simple::UnsignedInt, "-1"));
        assert!(ok(Simple::PositiveInteger, "+01"));
        assert!(!ok(Simple::PositiveInteger, "+0"));
        for good in ["0", "1", "1.", "0.123", " 0.5 ", "1.000"] {
            assert!(ok(Simple::QValue, good), "{good:?}");
        }
        for bad in ["0.5x", "0.1234", "1.5", "2", ".5"] {
            assert!(!ok(Simple::QValue, bad), "{bad:?}");
        }
        assert!(ok(Simple::Language, "en-US"));
        assert!(!ok(Simple::Language, ""));
        assert!(!ok(Simple::Language, "en-US-x123456789"));
        assert!(ok(Simple::Id, " id1715772400123456042311 "));
        assert!(!ok(Simple::Id, "1t"));
        assert!(!ok(Simple::Id, "a:b"));
    }

    #[test]
    fn enumerations_respect_the_base_type_whitespace_rule() {
        assert!(!ok(Simple::StringEnum(&["open", "closed"]), " open"));
        assert!(ok(Simple::TokenEnum(&["allow"]), " allow "));
    }
}
