//! SIP over UDP, TCP and TLS on tokio: the I/O shell that moves SIP bytes (RFC 3261 §18).
//!
//! This crate knows framing and keepalives and nothing else of SIP:
//!
//! - **UDP** (RFC 3261 §18.1.1, §18.2.1): one datagram is one message. Datagrams consisting only
//!   of CR/LF are keepalives and are dropped here, as are datagrams larger than the configured
//!   [`Limits`]. Replies leave from the listener socket, so NATs that opened a pinhole for the
//!   client's request let them back in. Datagrams cross the kernel boundary in batches
//!   (recvmmsg/sendmmsg); [`TransportHandle::send_datagrams`] sends a whole fan-out at once,
//!   as [`TransportHandle::send_on_connections`] does over streams.
//! - **TCP and TLS** (RFC 3261 §18.3): messages are delimited by Content-Length, using
//!   [`sip_message::StreamDecoder`]. A framing error loses the stream position, so the
//!   connection is closed; a malformed *framed* message is handed up, since rejecting it
//!   (e.g. with a 400) is the server's decision.
//! - **Keepalive** (RFC 5626 §3.5.1): a CRLFCRLF ping is answered with a single CRLF pong on
//!   the same connection; pongs are ignored. Blink pings every 90 s, so the idle timeout
//!   must stay well above that.
//! - **Connection reuse** (RFC 3261 §18.2.2, §18.1.1): responses go back on the connection
//!   the request arrived on ([`Target::Connection`]); requests to a registered contact reuse
//!   the connection its REGISTER came on, since NATed clients (Blink uses no RFC 5626
//!   Outbound) cannot accept new connections.
//! - **TLS** (RFC 5246 TLS 1.2, RFC 8446 TLS 1.3) via rustls with the *ring* provider;
//!   certificates come from [`tls::load_or_generate`].
//!
//! Received traffic and connection closures come from [`TransportEvents`]. Datagrams are
//! read from the socket only when events are asked for; until then they queue in the UDP
//! socket's kernel receive buffer (enlarged at bind, and dropping only once it is full, which
//! a datagram sender copes with). Stream messages arrive over a bounded channel; when it is
//! full, readers wait and stream peers are pushed back by TCP flow control.

mod stream;
pub mod tls;
mod udp;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use sip_message::Limits;
use tokio::io::unix::AsyncFd;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use stream::Shared;

pub use sip_message::Transport;

/// Identifies one TCP or TLS connection for its whole life; never reused within a process,
/// so a stale id held by the server can only fail, never hit another peer's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(u64);

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// One received SIP message: a UDP datagram or one framed message from a stream.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub transport: Transport,
    /// Source address, as needed for the Via `received`/`rport` parameters (RFC 3261 §18.2.1,
    /// RFC 3581).
    pub peer: SocketAddr,
    /// The local address the message arrived on. For UDP this is the listener's bound
    /// address, which may be a wildcard address.
    pub local: SocketAddr,
    /// Set for TCP and TLS: where responses and later requests to this peer must go.
    pub connection: Option<ConnectionId>,
    pub data: Bytes,
}

/// What the transport reports to the server.
#[derive(Debug, Clone)]
pub enum TransportEvent {
    Message(Inbound),
    /// The connection is gone (peer closed, idle, framing error, send budget exceeded,
    /// or [`TransportHandle::close`]); sent exactly once per connection, after its last
    /// message, so the server can drop flow references held by bindings.
    Closed(ConnectionId),
}

/// Everything the transports receive. Datagrams are read from the UDP listener socket by
/// the task that asks for events, when it asks (see the `udp` module); stream messages and
/// closures come from the connections' tasks over a bounded channel.
pub struct TransportEvents {
    streams: mpsc::Receiver<TransportEvent>,
    datagrams: Option<udp::DatagramReader>,
    /// Which source the next call takes from first, so a flood on one cannot starve the
    /// other.
    datagrams_first: bool,
}

impl fmt::Debug for TransportEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportEvents").finish_non_exhaustive()
    }
}

impl TransportEvents {
    /// The next event; None once the transports are gone.
    pub async fn recv(&mut self) -> Option<TransportEvent> {
        let mut one = Vec::with_capacity(1);
        self.recv_many(&mut one, 1).await;
        one.pop()
    }

    /// Waits for at least one event and appends up to `limit` to `events`; returns how many,
    /// 0 once the transports are gone (or for a `limit` of 0).
    pub async fn recv_many(&mut self, events: &mut Vec<TransportEvent>, limit: usize) -> usize {
        std::future::poll_fn(|cx| self.poll_recv_many(cx, events, limit)).await
    }

    fn poll_recv_many(
        &mut self,
        cx: &mut Context<'_>,
        events: &mut Vec<TransportEvent>,
        limit: usize,
    ) -> Poll<usize> {
        let before = events.len();
        let datagrams_first = self.datagrams_first;
        self.datagrams_first = !datagrams_first;
        let mut closed = false;
        for datagrams in [datagrams_first, !datagrams_first] {
            let room = limit - (events.len() - before);
            if room == 0 {
                break;
            }
            if datagrams {
                if let Some(reader) = &mut self.datagrams {
                    reader.poll_receive(cx, events, room);
                }
            } else if let Poll::Ready(0) = self.streams.poll_recv_many(cx, events, room) {
                closed = true;
            }
        }
        match events.len() - before {
            0 if !closed && limit > 0 => Poll::Pending,
            received => Poll::Ready(received),
        }
    }
}

/// Where [`TransportHandle::send`] delivers bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An existing TCP/TLS connection: responses (RFC 3261 §18.2.2) and requests to a
    /// contact registered over that connection.
    Connection(ConnectionId),
    /// A datagram from the UDP listener socket.
    Udp(SocketAddr),
    /// A transport address: reuses a live connection to `addr` (including one the peer
    /// opened to us from that address), otherwise connects. `server_name` is the name the
    /// TLS certificate must match (RFC 5922); without it the IP address is checked.
    /// With [`Transport::Udp`] this is the same as [`Target::Udp`].
    Connect {
        transport: Transport,
        addr: SocketAddr,
        server_name: Option<String>,
    },
}

impl Target {
    /// Where a message to `addr` over `transport` goes: a datagram from the UDP listener, or
    /// a connection (a live one to that address, else a new one; `server_name` as in
    /// [`Target::Connect`]).
    pub fn to(transport: Transport, addr: SocketAddr, server_name: Option<String>) -> Target {
        match transport {
            Transport::Udp => Target::Udp(addr),
            transport => Target::Connect {
                transport,
                addr,
                server_name,
            },
        }
    }

    /// The address a datagram to this target goes to; None for a stream target.
    pub fn datagram_addr(&self) -> Option<SocketAddr> {
        match self {
            Target::Udp(addr)
            | Target::Connect {
                transport: Transport::Udp,
                addr,
                ..
            } => Some(*addr),
            Target::Connection(_) | Target::Connect { .. } => None,
        }
    }
}

/// Listeners and limits. Every listener is optional; bind port 0 and ask
/// [`TransportHandle::local_addr`] for the port actually used.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    pub udp: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
    pub tls: Option<SocketAddr>,
    /// Required when `tls` is set; see [`tls::load_or_generate`].
    pub tls_server_config: Option<Arc<rustls::ServerConfig>>,
    /// Needed only to open outgoing TLS connections; see [`tls::client_config`].
    pub tls_client_config: Option<Arc<rustls::ClientConfig>>,
    /// A connection that receives no bytes for this long is closed. Keep it above the
    /// clients' keepalive interval (Blink: 90 s).
    pub idle_timeout: Duration,
    pub tls_handshake_timeout: Duration,
    pub connect_timeout: Duration,
    /// Message size limits for stream framing; UDP datagrams larger than header plus body
    /// limit are dropped.
    pub limits: Limits,
    /// Open TCP + TLS connections (inbound and outbound, including TLS handshakes in
    /// progress). Connections over the cap are accepted and closed at once.
    pub max_connections: usize,
    /// Bytes queued for one connection but not yet written. Exceeding it closes the
    /// connection, so a peer that stops reading cannot make us buffer without bound.
    pub max_queued_bytes_per_connection: usize,
    /// Capacity of the channel stream messages and closures take to [`TransportEvents`].
    pub inbound_queue: usize,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            udp: None,
            tcp: None,
            tls: None,
            tls_server_config: None,
            tls_client_config: None,
            idle_timeout: Duration::from_secs(300),
            tls_handshake_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            limits: Limits::default(),
            max_connections: 4096,
            max_queued_bytes_per_connection: 4 * 1024 * 1024,
            inbound_queue: 1024,
        }
    }
}

/// Failure to start the transports.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot bind the {transport} listener on {addr}: {source}")]
    Bind {
        transport: Transport,
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("TLS listener on {0} has no server certificate configured")]
    MissingTlsServerConfig(SocketAddr),
}

/// Failure of one [`TransportHandle::send`].
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("{0} is closed")]
    ConnectionClosed(ConnectionId),
    #[error("{connection} has more than {budget} bytes queued; the connection was closed")]
    QueueFull {
        connection: ConnectionId,
        budget: usize,
    },
    #[error("the {0} transport is not enabled")]
    NotEnabled(Transport),
    #[error("no TLS client configuration for outgoing TLS connections")]
    NoTlsClientConfig,
    #[error("invalid TLS server name {0:?}")]
    InvalidServerName(String),
    #[error("connection limit of {0} reached")]
    TooManyConnections(usize),
    #[error("connecting to {addr} over {transport} failed: {source}")]
    Connect {
        transport: Transport,
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("UDP send to {addr} failed: {source}")]
    Udp {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
}

/// Entry point: binds the configured listeners and starts their tasks.
pub struct Transports;

impl Transports {
    /// Binds every configured listener, then spawns the receive loops. Must run inside a
    /// tokio runtime. Nothing is spawned unless all binds succeed.
    pub async fn start(
        config: TransportConfig,
    ) -> Result<(TransportHandle, TransportEvents), TransportError> {
        let acceptor = match (config.tls, &config.tls_server_config) {
            (Some(addr), None) => return Err(TransportError::MissingTlsServerConfig(addr)),
            (Some(_), Some(server)) => Some(TlsAcceptor::from(server.clone())),
            (None, _) => None,
        };
        let udp = match config.udp {
            Some(addr) => Some(bind_udp(addr)?),
            None => None,
        };
        let tcp = match config.tcp {
            Some(addr) => Some(bind_tcp(Transport::Tcp, addr).await?),
            None => None,
        };
        let tls = match config.tls {
            Some(addr) => Some(bind_tcp(Transport::Tls, addr).await?),
            None => None,
        };

        let (events, receiver) = mpsc::channel(config.inbound_queue.max(1));
        let connector = config.tls_client_config.clone().map(TlsConnector::from);
        let shared = Arc::new(Shared::new(
            config,
            events,
            udp.as_ref().map(|(socket, addr)| (socket.clone(), *addr)),
            [tcp.as_ref().map(|l| l.1), tls.as_ref().map(|l| l.1)],
            connector,
        ));

        let datagrams = udp.map(|(socket, addr)| {
            tracing::info!(%addr, "SIP UDP listening");
            udp::DatagramReader::new(socket, addr, shared.config().limits)
        });
        let mut tasks = Vec::new();
        if let Some((listener, addr)) = tcp {
            tracing::info!(%addr, "SIP TCP listening");
            tasks.push(tokio::spawn(stream::accept_loop(
                shared.clone(),
                listener,
                addr,
                None,
            )));
        }
        if let Some((listener, addr)) = tls {
            tracing::info!(%addr, "SIP TLS listening");
            tasks.push(tokio::spawn(stream::accept_loop(
                shared.clone(),
                listener,
                addr,
                acceptor,
            )));
        }
        shared.set_listener_tasks(tasks);
        let events = TransportEvents {
            streams: receiver,
            datagrams,
            datagrams_first: true,
        };
        Ok((TransportHandle { shared }, events))
    }
}

/// Receive buffer asked for on the UDP listener socket.
const UDP_RECEIVE_BUFFER: usize = 4 * 1024 * 1024;

fn bind_udp(addr: SocketAddr) -> Result<(Arc<udp::Listener>, SocketAddr), TransportError> {
    let bind_error = |source| TransportError::Bind {
        transport: Transport::Udp,
        addr,
        source,
    };
    let socket = std::net::UdpSocket::bind(addr).map_err(bind_error)?;
    let local = socket.local_addr().map_err(bind_error)?;
    socket.set_nonblocking(true).map_err(bind_error)?;
    // One socket takes every client's datagrams; the default buffer (about 200 KB, a few
    // hundred small datagrams) overflows whenever the receiving thread is preempted for a few
    // milliseconds under load, and each overflow costs a retransmission interval. The
    // kernel caps the request at net.core.rmem_max, which is fine.
    let sock = socket2::SockRef::from(&socket);
    if let Err(error) = sock.set_recv_buffer_size(UDP_RECEIVE_BUFFER) {
        tracing::debug!(%addr, %error, "cannot enlarge the UDP receive buffer");
    }
    // SAFETY: the socket owns its descriptor, which stays open and the same until the
    // AsyncFd, which owns the socket, is dropped.
    let socket = unsafe { AsyncFd::register(socket) }.map_err(|e| bind_error(e.into()))?;
    Ok((Arc::new(socket), local))
}

async fn bind_tcp(
    transport: Transport,
    addr: SocketAddr,
) -> Result<(TcpListener, SocketAddr), TransportError> {
    let bind_error = |source| TransportError::Bind {
        transport,
        addr,
        source,
    };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local))
}

/// Cheap, cloneable access to the running transports.
#[derive(Clone)]
pub struct TransportHandle {
    shared: Arc<Shared>,
}

impl fmt::Debug for TransportHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportHandle").finish_non_exhaustive()
    }
}

impl TransportHandle {
    /// Queues `data` (one complete serialized message) for `target`.
    ///
    /// For a connection this only enqueues and returns at once; [`Target::Connect`] without a
    /// live connection waits for the TCP connect and TLS handshake (bounded by the configured
    /// timeouts), so callers that must not wait should spawn the send.
    pub async fn send(&self, target: Target, data: Bytes) -> Result<(), SendError> {
        match target {
            Target::Connection(id) => self.shared.enqueue(id, data),
            Target::Connect {
                transport: transport @ (Transport::Tcp | Transport::Tls),
                addr,
                server_name,
            } => {
                let id = match self.shared.find(transport, addr) {
                    Some(id) => id,
                    None => self.shared.connect(transport, addr, server_name).await?,
                };
                self.shared.enqueue(id, data)
            }
            Target::Udp(addr) | Target::Connect { addr, .. } => {
                let failed = self.shared.send_udp_all(&[(addr, data)]).await;
                failed.into_iter().next().map_or(Ok(()), Err)
            }
        }
    }

    /// Sends datagrams from the UDP listener socket, in as few system calls as the kernel
    /// allows (see the `udp` module); for a fan-out of NOTIFYs, which all leave at once.
    /// Returns one error per datagram that could not be sent.
    pub async fn send_datagrams(&self, datagrams: &[(SocketAddr, Bytes)]) -> Vec<SendError> {
        self.shared.send_udp_all(datagrams).await
    }

    /// Sends messages on live connections, each connection's in the order given (`messages`
    /// is reordered by connection), in one system call per connection where the stream
    /// allows (see the `stream` module); for a fan-out of NOTIFYs. Returns one error per
    /// connection that failed.
    pub fn send_on_connections(&self, messages: &mut [(ConnectionId, Bytes)]) -> Vec<SendError> {
        self.shared.send_batches(messages)
    }

    /// The live connection a message to `target` would go over, if any: a
    /// [`Target::Connection`], or a stream [`Target::Connect`] that reuses one.
    pub fn live_connection(&self, target: &Target) -> Option<ConnectionId> {
        match target {
            Target::Connection(id) => Some(*id),
            Target::Connect {
                transport: transport @ (Transport::Tcp | Transport::Tls),
                addr,
                ..
            } => self.shared.find(*transport, *addr),
            Target::Connect { .. } | Target::Udp(_) => None,
        }
    }

    /// Whether a send to `target` would first have to open a connection (a TCP or TLS
    /// address with no live connection), and so may wait for the connect timeout.
    pub fn needs_connect(&self, target: &Target) -> bool {
        match target {
            Target::Connect {
                transport, addr, ..
            } => *transport != Transport::Udp && self.shared.find(*transport, *addr).is_none(),
            Target::Connection(_) | Target::Udp(_) => false,
        }
    }

    /// Whether the connection is still open (a binding's flow is usable).
    pub fn is_connected(&self, id: ConnectionId) -> bool {
        self.shared.is_connected(id)
    }

    /// Closes the connection after writing what is already queued (bounded by a short
    /// linger). A [`TransportEvent::Closed`] follows.
    pub fn close(&self, id: ConnectionId) {
        self.shared.close(id);
    }

    /// The bound address of a listener, `None` if that transport is not enabled.
    pub fn local_addr(&self, transport: Transport) -> Option<SocketAddr> {
        self.shared.local_addr(transport)
    }

    /// Stops accepting and receiving, and closes all connections gracefully.
    pub fn shutdown(&self) {
        self.shared.shutdown();
    }
}
