//! Stream framing for TCP/TLS (RFC 3261 §18.3: messages delimited by Content-Length;
//! RFC 5626 §3.5.1: a double CRLF "ping" is answered with a single CRLF "pong").

use bytes::{Buf, Bytes, BytesMut};
use memchr::memchr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("header block larger than {0} bytes")]
    HeaderTooLarge(usize),
    #[error("more than {0} header fields")]
    TooManyHeaders(usize),
    #[error("body of {0} bytes exceeds the limit")]
    BodyTooLarge(usize),
    #[error("Content-Length missing on a stream transport")]
    MissingContentLength,
    #[error("invalid Content-Length")]
    BadContentLength,
}

/// What the decoder found at the front of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamItem {
    /// One complete message: start line, headers and exactly Content-Length body bytes.
    /// Parse it with [`crate::Message::parse`].
    Message(Bytes),
    /// A CRLFCRLF keepalive: the caller answers with a single CRLF.
    Ping,
    /// A lone CRLF (the answer to our own ping): nothing to do.
    Pong,
}

/// Incremental decoder for one connection. Limits are enforced before buffering more than
/// the header limit plus the announced body, so a hostile peer cannot grow memory unbounded.
/// After an error the connection must be closed (the stream position is lost).
#[derive(Debug)]
pub struct StreamDecoder {
    buf: BytesMut,
    limits: crate::Limits,
    /// Start of the first header line not yet examined, so that each byte of a header
    /// block is scanned once however the reads are split.
    scan: usize,
    /// Header lines seen so far in the current message (start line excluded).
    fields: usize,
    /// Content-Length value span of the current message (first field), unfolded lines included.
    content_length: Option<(usize, usize)>,
    /// Whether the previous line was the Content-Length field, so a fold continues it.
    in_content_length: bool,
    /// Once the blank line is found: total frame length (header block + body).
    frame_len: Option<usize>,
}

impl StreamDecoder {
    pub fn new(limits: crate::Limits) -> StreamDecoder {
        StreamDecoder {
            buf: BytesMut::with_capacity(4096),
            limits,
            scan: 0,
            fields: 0,
            content_length: None,
            in_content_length: false,
            frame_len: None,
        }
    }
    /// Buffer to read into (e.g. with `AsyncReadExt::read_buf`); call [`Self::next_item`]
    /// after each read until it returns `Ok(None)`.
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }
    /// Append bytes (convenience for tests and fuzzing).
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }
    /// Next complete item, `Ok(None)` when more bytes are needed.
    pub fn next_item(&mut self) -> Result<Option<StreamItem>, FramingError> {
        if self.frame_len.is_none() && self.scan == 0 {
            if let Some(item) = self.keepalive() {
                return Ok(item);
            }
        }
        let total = match self.frame_len {
            Some(n) => n,
            None => match self.scan_headers()? {
                Some(n) => n,
                None => return Ok(None),
            },
        };
        if self.buf.len() < total {
            return Ok(None);
        }
        // A copy, not a split of the read buffer: a split frame keeps the buffer's allocation
        // shared while the message is processed, so the next read has to allocate a new
        // buffer; a copy lets the buffer be reused in place, read after read.
        let frame = Bytes::copy_from_slice(&self.buf[..total]);
        self.buf.advance(total);
        self.reset();
        Ok(Some(StreamItem::Message(frame)))
    }
    /// Bytes buffered but not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    fn reset(&mut self) {
        self.scan = 0;
        self.fields = 0;
        self.content_length = None;
        self.in_content_length = false;
        self.frame_len = None;
    }

    /// RFC 5626 §3.5.1 keepalives at a message boundary: `Some(None)` means wait (a CRLF
    /// alone cannot yet be told from the start of a ping), `None` means a message starts here.
    fn keepalive(&mut self) -> Option<Option<StreamItem>> {
        match self.buf.as_ref() {
            [b'\r', b'\n', b'\r', b'\n', ..] => {
                self.buf.advance(4);
                Some(Some(StreamItem::Ping))
            }
            [b'\r', b'\n'] | [b'\r', b'\n', b'\r'] | [b'\r'] => Some(None),
            [b'\r', b'\n', ..] => {
                self.buf.advance(2);
                Some(Some(StreamItem::Pong))
            }
            [] => Some(None),
            _ => None,
        }
    }

    /// Examines complete header lines from `scan` on; returns the frame length once the
    /// blank line is found and the Content-Length is known and within limits.
    fn scan_headers(&mut self) -> Result<Option<usize>, FramingError> {
        let max = self.limits.max_header_bytes;
        loop {
            let Some(rel) = self.buf.get(self.scan..).and_then(|s| memchr(b'\n', s)) else {
                if self.buf.len() > max {
                    return Err(FramingError::HeaderTooLarge(max));
                }
                return Ok(None);
            };
            let nl = self.scan + rel;
            if nl + 1 > max {
                return Err(FramingError::HeaderTooLarge(max));
            }
            let line_start = self.scan;
            let line = self.buf.get(line_start..nl).unwrap_or_default();
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let first_line = line_start == 0;
            self.scan = nl + 1;
            if first_line {
                continue;
            }
            if line.is_empty() {
                return self.frame_length(nl + 1).map(Some);
            }
            if matches!(line.first(), Some(b' ' | b'\t')) {
                if self.in_content_length {
                    if let Some((_, end)) = &mut self.content_length {
                        *end = nl;
                    }
                }
                continue;
            }
            self.fields += 1;
            if self.fields > self.limits.max_headers {
                return Err(FramingError::TooManyHeaders(self.limits.max_headers));
            }
            self.in_content_length = false;
            // Only Content-Length matters here; other names are passed over by first letter.
            if !matches!(line.first(), Some(b'c' | b'C' | b'l' | b'L')) {
                continue;
            }
            if let Some(colon) = memchr(b':', line) {
                let name = line.get(..colon).unwrap_or_default().trim_ascii_end();
                if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l") {
                    let value = (line_start + colon + 1, nl);
                    match self.content_length {
                        None => {
                            self.content_length = Some(value);
                            self.in_content_length = true;
                        }
                        // Two lengths that disagree leave the frame boundary undefined.
                        Some(first) if self.value(first) != self.value(value) => {
                            return Err(FramingError::BadContentLength);
                        }
                        Some(_) => {}
                    }
                }
            }
        }
    }

    fn value(&self, (start, end): (usize, usize)) -> &[u8] {
        self.buf.get(start..end).unwrap_or_default().trim_ascii()
    }

    fn frame_length(&mut self, header_len: usize) -> Result<usize, FramingError> {
        let span = self
            .content_length
            .ok_or(FramingError::MissingContentLength)?;
        let digits = self.value(span);
        let len = std::str::from_utf8(digits)
            .ok()
            .and_then(crate::syntax::parse_u32)
            .ok_or(FramingError::BadContentLength)? as usize;
        if len > self.limits.max_body_bytes {
            return Err(FramingError::BodyTooLarge(len));
        }
        let total = header_len + len;
        self.frame_len = Some(total);
        self.buf.reserve(total.saturating_sub(self.buf.len()));
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Limits, Message};

    const MSG: &[u8] =
        b"NOTIFY sip:w@h SIP/2.0\r\nVia: SIP/2.0/TCP a;branch=z9hG4bK1\r\nTo: <sip:w@h>;tag=1\r\n\
        From: <sip:p@h>;tag=2\r\nCall-ID: c\r\nCSeq: 1 NOTIFY\r\nl: 5\r\n\r\nhello";

    fn drain(d: &mut StreamDecoder) -> Vec<StreamItem> {
        let mut out = Vec::new();
        while let Some(item) = d.next_item().unwrap() {
            out.push(item);
        }
        out
    }

    #[test]
    fn frames_across_every_chunk_size() {
        let mut stream = Vec::new();
        stream.extend_from_slice(b"\r\n\r\n");
        stream.extend_from_slice(MSG);
        stream.extend_from_slice(b"\r\n");
        stream.extend_from_slice(MSG);
        for chunk in 1..=stream.len() {
            let mut d = StreamDecoder::new(Limits::default());
            let mut items = Vec::new();
            for piece in stream.chunks(chunk) {
                d.push(piece);
                items.extend(drain(&mut d));
            }
            assert_eq!(items.len(), 4, "chunk {chunk}");
            assert_eq!(items[0], StreamItem::Ping);
            assert_eq!(items[1], StreamItem::Message(Bytes::from_static(MSG)));
            assert_eq!(items[2], StreamItem::Pong);
            assert_eq!(d.buffered(), 0);
            let StreamItem::Message(m) = &items[3] else {
                panic!("not a message")
            };
            assert_eq!(
                &Message::parse(m.clone(), &Limits::default())
                    .unwrap()
                    .body()[..],
                b"hello"
            );
        }
    }

    #[test]
    fn lone_crlf_waits_to_tell_ping_from_pong() {
        let mut d = StreamDecoder::new(Limits::default());
        d.push(b"\r\n");
        assert_eq!(d.next_item(), Ok(None));
        d.push(b"\r");
        assert_eq!(d.next_item(), Ok(None));
        d.push(b"\n");
        assert_eq!(d.next_item(), Ok(Some(StreamItem::Ping)));
        d.push(b"\r\nN");
        assert_eq!(d.next_item(), Ok(Some(StreamItem::Pong)));
        assert_eq!(d.next_item(), Ok(None));
        assert_eq!(d.buffered(), 1);
    }

    #[test]
    fn folded_content_length_and_errors() {
        let mut d = StreamDecoder::new(Limits::default());
        d.push(b"OPTIONS sip:x SIP/2.0\r\nContent-Length:\r\n 2\r\n\r\nabX");
        assert_eq!(drain(&mut d).len(), 1);
        assert_eq!(d.buffered(), 1);

        let mut d = StreamDecoder::new(Limits::default());
        d.push(b"OPTIONS sip:x SIP/2.0\r\nL:0\r\n\r\n");
        assert!(matches!(d.next_item(), Ok(Some(StreamItem::Message(_)))));

        let mut d = StreamDecoder::new(Limits::default());
        d.push(b"OPTIONS sip:x SIP/2.0\r\nVia: x\r\n\r\n");
        assert_eq!(d.next_item(), Err(FramingError::MissingContentLength));

        let mut d = StreamDecoder::new(Limits::default());
        d.push(b"OPTIONS sip:x SIP/2.0\r\nl: -1\r\n\r\n");
        assert_eq!(d.next_item(), Err(FramingError::BadContentLength));

        let mut d = StreamDecoder::new(Limits::default());
        d.push(b"OPTIONS sip:x SIP/2.0\r\nl: 1\r\nContent-Length: 2\r\n\r\n");
        assert_eq!(d.next_item(), Err(FramingError::BadContentLength));
    }

    #[test]
    fn limits_before_buffering() {
        let limits = Limits {
            max_header_bytes: 64,
            max_headers: 2,
            max_body_bytes: 10,
        };
        let mut d = StreamDecoder::new(limits);
        d.push(&[b'A'; 65]);
        assert_eq!(d.next_item(), Err(FramingError::HeaderTooLarge(64)));

        let mut d = StreamDecoder::new(limits);
        d.push(b"OPTIONS sip:x SIP/2.0\r\na: 1\r\nb: 2\r\nc: 3\r\n");
        assert_eq!(d.next_item(), Err(FramingError::TooManyHeaders(2)));

        let mut d = StreamDecoder::new(limits);
        d.push(b"OPTIONS sip:x SIP/2.0\r\nl: 11\r\n\r\n");
        assert_eq!(d.next_item(), Err(FramingError::BodyTooLarge(11)));
    }
}
