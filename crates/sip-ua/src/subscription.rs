//! One subscription, subscriber side: RFC 6665 §4.1.2.1 (initial SUBSCRIBE), §4.1.2.2
//! (refresh; a refused refresh other than 481 leaves the subscription valid until it
//! expires), §4.1.2.3 (unsubscribe, then the final NOTIFY), §4.1.2.4 (the dialog is created
//! by the 2xx or by the first NOTIFY, whichever arrives first; a NOTIFY from another dialog
//! is refused with 481), §4.1.3 (NOTIFY processing and when to re-subscribe after each
//! termination reason), §4.3 and RFC 3261 §12.1.2 / §12.2.1.1 (route set, remote target,
//! in-dialog requests), RFC 4662 §4 (`Supported: eventlist`).

use std::time::{Duration, Instant};

use bytes::Bytes;
use sip_message::{ContactValue, HeaderName, Message, Method};

use crate::auth::Auth;
use crate::request::{
    begin_closing, check_body, check_expires, check_flow, check_identity, check_text, check_uri,
    expires_header, final_response, name_addr, next_retry, refresh_delay, retry_as_asked, start,
    take_awaited, token, Awaiting, Ctx, Head, Retries, Step,
};
use crate::{
    Credentials, Event, Flow, Identity, SubscribeParams, SubscriptionId, SubscriptionStatus,
    TerminationReason, UaError,
};

/// Terminations followed at once by a new subscription before back-off applies instead: a
/// notifier that keeps ending subscriptions must not get a tight SUBSCRIBE loop.
const MAX_IMMEDIATE_RESUBSCRIBES: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Initial,
    Refresh,
    Unsubscribe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    Refresh,
    Resubscribe,
    /// Waiting for the final NOTIFY after an accepted unsubscribe.
    FinalNotify,
}

#[derive(Debug)]
struct Dialog {
    remote_tag: String,
    remote_target: String,
    route_set: Vec<String>,
    /// Highest CSeq of the notifier's requests (RFC 3261 §12.2.2).
    remote_cseq: Option<u32>,
}

/// Why a NOTIFY is refused: status and reason phrase.
pub(crate) type Refusal = (u16, &'static str);

#[derive(Debug)]
pub(crate) struct Subscription<D> {
    id: SubscriptionId,
    pub(crate) flow: Flow<D>,
    identity: Identity,
    target: String,
    event: String,
    event_id: Option<String>,
    accept: String,
    list: bool,
    expires: u32,
    body: Option<(String, Bytes)>,
    from_uri: String,
    /// Call-ID and our tag: new for each subscription attempt after a termination.
    pub(crate) call_id: String,
    pub(crate) local_tag: String,
    /// Never reset, so a late answer to an earlier attempt cannot match the current one.
    cseq: u32,
    auth: Auth,
    dialog: Option<Dialog>,
    awaiting: Awaiting<Kind>,
    /// Last state reported to the application.
    status: Option<SubscriptionStatus>,
    expires_at: Option<Instant>,
    timer: Option<(Instant, Timer)>,
    closing: bool,
    failures: u32,
    immediate_resubscribes: u32,
    pub(crate) finished: bool,
}

impl<D> Subscription<D> {
    pub(crate) fn new(
        id: SubscriptionId,
        params: SubscribeParams<D>,
        ctx: &mut Ctx<'_>,
    ) -> Result<Subscription<D>, UaError> {
        check_identity(&params.identity)?;
        check_flow(&params.flow)?;
        check_uri(&params.target, "target")?;
        check_text(&params.event, "event")?;
        check_expires(params.expires, ctx.config)?;
        if let Some(id) = &params.event_id {
            check_text(id, "event id")?;
        }
        for accept in &params.accept {
            check_text(accept, "accept")?;
        }
        if let Some((content_type, body)) = &params.body {
            check_text(content_type, "content type")?;
            check_body(body, ctx.config)?;
        }
        Ok(Subscription {
            id,
            from_uri: name_addr(
                params.identity.display_name.as_deref(),
                &params.identity.aor,
            ),
            flow: params.flow,
            identity: params.identity,
            target: params.target,
            event: params.event,
            event_id: params.event_id,
            accept: params.accept.join(", "),
            list: params.list,
            expires: params.expires,
            body: params.body,
            call_id: token(ctx.rng),
            local_tag: token(ctx.rng),
            cseq: 0,
            auth: Auth::default(),
            dialog: None,
            awaiting: None,
            status: None,
            expires_at: None,
            timer: None,
            closing: false,
            failures: 0,
            immediate_resubscribes: 0,
            finished: false,
        })
    }

    /// A new subscription attempt: fresh Call-ID and tag, no dialog, initial SUBSCRIBE.
    pub(crate) fn start(&mut self, ctx: &mut Ctx<'_>) -> Vec<Step> {
        self.call_id = token(ctx.rng);
        self.local_tag = token(ctx.rng);
        self.dialog = None;
        self.expires_at = None;
        vec![self.send(Kind::Initial, ctx)]
    }

    fn send(&mut self, kind: Kind, ctx: &mut Ctx<'_>) -> Step {
        self.cseq += 1;
        self.awaiting = Some((self.cseq, kind));
        if !matches!(self.timer, Some((_, Timer::FinalNotify))) {
            self.timer = None;
        }
        let from = format!("{};tag={}", self.from_uri, self.local_tag);
        let (request_uri, to, routes) = match (&self.dialog, kind) {
            (Some(dialog), Kind::Refresh | Kind::Unsubscribe) => (
                dialog.remote_target.as_str(),
                format!("<{}>;tag={}", self.target, dialog.remote_tag),
                dialog.route_set.as_slice(),
            ),
            _ => (self.target.as_str(), format!("<{}>", self.target), &[][..]),
        };
        let head = Head {
            method: Method::Subscribe,
            request_uri,
            via: &self.flow.via,
            from: &from,
            to: &to,
            call_id: &self.call_id,
            cseq: self.cseq,
            routes,
        };
        let mut w = start(&head, ctx);
        w.header_fmt("Contact", format_args!("<{}>", self.flow.contact));
        match &self.event_id {
            Some(id) => w.header_fmt("Event", format_args!("{};id={id}", self.event)),
            None => w.header("Event", &self.event),
        };
        w.header_fmt(
            "Expires",
            format_args!(
                "{}",
                if kind == Kind::Unsubscribe {
                    0
                } else {
                    self.expires
                }
            ),
        );
        if !self.accept.is_empty() {
            w.header("Accept", &self.accept);
        }
        if self.list {
            w.header("Supported", "eventlist");
        }
        let request_uri = request_uri.to_owned();
        self.auth.write(
            &mut w,
            "SUBSCRIBE",
            &request_uri,
            self.identity.credentials.as_ref(),
            ctx.rng,
        );
        Step::Send {
            cseq: self.cseq,
            request: match (&self.body, kind) {
                (Some((content_type, body)), Kind::Initial) => w.finish(Some(content_type), body),
                _ => w.finish(None, b""),
            },
        }
    }

    pub(crate) fn unsubscribe(&mut self, ctx: &mut Ctx<'_>) -> Result<Vec<Step>, UaError> {
        begin_closing(&mut self.closing)?;
        self.timer = None;
        if self.awaiting.is_some() {
            // The unsubscribe follows the answer to the SUBSCRIBE in flight.
            return Ok(Vec::new());
        }
        if self.dialog.is_some() {
            return Ok(vec![self.send(Kind::Unsubscribe, ctx)]);
        }
        Ok(self.finish())
    }

    fn finish(&mut self) -> Vec<Step> {
        self.finished = true;
        vec![Step::Event(Event::Unsubscribed { id: self.id })]
    }

    pub(crate) fn on_response(&mut self, response: &Message, ctx: &mut Ctx<'_>) -> Vec<Step> {
        let Some((status, kind)) = final_response(response, &mut self.awaiting) else {
            return Vec::new();
        };
        if (200..300).contains(&status) {
            return self.on_success(response, kind, ctx);
        }
        if self.closing && kind != Kind::Unsubscribe {
            return self.finish();
        }
        match status {
            481 if kind == Kind::Refresh => {
                self.auth.on_final();
                let mut steps = self.lose(ctx.now);
                steps.extend(self.start(ctx));
                steps
            }
            _ if retry_as_asked(self, response, kind == Kind::Unsubscribe, ctx.config) => {
                vec![self.send(kind, ctx)]
            }
            _ => self.fail(status, Some(response), kind, ctx),
        }
    }

    fn on_success(&mut self, response: &Message, kind: Kind, ctx: &mut Ctx<'_>) -> Vec<Step> {
        self.auth.on_final();
        if kind == Kind::Unsubscribe {
            self.timer = Some((ctx.now + ctx.config.final_notify_wait, Timer::FinalNotify));
            return Vec::new();
        }
        if kind == Kind::Refresh {
            self.failures = 0;
            self.immediate_resubscribes = 0;
        }
        // When a NOTIFY made the dialog first, a 2xx from another fork (another To tag) is
        // not kept as a second subscription: one dialog per subscription.
        if self.dialog.is_none() {
            match dialog_from_response(response, &self.target, ctx.config.max_route_set) {
                Ok(dialog) => self.dialog = Some(dialog),
                Err(_) => return self.fail(response.status().unwrap_or(200), None, kind, ctx),
            }
        }
        let granted = expires_header(response).unwrap_or(self.expires);
        self.expires_at = Some(ctx.now + Duration::from_secs(u64::from(granted)));
        if self.closing {
            return vec![self.send(Kind::Unsubscribe, ctx)];
        }
        if granted > 0 {
            self.timer = Some((ctx.now + refresh_delay(granted), Timer::Refresh));
        }
        Vec::new()
    }

    fn fail(
        &mut self,
        status: u16,
        response: Option<&Message>,
        kind: Kind,
        ctx: &mut Ctx<'_>,
    ) -> Vec<Step> {
        self.auth.on_final();
        if kind == Kind::Unsubscribe || self.closing {
            return self.finish();
        }
        let retry_at = next_retry(&mut self.failures, response, ctx);
        let failed = Step::Event(Event::SubscriptionFailed {
            id: self.id,
            status,
            retry_at,
        });
        let still_valid = self.dialog.is_some() && self.expires_at.is_some_and(|at| retry_at < at);
        if kind == Kind::Refresh && still_valid {
            self.timer = Some((retry_at, Timer::Refresh));
            return vec![failed];
        }
        let mut steps = vec![failed];
        if self.dialog.is_some() {
            steps.extend(self.lose(retry_at));
        }
        self.dialog = None;
        self.timer = Some((retry_at, Timer::Resubscribe));
        steps
    }

    /// The dialog is gone without a final NOTIFY (481 to a refresh, lifetime over): report
    /// it terminated and re-subscribe at `resubscribe_at`.
    fn lose(&mut self, resubscribe_at: Instant) -> Vec<Step> {
        self.dialog = None;
        self.expires_at = None;
        let status = SubscriptionStatus::Terminated {
            reason: None,
            retry_after: None,
        };
        self.status = Some(status.clone());
        self.timer = Some((resubscribe_at, Timer::Resubscribe));
        vec![Step::Event(Event::SubscriptionState {
            id: self.id,
            status,
            resubscribe_at: Some(resubscribe_at),
        })]
    }

    pub(crate) fn on_no_response(
        &mut self,
        cseq: u32,
        status: u16,
        ctx: &mut Ctx<'_>,
    ) -> Vec<Step> {
        match take_awaited(&mut self.awaiting, cseq) {
            Some(kind) => self.fail(status, None, kind, ctx),
            None => Vec::new(),
        }
    }

    /// A NOTIFY whose Call-ID and To tag are this subscription's. Ok: answer 200.
    pub(crate) fn on_notify(
        &mut self,
        request: &Message,
        ctx: &mut Ctx<'_>,
    ) -> Result<Vec<Step>, Refusal> {
        let event = request
            .event()
            .map_err(|_| (400, "Invalid Event header"))?
            .ok_or((489, "Bad Event"))?;
        if !event.package.eq_ignore_ascii_case(&self.event) || event.id != self.event_id.as_deref()
        {
            return Err((489, "Bad Event"));
        }
        let state = request
            .subscription_state()
            .map_err(|_| (400, "Invalid Subscription-State header"))?
            .ok_or((400, "Missing Subscription-State header"))?;
        let status = match state.state.to_ascii_lowercase().as_str() {
            "active" => SubscriptionStatus::Active {
                expires: state.expires,
            },
            "pending" => SubscriptionStatus::Pending {
                expires: state.expires,
            },
            "terminated" => SubscriptionStatus::Terminated {
                reason: state.reason.map(TerminationReason::parse),
                retry_after: state.retry_after,
            },
            _ => return Err((400, "Unknown Subscription-State")),
        };
        let from_tag = request
            .from_header()
            .ok()
            .and_then(|from| from.tag().map(str::to_owned))
            .ok_or((400, "Missing From tag"))?;
        let cseq = request
            .cseq()
            .map_err(|_| (400, "Invalid CSeq header"))?
            .seq;
        let contact = first_contact(request).map_err(|_| (400, "Invalid Contact header"))?;
        match &mut self.dialog {
            Some(dialog) => {
                if dialog.remote_tag != from_tag {
                    return Err((481, "Subscription Does Not Exist"));
                }
                if dialog.remote_cseq.is_some_and(|last| cseq <= last) {
                    return Err((500, "CSeq Out Of Order"));
                }
                dialog.remote_cseq = Some(cseq);
                // NOTIFY is a target refresh request (RFC 6665 §4.3).
                if let Some(contact) = contact {
                    dialog.remote_target = contact;
                }
            }
            None => {
                if !matches!(self.awaiting, Some((_, Kind::Initial))) {
                    return Err((481, "Subscription Does Not Exist"));
                }
                let remote_target = contact.ok_or((400, "Missing Contact header"))?;
                let route_set = route_set(request, false, ctx.config.max_route_set)
                    .map_err(|_| (400, "Invalid Record-Route header"))?;
                self.dialog = Some(Dialog {
                    remote_tag: from_tag,
                    remote_target,
                    route_set,
                    remote_cseq: Some(cseq),
                });
            }
        }
        Ok(self.apply_notify(request, status, ctx))
    }

    fn apply_notify(
        &mut self,
        request: &Message,
        status: SubscriptionStatus,
        ctx: &mut Ctx<'_>,
    ) -> Vec<Step> {
        let mut steps = vec![Step::Event(Event::Notify {
            id: self.id,
            status: status.clone(),
            content_type: request.header(&HeaderName::ContentType).map(str::to_owned),
            body: request.body(),
        })];
        let changed = self
            .status
            .as_ref()
            .is_none_or(|old| std::mem::discriminant(old) != std::mem::discriminant(&status));
        self.status = Some(status.clone());
        match &status {
            SubscriptionStatus::Active { expires } | SubscriptionStatus::Pending { expires } => {
                if changed {
                    steps.push(Step::Event(Event::SubscriptionState {
                        id: self.id,
                        status: status.clone(),
                        resubscribe_at: None,
                    }));
                }
                if let Some(seconds) = expires.filter(|s| *s > 0) {
                    // The notifier may shorten the lifetime at any NOTIFY (RFC 6665 §4.2.2): its
                    // figure is the one to refresh against.
                    self.expires_at = Some(ctx.now + Duration::from_secs(u64::from(seconds)));
                    if self.awaiting.is_none() && !self.closing {
                        self.timer = Some((ctx.now + refresh_delay(seconds), Timer::Refresh));
                    }
                }
            }
            SubscriptionStatus::Terminated {
                reason,
                retry_after,
            } => {
                self.dialog = None;
                self.expires_at = None;
                self.awaiting = None;
                self.timer = None;
                if self.closing {
                    steps.extend(self.finish());
                    return steps;
                }
                let resubscribe_at = self.resubscribe_at(reason.as_ref(), *retry_after, ctx);
                steps.push(Step::Event(Event::SubscriptionState {
                    id: self.id,
                    status: status.clone(),
                    resubscribe_at,
                }));
                match resubscribe_at {
                    None => self.finished = true,
                    Some(at) if at <= ctx.now => steps.extend(self.start(ctx)),
                    Some(at) => self.timer = Some((at, Timer::Resubscribe)),
                }
            }
        }
        steps
    }

    /// RFC 6665 §4.1.3: deactivated and timeout invite an immediate new subscription,
    /// probation and giveup one after `retry-after`, rejected, noresource and invariant none
    /// at all. No reason or an unknown one is treated like deactivated and probation
    /// respectively; a `retry-after` is honoured whatever the reason.
    fn resubscribe_at(
        &mut self,
        reason: Option<&TerminationReason>,
        retry_after: Option<u32>,
        ctx: &mut Ctx<'_>,
    ) -> Option<Instant> {
        let immediate = match reason {
            None | Some(TerminationReason::Deactivated | TerminationReason::Timeout) => true,
            Some(
                TerminationReason::Rejected
                | TerminationReason::Noresource
                | TerminationReason::Invariant,
            ) => return None,
            Some(
                TerminationReason::Probation
                | TerminationReason::Giveup
                | TerminationReason::Other(_),
            ) => false,
        };
        if let Some(seconds) = retry_after {
            let wait = Duration::from_secs(u64::from(seconds)).min(ctx.config.max_retry_after);
            return Some(ctx.now + wait);
        }
        if immediate && self.immediate_resubscribes < MAX_IMMEDIATE_RESUBSCRIBES {
            self.immediate_resubscribes += 1;
            return Some(ctx.now);
        }
        Some(next_retry(&mut self.failures, None, ctx))
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.timer.map(|(at, _)| at)
    }

    pub(crate) fn on_timer(&mut self, ctx: &mut Ctx<'_>) -> Vec<Step> {
        let Some((at, timer)) = self.timer else {
            return Vec::new();
        };
        if at > ctx.now {
            return Vec::new();
        }
        self.timer = None;
        match timer {
            Timer::FinalNotify => self.finish(),
            _ if self.awaiting.is_some() => Vec::new(),
            Timer::Refresh if self.dialog.is_some() => {
                if self.expires_at.is_some_and(|end| end <= ctx.now) {
                    let mut steps = self.lose(ctx.now);
                    steps.extend(self.start(ctx));
                    steps
                } else {
                    vec![self.send(Kind::Refresh, ctx)]
                }
            }
            Timer::Refresh | Timer::Resubscribe => self.start(ctx),
        }
    }
}

impl<D> Retries for Subscription<D> {
    fn retry_state(&mut self) -> (&mut Auth, Option<&Credentials>, &mut u32) {
        (
            &mut self.auth,
            self.identity.credentials.as_ref(),
            &mut self.expires,
        )
    }
}

/// The dialog a 2xx to the initial SUBSCRIBE creates (RFC 3261 §12.1.2): the To tag is
/// the remote tag, the Contact the remote target (the request's target when there is none,
/// since RFC 6665 notifiers must send one but some do not), the Record-Route reversed the
/// route set.
fn dialog_from_response(
    response: &Message,
    target: &str,
    max_route_set: usize,
) -> Result<Dialog, &'static str> {
    let remote_tag = response
        .to_header()
        .ok()
        .and_then(|to| to.tag().map(str::to_owned))
        .ok_or("2xx without To tag")?;
    let remote_target = first_contact(response)
        .map_err(|_| "invalid Contact")?
        .unwrap_or_else(|| target.to_owned());
    Ok(Dialog {
        remote_tag,
        remote_target,
        route_set: route_set(response, true, max_route_set)?,
        remote_cseq: None,
    })
}

/// The URI of the first Contact, None when there is none.
fn first_contact(message: &Message) -> Result<Option<String>, &'static str> {
    let contacts = message.contacts().map_err(|_| "invalid Contact")?;
    Ok(contacts.into_iter().find_map(|c| match c {
        ContactValue::Addr(addr) => Some(addr.uri.text.to_owned()),
        ContactValue::Star => None,
    }))
}

/// Record-Route values as a route set: in order for a request we received, reversed for
/// a response to our request (RFC 3261 §12.1.1, §12.1.2).
fn route_set(message: &Message, reverse: bool, max: usize) -> Result<Vec<String>, &'static str> {
    let routes = message
        .name_addrs(&HeaderName::RecordRoute)
        .map_err(|_| "invalid Record-Route")?;
    if routes.len() > max {
        return Err("route set too long");
    }
    let mut set: Vec<String> = routes.iter().map(|r| r.text.to_owned()).collect();
    if reverse {
        set.reverse();
    }
    Ok(set)
}
