//! `Message::parse` and `parse_headers_only` on arbitrary bytes: never panic; whatever is
//! accepted must answer every typed view and re-serialize to an equivalent message.
#![no_main]

#[path = "../../crates/sip-message/tests/common/mod.rs"]
mod common;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sip_message::{Limits, Message};

fuzz_target!(|data: &[u8]| {
    let buf = Bytes::copy_from_slice(data);
    if let Ok(m) = Message::parse(buf.clone(), &Limits::default()) {
        common::exercise_views(&m);
        common::assert_roundtrip(&m, "fuzz");
    }
    if let Ok(m) = Message::parse_headers_only(buf, &Limits::default()) {
        common::exercise_views(&m);
        let _ = sip_message::response_to(&m, 400, "Bad Request", Some("fz")).finish(None, b"");
    }
});
