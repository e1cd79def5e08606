//! The resource list server, sans-IO: RFC 4662 list subscriptions to the services of users'
//! rls-services documents (RFC 4826 §4), on top of the RFC 6665 notifier
//! ([`sip_subscription::SubscriptionEngine`]).
//!
//! - [`expand`]: a service's list from the XCAP documents (every RFC 4826 reference form).
//! - [`index`]: which Request-URIs are services, and whose.
//! - [`RlsAgent`]: list subscriptions, back-end watches and RLMI NOTIFYs.
//!
//! The shell keeps the transactions, loads documents and runs the back-end watches (local
//! resources through the presence agent, remote ones through SUBSCRIBEs of its own):
//!
//! ```text
//! SUBSCRIBE to a service URI (index)  -> expand (load what Expansion::Need names) -> List
//! list SUBSCRIBE                      -> on_subscribe(request, flow, subscriber, list, now)
//!   Subscribe::Answered(answer)       -> respond, send notifies, run commands
//!   Subscribe::Opening(opening)       -> run opening.commands (answer Watches known at once
//!                                        with on_resource_state), then open(opening, now)
//!                                        -> Answer: respond, send notifies, run commands
//! Command::Watch(key)                 -> start the back-end watch; each state of it ->
//!                                        on_resource_state(key, state, now)
//! Command::Unwatch(key)               -> end it
//! Notify                              -> client transaction; final response ->
//!                                        on_notify_response, timeout -> on_notify_failed
//! service's documents changed         -> expand again -> on_list_changed(service, list, now)
//! service removed                     -> on_service_removed(service, now)
//! next_deadline()                     -> on_timer(now) at that instant
//! after changes                       -> export_changes(now, unix) -> records to store
//! start                               -> import(records, flow, now, unix) -> Restored;
//!                                        expand each service, on_list_changed, run its
//!                                        commands; resume(now) -> full-state NOTIFYs
//! ```
//!
//! # NOTIFYs (RFC 4662 §5)
//!
//! The first NOTIFY of a subscription is sent at once with full state: every resource of
//! the list, those without known state as `<resource>` without `<instance>` (the state of
//! their back-end subscription is not known yet; non-SIP entries stay that way). After that,
//! state changes are collected for [`Config::batch_window`] from the first one and sent
//! together as one partial NOTIFY; a change that arrives while a NOTIFY is in flight waits
//! for its answer, so at most one NOTIFY per subscription is outstanding and RLMI versions
//! reach the subscriber consecutively. A membership change, an engine request for full
//! state (after a restart) and a refresh after which the engine lost the previous body
//! send full state. Instance ids are stable per resource within a subscription; a resource
//! reported terminated gets a new instance id when its state comes back.

mod agent;
pub mod expand;
pub mod index;
mod persist;
mod render;

#[cfg(test)]
mod tests;

use std::time::Duration;

use sip_subscription::{Body, ContentMode, PackageConfig, Reason};

pub use agent::{Answer, Opening, Output, RlsAgent, Subscribe};
pub use expand::{
    expand, Auid, DocumentRef, Documents, Entry, Expansion, ExpansionLimits, List, Problem,
};
pub use index::ServiceIndex;
pub use persist::{ListChanges, ListRecord, Restored};
pub use render::rlmi_uri;

/// The event package served on lists.
pub const PRESENCE: &str = "presence";

/// Policy and limits of the agent.
#[derive(Debug, Clone)]
pub struct Config {
    /// Must configure the list package ([`Config::new`] does).
    pub subscription: sip_subscription::Config,
    /// How long changes are collected before a partial NOTIFY goes out.
    pub batch_window: Duration,
    /// Largest NOTIFY body: state parts beyond it wait for the next NOTIFY, and one that is
    /// larger on its own is never sent (its instance goes without `cid`).
    pub max_notify_body: usize,
    /// Domain part of the Content-IDs (RFC 2392) of NOTIFY body parts.
    pub cid_domain: String,
}

impl Config {
    /// The `presence` list package with these expiry bounds (seconds), 200 ms batching and
    /// a 512 KiB body cap.
    pub fn new(min_expires: u32, max_expires: u32, default_expires: u32) -> Config {
        Config {
            subscription: sip_subscription::Config {
                packages: vec![PackageConfig {
                    min_expires,
                    max_expires,
                    default_expires,
                    list: true,
                    // RLMI versions are deltas: none may be dropped or reordered.
                    mode: ContentMode::Partial,
                    ..PackageConfig::new(
                        PRESENCE,
                        &[
                            "multipart/related",
                            simple_payloads::rlmi::CONTENT_TYPE,
                            "application/pidf+xml",
                        ],
                    )
                }],
                ..sip_subscription::Config::default()
            },
            batch_window: Duration::from_millis(200),
            max_notify_body: 512 * 1024,
            cid_domain: "rls.avail".to_owned(),
        }
    }
}

/// A back-end watch: `resource`'s state as `subscriber` may see it, shared by every list of
/// that subscriber containing the resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WatchKey {
    /// `sip:user@host` of the resource.
    pub resource: String,
    /// `sip:user@host` of the list's subscriber.
    pub subscriber: String,
}

/// A back-end subscription's state (RFC 4662 §5.2 instance states).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchStatus {
    Active,
    Pending,
    Terminated(Reason),
}

/// What the shell reports for a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceState {
    pub status: WatchStatus,
    /// The resource's state document (PIDF) as the subscriber may see it.
    pub body: Option<Body>,
}

/// Back-end work for the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Start watching; report states with [`RlsAgent::on_resource_state`].
    Watch(WatchKey),
    /// No list needs this watch any more.
    Unwatch(WatchKey),
}

/// A NOTIFY to send in a new client transaction; report its outcome with
/// [`RlsAgent::on_notify_response`] or [`RlsAgent::on_notify_failed`].
pub use sip_subscription::Notify;
