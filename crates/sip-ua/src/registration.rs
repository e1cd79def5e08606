//! One registration: RFC 3261 §10.2 (REGISTER construction, refresh, removal with
//! `Expires: 0`, §10.2.8 423 Min-Expires), RFC 5626 §4.1 (`+sip.instance`), §4.4.1 (CRLF
//! keepalives on reliable flows) and §4.5 (back-off after failures), RFC 5627 §5.2 (the
//! GRUUs of our instance in the 200), RFC 3327 (`Supported: path`).

use std::time::Instant;

use sip_message::{unquote, ContactValue, Message, Method, NameAddr, Uri};

use crate::auth::Auth;
use crate::request::{
    begin_closing, check_expires, check_flow, check_identity, check_text, expires_header,
    final_response, name_addr, next_retry, refresh_delay, retry_as_asked, start, take_awaited,
    token, Awaiting, Ctx, Head, Retries, Step,
};
use crate::{Credentials, Event, Flow, Identity, RegisterParams, RegistrationId, UaError};

#[derive(Debug)]
pub(crate) struct Registration<D> {
    id: RegistrationId,
    pub(crate) flow: Flow<D>,
    identity: Identity,
    instance: String,
    /// Request-URI: the AOR's domain (RFC 3261 §10.2).
    registrar: String,
    from: String,
    to: String,
    contact: String,
    expires: u32,
    /// One Call-ID for every REGISTER of this registration (RFC 3261 §10.2, so the
    /// registrar orders them by CSeq).
    call_id: String,
    cseq: u32,
    auth: Auth,
    /// CSeq of the REGISTER in flight, and whether it removes the binding.
    awaiting: Awaiting<bool>,
    registered: bool,
    closing: bool,
    failures: u32,
    /// Next REGISTER (refresh or retry after a failure).
    next_register: Option<Instant>,
    next_keepalive: Option<Instant>,
    pub(crate) finished: bool,
}

impl<D> Registration<D> {
    pub(crate) fn new(
        id: RegistrationId,
        params: RegisterParams<D>,
        ctx: &mut Ctx<'_>,
    ) -> Result<Registration<D>, UaError> {
        check_identity(&params.identity)?;
        check_flow(&params.flow)?;
        check_text(&params.instance, "instance")?;
        check_expires(params.expires, ctx.config)?;
        if params.instance.contains(['"', '<', '>', '\\']) {
            return Err(UaError::InvalidParameter("instance"));
        }
        let aor = Uri::parse(&params.identity.aor).map_err(|_| UaError::InvalidParameter("aor"))?;
        let registrar = match aor.port {
            Some(port) => format!("{}:{}:{port}", aor.scheme, aor.host_text),
            None => format!("{}:{}", aor.scheme, aor.host_text),
        };
        let display = params.identity.display_name.as_deref();
        let to = name_addr(display, &params.identity.aor);
        Ok(Registration {
            id,
            from: format!("{to};tag={}", token(ctx.rng)),
            to,
            contact: format!(
                "<{}>;+sip.instance=\"<{}>\"",
                params.flow.contact, params.instance
            ),
            flow: params.flow,
            identity: params.identity,
            instance: params.instance,
            registrar,
            expires: params.expires,
            call_id: token(ctx.rng),
            cseq: 0,
            auth: Auth::default(),
            awaiting: None,
            registered: false,
            closing: false,
            failures: 0,
            next_register: None,
            next_keepalive: None,
            finished: false,
        })
    }

    pub(crate) fn start(&mut self, ctx: &mut Ctx<'_>) -> Vec<Step> {
        vec![self.send(false, ctx)]
    }

    fn send(&mut self, remove: bool, ctx: &mut Ctx<'_>) -> Step {
        self.cseq += 1;
        self.awaiting = Some((self.cseq, remove));
        self.next_register = None;
        let head = Head {
            method: Method::Register,
            request_uri: &self.registrar,
            via: &self.flow.via,
            from: &self.from,
            to: &self.to,
            call_id: &self.call_id,
            cseq: self.cseq,
            routes: &[],
        };
        let mut w = start(&head, ctx);
        w.header("Contact", &self.contact)
            .header_fmt(
                "Expires",
                format_args!("{}", if remove { 0 } else { self.expires }),
            )
            .header("Supported", "gruu, path");
        self.auth.write(
            &mut w,
            "REGISTER",
            &self.registrar,
            self.identity.credentials.as_ref(),
            ctx.rng,
        );
        Step::Send {
            cseq: self.cseq,
            request: w.finish(None, b""),
        }
    }

    pub(crate) fn unregister(&mut self, ctx: &mut Ctx<'_>) -> Result<Vec<Step>, UaError> {
        begin_closing(&mut self.closing)?;
        self.next_register = None;
        self.next_keepalive = None;
        if self.awaiting.is_some() {
            // The removal follows the answer to the REGISTER in flight.
            return Ok(Vec::new());
        }
        if self.registered {
            return Ok(vec![self.send(true, ctx)]);
        }
        Ok(self.finish())
    }

    fn finish(&mut self) -> Vec<Step> {
        self.finished = true;
        vec![Step::Event(Event::Unregistered { id: self.id })]
    }

    pub(crate) fn on_response(&mut self, response: &Message, ctx: &mut Ctx<'_>) -> Vec<Step> {
        let Some((status, remove)) = final_response(response, &mut self.awaiting) else {
            return Vec::new();
        };
        match status {
            200..=299 => self.on_success(response, remove, ctx),
            _ if retry_as_asked(self, response, remove, ctx.config) => vec![self.send(remove, ctx)],
            _ => self.fail(status, Some(response), remove, ctx),
        }
    }

    fn on_success(&mut self, response: &Message, remove: bool, ctx: &mut Ctx<'_>) -> Vec<Step> {
        self.auth.on_final();
        self.failures = 0;
        if remove {
            return self.finish();
        }
        let binding = self.binding(response);
        if binding.expires == 0 {
            // The registrar lists our binding as gone: refreshing at once would loop.
            return self.fail(
                response.status().unwrap_or(200),
                Some(response),
                remove,
                ctx,
            );
        }
        self.registered = true;
        let mut steps = vec![Step::Event(Event::Registered {
            id: self.id,
            expires: binding.expires,
            gruu: binding.gruu,
            temp_gruu: binding.temp_gruu,
        })];
        if self.closing {
            steps.push(self.send(true, ctx));
            return steps;
        }
        self.next_register = Some(ctx.now + refresh_delay(binding.expires));
        if self.flow.reliable && self.next_keepalive.is_none() {
            self.next_keepalive = Some(ctx.now + ctx.config.keepalive_interval);
        }
        steps
    }

    /// Our binding in a 2xx: the Contact carrying our instance (RFC 5627 §5.2), else the one
    /// with our URI; its lifetime from its `expires` parameter, else the Expires header
    /// (RFC 3261 §10.2.4), else what we asked for.
    fn binding(&self, response: &Message) -> Binding {
        let contacts = response.contacts().unwrap_or_default();
        let wanted_instance = format!("<{}>", self.instance);
        let ours: Option<&NameAddr<'_>> = contacts
            .iter()
            .filter_map(|c| match c {
                ContactValue::Addr(addr) => Some(addr),
                ContactValue::Star => None,
            })
            .find(|addr| {
                addr.params
                    .get("+sip.instance")
                    .flatten()
                    .is_some_and(|v| unquote(v).eq_ignore_ascii_case(&wanted_instance))
            })
            .or_else(|| {
                let mine = Uri::parse(&self.flow.contact).ok()?;
                contacts.iter().find_map(|c| match c {
                    ContactValue::Addr(addr) if addr.uri.equivalent(&mine) => Some(addr),
                    _ => None,
                })
            });
        let param = |name: &str| {
            ours.and_then(|addr| addr.params.get(name).flatten())
                .map(|v| unquote(v).into_owned())
        };
        let expires = param("expires")
            .and_then(|v| v.parse().ok())
            .or_else(|| expires_header(response))
            .unwrap_or(self.expires);
        Binding {
            expires,
            gruu: param("pub-gruu"),
            temp_gruu: param("temp-gruu"),
        }
    }

    fn fail(
        &mut self,
        status: u16,
        response: Option<&Message>,
        remove: bool,
        ctx: &mut Ctx<'_>,
    ) -> Vec<Step> {
        self.auth.on_final();
        if remove || self.closing {
            // The binding, if any, expires on its own.
            return self.finish();
        }
        self.registered = false;
        self.next_keepalive = None;
        let retry_at = next_retry(&mut self.failures, response, ctx);
        self.next_register = Some(retry_at);
        vec![Step::Event(Event::RegistrationFailed {
            id: self.id,
            status,
            retry_at,
        })]
    }

    /// The REGISTER with `cseq` got no response (timeout or transport failure).
    pub(crate) fn on_no_response(
        &mut self,
        cseq: u32,
        status: u16,
        ctx: &mut Ctx<'_>,
    ) -> Vec<Step> {
        match take_awaited(&mut self.awaiting, cseq) {
            Some(remove) => self.fail(status, None, remove, ctx),
            None => Vec::new(),
        }
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        match (self.next_register, self.next_keepalive) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub(crate) fn on_timer(&mut self, ctx: &mut Ctx<'_>) -> Vec<Step> {
        let mut steps = Vec::new();
        if self.next_keepalive.is_some_and(|at| at <= ctx.now) {
            steps.push(Step::Keepalive);
            self.next_keepalive = Some(ctx.now + ctx.config.keepalive_interval);
        }
        if self.next_register.is_some_and(|at| at <= ctx.now) {
            self.next_register = None;
            if self.awaiting.is_none() {
                steps.push(self.send(false, ctx));
            }
        }
        steps
    }
}

impl<D> Retries for Registration<D> {
    fn retry_state(&mut self) -> (&mut Auth, Option<&Credentials>, &mut u32) {
        (
            &mut self.auth,
            self.identity.credentials.as_ref(),
            &mut self.expires,
        )
    }
}

struct Binding {
    expires: u32,
    gruu: Option<String>,
    temp_gruu: Option<String>,
}
