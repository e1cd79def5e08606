//! `Message::parse_for_reply` and `parse_headers_only` on arbitrary bytes: never panic;
//! whatever is accepted must answer every typed view and re-serialize to an equivalent
//! message, and a respondable error must hand back what `parse_headers_only` reads.
#![no_main]

#[path = "../../crates/sip-message/tests/common/mod.rs"]
mod common;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sip_message::{Limits, Message};

fn reply(m: &Message) -> Bytes {
    sip_message::response_to(m, 400, "Bad Request", Some("fz")).finish(None, b"")
}

fuzz_target!(|data: &[u8]| {
    let buf = Bytes::copy_from_slice(data);
    let alone = Message::parse_headers_only(buf.clone(), &Limits::default());
    match Message::parse_for_reply(buf, &Limits::default()) {
        Ok(m) => {
            common::exercise_views(&m);
            common::assert_roundtrip(&m, "fuzz");
        }
        Err(unparsable) => {
            assert_eq!(unparsable.headers.is_some(), unparsable.error.respondable);
            if let Some(headers) = unparsable.headers {
                let alone = alone
                    .as_ref()
                    .expect("a respondable error has a structural parse");
                assert_eq!(reply(&headers), reply(alone));
                assert_eq!(headers.body(), alone.body());
            }
        }
    }
    if let Ok(m) = alone {
        common::exercise_views(&m);
        let _ = reply(&m);
    }
});
