//! Flows (RFC 3261 §18: a transport plus the peer's address) and the flow tokens this proxy
//! writes into its Record-Route user part, in the spirit of RFC 5626 §5.2, so that in-dialog
//! requests reach a UA behind NAT over the flow its dialog-creating request used, without any
//! per-dialog state in the proxy. The tokens are signed, as §5.2 requires, so that nobody
//! but this proxy can make one that sends a request over someone else's connection.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of the HMAC-SHA256 kept in a token: 96 bits, 16 base64url characters.
const TAG_LEN: usize = 12;

pub use sip_message::Transport;

/// The transport's letter in a flow token.
fn token_letter(transport: Transport) -> char {
    match transport {
        Transport::Udp => 'u',
        Transport::Tcp => 't',
        Transport::Tls => 's',
    }
}

/// A peer reached over one transport at one address: where a request arrived from, or
/// where a request goes. For TCP and TLS the caller reuses a live connection from that
/// address (RFC 3261 §18.2.2, the NAT case) before opening a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    pub transport: Transport,
    pub addr: SocketAddr,
}

impl Flow {
    /// The flow as a URI user-part token: a transport letter, the address in hex, the port
    /// in four hex digits. Only unreserved characters, so it needs no escaping.
    pub(crate) fn token(&self) -> String {
        let mut token = String::with_capacity(37);
        token.push(token_letter(self.transport));
        match self.addr.ip() {
            IpAddr::V4(ip) => ip.octets().iter().for_each(|b| push_hex(&mut token, *b)),
            IpAddr::V6(ip) => ip.octets().iter().for_each(|b| push_hex(&mut token, *b)),
        }
        let [high, low] = self.addr.port().to_be_bytes();
        push_hex(&mut token, high);
        push_hex(&mut token, low);
        token
    }

    /// The inverse of [`Flow::token`]; None for anything else.
    pub(crate) fn from_token(token: &str) -> Option<Flow> {
        let transport = match token.as_bytes().first()? {
            b'u' => Transport::Udp,
            b't' => Transport::Tcp,
            b's' => Transport::Tls,
            _ => return None,
        };
        let bytes = decode_hex(token.get(1..)?)?;
        let (ip, port) = match bytes.len() {
            6 => (
                IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])),
                &bytes[4..],
            ),
            18 => {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&bytes[..16]);
                (IpAddr::V6(Ipv6Addr::from(octets)), &bytes[16..])
            }
            _ => return None,
        };
        let port = u16::from_be_bytes([port[0], port[1]]);
        Some(Flow {
            transport,
            addr: SocketAddr::new(ip, port),
        })
    }
}

/// The key that signs and checks the dialog tokens in our Record-Route (RFC 5626 §5.2: the
/// token must be protected against tampering). The caller keeps it across restarts, so the
/// dialogs recorded before one still follow their flows.
pub(crate) struct FlowKey(Hmac<Sha256>);

impl FlowKey {
    pub(crate) fn new(secret: &[u8]) -> FlowKey {
        FlowKey(
            <Hmac<Sha256> as Mac>::new_from_slice(secret)
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length")),
        )
    }

    /// The MAC binds the flows to the dialog's Call-ID, so that a token seen in one dialog
    /// cannot carry requests of another. The NUL keeps the two fields apart: neither the
    /// flows (alphanumerics and `-`) nor a Call-ID (RFC 3261 §25.1 `word`s) contain one.
    fn mac(&self, flows: &str, call_id: &str) -> Hmac<Sha256> {
        let mut mac = self.0.clone();
        mac.update(flows.as_bytes());
        mac.update(b"\0");
        mac.update(call_id.as_bytes());
        mac
    }

    /// Our Record-Route user part for a dialog with Call-ID `call_id` between flows `a` and
    /// `b`: `<flow>-<flow>-<tag>`, the tag in base64url (only URI-unreserved characters, so
    /// no escaping).
    pub(crate) fn sign(&self, a: Flow, b: Flow, call_id: &str) -> String {
        let flows = format!("{}-{}", a.token(), b.token());
        let tag = self.mac(&flows, call_id).finalize().into_bytes();
        format!("{flows}-{}", URL_SAFE_NO_PAD.encode(&tag[..TAG_LEN]))
    }

    /// The two flows of a user part [`FlowKey::sign`] made with this key for `call_id`;
    /// None for any other text, any other key or any other dialog.
    pub(crate) fn verify(&self, user: &str, call_id: &str) -> Option<(Flow, Flow)> {
        // The flow tokens contain no `-`; the tag may.
        let mut parts = user.splitn(3, '-');
        let (a, b, tag) = (parts.next()?, parts.next()?, parts.next()?);
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        // verify_truncated_left accepts any prefix, the empty one included.
        if tag.len() != TAG_LEN {
            return None;
        }
        let flows = &user[..a.len() + 1 + b.len()];
        self.mac(flows, call_id).verify_truncated_left(&tag).ok()?;
        Some((Flow::from_token(a)?, Flow::from_token(b)?))
    }
}

fn push_hex(out: &mut String, byte: u8) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.push(char::from(DIGITS[usize::from(byte >> 4)]));
    out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let pairs = text.as_bytes().chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    pairs
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_for_both_address_families() {
        for (transport, addr) in [
            (Transport::Udp, "192.0.2.7:5060"),
            (Transport::Tls, "[2001:db8::1]:5061"),
            (Transport::Tcp, "10.0.0.1:1"),
        ] {
            let flow = Flow {
                transport,
                addr: addr.parse().unwrap(),
            };
            let token = flow.token();
            assert!(token.bytes().all(|b| b.is_ascii_alphanumeric()), "{token}");
            assert_eq!(Flow::from_token(&token), Some(flow));
        }
        assert_eq!(
            Flow {
                transport: Transport::Tcp,
                addr: "127.0.0.1:5060".parse().unwrap()
            }
            .token(),
            "t7f00000113c4"
        );
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in [
            "",
            "x7f00000113c4",
            "t7f00000113c",
            "t7f00000113cg",
            "t7F00000113c4",
            "u",
        ] {
            assert_eq!(Flow::from_token(bad), None, "{bad:?}");
        }
    }

    fn flows() -> (Flow, Flow) {
        (
            Flow {
                transport: Transport::Tls,
                addr: "198.51.100.1:40001".parse().unwrap(),
            },
            Flow {
                transport: Transport::Udp,
                addr: "[2001:db8::7]:5060".parse().unwrap(),
            },
        )
    }

    #[test]
    fn a_signed_token_is_accepted_for_its_dialog() {
        let key = FlowKey::new(b"proxy secret");
        let (a, b) = flows();
        let user = key.sign(a, b, "call-1@host");
        assert!(
            user.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'),
            "{user}"
        );
        assert_eq!(key.verify(&user, "call-1@host"), Some((a, b)));
        assert_eq!(
            FlowKey::new(b"proxy secret").verify(&user, "call-1@host"),
            Some((a, b)),
            "the same secret (after a restart) accepts it"
        );
    }

    #[test]
    fn tampered_tokens_are_refused() {
        let key = FlowKey::new(b"proxy secret");
        let (a, b) = flows();
        let user = key.sign(a, b, "call-1@host");
        let (flows, tag) = user.split_at(user.len() - 16);
        let victim = Flow {
            transport: Transport::Tcp,
            addr: "203.0.113.9:5060".parse().unwrap(),
        };
        let mut flipped = tag.as_bytes().to_vec();
        flipped[3] = if flipped[3] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        for forged in [
            // Another flow under the genuine tag.
            format!("{}-{}-{tag}", a.token(), victim.token()),
            // The flows swapped.
            format!("{}-{}-{tag}", b.token(), a.token()),
            // The tag altered, shortened, dropped.
            format!("{flows}{flipped}"),
            format!("{flows}{}", &tag[..8]),
            flows.to_owned(),
            format!("{}-{}", a.token(), b.token()),
            // The old unsigned form, and garbage.
            String::new(),
            "-".repeat(3),
        ] {
            assert_eq!(key.verify(&forged, "call-1@host"), None, "{forged:?}");
        }
        assert_eq!(
            key.verify(&user, "call-2@host"),
            None,
            "valid only in the dialog it was made for"
        );
    }

    #[test]
    fn a_token_of_another_key_is_refused() {
        let (a, b) = flows();
        let user = FlowKey::new(b"another proxy").sign(a, b, "call-1@host");
        assert_eq!(
            FlowKey::new(b"proxy secret").verify(&user, "call-1@host"),
            None
        );
    }
}
