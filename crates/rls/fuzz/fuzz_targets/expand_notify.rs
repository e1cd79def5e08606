//! List expansion and RLMI NOTIFY assembly with attacker-chosen XCAP documents. The input is
//! split at NUL bytes into Alice's rls-services document, Alice's resource-lists document,
//! Bob's resource-lists document and a PIDF body. Every service of the rls-services document
//! is expanded (documents it asks for that the input lacks count as absent), then subscribed
//! to through the agent, with the PIDF as every watched resource's state. Checks that nothing
//! panics and that:
//! - expansion ends within the document cap, and lists respect the entry cap with unique URIs;
//! - the first NOTIFY is full state, version 0, lists every entry in order (as
//!   [`rls::rlmi_uri`] writes it), its RLMI is
//!   schema-valid and every `cid` resolves to a part of the multipart body;
//! - after a state change the next NOTIFY is partial, version 1, and names that resource;
//! - when Bob's document disappears, the re-expanded list goes out as full state with the
//!   next version and exactly the remaining entries.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;
use rls::expand::{service_key, service_uris};
use rls::{
    expand, Auid, Command, Config, DocumentRef, Documents, Expansion, ExpansionLimits, List,
    ResourceState, RlsAgent, Subscribe, WatchStatus,
};
use simple_payloads::multipart::Related;
use simple_payloads::rlmi::Rlmi;
use simple_payloads::{validate, Usage};
use sip_message::{HeaderName, Limits, Message};
use sip_subscription::{Body, Flow};

const ALICE: &str = "sip:alice@example.com";
const BOB: &str = "sip:bob@example.com";
const LIMITS: ExpansionLimits = ExpansionLimits {
    max_entries: 64,
    max_depth: 8,
    max_documents: 4,
};

fn read(notify: &Message) -> Rlmi {
    let content_type = notify
        .header(&HeaderName::ContentType)
        .expect("Content-Type");
    let related = Related::parse(content_type, &notify.body()).expect("our multipart parses");
    let root = related.root().expect("root part");
    let text = std::str::from_utf8(&root.body).expect("UTF-8 RLMI");
    validate(Usage::Rlmi, text).unwrap_or_else(|e| panic!("invalid RLMI ({e}):\n{text}"));
    let rlmi = Rlmi::parse(text).expect("our RLMI parses");
    for resource in &rlmi.resources {
        for instance in &resource.instances {
            if let Some(cid) = &instance.cid {
                assert!(related.part(cid).is_some(), "cid {cid} has no part");
            }
        }
    }
    rlmi
}

/// Expands `service`, answering every document request the input cannot with "absent".
fn expand_fully(service: &str, given: &Documents) -> List {
    let mut documents = given.clone();
    let mut rounds = 0;
    loop {
        match expand(ALICE, service, &documents, &LIMITS, "/xcap-root") {
            Expansion::Done(list) => return list,
            Expansion::NoService => panic!("a listed service is found"),
            Expansion::Need(needed) => {
                rounds += 1;
                assert!(
                    rounds <= LIMITS.max_documents,
                    "expansion does not converge"
                );
                for document in needed {
                    documents.insert(document, None);
                }
            }
        }
    }
}

/// Answers a NOTIFY with 200.
fn answer_ok(agent: &mut RlsAgent<()>, notify: &rls::Notify<()>, now: Instant) {
    let request = notify.request().expect("the agent writes parseable NOTIFYs");
    let ok = sip_message::response_to(&request, 200, "OK", None).finish(None, b"");
    let ok = Message::parse(ok, &Limits::default()).expect("response");
    agent.on_notify_response(notify.id, &ok, now);
}

fn rlmi_uris(list: &List) -> Vec<String> {
    list.entries
        .iter()
        .map(|e| rls::rlmi_uri(&e.resource_uri()).into_owned())
        .collect()
}

fn subscribe(service: &str) -> Message {
    let text = format!(
        "SUBSCRIBE sip:list@example.com SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.9;branch=z9hG4bK1\r\n\
         From: <{ALICE}>;tag=f1\r\nTo: <sip:list@example.com>\r\nCall-ID: {}@x\r\nCSeq: 1 SUBSCRIBE\r\n\
         Contact: <sip:1@192.0.2.9;transport=tcp>\r\nEvent: presence\r\nSupported: eventlist\r\n\
         Expires: 600\r\nContent-Length: 0\r\n\r\n",
        service.len()
    );
    Message::parse(bytes::Bytes::from(text), &Limits::default()).expect("valid SUBSCRIBE")
}

fuzz_target!(|data: &[u8]| {
    let mut chunks = data.split(|b| *b == 0);
    let mut text = || String::from_utf8_lossy(chunks.next().unwrap_or_default()).into_owned();
    let (rls_services, alice_lists, bob_lists, pidf) = (text(), text(), text(), text());
    let mut given = Documents::new();
    given.insert(
        DocumentRef::index(Auid::RlsServices, ALICE),
        Some(rls_services.clone()),
    );
    given.insert(
        DocumentRef::index(Auid::ResourceLists, ALICE),
        Some(alice_lists),
    );
    given.insert(
        DocumentRef::index(Auid::ResourceLists, BOB),
        Some(bob_lists),
    );
    let now = Instant::now();
    let mut config = Config::new(60, 3600, 3600);
    config.max_notify_body = 2048;
    let mut agent: RlsAgent<()> = RlsAgent::new(config, rand::rngs::StdRng::seed_from_u64(1));
    let flow = Flow {
        dest: (),
        reliable: true,
        via: "SIP/2.0/TCP 192.0.2.1".into(),
        contact: "<sip:192.0.2.1;transport=tcp>".into(),
    };
    // XCAP keeps service URIs unique; a repeated one would only name the first again.
    let mut services = service_uris(&rls_services);
    let mut seen = std::collections::HashSet::new();
    services.retain(|s| seen.insert(service_key(s)));
    for service in services.into_iter().take(4) {
        let list = expand_fully(&service, &given);
        assert!(list.entries.len() <= LIMITS.max_entries);
        let mut keys: Vec<String> = list
            .entries
            .iter()
            .map(|e| service_key(&e.resource_uri()))
            .collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), list.entries.len(), "entries are unique");
        if !list.allows("presence") {
            continue;
        }
        // Echoed as the RLMI writer spells URIs (verbatim unless that would be invalid).
        let uris = rlmi_uris(&list);
        let Subscribe::Opening(opening) =
            agent.on_subscribe(&subscribe(&service), flow.clone(), ALICE, list, now)
        else {
            panic!("the subscription opens");
        };
        let state = ResourceState {
            status: WatchStatus::Active,
            body: Some(Body::new("application/pidf+xml", pidf.clone())),
        };
        let watched: Vec<_> = opening
            .commands
            .iter()
            .filter_map(|c| match c {
                Command::Watch(key) => Some(key.clone()),
                Command::Unwatch(_) => None,
            })
            .collect();
        for key in &watched {
            agent.on_resource_state(key, state.clone(), now);
        }
        let answer = agent.open(opening, now);
        assert_eq!(answer.status, 200);
        let first = read(&answer.notifies[0].request().expect("parseable NOTIFY"));
        assert!(first.full_state && first.version == 0);
        let listed: Vec<&str> = first.resources.iter().map(|r| r.uri.as_str()).collect();
        assert_eq!(listed, uris);
        answer_ok(&mut agent, &answer.notifies[0], now);
        let mut version = 1;
        let mut at = now;
        if let Some(key) = watched.first() {
            let changed = ResourceState {
                status: WatchStatus::Pending,
                body: None,
            };
            agent.on_resource_state(key, changed, at);
            at += Duration::from_secs(1);
            let out = agent.on_timer(at);
            let partial = read(&out.notifies[0].request().expect("parseable NOTIFY"));
            assert!(!partial.full_state && partial.version == version);
            assert!(partial
                .resources
                .iter()
                .any(|r| service_key(&r.uri) == key.resource));
            answer_ok(&mut agent, &out.notifies[0], at);
            version += 1;
        }
        // Bob's document disappears: the list shrinks and goes out as full state.
        let mut shrunk = given.clone();
        shrunk.insert(DocumentRef::index(Auid::ResourceLists, BOB), None);
        let list = expand_fully(&service, &shrunk);
        if !list.allows("presence") {
            continue;
        }
        let uris = rlmi_uris(&list);
        agent.on_list_changed(&service, list, at);
        at += Duration::from_secs(1);
        let out = agent.on_timer(at);
        let full = read(&out.notifies[0].request().expect("parseable NOTIFY"));
        assert!(full.full_state && full.version == version);
        let listed: Vec<&str> = full.resources.iter().map(|r| r.uri.as_str()).collect();
        assert_eq!(listed, uris);
        answer_ok(&mut agent, &out.notifies[0], at);
    }
});
