//! A SIP user agent for the presence tests: its own TCP connection, digest answers, and the
//! subscriber's side of subscription dialogs.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::VecDeque;
use std::time::Duration;

use sip_message::{Challenge, HeaderName, Message};

use crate::xcap_common::common::{unique, Server, SipConn, DOMAIN};

/// A user agent on its own TCP connection that answers digest challenges and NOTIFYs.
pub struct Ua {
    pub conn: SipConn,
    pub user: String,
    pub password: String,
    pub domain: String,
    /// Requests (NOTIFYs) that arrived while a response was awaited.
    pub requests: VecDeque<Message>,
}

/// The dialog of one subscription, from the subscriber's side.
pub struct Dialog {
    pub uri: String,
    pub call_id: String,
    pub from_tag: String,
    pub to_tag: String,
    pub cseq: u32,
    pub event: String,
}

impl Ua {
    pub fn new(server: &Server, user: &str, password: &str) -> Ua {
        Ua::in_domain(server, user, password, DOMAIN)
    }

    /// A user of `domain` (a server started for that domain).
    pub fn in_domain(server: &Server, user: &str, password: &str, domain: &str) -> Ua {
        Ua {
            conn: SipConn::tcp(server.tcp_addr()).expect("connect"),
            user: user.to_owned(),
            password: password.to_owned(),
            domain: domain.to_owned(),
            requests: VecDeque::new(),
        }
    }

    pub fn aor(&self) -> String {
        format!("sip:{}@{}", self.user, self.domain)
    }

    /// Sends `method` (answering one 401 with credentials) and returns the final response.
    #[allow(clippy::too_many_arguments)]
    pub fn send(
        &mut self,
        method: &str,
        uri: &str,
        call_id: &str,
        from_tag: &str,
        to_tag: Option<&str>,
        cseq: u32,
        headers: &str,
        body: &str,
    ) -> Message {
        let mut authorization = String::new();
        for attempt in 0..2 {
            let n = unique();
            let to = match to_tag {
                Some(tag) => format!("<{uri}>;tag={tag}"),
                None => format!("<{uri}>"),
            };
            let message = format!(
                "{method} {uri} SIP/2.0\r\n\
                 Via: SIP/2.0/TCP 127.0.0.1:5099;branch=z9hG4bK-pr{n};rport\r\n\
                 Max-Forwards: 70\r\n\
                 From: <{}>;tag={from_tag}\r\n\
                 To: {to}\r\n\
                 Call-ID: {call_id}\r\n\
                 CSeq: {} {method}\r\n\
                 Contact: <sip:{}@127.0.0.1:5099;transport=tcp>\r\n\
                 {authorization}{headers}Content-Length: {}\r\n\r\n{body}",
                self.aor(),
                cseq + attempt,
                self.user,
                body.len()
            );
            self.conn.send(&message);
            let response = self.response();
            if response.status() != Some(401) || attempt == 1 {
                return response;
            }
            authorization = format!(
                "Authorization: {}\r\n",
                digest(&response, &self.user, &self.password, method, uri)
            );
        }
        unreachable!("the loop returns")
    }

    /// The next response; requests arriving meanwhile are kept for [`Self::notify`].
    pub fn response(&mut self) -> Message {
        loop {
            let message = self.conn.recv();
            if message.is_request() {
                self.answer(&message);
                self.requests.push_back(message);
            } else {
                return message;
            }
        }
    }

    pub fn answer(&mut self, request: &Message) {
        let reply = sip_message::response_to(request, 200, "OK", None).finish(None, b"");
        self.conn.send_bytes(&reply);
    }

    /// The next NOTIFY (already answered with 200).
    pub fn notify(&mut self) -> Message {
        self.try_notify(Duration::from_secs(5))
            .expect("a NOTIFY within 5 s")
    }

    pub fn try_notify(&mut self, timeout: Duration) -> Option<Message> {
        if let Some(request) = self.requests.pop_front() {
            return Some(request);
        }
        let message = self.conn.try_recv(timeout)?;
        assert!(message.is_request(), "unexpected response {message:?}");
        self.answer(&message);
        Some(message)
    }

    pub fn publish(&mut self, uri: &str, headers: &str, body: &str) -> Message {
        let n = unique();
        self.send(
            "PUBLISH",
            uri,
            &format!("pub-{n}"),
            &format!("p{n}"),
            None,
            1,
            &format!("Event: presence\r\n{headers}"),
            body,
        )
    }

    /// A new subscription; returns the 2xx (or failure) and its dialog.
    pub fn subscribe(&mut self, uri: &str, event: &str, headers: &str) -> (Message, Dialog) {
        self.subscribe_with(uri, event, headers, "")
    }

    /// [`Self::subscribe`] with a body (its Content-Type goes in `headers`).
    pub fn subscribe_with(
        &mut self,
        uri: &str,
        event: &str,
        headers: &str,
        body: &str,
    ) -> (Message, Dialog) {
        let n = unique();
        let mut dialog = Dialog {
            uri: uri.to_owned(),
            call_id: format!("sub-{n}"),
            from_tag: format!("s{n}"),
            to_tag: String::new(),
            cseq: 1,
            event: event.to_owned(),
        };
        let response = self.send(
            "SUBSCRIBE",
            uri,
            &dialog.call_id,
            &dialog.from_tag,
            None,
            1,
            &format!("Event: {event}\r\n{headers}"),
            body,
        );
        dialog.cseq = response.cseq().map(|c| c.seq).unwrap_or(1);
        dialog.to_tag = response
            .to_header()
            .ok()
            .and_then(|to| to.tag().map(str::to_owned))
            .unwrap_or_default();
        (response, dialog)
    }

    /// An in-dialog SUBSCRIBE (refresh, or unsubscribe with `Expires: 0`).
    pub fn resubscribe(&mut self, dialog: &mut Dialog, expires: u32) -> Message {
        dialog.cseq += 1;
        let response = self.send(
            "SUBSCRIBE",
            &dialog.uri.clone(),
            &dialog.call_id.clone(),
            &dialog.from_tag.clone(),
            Some(&dialog.to_tag.clone()),
            dialog.cseq,
            &format!("Event: {}\r\nExpires: {expires}\r\n", dialog.event),
            "",
        );
        dialog.cseq = response.cseq().map(|c| c.seq).unwrap_or(dialog.cseq);
        response
    }
}

pub fn digest(challenge: &Message, user: &str, password: &str, method: &str, uri: &str) -> String {
    let md5 = challenge
        .header_values(&HeaderName::WwwAuthenticate)
        .filter_map(|value| Challenge::parse(value).ok())
        .find(|c| {
            c.algorithm
                .as_deref()
                .is_none_or(|a| a.eq_ignore_ascii_case("MD5"))
        })
        .expect("an MD5 challenge is offered");
    let cnonce = format!("c{}", unique());
    sip_auth::answer(
        &md5,
        &sip_auth::AnswerInput {
            method,
            uri,
            username: user,
            password,
            cnonce: &cnonce,
            nonce_count: 1,
        },
    )
    .expect("MD5 with qop=auth can be answered")
}

pub fn header(message: &Message, name: &str) -> String {
    match HeaderName::from_wire(name) {
        HeaderName::Other => message.other_header(name),
        known => message.header(&known),
    }
    .unwrap_or_default()
    .to_owned()
}

pub fn body(message: &Message) -> String {
    String::from_utf8_lossy(&message.body()).into_owned()
}
