#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;
use std::time::Duration;

use sip_transport::{Inbound, TransportConfig, TransportEvent, TransportEvents};
use tokio::time::timeout;

/// Upper bound for anything a test waits on; never reached unless the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

pub fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

pub fn config() -> TransportConfig {
    TransportConfig {
        udp: Some(loopback()),
        tcp: Some(loopback()),
        ..TransportConfig::default()
    }
}

pub async fn next_event(events: &mut TransportEvents) -> TransportEvent {
    timeout(WAIT, events.recv())
        .await
        .expect("timed out waiting for an event")
        .expect("channel closed")
}

pub async fn next_message(events: &mut TransportEvents) -> Inbound {
    match next_event(events).await {
        TransportEvent::Message(inbound) => inbound,
        other => panic!("expected a message, got {other:?}"),
    }
}

pub fn request(call_id: &str, body: &str) -> String {
    format!(
        "OPTIONS sip:avail.test SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bK{call_id}\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

pub fn response(call_id: &str) -> String {
    format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bK{call_id}\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}
