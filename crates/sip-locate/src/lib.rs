//! Locating SIP servers (RFC 3263 §4): the transport from the URI, the domain's NAPTR records
//! or which SRV names answer (§4.1), SRV records in RFC 2782 order (§4.3) and
//! then each target's A/AAAA records, or the host's own addresses when the URI gives an
//! address or a port (§4.2). Each target carries the name its TLS certificate must match
//! (RFC 5922 §4).
//!
//! [`select`] decides everything without sockets or randomness of its own; [`Locator`] only
//! asks DNS (hickory-resolver) what [`select`] needs to know.

pub mod locator;
pub mod select;
#[cfg(any(test, feature = "test-server"))]
pub mod test_server;

pub use locator::Locator;
pub use select::{
    host_port, order_srv, plan, srv_name, targets, Destination, Host, Naptr, Plan, Query,
    ServerHost, ServiceSearch, Srv, Target, Transport, WeightDraw, MAX_TARGETS,
};

/// Why a destination has no target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocateError {
    #[error("`{0}` is not a SIP or SIPS URI")]
    NotSip(String),
    #[error("transport `{0}` is not supported")]
    UnsupportedTransport(String),
    #[error("DNS lookup of {name} failed: {reason}")]
    Lookup { name: String, reason: String },
    #[error("{0} says it offers no SIP service over this transport")]
    NoService(String),
    #[error("{0} has no SIP server: no SRV and no address records")]
    NoAddresses(String),
    #[error("DNS lookups for {0} took too long")]
    TimedOut(String),
}

impl LocateError {
    /// Whether DNS answered that the domain has no SIP server (NXDOMAIN, no records, an SRV
    /// target of `.`), rather than failing to answer: asking again will not help.
    pub fn is_negative_answer(&self) -> bool {
        matches!(
            self,
            LocateError::NoService(_) | LocateError::NoAddresses(_)
        )
    }
}
