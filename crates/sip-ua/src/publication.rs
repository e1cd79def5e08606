//! One publication, the event publication agent of RFC 3903 §4: initial PUBLISH with the
//! body (§4.2), refresh without body carrying `SIP-If-Match` (§4.3), modification with body
//! and `SIP-If-Match` (§4.4), removal with `Expires: 0` (§4.5), 412 answered by publishing
//! the current state afresh (§4.1, last paragraph) and 423 by Min-Expires (§4.2). One
//! request at a time: what changes meanwhile is sent when the answer arrives.

use std::time::Instant;

use bytes::Bytes;
use sip_message::{HeaderName, Message, Method};

use crate::auth::Auth;
use crate::request::{
    begin_closing, check_body, check_expires, check_flow, check_identity, check_text, check_uri,
    expires_header, final_response, header_safe, name_addr, next_retry, refresh_delay,
    retry_as_asked, start, take_awaited, token, Awaiting, Ctx, Head, Retries, Step,
};
use crate::{Credentials, Event, Flow, Identity, PublicationId, PublishParams, UaError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Initial,
    Refresh,
    Modify,
    Remove,
}

#[derive(Debug)]
pub(crate) struct Publication<D> {
    id: PublicationId,
    pub(crate) flow: Flow<D>,
    identity: Identity,
    resource: String,
    event: String,
    content_type: String,
    body: Bytes,
    expires: u32,
    from: String,
    to: String,
    call_id: String,
    cseq: u32,
    auth: Auth,
    etag: Option<String>,
    awaiting: Awaiting<Kind>,
    /// The body changed since it was last sent.
    dirty: bool,
    closing: bool,
    failures: u32,
    /// Next PUBLISH (refresh, or retry after a failure).
    next_publish: Option<Instant>,
    pub(crate) finished: bool,
}

impl<D> Publication<D> {
    pub(crate) fn new(
        id: PublicationId,
        params: PublishParams<D>,
        ctx: &mut Ctx<'_>,
    ) -> Result<Publication<D>, UaError> {
        check_identity(&params.identity)?;
        check_flow(&params.flow)?;
        check_text(&params.event, "event")?;
        check_text(&params.content_type, "content type")?;
        check_expires(params.expires, ctx.config)?;
        check_body(&params.body, ctx.config)?;
        let resource = params
            .resource
            .unwrap_or_else(|| params.identity.aor.clone());
        check_uri(&resource, "resource")?;
        let from = format!(
            "{};tag={}",
            name_addr(
                params.identity.display_name.as_deref(),
                &params.identity.aor
            ),
            token(ctx.rng)
        );
        Ok(Publication {
            id,
            flow: params.flow,
            identity: params.identity,
            to: name_addr(None, &resource),
            resource,
            event: params.event,
            content_type: params.content_type,
            body: params.body,
            expires: params.expires,
            from,
            call_id: token(ctx.rng),
            cseq: 0,
            auth: Auth::default(),
            etag: None,
            awaiting: None,
            dirty: true,
            closing: false,
            failures: 0,
            next_publish: None,
            finished: false,
        })
    }

    /// Send what the state calls for: removal when closing, the body when there is no
    /// entity tag or it changed, else a refresh.
    pub(crate) fn send_next(&mut self, ctx: &mut Ctx<'_>) -> Vec<Step> {
        let kind = match (&self.etag, self.closing, self.dirty) {
            (None, true, _) => return self.finish(),
            (Some(_), true, _) => Kind::Remove,
            (None, false, _) => Kind::Initial,
            (Some(_), false, true) => Kind::Modify,
            (Some(_), false, false) => Kind::Refresh,
        };
        vec![self.send(kind, ctx)]
    }

    fn send(&mut self, kind: Kind, ctx: &mut Ctx<'_>) -> Step {
        self.cseq += 1;
        self.awaiting = Some((self.cseq, kind));
        self.next_publish = None;
        let with_body = matches!(kind, Kind::Initial | Kind::Modify);
        if with_body {
            self.dirty = false;
        }
        let head = Head {
            method: Method::Publish,
            request_uri: &self.resource,
            via: &self.flow.via,
            from: &self.from,
            to: &self.to,
            call_id: &self.call_id,
            cseq: self.cseq,
            routes: &[],
        };
        let mut w = start(&head, ctx);
        w.header("Event", &self.event).header_fmt(
            "Expires",
            format_args!(
                "{}",
                if kind == Kind::Remove {
                    0
                } else {
                    self.expires
                }
            ),
        );
        if let (Some(etag), false) = (&self.etag, kind == Kind::Initial) {
            w.header("SIP-If-Match", etag);
        }
        self.auth.write(
            &mut w,
            "PUBLISH",
            &self.resource,
            self.identity.credentials.as_ref(),
            ctx.rng,
        );
        Step::Send {
            cseq: self.cseq,
            request: if with_body {
                w.finish(Some(&self.content_type), &self.body)
            } else {
                w.finish(None, b"")
            },
        }
    }

    fn finish(&mut self) -> Vec<Step> {
        self.finished = true;
        vec![Step::Event(Event::Unpublished { id: self.id })]
    }

    pub(crate) fn modify(&mut self, body: Bytes, ctx: &mut Ctx<'_>) -> Result<Vec<Step>, UaError> {
        if self.closing {
            return Err(UaError::Closing);
        }
        check_body(&body, ctx.config)?;
        self.body = body;
        self.dirty = true;
        Ok(self.send_unless_busy(ctx))
    }

    pub(crate) fn remove(&mut self, ctx: &mut Ctx<'_>) -> Result<Vec<Step>, UaError> {
        begin_closing(&mut self.closing)?;
        Ok(self.send_unless_busy(ctx))
    }

    fn send_unless_busy(&mut self, ctx: &mut Ctx<'_>) -> Vec<Step> {
        if self.awaiting.is_some() {
            Vec::new()
        } else {
            self.send_next(ctx)
        }
    }

    pub(crate) fn on_response(&mut self, response: &Message, ctx: &mut Ctx<'_>) -> Vec<Step> {
        let Some((status, kind)) = final_response(response, &mut self.awaiting) else {
            return Vec::new();
        };
        match status {
            200..=299 => self.on_success(response, kind, ctx),
            412 => {
                // The server lost our entity (expired, restarted): publish afresh.
                self.auth.on_final();
                self.etag = None;
                if kind == Kind::Remove {
                    return self.finish();
                }
                vec![self.send(Kind::Initial, ctx)]
            }
            _ if retry_as_asked(self, response, kind == Kind::Remove, ctx.config) => {
                vec![self.send(kind, ctx)]
            }
            _ => self.fail(status, Some(response), kind, ctx),
        }
    }

    fn on_success(&mut self, response: &Message, kind: Kind, ctx: &mut Ctx<'_>) -> Vec<Step> {
        self.auth.on_final();
        self.failures = 0;
        if kind == Kind::Remove {
            return self.finish();
        }
        self.etag = response
            .header(&HeaderName::SipETag)
            .map(str::trim)
            .filter(|etag| header_safe(etag))
            .map(str::to_owned);
        let expires = expires_header(response).unwrap_or(self.expires);
        if expires == 0 {
            // The entity is already gone: refreshing at once would loop.
            self.etag = None;
            return self.fail(response.status().unwrap_or(200), Some(response), kind, ctx);
        }
        let mut steps = vec![Step::Event(Event::Published {
            id: self.id,
            etag: self.etag.clone(),
            expires,
        })];
        if self.closing || self.dirty {
            steps.extend(self.send_next(ctx));
        } else {
            self.next_publish = Some(ctx.now + refresh_delay(expires));
        }
        steps
    }

    fn fail(
        &mut self,
        status: u16,
        response: Option<&Message>,
        kind: Kind,
        ctx: &mut Ctx<'_>,
    ) -> Vec<Step> {
        self.auth.on_final();
        if kind == Kind::Remove || self.closing {
            return self.finish();
        }
        if matches!(kind, Kind::Initial | Kind::Modify) {
            // The body did not get through: the retry must carry it.
            self.dirty = true;
        }
        let retry_at = next_retry(&mut self.failures, response, ctx);
        self.next_publish = Some(retry_at);
        vec![Step::Event(Event::PublicationFailed {
            id: self.id,
            status,
            retry_at,
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

    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.next_publish
    }

    pub(crate) fn on_timer(&mut self, ctx: &mut Ctx<'_>) -> Vec<Step> {
        if self.next_publish.is_none_or(|at| at > ctx.now) {
            return Vec::new();
        }
        self.next_publish = None;
        self.send_unless_busy(ctx)
    }
}

impl<D> Retries for Publication<D> {
    fn retry_state(&mut self) -> (&mut Auth, Option<&Credentials>, &mut u32) {
        (
            &mut self.auth,
            self.identity.credentials.as_ref(),
            &mut self.expires,
        )
    }
}
