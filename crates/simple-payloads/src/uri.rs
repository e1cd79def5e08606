//! Percent-encoding of xs:anyURI values as Blink and the SIP SIMPLE SDK write them
//! (blink-compat §0.1): every anyURI is serialised with Python's `urllib.parse.quote(s, safe='/')`
//! and read back with `unquote`, so `sip:alice@example.com` travels as `sip%3Aalice%40example.com`.

use std::borrow::Cow;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Python's always-safe set (`A-Za-z0-9_.-~`) plus the `/` that `quote` keeps by default.
const QUOTE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~')
    .remove(b'/');

/// Decodes an anyURI value once, like Python's `unquote`: invalid escapes stay as they are and
/// bytes that do not form UTF-8 become U+FFFD. Values without `%` are borrowed unchanged.
pub fn decode_any_uri(value: &str) -> Cow<'_, str> {
    percent_decode_str(value).decode_utf8_lossy()
}

/// Encodes a value exactly like `urllib.parse.quote(value, safe='/')`: UTF-8 bytes, uppercase hex.
pub fn encode_any_uri(value: &str) -> String {
    utf8_percent_encode(value, QUOTE).to_string()
}

#[cfg(test)]
mod tests {
    use super::{decode_any_uri, encode_any_uri};
    use std::borrow::Cow;

    #[test]
    fn encodes_like_python_quote_with_slash_safe() {
        assert_eq!(
            encode_any_uri("sip:alice@example.com"),
            "sip%3Aalice%40example.com"
        );
        assert_eq!(
            encode_any_uri("sip:alice+presence@example.com"),
            "sip%3Aalice%2Bpresence%40example.com"
        );
        assert_eq!(
            encode_any_uri(r#"https://xcap.example.com/xcap-root/index/~~/resource-lists/list[@name="oma_buddylist"]"#),
            "https%3A//xcap.example.com/xcap-root/index/~~/resource-lists/list%5B%40name%3D%22oma_buddylist%22%5D"
        );
        assert_eq!(
            encode_any_uri("a b;c=d#e&f?g,h'i"),
            "a%20b%3Bc%3Dd%23e%26f%3Fg%2Ch%27i"
        );
        assert_eq!(encode_any_uri("A-Z_a.z~0/9"), "A-Z_a.z~0/9");
        assert_eq!(encode_any_uri("é€"), "%C3%A9%E2%82%AC");
        assert_eq!(encode_any_uri("100%"), "100%25");
    }

    #[test]
    fn decodes_once_and_keeps_invalid_escapes() {
        assert_eq!(
            decode_any_uri("sip%3Aalice%40example.com"),
            "sip:alice@example.com"
        );
        assert_eq!(decode_any_uri("%252B"), "%2B");
        assert_eq!(decode_any_uri("100%"), "100%");
        assert_eq!(decode_any_uri("%zz%4"), "%zz%4");
        assert_eq!(decode_any_uri("%C3%A9"), "é");
        assert_eq!(decode_any_uri("%FF"), "\u{FFFD}");
        assert!(matches!(
            decode_any_uri("bob@example.com"),
            Cow::Borrowed("bob@example.com")
        ));
    }

    #[test]
    fn decode_inverts_encode() {
        for s in ["sip:alice@example.com", "+31 20/123", "ü:%;\"[]"] {
            assert_eq!(decode_any_uri(&encode_any_uri(s)), s);
        }
    }
}
