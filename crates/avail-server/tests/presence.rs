//! The presence agent on the wire, over TCP against the running binary: PUBLISH (RFC 3903),
//! presence subscriptions (RFC 6665, RFC 3856) with composition, authorization from
//! pres-rules written through XCAP (RFC 5025), and watcher information (RFC 3857/3858).

mod ua;
mod xcap_common;

use ua::{body, header, Ua};
use xcap_common::common::{unique, Server, DOMAIN};

const PIDF_TYPE: &str = "application/pidf+xml";

fn pidf(entity: &str, tuple: &str, note: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"{entity}\">\
         <tuple id=\"{tuple}\"><status><basic>open</basic></status><note>{note}</note></tuple>\
         </presence>"
    )
}

fn pidf_headers() -> String {
    format!("Content-Type: {PIDF_TYPE}\r\nExpires: 600\r\n")
}

/// pres-rules giving each `(watcher, sub-handling)` its handling by identity.
fn rules(entries: &[(&str, &str)]) -> String {
    let mut doc = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<cp:ruleset \
         xmlns:cp=\"urn:ietf:params:xml:ns:common-policy\" \
         xmlns:pr=\"urn:ietf:params:xml:ns:pres-rules\">",
    );
    for (i, (watcher, handling)) in entries.iter().enumerate() {
        doc.push_str(&format!(
            "<cp:rule id=\"r{i}\"><cp:conditions><cp:identity><cp:one id=\"{watcher}\"/>\
             </cp:identity></cp:conditions><cp:actions><pr:sub-handling>{handling}\
             </pr:sub-handling></cp:actions><cp:transformations/></cp:rule>"
        ));
    }
    doc.push_str("</cp:ruleset>");
    doc
}

fn put_rules(root: &str, entries: &[(&str, &str)]) {
    let alice = xcap_common::Client::new(root.to_owned(), "alice", "secret");
    let reply = alice.put(
        &format!("org.openmobilealliance.pres-rules/users/sip:alice@{DOMAIN}/index"),
        "application/auth-policy+xml",
        rules(entries).as_bytes(),
    );
    assert!(
        reply.status == 200 || reply.status == 201,
        "pres-rules PUT: {} {}",
        reply.status,
        reply.text()
    );
}

const USERS: &[(&str, &str)] = &[("alice", "secret"), ("bob", "bobpw"), ("carol", "carolpw")];

#[test]
fn publish_initial_refresh_modify_remove_and_errors() {
    let server = Server::start(USERS);
    let mut alice = Ua::new(&server, "alice", "secret");
    let me = alice.aor();

    let initial = alice.publish(&me, &pidf_headers(), &pidf(&me, "t1", "one"));
    assert_eq!(initial.status(), Some(200));
    let etag = header(&initial, "SIP-ETag");
    assert!(!etag.is_empty());
    assert_eq!(header(&initial, "Expires"), "600");

    let refresh = alice.publish(
        &me,
        &format!("SIP-If-Match: {etag}\r\nExpires: 600\r\n"),
        "",
    );
    assert_eq!(refresh.status(), Some(200));
    let etag2 = header(&refresh, "SIP-ETag");
    assert_ne!(etag2, etag, "a refresh gets a new entity tag");

    let modify = alice.publish(
        &me,
        &format!("SIP-If-Match: {etag2}\r\n{}", pidf_headers()),
        &pidf(&me, "t1", "two"),
    );
    assert_eq!(modify.status(), Some(200));
    let etag3 = header(&modify, "SIP-ETag");

    let stale = alice.publish(
        &me,
        &format!("SIP-If-Match: {etag}\r\nExpires: 600\r\n"),
        "",
    );
    assert_eq!(stale.status(), Some(412), "the replaced tag is gone");

    let remove = alice.publish(&me, &format!("SIP-If-Match: {etag3}\r\nExpires: 0\r\n"), "");
    assert_eq!(remove.status(), Some(200));
    assert_eq!(header(&remove, "Expires"), "0");
    let again = alice.publish(
        &me,
        &format!("SIP-If-Match: {etag3}\r\nExpires: 600\r\n"),
        "",
    );
    assert_eq!(again.status(), Some(412));

    let short = alice.publish(
        &me,
        &format!("Content-Type: {PIDF_TYPE}\r\nExpires: 5\r\n"),
        &pidf(&me, "t1", "x"),
    );
    assert_eq!(short.status(), Some(423));
    assert_eq!(header(&short, "Min-Expires"), "60");

    let n = unique();
    let wrong_event = alice.send(
        "PUBLISH",
        &me,
        &format!("ev-{n}"),
        "t",
        None,
        1,
        &format!("Event: dialog\r\n{}", pidf_headers()),
        &pidf(&me, "t1", "x"),
    );
    assert_eq!(wrong_event.status(), Some(489));

    let text = alice.publish(&me, "Content-Type: text/plain\r\nExpires: 600\r\n", "hello");
    assert_eq!(text.status(), Some(415));
    assert!(header(&text, "Accept").contains(PIDF_TYPE));

    let broken = alice.publish(
        &me,
        &pidf_headers(),
        "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\"",
    );
    assert_eq!(broken.status(), Some(400));

    let mut bob = Ua::new(&server, "bob", "bobpw");
    let foreign = bob.publish(&me, &pidf_headers(), &pidf(&me, "t1", "forged"));
    assert_eq!(foreign.status(), Some(403), "only the owner publishes");

    let mut mallory = Ua::new(&server, "alice", "wrong");
    let unauthenticated = mallory.publish(&me, &pidf_headers(), &pidf(&me, "t1", "x"));
    assert_eq!(unauthenticated.status(), Some(401));
}

#[test]
fn two_devices_compose_into_one_document_with_unique_ids() {
    let server = Server::start(USERS);
    let mut laptop = Ua::new(&server, "alice", "secret");
    let mut phone = Ua::new(&server, "alice", "secret");
    let me = laptop.aor();
    let person = "<dm:person xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" id=\"p1\"/>";
    let doc = |tuple: &str, note: &str| {
        pidf(&me, tuple, note).replace("</presence>", &format!("{person}</presence>"))
    };
    // Every Blink instance publishes the same person id: the newest one is kept.
    assert_eq!(
        laptop
            .publish(&me, &pidf_headers(), &doc("t-laptop", "laptop"))
            .status(),
        Some(200)
    );
    assert_eq!(
        phone
            .publish(&me, &pidf_headers(), &doc("t-phone", "phone"))
            .status(),
        Some(200)
    );

    let (ok, _) = laptop.subscribe(&me, "presence", "Expires: 600\r\n");
    assert_eq!(ok.status(), Some(200));
    assert!(
        !header(&ok, "Contact").is_empty(),
        "2xx to SUBSCRIBE has a Contact"
    );
    let notify = laptop.notify();
    assert!(header(&notify, "Subscription-State").starts_with("active"));
    assert_eq!(header(&notify, "Content-Type"), PIDF_TYPE);
    let text = body(&notify);
    assert!(text.contains(&format!("entity=\"{me}\"")), "{text}");
    assert!(text.contains("laptop") && text.contains("phone"), "{text}");
    assert_eq!(
        text.matches("id=\"p1\"").count(),
        1,
        "one person id: {text}"
    );
    assert_eq!(text.matches("<tuple").count(), 2, "{text}");
}

#[test]
fn subscribe_notify_refresh_unsubscribe_and_errors() {
    let server = Server::start(USERS);
    let mut alice = Ua::new(&server, "alice", "secret");
    let me = alice.aor();
    alice.publish(&me, &pidf_headers(), &pidf(&me, "t1", "first"));

    let (ok, mut dialog) = alice.subscribe(&me, "presence", "Expires: 600\r\n");
    assert_eq!(ok.status(), Some(200));
    assert_eq!(header(&ok, "Expires"), "600");
    let first = alice.notify();
    assert!(body(&first).contains("first"));

    // A new publication reaches the watcher.
    alice.publish(&me, &pidf_headers(), &pidf(&me, "t2", "second"));
    let update = alice.notify();
    assert!(body(&update).contains("second"), "{}", body(&update));

    let refresh = alice.resubscribe(&mut dialog, 600);
    assert_eq!(refresh.status(), Some(200));
    assert!(!header(&refresh, "Contact").is_empty());
    assert!(header(&alice.notify(), "Subscription-State").starts_with("active"));

    let gone = alice.resubscribe(&mut dialog, 0);
    assert_eq!(gone.status(), Some(200));
    let last = alice.notify();
    assert_eq!(
        header(&last, "Subscription-State"),
        "terminated;reason=timeout"
    );
    assert_eq!(alice.resubscribe(&mut dialog, 600).status(), Some(481));

    let (short, _) = alice.subscribe(&me, "presence", "Expires: 5\r\n");
    assert_eq!(short.status(), Some(423));
    assert_eq!(header(&short, "Min-Expires"), "60");
    let (mwi, _) = alice.subscribe(&me, "message-summary", "");
    assert_eq!(mwi.status(), Some(489));
    assert!(header(&mwi, "Allow-Events").contains("presence"));
    assert!(header(&mwi, "Allow-Events").contains("xcap-diff"));
}

#[test]
fn pres_rules_through_xcap_authorize_watchers() {
    let (server, root) = Server::start_with_xcap(USERS);
    let mut alice = Ua::new(&server, "alice", "secret");
    let me = alice.aor();
    alice.publish(&me, &pidf_headers(), &pidf(&me, "t1", "secret-note"));

    // No pres-rules: confirm, so bob is pending and sees nothing.
    let mut bob = Ua::new(&server, "bob", "bobpw");
    let (ok, _) = bob.subscribe(&me, "presence", "Expires: 600\r\n");
    assert_eq!(ok.status(), Some(200));
    let pending = bob.notify();
    assert!(header(&pending, "Subscription-State").starts_with("pending"));
    assert!(pending.body().is_empty());

    // Allowing bob activates the pending subscription at once.
    let mut carol = Ua::new(&server, "carol", "carolpw");
    put_rules(
        &root,
        &[
            ("sip:bob@example.com", "allow"),
            ("sip:carol@example.com", "polite-block"),
        ],
    );
    let active = bob.notify();
    assert!(header(&active, "Subscription-State").starts_with("active"));
    assert!(body(&active).contains("secret-note"));

    // Polite-block: active, but only a closed document.
    let (ok, _) = carol.subscribe(&me, "presence", "Expires: 600\r\n");
    assert_eq!(ok.status(), Some(200));
    let blocked = carol.notify();
    assert!(header(&blocked, "Subscription-State").starts_with("active"));
    assert!(body(&blocked).contains("closed") && !body(&blocked).contains("secret-note"));

    // Blocking bob terminates his subscription without showing anything new.
    put_rules(
        &root,
        &[
            ("sip:bob@example.com", "block"),
            ("sip:carol@example.com", "block"),
        ],
    );
    let ended = bob.notify();
    assert_eq!(
        header(&ended, "Subscription-State"),
        "terminated;reason=rejected"
    );
    assert!(ended.body().is_empty());
    assert!(carol.notify().body().is_empty());
    let (refused, _) = bob.subscribe(&me, "presence", "Expires: 600\r\n");
    assert_eq!(refused.status(), Some(403));
}

#[test]
fn watcher_info_reports_full_then_partial_state() {
    let (server, root) = Server::start_with_xcap(USERS);
    let mut alice = Ua::new(&server, "alice", "secret");
    let me = alice.aor();
    let (ok, _) = alice.subscribe(&me, "presence.winfo", "Expires: 600\r\n");
    assert_eq!(ok.status(), Some(200));
    let full = alice.notify();
    assert_eq!(header(&full, "Content-Type"), "application/watcherinfo+xml");
    let text = body(&full);
    assert!(text.contains("version=\"0\" state=\"full\""), "{text}");
    assert!(
        text.contains(&format!("resource=\"{me}\" package=\"presence\"")),
        "{text}"
    );

    let mut bob = Ua::new(&server, "bob", "bobpw");
    bob.subscribe(&me, "presence", "Expires: 600\r\n");
    let new_watcher = body(&alice.notify());
    assert!(
        new_watcher.contains("version=\"1\" state=\"partial\""),
        "{new_watcher}"
    );
    assert!(
        new_watcher.contains("status=\"pending\" event=\"subscribe\""),
        "{new_watcher}"
    );
    assert!(new_watcher.contains("sip:bob@example.com"), "{new_watcher}");

    put_rules(&root, &[("sip:bob@example.com", "allow")]);
    let approved = body(&alice.notify());
    assert!(
        approved.contains("version=\"2\" state=\"partial\""),
        "{approved}"
    );
    assert!(
        approved.contains("status=\"active\" event=\"approved\""),
        "{approved}"
    );

    // Only the owner sees its watchers.
    let (refused, _) = bob.subscribe(&me, "presence.winfo", "Expires: 600\r\n");
    assert_eq!(refused.status(), Some(403));
}
