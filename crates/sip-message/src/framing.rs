//! Stream framing for TCP/TLS (RFC 3261 §18.3: messages delimited by Content-Length;
//! RFC 5626 §3.5.1: a double CRLF "ping" is answered with a single CRLF "pong").

use bytes::{Bytes, BytesMut};

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
    // buffer + limits + scan position
}

impl StreamDecoder {
    pub fn new(limits: crate::Limits) -> StreamDecoder {
        todo!()
    }
    /// Buffer to read into (e.g. with `AsyncReadExt::read_buf`); call [`Self::next_item`]
    /// after each read until it returns `Ok(None)`.
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        todo!()
    }
    /// Append bytes (convenience for tests and fuzzing).
    pub fn push(&mut self, data: &[u8]) {
        todo!()
    }
    /// Next complete item, `Ok(None)` when more bytes are needed.
    pub fn next_item(&mut self) -> Result<Option<StreamItem>, FramingError> {
        todo!()
    }
    /// Bytes buffered but not yet returned.
    pub fn buffered(&self) -> usize {
        todo!()
    }
}
