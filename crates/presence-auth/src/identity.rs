//! Comparing identities: SIP URI equivalence reduced to what an address-of-record comparison
//! needs (RFC 3261 §19.1.4: scheme and host are case-insensitive, the user part is
//! case-sensitive and compared after unescaping, URI parameters and headers do not name a
//! different user), and the normalisation Blink's list entries need (blink-compat §7 SIP item 7).

use std::borrow::Cow;

use percent_encoding::percent_decode_str;
use simple_payloads::decode_any_uri;

/// A comparable form of an identity URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IdentityKey {
    scheme: String,
    user: Option<String>,
    host: String,
}

impl IdentityKey {
    /// Builds the key of a URI that already carries a scheme; `None` without one.
    pub(crate) fn new(uri: &str) -> Option<IdentityKey> {
        let uri = uri.trim();
        let colon = uri.find(':')?;
        let scheme = &uri[..colon];
        if !is_scheme(scheme) {
            return None;
        }
        let scheme = scheme.to_ascii_lowercase();
        let rest = &uri[colon + 1..];
        if scheme != "sip" && scheme != "sips" {
            // Other schemes (tel:, mailto:, …) are compared whole, scheme aside.
            return Some(IdentityKey {
                scheme,
                user: None,
                host: rest.to_owned(),
            });
        }
        let rest = rest.split('?').next().unwrap_or_default();
        let (user, host) = match rest.rfind('@') {
            Some(at) => {
                let user = &rest[..at];
                // A password is not part of the identity.
                let user = user.split(':').next().unwrap_or_default();
                (Some(unescape(user).into_owned()), &rest[at + 1..])
            }
            None => (None, rest),
        };
        let host = host.split(';').next().unwrap_or_default();
        // The default port is the same identity as no port.
        let host = host
            .strip_suffix(if scheme == "sips" { ":5061" } else { ":5060" })
            .unwrap_or(host);
        Some(IdentityKey {
            scheme,
            user,
            host: host.to_ascii_lowercase(),
        })
    }

    /// The host (domain) of a SIP identity, lowercase; `None` for other schemes.
    pub(crate) fn domain(&self) -> Option<&str> {
        self.user.as_ref().map(|_| self.host.as_str())
    }
}

/// The key of a list entry or rule identity as Blink writes it: percent-decoded once, with
/// `sip:` put in front of an entry that has no scheme (`bob@example.com`).
pub(crate) fn entry_key(entry: &str) -> Option<IdentityKey> {
    let decoded = decode_any_uri(entry.trim());
    IdentityKey::new(&decoded).or_else(|| IdentityKey::new(&format!("sip:{decoded}")))
}

fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

fn unescape(s: &str) -> Cow<'_, str> {
    percent_decode_str(s).decode_utf8_lossy()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(a: &str, b: &str) -> bool {
        entry_key(a).is_some() && entry_key(a) == entry_key(b)
    }

    #[test]
    fn sip_equivalence_for_addresses_of_record() {
        assert!(same("sip:bob@example.com", "SIP:bob@EXAMPLE.com"));
        assert!(same(
            "sip:bob@example.com",
            "sip:bob@example.com;transport=tcp"
        ));
        assert!(same("sip:bob@example.com", "sip:bob@example.com:5060"));
        assert!(same("sip:bob@example.com", "sip:b%6Fb@example.com"));
        assert!(same(
            "sip:bob@example.com",
            "sip:bob:secret@example.com?subject=x@y"
        ));
        assert!(!same("sip:bob@example.com", "sip:Bob@example.com"));
        assert!(!same("sip:bob@example.com", "sips:bob@example.com"));
        assert!(!same("sip:bob@example.com", "sip:bob@example.com:5070"));
        assert!(same("TEL:+1234", "tel:+1234"));
        assert!(!same("tel:+1234", "tel:+1235"));
    }

    #[test]
    fn blink_entries_are_decoded_and_get_a_scheme() {
        assert!(same("sip%3Abob%40example.com", "sip:bob@example.com"));
        assert!(same("bob@example.com", "sip:bob@example.com"));
        assert!(same("bob%40example.com", "sip:bob@example.com"));
        assert!(same("bob@example.com:5060", "sip:bob@example.com"));
        assert_eq!(
            entry_key("sip:bob@Example.COM").unwrap().domain(),
            Some("example.com")
        );
        assert_eq!(entry_key("tel:+1").unwrap().domain(), None);
    }
}
