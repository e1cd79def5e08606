//! GRUU construction and recognition (RFC 5627 §3.1 public GRUUs, §3.2 temporary GRUUs,
//! §5.1 what the registrar returns) and the URI escaping they need (RFC 3261 §25.1).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use sip_message::Uri;

/// User-part prefix that marks a temporary GRUU: `sip:tgruu.<token>@domain;gr`.
pub(crate) const TEMP_GRUU_PREFIX: &str = "tgruu.";

/// Hex characters in a temporary GRUU token (128 bits).
const TOKEN_HEX: usize = 32;

/// The registered UA instance a GRUU designates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GruuTarget {
    /// `user@domain`.
    pub aor: String,
    /// `+sip.instance` value as registered, e.g. `<urn:uuid:...>`.
    pub instance: String,
    pub temporary: bool,
}

/// A new temporary GRUU token. Keyed so that outsiders can neither predict it nor
/// link it to the AOR (RFC 5627 §3.2: temporary GRUUs hide the user's identity); derived from
/// Call-ID and CSeq so each refresh yields a different one.
pub(crate) fn temp_gruu_token(
    key: &[u8],
    aor: &str,
    instance: &str,
    call_id: &str,
    cseq: u32,
) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    // NUL separators keep ("ab", "c") and ("a", "bc") apart; none of these fields contain NUL.
    for field in [
        aor.as_bytes(),
        b"\0",
        instance.as_bytes(),
        b"\0",
        call_id.as_bytes(),
        b"\0",
    ] {
        mac.update(field);
    }
    mac.update(&cseq.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    hex::encode(&digest[..TOKEN_HEX / 2])
}

/// `scheme:user@domain;gr=urn:...` (RFC 5627 §3.1): the instance URN, without its angle
/// brackets, as the `gr` value.
pub(crate) fn public_gruu(scheme: &str, aor: &str, instance: &str) -> String {
    let (user, domain) = split_aor(aor);
    let urn = instance
        .strip_prefix('<')
        .and_then(|i| i.strip_suffix('>'))
        .unwrap_or(instance);
    format!(
        "{scheme}:{}@{domain};gr={}",
        escape(user, is_user_char),
        escape(urn, is_param_char)
    )
}

/// `scheme:tgruu.<token>@domain;gr` (RFC 5627 §3.2).
pub(crate) fn temporary_gruu(scheme: &str, aor: &str, token: &str) -> String {
    let (_, domain) = split_aor(aor);
    format!("{scheme}:{TEMP_GRUU_PREFIX}{token}@{domain};gr")
}

/// The instance a public GRUU names, if `uri` has the form of one.
pub(crate) fn parse_public_gruu(uri: &Uri<'_>) -> Option<GruuTarget> {
    let urn = uri.param("gr")??;
    let aor = uri.aor_key()?;
    Some(GruuTarget {
        aor,
        instance: format!("<{}>", unescape(urn)?),
        temporary: false,
    })
}

/// The token and lower-cased domain of a temporary GRUU, if `uri` has the form of one.
pub(crate) fn parse_temporary_gruu<'u>(uri: &Uri<'u>) -> Option<(&'u str, String)> {
    if uri.param("gr")?.is_some() || !uri.is_sip() {
        return None;
    }
    let token = uri.user?.strip_prefix(TEMP_GRUU_PREFIX)?;
    Some((token, uri.host_text.to_ascii_lowercase()))
}

/// `user@domain` split at the last `@` (the user part of an AOR key is unescaped and may
/// contain `@`; the domain cannot).
pub(crate) fn split_aor(aor: &str) -> (&str, &str) {
    aor.rsplit_once('@').unwrap_or(("", aor))
}

/// RFC 3261 §25.1 `unreserved / user-unreserved`.
fn is_user_char(b: u8) -> bool {
    is_unreserved(b) || b"&=+$,;?/".contains(&b)
}

/// RFC 3261 §25.1 `paramchar` without escapes: `param-unreserved / unreserved`.
fn is_param_char(b: u8) -> bool {
    is_unreserved(b) || b"[]/:&+$".contains(&b)
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b)
}

fn escape(text: &str, allowed: fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if allowed(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `%XX` decoding; None for a malformed escape or a result that is not UTF-8.
fn unescape(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_gruu_uses_the_bare_urn_and_escapes_what_it_must() {
        assert_eq!(
            public_gruu(
                "sip",
                "alice@example.com",
                "<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>"
            ),
            "sip:alice@example.com;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"
        );
        assert_eq!(
            public_gruu("sips", "a b@example.com", "urn:x;y"),
            "sips:a%20b@example.com;gr=urn:x%3By"
        );
    }

    #[test]
    fn public_gruu_parses_back_to_its_target() {
        let text = public_gruu("sip", "a b@example.com", "<urn:x;y>");
        let uri = Uri::parse(&text).unwrap();
        assert_eq!(
            parse_public_gruu(&uri),
            Some(GruuTarget {
                aor: "a b@example.com".into(),
                instance: "<urn:x;y>".into(),
                temporary: false
            })
        );
        assert_eq!(
            parse_public_gruu(&Uri::parse("sip:alice@example.com").unwrap()),
            None
        );
        assert_eq!(
            parse_public_gruu(&Uri::parse("sip:alice@example.com;gr").unwrap()),
            None
        );
    }

    #[test]
    fn temporary_gruu_form() {
        let text = temporary_gruu("sip", "alice@Example.com", "00ff");
        assert_eq!(text, "sip:tgruu.00ff@Example.com;gr");
        let uri = Uri::parse(&text).unwrap();
        assert_eq!(
            parse_temporary_gruu(&uri),
            Some(("00ff", "example.com".to_owned()))
        );
        assert_eq!(parse_public_gruu(&uri), None);
    }

    #[test]
    fn tokens_depend_on_every_input() {
        let base = temp_gruu_token(b"k", "a@x", "<urn:1>", "c", 1);
        assert_eq!(base.len(), TOKEN_HEX);
        assert_eq!(base, temp_gruu_token(b"k", "a@x", "<urn:1>", "c", 1));
        for other in [
            temp_gruu_token(b"K", "a@x", "<urn:1>", "c", 1),
            temp_gruu_token(b"k", "b@x", "<urn:1>", "c", 1),
            temp_gruu_token(b"k", "a@x", "<urn:2>", "c", 1),
            temp_gruu_token(b"k", "a@x", "<urn:1>", "d", 1),
            temp_gruu_token(b"k", "a@x", "<urn:1>", "c", 2),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn unescaping() {
        assert_eq!(unescape("a%3Bb").as_deref(), Some("a;b"));
        assert_eq!(unescape("a%3"), None);
        assert_eq!(unescape("%ff"), None);
    }
}
