//! The `xcap-diff` event package on the wire (RFC 5875, RFC 5874 documents): the owner
//! subscribes to its own AOR, gets every watched document with its ETag, then one NOTIFY per
//! XCAP write within a second; Blink's body form (relative, percent-encoded document URIs,
//! blink-compat §4.5) limits what is watched.

mod ua;
mod xcap_common;

use std::time::{Duration, Instant};

use simple_payloads::xcap_diff::{DocumentDiff, XcapDiff, CONTENT_TYPE};
use ua::{body, header, Ua};
use xcap_common::common::{Server, DOMAIN};
use xcap_common::Client;

const USERS: &[(&str, &str)] = &[("alice", "secret"), ("bob", "bobpw")];
const LISTS_TYPE: &str = "application/resource-lists+xml";
const EMPTY_LISTS: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
    <resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"/>";
const ONE_LIST: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
    <resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><list name=\"l\"/></resource-lists>";
const MANIPULATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
    <presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:alice@example.com\"/>";

fn lists_path() -> String {
    format!("resource-lists/users/sip:alice@{DOMAIN}/index")
}

fn manipulation_path() -> String {
    format!("pidf-manipulation/users/sip:alice@{DOMAIN}/index")
}

fn bare(etag: Option<String>) -> String {
    etag.expect("an ETag").trim_matches('"').to_owned()
}

fn put(client: &Client, path: &str, content_type: &str, document: &str) -> String {
    let reply = client.put(path, content_type, document.as_bytes());
    assert!(
        reply.status == 200 || reply.status == 201,
        "PUT {path}: {} {}",
        reply.status,
        reply.text()
    );
    bare(reply.etag)
}

/// The next NOTIFY's documents, checking its headers.
fn next_diff(ua: &mut Ua, timeout: Duration) -> Vec<DocumentDiff> {
    let notify = ua.try_notify(timeout).expect("an xcap-diff NOTIFY in time");
    assert_eq!(header(&notify, "Event"), "xcap-diff");
    assert_eq!(header(&notify, "Content-Type"), CONTENT_TYPE);
    let document = XcapDiff::parse(&body(&notify)).expect("a valid xcap-diff body");
    assert!(
        document.xcap_root.ends_with("/xcap-root"),
        "{}",
        document.xcap_root
    );
    document.documents
}

fn diff(sel: &str, previous: Option<&str>, new: Option<&str>) -> DocumentDiff {
    DocumentDiff {
        sel: sel.to_owned(),
        previous_etag: previous.map(str::to_owned),
        new_etag: new.map(str::to_owned),
    }
}

#[test]
fn every_document_then_each_change_within_a_second() {
    let (server, root) = Server::start_with_xcap(USERS);
    let client = Client::new(root, "alice", "secret");
    let first = put(&client, &lists_path(), LISTS_TYPE, EMPTY_LISTS);

    let mut alice = Ua::new(&server, "alice", "secret");
    let me = alice.aor();
    let (response, _dialog) = alice.subscribe(
        &me,
        "xcap-diff",
        &format!("Accept: {CONTENT_TYPE}\r\nExpires: 600\r\n"),
    );
    assert_eq!(response.status(), Some(200));
    assert!(!header(&response, "Contact").is_empty());
    assert_eq!(
        next_diff(&mut alice, Duration::from_secs(5)),
        [diff(&lists_path(), None, Some(&first))]
    );

    let started = Instant::now();
    let created = put(
        &client,
        &manipulation_path(),
        "application/pidf+xml",
        MANIPULATION,
    );
    assert_eq!(
        next_diff(&mut alice, Duration::from_secs(1)),
        [diff(&manipulation_path(), None, Some(&created))]
    );
    assert!(started.elapsed() < Duration::from_secs(1));

    let second = put(&client, &lists_path(), LISTS_TYPE, ONE_LIST);
    assert_ne!(second, first);
    assert_eq!(
        next_diff(&mut alice, Duration::from_secs(1)),
        [diff(&lists_path(), Some(&first), Some(&second))]
    );

    assert_eq!(client.delete(&manipulation_path()).status, 200);
    assert_eq!(
        next_diff(&mut alice, Duration::from_secs(1)),
        [diff(&manipulation_path(), Some(&created), None)]
    );
}

#[test]
fn blink_body_watches_only_the_listed_documents() {
    let (server, root) = Server::start_with_xcap(USERS);
    let client = Client::new(root, "alice", "secret");
    let mut alice = Ua::new(&server, "alice", "secret");
    let me = alice.aor();
    // blink-compat §4.5, verbatim form: relative to the root, percent-encoded.
    let watched = format!(
        "<?xml version='1.0' encoding='UTF-8'?>\n\
         <rl:resource-lists xmlns:rl=\"urn:ietf:params:xml:ns:resource-lists\"><rl:list>\
         <rl:entry uri=\"resource-lists/users/sip%3Aalice%40{DOMAIN}/index\"/>\
         <rl:entry uri=\"org.openmobilealliance.pres-content/users/sip%3Aalice%40{DOMAIN}/oma_status-icon/index\"/>\
         </rl:list></rl:resource-lists>"
    );
    let (response, _dialog) = alice.subscribe_with(
        &me,
        "xcap-diff",
        &format!("Accept: {CONTENT_TYPE}\r\nExpires: 600\r\nContent-Type: {LISTS_TYPE}\r\n"),
        &watched,
    );
    assert_eq!(response.status(), Some(200));
    assert_eq!(next_diff(&mut alice, Duration::from_secs(5)), []);

    put(
        &client,
        &manipulation_path(),
        "application/pidf+xml",
        MANIPULATION,
    );
    let lists = put(&client, &lists_path(), LISTS_TYPE, EMPTY_LISTS);
    // The unwatched write sends nothing: the next NOTIFY is the watched one.
    assert_eq!(
        next_diff(&mut alice, Duration::from_secs(1)),
        [diff(&lists_path(), None, Some(&lists))]
    );
    assert!(alice.try_notify(Duration::from_millis(300)).is_none());
}

#[test]
fn only_the_owner_may_watch_its_documents() {
    let (server, _root) = Server::start_with_xcap(USERS);
    let mut bob = Ua::new(&server, "bob", "bobpw");
    let (response, _dialog) = bob.subscribe(
        &format!("sip:alice@{DOMAIN}"),
        "xcap-diff",
        &format!("Accept: {CONTENT_TYPE}\r\n"),
    );
    assert_eq!(response.status(), Some(403));
    assert!(bob.try_notify(Duration::from_millis(300)).is_none());
}
