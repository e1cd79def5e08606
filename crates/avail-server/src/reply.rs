//! Where and how the server answers (RFC 3261 §8.2.6, §18.2.2; RFC 3581 `rport`).

use std::net::SocketAddr;

use sip_message::{HeaderName, Message, MessageWriter};
use sip_transport::{ConnectionId, Target, Transport};

/// Where a message came from, as the transport reported it.
#[derive(Debug, Clone, Copy)]
pub struct Origin {
    pub transport: Transport,
    pub peer: SocketAddr,
    pub connection: Option<ConnectionId>,
}

impl Origin {
    pub fn is_reliable(&self) -> bool {
        self.transport != Transport::Udp
    }

    /// RFC 3261 §18.2.2: on a stream, back over the same connection; over UDP, to the source
    /// address, and to the source port when the client asked for it with `rport` (RFC 3581
    /// §4) or otherwise to the port in its `sent-by`.
    pub fn response_target(&self, request: &Message) -> Target {
        if let Some(connection) = self.connection {
            return Target::Connection(connection);
        }
        let port = match request.top_via() {
            Ok(via) if via.params.get("rport").is_some() => self.peer.port(),
            Ok(via) => via.port.unwrap_or(5060),
            Err(_) => self.peer.port(),
        };
        Target::Udp(SocketAddr::new(self.peer.ip(), port))
    }
}

/// A response to `request` with the server's own To tag when the request had none
/// (RFC 3261 §8.2.6.2), and the `Server` header.
pub fn response(request: &Message, code: u16, reason: &str, to_tag: &str) -> MessageWriter {
    let mut writer = sip_message::response_to(request, code, reason, Some(to_tag));
    writer.header("Server", SERVER);
    writer
}

/// 503 with `Retry-After` (RFC 3261 §21.5.4): a request turned away for a while, not for
/// good.
pub fn unavailable(request: &Message, retry_after: std::time::Duration) -> bytes::Bytes {
    let mut writer = response(
        request,
        503,
        "Service Unavailable",
        &crate::sip_core::new_tag(),
    );
    writer.header_fmt("Retry-After", format_args!("{}", retry_after.as_secs()));
    writer.finish(None, b"")
}

pub const SERVER: &str = concat!("Avail/", env!("CARGO_PKG_VERSION"));

/// Methods this server handles itself or proxies to its users; sent in `Allow` (RFC 3261
/// §20.5).
pub const ALLOW: &str =
    "REGISTER, OPTIONS, INVITE, ACK, CANCEL, BYE, MESSAGE, REFER, INFO, UPDATE, PRACK, PUBLISH, SUBSCRIBE, NOTIFY";
/// Event packages served (RFC 6665 §8.2.2), sent in `Allow-Events`.
pub const ALLOW_EVENTS: &str = "presence, presence.winfo, xcap-diff";
/// Extensions understood (RFC 3261 §20.37): GRUU (RFC 5627) and Path (RFC 3327).
pub const SUPPORTED: &str = "gruu, path";
pub const SUPPORTED_TAGS: &[&str] = &["gruu", "path"];

/// RFC 3261 §8.2.2.3: the option tags of `Require` that we do not support, comma-joined.
pub fn unsupported_requirements(request: &Message) -> Option<String> {
    let unsupported: Vec<&str> = request
        .header_values(&HeaderName::Require)
        .filter(|tag| !SUPPORTED_TAGS.iter().any(|s| s.eq_ignore_ascii_case(tag)))
        .collect();
    (!unsupported.is_empty()).then(|| unsupported.join(", "))
}
