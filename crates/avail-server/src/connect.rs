//! Sends that must first open a connection (RFC 3261 §18.1.1: a request to a TCP or TLS
//! target with no connection to it) run in a task of their own, so that one unreachable
//! peer, which may take the whole connect timeout, never stalls the SIP core. A request
//! such a send could not deliver is reported back as a [`FailedSend`], and its client
//! transaction fails at once (RFC 3261 §8.1.3.1, §16.9) instead of at Timer B or F.

use bytes::Bytes;
use sip_message::{Message, Method};
use sip_transport::{Target, TransportHandle};
use tokio::sync::mpsc;
use tracing::debug;

/// A request that could not be sent: the top-Via branch and method of its client
/// transaction, and where it was going.
#[derive(Debug)]
pub struct FailedSend {
    pub branch: Box<str>,
    pub method: Method,
    pub dest: Target,
}

#[derive(Clone)]
pub struct Connector {
    transport: TransportHandle,
    failed: mpsc::UnboundedSender<FailedSend>,
}

impl Connector {
    /// The connector and the receiver of its failed sends (for the core's event loop).
    pub fn new(transport: TransportHandle) -> (Connector, mpsc::UnboundedReceiver<FailedSend>) {
        let (failed, failures) = mpsc::unbounded_channel();
        (Connector { transport, failed }, failures)
    }

    pub fn transport(&self) -> &TransportHandle {
        &self.transport
    }

    /// Takes over the send when it must connect first; otherwise hands it back, to be sent
    /// in place (a live connection or a datagram never waits).
    pub fn detach(&self, dest: Target, data: Bytes) -> Option<(Target, Bytes)> {
        if !self.transport.needs_connect(&dest) {
            return Some((dest, data));
        }
        let transport = self.transport.clone();
        let failed = self.failed.clone();
        tokio::spawn(async move {
            let sent = failed_send(&data, dest.clone());
            if let Err(error) = transport.send(dest, data).await {
                debug!(%error, "request not sent: no connection");
                if let Some(sent) = sent {
                    let _ = failed.send(sent);
                }
            }
        });
        None
    }
}

/// What identifies the client transaction of a request we wrote; None for a response (an
/// ACK has no transaction of its own: the lookup finds none).
fn failed_send(data: &Bytes, dest: Target) -> Option<FailedSend> {
    let limits = sip_message::Limits::default();
    let request = Message::parse_headers_only(data.clone(), &limits).ok()?;
    Some(FailedSend {
        branch: request.top_via_branch()?.into(),
        method: request.method()?.clone(),
        dest,
    })
}
