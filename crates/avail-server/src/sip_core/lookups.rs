//! RFC 3263 §4 lookups off the SIP core's event loop. Locating another domain's SIP server
//! takes DNS round trips, up to [`LOCATE_TIMEOUT`] when a name server is slow or silent;
//! awaited in the event loop, they would hold every other message of every user that long.
//! So each lookup runs as a task of its own on the SIP thread's runtime (it is only async
//! I/O), and its result comes back to the loop as a [`Located`] event naming the
//! [`Purpose`] that waits for it: a proxied request (RFC 3261 §16.6 item 7), the ACK for a
//! 2xx (§16.11), or a back-end subscription of the resource list server (RFC 4662 §4.4).
//! The core then carries on where it left off.
//!
//! Lookups in flight are bounded per [`Requester`], see [`MAX_PROXY_LOOKUPS`] and
//! [`MAX_BACKEND_LOOKUPS`] for what happens beyond.

use std::time::Duration;

use proxy::Inbound;
use rls::WatchKey;
use sip_locate::{Destination, LocateError, Locator, Target, Transport};
use sip_transaction::ServerTxId;
use tokio::sync::mpsc;

/// How long the DNS lookups locating one destination may take (RFC 3263). A proxied request
/// waits that long at most for its next hop, so a slow name server must not hold it long.
pub const LOCATE_TIMEOUT: Duration = Duration::from_secs(5);

/// Lookups the proxy may have in flight. Beyond them a request that needs one gets 503 with
/// `Retry-After` (RFC 3261 §21.5.4) rather than a place in a queue: its caller can retry,
/// while a queue would hold its server transaction, a slot of the transaction layer's
/// limit shared by every user, for as long as the name server stays silent.
pub const MAX_PROXY_LOOKUPS: usize = 256;

/// Lookups the RLS back-end may have in flight; its further watches wait in its queue (see
/// `RemoteWatches`): they are the server's own work, which no one would retry, and a list of
/// a thousand buddies of other domains must not take the slots the proxy's callers need.
/// A lookup for a domain that was just located is answered from the resolver's cache.
pub const MAX_BACKEND_LOOKUPS: usize = 64;

/// What waits for a lookup.
#[derive(Debug)]
pub enum Purpose {
    /// The request of this server transaction, forwarded once its next hop is known.
    Request(ServerTxId),
    /// The ACK for a 2xx, forwarded statelessly once its next hop is known.
    Ack(Box<Inbound>),
    /// A back-end subscription, started once its resource's domain is located.
    Watch(WatchKey),
}

/// Whose share of the lookups a [`Purpose`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requester {
    Proxy,
    Backend,
}

impl Purpose {
    fn requester(&self) -> Requester {
        match self {
            Purpose::Request(_) | Purpose::Ack(_) => Requester::Proxy,
            Purpose::Watch(_) => Requester::Backend,
        }
    }
}

/// A finished lookup, for the event loop to hand to [`Lookups::finish`].
#[derive(Debug)]
pub struct Located {
    purpose: Purpose,
    result: Result<Vec<Target>, LocateError>,
}

/// Starts lookups as tasks and counts those in flight.
pub struct Lookups {
    locator: Locator,
    done: mpsc::UnboundedSender<Located>,
    proxy_in_flight: usize,
    backend_in_flight: usize,
}

impl Lookups {
    /// The lookups and the receiver of their results (for the core's event loop). The channel
    /// needs no bound of its own: it never holds more results than lookups were started.
    pub fn new(locator: Locator) -> (Lookups, mpsc::UnboundedReceiver<Located>) {
        let (done, results) = mpsc::unbounded_channel();
        let lookups = Lookups {
            locator,
            done,
            proxy_in_flight: 0,
            backend_in_flight: 0,
        };
        (lookups, results)
    }

    /// Whether `requester` may start another lookup now.
    pub fn has_room(&self, requester: Requester) -> bool {
        match requester {
            Requester::Proxy => self.proxy_in_flight < MAX_PROXY_LOOKUPS,
            Requester::Backend => self.backend_in_flight < MAX_BACKEND_LOOKUPS,
        }
    }

    /// Locates `destination` (over the transports of `probe`, as [`Locator::locate`]) for
    /// `purpose`, whose requester the caller has found [room](Self::has_room) for.
    pub fn start(&mut self, purpose: Purpose, destination: Destination, probe: &[Transport]) {
        *self.in_flight(purpose.requester()) += 1;
        let locator = self.locator.clone();
        let probe = probe.to_vec();
        let done = self.done.clone();
        tokio::spawn(async move {
            let result = locator.locate(&destination, &probe).await;
            // The receiver is gone only once the event loop has stopped.
            let _ = done.send(Located { purpose, result });
        });
    }

    /// A lookup's result, its slot freed.
    pub fn finish(&mut self, located: Located) -> (Purpose, Result<Vec<Target>, LocateError>) {
        let in_flight = self.in_flight(located.purpose.requester());
        *in_flight = in_flight.saturating_sub(1);
        (located.purpose, located.result)
    }

    fn in_flight(&mut self, requester: Requester) -> &mut usize {
        match requester {
            Requester::Proxy => &mut self.proxy_in_flight,
            Requester::Backend => &mut self.backend_in_flight,
        }
    }
}

#[cfg(test)]
impl Lookups {
    /// Lookups asking a name server that is not there: for tests locating addresses, which
    /// need none.
    pub fn without_name_server() -> (Lookups, mpsc::UnboundedReceiver<Located>) {
        let nowhere = std::net::SocketAddr::from(([127, 0, 0, 1], 9));
        Lookups::new(Locator::new(&[nowhere], LOCATE_TIMEOUT))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(n: usize) -> Purpose {
        Purpose::Watch(WatchKey {
            resource: format!("sip:bob{n}@192.0.2.1:5070;transport=tcp"),
            subscriber: "sip:alice@example.com".to_owned(),
        })
    }

    /// Addresses need no name server, so these lookups finish at once.
    fn address() -> Destination {
        Destination::from_uri("sip:192.0.2.1:5070;transport=tcp").expect("a SIP URI")
    }

    #[tokio::test]
    async fn each_requester_has_its_share_and_results_come_back_as_events() {
        let (mut lookups, mut results) = Lookups::without_name_server();
        for n in 0..MAX_BACKEND_LOOKUPS {
            assert!(lookups.has_room(Requester::Backend));
            lookups.start(watch(n), address(), &[Transport::Tcp]);
        }
        assert!(!lookups.has_room(Requester::Backend));
        assert!(
            lookups.has_room(Requester::Proxy),
            "the back-end's lookups leave the proxy's share alone"
        );
        let located = results.recv().await.expect("a result");
        let (purpose, result) = lookups.finish(located);
        assert!(matches!(purpose, Purpose::Watch(_)), "{purpose:?}");
        assert_eq!(
            result.expect("an address is its own target")[0].addr,
            "192.0.2.1:5070".parse().expect("an address")
        );
        assert!(lookups.has_room(Requester::Backend), "a slot was freed");
    }
}
