//! SIP message grammar (RFC 3261 §7, §20, §25; RFC 5118 IPv6 references; RFC 5626 §3.5.1 keepalives).
//!
//! Sans-IO: no sockets, no clocks, no state beyond one message or one stream buffer.
//! [`Message`] keeps the received bytes and records spans into them, so parsing allocates
//! one `Vec` of header spans and nothing per header; typed views ([`Via`], [`NameAddr`],
//! [`Uri`], ...) are parsed lazily, on demand, from those spans.

mod builder;
mod framing;
mod headers;
mod message;
mod syntax;
mod transport;
mod uri;

pub use builder::{default_reason, response_to, MessageWriter};
pub use framing::{FramingError, StreamDecoder, StreamItem};
pub use headers::{
    quote, unquote, CSeq, Challenge, ContactValue, Credentials, Event, HeaderError, MediaType,
    NameAddr, Param, Params, SubscriptionState, Via,
};
pub use message::{
    HeaderName, HeaderRef, Limits, Message, Method, ParseError, StartLine, Unparsable,
};
pub use transport::Transport;
pub use uri::{Host, Uri, UriError};
