//! Building messages to send (RFC 3261 §7, §8.2.6 response construction).

use std::io::Write;

use bytes::Bytes;

/// Writes a message straight into one buffer: start line, headers in the order given,
/// then `Content-Length` (always, so stream framing works) and the body.
#[derive(Debug, Clone)]
pub struct MessageWriter {
    buf: Vec<u8>,
}

impl MessageWriter {
    fn with_line(parts: &[&[u8]]) -> MessageWriter {
        let mut buf = Vec::with_capacity(512);
        for p in parts {
            buf.extend_from_slice(p);
        }
        buf.extend_from_slice(b"\r\n");
        MessageWriter { buf }
    }
    /// `METHOD request-uri SIP/2.0`
    pub fn request(method: &crate::Method, request_uri: &str) -> MessageWriter {
        MessageWriter::with_line(&[
            method.as_str().as_bytes(),
            b" ",
            request_uri.as_bytes(),
            b" SIP/2.0",
        ])
    }
    /// `SIP/2.0 code reason`
    pub fn response(code: u16, reason: &str) -> MessageWriter {
        let mut code_digits = itoa::Buffer::new();
        let code = code_digits.format(code);
        MessageWriter::with_line(&[b"SIP/2.0 ", code.as_bytes(), b" ", reason.as_bytes()])
    }
    /// Append `name: value`. The caller guarantees `value` has no CR or LF.
    pub fn header(&mut self, name: &str, value: &str) -> &mut MessageWriter {
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(b": ");
        self.buf.extend_from_slice(value.as_bytes());
        self.buf.extend_from_slice(b"\r\n");
        self
    }
    /// Append `name: ` followed by formatted arguments, without an intermediate String.
    pub fn header_fmt(&mut self, name: &str, value: std::fmt::Arguments<'_>) -> &mut MessageWriter {
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(b": ");
        // Writing into a Vec cannot fail.
        let _ = self.buf.write_fmt(value);
        self.buf.extend_from_slice(b"\r\n");
        self
    }
    /// Copy every field with that name from `message`, byte-exact, in order.
    pub fn copy_headers(
        &mut self,
        message: &crate::Message,
        name: &crate::HeaderName,
    ) -> &mut MessageWriter {
        for h in message.headers_named(name) {
            self.header(h.name_as_written, h.value);
        }
        self
    }
    /// Append Content-Type (when given), Content-Length and the body; return the bytes.
    pub fn finish(mut self, content_type: Option<&str>, body: &[u8]) -> Bytes {
        if let Some(ct) = content_type {
            self.header("Content-Type", ct);
        }
        self.header_fmt("Content-Length", format_args!("{}", body.len()));
        self.buf.extend_from_slice(b"\r\n");
        self.buf.extend_from_slice(body);
        Bytes::from(self.buf)
    }
}

/// Start a response to `request` (RFC 3261 §8.2.6.2): copies every Via, From, Call-ID and
/// CSeq; copies To, adding `;tag=to_tag` when the request's To has no tag and `to_tag` is given.
/// Works on a message from [`crate::Message::parse_headers_only`] too (fields copied raw).
pub fn response_to(
    request: &crate::Message,
    code: u16,
    reason: &str,
    to_tag: Option<&str>,
) -> MessageWriter {
    use crate::HeaderName as H;
    let mut w = MessageWriter::response(code, reason);
    // Via: RFC 3261 §18.2.1 — the topmost one annotated with where the request came from.
    let mut vias = request.headers_named(&H::Via);
    match (vias.next(), request.source()) {
        (Some(top), Some(source)) => {
            // Only the topmost value of a comma-joined Via field is ours to annotate.
            let raw_first = crate::syntax::split_top_level(top.value, b',')
                .next()
                .unwrap_or_default();
            let rest = top.value.get(raw_first.len()..).unwrap_or_default();
            let annotated = annotate_via(request, raw_first.trim(), source);
            w.header_fmt(top.name_as_written, format_args!("{annotated}{rest}"));
        }
        (Some(top), None) => {
            w.header(top.name_as_written, top.value);
        }
        (None, _) => {}
    }
    for via in vias {
        w.header(via.name_as_written, via.value);
    }
    w.copy_headers(request, &H::From);
    for (index, h) in request.headers_named(&H::To).enumerate() {
        // The first is the To that `to_header` reads, kept from parsing a request.
        let address = match index {
            0 => request.to_header(),
            _ => crate::NameAddr::parse(h.value),
        };
        let has_tag = match address {
            Ok(na) => na.tag().is_some(),
            // Unparsable To (a 400 for a malformed request): never append to garbage twice.
            Err(_) => h.value.to_ascii_lowercase().contains("tag="),
        };
        match to_tag {
            Some(tag) if !has_tag => {
                w.header_fmt(h.name_as_written, format_args!("{};tag={}", h.value, tag));
            }
            _ => {
                w.header(h.name_as_written, h.value);
            }
        }
    }
    w.copy_headers(request, &H::CallId)
        .copy_headers(request, &H::CSeq);
    w
}

/// The topmost Via as the response must carry it: `received` when the source address
/// differs from `sent-by` or the client asked for `rport` (RFC 3261 §18.2.1, RFC 3581 §4),
/// and an empty `rport` filled with the source port. An unparsable Via is left as it is.
fn annotate_via<'a>(
    request: &crate::Message,
    via: &'a str,
    source: std::net::SocketAddr,
) -> std::borrow::Cow<'a, str> {
    // A parsed request has its top Via at hand, the same text as `via`.
    let parsed = match request.top_via() {
        Ok(top) if std::ptr::eq(top.text, via) => Ok(top),
        _ => crate::Via::parse(via),
    };
    let Ok(parsed) = parsed else {
        return via.into();
    };
    let wants_rport = parsed.params.get("rport") == Some(None);
    let same_host = match parsed.host {
        crate::Host::Ipv4(ip) => std::net::IpAddr::V4(ip) == source.ip(),
        crate::Host::Ipv6(ip) => std::net::IpAddr::V6(ip) == source.ip(),
        crate::Host::Name(_) => false,
    };
    if same_host && !wants_rport {
        return via.into();
    }
    let params_at = if parsed.params.is_empty() {
        via.len()
    } else {
        (parsed.params.raw.as_ptr() as usize)
            .saturating_sub(via.as_ptr() as usize)
            .saturating_sub(1)
    };
    let mut out = String::with_capacity(via.len() + 40);
    out.push_str(via.get(..params_at).unwrap_or(via).trim_end());
    for param in parsed.params.iter() {
        if param.name.eq_ignore_ascii_case("received") {
            continue;
        }
        out.push(';');
        out.push_str(param.name);
        match param.value {
            Some(value) => {
                out.push('=');
                out.push_str(value);
            }
            None if param.name.eq_ignore_ascii_case("rport") => {
                out.push('=');
                out.push_str(itoa::Buffer::new().format(source.port()));
            }
            None => {}
        }
    }
    out.push_str(";received=");
    // The standard library's address formatting (padding support and all) cost more than
    // the rest of a PUBLISH's response; every IPv4 response needs it.
    match source.ip() {
        std::net::IpAddr::V4(ip) => {
            for (i, octet) in ip.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                out.push_str(itoa::Buffer::new().format(octet));
            }
        }
        ip => out.push_str(&ip.to_string()),
    }
    out.into()
}

/// The RFC 3261 §21 (and RFC 3265/3903/4662/5626/6665...) reason phrase for a status code.
pub fn default_reason(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        199 => "Early Dialog Terminated",
        200 => "OK",
        202 => "Accepted",
        204 => "No Notification",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        412 => "Conditional Request Failed",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        417 => "Unknown Resource-Priority",
        420 => "Bad Extension",
        421 => "Extension Required",
        422 => "Session Interval Too Small",
        423 => "Interval Too Brief",
        428 => "Use Identity Header",
        429 => "Provide Referrer Identity",
        430 => "Flow Failed",
        433 => "Anonymity Disallowed",
        436 => "Bad Identity-Info",
        437 => "Unsupported Certificate",
        438 => "Invalid Identity Header",
        439 => "First Hop Lacks Outbound Support",
        440 => "Max-Breadth Exceeded",
        469 => "Bad Info Package",
        470 => "Consent Needed",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        493 => "Undecipherable",
        494 => "Security Agreement Required",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        580 => "Precondition Failure",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        607 => "Unwanted",
        _ => match code / 100 {
            1 => "Trying",
            2 => "OK",
            3 => "Redirect",
            4 => "Client Error",
            5 => "Server Error",
            6 => "Global Failure",
            _ => "Unknown",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HeaderName, Limits, Message, Method};

    fn request(to: &str) -> Message {
        let text = format!(
            "SUBSCRIBE sip:p@h SIP/2.0\r\nv: SIP/2.0/UDP a;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP b\r\n\
             To: {to}\r\nFrom: <sip:w@h>;tag=1\r\nCall-ID: c@h\r\nCSeq: 5 SUBSCRIBE\r\nMax-Forwards: 70\r\n\r\n"
        );
        Message::parse(Bytes::from(text), &Limits::default()).unwrap()
    }

    #[test]
    fn response_copies_fields_and_adds_tag() {
        let resp = response_to(&request("<sip:p@h>"), 200, default_reason(200), Some("abc"))
            .finish(None, b"");
        let m = Message::parse(resp, &Limits::default()).unwrap();
        assert_eq!(m.status(), Some(200));
        assert_eq!(m.reason(), Some("OK"));
        assert_eq!(m.vias().unwrap().len(), 2);
        assert_eq!(m.headers().next().unwrap().name_as_written, "v");
        assert_eq!(m.to_header().unwrap().tag(), Some("abc"));
        assert_eq!(m.cseq().unwrap().seq, 5);
        assert_eq!(m.u32_header(&HeaderName::ContentLength).unwrap(), Some(0));

        let resp =
            response_to(&request("<sip:p@h>;tag=old"), 481, "Gone", Some("new")).finish(None, b"");
        let m = Message::parse(resp, &Limits::default()).unwrap();
        assert_eq!(m.to_header().unwrap().tag(), Some("old"));
    }

    #[test]
    fn request_with_body() {
        let mut w = MessageWriter::request(&Method::Notify, "sip:w@10.0.0.1:5060");
        w.header("Via", "SIP/2.0/TCP s;branch=z9hG4bKx")
            .header_fmt("CSeq", format_args!("{} NOTIFY", 7))
            .header("To", "<sip:w@h>;tag=1")
            .header("From", "<sip:p@h>;tag=2")
            .header("Call-ID", "c");
        let bytes = w.finish(Some("application/pidf+xml"), b"<p/>");
        assert!(bytes.starts_with(b"NOTIFY sip:w@10.0.0.1:5060 SIP/2.0\r\nVia: "));
        assert!(
            bytes.ends_with(b"Content-Type: application/pidf+xml\r\nContent-Length: 4\r\n\r\n<p/>")
        );
        let m = Message::parse(bytes, &Limits::default()).unwrap();
        assert_eq!(m.cseq().unwrap().seq, 7);
    }

    #[test]
    fn reasons() {
        assert_eq!(default_reason(202), "Accepted");
        assert_eq!(default_reason(489), "Bad Event");
        assert_eq!(default_reason(412), "Conditional Request Failed");
        assert_eq!(default_reason(599), "Server Error");
    }
}

#[cfg(test)]
mod via_received_tests {
    use crate::{response_to, Limits, Message};
    use bytes::Bytes;

    fn request(via: &str) -> Message {
        let text = format!(
            "OPTIONS sip:example.com SIP/2.0\r\nVia: {via}\r\nFrom: <sip:a@example.com>;tag=1\r\n\
             To: <sip:example.com>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        Message::parse(Bytes::from(text), &Limits::default()).expect("valid")
    }

    fn response_vias(request: Message) -> Vec<String> {
        let bytes = response_to(&request, 200, "OK", Some("t")).finish(None, b"");
        let response = Message::parse(bytes, &Limits::default()).expect("valid response");
        response
            .header_values(&crate::HeaderName::Via)
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn rport_is_filled_and_received_added() {
        let source = "203.0.113.7:40123".parse().unwrap();
        let vias = response_vias(
            request("SIP/2.0/UDP 10.0.0.2:5060;rport;branch=z9hG4bKa").with_source(source),
        );
        assert_eq!(
            vias,
            ["SIP/2.0/UDP 10.0.0.2:5060;rport=40123;branch=z9hG4bKa;received=203.0.113.7"]
        );
    }

    #[test]
    fn received_only_when_the_host_differs() {
        let source = "192.0.2.1:5060".parse().unwrap();
        let same = response_vias(
            request("SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bKb").with_source(source),
        );
        assert_eq!(same, ["SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bKb"]);
        let named = response_vias(
            request("SIP/2.0/TCP host.example.com;branch=z9hG4bKc").with_source(source),
        );
        assert_eq!(
            named,
            ["SIP/2.0/TCP host.example.com;branch=z9hG4bKc;received=192.0.2.1"]
        );
    }

    #[test]
    fn received_carries_the_source_address_as_written_by_the_standard_library() {
        for source in [
            "0.0.0.0:1",
            "255.255.255.255:65535",
            "10.0.20.100:5060",
            "[2001:db8::9]:5060",
        ] {
            let source: std::net::SocketAddr = source.parse().unwrap();
            let vias = response_vias(
                request("SIP/2.0/UDP host.example.com;rport;branch=z9hG4bKf").with_source(source),
            );
            let expected = format!(
                "SIP/2.0/UDP host.example.com;rport={};branch=z9hG4bKf;received={}",
                source.port(),
                source.ip()
            );
            assert_eq!(vias, [expected]);
        }
    }

    #[test]
    fn only_the_topmost_of_joined_vias_is_annotated() {
        let source = "198.51.100.9:5070".parse().unwrap();
        let vias = response_vias(
            request("SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKd;rport, SIP/2.0/UDP proxy.example.com;branch=z9hG4bKe")
                .with_source(source),
        );
        assert_eq!(
            vias,
            [
                "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKd;rport=5070;received=198.51.100.9",
                "SIP/2.0/UDP proxy.example.com;branch=z9hG4bKe"
            ]
        );
    }

    #[test]
    fn without_a_source_vias_are_copied() {
        let vias = response_vias(request("SIP/2.0/UDP 10.0.0.2;rport;branch=z9hG4bKf"));
        assert_eq!(vias, ["SIP/2.0/UDP 10.0.0.2;rport;branch=z9hG4bKf"]);
    }
}
