//! UDP (RFC 3261 §18.1.1, §18.2.1): one datagram is one message.
//!
//! Datagrams move between the kernel and us in batches: recvmmsg(2) takes what has queued
//! up in one call, and sendmmsg(2) hands over a whole NOTIFY fan-out at once. Besides the
//! system calls saved, a burst sent in one call reaches a receiver that is still asleep
//! only once, so it is woken once for the burst instead of once per datagram.

use std::future::Future;
use std::io;
use std::mem;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use sip_message::Limits;
use socket2::{SockAddr, SockAddrStorage};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::time::Sleep;
use tracing::debug;

use crate::{Inbound, Transport, TransportEvent};

/// The largest UDP payload; anything longer cannot arrive whole.
const MAX_DATAGRAM: usize = 65535;
/// Pause after a receive error, so a persistent socket error does not spin a core.
const ERROR_BACKOFF: Duration = Duration::from_millis(10);
/// Datagrams taken from the kernel by one recvmmsg(2).
const RECEIVE_BATCH: usize = 16;
/// Datagrams handed to the kernel by one sendmmsg(2).
const SEND_BATCH: usize = 64;

/// One datagram taken by [`receive_batch`]: its length, its sender, and whether it was
/// longer than the buffer.
struct Received {
    len: usize,
    peer: Option<SocketAddr>,
    truncated: bool,
}

/// The UDP listener socket, registered with the runtime's reactor.
pub(crate) type Listener = AsyncFd<std::net::UdpSocket>;

/// Reads the listener socket inside the task that takes the transport events (see
/// [`crate::TransportEvents`]). Reading there instead of in a task of its own saves each
/// wakeup a task switch, a queue hop and the scheduler's extra poll of the reactor that
/// waking another task costs on the current-thread runtime; a batch shorter than asked for
/// also tells that the queue is empty, which spares the read that would only say so.
pub(crate) struct DatagramReader {
    socket: Arc<Listener>,
    local: SocketAddr,
    /// Each holds the largest message we accept; a longer datagram arrives truncated and is
    /// dropped, as it would be after a full read.
    buffers: Vec<Vec<u8>>,
    /// Set after a receive error, so a persistent one does not spin the core.
    backoff: Option<Pin<Box<Sleep>>>,
}

impl DatagramReader {
    pub(crate) fn new(socket: Arc<Listener>, local: SocketAddr, limits: Limits) -> DatagramReader {
        let max_message = limits
            .max_header_bytes
            .saturating_add(limits.max_body_bytes)
            .min(MAX_DATAGRAM);
        DatagramReader {
            socket,
            local,
            buffers: (0..RECEIVE_BATCH).map(|_| vec![0; max_message]).collect(),
            backoff: None,
        }
    }

    /// Appends the messages among at most `limit` queued datagrams to `events`; when it
    /// appends none, `cx` is woken once more arrive. What is not read waits in the socket's
    /// kernel receive buffer, which drops only once it is full.
    pub(crate) fn poll_receive(
        &mut self,
        cx: &mut Context<'_>,
        events: &mut Vec<TransportEvent>,
        limit: usize,
    ) {
        if let Some(backoff) = &mut self.backoff {
            if backoff.as_mut().poll(cx).is_pending() {
                return;
            }
            self.backoff = None;
        }
        let appended = events.len();
        let mut taken = 0;
        let mut failure = None;
        while taken < limit {
            let mut guard = match self.socket.poll_read_ready(cx) {
                Poll::Ready(Ok(guard)) => guard,
                Poll::Ready(Err(error)) => {
                    failure = Some(error);
                    break;
                }
                Poll::Pending => break,
            };
            let wanted = (limit - taken).min(RECEIVE_BATCH);
            let buffers = &mut self.buffers[..wanted];
            let batch = match guard.try_io(|socket| receive_batch(socket.get_ref(), buffers)) {
                Ok(Ok(batch)) => batch,
                Ok(Err(error)) => {
                    failure = Some(error);
                    break;
                }
                // Readiness was stale and is now cleared: the next poll registers the waker.
                Err(_would_block) => continue,
            };
            if batch.len() < wanted {
                guard.clear_ready();
            }
            taken += batch.len();
            events.extend(
                batch
                    .into_iter()
                    .zip(&self.buffers)
                    .filter_map(|(received, buffer)| inbound(received, buffer, self.local))
                    .map(TransportEvent::Message),
            );
        }
        if let Some(error) = failure {
            self.back_off(cx, &error);
        }
        if events.len() == appended && taken == limit {
            // Only keepalives and dropped datagrams, and maybe more queued: look again.
            cx.waker().wake_by_ref();
        }
    }

    fn back_off(&mut self, cx: &mut Context<'_>, error: &io::Error) {
        // Some platforms report ICMP errors for earlier sends here; the socket is fine.
        debug!(local = %self.local, %error, "UDP receive failed");
        let mut backoff = Box::pin(tokio::time::sleep(ERROR_BACKOFF));
        // Registers the waker; the sleep has not elapsed yet.
        let _ = backoff.as_mut().poll(cx);
        self.backoff = Some(backoff);
    }
}

/// The message a received datagram carries, if it carries one.
fn inbound(received: Received, buffer: &[u8], local: SocketAddr) -> Option<Inbound> {
    let peer = received.peer?;
    let datagram = &buffer[..received.len];
    // CRLF keepalives (and empty datagrams) only keep a NAT binding open.
    if datagram.iter().all(|&b| b == b'\r' || b == b'\n') {
        return None;
    }
    if received.truncated {
        debug!(%peer, max_message = buffer.len(), "dropping oversized UDP datagram");
        return None;
    }
    Some(Inbound {
        transport: Transport::Udp,
        peer,
        local,
        connection: None,
        data: Bytes::copy_from_slice(datagram),
    })
}

/// One recvmmsg(2) into `buffers`: the datagrams already queued, at least one (otherwise
/// `WouldBlock`, and the caller waits for readiness).
fn receive_batch(
    socket: &std::net::UdpSocket,
    buffers: &mut [Vec<u8>],
) -> io::Result<Vec<Received>> {
    let mut addresses: Vec<SockAddrStorage> =
        buffers.iter().map(|_| SockAddrStorage::zeroed()).collect();
    let mut iovecs: Vec<libc::iovec> = buffers
        .iter_mut()
        .map(|buffer| libc::iovec {
            iov_base: buffer.as_mut_ptr().cast(),
            iov_len: buffer.len(),
        })
        .collect();
    let mut headers: Vec<libc::mmsghdr> = addresses
        .iter_mut()
        .zip(iovecs.iter_mut())
        .map(|(address, iovec)| {
            let namelen = address.size_of();
            message_header(address as *mut SockAddrStorage, namelen, iovec)
        })
        .collect();
    // SAFETY: every header points at a live, exclusively borrowed address slot and iovec,
    // each iovec at a live buffer of the length it states; none of them moves or is
    // dropped before the call returns, and the kernel writes no further than those lengths.
    let count = unsafe {
        libc::recvmmsg(
            socket.as_raw_fd(),
            headers.as_mut_ptr(),
            headers.len() as libc::c_uint,
            0,
            std::ptr::null_mut(),
        )
    };
    let count = datagram_count(count)?;
    Ok(headers
        .iter()
        .zip(addresses)
        .take(count)
        .map(|(header, address)| {
            // SAFETY: the kernel wrote an address of `msg_namelen` bytes into the storage.
            let peer = unsafe { SockAddr::new(address, header.msg_hdr.msg_namelen) };
            Received {
                len: header.msg_len as usize,
                peer: peer.as_socket(),
                truncated: header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            }
        })
        .collect())
}

/// Sends every datagram from `socket` in as few sendmmsg(2) calls as the kernel allows.
/// Returns those that failed, with their errors.
pub(crate) async fn send_all(
    socket: &Listener,
    datagrams: &[(SocketAddr, Bytes)],
) -> Vec<(SocketAddr, io::Error)> {
    let mut failed = Vec::new();
    let mut next = 0;
    while next < datagrams.len() {
        let batch = &datagrams[next..datagrams.len().min(next + SEND_BATCH)];
        match socket
            .async_io(Interest::WRITABLE, |socket| send_batch(socket, batch))
            .await
        {
            Ok(sent) if sent > 0 => next += sent,
            // The kernel reports an error only for the first datagram of a call; skipping
            // it lets the rest go in the next call.
            Ok(_) => {
                failed.push((batch[0].0, io::ErrorKind::WriteZero.into()));
                next += 1;
            }
            Err(error) => {
                failed.push((batch[0].0, error));
                next += 1;
            }
        }
    }
    failed
}

/// One sendmmsg(2): how many of `datagrams` (from the first) the kernel took.
fn send_batch(
    socket: &std::net::UdpSocket,
    datagrams: &[(SocketAddr, Bytes)],
) -> io::Result<usize> {
    let addresses: Vec<SockAddr> = datagrams
        .iter()
        .map(|(addr, _)| SockAddr::from(*addr))
        .collect();
    let mut iovecs: Vec<libc::iovec> = datagrams
        .iter()
        .map(|(_, data)| libc::iovec {
            // The kernel only reads through it; iovec has no const variant.
            iov_base: data.as_ptr().cast_mut().cast(),
            iov_len: data.len(),
        })
        .collect();
    let mut headers: Vec<libc::mmsghdr> = addresses
        .iter()
        .zip(iovecs.iter_mut())
        .map(|(address, iovec)| message_header(address.as_ptr().cast_mut(), address.len(), iovec))
        .collect();
    // SAFETY: every header points at a live address and iovec, each iovec at a live buffer
    // of the length it states; none moves or is dropped before the call returns, and for a
    // send the kernel writes nothing but each header's `msg_len`.
    let count = unsafe {
        libc::sendmmsg(
            socket.as_raw_fd(),
            headers.as_mut_ptr(),
            headers.len() as libc::c_uint,
            0,
        )
    };
    datagram_count(count)
}

/// What a batch call returned: how many datagrams it moved, or the error it set.
fn datagram_count(returned: libc::c_int) -> io::Result<usize> {
    usize::try_from(returned).map_err(|_| io::Error::last_os_error())
}

/// A message header for one datagram through one buffer.
fn message_header(
    address: *mut SockAddrStorage,
    address_len: libc::socklen_t,
    iovec: &mut libc::iovec,
) -> libc::mmsghdr {
    // SAFETY: msghdr is plain data for which all zeroes (null pointers, zero lengths, no
    // control data) is a valid value; some targets give it private padding fields, so it
    // cannot be written as a literal.
    let mut header: libc::msghdr = unsafe { mem::zeroed() };
    header.msg_name = address.cast();
    header.msg_namelen = address_len;
    header.msg_iov = iovec;
    header.msg_iovlen = 1;
    libc::mmsghdr {
        msg_hdr: header,
        msg_len: 0,
    }
}
