//! Request-URI and node-selector parsing (RFC 4825 §6) on arbitrary input: must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xcap::{Limits, NodeSelector, XcapUri};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let limits = Limits::default();
    let (path, query) = match text.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (text, None),
    };
    if let Ok(uri) = XcapUri::parse(path, query, &limits) {
        // A parsed URI re-encodes to a path that parses to the same document. Encoding can
        // triple the length (a byte becomes `%XX`), so the re-parse gets that much room.
        let roomy = Limits { max_uri_bytes: limits.max_uri_bytes * 3, ..limits };
        let again = XcapUri::parse(&uri.document_path(), None, &roomy).expect("re-parse");
        assert_eq!(
            (again.auid, again.tree, again.document),
            (uri.auid, uri.tree, uri.document)
        );
    }
    let bindings = [("p".to_owned(), "urn:p".to_owned())];
    let _ = NodeSelector::parse(text, &bindings, &limits);
});
