//! The response context of one proxied request (RFC 3261 §16.7): its branches, the final
//! responses they ended with, and the choice of the best one (items 6 and 7).

use bytes::Bytes;
use sip_message::{default_reason, HeaderName, Message};
use sip_transaction::ClientTxId;

use crate::request::{upstream_response, CancelIds, Sent};
use crate::{Destination, Flow, Inbound};

pub(crate) struct Context {
    /// The request as received, for the responses the proxy makes itself and the copies a
    /// failed-over branch sends; dropped with the final response, as an INVITE context lives
    /// on for 32 s after it (RFC 6026 §8.4).
    pub inbound: Option<Inbound>,
    pub invite: bool,
    /// For the CANCELs of an INVITE's branches.
    pub cancel_ids: Option<CancelIds>,
    pub branches: Vec<Branch>,
    /// Final responses of the branches that did not end with a 2xx, in arrival order; no
    /// message when the proxy made the outcome up (timeout, nothing sent).
    outcomes: Vec<(u16, Option<Message>)>,
    pub final_sent: bool,
    pub cancelled: bool,
}

pub(crate) struct Branch {
    /// The live client transaction; None once it has terminated.
    pub tx: Option<ClientTxId>,
    pub sent: Sent,
    pub flow: Flow,
    /// Its final status, once there is one.
    pub status: Option<u16>,
    /// Any provisional response seen, 100 included: only then may it be cancelled (§9.1).
    pub provisional: bool,
    /// To be cancelled as soon as a provisional response arrives.
    pub cancel_wanted: bool,
    pub cancel_sent: bool,
    /// Timer C, or the grace period after our CANCEL.
    pub timer: Option<std::time::Instant>,
    /// Where the request goes instead if this branch's next hop fails (RFC 3263 §4.3).
    pub failover: Option<Destination>,
}

impl Branch {
    pub fn new(destination: Destination, sent: Sent) -> Branch {
        let Destination {
            request_uri,
            flow,
            route,
            mut alternates,
            server_name,
        } = destination;
        let failover = (!alternates.is_empty()).then(|| {
            let flow = alternates.remove(0);
            Destination {
                request_uri,
                flow,
                route,
                alternates,
                server_name,
            }
        });
        Branch {
            tx: None,
            sent,
            flow,
            failover,
            status: None,
            provisional: false,
            cancel_wanted: false,
            cancel_sent: false,
            timer: None,
        }
    }

    pub fn is_pending(&self) -> bool {
        self.status.is_none()
    }
}

/// What goes upstream when every branch has ended.
pub(crate) enum Final {
    /// A branch's response, as it goes upstream.
    Forward(u16, Bytes),
    /// A response the proxy makes itself: status and reason phrase.
    Local(u16, &'static str),
}

impl Context {
    pub fn new(inbound: Inbound, invite: bool) -> Context {
        Context {
            cancel_ids: if invite {
                CancelIds::of(&inbound.request)
            } else {
                None
            },
            inbound: Some(inbound),
            invite,
            branches: Vec::new(),
            outcomes: Vec::new(),
            final_sent: false,
            cancelled: false,
        }
    }

    /// The final response is out (or can no longer be sent): what only served to choose and
    /// build it goes. Returns the request, for a response the proxy makes itself.
    pub fn mark_final(&mut self) -> Option<Message> {
        self.final_sent = true;
        self.outcomes = Vec::new();
        self.inbound.take().map(|inbound| inbound.request)
    }

    /// Branch `index` ended with `status`; non-2xx outcomes are kept for §16.7 item 6.
    pub fn record_final(&mut self, index: usize, status: u16, response: Option<Message>) {
        if let Some(branch) = self.branches.get_mut(index) {
            branch.status = Some(status);
            branch.timer = None;
        }
        if status >= 300 {
            self.outcomes.push((status, response));
        }
    }

    /// §16.7 item 6: a 6xx if there is one, otherwise the lowest class, preferring within
    /// 4xx the responses that tell the caller how to retry (401, 407, 415, 420, 484); a 503
    /// becomes 500 (the caller must not think this proxy is overloaded); no response at all is
    /// a 408. After a CANCEL the caller is told 487 unless a branch declined everywhere.
    /// Item 7: a 401/407 carries the challenges of every branch that sent one.
    pub fn best_response(&self) -> Final {
        let best = self
            .outcomes
            .iter()
            .enumerate()
            .min_by_key(|(order, (status, _))| (rank(*status), *order));
        let Some((chosen, (status, response))) = best else {
            return if self.cancelled {
                Final::Local(487, default_reason(487))
            } else {
                Final::Local(408, default_reason(408))
            };
        };
        let status = *status;
        if self.cancelled && status < 600 {
            return Final::Local(487, default_reason(487));
        }
        if status == 503 {
            return Final::Local(500, default_reason(500));
        }
        let Some(response) = response else {
            return Final::Local(status, default_reason(status));
        };
        let mut challenges: Vec<(&str, &str)> = Vec::new();
        if matches!(status, 401 | 407) {
            for (_, other) in self
                .outcomes
                .iter()
                .enumerate()
                .filter(|(order, (s, _))| *order != chosen && matches!(s, 401 | 407))
                .map(|(_, outcome)| outcome)
            {
                let Some(other) = other else { continue };
                for header in other.headers().filter(|h| {
                    matches!(
                        h.name,
                        HeaderName::WwwAuthenticate | HeaderName::ProxyAuthenticate
                    )
                }) {
                    challenges.push((header.name_as_written, header.value));
                }
            }
        }
        Final::Forward(status, upstream_response(response, &challenges))
    }
}

/// Lower is better: 6xx first, then by class, the retry-informing 4xx before other 4xx.
fn rank(status: u16) -> (u16, u8) {
    let class = status / 100;
    let class_rank = if class == 6 { 0 } else { class };
    let informs_retry = matches!(status, 401 | 407 | 415 | 420 | 484);
    (class_rank, u8::from(!informs_retry))
}
