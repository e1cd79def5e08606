//! Sans-IO SIP transactions: RFC 3261 §17 with the RFC 6026 corrections.
//!
//! The layer owns no sockets, clocks or threads. The caller feeds it parsed messages and the
//! current time as [`std::time::Instant`] values, and carries out the [`Action`]s it returns:
//! sending bytes to an opaque destination token `D`, and telling the transaction user (TU)
//! about timeouts, transport errors and terminated transactions. Timers are driven by
//! [`TransactionLayer::next_deadline`] and [`TransactionLayer::on_timer`].
//!
//! # State machines
//!
//! * INVITE client (§17.1.1, RFC 6026 §8.4): Calling → Proceeding → Completed (non-2xx final,
//!   the layer sends the ACK itself, §17.1.1.3) or Accepted (2xx, Timer M) → Terminated.
//!   Timers A (retransmission, unreliable only), B (timeout), D (Completed linger), M.
//! * Non-INVITE client (§17.1.2): Trying → Proceeding → Completed → Terminated.
//!   Timers E (retransmission, capped at T2, unreliable only), F (timeout), K. Completed
//!   only absorbs response retransmissions, so the transaction terminates with its final
//!   response and Timer K is its key's hash kept for T4 (see `absorb`).
//! * INVITE server (§17.2.1, RFC 6026 §8.5–8.7): Proceeding → Completed (non-2xx final) →
//!   Confirmed (ACK) → Terminated, or Proceeding → Accepted (2xx, Timer L) → Terminated.
//!   Timers G (final response retransmission, unreliable only), H (ACK wait), I, L.
//! * Non-INVITE server (§17.2.2): Trying → Proceeding → Completed → Terminated. Timer J.
//!
//! On reliable transports the retransmission timers are never armed and Timers D, I, J and K
//! are zero (§17.1.1.2, §17.1.2.2, §17.2.1, §17.2.2): the transaction terminates within the
//! call that would have armed them, and the returned actions include
//! [`Action::Terminated`].
//!
//! # Matching
//!
//! Responses match client transactions by the top Via branch and the CSeq method (§17.1.3).
//! Requests match server transactions by branch, sent-by and method, with ACK matching its
//! INVITE (§17.2.3); a CANCEL is its own transaction and is paired with the INVITE it cancels
//! by the same rule with the method ignored (§9.2). Requests whose branch lacks the
//! `z9hG4bK` magic cookie fall back to the RFC 2543 rule: Request-URI, To tag, From tag,
//! Call-ID, CSeq number and top Via, where an ACK must carry the To tag of the final response
//! the transaction sent.
//!
//! # Division of labour with the TU
//!
//! * The TU answers every [`ServerEvent::NewRequest`] / [`ServerEvent::Cancel`] through
//!   [`TransactionLayer::respond`]; a server transaction that never gets a final response
//!   lives until the TU answers it (§17.2 defines no timeout for that state). The TU also
//!   decides whether to send 100 Trying for an INVITE (§17.2.1's 200 ms rule).
//! * 2xx retransmission and the ACK for a 2xx belong to the TU/dialog layer (§13.3.1.4,
//!   §13.2.2.4), not to this layer.
//! * The destination `D` given with a request is where its responses go; the caller applies
//!   §18.2.2 (received/rport, connection reuse) when it builds `D`.

//! # Driving it
//!
//! ```text
//! datagram/frame parsed   -> on_request(msg, source, reliable, now)  -> ServerEvent
//!                            on_response(msg, now)                   -> ClientEvent
//! TU answers              -> respond(id, bytes, status, now)         -> Vec<Action>
//! TU sends a request      -> send_request(msg, dest, reliable, now)  -> (ClientTxId, Action)
//! transport failed        -> on_transport_error(id)                  -> Vec<Action>
//! after every call        -> next_deadline() ; at that instant: on_timer(now) -> Vec<Action>
//! ```

mod absorb;
mod key;
mod layer;
mod table;
mod timer;

#[cfg(test)]
mod tests;

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use sip_message::Message;

pub use layer::TransactionLayer;

/// Timer values and limits (RFC 3261 §17.1.1.1, Table 4 in Appendix A).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// RTT estimate; 500 ms by default.
    pub t1: Duration,
    /// Maximum retransmission interval for non-INVITE requests and INVITE responses; 4 s.
    pub t2: Duration,
    /// Maximum time a message stays in the network; 5 s. Timers I and K on unreliable transports.
    pub t4: Duration,
    /// Timer D on unreliable transports: "at least 32 seconds" (§17.1.1.2).
    pub timer_d: Duration,
    /// Live server transactions beyond which new requests get [`ServerEvent::Overloaded`].
    /// Completed ones linger (Timers I, J) only while at most half of it are live.
    pub max_server_transactions: usize,
    /// Live client transactions beyond which [`TransactionLayer::send_request`] refuses.
    /// Kept separate from the server limit so an inbound flood cannot starve our own NOTIFYs.
    /// Also how many completed non-INVITE ones are remembered for Timer K at most.
    pub max_client_transactions: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            timer_d: Duration::from_secs(32),
            max_server_transactions: 100_000,
            max_client_transactions: 100_000,
        }
    }
}

impl Config {
    /// 64*T1: Timers B, F, H, J (unreliable), L and M.
    pub fn timeout(&self) -> Duration {
        self.t1.saturating_mul(64)
    }
}

/// Server transaction handle; unique for the lifetime of the layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerTxId(table::Handle);

/// Client transaction handle; unique for the lifetime of the layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientTxId(table::Handle);

/// Either kind of transaction, as named in [`Action`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxId {
    Server(ServerTxId),
    Client(ClientTxId),
}

/// What the caller must do after a call into the layer, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<D> {
    /// Hand these bytes to the transport for `dest`.
    Send { dest: D, data: Bytes },
    /// Timer B/F fired for a client transaction (no final response: the TU treats it as a
    /// 408, e.g. a NOTIFY that timed out), or Timer H fired for an INVITE server
    /// transaction (no ACK for its non-2xx final response). [`Action::Terminated`] follows.
    Timeout(TxId),
    /// The caller reported a transport failure with
    /// [`TransactionLayer::on_transport_error`] (§17.1.4, §17.2.4).
    /// [`Action::Terminated`] follows.
    TransportError(TxId),
    /// The transaction is gone; its id will not appear again. Every transaction ends with
    /// exactly one of these, so the TU can drop whatever it keeps per transaction.
    Terminated(TxId),
}

/// Whom a CANCEL is for (§9.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelTarget {
    /// The INVITE has no final response yet: answer the CANCEL with 200, then the INVITE
    /// with 487.
    Pending(ServerTxId),
    /// The INVITE already has its final response: answer the CANCEL with 200, nothing else.
    AlreadyAnswered(ServerTxId),
    /// No INVITE server transaction matches: answer the CANCEL with 481.
    NotFound,
}

/// Outcome of [`TransactionLayer::on_request`].
#[derive(Debug)]
pub enum ServerEvent<D> {
    /// A new server transaction; the TU must answer it with [`TransactionLayer::respond`].
    NewRequest { id: ServerTxId, request: Message },
    /// A new CANCEL server transaction `id`, to be answered through `respond` like any
    /// request; `target` says what it cancels.
    Cancel {
        id: ServerTxId,
        request: Message,
        target: CancelTarget,
    },
    /// A retransmitted request, absorbed; the actions (possibly none) resend the last
    /// response.
    Retransmission(Vec<Action<D>>),
    /// The ACK for a non-2xx final response of INVITE server transaction `id`, absorbed
    /// (Completed → Confirmed). On a reliable transport the actions hold its termination.
    AckForFinal {
        id: ServerTxId,
        actions: Vec<Action<D>>,
    },
    /// An ACK matching INVITE server transaction `invite` in the RFC 6026 Accepted state,
    /// i.e. acknowledging its 2xx: the TU/dialog layer stops retransmitting the 2xx.
    Ack2xx { invite: ServerTxId, ack: Message },
    /// An ACK matching no transaction (normally the ACK for a 2xx, which has its own branch):
    /// the TU/dialog layer handles it.
    StrayAck(Message),
    /// The server transaction table is full; no state was created. The TU answers 503
    /// statelessly (ideally with Retry-After).
    Overloaded(Message),
    /// The request cannot be matched (no top Via, CSeq or the like, or not a request); no
    /// state was created. The TU answers 400 with `reason` or drops it.
    Invalid {
        request: Message,
        reason: &'static str,
    },
}

/// The actions a response gives: none, or the transaction's end, or at most an ACK before it.
/// Held inline, because every final response to a non-INVITE request (each answered NOTIFY)
/// ends its transaction, and a vector allocated for that one action cost more than the rest
/// of the response's routing.
pub type ResponseActions<D> = smallvec::SmallVec<[Action<D>; 1]>;

/// Outcome of [`TransactionLayer::on_response`].
#[derive(Debug)]
pub enum ClientEvent<D> {
    /// A response for the TU. `actions` carry the ACK for a non-2xx INVITE final response
    /// and the transaction's termination, when the response ends it.
    Response {
        id: ClientTxId,
        response: Message,
        actions: ResponseActions<D>,
    },
    /// A retransmitted response, absorbed; for an INVITE in Completed the actions resend
    /// the ACK.
    Retransmission(ResponseActions<D>),
    /// Matches no client transaction (§18.1.2: discard, or hand it to a proxy core).
    Stray(Message),
}

/// Why [`TransactionLayer::respond`] refused a response; nothing was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RespondError {
    /// No such live server transaction (never existed, or already terminated).
    UnknownTransaction,
    /// The status code is outside 100..=699.
    InvalidStatus(u16),
    /// The transaction already sent its final response (only further 2xx are allowed on an
    /// INVITE in Accepted, RFC 6026 §8.5).
    FinalAlreadySent,
}

impl fmt::Display for RespondError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RespondError::UnknownTransaction => f.write_str("unknown server transaction"),
            RespondError::InvalidStatus(code) => write!(f, "invalid status code {code}"),
            RespondError::FinalAlreadySent => f.write_str("final response already sent"),
        }
    }
}

impl std::error::Error for RespondError {}

/// Why [`TransactionLayer::send_request`] refused a request; nothing was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The message is a response.
    NotARequest,
    /// ACK is never a transaction of its own (§17.1.1.3, §13.2.2.4): the layer sends the ACK
    /// for non-2xx itself, and the TU sends the ACK for 2xx directly to the transport.
    AckWithoutTransaction,
    /// The top Via has no branch, so responses could not be matched (§8.1.1.7).
    MissingBranch,
    /// A live client transaction already uses this branch and method.
    DuplicateBranch,
    /// [`Config::max_client_transactions`] reached.
    Overloaded,
    /// An INVITE was handed over as bytes; its transaction needs the parsed request.
    InviteNeedsMessage,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::NotARequest => "not a request",
            SendError::AckWithoutTransaction => "ACK does not create a client transaction",
            SendError::MissingBranch => "top Via has no branch parameter",
            SendError::DuplicateBranch => "branch already in use by a live client transaction",
            SendError::Overloaded => "client transaction limit reached",
            SendError::InviteNeedsMessage => "an INVITE transaction needs the parsed request",
        })
    }
}

impl std::error::Error for SendError {}
