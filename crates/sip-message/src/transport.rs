//! The transports a SIP message travels on (RFC 3261 §18, §19.1.2 default ports, §20.42 Via
//! tokens, the `transport` URI parameter of §19.1.1), named once for every crate: the
//! transports that carry bytes, the proxy that records flows and the RFC 3263 location of
//! next hops all speak of the same three.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    /// TLS over TCP.
    Tls,
}

impl Transport {
    /// The Via `transport` token (RFC 3261 §20.42).
    pub fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    /// `udp`, `tcp`, `tls`: the URI parameter value, and how the registrar records bindings.
    pub fn param_name(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }

    /// Parses a Via transport or a `transport` URI parameter, case-insensitively; None for a
    /// transport not served here (SCTP, WebSocket...).
    pub fn from_name(name: &str) -> Option<Transport> {
        [Transport::Udp, Transport::Tcp, Transport::Tls]
            .into_iter()
            .find(|t| t.param_name().eq_ignore_ascii_case(name))
    }

    pub fn is_reliable(self) -> bool {
        self != Transport::Udp
    }

    /// RFC 3261 §19.1.2: 5061 for TLS, 5060 otherwise.
    pub fn default_port(self) -> u16 {
        match self {
            Transport::Tls => 5061,
            Transport::Udp | Transport::Tcp => 5060,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.via_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_whatever_their_case() {
        for transport in [Transport::Udp, Transport::Tcp, Transport::Tls] {
            assert_eq!(Transport::from_name(transport.via_name()), Some(transport));
            assert_eq!(
                Transport::from_name(transport.param_name()),
                Some(transport)
            );
            assert_eq!(transport.to_string(), transport.via_name());
        }
        assert_eq!(Transport::from_name("Tls"), Some(Transport::Tls));
        assert_eq!(Transport::from_name("sctp"), None);
        assert_eq!(Transport::from_name("ws"), None);
        assert_eq!(Transport::Tls.default_port(), 5061);
        assert_eq!(Transport::Tcp.default_port(), 5060);
        assert!(!Transport::Udp.is_reliable() && Transport::Tcp.is_reliable());
    }
}
