//! Tests of expansion (Blink's documents, every reference form, loops and caps) and of the
//! agent's NOTIFY sequences (full then partial, consecutive versions, resolvable cids, valid
//! RLMI).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Command as Process;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use simple_payloads::multipart::Related;
use simple_payloads::rlmi::{InstanceState, Rlmi};
use simple_payloads::{encode_any_uri, validate, Usage};
use sip_message::{HeaderName, Limits, Message};

use crate::expand::service_key;
use sip_subscription::{Body, Flow, Reason};

use crate::*;

const ALICE: &str = "sip:alice@example.com";
const SERVICE: &str = "sip:alice+presence@example.com";
const ROOT: &str = "/xcap-root";

/// Blink's resource-lists document (blink-compat §1.2), abridged to the lists that matter.
fn blink_resource_lists(rls_entries: &str) -> String {
    let anchor = |name: &str| {
        encode_any_uri(&format!(
            "https://xcap.example.com/xcap-root/resource-lists/users/sip:alice@example.com/index/~~/resource-lists/list[@name=\"{name}\"]"
        ))
    };
    format!(
        r#"<?xml version='1.0' encoding='UTF-8'?>
<rl:resource-lists xmlns:rl="urn:ietf:params:xml:ns:resource-lists">
  <rl:list name="oma_buddylist"/>
  <rl:list name="oma_grantedcontacts"><rl:entry uri="bob%40example.com"/><rl:entry uri="%2B31201234567"/></rl:list>
  <rl:list name="oma_blockedcontacts"><rl:entry uri="sip%3Aspam%40example.net"/></rl:list>
  <rl:list name="oma_allcontacts">
    <rl:external anchor="{}"/><rl:external anchor="{}"/><rl:external anchor="{}"/>
  </rl:list>
  <rl:list name="sipsimple_presence_rls">{rls_entries}</rl:list>
  <rl:list name="sipsimple_dialog_rls"/>
</rl:resource-lists>"#,
        anchor("oma_buddylist"),
        anchor("oma_grantedcontacts"),
        anchor("oma_blockedcontacts"),
    )
}

const BLINK_PRESENCE_RLS: &str =
    r#"<rl:entry uri="bob%40example.com"/><rl:entry uri="%2B31201234567"/>"#;

/// Blink's rls-services document (blink-compat §1.5).
fn blink_rls_services() -> String {
    let list = |name: &str| {
        encode_any_uri(&format!(
            "https://xcap.example.com/xcap-root/resource-lists/users/sip:alice@example.com/index/~~/resource-lists/list[@name=\"{name}\"]"
        ))
    };
    format!(
        r#"<?xml version='1.0' encoding='UTF-8'?>
<rls-services xmlns="urn:ietf:params:xml:ns:rls-services">
  <service uri="sip%3Aalice%2Bpresence%40example.com">
    <resource-list>{}</resource-list>
    <packages><package>presence</package></packages>
  </service>
  <service uri="sip%3Aalice%2Bdialog%40example.com">
    <resource-list>{}</resource-list>
    <packages><package>dialog</package></packages>
  </service>
</rls-services>"#,
        list("sipsimple_presence_rls"),
        list("sipsimple_dialog_rls")
    )
}

fn docs(items: &[(Auid, &str, &str)]) -> Documents {
    let mut documents = Documents::new();
    for (auid, owner, text) in items {
        documents.insert(DocumentRef::index(*auid, owner), Some((*text).to_owned()));
    }
    documents
}

fn done(expansion: Expansion) -> List {
    match expansion {
        Expansion::Done(list) => list,
        other => panic!("expected a list, got {other:?}"),
    }
}

fn uris(list: &List) -> Vec<String> {
    list.entries.iter().map(Entry::resource_uri).collect()
}

#[test]
fn blink_documents_expand_through_the_resource_list_reference() {
    let limits = ExpansionLimits::default();
    let mut documents = Documents::new();
    documents.insert(
        DocumentRef::index(Auid::RlsServices, ALICE),
        Some(blink_rls_services()),
    );
    // The first attempt names the resource-lists document it lacks.
    let need = expand(ALICE, SERVICE, &documents, &limits, ROOT);
    assert_eq!(
        need,
        Expansion::Need(vec![DocumentRef::index(Auid::ResourceLists, ALICE)])
    );
    documents.insert(
        DocumentRef::index(Auid::ResourceLists, ALICE),
        Some(blink_resource_lists(BLINK_PRESENCE_RLS)),
    );
    let list = done(expand(ALICE, SERVICE, &documents, &limits, ROOT));
    assert_eq!(list.service, SERVICE);
    assert_eq!(list.packages, ["presence"]);
    assert_eq!(uris(&list), ["sip:bob@example.com", "sip:+31201234567"]);
    assert!(list.problems.is_empty(), "{:?}", list.problems);
    assert!(list.allows("presence") && !list.allows("dialog"));
    // The service URI may arrive in any equivalent spelling.
    let again = expand(
        ALICE,
        "sip:alice+presence@EXAMPLE.com",
        &documents,
        &limits,
        ROOT,
    );
    assert_eq!(done(again), list);
    assert_eq!(
        expand(ALICE, "sip:nobody@example.com", &documents, &limits, ROOT),
        Expansion::NoService
    );
}

#[test]
fn external_anchors_nested_lists_and_entry_refs_are_followed_and_deduplicated() {
    let rls = r#"<rls-services xmlns="urn:ietf:params:xml:ns:rls-services" xmlns:rl="urn:ietf:params:xml:ns:resource-lists">
      <service uri="sip:alice+all@example.com"><list name="inline">
        <rl:entry uri="sip:carol@example.com"><rl:display-name>Carol</rl:display-name></rl:entry>
        <rl:list name="nested"><rl:entry uri="sip:dave@example.org"/></rl:list>
        <rl:external anchor="https%3A//other.example/xcap-root/resource-lists/users/sip%3Aalice%40example.com/index/~~/resource-lists/list%5B%40name%3D%22oma_allcontacts%22%5D"/>
        <rl:entry-ref ref="resource-lists/users/sip%3Abob%40example.com/index/~~/resource-lists/list%5B%40name%3D%22friends%22%5D/entry%5B%40uri%3D%22sip%3Aerin%40example.com%22%5D"><rl:display-name>Erin (via Bob)</rl:display-name></rl:entry-ref>
        <rl:entry uri="sip%3Acarol%40EXAMPLE.com"><rl:display-name>Second Carol</rl:display-name></rl:entry>
        <rl:external anchor="http://elsewhere.example/root/resource-lists/users/sip:x@y/index/~~/resource-lists/list%5B@name=%22l%22%5D"/>
      </list></service></rls-services>"#;
    let bob = r#"<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list name="friends">
        <entry uri="sip:erin@example.com"><display-name>Erin</display-name></entry></list></resource-lists>"#;
    let alice_lists = blink_resource_lists(BLINK_PRESENCE_RLS);
    let documents = docs(&[
        (Auid::RlsServices, ALICE, rls),
        (Auid::ResourceLists, ALICE, &alice_lists),
        (Auid::ResourceLists, "sip:bob@example.com", bob),
    ]);
    let list = done(expand(
        ALICE,
        "sip:alice+all@example.com",
        &documents,
        &ExpansionLimits::default(),
        ROOT,
    ));
    assert!(list.packages.is_empty() && list.allows("presence"));
    assert_eq!(
        uris(&list),
        [
            "sip:carol@example.com",
            "sip:dave@example.org",
            "sip:bob@example.com",
            "sip:+31201234567",
            "sip:spam@example.net",
            "sip:erin@example.com",
        ]
    );
    assert_eq!(list.entries[0].name.as_deref(), Some("Carol"));
    assert_eq!(list.entries[5].name.as_deref(), Some("Erin (via Bob)"));
    assert_eq!(
        list.problems,
        [Problem::BadReference(
            "http://elsewhere.example/root/resource-lists/users/sip:x@y/index/~~/resource-lists/list[@name=\"l\"]".into()
        )]
    );
}

#[test]
fn loops_are_cut_and_reported() {
    let anchor = |name: &str| {
        format!("https://x/xcap-root/resource-lists/users/sip:alice@example.com/index/~~/resource-lists/list%5B@name=%22{name}%22%5D")
    };
    let lists = format!(
        r#"<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">
        <list name="a"><entry uri="sip:1@x"/><external anchor="{}"/></list>
        <list name="b"><entry uri="sip:2@x"/><external anchor="{}"/><list name="c"><external anchor="{}"/></list></list>
        </resource-lists>"#,
        anchor("b"),
        anchor("a"),
        anchor("b"),
    );
    let rls = format!(
        r#"<rls-services xmlns="urn:ietf:params:xml:ns:rls-services"><service uri="sip:l@x"><resource-list>{}</resource-list></service></rls-services>"#,
        encode_any_uri(&anchor("a"))
    );
    let documents = docs(&[
        (Auid::RlsServices, ALICE, &rls),
        (Auid::ResourceLists, ALICE, &lists),
    ]);
    let list = done(expand(
        ALICE,
        "sip:l@x",
        &documents,
        &ExpansionLimits::default(),
        ROOT,
    ));
    assert_eq!(uris(&list), ["sip:1@x", "sip:2@x"]);
    assert!(
        list.problems.iter().all(|p| matches!(p, Problem::Loop(_))) && list.problems.len() == 2,
        "{:?}",
        list.problems
    );
}

#[test]
fn caps_on_entries_depth_and_documents_hold() {
    let entries: String = (0..50)
        .map(|i| format!(r#"<rl:entry uri="sip:u{i}@x"/>"#))
        .collect();
    let deep = format!(
        "{}<rl:entry uri=\"sip:deep@x\"/>{}",
        "<rl:list>".repeat(20),
        "</rl:list>".repeat(20)
    );
    let refs: String = (0..20)
        .map(|i| format!(r#"<rl:external anchor="https://x/xcap-root/resource-lists/users/sip:u{i}@x/index/~~/resource-lists/list%5B@name=%22l%22%5D"/>"#))
        .collect();
    let rls = format!(
        r#"<rls-services xmlns="urn:ietf:params:xml:ns:rls-services" xmlns:rl="urn:ietf:params:xml:ns:resource-lists">
        <service uri="sip:many@x"><list>{entries}</list></service>
        <service uri="sip:deep@x"><list>{deep}</list></service>
        <service uri="sip:refs@x"><list>{refs}</list></service></rls-services>"#
    );
    let mut documents = docs(&[(Auid::RlsServices, ALICE, &rls)]);
    let limits = ExpansionLimits {
        max_entries: 10,
        max_depth: 8,
        max_documents: 4,
    };
    let many = done(expand(ALICE, "sip:many@x", &documents, &limits, ROOT));
    assert_eq!(many.entries.len(), 10);
    assert_eq!(many.problems, [Problem::TooManyEntries]);
    let deep = done(expand(ALICE, "sip:deep@x", &documents, &limits, ROOT));
    assert!(deep.entries.is_empty());
    assert_eq!(deep.problems, [Problem::TooDeep]);
    // Only max_documents - 1 user documents are ever requested besides rls-services.
    let Expansion::Need(needed) = expand(ALICE, "sip:refs@x", &documents, &limits, ROOT) else {
        panic!("documents must be requested");
    };
    assert_eq!(needed.len(), 3);
    for document in needed {
        let text = r#"<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list name="l"><entry uri="sip:z@x"/></list></resource-lists>"#;
        documents.insert(document, Some(text.to_owned()));
    }
    let refs = done(expand(ALICE, "sip:refs@x", &documents, &limits, ROOT));
    assert_eq!(uris(&refs), ["sip:z@x"]);
    assert_eq!(refs.problems, [Problem::TooManyDocuments]);
}

#[test]
fn missing_and_malformed_documents_leave_the_rest_of_the_list() {
    let rls = r#"<rls-services xmlns="urn:ietf:params:xml:ns:rls-services" xmlns:rl="urn:ietf:params:xml:ns:resource-lists">
      <service uri="sip:l@x"><list><rl:entry uri="sip:a@x"/>
      <rl:external anchor="https://x/xcap-root/resource-lists/users/sip:gone@x/index/~~/resource-lists/list%5B@name=%22l%22%5D"/>
      <rl:external anchor="https://x/xcap-root/resource-lists/users/sip:broken@x/index/~~/resource-lists/list%5B@name=%22l%22%5D"/>
      <rl:external anchor="not a uri"/>
      <rl:entry-ref ref="resource-lists/users/sip:a@x/index/~~/resource-lists/list%5B@name=%22l%22%5D"/>
      <rl:entry uri=""/></list></service></rls-services>"#;
    let mut documents = docs(&[(Auid::RlsServices, ALICE, rls)]);
    documents.insert(DocumentRef::index(Auid::ResourceLists, "sip:gone@x"), None);
    documents.insert(
        DocumentRef::index(Auid::ResourceLists, "sip:broken@x"),
        Some("<resource-lists".into()),
    );
    let list = done(expand(
        ALICE,
        "sip:l@x",
        &documents,
        &ExpansionLimits::default(),
        ROOT,
    ));
    assert_eq!(uris(&list), ["sip:a@x", "sip:"]);
    assert_eq!(list.problems.len(), 4, "{:?}", list.problems);
    // An unreadable rls-services document has no services.
    let broken = docs(&[(Auid::RlsServices, ALICE, "<rls-services")]);
    assert_eq!(
        expand(ALICE, "sip:l@x", &broken, &ExpansionLimits::default(), ROOT),
        Expansion::NoService
    );
}

#[test]
fn the_service_index_follows_document_changes() {
    let mut index = ServiceIndex::new();
    let touched = index.update(ALICE, Some(&blink_rls_services()));
    assert_eq!(touched.len(), 2);
    assert_eq!(index.lookup(SERVICE), Some((ALICE, SERVICE)));
    assert_eq!(
        index.lookup("sip:alice+presence@example.com;transport=tcp"),
        Some((ALICE, SERVICE))
    );
    // Another owner cannot take over Alice's service URI.
    index.update("sip:mallory@example.com", Some(&blink_rls_services()));
    assert_eq!(index.lookup(SERVICE).map(|(o, _)| o), Some(ALICE));
    let touched = index.update(ALICE, None);
    assert_eq!(touched.len(), 2);
    assert_eq!(index.lookup(SERVICE), None);
    assert!(index.is_empty());
}

proptest! {
    /// Arbitrary (often broken) documents never panic and never exceed the caps.
    #[test]
    fn expansion_of_arbitrary_lists_respects_the_caps(
        shape in proptest::collection::vec((0u8..6, 0u8..4), 0..60)
    ) {
        let mut body = String::new();
        let mut open = 0;
        for (kind, n) in shape {
            match kind {
                0 => body.push_str(&format!("<rl:entry uri=\"sip:u{n}@x\"/>")),
                1 => { body.push_str(&format!("<rl:list name=\"l{n}\">")); open += 1; }
                2 if open > 0 => { body.push_str("</rl:list>"); open -= 1; }
                3 => body.push_str(&format!("<rl:external anchor=\"https://x/xcap-root/resource-lists/users/sip:alice@example.com/index/~~/resource-lists/list%5B@name=%22l{n}%22%5D\"/>")),
                4 => body.push_str(&format!("<rl:entry-ref ref=\"resource-lists/users/sip:alice@example.com/index/~~/resource-lists/list%5B@name=%22l{n}%22%5D/entry%5B@uri=%22sip:u{n}@x%22%5D\"/>")),
                _ => body.push_str(&format!("<rl:entry uri=\"u{n}\"/>")),
            }
        }
        body.push_str(&"</rl:list>".repeat(open));
        let lists = format!("<rl:resource-lists xmlns:rl=\"urn:ietf:params:xml:ns:resource-lists\"><rl:list name=\"l0\">{body}</rl:list></rl:resource-lists>");
        let rls = format!("<rls-services xmlns=\"urn:ietf:params:xml:ns:rls-services\" xmlns:rl=\"urn:ietf:params:xml:ns:resource-lists\"><service uri=\"sip:s@x\"><list>{body}</list></service></rls-services>");
        let documents = docs(&[(Auid::RlsServices, ALICE, &rls), (Auid::ResourceLists, ALICE, &lists)]);
        let limits = ExpansionLimits { max_entries: 5, max_depth: 4, max_documents: 2 };
        if let Expansion::Done(list) = expand(ALICE, "sip:s@x", &documents, &limits, ROOT) {
            prop_assert!(list.entries.len() <= 5);
            let mut keys: Vec<String> = list.entries.iter().map(|e| service_key(&e.resource_uri())).collect();
            keys.sort();
            keys.dedup();
            prop_assert_eq!(keys.len(), list.entries.len());
        }
    }
}

// ---------------------------------------------------------------------------------- the agent

type Agent = RlsAgent<&'static str>;

fn agent(window: Duration) -> Agent {
    let mut config = Config::new(60, 3600, 3600);
    config.batch_window = window;
    RlsAgent::new(config, StdRng::seed_from_u64(5))
}

fn flow() -> Flow<&'static str> {
    Flow {
        dest: "conn",
        reliable: true,
        via: "SIP/2.0/TCP 192.0.2.1:5060".into(),
        contact: "<sip:192.0.2.1:5060;transport=tcp>".into(),
    }
}

fn subscribe_request(headers: &str) -> Message {
    let text = format!(
        "SUBSCRIBE {SERVICE} SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.9;branch=z9hG4bK{}\r\n\
         From: <{ALICE}>;tag=f1\r\nTo: <{SERVICE}>\r\nCall-ID: {}@x\r\nCSeq: 1 SUBSCRIBE\r\n\
         Contact: <sip:12345678@192.0.2.9;transport=tcp>\r\nMax-Forwards: 70\r\nEvent: presence\r\n\
         Accept: multipart/related, application/rlmi+xml, application/pidf+xml\r\n\
         Expires: 600\r\n{headers}Content-Length: 0\r\n\r\n",
        rand::random::<u32>(),
        rand::random::<u32>(),
    );
    Message::parse(bytes::Bytes::from(text), &Limits::default()).expect("valid SUBSCRIBE")
}

fn list_of(uris: &[&str]) -> List {
    List {
        service: SERVICE.into(),
        packages: vec!["presence".into()],
        entries: uris
            .iter()
            .map(|u| Entry {
                uri: (*u).into(),
                name: None,
            })
            .collect(),
        problems: Vec::new(),
    }
}

fn key(resource: &str) -> WatchKey {
    WatchKey {
        resource: resource.into(),
        subscriber: ALICE.into(),
    }
}

fn pidf(entity: &str, note: &str) -> ResourceState {
    ResourceState {
        status: WatchStatus::Active,
        body: Some(Body::new(
            "application/pidf+xml",
            format!(
                "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"{entity}\"><tuple id=\"t\">\
                 <status><basic>open</basic></status><note>{note}</note></tuple></presence>"
            ),
        )),
    }
}

/// A NOTIFY as the subscriber reads it: the RLMI root and the parts by cid.
struct Received {
    rlmi: Rlmi,
    related: Related,
}

fn read(notify: &Message) -> Received {
    let content_type = notify
        .header(&HeaderName::ContentType)
        .expect("Content-Type");
    let related = Related::parse(content_type, &notify.body()).expect("multipart/related");
    assert_eq!(related.root_type, "application/rlmi+xml");
    let root = related.root().expect("root part");
    let text = std::str::from_utf8(&root.body).expect("UTF-8 RLMI");
    validate(Usage::Rlmi, text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    let rlmi = Rlmi::parse(text).expect("RLMI");
    for resource in &rlmi.resources {
        for instance in &resource.instances {
            if let Some(cid) = &instance.cid {
                assert!(related.part(cid).is_some(), "cid {cid} resolves to no part");
            }
        }
    }
    Received { rlmi, related }
}

/// Answers every NOTIFY with 200, returning them and the NOTIFYs the answers released.
fn deliver(agent: &mut Agent, notifies: Vec<Notify<&'static str>>, now: Instant) -> Vec<Message> {
    let mut delivered = Vec::new();
    let mut queue = VecDeque::from(notifies);
    while let Some(notify) = queue.pop_front() {
        let request = notify
            .request()
            .expect("the agent writes parseable NOTIFYs");
        let ok = sip_message::response_to(&request, 200, "OK", None).finish(None, b"");
        let ok = Message::parse(ok, &Limits::default()).expect("response");
        queue.extend(agent.on_notify_response(notify.id, &ok, now).notifies);
        delivered.push(request);
    }
    delivered
}

/// Subscribes with `list`, answering the watches of `local` at once.
fn open(
    agent: &mut Agent,
    list: List,
    local: &[(&str, ResourceState)],
    now: Instant,
) -> (Answer<&'static str>, Vec<Command>) {
    let request = subscribe_request("Supported: eventlist\r\n");
    let Subscribe::Opening(opening) = agent.on_subscribe(&request, flow(), ALICE, list, now) else {
        panic!("a new list subscription opens");
    };
    let commands = opening.commands.clone();
    for (resource, state) in local {
        agent.on_resource_state(&key(resource), state.clone(), now);
    }
    (agent.open(opening, now), commands)
}

#[test]
fn without_supported_eventlist_the_answer_is_421() {
    let mut agent = agent(Duration::from_millis(200));
    let request = subscribe_request("");
    let Subscribe::Answered(answer) =
        agent.on_subscribe(&request, flow(), ALICE, list_of(&[]), Instant::now())
    else {
        panic!("refused at once");
    };
    assert_eq!(answer.status, 421);
    let response = Message::parse(answer.response, &Limits::default()).unwrap();
    assert_eq!(response.header(&HeaderName::Require), Some("eventlist"));
}

#[test]
fn a_service_without_the_package_is_refused_with_489() {
    let mut agent = agent(Duration::from_millis(200));
    let mut list = list_of(&["sip:bob@example.com"]);
    list.packages = vec!["dialog".into()];
    let request = subscribe_request("Supported: eventlist\r\n");
    let Subscribe::Answered(answer) =
        agent.on_subscribe(&request, flow(), ALICE, list, Instant::now())
    else {
        panic!("refused at once");
    };
    assert_eq!(answer.status, 489);
    assert_eq!(agent.watches(), 0);
}

#[test]
fn first_notify_is_full_state_with_local_state_then_partials_are_consecutive() {
    let window = Duration::from_millis(200);
    let mut agent = agent(window);
    let t0 = Instant::now();
    let list = list_of(&["bob@example.com", "sip:carol@example.org", "+31201234567"]);
    let (answer, commands) = open(
        &mut agent,
        list,
        &[("sip:bob@example.com", pidf("sip:bob@example.com", "here"))],
        t0,
    );
    assert_eq!(answer.status, 200);
    let response = Message::parse(answer.response.clone(), &Limits::default()).unwrap();
    assert_eq!(response.header(&HeaderName::Require), Some("eventlist"));
    assert!(response.header(&HeaderName::Contact).is_some());
    assert_eq!(
        commands,
        [
            Command::Watch(key("sip:bob@example.com")),
            Command::Watch(key("sip:carol@example.org"))
        ]
    );
    let first = deliver(&mut agent, answer.notifies, t0);
    assert_eq!(first.len(), 1);
    let full = read(&first[0]);
    assert_eq!((full.rlmi.version, full.rlmi.full_state), (0, true));
    assert_eq!(full.rlmi.uri, SERVICE);
    let resources: Vec<(&str, usize)> = full
        .rlmi
        .resources
        .iter()
        .map(|r| (r.uri.as_str(), r.instances.len()))
        .collect();
    assert_eq!(
        resources,
        [
            ("sip:bob@example.com", 1),
            ("sip:carol@example.org", 0),
            ("sip:+31201234567", 0)
        ]
    );
    let bob = &full.rlmi.resources[0].instances[0];
    assert_eq!(bob.state, InstanceState::Active);
    let part = full.related.part(bob.cid.as_deref().unwrap()).unwrap();
    assert!(String::from_utf8_lossy(&part.body).contains("<note>here</note>"));

    // Carol's remote state and Bob's change come within one window: one partial NOTIFY.
    let t1 = t0 + Duration::from_millis(10);
    agent.on_resource_state(
        &key("sip:carol@example.org"),
        ResourceState {
            status: WatchStatus::Pending,
            body: None,
        },
        t1,
    );
    agent.on_resource_state(
        &key("sip:bob@example.com"),
        pidf("sip:bob@example.com", "away"),
        t1 + Duration::from_millis(50),
    );
    assert_eq!(agent.next_deadline(), Some(t1 + window));
    assert!(agent
        .on_timer(t1 + window - Duration::from_millis(1))
        .notifies
        .is_empty());
    let out = agent.on_timer(t1 + window);
    let second = deliver(&mut agent, out.notifies, t1 + window);
    assert_eq!(second.len(), 1);
    let partial = read(&second[0]);
    assert_eq!((partial.rlmi.version, partial.rlmi.full_state), (1, false));
    assert_eq!(partial.rlmi.resources.len(), 2);
    let bob_again = &partial.rlmi.resources[0].instances[0];
    assert_eq!(bob_again.id, bob.id, "instance ids are stable");
    assert_eq!(
        partial.rlmi.resources[1].instances[0].state,
        InstanceState::Pending
    );

    // A rejection is reported with its reason; the next state is a new instance.
    let t2 = t1 + Duration::from_secs(1);
    let rejected = ResourceState {
        status: WatchStatus::Terminated(Reason::Rejected),
        body: None,
    };
    agent.on_resource_state(&key("sip:bob@example.com"), rejected, t2);
    let third = tick(&mut agent, t2 + window);
    let terminated = read(&third[0]);
    assert_eq!(terminated.rlmi.version, 2);
    let instance = &terminated.rlmi.resources[0].instances[0];
    assert_eq!(
        (instance.state, instance.reason.as_deref(), &instance.cid),
        (InstanceState::Terminated, Some("rejected"), &None)
    );
    agent.on_resource_state(
        &key("sip:bob@example.com"),
        pidf("sip:bob@example.com", "back"),
        t2 + window,
    );
    let fourth = tick(&mut agent, t2 + window * 2);
    let revived = read(&fourth[0]);
    assert_eq!(revived.rlmi.version, 3);
    assert_ne!(revived.rlmi.resources[0].instances[0].id, bob.id);
}

/// Runs the timer at `now` and delivers what it sends.
fn tick(agent: &mut Agent, now: Instant) -> Vec<Message> {
    let notifies = agent.on_timer(now).notifies;
    deliver(agent, notifies, now)
}

#[test]
fn changes_during_an_in_flight_notify_wait_for_its_answer() {
    let window = Duration::from_millis(100);
    let mut agent = agent(window);
    let t0 = Instant::now();
    let (answer, _) = open(&mut agent, list_of(&["sip:bob@example.com"]), &[], t0);
    let first = answer.notifies;
    assert_eq!(first.len(), 1);
    agent.on_resource_state(
        &key("sip:bob@example.com"),
        pidf("sip:bob@example.com", "1"),
        t0,
    );
    // The window passes while the first NOTIFY is unanswered: nothing is sent.
    assert!(agent.on_timer(t0 + window).notifies.is_empty());
    agent.on_resource_state(
        &key("sip:bob@example.com"),
        pidf("sip:bob@example.com", "2"),
        t0 + window,
    );
    let released = deliver(&mut agent, first, t0 + window * 2);
    assert_eq!(
        released.len(),
        2,
        "the answer releases the collected change"
    );
    let partial = read(&released[1]);
    assert_eq!(partial.rlmi.version, 1);
    let cid = partial.rlmi.resources[0].instances[0].cid.clone().unwrap();
    let body = &partial.related.part(&cid).unwrap().body;
    assert!(String::from_utf8_lossy(body).contains("<note>2</note>"));
    assert_eq!(
        agent.next_deadline().map(|d| d > t0 + window * 2),
        Some(true)
    );
}

#[test]
fn watches_are_shared_between_lists_and_released_with_the_last() {
    let mut agent = agent(Duration::from_millis(100));
    let t0 = Instant::now();
    let (a, first_commands) = open(&mut agent, list_of(&["sip:bob@example.com"]), &[], t0);
    let (b, second_commands) = open(
        &mut agent,
        list_of(&["sip:bob@example.com", "sip:carol@example.com"]),
        &[],
        t0,
    );
    assert_eq!(first_commands, [Command::Watch(key("sip:bob@example.com"))]);
    assert_eq!(
        second_commands,
        [Command::Watch(key("sip:carol@example.com"))]
    );
    assert_eq!(agent.watches(), 2);
    let ids: Vec<_> = [&a, &b].iter().map(|x| x.notifies[0].id).collect();
    deliver(&mut agent, a.notifies, t0);
    deliver(&mut agent, b.notifies, t0);
    // Both lists see Bob's state.
    agent.on_resource_state(
        &key("sip:bob@example.com"),
        pidf("sip:bob@example.com", "x"),
        t0,
    );
    let out = agent.on_timer(t0 + Duration::from_millis(100));
    assert_eq!(out.notifies.len(), 2);
    deliver(&mut agent, out.notifies, t0 + Duration::from_millis(100));
    // Expiry of both subscriptions releases the watches, each once.
    let out = agent.on_timer(t0 + Duration::from_secs(601));
    let mut unwatched: Vec<Command> = out.commands;
    unwatched.sort_by_key(|c| format!("{c:?}"));
    assert_eq!(
        unwatched,
        [
            Command::Unwatch(key("sip:bob@example.com")),
            Command::Unwatch(key("sip:carol@example.com"))
        ]
    );
    assert_eq!(agent.watches(), 0);
    assert_eq!(out.notifies.len(), 2);
    assert!(out.notifies.iter().all(|n| ids.contains(&n.id)));
}

#[test]
fn list_changes_watch_new_members_drop_old_ones_and_send_full_state() {
    let window = Duration::from_millis(200);
    let mut agent = agent(window);
    let t0 = Instant::now();
    let (answer, _) = open(
        &mut agent,
        list_of(&["sip:bob@example.com", "sip:carol@example.com"]),
        &[("sip:bob@example.com", pidf("sip:bob@example.com", "b"))],
        t0,
    );
    let first = read(&deliver(&mut agent, answer.notifies, t0)[0]);
    let bob_id = first.rlmi.resources[0].instances[0].id.clone();
    let out = agent.on_list_changed(
        "sip:alice+presence@example.com",
        list_of(&["sip:bob@example.com", "sip:dave@example.com"]),
        t0,
    );
    assert_eq!(
        out.commands,
        [
            Command::Watch(key("sip:dave@example.com")),
            Command::Unwatch(key("sip:carol@example.com"))
        ]
    );
    agent.on_resource_state(
        &key("sip:dave@example.com"),
        pidf("sip:dave@example.com", "d"),
        t0,
    );
    let sent = tick(&mut agent, t0 + window);
    assert_eq!(sent.len(), 1);
    let full = read(&sent[0]);
    assert_eq!((full.rlmi.version, full.rlmi.full_state), (1, true));
    let uris: Vec<&str> = full.rlmi.resources.iter().map(|r| r.uri.as_str()).collect();
    assert_eq!(uris, ["sip:bob@example.com", "sip:dave@example.com"]);
    assert_eq!(full.rlmi.resources[0].instances[0].id, bob_id);
    assert_eq!(full.related.parts.len(), 3);
    // Bob spelt differently is the same resource: same watch, same instance, still notified.
    let out = agent.on_list_changed(
        SERVICE,
        list_of(&["bob@EXAMPLE.com", "sip:dave@example.com"]),
        t0 + window,
    );
    assert!(out.commands.is_empty(), "{:?}", out.commands);
    agent.on_resource_state(
        &key("sip:bob@example.com"),
        pidf("sip:bob@example.com", "b2"),
        t0 + window,
    );
    let sent = tick(&mut agent, t0 + window * 2);
    let renamed = read(&sent[0]);
    assert_eq!(renamed.rlmi.resources[0].uri, "sip:bob@EXAMPLE.com");
    assert_eq!(renamed.rlmi.resources[0].instances[0].id, bob_id);
    let cid = renamed.rlmi.resources[0].instances[0].cid.clone().unwrap();
    assert!(String::from_utf8_lossy(&renamed.related.part(&cid).unwrap().body).contains("b2"));
    // Removing the service ends the subscription.
    let out = agent.on_service_removed(SERVICE, t0 + window * 2);
    assert_eq!(out.notifies.len(), 1);
    assert!(out.notifies[0]
        .request()
        .unwrap()
        .header(&HeaderName::SubscriptionState)
        .unwrap()
        .starts_with("terminated;reason=noresource"));
}

#[test]
fn the_body_cap_keeps_the_rlmi_complete_and_defers_parts() {
    let window = Duration::from_millis(50);
    let mut config = Config::new(60, 3600, 3600);
    config.batch_window = window;
    config.max_notify_body = 700;
    let mut agent: Agent = RlsAgent::new(config, StdRng::seed_from_u64(1));
    let t0 = Instant::now();
    let members = ["sip:a@x", "sip:b@x", "sip:c@x"];
    let local: Vec<(&str, ResourceState)> = members.iter().map(|m| (*m, pidf(m, "note"))).collect();
    let (answer, _) = open(&mut agent, list_of(&members), &local, t0);
    let first = read(&deliver(&mut agent, answer.notifies, t0)[0]);
    assert_eq!(first.rlmi.resources.len(), 3);
    let with_cid = first
        .rlmi
        .resources
        .iter()
        .filter(|r| r.instances[0].cid.is_some())
        .count();
    assert!((1..3).contains(&with_cid), "{with_cid} parts fit");
    // The deferred parts follow in partial NOTIFYs until every resource was delivered.
    let mut delivered = with_cid;
    let mut now = t0;
    for _ in 0..3 {
        now += window;
        for notify in tick(&mut agent, now) {
            let partial = read(&notify);
            assert!(!partial.rlmi.full_state);
            delivered += partial
                .rlmi
                .resources
                .iter()
                .filter(|r| r.instances[0].cid.is_some())
                .count();
        }
    }
    assert_eq!(delivered, 3);
}

#[test]
fn refresh_and_unsubscribe_go_through_the_engine() {
    let mut agent = agent(Duration::from_millis(100));
    let t0 = Instant::now();
    let (answer, _) = open(&mut agent, list_of(&["sip:bob@example.com"]), &[], t0);
    let first = deliver(&mut agent, answer.notifies, t0);
    let response = Message::parse(answer.response, &Limits::default()).unwrap();
    let to = response.header(&HeaderName::To).unwrap().to_owned();
    let call_id = first[0].header(&HeaderName::CallId).unwrap().to_owned();
    let in_dialog = |cseq: u32, expires: u32| {
        let text = format!(
            "SUBSCRIBE {SERVICE} SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.9;branch=z9hG4bK{cseq}x\r\n\
             From: <{ALICE}>;tag=f1\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} SUBSCRIBE\r\n\
             Contact: <sip:12345678@192.0.2.9;transport=tcp>\r\nMax-Forwards: 70\r\nEvent: presence\r\n\
             Supported: eventlist\r\nExpires: {expires}\r\nContent-Length: 0\r\n\r\n"
        );
        Message::parse(bytes::Bytes::from(text), &Limits::default()).unwrap()
    };
    let Subscribe::Answered(refresh) =
        agent.on_subscribe(&in_dialog(2, 600), flow(), ALICE, list_of(&[]), t0)
    else {
        panic!("a refresh is answered at once");
    };
    assert_eq!(refresh.status, 200);
    let sent = deliver(&mut agent, refresh.notifies, t0);
    let notify = read(&sent[0]);
    assert_eq!(
        notify.rlmi.version, 1,
        "the refresh NOTIFY continues the versions"
    );
    let Subscribe::Answered(bye) =
        agent.on_subscribe(&in_dialog(3, 0), flow(), ALICE, list_of(&[]), t0)
    else {
        panic!("an unsubscribe is answered at once");
    };
    assert_eq!(bye.commands, [Command::Unwatch(key("sip:bob@example.com"))]);
    assert_eq!((agent.subscriptions(), agent.watches()), (1, 0));
    deliver(&mut agent, bye.notifies, t0);
    assert_eq!(agent.subscriptions(), 0);
}

#[test]
fn built_notifies_are_valid_for_libxml2() {
    let mut agent = agent(Duration::from_millis(10));
    let t0 = Instant::now();
    let (answer, _) = open(
        &mut agent,
        list_of(&[
            "bob@example.com",
            "+31201234567",
            "sip:c@x",
            "100%",
            "bob\u{0}x",
        ]),
        &[("sip:bob@example.com", pidf("sip:bob@example.com", "<&>"))],
        t0,
    );
    let sent = deliver(&mut agent, answer.notifies, t0);
    let received = read(&sent[0]);
    // An entry that is no valid anyURI once decoded is written encoded, not verbatim.
    assert_eq!(received.rlmi.resources[3].uri, "sip%3A100%25");
    assert_eq!(received.rlmi.resources[4].uri, "sip%3Abob%00x");
    let root = received.related.root().unwrap();
    let schema =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../simple-payloads/schemas/usage-rlmi.xsd");
    let file = std::env::temp_dir().join(format!("rls-rlmi-{}.xml", std::process::id()));
    std::fs::write(&file, &root.body).unwrap();
    let output = Process::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&schema)
        .arg(&file)
        .output()
        .expect("xmllint (libxml2-utils) is installed");
    let _ = std::fs::remove_file(&file);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn subscriptions_survive_a_restart_with_increasing_versions_and_cseqs() {
    let mut before = agent(Duration::from_millis(100));
    let t0 = Instant::now();
    let (answer, _) = open(
        &mut before,
        list_of(&["sip:bob@example.com"]),
        &[("sip:bob@example.com", pidf("sip:bob@example.com", "b"))],
        t0,
    );
    let id = answer.notifies[0].id;
    let first = deliver(&mut before, answer.notifies, t0);
    let cseq = |m: &Message| m.cseq().expect("CSeq").seq;
    let changes = before.export_changes(t0, 1_000_000);
    assert_eq!(changes.records.len(), 1);
    assert!(before.export_changes(t0, 1_000_000).is_empty());

    let mut after = agent(Duration::from_millis(100));
    let restored = after.import(changes.records, |_| Some(flow()), t0, 1_000_000);
    assert_eq!(restored.services, [SERVICE]);
    let out = after.on_list_changed(SERVICE, list_of(&["sip:bob@example.com"]), t0);
    assert_eq!(out.commands, [Command::Watch(key("sip:bob@example.com"))]);
    after.on_resource_state(
        &key("sip:bob@example.com"),
        pidf("sip:bob@example.com", "b2"),
        t0,
    );
    let resumed = after.resume(t0);
    assert_eq!(resumed.notifies.len(), 1);
    assert_eq!(resumed.notifies[0].id, id);
    let sent = deliver(&mut after, resumed.notifies, t0);
    let full = read(&sent[0]);
    assert!(full.rlmi.full_state);
    assert!(
        full.rlmi.version > 1,
        "versions keep increasing: {}",
        full.rlmi.version
    );
    assert!(cseq(&sent[0]) > cseq(&first[0]));
    assert_eq!(
        sent[0].header(&HeaderName::CallId),
        first[0].header(&HeaderName::CallId)
    );
    // Nothing else is due: the resumed NOTIFY already carried the state.
    assert!(tick(&mut after, t0 + Duration::from_millis(100)).is_empty());
    // Records that expired while the server was down are dropped.
    let mut late = agent(Duration::from_millis(100));
    let records = before.export(t0, 1_000_000);
    let restored = late.import(records, |_| Some(flow()), t0, 1_000_000 + 3600);
    assert!(restored.services.is_empty());
    assert_eq!(late.subscriptions(), 0);
}
