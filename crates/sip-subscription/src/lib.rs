//! Sans-IO SIP event notifier: RFC 6665 §4.2 (notifier behaviour), §4.1.3 (termination
//! reasons), §4.3 and RFC 3261 §12.1.1/§12.2 (the dialog a subscription lives in), RFC 4662
//! §5 (`Require: eventlist` for list packages) and RFC 5057 §5.1 (which NOTIFY failures end a
//! subscription).
//!
//! One [`SubscriptionEngine`] serves every event package. A package is configuration
//! ([`PackageConfig`]: name, body types, expiry limits, list or not, full-state or partial
//! bodies); what a subscriber may see is decided by the package's code *outside* the engine,
//! which keeps that code free to consult storage or wait for it:
//!
//! ```text
//! SUBSCRIBE (server transaction)      -> on_subscribe(request, flow, resource, now)
//!     Respond { response, actions }   -> send response on the transaction, then execute actions
//!     Decide(new)                     -> the package authorises and renders the current state:
//!                                        decide(new, Decision, body, now) -> Decided
//! package state changed               -> notify / activate / terminate (id, ..., now) -> actions
//! Action::SendNotify(notify)          -> TransactionLayer::send_built(NOTIFY, branch, data, ..)
//! its final response                  -> on_notify_response(id, &response, now)
//! its Timeout / TransportError        -> on_notify_failed(id, now)
//! Action::ContentNeeded               -> render, then notify(id, body, now)
//! after every call                    -> next_deadline(); at that instant on_timer(now)
//! ```
//!
//! Time enters as [`std::time::Instant`]; [`SubscriptionEngine::export`] and
//! [`SubscriptionEngine::import`] convert expiry to unix seconds so state survives a restart.
//!
//! # NOTIFY scheduling
//!
//! At most one NOTIFY per subscription is in flight: overlapping NOTIFYs can arrive out of
//! order on UDP, and waiting for each answer paces NOTIFYs to what the subscriber absorbs
//! (RFC 6665 §4.2.2 leaves rate control to the notifier). What arrives meanwhile waits:
//!
//! * [`ContentMode::FullState`] packages (presence, xcap-diff as a full list): each body
//!   replaces the one waiting, so a burst collapses into its newest state.
//! * [`ContentMode::Partial`] packages (RLS lists, watcher info with versions): bodies wait in
//!   order, so versions reach the subscriber consecutively. Past
//!   [`Config::max_queued_notifies`] the queue is dropped and the engine asks for one
//!   full-state body instead ([`Action::ContentNeeded`] with `full_state: true`).
//!
//! A terminated state is never dropped: it is always the last NOTIFY of a subscription.
//!
//! # NOTIFY failures (RFC 6665 §4.2.2, RFC 5057 §5.1)
//!
//! * Timer F or a transport error ([`SubscriptionEngine::on_notify_failed`]), 481, and the
//!   responses RFC 5057 says destroy the usage (404, 405, 410, 416, 480, 482–485, 489, 501,
//!   604) end the subscription at once, without a further NOTIFY: the path is gone.
//! * Anything else (3xx, other 4xx including 408, 5xx, other 6xx) is a soft failure: the same
//!   state is sent again after the response's `Retry-After` (capped by
//!   [`Config::max_retry_after`]) or [`Config::notify_retry_delay`]; after
//!   [`Config::max_notify_failures`] consecutive soft failures the subscription ends.
//! * A failed final (terminated) NOTIFY is not retried.

mod engine;
mod notify;
mod stored;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sip_message::{Message, ParseError};

pub use engine::{Subscription, SubscriptionEngine, CSEQ_SAVE_STEP};
pub use stored::StoredDialog;

/// Subscription handle; unique within an engine, kept across export/import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubId(pub u64);

/// How a package's bodies relate to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentMode {
    /// Every body is the whole state: a newer body supersedes a waiting one, and a refresh
    /// NOTIFY repeats the last body.
    FullState,
    /// Bodies may be deltas: none is dropped or reordered, and a refresh NOTIFY asks the
    /// package for content.
    Partial,
}

/// One event package as the engine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageConfig {
    /// Event package with template, e.g. `presence`, `presence.winfo`, `xcap-diff`.
    pub event: String,
    /// Body types the package can send (`type/subtype`), preferred first. A SUBSCRIBE whose
    /// Accept matches none of them gets 406 listing them.
    pub accept: Vec<String>,
    /// Shorter non-zero requested lifetimes get 423 with Min-Expires.
    pub min_expires: u32,
    /// Longer requested lifetimes are shortened to this.
    pub max_expires: u32,
    /// Lifetime when the SUBSCRIBE has no Expires.
    pub default_expires: u32,
    /// RFC 4662 list package: SUBSCRIBEs must say `Supported: eventlist` (else 421), and 2xx
    /// responses and NOTIFYs carry `Require: eventlist`.
    pub list: bool,
    pub mode: ContentMode,
}

impl PackageConfig {
    /// A full-state, non-list package with 60/3600/3600 s expiry limits.
    pub fn new(event: &str, accept: &[&str]) -> PackageConfig {
        PackageConfig {
            event: event.to_owned(),
            accept: accept.iter().map(|a| (*a).to_owned()).collect(),
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            list: false,
            mode: ContentMode::FullState,
        }
    }
}

/// Engine policy and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub packages: Vec<PackageConfig>,
    /// Live subscriptions beyond which new ones get 503 with `Retry-After`.
    pub max_subscriptions: usize,
    /// Subscriptions one subscriber (From AOR) may hold; beyond it, 403.
    pub max_per_subscriber: usize,
    /// Subscriptions one resource (Request-URI AOR) may have; beyond it, 403.
    pub max_per_resource: usize,
    /// `Retry-After` seconds in the 503 for [`Config::max_subscriptions`].
    pub overload_retry_after: u32,
    /// RFC 6665 deprecates 202 (§8.3.1); some old subscribers want it for pending
    /// subscriptions. False: every accepted SUBSCRIBE gets 200.
    pub accepted_for_pending: bool,
    /// Consecutive soft NOTIFY failures that end a subscription.
    pub max_notify_failures: u32,
    /// Wait before resending after a soft failure without `Retry-After`.
    pub notify_retry_delay: Duration,
    /// Cap on a NOTIFY response's `Retry-After`.
    pub max_retry_after: Duration,
    /// Least time between the end of one NOTIFY transaction and the next NOTIFY of the same
    /// subscription (rate limiting; full-state packages coalesce meanwhile).
    pub min_notify_interval: Duration,
    /// Partial-mode bodies that may wait behind an in-flight NOTIFY.
    pub max_queued_notifies: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            packages: Vec::new(),
            max_subscriptions: 100_000,
            max_per_subscriber: 100,
            max_per_resource: 1000,
            overload_retry_after: 60,
            accepted_for_pending: false,
            max_notify_failures: 3,
            notify_retry_delay: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(300),
            min_notify_interval: Duration::ZERO,
            max_queued_notifies: 32,
        }
    }
}

/// Where a SUBSCRIBE arrived and how its dialog is reached: NOTIFYs go back over `dest`
/// (the subscriber's flow, RFC 6665 §4.2.2 with no Outbound), with our `via` sent-by and
/// `contact` for that listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow<D> {
    /// Opaque destination token for the transport (as in the transaction layer).
    pub dest: D,
    /// Whether `dest` is a reliable transport (TCP, TLS).
    pub reliable: bool,
    /// Via value without branch, e.g. `SIP/2.0/TCP 192.0.2.10:5060`.
    pub via: String,
    /// Contact value for 2xx responses and NOTIFYs, e.g. `<sip:192.0.2.10:5060;transport=tcp>`.
    pub contact: String,
}

/// Whether the Request-URI names a single resource or a resource list (RFC 4662): the
/// caller knows (it resolves list URIs), and a package is chosen by Event and this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Single,
    List,
}

/// A NOTIFY a package agent hands its shell to send in a new client transaction; the shell
/// reports the outcome back to that agent under `id`.
///
/// It comes as the bytes to send and the branch of its top Via, which is all a non-INVITE
/// client transaction needs (RFC 3261 §17.1.3): the engine wrote it, so the shell need not
/// parse it (`TransactionLayer::send_built`).
#[derive(Debug, Clone)]
pub struct Notify<D> {
    pub id: SubId,
    pub data: Bytes,
    pub branch: Box<str>,
    pub dest: D,
    pub reliable: bool,
}

impl<D> Notify<D> {
    /// The NOTIFY as a parsed message, for a shell or test that inspects it.
    pub fn request(&self) -> Result<Message, ParseError> {
        Message::parse(self.data.clone(), &notify::OWN_MESSAGES)
    }
}

/// A NOTIFY body: rendered once, shared by every subscriber it goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    /// Full Content-Type value, parameters included.
    pub content_type: Arc<str>,
    pub data: Bytes,
}

impl Body {
    pub fn new(content_type: &str, data: impl Into<Bytes>) -> Body {
        Body {
            content_type: Arc::from(content_type),
            data: data.into(),
        }
    }
}

/// The package's answer to a new subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Authorised: `active`.
    Accept,
    /// Awaiting authorisation: `pending` (RFC 6665 §4.2.1.2).
    Pending,
    /// Refused with this final status (403, 404...); outside 300–699 it becomes 403.
    Reject(u16),
}

/// Why a subscription was terminated, as sent in `Subscription-State` (RFC 6665 §4.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Deactivated,
    /// `retry-after` seconds, when given.
    Probation(Option<u32>),
    Rejected,
    Timeout,
    Giveup(Option<u32>),
    Noresource,
    Invariant,
}

impl Reason {
    pub fn as_str(&self) -> &'static str {
        match self {
            Reason::Deactivated => "deactivated",
            Reason::Probation(_) => "probation",
            Reason::Rejected => "rejected",
            Reason::Timeout => "timeout",
            Reason::Giveup(_) => "giveup",
            Reason::Noresource => "noresource",
            Reason::Invariant => "invariant",
        }
    }
    fn retry_after(&self) -> Option<u32> {
        match self {
            Reason::Probation(r) | Reason::Giveup(r) => *r,
            _ => None,
        }
    }
}

/// Subscription state (RFC 6665 §4.1.2 diagram, notifier side).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubState {
    Pending,
    Active,
    /// Final NOTIFY sent or about to be; the dialog usage is gone for new requests (481).
    Terminated(Reason),
}

/// What ended a subscription, for the package's own bookkeeping (e.g. watcher info events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndCause {
    /// The subscriber sent `Expires: 0` (also a one-shot fetch). Final NOTIFY:
    /// `terminated;reason=timeout`: the lifetime it asked for, zero, has run out (RFC 6665
    /// §4.1.3 needs no reason at all; `timeout` is what subscribers see from most notifiers
    /// and tells them a re-SUBSCRIBE is welcome).
    Unsubscribed,
    /// Not refreshed in time. Final NOTIFY: `terminated;reason=timeout`.
    Expired,
    /// [`SubscriptionEngine::terminate`] with this reason.
    Package(Reason),
    /// NOTIFY delivery failed for good: the status of the last response, or None for a
    /// timeout or transport error. No final NOTIFY is sent.
    NotifyFailed(Option<u16>),
}

/// What the caller must do, in order, after a call into the engine.
#[derive(Debug, Clone)]
pub enum Action<D> {
    /// Start a client transaction for `request` on `dest`; report its final response with
    /// [`SubscriptionEngine::on_notify_response`] and a timeout or transport error with
    /// [`SubscriptionEngine::on_notify_failed`], naming `id`.
    SendNotify(Notify<D>),
    /// The engine needs a body for `id`'s next NOTIFY: render the current state (the whole
    /// state when `full_state`) and pass it to [`SubscriptionEngine::notify`].
    ContentNeeded { id: SubId, full_state: bool },
    /// `id` is terminated; its final NOTIFY (if any) is already scheduled. The package drops
    /// what it keeps for it; the id is never used again.
    Terminated { id: SubId, cause: EndCause },
}

/// Result of [`SubscriptionEngine::on_subscribe`].
#[derive(Debug)]
pub enum SubscribeOutcome<D> {
    /// Send `response` on the SUBSCRIBE's server transaction, then execute `actions`.
    Respond {
        response: Bytes,
        actions: Vec<Action<D>>,
    },
    /// A valid new subscription the package must decide on: call
    /// [`SubscriptionEngine::decide`] with it.
    Decide(Box<NewSubscription<D>>),
}

/// A new subscription waiting for its package's decision.
#[derive(Debug, Clone)]
pub struct NewSubscription<D> {
    pub(crate) request: Message,
    pub(crate) flow: Flow<D>,
    pub(crate) package: usize,
    pub(crate) event: String,
    pub(crate) event_id: Option<String>,
    pub(crate) expires: u32,
    pub(crate) subscriber: String,
    pub(crate) resource: String,
    pub(crate) accept: Vec<String>,
    /// Set when the SUBSCRIBE creates a further subscription in an existing dialog.
    pub(crate) in_dialog: Option<engine::DialogKey>,
    pub(crate) remote_target: String,
    pub(crate) route_set: Vec<String>,
}

impl<D> NewSubscription<D> {
    /// The SUBSCRIBE (for its body, Supported, authentication results kept by the caller...).
    pub fn request(&self) -> &Message {
        &self.request
    }
    /// Event package as configured.
    pub fn event(&self) -> &str {
        &self.event
    }
    pub fn event_id(&self) -> Option<&str> {
        self.event_id.as_deref()
    }
    /// Granted lifetime in seconds; 0 is a one-shot fetch (RFC 6665 §4.4.3).
    pub fn expires(&self) -> u32 {
        self.expires
    }
    /// From URI (the watcher).
    pub fn subscriber(&self) -> &str {
        &self.subscriber
    }
    /// Request-URI (the presentity, or the list).
    pub fn resource(&self) -> &str {
        &self.resource
    }
    /// The SUBSCRIBE's Accept values as written (empty when it had none).
    pub fn accept(&self) -> &[String] {
        &self.accept
    }
}

/// Result of [`SubscriptionEngine::decide`].
#[derive(Debug)]
pub struct Decided<D> {
    /// Send on the SUBSCRIBE's server transaction, before executing `actions`.
    pub response: Bytes,
    /// The new subscription, unless rejected.
    pub id: Option<SubId>,
    pub actions: Vec<Action<D>>,
}

/// Why a package-driven call did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gone {
    /// No such subscription, or it is already terminated.
    NoSubscription,
}

impl std::fmt::Display for Gone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no live subscription")
    }
}

impl std::error::Error for Gone {}

/// A live subscription as plain data, for persistence: what is stored, its expiry, and
/// the flow the subscriber was reached over (not stored: connections die with the process).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRecord<D> {
    pub dialog: StoredDialog,
    /// Unix seconds.
    pub expires_at: u64,
    pub flow: Flow<D>,
}
