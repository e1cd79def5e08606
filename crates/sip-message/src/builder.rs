//! Building messages to send (RFC 3261 §7, §8.2.6 response construction).

use bytes::Bytes;

/// Writes a message straight into one buffer: start line, headers in the order given,
/// then `Content-Length` (always, so stream framing works) and the body.
#[derive(Debug, Clone)]
pub struct MessageWriter {
    // one growable byte buffer
}

impl MessageWriter {
    /// `METHOD request-uri SIP/2.0`
    pub fn request(method: &crate::Method, request_uri: &str) -> MessageWriter {
        todo!()
    }
    /// `SIP/2.0 code reason`
    pub fn response(code: u16, reason: &str) -> MessageWriter {
        todo!()
    }
    /// Append `name: value`. The caller guarantees `value` has no CR or LF.
    pub fn header(&mut self, name: &str, value: &str) -> &mut MessageWriter {
        todo!()
    }
    /// Append `name: ` followed by formatted arguments, without an intermediate String.
    pub fn header_fmt(&mut self, name: &str, value: std::fmt::Arguments<'_>) -> &mut MessageWriter {
        todo!()
    }
    /// Copy every field with that name from `message`, byte-exact, in order.
    pub fn copy_headers(&mut self, message: &crate::Message, name: &crate::HeaderName) -> &mut MessageWriter {
        todo!()
    }
    /// Append Content-Type (when given), Content-Length and the body; return the bytes.
    pub fn finish(self, content_type: Option<&str>, body: &[u8]) -> Bytes {
        todo!()
    }
}

/// Start a response to `request` (RFC 3261 §8.2.6.2): copies every Via, From, Call-ID and
/// CSeq; copies To, adding `;tag=to_tag` when the request's To has no tag and `to_tag` is given.
/// Works on a message from [`crate::Message::parse_headers_only`] too (fields copied raw).
pub fn response_to(request: &crate::Message, code: u16, reason: &str, to_tag: Option<&str>) -> MessageWriter {
    todo!()
}

/// The RFC 3261 §21 (and RFC 3265/3903/4662/5626/6665...) reason phrase for a status code.
pub fn default_reason(code: u16) -> &'static str {
    todo!()
}
