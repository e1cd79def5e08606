//! XCAP (RFC 4825) at the HTTP level against the running `avail-server` binary: document,
//! element, attribute and namespace operations, every error condition, conditional
//! requests, authentication and access, Blink's own documents, rls-services uniqueness across
//! users, the xcap-directory and crash safety of the write path.

mod xcap_common;

use std::sync::{Arc, Barrier};

use simple_payloads::Usage;
use xcap_common::{corpus, corpus_dir, Alg, Client, XcapServer};

const ALICE: &str = "sip:alice@example.com";
const RL: &str = "application/resource-lists+xml";
const EL: &str = "application/xcap-el+xml";
const ATT: &str = "application/xcap-att+xml";

fn doc(auid: &str) -> String {
    format!("{auid}/users/{ALICE}/index")
}

fn rl_doc() -> String {
    doc("resource-lists")
}

const LISTS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">
  <!-- kept verbatim -->
  <list name="friends">
    <entry uri="sip:bob@example.com"/>
    <entry uri="sip:carol@example.com"/>
  </list>
  <list name="work"/>
</resource-lists>
"#;

fn start() -> XcapServer {
    XcapServer::start(&[("alice", "secret"), ("bob", "hunter2")])
}

fn is_strong_quoted(etag: &Option<String>) -> bool {
    etag.as_deref()
        .is_some_and(|e| e.len() > 2 && e.starts_with('"') && e.ends_with('"'))
}

#[test]
fn document_create_replace_get_head_delete() {
    let server = start();
    let alice = Client::user(&server, "alice", "secret");
    assert_eq!(alice.get(&rl_doc()).status, 404);

    let created = alice.put(&rl_doc(), RL, LISTS.as_bytes());
    assert_eq!(created.status, 201, "{}", created.text());
    assert!(is_strong_quoted(&created.etag), "{:?}", created.etag);

    let got = alice.get(&rl_doc());
    assert_eq!(got.status, 200);
    assert_eq!(got.text(), LISTS, "bytes come back unchanged");
    assert_eq!(got.etag, created.etag);
    assert_eq!(got.content_type.as_deref(), Some(RL));

    let head = alice.request("HEAD", &rl_doc(), &[], None);
    assert_eq!(
        (head.status, head.etag.clone()),
        (200, created.etag.clone())
    );

    let replaced = alice.put(&rl_doc(), RL, LISTS.replace("work", "home").as_bytes());
    assert_eq!(replaced.status, 200);
    assert!(is_strong_quoted(&replaced.etag));
    assert_ne!(replaced.etag, created.etag);

    let deleted = alice.delete(&rl_doc());
    assert_eq!(deleted.status, 200);
    assert_eq!(alice.get(&rl_doc()).status, 404);
    assert_eq!(alice.delete(&rl_doc()).status, 404);

    // The XUI may be percent-encoded: same document.
    alice.put(&rl_doc(), RL, LISTS.as_bytes());
    let encoded = alice.get("resource-lists/users/sip%3Aalice%40example.com/index");
    assert_eq!((encoded.status, encoded.text()), (200, LISTS.to_owned()));
}

#[test]
fn elements_attributes_namespaces_and_positional_inserts() {
    let server = start();
    let alice = Client::user(&server, "alice", "secret");
    assert_eq!(alice.put(&rl_doc(), RL, LISTS.as_bytes()).status, 201);
    let base = format!("{}/~~/resource-lists", rl_doc());

    // Element GET by attribute test, by position, and by both.
    let by_name = alice.get(&format!(
        "{base}/list%5B@name=%22friends%22%5D/entry%5B2%5D"
    ));
    assert_eq!(by_name.status, 200);
    assert_eq!(by_name.text(), r#"<entry uri="sip:carol@example.com"/>"#);
    assert_eq!(by_name.content_type.as_deref(), Some(EL));
    let document_etag = alice.get(&rl_doc()).etag;
    assert_eq!(
        by_name.etag, document_etag,
        "node GETs carry the document ETag"
    );
    let both = alice.get(&format!(
        "{base}/list%5B1%5D/entry%5B@uri=%22sip:bob@example.com%22%5D"
    ));
    assert_eq!(both.text(), r#"<entry uri="sip:bob@example.com"/>"#);
    assert_eq!(alice.get(&format!("{base}/list%5B9%5D")).status, 404);

    // Positional insert: a third entry is appended after the second.
    let third = format!("{base}/list%5B@name=%22friends%22%5D/entry%5B3%5D");
    let put = alice.put(&third, EL, br#"<entry uri="sip:dave@example.com"/>"#);
    assert_eq!(put.status, 201, "{}", put.text());
    assert_ne!(put.etag, document_etag);
    let text = alice.get(&rl_doc()).text();
    let (bob, carol, dave) = (
        text.find("sip:bob@").unwrap(),
        text.find("sip:carol@").unwrap(),
        text.find("sip:dave@").unwrap(),
    );
    assert!(bob < carol && carol < dave, "{text}");
    assert!(text.contains("<!-- kept verbatim -->"));
    // Insert by attribute test: a new list after the existing ones.
    let new_list = format!("{base}/list%5B@name=%22family%22%5D");
    assert_eq!(
        alice.put(&new_list, EL, br#"<list name="family"/>"#).status,
        201
    );
    // Replacing an element is 200.
    let replace = alice.put(
        &new_list,
        EL,
        br#"<list name="family"><entry uri="sip:mum@example.com"/></list>"#,
    );
    assert_eq!(replace.status, 200, "{}", replace.text());
    assert!(alice.get(&new_list).text().contains("sip:mum@"));

    // Attributes: replace, create (foreign namespace), read, delete.
    let name_attr = format!("{base}/list%5B2%5D/@name");
    assert_eq!(alice.get(&name_attr).text(), "work");
    assert_eq!(alice.get(&name_attr).content_type.as_deref(), Some(ATT));
    assert_eq!(alice.put(&name_attr, ATT, b"office").status, 200);
    assert_eq!(alice.get(&name_attr).text(), "office");
    let foreign = format!("{base}/list%5B2%5D/@x:colour?xmlns(x=urn:example:x)");
    assert_eq!(alice.put(&foreign, ATT, b"blue").status, 201);
    assert_eq!(alice.get(&foreign).text(), "blue");
    assert!(alice
        .get(&rl_doc())
        .text()
        .contains("xmlns:x=\"urn:example:x\""));
    assert_eq!(alice.delete(&foreign).status, 200);
    assert_eq!(alice.get(&foreign).status, 404);
    assert_eq!(alice.delete(&foreign).status, 404);

    // Namespace bindings of an element.
    let ns = alice.get(&format!("{base}/list%5B1%5D/namespace::*"));
    assert_eq!(ns.status, 200);
    assert_eq!(ns.content_type.as_deref(), Some("application/xcap-ns+xml"));
    assert!(
        ns.text().contains("urn:ietf:params:xml:ns:resource-lists"),
        "{}",
        ns.text()
    );
    // ... which cannot be written.
    assert_eq!(
        alice
            .put(&format!("{base}/list%5B1%5D/namespace::*"), EL, b"<x/>")
            .status,
        405
    );

    // Element DELETE, then the element is gone and the rest untouched.
    let dave = format!("{base}/list%5B1%5D/entry%5B@uri=%22sip:dave@example.com%22%5D");
    let deleted = alice.delete(&dave);
    assert_eq!(deleted.status, 200);
    assert!(is_strong_quoted(&deleted.etag));
    assert_eq!(alice.get(&dave).status, 404);
    assert_eq!(deleted.etag, alice.get(&rl_doc()).etag);
}

#[test]
fn every_error_condition_gets_its_status_and_body() {
    let server = start();
    let alice = Client::user(&server, "alice", "secret");
    assert_eq!(alice.put(&rl_doc(), RL, LISTS.as_bytes()).status, 201);
    let base = format!("{}/~~/resource-lists", rl_doc());
    let expect = |reply: xcap_common::Reply, element: &str| {
        assert_eq!(reply.status, 409, "{element}: {}", reply.text());
        assert_eq!(
            reply.content_type.as_deref(),
            Some("application/xcap-error+xml")
        );
        assert_eq!(
            reply.xcap_error().as_deref(),
            Some(element),
            "{}",
            reply.text()
        );
        reply
    };

    expect(
        alice.put(&rl_doc(), RL, b"<resource-lists"),
        "not-well-formed",
    );
    expect(
        alice.put(
            &format!("{base}/list%5B3%5D"),
            EL,
            b"<list name=\"a\"/><list name=\"b\"/>",
        ),
        "not-xml-frag",
    );
    let no_parent = expect(
        alice.put(
            &format!("{base}/list%5B@name=%22none%22%5D/entry"),
            EL,
            b"<entry uri=\"sip:x@example.com\"/>",
        ),
        "no-parent",
    );
    let ancestor = format!("<ancestor>{}/{base}</ancestor>", server.http_root());
    assert!(no_parent.text().contains(&ancestor), "{}", no_parent.text());
    expect(
        alice.put(&format!("{base}/list%5B1%5D/entry%5B3%5D"), EL, b"<entry/>"),
        "schema-validation-error",
    );
    expect(
        alice.put(&format!("{base}/list%5B1%5D/@name"), ATT, b"a\"b<"),
        "not-xml-att-value",
    );
    // The body would not be selected by the URI afterwards.
    expect(
        alice.put(
            &format!("{base}/list%5B@name=%22x%22%5D"),
            EL,
            b"<list name=\"y\"/>",
        ),
        "cannot-insert",
    );
    expect(alice.delete(&base), "cannot-delete");
    let unique = expect(
        alice.put(&format!("{base}/list%5B3%5D"), EL, b"<list name=\"work\"/>"),
        "uniqueness-failure",
    );
    assert!(
        unique.text().contains("<alt-value>work-2</alt-value>"),
        "{}",
        unique.text()
    );
    expect(
        alice.put(&rl_doc(), RL, b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><list name=\"\xe9\"/></resource-lists>"),
        "not-utf-8",
    );
    let icon =
        doc("org.openmobilealliance.pres-content").replace("/index", "/oma_status-icon/index");
    expect(
        alice.put(
            &icon,
            "application/vnd.oma.pres-content+xml",
            b"<content xmlns=\"urn:oma:xml:prs:pres-content\"><mime-type>text/html</mime-type><encoding>base64</encoding><data>aGk=</data></content>",
        ),
        "constraint-failure",
    );

    // Plain statuses.
    assert_eq!(
        alice
            .put(&rl_doc(), "application/xml", LISTS.as_bytes())
            .status,
        415
    );
    assert_eq!(
        alice
            .put(&format!("{base}/list%5B3%5D"), RL, b"<list name=\"z\"/>")
            .status,
        415
    );
    assert_eq!(alice.get(&format!("{base}/nothing")).status, 404);
    assert_eq!(alice.get(&doc("no-such-auid")).status, 404);
    let caps = alice.put(
        "xcap-caps/global/index",
        "application/xcap-caps+xml",
        b"<x/>",
    );
    assert_eq!(caps.status, 405);
    assert_eq!(caps.allow.as_deref(), Some("GET, HEAD"));
    assert_eq!(alice.delete("xcap-caps/global/index").status, 405);
    assert_eq!(
        alice
            .put("resource-lists/global/index", RL, LISTS.as_bytes())
            .status,
        403
    );
    // Nothing above changed the document.
    assert_eq!(alice.get(&rl_doc()).text(), LISTS);
}

#[test]
fn conditional_requests_on_every_method() {
    let server = start();
    let alice = Client::user(&server, "alice", "secret");
    let path = rl_doc();
    let put = |headers: &[(&str, &str)], body: &str| {
        alice.request("PUT", &path, headers, Some((RL, body.as_bytes())))
    };
    // If-Match on a missing document fails, If-None-Match: * creates.
    assert_eq!(put(&[("If-Match", "*")], LISTS).status, 412);
    assert_eq!(
        alice
            .request("GET", &path, &[("If-Match", "*")], None)
            .status,
        412
    );
    let created = put(&[("If-None-Match", "*")], LISTS);
    assert_eq!(created.status, 201);
    let etag = created.etag.clone().unwrap();
    assert_eq!(put(&[("If-None-Match", "*")], LISTS).status, 412);

    // GET: 304 on a matching If-None-Match (with the ETag), 412 on a failed If-Match.
    let not_modified = alice.request("GET", &path, &[("If-None-Match", &etag)], None);
    assert_eq!(not_modified.status, 304);
    assert_eq!(not_modified.etag.as_deref(), Some(etag.as_str()));
    assert!(not_modified.body.is_empty());
    assert_eq!(
        alice
            .request("GET", &path, &[("If-None-Match", "*")], None)
            .status,
        304
    );
    assert_eq!(
        alice
            .request("GET", &path, &[("If-None-Match", "\"other\"")], None)
            .status,
        200
    );
    assert_eq!(
        alice
            .request("GET", &path, &[("If-Match", "\"other\"")], None)
            .status,
        412
    );
    assert_eq!(
        alice
            .request("GET", &path, &[("If-Match", &etag)], None)
            .status,
        200
    );
    let node = format!("{path}/~~/resource-lists/list%5B1%5D");
    assert_eq!(
        alice
            .request("GET", &node, &[("If-None-Match", &etag)], None)
            .status,
        304
    );
    assert_eq!(
        alice
            .request("HEAD", &path, &[("If-None-Match", &etag)], None)
            .status,
        304
    );

    // PUT: stale If-Match and matching If-None-Match fail; the current ETag succeeds.
    assert_eq!(put(&[("If-Match", "\"stale\"")], LISTS).status, 412);
    assert_eq!(put(&[("If-None-Match", &etag)], LISTS).status, 412);
    let element = alice.request(
        "PUT",
        &format!("{path}/~~/resource-lists/list%5B3%5D"),
        &[("If-Match", &etag)],
        Some((EL, b"<list name=\"new\"/>")),
    );
    assert_eq!(element.status, 201);
    let etag2 = element.etag.clone().unwrap();
    let stale_element = alice.request(
        "PUT",
        &format!("{path}/~~/resource-lists/list%5B4%5D"),
        &[("If-Match", &etag)],
        Some((EL, b"<list name=\"newer\"/>")),
    );
    assert_eq!(stale_element.status, 412);
    assert_eq!(put(&[("If-Match", "*")], LISTS).status, 200);
    let etag3 = alice.get(&path).etag.unwrap();
    assert_ne!(etag2, etag3);

    // DELETE: same rules, for nodes and documents.
    let node_delete = |headers: &[(&str, &str)]| alice.request("DELETE", &node, headers, None);
    assert_eq!(node_delete(&[("If-Match", &etag2)]).status, 412);
    assert_eq!(node_delete(&[("If-None-Match", &etag3)]).status, 412);
    assert_eq!(node_delete(&[("If-None-Match", "*")]).status, 412);
    assert_eq!(
        alice
            .request("DELETE", &path, &[("If-Match", "\"x\"")], None)
            .status,
        412
    );
    assert_eq!(
        alice
            .request("DELETE", &path, &[("If-Match", &etag3)], None)
            .status,
        200
    );
    assert_eq!(
        alice
            .request("DELETE", &path, &[("If-Match", "*")], None)
            .status,
        412
    );
}

#[test]
fn concurrent_conditional_puts_exactly_one_wins() {
    let server = start();
    let root = server.http_root();
    let alice = Client::user(&server, "alice", "secret");
    let mut etag = alice.put(&rl_doc(), RL, LISTS.as_bytes()).etag.unwrap();
    for round in 0..3 {
        let writers = 6;
        let barrier = Arc::new(Barrier::new(writers));
        let threads: Vec<_> = (0..writers)
            .map(|i| {
                let (root, etag, barrier) = (root.clone(), etag.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let client = Client::new(root, "alice", "secret");
                    let body = LISTS.replace("work", &format!("w{round}-{i}"));
                    barrier.wait();
                    client.request(
                        "PUT",
                        &rl_doc(),
                        &[("If-Match", &etag)],
                        Some((RL, body.as_bytes())),
                    )
                })
            })
            .collect();
        let replies: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let winners: Vec<_> = replies.iter().filter(|r| r.status == 200).collect();
        assert_eq!(
            winners.len(),
            1,
            "round {round}: {:?}",
            replies.iter().map(|r| r.status).collect::<Vec<_>>()
        );
        assert!(replies.iter().all(|r| r.status == 200 || r.status == 412));
        etag = winners[0].etag.clone().unwrap();
        assert_eq!(alice.get(&rl_doc()).etag.as_deref(), Some(etag.as_str()));
    }
}

#[test]
fn authentication_and_access_rules() {
    let server = start();
    let anonymous = Client::anonymous(&server);
    let alice = Client::user(&server, "alice", "secret");
    let bob = Client::user(&server, "bob", "hunter2");

    let challenge = anonymous.get(&rl_doc());
    assert_eq!(challenge.status, 401);
    assert_eq!(challenge.challenges.len(), 2, "{:?}", challenge.challenges);
    assert!(
        challenge.challenges[0].contains("algorithm=MD5"),
        "MD5 first"
    );
    assert!(challenge.challenges[1].contains("algorithm=SHA-256"));
    assert!(challenge
        .challenges
        .iter()
        .all(|c| c.contains("realm=\"example.com\"") && c.contains("qop=\"auth\"")));
    assert_eq!(
        Client::user(&server, "alice", "wrong")
            .get(&rl_doc())
            .status,
        401
    );
    assert_eq!(
        Client::user(&server, "nobody", "x").get(&rl_doc()).status,
        401
    );

    assert_eq!(alice.put(&rl_doc(), RL, LISTS.as_bytes()).status, 201);
    let mut sha = Client::user(&server, "alice", "secret");
    sha.algorithm = Alg::Sha256;
    assert_eq!(sha.get(&rl_doc()).status, 200);

    // Another user's tree: authenticated, but forbidden, for reads and writes.
    assert_eq!(bob.get(&rl_doc()).status, 403);
    assert_eq!(bob.put(&rl_doc(), RL, LISTS.as_bytes()).status, 403);
    assert_eq!(bob.delete(&rl_doc()).status, 403);
    assert_eq!(alice.get(&rl_doc()).text(), LISTS);

    // Basic: refused in clear text, accepted over TLS.
    let mut basic_http = Client::user(&server, "alice", "secret");
    basic_http.basic = true;
    let refused = basic_http.get(&rl_doc());
    assert_eq!(refused.status, 401);
    assert!(refused.challenges.iter().all(|c| !c.starts_with("Basic")));
    let mut basic_tls = Client::new(server.https_root(), "alice", "secret");
    basic_tls.basic = true;
    assert_eq!(basic_tls.get(&rl_doc()).status, 200);
    let tls_challenge = Client::new(server.https_root(), "x", "y").get(&rl_doc());
    assert!(tls_challenge
        .challenges
        .last()
        .unwrap()
        .starts_with("Basic realm=\"example.com\""));
    let digest_tls = Client::new(server.https_root(), "alice", "secret");
    assert_eq!(digest_tls.get(&rl_doc()).text(), LISTS);

    // pres-content: public GET, authenticated writes.
    let icon =
        doc("org.openmobilealliance.pres-content").replace("/index", "/oma_status-icon/index");
    let body = corpus("pres-content", "valid", "blink-icon.xml");
    let ct = "application/vnd.oma.pres-content+xml";
    assert_eq!(anonymous.put(&icon, ct, &body).status, 401);
    assert_eq!(bob.put(&icon, ct, &body).status, 403);
    assert_eq!(alice.put(&icon, ct, &body).status, 201);
    let public = anonymous.get(&icon);
    assert_eq!((public.status, public.body.clone()), (200, body.clone()));
    assert_eq!(anonymous.delete(&icon).status, 401);

    // The global tree is readable by anyone and writable by no one.
    let caps = anonymous.get("xcap-caps/global/index");
    assert_eq!(caps.status, 200);
    assert_eq!(
        caps.content_type.as_deref(),
        Some("application/xcap-caps+xml")
    );
    assert!(is_strong_quoted(&caps.etag));
    simple_payloads::validate(Usage::XcapCaps, &caps.text()).expect("schema-valid xcap-caps");
    for auid in [
        "resource-lists",
        "rls-services",
        "org.openmobilealliance.pres-rules",
        "pidf-manipulation",
        "org.openmobilealliance.pres-content",
    ] {
        assert!(
            caps.text().contains(&format!("<auid>{auid}</auid>")),
            "{auid}"
        );
    }
    assert_eq!(
        alice
            .put("resource-lists/global/index", RL, LISTS.as_bytes())
            .status,
        403
    );
}

/// Blink's documents (blink-compat §1.2, §1.5, §1.6, §3.3, §3.4) in the order Blink writes
/// them, read back byte for byte; then broken and schema-invalid variants.
#[test]
fn blink_documents_round_trip_and_invalid_variants_are_refused() {
    let server = start();
    let alice = Client::user(&server, "alice", "secret");
    let icon_path =
        doc("org.openmobilealliance.pres-content").replace("/index", "/oma_status-icon/index");
    let documents = [
        (
            doc("resource-lists"),
            RL,
            "resource-lists",
            "blink-normalised-addressbook.xml",
        ),
        (
            doc("rls-services"),
            "application/rls-services+xml",
            "rls-services",
            "blink-services.xml",
        ),
        (
            doc("org.openmobilealliance.pres-rules"),
            "application/auth-policy+xml",
            "pres-rules",
            "blink-rules.xml",
        ),
        (
            doc("pidf-manipulation"),
            "application/pidf+xml",
            "pidf-manipulation",
            "blink-qt-offline.xml",
        ),
        (
            icon_path.clone(),
            "application/vnd.oma.pres-content+xml",
            "pres-content",
            "blink-icon.xml",
        ),
    ];
    for (path, ct, usage, name) in &documents {
        let body = corpus(usage, "valid", name);
        let put = alice.request("PUT", path, &[("If-None-Match", "*")], Some((ct, &body)));
        assert_eq!(put.status, 201, "{name}: {}", put.text());
        let got = alice.get(path);
        assert_eq!(got.body, body, "{name} comes back unchanged");
        assert_eq!(got.etag, put.etag);
        assert_eq!(got.content_type.as_deref(), Some(*ct));
    }
    // Cocoa's offline note, the py2 icon and a 300 KiB icon replace them.
    for (path, ct, usage, name) in [
        (
            &documents[3].0,
            documents[3].1,
            "pidf-manipulation",
            "blink-cocoa-offline-note.xml",
        ),
        (
            &icon_path,
            documents[4].1,
            "pres-content",
            "py2-wrapped-base64.xml",
        ),
        (&icon_path, documents[4].1, "pres-content", "large-300k.xml"),
    ] {
        let body = corpus(usage, "valid", name);
        assert_eq!(alice.put(path, ct, &body).status, 200, "{name}");
        assert_eq!(alice.get(path).body, body, "{name}");
    }

    // Truncated documents are not well-formed; every invalid corpus document is refused
    // with a 409 body and leaves the stored document alone.
    for (path, ct, usage, name) in &documents {
        let before = alice.get(path);
        let good = corpus(usage, "valid", name);
        let truncated = &good[..good.len() / 2];
        let reply = alice.put(path, ct, truncated);
        assert_eq!(reply.status, 409);
        assert_eq!(
            reply.xcap_error().as_deref(),
            Some("not-well-formed"),
            "{name}"
        );
        for (bad, body) in corpus_dir(usage, "invalid") {
            let reply = alice.put(path, ct, &body);
            assert_eq!(reply.status, 409, "{usage}/{bad}: {}", reply.text());
            let element = reply.xcap_error().unwrap_or_default();
            assert!(
                [
                    "schema-validation-error",
                    "not-well-formed",
                    "constraint-failure"
                ]
                .contains(&element.as_str()),
                "{usage}/{bad}: {element}"
            );
        }
        assert_eq!(alice.get(path).body, before.body, "{name} untouched");
    }
}

#[test]
fn rls_services_uniqueness_across_users_and_resource_list_resolution() {
    let server = start();
    let alice = Client::user(&server, "alice", "secret");
    let bob = Client::user(&server, "bob", "hunter2");
    let rls = "application/rls-services+xml";
    let inline = |uri: &str| {
        format!(
            "<rls-services xmlns=\"urn:ietf:params:xml:ns:rls-services\" xmlns:rl=\"urn:ietf:params:xml:ns:resource-lists\">\
             <service uri=\"{uri}\"><list><rl:entry uri=\"sip:x@example.com\"/></list><packages><package>presence</package></packages></service>\
             </rls-services>"
        )
    };
    let bob_doc = "rls-services/users/sip:bob@example.com/index";
    assert_eq!(
        alice
            .put(
                &doc("rls-services"),
                rls,
                inline("sip:team@example.com").as_bytes()
            )
            .status,
        201
    );
    // Bob cannot take the same service URI, even percent-encoded.
    let taken = bob.put(bob_doc, rls, inline("sip%3Ateam%40example.com").as_bytes());
    assert_eq!(taken.status, 409);
    assert_eq!(taken.xcap_error().as_deref(), Some("uniqueness-failure"));
    assert!(
        taken.text().contains("field=\"rls-services/service/@uri\""),
        "{}",
        taken.text()
    );
    assert!(
        taken
            .text()
            .contains("<alt-value>sip:team-2@example.com</alt-value>"),
        "{}",
        taken.text()
    );
    assert_eq!(bob.get(bob_doc).status, 404);
    assert_eq!(
        bob.put(bob_doc, rls, inline("sip:team-2@example.com").as_bytes())
            .status,
        201
    );
    // Alice freeing the URI lets bob have it.
    assert_eq!(alice.delete(&doc("rls-services")).status, 200);
    assert_eq!(
        bob.put(bob_doc, rls, inline("sip:team@example.com").as_bytes())
            .status,
        200
    );

    // <resource-list> must resolve to an existing list (percent-decoded, blink-compat §0).
    let by_reference = |list: &str| {
        format!(
            "<rls-services xmlns=\"urn:ietf:params:xml:ns:rls-services\"><service uri=\"sip%3Aalice%2Bpresence%40example.com\">\
             <resource-list>https%3A//xcap.example.com/xcap-root/resource-lists/users/sip%3Aalice%40example.com/index/~~/resource-lists/list%5B%40name%3D%22{list}%22%5D</resource-list>\
             </service></rls-services>"
        )
    };
    let dangling = alice.put(
        &doc("rls-services"),
        rls,
        by_reference("friends").as_bytes(),
    );
    assert_eq!(dangling.status, 409);
    assert_eq!(dangling.xcap_error().as_deref(), Some("constraint-failure"));
    assert_eq!(alice.put(&rl_doc(), RL, LISTS.as_bytes()).status, 201);
    assert_eq!(
        alice
            .put(
                &doc("rls-services"),
                rls,
                by_reference("friends").as_bytes()
            )
            .status,
        201
    );
    let missing = alice.put(&doc("rls-services"), rls, by_reference("nope").as_bytes());
    assert_eq!(missing.xcap_error().as_deref(), Some("constraint-failure"));
}

#[test]
fn xcap_directory_lists_the_users_documents_with_etags() {
    let server = start();
    let alice = Client::user(&server, "alice", "secret");
    let bob = Client::user(&server, "bob", "hunter2");
    let directory = format!("org.openmobilealliance.xcap-directory/users/{ALICE}/directory.xml");
    let empty = alice.get(&directory);
    assert_eq!(empty.status, 200);
    assert_eq!(
        empty.content_type.as_deref(),
        Some("application/vnd.oma.xcap-directory+xml")
    );
    assert!(!empty.text().contains("<entry"));

    let lists = alice.put(&rl_doc(), RL, LISTS.as_bytes()).etag.unwrap();
    let rules = corpus("pres-rules", "valid", "blink-rules.xml");
    let rules_etag = alice
        .put(
            &doc("org.openmobilealliance.pres-rules"),
            "application/auth-policy+xml",
            &rules,
        )
        .etag
        .unwrap();
    bob.put(
        "resource-lists/users/sip:bob@example.com/index",
        RL,
        LISTS.as_bytes(),
    );

    let listing = alice.get(&directory);
    let text = listing.text();
    simple_payloads::validate(Usage::XcapDirectory, &text).expect("schema-valid directory");
    let parsed = roxmltree::Document::parse(&text).unwrap();
    let entries: Vec<(String, String)> = parsed
        .descendants()
        .filter(|n| n.has_tag_name("entry"))
        .map(|n| {
            (
                n.attribute("uri").unwrap().to_owned(),
                n.attribute("etag").unwrap().to_owned(),
            )
        })
        .collect();
    let root = server.http_root();
    assert_eq!(
        entries,
        // Folders come in xcap-caps order.
        vec![
            (
                format!("{root}/resource-lists/users/{ALICE}/index"),
                lists.trim_matches('"').to_owned()
            ),
            (
                format!("{root}/org.openmobilealliance.pres-rules/users/{ALICE}/index"),
                rules_etag.trim_matches('"').to_owned()
            ),
        ],
        "{text}"
    );
    assert_ne!(
        listing.etag, empty.etag,
        "the directory ETag follows its content"
    );
    assert_eq!(bob.get(&directory).status, 403);
    let put = alice.put(
        &directory,
        "application/vnd.oma.xcap-directory+xml",
        text.as_bytes(),
    );
    assert_eq!(put.status, 405);
}

/// The write path is one transaction: a server killed in the middle of a stream of PUTs
/// restarts with a document that is one of the written versions, under its own ETag.
#[test]
fn killing_the_server_during_writes_leaves_a_consistent_document() {
    let server = start();
    let root = server.http_root();
    let alice = Client::user(&server, "alice", "secret");
    assert_eq!(alice.put(&rl_doc(), RL, LISTS.as_bytes()).status, 201);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let client = Client::new(root, "alice", "secret");
            let mut written = vec![LISTS.to_owned()];
            for i in 0.. {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let body = LISTS.replace("work", &format!("v{i}"));
                written.push(body.clone());
                if client.try_put(&rl_doc(), RL, body.as_bytes()).is_none() {
                    break;
                }
            }
            written
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(700));
    let (data_dir, temp) = server.kill();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = writer.join().unwrap();
    assert!(written.len() > 2, "the writer got some PUTs in");

    let server = XcapServer::launch(data_dir, temp);
    let alice = Client::user(&server, "alice", "secret");
    let got = alice.get(&rl_doc());
    assert_eq!(got.status, 200);
    assert!(written.contains(&got.text()), "a complete written version");
    assert_eq!(
        got.etag.as_deref(),
        Some(xcap::etag_for(&got.body).as_str())
    );
    assert!(roxmltree::Document::parse(&got.text()).is_ok());
}
