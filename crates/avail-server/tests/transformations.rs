//! pres-rules transformations on the wire (RFC 5025 §3.3): rules written through XCAP with
//! `provide-*` elements decide what each `allow` watcher sees of a presentity's composed
//! document, while a Blink-style `allow` rule without transformations shows all of it.

mod ua;
mod xcap_common;

use ua::{body, header, Ua};
use xcap_common::common::{Server, DOMAIN};

const PIDF_HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
    <presence xmlns=\"urn:ietf:params:xml:ns:pidf\" \
    xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" \
    xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" entity=\"sip:alice@example.com\">";

/// One device's publication: a tuple of `class` with a note, and the shared person (Blink
/// publishes the same person id from every device) with activities and a mood.
fn publication(tuple: &str, class: &str, note: &str, activity: &str) -> String {
    format!(
        "{PIDF_HEAD}<tuple id=\"{tuple}\"><status><basic>open</basic></status>\
         <rpid:class>{class}</rpid:class><contact>sip:alice@example.com;device={tuple}</contact>\
         <note>{note}</note></tuple>\
         <dm:person id=\"PID-alice\"><rpid:activities><rpid:{activity}/></rpid:activities>\
         <rpid:mood><rpid:happy/></rpid:mood><dm:note>person {note}</dm:note></dm:person>\
         </presence>"
    )
}

fn pidf_headers() -> String {
    "Content-Type: application/pidf+xml\r\nExpires: 600\r\n".to_owned()
}

/// Bob may see the `work` services and the person's activities (notes too when
/// `bob_notes`); carol has Blink's rule: `allow` and no transformation at all.
fn rules(bob_notes: bool) -> String {
    let notes = if bob_notes {
        "<pr:provide-note>true</pr:provide-note>"
    } else {
        ""
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<cp:ruleset \
         xmlns:cp=\"urn:ietf:params:xml:ns:common-policy\" \
         xmlns:pr=\"urn:ietf:params:xml:ns:pres-rules\">\
         <cp:rule id=\"bob\"><cp:conditions><cp:identity><cp:one id=\"sip:bob@{DOMAIN}\"/>\
         </cp:identity></cp:conditions><cp:actions><pr:sub-handling>allow</pr:sub-handling>\
         </cp:actions><cp:transformations>\
         <pr:provide-services><pr:class>work</pr:class></pr:provide-services>\
         <pr:provide-persons><pr:all-persons/></pr:provide-persons>\
         <pr:provide-activities>true</pr:provide-activities>{notes}\
         </cp:transformations></cp:rule>\
         <cp:rule id=\"carol\"><cp:conditions><cp:identity><cp:one id=\"sip:carol@{DOMAIN}\"/>\
         </cp:identity></cp:conditions><cp:actions><pr:sub-handling>allow</pr:sub-handling>\
         </cp:actions><cp:transformations/></cp:rule>\
         </cp:ruleset>"
    )
}

fn put_rules(root: &str, text: &str) {
    let alice = xcap_common::Client::new(root.to_owned(), "alice", "secret");
    let reply = alice.put(
        &format!("org.openmobilealliance.pres-rules/users/sip:alice@{DOMAIN}/index"),
        "application/auth-policy+xml",
        text.as_bytes(),
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
fn watchers_see_only_what_their_rules_provide() {
    let (server, root) = Server::start_with_xcap(USERS);
    put_rules(&root, &rules(false));
    let mut laptop = Ua::new(&server, "alice", "secret");
    let mut phone = Ua::new(&server, "alice", "secret");
    let me = laptop.aor();
    let published = laptop.publish(
        &me,
        &pidf_headers(),
        &publication("t-work", "work", "in the office", "busy"),
    );
    assert_eq!(published.status(), Some(200));
    let published = phone.publish(
        &me,
        &pidf_headers(),
        &publication("t-home", "home", "at home", "away"),
    );
    assert_eq!(published.status(), Some(200));

    // Carol's rule has no transformation: the whole composed document.
    let mut carol = Ua::new(&server, "carol", "carolpw");
    let (ok, _) = carol.subscribe(&me, "presence", "Expires: 600\r\n");
    assert_eq!(ok.status(), Some(200));
    let whole = body(&carol.notify());
    for shown in [
        "t-work",
        "t-home",
        "in the office",
        "at home",
        "<rpid:mood>",
        "person at home",
    ] {
        assert!(whole.contains(shown), "carol misses {shown}:\n{whole}");
    }

    // Bob: the work tuple without its note, the person with activities only.
    let mut bob = Ua::new(&server, "bob", "bobpw");
    let (ok, _) = bob.subscribe(&me, "presence", "Expires: 600\r\n");
    assert_eq!(ok.status(), Some(200));
    let notify = bob.notify();
    assert!(header(&notify, "Subscription-State").starts_with("active"));
    let view = body(&notify);
    assert!(view.contains("<tuple id=\"t-work\">"), "{view}");
    assert!(view.contains("<basic>open</basic>"), "{view}");
    assert!(view.contains("device=t-work</contact>"), "{view}");
    assert!(view.contains("<rpid:activities><rpid:away/>"), "{view}");
    for withheld in [
        "t-home",
        "in the office",
        "at home",
        "<rpid:mood>",
        "<rpid:class>",
        "<dm:note>",
    ] {
        assert!(!view.contains(withheld), "bob sees {withheld}:\n{view}");
    }
    assert_eq!(view.matches("<dm:person").count(), 1, "{view}");

    // A new state of the laptop reaches bob through the same filter.
    let modified = laptop.publish(
        &me,
        &pidf_headers(),
        &publication("t-work", "work", "presenting", "busy"),
    );
    assert_eq!(modified.status(), Some(200));
    let newest = body(&bob.notify());
    assert!(newest.contains("<rpid:activities><rpid:busy/>"), "{newest}");
    assert!(
        !newest.contains("presenting") && !newest.contains("t-home"),
        "{newest}"
    );
    let whole = body(&carol.notify());
    assert!(whole.contains("presenting"), "{whole}");

    // Granting notes through XCAP shows them to bob at once, still without the home tuple.
    put_rules(&root, &rules(true));
    let renotified = body(&bob.notify());
    assert!(
        renotified.contains("<note>presenting</note>"),
        "{renotified}"
    );
    assert!(
        renotified.contains("<dm:note>person presenting</dm:note>"),
        "{renotified}"
    );
    assert!(!renotified.contains("t-home"), "{renotified}");
    assert!(!renotified.contains("<rpid:mood>"), "{renotified}");
}
