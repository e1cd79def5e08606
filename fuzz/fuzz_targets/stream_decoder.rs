//! Arbitrary bytes through `StreamDecoder` in chunks (sizes taken from the first input byte),
//! every framed message through `Message::parse` and every typed view. Framed messages must
//! be exactly what was fed, in order.
#![no_main]

#[path = "../../crates/sip-message/tests/common/mod.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use sip_message::{Limits, Message, StreamItem};

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(first).max(1);
    let decoded = common::decode_chunked(rest, || chunk);
    let mut consumed = 0usize;
    for item in &decoded.items {
        match item {
            StreamItem::Message(m) => {
                // The frame is a contiguous slice of the input, after what was consumed so far.
                let at = rest[consumed..].windows(m.len()).position(|w| w == &m[..]);
                assert!(at.is_some(), "framed bytes not found in the input");
                consumed += at.unwrap() + m.len();
                if let Ok(msg) = Message::parse(m.clone(), &Limits::default()) {
                    common::exercise_views(&msg);
                }
            }
            StreamItem::Ping | StreamItem::Pong => {}
        }
    }
    assert!(decoded.buffered <= rest.len());
});
