//! TCP and TLS connections (RFC 3261 §18.3 framing, RFC 5626 §3.5.1 CRLF keepalive) and the
//! connection registry shared by all tasks.
//!
//! Each connection has a reader task (decodes frames, answers pings, enforces the idle
//! timeout, and owns the connection's teardown) and a writer task fed by an unbounded
//! channel whose size is bounded in bytes by a counter checked on every enqueue.
//!
//! A batch of messages for a plain TCP connection with nothing queued skips the writer
//! task: [`Shared::send_batches`] writes it at once from the sender's thread, in one
//! vectored write, and queues only what the socket did not take. TLS always goes through
//! the writer task, since its session state is shared with the reader.

use std::collections::HashMap;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use rustls::pki_types::ServerName;
use sip_message::{FramingError, StreamDecoder, StreamItem};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::{timeout, Instant};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tracing::{debug, info, warn};

use crate::{ConnectionId, Inbound, SendError, Transport, TransportConfig, TransportEvent};

/// Read granularity; the decoder bounds how much is buffered overall.
const READ_CHUNK: usize = 16 * 1024;
/// Bytes gathered into one write once several messages wait for a connection.
const WRITE_BATCH: usize = 64 * 1024;
/// Messages gathered into one write, well below the kernel's IOV_MAX (1024).
const WRITE_SLICES: usize = 64;
/// How long a gracefully closed connection may take to flush what was queued before it.
const CLOSE_LINGER: Duration = Duration::from_secs(2);
/// Pause after a failed accept, so fd exhaustion does not turn into a busy loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// RFC 5626 §3.5.1 pong.
const PONG: &[u8] = b"\r\n";

/// What the registry holds for one open connection.
struct Entry {
    transport: Transport,
    peer: SocketAddr,
    queue: mpsc::UnboundedSender<Bytes>,
    queued_bytes: Arc<AtomicUsize>,
    writer: AbortHandle,
    stop: Arc<Notify>,
    /// A plain TCP connection's stream, for writes that skip the writer task.
    direct: Option<Arc<OwnedWriteHalf>>,
}

#[derive(Default)]
struct Registry {
    /// Keyed by ids we hand out, so a fast hash that is no defence against chosen keys
    /// serves (every message sent looks its connection up here).
    by_id: HashMap<ConnectionId, Entry, foldhash::fast::RandomState>,
    by_peer: HashMap<(Transport, SocketAddr), ConnectionId>,
}

impl Registry {
    fn remove(&mut self, id: ConnectionId) -> Option<Entry> {
        let entry = self.by_id.remove(&id)?;
        let key = (entry.transport, entry.peer);
        if self.by_peer.get(&key) == Some(&id) {
            self.by_peer.remove(&key);
        }
        Some(entry)
    }

    /// Hands `data` to the writer task of `id`, which may hold `budget` bytes unwritten.
    fn enqueue(&mut self, id: ConnectionId, data: Bytes, budget: usize) -> Result<(), SendError> {
        let entry = self.by_id.get(&id).ok_or(SendError::ConnectionClosed(id))?;
        let queued = entry.queued_bytes.fetch_add(data.len(), Ordering::AcqRel) + data.len();
        if queued <= budget {
            return entry
                .queue
                .send(data)
                .map_err(|_| SendError::ConnectionClosed(id));
        }
        // The peer is not reading: waiting would let it pin our memory, so cut it off
        // without flushing.
        if let Some(entry) = self.remove(id) {
            warn!(connection = %id, peer = %entry.peer, budget, "send queue over budget; closing");
            entry.writer.abort();
            entry.stop.notify_one();
        }
        Err(SendError::QueueFull {
            connection: id,
            budget,
        })
    }

    /// Sends `messages`, all for one connection, in order: written at once when it is plain
    /// TCP with nothing queued (queued bytes must leave first), otherwise, and for whatever
    /// the socket does not take, through the writer task.
    fn send_batch(
        &mut self,
        messages: &[(ConnectionId, Bytes)],
        budget: usize,
    ) -> Result<(), SendError> {
        let Some(&(id, _)) = messages.first() else {
            return Ok(());
        };
        let entry = self.by_id.get(&id).ok_or(SendError::ConnectionClosed(id))?;
        let mut written = match &entry.direct {
            Some(stream) if entry.queued_bytes.load(Ordering::Acquire) == 0 => {
                let slices: Vec<IoSlice<'_>> = messages
                    .iter()
                    .take(WRITE_SLICES)
                    .map(|(_, data)| IoSlice::new(data))
                    .collect();
                // On a full socket buffer, and on a broken connection (which the writer task
                // then meets and reports), everything goes to the writer task.
                stream
                    .as_ref()
                    .as_ref()
                    .try_write_vectored(&slices)
                    .unwrap_or(0)
            }
            _ => 0,
        };
        for (_, data) in messages {
            if written >= data.len() {
                written -= data.len();
                continue;
            }
            let rest = data.slice(written..);
            written = 0;
            self.enqueue(id, rest, budget)?;
        }
        Ok(())
    }
}

/// State shared by the handle and all tasks.
pub(crate) struct Shared {
    config: TransportConfig,
    events: mpsc::Sender<TransportEvent>,
    udp: Option<(Arc<crate::udp::Listener>, SocketAddr)>,
    /// Bound TCP and TLS listener addresses.
    stream_locals: [Option<SocketAddr>; 2],
    connector: Option<TlsConnector>,
    registry: Mutex<Registry>,
    /// Connections holding a [`Slot`]; counts handshakes in progress, unlike the registry.
    open: AtomicUsize,
    next_id: AtomicU64,
    listeners: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    pub(crate) fn new(
        config: TransportConfig,
        events: mpsc::Sender<TransportEvent>,
        udp: Option<(Arc<crate::udp::Listener>, SocketAddr)>,
        stream_locals: [Option<SocketAddr>; 2],
        connector: Option<TlsConnector>,
    ) -> Shared {
        Shared {
            config,
            events,
            udp,
            stream_locals,
            connector,
            registry: Mutex::new(Registry::default()),
            open: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            listeners: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn config(&self) -> &TransportConfig {
        &self.config
    }

    pub(crate) fn set_listener_tasks(&self, tasks: Vec<JoinHandle<()>>) {
        *lock(&self.listeners) = tasks;
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        lock(&self.registry)
    }

    pub(crate) fn local_addr(&self, transport: Transport) -> Option<SocketAddr> {
        match transport {
            Transport::Udp => self.udp.as_ref().map(|(_, addr)| *addr),
            Transport::Tcp => self.stream_locals[0],
            Transport::Tls => self.stream_locals[1],
        }
    }

    pub(crate) fn is_connected(&self, id: ConnectionId) -> bool {
        self.registry().by_id.contains_key(&id)
    }

    pub(crate) fn find(&self, transport: Transport, addr: SocketAddr) -> Option<ConnectionId> {
        self.registry().by_peer.get(&(transport, addr)).copied()
    }

    /// Graceful close: dropping the entry drops the queue sender, so the writer drains what
    /// is queued and then shuts the stream down; the reader is told to stop.
    pub(crate) fn close(&self, id: ConnectionId) {
        if let Some(entry) = self.registry().remove(id) {
            debug!(connection = %id, peer = %entry.peer, "closing on request");
            entry.stop.notify_one();
        }
    }

    pub(crate) fn shutdown(&self) {
        for task in lock(&self.listeners).drain(..) {
            task.abort();
        }
        let entries: Vec<Entry> = {
            let mut registry = self.registry();
            registry.by_peer.clear();
            registry.by_id.drain().map(|(_, entry)| entry).collect()
        };
        for entry in entries {
            entry.stop.notify_one();
        }
    }

    pub(crate) async fn send_udp_all(&self, datagrams: &[(SocketAddr, Bytes)]) -> Vec<SendError> {
        let Some((socket, _)) = &self.udp else {
            return datagrams
                .iter()
                .map(|_| SendError::NotEnabled(Transport::Udp))
                .collect();
        };
        crate::udp::send_all(socket, datagrams)
            .await
            .into_iter()
            .map(|(addr, source)| SendError::Udp { addr, source })
            .collect()
    }

    pub(crate) fn enqueue(&self, id: ConnectionId, data: Bytes) -> Result<(), SendError> {
        let budget = self.config.max_queued_bytes_per_connection;
        self.registry().enqueue(id, data, budget)
    }

    /// Sends every message on its connection, each connection's in the order given
    /// (`messages` is reordered by connection), with one vectored write per connection
    /// where it can (see the module doc). Returns one error per connection that failed.
    pub(crate) fn send_batches(&self, messages: &mut [(ConnectionId, Bytes)]) -> Vec<SendError> {
        let budget = self.config.max_queued_bytes_per_connection;
        // Stable, so each connection's messages keep their order.
        messages.sort_by_key(|(id, _)| *id);
        let mut registry = self.registry();
        messages
            .chunk_by(|a, b| a.0 == b.0)
            .filter_map(|batch| registry.send_batch(batch, budget).err())
            .collect()
    }

    fn try_slot(self: &Arc<Self>) -> Option<Slot> {
        let max = self.config.max_connections;
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot {
                shared: self.clone(),
            })
    }

    pub(crate) async fn connect(
        self: &Arc<Self>,
        transport: Transport,
        addr: SocketAddr,
        server_name: Option<String>,
    ) -> Result<ConnectionId, SendError> {
        let tls = match transport {
            Transport::Tls => {
                let connector = self.connector.clone().ok_or(SendError::NoTlsClientConfig)?;
                let name = match server_name {
                    Some(name) => ServerName::try_from(name.clone())
                        .map_err(|_| SendError::InvalidServerName(name))?,
                    None => ServerName::IpAddress(addr.ip().into()),
                };
                Some((connector, name))
            }
            Transport::Tcp | Transport::Udp => None,
        };
        let slot = self
            .try_slot()
            .ok_or(SendError::TooManyConnections(self.config.max_connections))?;
        let connect_error = |source| SendError::Connect {
            transport,
            addr,
            source,
        };
        let tcp = timeout(self.config.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| connect_error(timed_out("connect")))?
            .map_err(connect_error)?;
        set_nodelay(&tcp, addr);
        let local = tcp.local_addr().map_err(connect_error)?;
        let id = match tls {
            None => spawn_tcp(self, tcp, addr, local, slot),
            Some((connector, name)) => {
                let stream = timeout(
                    self.config.tls_handshake_timeout,
                    connector.connect(name, tcp),
                )
                .await
                .map_err(|_| connect_error(timed_out("TLS handshake")))?
                .map_err(connect_error)?;
                spawn_tls(self, stream, addr, local, slot)
            }
        };
        debug!(connection = %id, peer = %addr, %transport, "connected");
        Ok(id)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing under these locks can leave the data half-updated, so a poisoned lock is usable.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("{what} timed out"))
}

fn set_nodelay(stream: &TcpStream, peer: SocketAddr) {
    // SIP messages are written whole; Nagle would only delay them.
    if let Err(error) = stream.set_nodelay(true) {
        debug!(%peer, %error, "cannot set TCP_NODELAY");
    }
}

/// One unit of the connection cap, released when the connection's tasks end.
struct Slot {
    shared: Arc<Shared>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.open.fetch_sub(1, Ordering::AcqRel);
    }
}

pub(crate) async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    listen_addr: SocketAddr,
    acceptor: Option<TlsAcceptor>,
) {
    let transport = if acceptor.is_some() {
        Transport::Tls
    } else {
        Transport::Tcp
    };
    while !shared.events.is_closed() {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                warn!(%transport, %listen_addr, %error, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Some(slot) = shared.try_slot() else {
            warn!(
                %transport,
                %peer,
                max = shared.config.max_connections,
                "connection limit reached; closing new connection"
            );
            continue;
        };
        set_nodelay(&tcp, peer);
        let local = tcp.local_addr().unwrap_or(listen_addr);
        match &acceptor {
            None => {
                let id = spawn_tcp(&shared, tcp, peer, local, slot);
                debug!(connection = %id, %peer, "TCP connection accepted");
            }
            Some(acceptor) => {
                // The handshake runs in its own task so a slow client cannot stall accepts.
                let handshake = acceptor.accept(tcp);
                let shared = shared.clone();
                tokio::spawn(async move {
                    match timeout(shared.config.tls_handshake_timeout, handshake).await {
                        Ok(Ok(stream)) => {
                            let id = spawn_tls(&shared, stream, peer, local, slot);
                            debug!(connection = %id, %peer, "TLS connection accepted");
                        }
                        Ok(Err(error)) => debug!(%peer, %error, "TLS handshake failed"),
                        Err(_) => debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
}

/// Registers an established plain TCP connection and starts its reader and writer. Its
/// stream is split without a lock (tokio reads and writes a `TcpStream` through shared
/// references), and the registry keeps the writing side for direct writes.
fn spawn_tcp(
    shared: &Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    slot: Slot,
) -> ConnectionId {
    let (read_half, write_half) = stream.into_split();
    let write_half = Arc::new(write_half);
    let halves = Halves {
        read: read_half,
        write: SharedTcpWriter(write_half.clone()),
        direct: Some(write_half),
    };
    spawn_connection(shared, halves, Transport::Tcp, peer, local, slot)
}

/// Registers an established TLS connection and starts its reader and writer.
fn spawn_tls<S>(
    shared: &Arc<Shared>,
    stream: S,
    peer: SocketAddr,
    local: SocketAddr,
    slot: Slot,
) -> ConnectionId
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (read, write) = tokio::io::split(stream);
    let halves = Halves {
        read,
        write,
        direct: None,
    };
    spawn_connection(shared, halves, Transport::Tls, peer, local, slot)
}

/// A connection's reading and writing sides, and for plain TCP its stream for direct writes.
struct Halves<R, W> {
    read: R,
    write: W,
    direct: Option<Arc<OwnedWriteHalf>>,
}

/// The writer task's side of a plain TCP stream that direct writes share.
struct SharedTcpWriter(Arc<OwnedWriteHalf>);

impl SharedTcpWriter {
    fn stream(&self) -> &TcpStream {
        self.0.as_ref().as_ref()
    }
}

impl AsyncWrite for SharedTcpWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let stream = self.stream();
        loop {
            ready!(stream.poll_write_ready(cx))?;
            // A write that would block clears the readiness, so the next poll waits.
            match stream.try_write_vectored(bufs) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                result => return Poll::Ready(result),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(socket2::SockRef::from(self.stream()).shutdown(std::net::Shutdown::Write))
    }
}

/// Registers an established connection and starts its reader and writer.
fn spawn_connection<R, W>(
    shared: &Arc<Shared>,
    halves: Halves<R, W>,
    transport: Transport,
    peer: SocketAddr,
    local: SocketAddr,
    slot: Slot,
) -> ConnectionId
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let id = ConnectionId(shared.next_id.fetch_add(1, Ordering::Relaxed));
    let Halves {
        read: read_half,
        write: write_half,
        direct,
    } = halves;
    let (queue, queue_rx) = mpsc::unbounded_channel();
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(Notify::new());
    let writer = tokio::spawn(write_loop(
        write_half,
        queue_rx,
        queued_bytes.clone(),
        stop.clone(),
        id,
    ));
    {
        let mut registry = shared.registry();
        registry.by_id.insert(
            id,
            Entry {
                transport,
                peer,
                queue,
                queued_bytes,
                writer: writer.abort_handle(),
                stop: stop.clone(),
                direct,
            },
        );
        registry.by_peer.insert((transport, peer), id);
    }
    let connection = Connection {
        shared: shared.clone(),
        id,
        transport,
        peer,
        local,
        stop,
    };
    tokio::spawn(connection.run(read_half, writer, slot));
    id
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut stream: W,
    mut queue: mpsc::UnboundedReceiver<Bytes>,
    queued_bytes: Arc<AtomicUsize>,
    stop: Arc<Notify>,
    id: ConnectionId,
) {
    let result: io::Result<()> = async {
        let mut batch = Vec::new();
        while let Some(first) = queue.recv().await {
            // Whatever queued up meanwhile leaves in one vectored write: a send call per
            // message costs far more, and gathering needs no copy.
            let mut written = first.len();
            batch.push(first);
            while written < WRITE_BATCH && batch.len() < WRITE_SLICES {
                match queue.try_recv() {
                    Ok(next) => {
                        written += next.len();
                        batch.push(next);
                    }
                    Err(_) => break,
                }
            }
            write_all_vectored(&mut stream, &mut batch).await?;
            // TLS buffers records until flushed.
            stream.flush().await?;
            queued_bytes.fetch_sub(written, Ordering::AcqRel);
        }
        stream.shutdown().await
    }
    .await;
    if let Err(error) = result {
        debug!(connection = %id, %error, "write failed; closing");
        stop.notify_one();
    }
}

/// Writes every buffer of `batch` in order, leaving `batch` empty (its capacity is kept for
/// the next batch). A stream without vectored writes takes one buffer per call, which the
/// loop handles like any partial write.
async fn write_all_vectored<W: AsyncWrite + Unpin>(
    stream: &mut W,
    batch: &mut Vec<Bytes>,
) -> io::Result<()> {
    let mut start = 0;
    loop {
        while batch.get(start).is_some_and(Bytes::is_empty) {
            start += 1;
        }
        let Some(rest) = batch.get(start..).filter(|rest| !rest.is_empty()) else {
            batch.clear();
            return Ok(());
        };
        let slices: Vec<IoSlice<'_>> = rest.iter().map(|b| IoSlice::new(b)).collect();
        let mut n = stream.write_vectored(&slices).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while n > 0 {
            let Some(head) = batch.get_mut(start) else {
                break;
            };
            if n >= head.len() {
                n -= head.len();
                start += 1;
            } else {
                head.advance(n);
                n = 0;
            }
        }
    }
}

enum CloseReason {
    Requested,
    PeerClosed,
    Idle,
    Io(io::Error),
    Framing(FramingError),
    /// The event receiver is gone: the server is shutting down.
    Unwanted,
}

struct Connection {
    shared: Arc<Shared>,
    id: ConnectionId,
    transport: Transport,
    peer: SocketAddr,
    local: SocketAddr,
    stop: Arc<Notify>,
}

impl Connection {
    async fn run<R: AsyncRead + Unpin>(
        self,
        mut stream: R,
        mut writer: JoinHandle<()>,
        slot: Slot,
    ) {
        let reason = self.read_loop(&mut stream).await;
        let (id, peer) = (self.id, self.peer);
        match &reason {
            CloseReason::Requested | CloseReason::Unwanted => {}
            CloseReason::PeerClosed => debug!(connection = %id, %peer, "closed by peer"),
            CloseReason::Idle => info!(connection = %id, %peer, "idle timeout; closing"),
            CloseReason::Io(error) => debug!(connection = %id, %peer, %error, "read failed"),
            CloseReason::Framing(error) => {
                warn!(connection = %id, %peer, %error, "framing error; closing")
            }
        }
        if !matches!(reason, CloseReason::Requested) {
            // Nobody is listening any more, or the peer is gone or broken: nothing worth
            // flushing.
            writer.abort();
        }
        drop(self.shared.registry().remove(id));
        if timeout(CLOSE_LINGER, &mut writer).await.is_err() {
            writer.abort();
        }
        drop(stream);
        drop(slot);
        // Ignored if the server is gone.
        let _ = self.shared.events.send(TransportEvent::Closed(id)).await;
    }

    async fn read_loop<R: AsyncRead + Unpin>(&self, stream: &mut R) -> CloseReason {
        let idle_timeout = self.shared.config.idle_timeout;
        let mut decoder = StreamDecoder::new(self.shared.config.limits);
        // One stop notification and one idle timer for the whole connection: a timeout per
        // read put a timer entry in and took it out again for every read. The timer only
        // moves when it fires early, i.e. when something was read since it was set.
        let stopped = self.stop.notified();
        tokio::pin!(stopped);
        let idle = tokio::time::sleep(idle_timeout);
        tokio::pin!(idle);
        let mut last_read = Instant::now();
        loop {
            let buffer = decoder.buffer_mut();
            buffer.reserve(READ_CHUNK);
            tokio::select! {
                biased;
                () = &mut stopped => return CloseReason::Requested,
                read = stream.read_buf(buffer) => match read {
                    Err(error) => return CloseReason::Io(error),
                    Ok(0) => return CloseReason::PeerClosed,
                    Ok(_) => last_read = Instant::now(),
                },
                () = &mut idle => {
                    let idle_until = last_read + idle_timeout;
                    if Instant::now() >= idle_until {
                        return CloseReason::Idle;
                    }
                    idle.as_mut().reset(idle_until);
                    continue;
                }
            }
            loop {
                match decoder.next_item() {
                    Ok(None) => break,
                    Ok(Some(StreamItem::Message(data))) => {
                        let inbound = Inbound {
                            transport: self.transport,
                            peer: self.peer,
                            local: self.local,
                            connection: Some(self.id),
                            data,
                        };
                        // Waiting here stops reading, which pushes back on the peer.
                        if self
                            .shared
                            .events
                            .send(TransportEvent::Message(inbound))
                            .await
                            .is_err()
                        {
                            return CloseReason::Unwanted;
                        }
                    }
                    Ok(Some(StreamItem::Ping)) => {
                        if self
                            .shared
                            .enqueue(self.id, Bytes::from_static(PONG))
                            .is_err()
                        {
                            return CloseReason::Requested;
                        }
                    }
                    Ok(Some(StreamItem::Pong)) => {}
                    Err(error) => return CloseReason::Framing(error),
                }
            }
        }
    }
}
