//! The resource list server on the wire (RFC 4662 with lists from RFC 4826 documents), over
//! TCP against the running binary, with Blink's documents as it writes them (blink-compat
//! §1.2, §1.5, §4.2): percent-encoded URIs, a `<resource-list>` reference into the
//! resource-lists document, entries without a scheme and entries that are no SIP user.

mod ua;
mod xcap_common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use simple_payloads::multipart::Related;
use simple_payloads::rlmi::{InstanceState, Rlmi};
use sip_message::Message;
use ua::{header, Ua};
use xcap_common::common::{unique, Server, SipUdp, DOMAIN};
use xcap_common::Client;

const USERS: &[(&str, &str)] = &[
    ("alice", "secret"),
    ("bob", "bobpw"),
    ("carol", "carolpw"),
    ("dave", "davepw"),
    ("erin", "erinpw"),
    ("frank", "frankpw"),
];
const ACCEPT: &str = "Accept: multipart/related, application/rlmi+xml, application/pidf+xml\r\n";
const RLMI_XSD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../simple-payloads/schemas/rlmi.xsd"
);

fn service() -> String {
    format!("sip:alice+presence@{DOMAIN}")
}

/// Blink's resource-lists document (blink-compat §1.2) with `members` (as Blink stores them:
/// percent-encoded, often without `sip:`) in `sipsimple_presence_rls` and in the address book.
fn resource_lists(members: &[&str]) -> String {
    let entries: String = members
        .iter()
        .map(|m| format!("<rl:entry uri=\"{m}\"/>"))
        .collect();
    let contacts: String = members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            format!(
                "<addressbook:contact id=\"id17157724110000{i:02}\">\
                 <addressbook:name>Buddy {i}</addressbook:name>\
                 <addressbook:uris default=\"id17157724120000{i:02}\">\
                 <addressbook:uri id=\"id17157724120000{i:02}\" uri=\"{m}\" type=\"SIP\">\
                 <blink:attributes/></addressbook:uri></addressbook:uris>\
                 <addressbook:dialog><addressbook:policy>default</addressbook:policy>\
                 <addressbook:subscribe>false</addressbook:subscribe></addressbook:dialog>\
                 <addressbook:presence><addressbook:policy>allow</addressbook:policy>\
                 <addressbook:subscribe>true</addressbook:subscribe></addressbook:presence>\
                 <blink:attributes/></addressbook:contact>"
            )
        })
        .collect();
    let own = format!("sip%3Aalice%40{DOMAIN}");
    let external = |list: &str| {
        format!(
            "<rl:external anchor=\"https%3A//xcap.{DOMAIN}/xcap-root/resource-lists/users/{own}/index/~~/resource-lists/list%5B%40name%3D%22{list}%22%5D\"/>"
        )
    };
    format!(
        "<?xml version='1.0' encoding='UTF-8'?>\n\
         <rl:resource-lists xmlns:rl=\"urn:ietf:params:xml:ns:resource-lists\" \
         xmlns:addressbook=\"urn:ag-projects:xml:ns:addressbook\" \
         xmlns:blink=\"urn:ag-projects:blink:xml:ns:addressbook\">\
         <rl:list name=\"oma_buddylist\"/><rl:list name=\"oma_grantedcontacts\">{entries}</rl:list>\
         <rl:list name=\"oma_blockedcontacts\"/>\
         <rl:list name=\"oma_allcontacts\">{}{}{}</rl:list>\
         <rl:list name=\"dialog_grantedcontacts\"/><rl:list name=\"dialog_blockedcontacts\"/>\
         <rl:list name=\"sipsimple_presence_rls\">{entries}</rl:list>\
         <rl:list name=\"sipsimple_dialog_rls\"/>\
         <rl:list name=\"sipsimple_addressbook\">{contacts}</rl:list></rl:resource-lists>",
        external("oma_buddylist"),
        external("oma_grantedcontacts"),
        external("oma_blockedcontacts"),
    )
}

/// Blink's rls-services document: the `+presence` service referring to the list by an
/// absolute, percent-encoded XCAP URI.
fn rls_services(root: &str) -> String {
    let anchor = format!(
        "{root}/resource-lists/users/sip:alice@{DOMAIN}/index/~~/resource-lists/list[@name=\"sipsimple_presence_rls\"]"
    );
    let encoded = simple_payloads::uri::encode_any_uri(&anchor);
    let service = simple_payloads::uri::encode_any_uri(&service());
    format!(
        "<?xml version='1.0' encoding='UTF-8'?>\n\
         <rls-services xmlns=\"urn:ietf:params:xml:ns:rls-services\">\
         <service uri=\"{service}\"><resource-list>{encoded}</resource-list>\
         <packages><package>presence</package></packages></service></rls-services>"
    )
}

fn put(root: &str, user: &str, password: &str, auid: &str, content_type: &str, doc: &str) {
    put_in(DOMAIN, root, user, password, auid, content_type, doc)
}

fn put_in(
    domain: &str,
    root: &str,
    user: &str,
    password: &str,
    auid: &str,
    content_type: &str,
    doc: &str,
) {
    let client = Client::new(root.to_owned(), user, password);
    let path = format!("{auid}/users/sip:{user}@{domain}/index");
    let reply = client.put(&path, content_type, doc.as_bytes());
    assert!(
        reply.status == 200 || reply.status == 201,
        "PUT {path}: {} {}",
        reply.status,
        reply.text()
    );
}

/// Alice's buddy list: her resource-lists with `members` and her rls-services `+presence`
/// service referring to it.
fn alice_list(root: &str, members: &[&str]) {
    put_lists(root, members);
    put(
        root,
        "alice",
        "secret",
        "rls-services",
        "application/rls-services+xml",
        &rls_services(root),
    );
}

fn put_lists(root: &str, members: &[&str]) {
    put(
        root,
        "alice",
        "secret",
        "resource-lists",
        "application/resource-lists+xml",
        &resource_lists(members),
    );
}

/// `user`'s pres-rules giving alice `handling`.
fn put_rules_for_alice(root: &str, user: &str, password: &str, handling: &str) {
    put_in(
        DOMAIN,
        root,
        user,
        password,
        "org.openmobilealliance.pres-rules",
        "application/auth-policy+xml",
        &rules_for_alice(handling),
    );
}

fn rules_for_alice(handling: &str) -> String {
    format!(
        "<?xml version='1.0' encoding='UTF-8'?>\n<cp:ruleset \
         xmlns:cp=\"urn:ietf:params:xml:ns:common-policy\" \
         xmlns:pr=\"urn:ietf:params:xml:ns:pres-rules\"><cp:rule id=\"r\"><cp:conditions>\
         <cp:identity><cp:one id=\"sip%3Aalice%40{DOMAIN}\"/></cp:identity></cp:conditions>\
         <cp:actions><pr:sub-handling>{handling}</pr:sub-handling></cp:actions></cp:rule>\
         </cp:ruleset>"
    )
}

fn publish(ua: &mut Ua, note: &str) {
    let me = ua.aor();
    let pidf = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"{me}\">\
         <tuple id=\"t-{}\"><status><basic>open</basic></status><note>{note}</note></tuple>\
         </presence>",
        ua.user
    );
    let response = ua.publish(
        &me,
        "Content-Type: application/pidf+xml\r\nExpires: 600\r\n",
        &pidf,
    );
    assert_eq!(response.status(), Some(200), "PUBLISH by {}", ua.user);
}

/// One list NOTIFY, checked: multipart/related with the RLMI root first, valid against the
/// rlmi schema, every `cid` naming a part.
struct ListNotify {
    rlmi: Rlmi,
    related: Related,
}

impl ListNotify {
    fn read(notify: &Message) -> ListNotify {
        assert_eq!(header(notify, "Event"), "presence");
        assert!(header(notify, "Require").contains("eventlist"));
        let content_type = header(notify, "Content-Type");
        let related = Related::parse(&content_type, &notify.body())
            .unwrap_or_else(|e| panic!("multipart/related body ({e}): {content_type}"));
        assert_eq!(related.root_type, "application/rlmi+xml");
        let root = related.root().expect("a root part");
        let text = String::from_utf8(root.body.clone()).expect("UTF-8 RLMI");
        schema_valid(&text);
        let rlmi = Rlmi::parse(&text).expect("a readable RLMI document");
        for instance in rlmi.resources.iter().flat_map(|r| &r.instances) {
            if let Some(cid) = &instance.cid {
                assert!(related.part(cid).is_some(), "cid {cid} names no part");
            }
        }
        ListNotify { rlmi, related }
    }

    fn resource(&self, uri: &str) -> Option<&simple_payloads::rlmi::Resource> {
        self.rlmi.resources.iter().find(|r| r.uri == uri)
    }

    fn state(&self, uri: &str) -> Option<InstanceState> {
        self.resource(uri)
            .unwrap_or_else(|| panic!("{uri} listed in {:?}", self.rlmi))
            .instances
            .first()
            .map(|i| i.state)
    }

    /// The PIDF carried for `uri`'s active instance.
    fn document(&self, uri: &str) -> String {
        let cid = self
            .resource(uri)
            .and_then(|r| r.instances.iter().find_map(|i| i.cid.clone()))
            .unwrap_or_else(|| panic!("{uri} has a document"));
        String::from_utf8(self.related.part(&cid).unwrap().body.clone()).unwrap()
    }
}

/// xmllint, the schema oracle, accepts the RLMI document.
fn schema_valid(document: &str) {
    use std::io::Write;
    let mut child = Command::new("xmllint")
        .args(["--noout", "--schema", RLMI_XSD, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xmllint runs (libxml2-utils)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(document.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "RLMI not schema-valid: {}\n{document}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn subscribe_list(alice: &mut Ua) -> ListNotify {
    let (response, _dialog) = alice.subscribe(
        &service(),
        "presence",
        &format!("Supported: eventlist\r\n{ACCEPT}Expires: 600\r\n"),
    );
    assert_eq!(response.status(), Some(200), "{response:?}");
    assert!(header(&response, "Require").contains("eventlist"));
    assert!(
        !header(&response, "Contact").is_empty(),
        "a Contact in the 2xx"
    );
    let first = ListNotify::read(&alice.notify());
    assert_eq!(first.rlmi.uri, service());
    assert!(first.rlmi.full_state);
    first
}

/// The next list NOTIFY within `timeout`, which must carry version `version`.
fn next(alice: &mut Ua, version: u32, timeout: Duration) -> ListNotify {
    let notify = alice
        .try_notify(timeout)
        .unwrap_or_else(|| panic!("a list NOTIFY (version {version}) within {timeout:?}"));
    let list = ListNotify::read(&notify);
    assert_eq!(list.rlmi.version, version, "versions are consecutive");
    list
}

#[test]
fn blink_buddy_list_gets_full_state_then_partial_updates() {
    let (server, root) = Server::start_with_xcap(USERS);
    alice_list(
        &root,
        &[
            "bob%40example.com",
            "sip%3Acarol%40example.com",
            "sip%3Adave%40example.com",
            "sip%3Aerin%40example.com",
            "%2B31201234567",
        ],
    );
    put_rules_for_alice(&root, "bob", "bobpw", "allow");
    put_rules_for_alice(&root, "dave", "davepw", "polite-block");
    put_rules_for_alice(&root, "erin", "erinpw", "block");
    let mut bob = Ua::new(&server, "bob", "bobpw");
    publish(&mut bob, "bob-at-work");
    let mut dave = Ua::new(&server, "dave", "davepw");
    publish(&mut dave, "dave-secret");

    let mut alice = Ua::new(&server, "alice", "secret");
    let first = subscribe_list(&mut alice);
    assert_eq!(first.rlmi.version, 0);
    let bob_uri = format!("sip:bob@{DOMAIN}");
    let carol = format!("sip:carol@{DOMAIN}");
    let dave_uri = format!("sip:dave@{DOMAIN}");
    let erin = format!("sip:erin@{DOMAIN}");
    assert_eq!(first.state(&bob_uri), Some(InstanceState::Active));
    assert!(first.document(&bob_uri).contains("bob-at-work"));
    assert_eq!(first.state(&carol), Some(InstanceState::Pending));
    assert_eq!(first.state(&dave_uri), Some(InstanceState::Active));
    assert!(
        !first.document(&dave_uri).contains("dave-secret"),
        "polite-block shows nothing real"
    );
    assert_eq!(first.state(&erin), Some(InstanceState::Terminated));
    let erin_instance = &first.resource(&erin).unwrap().instances[0];
    assert_eq!(erin_instance.reason.as_deref(), Some("rejected"));
    let phone = first
        .resource("sip:+31201234567")
        .expect("a phone number entry is echoed back");
    assert!(phone.instances.iter().all(|i| i.cid.is_none()));

    // A buddy publishes: a partial NOTIFY with only that buddy, the next version.
    let started = Instant::now();
    publish(&mut bob, "bob-at-lunch");
    let update = next(&mut alice, 1, Duration::from_secs(2));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(!update.rlmi.full_state);
    assert_eq!(update.rlmi.resources.len(), 1);
    assert!(update.document(&bob_uri).contains("bob-at-lunch"));

    // Carol approves alice: her resource turns active.
    put_rules_for_alice(&root, "carol", "carolpw", "allow");
    let approved = next(&mut alice, 2, Duration::from_secs(1));
    assert_eq!(approved.state(&carol), Some(InstanceState::Active));
    assert!(approved.resource(&bob_uri).is_none(), "only what changed");
    drop(server);
}

#[test]
fn adding_and_removing_a_buddy_through_xcap_shows_in_the_next_notify() {
    let (server, root) = Server::start_with_xcap(USERS);
    alice_list(&root, &["bob%40example.com"]);
    put_rules_for_alice(&root, "frank", "frankpw", "allow");
    let mut frank = Ua::new(&server, "frank", "frankpw");
    publish(&mut frank, "frank-here");
    let mut alice = Ua::new(&server, "alice", "secret");
    let first = subscribe_list(&mut alice);
    let bob_uri = format!("sip:bob@{DOMAIN}");
    let frank_uri = format!("sip:frank@{DOMAIN}");
    assert!(first.resource(&bob_uri).is_some());
    assert!(first.resource(&frank_uri).is_none());

    let started = Instant::now();
    put_lists(&root, &["frank%40example.com"]);
    let changed = next(&mut alice, 1, Duration::from_secs(1));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(changed.resource(&bob_uri).is_none(), "bob removed");
    assert_eq!(changed.state(&frank_uri), Some(InstanceState::Active));
    assert!(changed.document(&frank_uri).contains("frank-here"));
    drop(server);
}

#[test]
fn list_subscriptions_negotiate_eventlist_and_unknown_lists_are_not_found() {
    let (server, root) = Server::start_with_xcap(USERS);
    alice_list(&root, &[]);
    let mut alice = Ua::new(&server, "alice", "secret");
    let (response, _) = alice.subscribe(&service(), "presence", ACCEPT);
    assert_eq!(response.status(), Some(421));
    assert!(header(&response, "Require").contains("eventlist"));

    let (response, _) = alice.subscribe(
        &format!("sip:nobody+presence@{DOMAIN}"),
        "presence",
        &format!("Supported: eventlist\r\n{ACCEPT}"),
    );
    assert_eq!(response.status(), Some(404));

    // An empty list is a valid list: full state with no resources.
    let first = subscribe_list(&mut alice);
    assert!(first.rlmi.resources.is_empty());
    drop(server);
}

#[test]
fn a_users_address_named_as_someone_elses_service_stays_that_users_presence() {
    let (server, root) = Server::start_with_xcap(USERS);
    let lists = "<?xml version='1.0' encoding='UTF-8'?>\n<resource-lists \
                 xmlns=\"urn:ietf:params:xml:ns:resource-lists\">\
                 <list name=\"sipsimple_presence_rls\"/></resource-lists>";
    put(
        &root,
        "bob",
        "bobpw",
        "resource-lists",
        "application/resource-lists+xml",
        lists,
    );
    // Bob's rls-services claims Alice's address for his own list.
    let anchor = format!(
        "{root}/resource-lists/users/sip:bob@{DOMAIN}/index/~~/resource-lists/list[@name=\"sipsimple_presence_rls\"]"
    );
    let claim = format!(
        "<?xml version='1.0' encoding='UTF-8'?>\n\
         <rls-services xmlns=\"urn:ietf:params:xml:ns:rls-services\">\
         <service uri=\"sip:alice@{DOMAIN}\"><resource-list>{}</resource-list>\
         <packages><package>presence</package></packages></service></rls-services>",
        simple_payloads::uri::encode_any_uri(&anchor)
    );
    put(
        &root,
        "bob",
        "bobpw",
        "rls-services",
        "application/rls-services+xml",
        &claim,
    );
    let mut carol = Ua::new(&server, "carol", "carolpw");
    let (response, _) = carol.subscribe(
        &format!("sip:alice@{DOMAIN}"),
        "presence",
        &format!("Supported: eventlist\r\n{ACCEPT}"),
    );
    assert!(
        matches!(response.status(), Some(200 | 202)),
        "a presence subscription to Alice, not Bob's list: {response:?}"
    );
    assert!(response.header(&sip_message::HeaderName::Require).is_none());
    drop(server);
}

#[test]
fn remote_buddies_are_watched_through_a_back_end_subscription_to_their_server() {
    const REMOTE: &str = "example.org";
    let (remote, remote_root) = Server::start_domain(REMOTE, &[("olga", "olgapw")], &[]);
    let route = format!("{REMOTE}={}", remote.tcp_addr());
    let (server, root) = Server::start_domain(DOMAIN, USERS, &["--rls-route", &route]);
    put_in(
        REMOTE,
        &remote_root,
        "olga",
        "olgapw",
        "org.openmobilealliance.pres-rules",
        "application/auth-policy+xml",
        &rules_for_alice("allow"),
    );
    let mut olga = Ua::in_domain(&remote, "olga", "olgapw", REMOTE);
    publish(&mut olga, "olga-in-oslo");

    alice_list(&root, &["sip%3Aolga%40example.org", "bob%40example.com"]);
    let mut alice = Ua::new(&server, "alice", "secret");
    let first = subscribe_list(&mut alice);
    let olga_uri = format!("sip:olga@{REMOTE}");
    // The remote state may arrive after the first NOTIFY (a round trip to the other server).
    let mut version = first.rlmi.version;
    let mut latest = first;
    let deadline = Instant::now() + Duration::from_secs(5);
    let has_document = |list: &ListNotify| {
        list.resource(&olga_uri)
            .is_some_and(|r| r.instances.iter().any(|i| i.cid.is_some()))
    };
    while !has_document(&latest) {
        assert!(Instant::now() < deadline, "olga never became active");
        version += 1;
        latest = next(&mut alice, version, Duration::from_secs(5));
    }
    assert_eq!(latest.state(&olga_uri), Some(InstanceState::Active));
    assert!(latest.document(&olga_uri).contains("olga-in-oslo"));

    // A change on the remote server reaches the list.
    publish(&mut olga, "olga-in-bergen");
    let update = next(&mut alice, version + 1, Duration::from_secs(2));
    assert!(update.document(&olga_uri).contains("olga-in-bergen"));
    drop(server);
    drop(remote);
}

#[test]
fn an_unreachable_domain_leaves_its_buddies_pending_and_the_rest_flowing() {
    let dead = format!("example.net=127.0.0.1:{}", xcap_common::common::free_port());
    let (server, root) = Server::start_domain(DOMAIN, USERS, &["--rls-route", &dead]);
    put_rules_for_alice(&root, "bob", "bobpw", "allow");
    alice_list(&root, &["sip%3Aghost%40example.net", "bob%40example.com"]);
    let mut alice = Ua::new(&server, "alice", "secret");
    let first = subscribe_list(&mut alice);
    let bob_uri = format!("sip:bob@{DOMAIN}");
    assert_eq!(first.state(&bob_uri), Some(InstanceState::Active));
    let ghost = "sip:ghost@example.net";
    let mut latest = first;
    let mut version = latest.rlmi.version;
    while latest
        .resource(ghost)
        .is_some_and(|r| r.instances.is_empty())
    {
        version += 1;
        latest = next(&mut alice, version, Duration::from_secs(3));
    }
    assert_eq!(latest.state(ghost), Some(InstanceState::Pending));

    let mut bob = Ua::new(&server, "bob", "bobpw");
    publish(&mut bob, "bob-still-here");
    let update = next(&mut alice, version + 1, Duration::from_secs(2));
    assert!(update.document(&bob_uri).contains("bob-still-here"));
    drop(server);
}

#[test]
fn buddy_list_subscriptions_survive_sigkill() {
    // Trusted loopback: the UDP subscriber needs no digest, and its Contact (its socket)
    // stays reachable across the restart.
    let trusted = ["--trusted", "127.0.0.1/32"];
    let (server, root) = Server::start_domain(DOMAIN, USERS, &trusted);
    put_rules_for_alice(&root, "bob", "bobpw", "allow");
    alice_list(&root, &["bob%40example.com"]);
    let mut bob = Ua::new(&server, "bob", "bobpw");
    publish(&mut bob, "bob-before");

    let watcher = SipUdp::new(server.tcp_addr());
    let local = watcher.socket.local_addr().unwrap();
    let call_id = format!("rls-restart-{}", unique());
    let service = service();
    watcher.send(
        format!(
            "SUBSCRIBE {service} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK-rr{};rport\r\nMax-Forwards: 70\r\n\
             From: <sip:alice@{DOMAIN}>;tag=a1\r\nTo: <{service}>\r\nCall-ID: {call_id}\r\n\
             CSeq: 1 SUBSCRIBE\r\nContact: <sip:alice@{local}>\r\nEvent: presence\r\n\
             Supported: eventlist\r\n{ACCEPT}Expires: 600\r\nContent-Length: 0\r\n\r\n",
            unique()
        )
        .as_bytes(),
    );
    assert_eq!(watcher.next_response().status(), Some(200));
    let before = ListNotify::read(&watcher.request_with("bob-before"));

    // Longer than the save interval, so the subscription is on disk.
    std::thread::sleep(Duration::from_millis(800));
    let (data_dir, temp) = server.kill();
    let server = Server::launch(data_dir, temp, &trusted);

    // The same dialog gets full state at once, with a higher version.
    let notify = watcher.request_with("bob-before");
    assert_eq!(notify.call_id().unwrap(), call_id);
    let restored = ListNotify::read(&notify);
    assert!(restored.rlmi.full_state);
    assert!(restored.rlmi.version > before.rlmi.version);

    let mut bob = Ua::new(&server, "bob", "bobpw");
    publish(&mut bob, "bob-after");
    let after = ListNotify::read(&watcher.request_with("bob-after"));
    assert_eq!(after.rlmi.version, restored.rlmi.version + 1);
}
