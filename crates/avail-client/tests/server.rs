//! The XCAP manager against the real `avail-server` binary over HTTP (and HTTPS without
//! verification): discovery, every operation kind, read-back from a second device, a forced
//! 412 replay, DELETE of icon and note, and a wrong password. How the
//! server binary is found: `support`.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use avail_client::content::Icon;
use avail_client::pres_rules::DefaultPolicy;
use avail_client::resource_lists::{Contact, ContactUri, Group, Handling, Policy};
use avail_client::{
    Account, DocumentKind, ManagerError, Operation, Settings, TlsMode, XcapManager,
};
use simple_payloads::validate;
use support::{free_port, ServerProcess, DOMAIN};

struct Server {
    _process: ServerProcess,
    http: u16,
    https: u16,
}

fn start_server() -> Server {
    let (http, https, sip) = (free_port(), free_port(), free_port());
    let process = ServerProcess::start(
        &[("alice", "secret")],
        &[
            "--sip-tls",
            "off",
            "--sip-tcp",
            &format!("127.0.0.1:{sip}"),
            "--http",
            &format!("127.0.0.1:{http}"),
            "--https",
            &format!("127.0.0.1:{https}"),
        ],
        &[https],
    );
    Server {
        _process: process,
        http,
        https,
    }
}

fn settings(root: String, password: &str, dir: &Path) -> Settings {
    let mut settings = Settings::new(Account::new("alice", DOMAIN, &root), password, dir);
    settings.retry_delays = vec![Duration::from_millis(50); 3];
    settings.request_timeout = Duration::from_secs(10);
    settings
}

async fn device(server: &Server, dir: &Path) -> XcapManager {
    let root = format!("http://127.0.0.1:{}/xcap-root", server.http);
    let mut manager = XcapManager::open(settings(root, "secret", dir)).expect("manager opens");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match manager.discover().await {
            Ok(kinds) => {
                assert_eq!(kinds, DocumentKind::ALL);
                return manager;
            }
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("discovery failed: {e}"),
        }
    }
}

fn contact(id: &str, name: &str, uri: &str) -> Contact {
    Contact {
        id: id.into(),
        name: name.into(),
        uris: vec![ContactUri {
            id: format!("{id}_uri"),
            uri: uri.into(),
            uri_type: Some("SIP".into()),
            attributes: vec![],
        }],
        default_uri: Some(format!("{id}_uri")),
        dialog: Handling::default(),
        presence: Handling {
            policy: Policy::Allow,
            subscribe: true,
        },
        attributes: vec![("preferred_media".into(), Some("audio".into()))],
    }
}

#[tokio::test]
async fn manager_against_avail_server() {
    let server = start_server();
    let (dir1, dir2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut one = device(&server, dir1.path()).await;

    let png = Icon::new("image/png", b"\x89PNG\r\n\x1a\nnot really").unwrap();
    for op in [
        Operation::AddGroup {
            group: Group {
                id: "id_friends".into(),
                name: "Friends".into(),
                contacts: vec![],
                attributes: vec![],
            },
        },
        Operation::AddContact {
            contact: contact("id_bob", "Bob", "bob@example.com"),
        },
        Operation::AddGroupMember {
            group_id: "id_friends".into(),
            contact_id: "id_bob".into(),
        },
        Operation::SetAddressPolicy {
            id: "id_spam".into(),
            uri: "sip:spam@example.net".into(),
            name: "Spammer".into(),
            policy: Policy::Block,
        },
        Operation::SetDefaultPolicy {
            policy: DefaultPolicy::PoliteBlock,
        },
        Operation::SetIcon {
            icon: Some(png.clone()),
        },
        Operation::SetOfflineNote {
            note: Some("Back on Monday".into()),
        },
    ] {
        one.queue(op).unwrap();
    }
    let report = one.sync().await.expect("first sync");
    assert_eq!(report.written, DocumentKind::ALL);
    assert!(one.pending().is_empty());

    // A second device reads everything back from the server.
    let mut two = device(&server, dir2.path()).await;
    assert!(two.sync().await.unwrap().written.is_empty());
    let snapshot = two.snapshot();
    assert_eq!(snapshot, one.snapshot());
    let book = &snapshot.address_book;
    assert_eq!(
        book.contact("id_bob").unwrap().uris[0].uri,
        "bob@example.com"
    );
    assert_eq!(book.group("id_friends").unwrap().contacts, ["id_bob"]);
    assert_eq!(book.policies[0].uri, "sip:spam@example.net");
    assert_eq!(book.policies[0].presence.policy, Policy::Block);
    assert_eq!(snapshot.default_policy, DefaultPolicy::PoliteBlock);
    assert_eq!(snapshot.icon, Some(png));
    assert_eq!(snapshot.offline_note.as_deref(), Some("Back on Monday"));
    for kind in DocumentKind::ALL {
        validate(
            kind.usage(),
            two.document(kind).expect("document on server"),
        )
        .unwrap();
    }
    assert!(two
        .document(DocumentKind::ResourceLists)
        .unwrap()
        .contains(r#"<rl:entry uri="bob%40example.com"/>"#));

    // Forced 412: device two changes the document after device one fetched it.
    one.refresh().await.unwrap();
    two.queue(Operation::AddContact {
        contact: contact("id_carol", "Carol", "sip:carol@example.com"),
    })
    .unwrap();
    assert_eq!(
        two.sync().await.unwrap().written,
        [DocumentKind::ResourceLists]
    );
    one.queue(Operation::AddContact {
        contact: contact("id_dave", "Dave", "dave@example.com"),
    })
    .unwrap();
    one.queue(Operation::SetContactPolicy {
        contact_id: "id_bob".into(),
        policy: Policy::Block,
    })
    .unwrap();
    let report = one.push().await.expect("push after conflict");
    assert_eq!(report.replays, 1);
    assert_eq!(report.written, [DocumentKind::ResourceLists]);
    two.sync().await.unwrap();
    let book = two.snapshot().address_book;
    let mut ids: Vec<_> = book.contacts.iter().map(|c| c.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["id_bob", "id_carol", "id_dave"]);
    assert_eq!(
        book.contact("id_bob").unwrap().presence.policy,
        Policy::Block
    );
    let lists = two.document(DocumentKind::ResourceLists).unwrap();
    assert!(lists.contains(r#"<rl:list name="oma_blockedcontacts">"#));
    assert!(lists.contains(r#"<rl:entry uri="sip%3Acarol%40example.com"/>"#));

    // Removing icon and note DELETEs them.
    one.queue(Operation::SetIcon { icon: None }).unwrap();
    one.queue(Operation::SetOfflineNote { note: None }).unwrap();
    let report = one.sync().await.unwrap();
    assert_eq!(
        report.written,
        [DocumentKind::PidfManipulation, DocumentKind::StatusIcon]
    );
    two.sync().await.unwrap();
    assert_eq!(two.snapshot().icon, None);
    assert_eq!(two.snapshot().offline_note, None);

    // A wrong password is reported, not retried forever.
    let dir3 = tempfile::tempdir().unwrap();
    let root = format!("http://127.0.0.1:{}/xcap-root", server.http);
    let mut wrong = XcapManager::open(settings(root, "nope", dir3.path())).unwrap();
    let result = async {
        wrong.discover().await?;
        wrong.sync().await
    }
    .await;
    assert!(
        matches!(result, Err(ManagerError::Unauthorized)),
        "{result:?}"
    );

    // HTTPS: Blink's "no verification" works; verification against the system's trust
    // store, which does not hold the server's self-signed certificate, fails cleanly.
    let https = format!("https://127.0.0.1:{}/xcap-root", server.https);
    let mut insecure = settings(https.clone(), "secret", dir3.path());
    insecure.tls = TlsMode::Insecure;
    let mut manager = XcapManager::open(insecure).unwrap();
    manager
        .discover()
        .await
        .expect("HTTPS without verification");
    manager.sync().await.expect("sync over HTTPS");
    assert_eq!(manager.snapshot().address_book.contacts.len(), 3);
    let mut strict = XcapManager::open(settings(https, "secret", dir3.path())).unwrap();
    assert!(matches!(
        strict.discover().await,
        Err(ManagerError::Http(avail_client::http::HttpError::Tls(_)))
    ));
}
