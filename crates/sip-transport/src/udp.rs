//! UDP receive loop (RFC 3261 §18.1.1, §18.2.1): one datagram is one message.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tracing::debug;

use crate::stream::Shared;
use crate::{Inbound, Transport, TransportEvent};

/// The largest UDP payload; anything longer cannot arrive whole.
const MAX_DATAGRAM: usize = 65535;
/// Pause after a receive error, so a persistent socket error does not spin a core.
const ERROR_BACKOFF: Duration = Duration::from_millis(10);

pub(crate) async fn receive_loop(shared: Arc<Shared>, socket: Arc<UdpSocket>, local: SocketAddr) {
    let limits = shared.config().limits;
    let max_message = limits
        .max_header_bytes
        .saturating_add(limits.max_body_bytes);
    let mut buffer = vec![0u8; MAX_DATAGRAM];
    loop {
        let (len, peer) = match socket.recv_from(&mut buffer).await {
            Ok(received) => received,
            Err(error) => {
                // Some platforms report ICMP errors for earlier sends here; the socket is fine.
                debug!(%local, %error, "UDP receive failed");
                tokio::time::sleep(ERROR_BACKOFF).await;
                continue;
            }
        };
        let datagram = &buffer[..len];
        // CRLF keepalives (and empty datagrams) only keep a NAT binding open.
        if datagram.iter().all(|&b| b == b'\r' || b == b'\n') {
            continue;
        }
        if len > max_message {
            debug!(%peer, len, max_message, "dropping oversized UDP datagram");
            continue;
        }
        let inbound = Inbound {
            transport: Transport::Udp,
            peer,
            local,
            connection: None,
            data: Bytes::copy_from_slice(datagram),
        };
        // Waiting for room stops reading the socket: what arrives meanwhile queues in the
        // kernel's receive buffer, which drops only once it is full too. Dropping here instead
        // lost datagrams whenever the server was briefly busy, each loss costing the sender a
        // retransmission interval (or, for a response, the answer).
        if shared
            .events()
            .send(TransportEvent::Message(inbound))
            .await
            .is_err()
        {
            return;
        }
    }
}
