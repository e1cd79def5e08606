//! Sans-IO SIP user agent client: registration (RFC 3261 §10, RFC 5626 `+sip.instance` and
//! §4.4.1 CRLF keepalives, §4.5 back-off; RFC 5627 GRUU), publication (RFC 3903 §4) and
//! subscriptions (RFC 6665 §4.1 subscriber behaviour, RFC 4662 list subscriptions), with
//! digest authentication (RFC 3261 §22.2–§22.3) on every request.
//!
//! One [`UserAgent`] holds any number of registrations, publications and subscriptions over
//! one RFC 3261 §17 transaction layer. It owns no sockets and reads no clock: the caller
//! feeds it parsed messages and the current time, and carries out the [`Output`]s:
//!
//! ```text
//! register / publish / subscribe (params, now)  -> (id, outputs)
//! modify_publication, unpublish, unregister, unsubscribe (id, now) -> outputs
//! message parsed from a flow                    -> on_message(msg, source, reliable, now)
//! a flow broke                                  -> on_flow_failed(&dest, now)
//! after every call                              -> next_deadline(); at it: on_timer(now)
//! Output::Send { dest, data }                   -> write `data` to the flow `dest`
//! Output::Event(event)                          -> tell the application
//! ```
//!
//! The destination `D` is opaque, as in `sip-transaction`: a client keeps one flow to its
//! server, and a server subscribing on behalf of its users (a resource list server's
//! back-end, RFC 4662 §5) names the remote domain's next hop, and uses
//! [`UserAgent::is_ours`] to tell the agent's responses and NOTIFYs from its own traffic.
//! Without credentials a challenge fails the request. Bodies are handed over raw:
//! parsing PIDF, RLMI or watcher info is the application's job.

mod agent;
mod auth;
mod publication;
mod registration;
mod request;
mod subscription;

#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

use bytes::Bytes;

pub use agent::UserAgent;

/// A registration, unique within a [`UserAgent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegistrationId(u64);

/// A publication, unique within a [`UserAgent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicationId(u64);

/// A subscription, unique within a [`UserAgent`]; it keeps its id across re-subscriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriptionId(u64);

/// Policy and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub transactions: sip_transaction::Config,
    /// `User-Agent` header of every request, when set.
    pub user_agent: Option<String>,
    /// CRLF keepalive period on reliable flows while registered (RFC 5626 §4.4.1).
    pub keepalive_interval: Duration,
    /// First back-off step after a failure (RFC 5626 §4.5 base time).
    pub retry_base: Duration,
    /// Longest back-off (RFC 5626 §4.5 max time).
    pub retry_max: Duration,
    /// Cap on a server's Retry-After.
    pub max_retry_after: Duration,
    /// Largest lifetime a 423's Min-Expires may push a request to.
    pub max_expires: u32,
    /// After an unsubscribe is accepted, how long to wait for the final NOTIFY.
    pub final_notify_wait: Duration,
    pub max_registrations: usize,
    pub max_publications: usize,
    pub max_subscriptions: usize,
    /// Route set entries (Record-Route values) a dialog may have.
    pub max_route_set: usize,
    /// Largest PUBLISH or SUBSCRIBE body we send.
    pub max_body_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            transactions: sip_transaction::Config::default(),
            user_agent: None,
            keepalive_interval: Duration::from_secs(30),
            retry_base: Duration::from_secs(30),
            retry_max: Duration::from_secs(1800),
            max_retry_after: Duration::from_secs(3600),
            max_expires: 86_400,
            final_notify_wait: Duration::from_secs(32),
            max_registrations: 16,
            max_publications: 64,
            max_subscriptions: 100_000,
            max_route_set: 16,
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// How requests reach the server and how it reaches us back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow<D> {
    /// Opaque destination token for the transport.
    pub dest: D,
    /// Whether `dest` is a reliable transport (TCP, TLS): no retransmissions, keepalives on.
    pub reliable: bool,
    /// Via value without branch, e.g. `SIP/2.0/TCP 192.0.2.10:50312;rport`.
    pub via: String,
    /// Our Contact URI, e.g. `sip:k2x8d9@192.0.2.10:50312;transport=tcp`.
    pub contact: String,
}

/// Username and password for digest authentication.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Who sends the requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Address of record, the From of every request: `sip:alice@example.com`.
    pub aor: String,
    pub display_name: Option<String>,
    /// None: challenges fail the request (e.g. a server trusted by its peer).
    pub credentials: Option<Credentials>,
}

/// A registration to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterParams<D> {
    pub identity: Identity,
    pub flow: Flow<D>,
    /// `urn:uuid:…` identifying this device across restarts (RFC 5626 §4.1).
    pub instance: String,
    /// Requested lifetime in seconds.
    pub expires: u32,
}

/// A publication to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishParams<D> {
    pub identity: Identity,
    pub flow: Flow<D>,
    /// Request-URI and To; None: the identity's AOR.
    pub resource: Option<String>,
    /// Event package, e.g. `presence`.
    pub event: String,
    /// e.g. `application/pidf+xml`.
    pub content_type: String,
    pub body: Bytes,
    /// Requested lifetime in seconds.
    pub expires: u32,
}

/// A subscription to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeParams<D> {
    pub identity: Identity,
    pub flow: Flow<D>,
    /// Request-URI and To: the resource or list, e.g. `sip:alice+presence@example.com`.
    pub target: String,
    /// Event package, e.g. `presence`, `presence.winfo`, `xcap-diff`.
    pub event: String,
    /// Event `id` parameter, to tell several subscriptions in one dialog apart.
    pub event_id: Option<String>,
    /// Accept values, e.g. `multipart/related`, `application/rlmi+xml`.
    pub accept: Vec<String>,
    /// A resource list subscription: `Supported: eventlist` (RFC 4662 §4).
    pub list: bool,
    /// Requested lifetime in seconds.
    pub expires: u32,
    /// Content-Type and body of the SUBSCRIBE (xcap-diff sends its document list).
    pub body: Option<(String, Bytes)>,
}

/// Why a notifier ended a subscription (RFC 6665 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TerminationReason {
    Deactivated,
    Probation,
    Rejected,
    Timeout,
    Giveup,
    Noresource,
    Invariant,
    /// A reason this crate does not know, as written.
    Other(String),
}

impl TerminationReason {
    fn parse(text: &str) -> TerminationReason {
        match text.to_ascii_lowercase().as_str() {
            "deactivated" => TerminationReason::Deactivated,
            "probation" => TerminationReason::Probation,
            "rejected" => TerminationReason::Rejected,
            "timeout" => TerminationReason::Timeout,
            "giveup" => TerminationReason::Giveup,
            "noresource" => TerminationReason::Noresource,
            "invariant" => TerminationReason::Invariant,
            _ => TerminationReason::Other(text.to_owned()),
        }
    }
}

/// A subscription's state as its NOTIFYs report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionStatus {
    /// Waiting for authorisation; `expires` seconds left, when the notifier said.
    Pending {
        expires: Option<u32>,
    },
    Active {
        expires: Option<u32>,
    },
    /// `reason` and `retry_after` as the notifier gave them (both optional), or, for a
    /// subscription we lost ourselves (refresh refused with 481, lifetime over), none.
    Terminated {
        reason: Option<TerminationReason>,
        retry_after: Option<u32>,
    },
}

/// What happened, for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A REGISTER succeeded (initial or refresh). The GRUUs are those the registrar gave our
    /// instance (RFC 5627 §5.2), unquoted.
    Registered {
        id: RegistrationId,
        expires: u32,
        gruu: Option<String>,
        temp_gruu: Option<String>,
    },
    /// A REGISTER failed with `status` (408 for no response, 503 for a transport failure);
    /// the registration retries at `retry_at`.
    RegistrationFailed {
        id: RegistrationId,
        status: u16,
        retry_at: Instant,
    },
    /// The unregistration finished (or failed, leaving the binding to expire); the id is gone.
    Unregistered { id: RegistrationId },
    /// A PUBLISH succeeded; `etag` is the SIP-ETag (None when the server sent none, in which
    /// case the next refresh publishes the body again).
    Published {
        id: PublicationId,
        etag: Option<String>,
        expires: u32,
    },
    /// A PUBLISH failed with `status`; it is retried at `retry_at`.
    PublicationFailed {
        id: PublicationId,
        status: u16,
        retry_at: Instant,
    },
    /// The publication was removed (or its removal failed and it will expire); the id is gone.
    Unpublished { id: PublicationId },
    /// The subscription's state changed. After a termination, `resubscribe_at` says when a
    /// new subscription is attempted; None with a terminated state means never, and the id
    /// is gone.
    SubscriptionState {
        id: SubscriptionId,
        status: SubscriptionStatus,
        resubscribe_at: Option<Instant>,
    },
    /// A NOTIFY arrived (already answered with 200). `content_type` is the full header value.
    Notify {
        id: SubscriptionId,
        status: SubscriptionStatus,
        content_type: Option<String>,
        body: Bytes,
    },
    /// A SUBSCRIBE failed with `status`; a new one is attempted at `retry_at`.
    SubscriptionFailed {
        id: SubscriptionId,
        status: u16,
        retry_at: Instant,
    },
    /// The unsubscription finished; the id is gone.
    Unsubscribed { id: SubscriptionId },
}

/// What the caller must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output<D> {
    /// Write these bytes to the flow `dest` (a message, or a CRLFCRLF keepalive).
    Send {
        dest: D,
        data: Bytes,
    },
    Event(Event),
}

/// Why a call was refused; nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UaError {
    /// No such registration, publication or subscription (never existed, or finished).
    UnknownId,
    /// [`Config`]'s limit for this kind of object is reached.
    TooMany,
    /// The parameter named is not usable: a URI that does not parse, an AOR without a user
    /// part, or text with control characters.
    InvalidParameter(&'static str),
    /// The body is larger than [`Config::max_body_bytes`].
    BodyTooLarge,
    /// The object is already being removed.
    Closing,
}

impl std::fmt::Display for UaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UaError::UnknownId => f.write_str("unknown id"),
            UaError::TooMany => f.write_str("limit reached"),
            UaError::InvalidParameter(name) => write!(f, "invalid {name}"),
            UaError::BodyTooLarge => f.write_str("body too large"),
            UaError::Closing => f.write_str("already being removed"),
        }
    }
}

impl std::error::Error for UaError {}
