//! The agent against the real `avail-server` (issue 7 acceptance): Alice and Bob run agents
//! over TCP with XCAP over HTTP; Bob adds Alice; Alice sees the request in her watcher info and
//! accepts; each sees the other's state and note change; busy-in-call and auto-away reach Bob;
//! a wrong password is reported as such. Alice's devices also run over SIP over TLS and XCAP
//! over HTTPS, trusting the server's self-signed certificate; an XCAP server without the
//! application usages presence needs (blink-compat §2.2 item 1) is reported by agent and CLI;
//! one `avail agent` process serves every account of a configuration file.
//!
//! The server binary is found and started by avail-client's test support, shared by path.

mod agents;
#[path = "../../avail-client/tests/support/mod.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agents::start_agent;
use avail::agent::AgentHandle;
use avail::cli::ApiClient;
use avail_client::avatar::{decode_png, encode_png, Rgba};
use avail_client::http::{Credentials, HttpClient, TlsMode};
use axum::http::Method;
use base64::Engine as _;
use serde_json::{json, Value};
use support::{free_port, ServerProcess, DOMAIN};

/// Most changes must show within a second; the first subscriptions need longer.
const WAIT: Duration = Duration::from_secs(20);

struct Server {
    process: ServerProcess,
    sip: u16,
    http: u16,
    /// SIP over TLS on `sip`, XCAP over HTTPS on `http`.
    tls: bool,
}

impl Server {
    fn start(users: &[(&str, &str)]) -> Server {
        Server::launch(users, false)
    }

    /// SIP over TLS and XCAP over HTTPS only, with the certificate the server generates.
    fn start_tls(users: &[(&str, &str)]) -> Server {
        Server::launch(users, true)
    }

    fn launch(users: &[(&str, &str)], tls: bool) -> Server {
        let (sip, http) = (free_port(), free_port());
        let listen = |port: u16, on: bool| {
            if on {
                format!("127.0.0.1:{port}")
            } else {
                "off".to_owned()
            }
        };
        let process = ServerProcess::start(
            users,
            &[
                "--sip-tcp",
                &listen(sip, !tls),
                "--sip-tls",
                &listen(sip, tls),
                "--http",
                &listen(http, !tls),
                "--https",
                &listen(http, tls),
            ],
            &[http, sip],
        );
        Server {
            process,
            sip,
            http,
            tls,
        }
    }

    /// The `[account]` lines that reach this server.
    fn account_lines(&self) -> String {
        let (transport, scheme) = if self.tls {
            ("tls", "https")
        } else {
            ("tcp", "http")
        };
        let mut lines = format!(
            "transport = \"{transport}\"\noutbound_proxy = \"127.0.0.1:{}\"\n\
             xcap_root = \"{scheme}://127.0.0.1:{}/xcap-root\"\n",
            self.sip, self.http
        );
        if self.tls {
            // The self-signed certificate the server generated is the only one trusted.
            let ca = self.process.dir.path().join("tls").join("cert.pem");
            lines.push_str(&format!("tls_ca_file = {:?}\n", ca.display().to_string()));
        }
        lines
    }
}

struct Device {
    agent: AgentHandle,
    api: ApiClient,
    _dir: tempfile::TempDir,
}

async fn device(server: &Server, user: &str, password: &str) -> Device {
    device_with(user, password, &server.account_lines()).await
}

/// A TCP account whose SIP and XCAP servers are at these local ports.
async fn device_at(sip: u16, http: u16, user: &str, password: &str) -> Device {
    let account = format!(
        "transport = \"tcp\"\noutbound_proxy = \"127.0.0.1:{sip}\"\n\
         xcap_root = \"http://127.0.0.1:{http}/xcap-root\"\n"
    );
    device_with(user, password, &account).await
}

async fn device_with(user: &str, password: &str, account: &str) -> Device {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let account = format!("display_name = \"{user}\"\n{account}");
    let (agent, dir) = start_agent(user, password, &account).await;
    let api = ApiClient::new(&agent.api_addr.to_string()).expect("API client");
    Device {
        agent,
        api,
        _dir: dir,
    }
}

/// Polls `path` until `done` holds, failing with the last answer after `within`.
async fn until(
    device: &Device,
    path: &str,
    within: Duration,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let value = device.api.get(path).await.expect("API answers");
        if done(&value) {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {within:?}; last {path}: {value:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ready(status: &Value) -> bool {
    status["sip"]["registered"] == json!(true) && status["xcap"]["ready"] == json!(true)
}

fn contact<'a>(contacts: &'a Value, uri: &str) -> Option<&'a Value> {
    contacts.as_array()?.iter().find(|c| {
        c["uris"]
            .as_array()
            .is_some_and(|u| u.iter().any(|u| u["uri"] == uri))
    })
}

fn shows(contacts: &Value, uri: &str, state: &str, note: Option<&str>) -> bool {
    contact(contacts, uri).is_some_and(|c| {
        c["availability"]["state"] == state && c["availability"]["note"].as_str() == note
    })
}

async fn set_status(device: &Device, status: &str, note: &str) {
    device
        .api
        .call(
            Method::PUT,
            "/status",
            Some(json!({ "status": status, "note": note })),
        )
        .await
        .expect("status set");
}

/// Accept a presence request from `uri`, adding it as a contact named `name`.
async fn accept(device: &Device, uri: &str, name: &str) {
    device
        .api
        .call(
            Method::POST,
            "/requests/accept",
            Some(json!({ "uri": uri, "name": name })),
        )
        .await
        .expect("request accepted");
}

/// Whether `/status` has a GRUU from the registrar.
fn has_gruu(status: &Value) -> bool {
    status["sip"]["gruu"]
        .as_str()
        .is_some_and(|g| g.contains("gr="))
}

/// Whether `/status` reports both a SIP and an XCAP error.
fn both_failed(status: &Value) -> bool {
    status["sip"]["error"].is_string() && status["xcap"]["error"].is_string()
}

/// The notes of `/status`'s history, newest first.
fn history_notes(status: &Value) -> Vec<&str> {
    status["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|h| h["note"].as_str())
        .collect()
}

/// Run the `avail` command line against the agent API at `api`.
fn avail_cli(api: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_avail"))
        .args(["--api", api])
        .args(args)
        .output()
        .expect("avail runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bob_adds_alice_she_accepts_and_they_see_each_other() {
    let server = Server::start(&[("alice", "secret-a"), ("bob", "secret-b")]);
    let alice = device(&server, "alice", "secret-a").await;
    let bob = device(&server, "bob", "secret-b").await;
    until(&alice, "/status", WAIT, "Alice registered", ready).await;
    let status = until(&bob, "/status", WAIT, "Bob registered", ready).await;
    assert!(has_gruu(&status), "{status:#}");

    let added = bob
        .api
        .call(
            Method::POST,
            "/contacts",
            Some(json!({ "uri": "alice@example.com", "name": "Alice", "group": "Friends" })),
        )
        .await
        .expect("Bob adds Alice");
    assert_eq!(added["name"], "Alice");
    assert_eq!(added["groups"], json!(["Friends"]));

    let requests = until(&alice, "/requests", WAIT, "Alice sees Bob's request", |v| {
        v.as_array()
            .is_some_and(|r| r.iter().any(|w| w["uri"] == "sip:bob@example.com"))
    })
    .await;
    assert_eq!(requests.as_array().map(Vec::len), Some(1), "{requests:#}");
    until(&bob, "/contacts", WAIT, "Bob sees Alice pending", |v| {
        contact(v, "alice@example.com").is_some_and(|c| c["availability"]["pending"] == true)
    })
    .await;

    accept(&alice, "sip:bob@example.com", "Bob").await;
    until(&alice, "/requests", WAIT, "the request is gone", |v| {
        v.as_array().is_some_and(Vec::is_empty)
    })
    .await;
    until(&alice, "/watchers", WAIT, "Bob watches Alice", |v| {
        v.as_array()
            .is_some_and(|w| w.iter().any(|w| w["uri"] == "sip:bob@example.com"))
    })
    .await;

    set_status(&alice, "busy", "In a meeting").await;
    until(&bob, "/contacts", WAIT, "Bob sees Alice busy", |v| {
        shows(v, "alice@example.com", "busy", Some("In a meeting"))
    })
    .await;
    set_status(&alice, "away", "Lunch").await;
    until(
        &bob,
        "/contacts",
        Duration::from_secs(1),
        "Bob sees Alice's change within a second",
        |v| shows(v, "alice@example.com", "away", Some("Lunch")),
    )
    .await;

    set_status(&bob, "available", "Coding").await;
    until(&alice, "/contacts", WAIT, "Alice sees Bob", |v| {
        shows(v, "bob@example.com", "available", Some("Coding"))
    })
    .await;

    // Busy with "On the phone" during a call, restored afterwards.
    alice
        .api
        .call(Method::POST, "/call", Some(json!({ "active": true })))
        .await
        .expect("call starts");
    until(
        &bob,
        "/contacts",
        Duration::from_secs(2),
        "on the phone",
        |v| shows(v, "alice@example.com", "busy", Some("On the phone")),
    )
    .await;
    alice
        .api
        .call(Method::POST, "/call", Some(json!({ "active": false })))
        .await
        .expect("call ends");
    until(&bob, "/contacts", Duration::from_secs(2), "restored", |v| {
        shows(v, "alice@example.com", "away", Some("Lunch"))
    })
    .await;

    // Auto-away: Alice available, then idle past the threshold.
    set_status(&alice, "available", "Back").await;
    until(&bob, "/contacts", Duration::from_secs(2), "back", |v| {
        shows(v, "alice@example.com", "available", Some("Back"))
    })
    .await;
    alice
        .api
        .call(Method::POST, "/idle", Some(json!({ "seconds": 3600 })))
        .await
        .expect("idle reported");
    let info = until(
        &bob,
        "/contacts/Alice/info",
        Duration::from_secs(2),
        "auto-away",
        |v| v["availability"]["state"] == "away",
    )
    .await;
    let devices = info["availability"]["devices"].as_array().expect("devices");
    assert!(devices.iter().any(|d| d["idle"] == true), "{info:#}");
    assert!(
        devices
            .iter()
            .any(|d| d["contact"].as_str().is_some_and(|c| c.contains(";gr="))),
        "Alice's device GRUU is exposed: {info:#}"
    );

    let status = alice.api.get("/status").await.expect("status");
    assert_eq!(
        history_notes(&status),
        ["Back", "Lunch", "In a meeting"],
        "{status:#}"
    );
    // Bob's buddy list came through the server's resource list server, not per contact.
    let bob_status = bob.api.get("/status").await.expect("status");
    assert_eq!(bob_status["sip"]["list_mode"], "rls", "{bob_status:#}");

    // Alice blocks Bob: from then on he sees her only as offline.
    alice
        .api
        .call(
            Method::POST,
            "/requests/block",
            Some(json!({ "uri": "sip:bob@example.com" })),
        )
        .await
        .expect("Alice blocks Bob");
    let blocked = alice.api.get("/blocked").await.expect("blocked list");
    assert_eq!(blocked[0]["uri"], "bob@example.com", "{blocked:#}");
    until(&bob, "/contacts", WAIT, "Bob sees Alice offline", |v| {
        shows(v, "alice@example.com", "offline", None)
    })
    .await;
    set_status(&alice, "available", "Visible to friends only").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let contacts = bob.api.get("/contacts").await.expect("contacts");
    assert!(
        shows(&contacts, "alice@example.com", "offline", None),
        "{contacts:#}"
    );

    alice.agent.stop().await;
    bob.agent.stop().await;
    drop(server);
}

/// A 600×300 picture, scaled by the agent to 256×128.
fn png() -> Vec<u8> {
    let image = Rgba {
        width: 600,
        height: 300,
        pixels: [10, 120, 200, 255].repeat(600 * 300),
    };
    encode_png(&image).expect("PNG encodes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_stay_in_sync_and_avatar_and_offline_note_reach_bob() {
    let server = Server::start(&[("alice", "secret-a"), ("bob", "secret-b")]);
    let laptop = device(&server, "alice", "secret-a").await;
    let phone = device(&server, "alice", "secret-a").await;
    let bob = device(&server, "bob", "secret-b").await;
    for d in [&laptop, &phone, &bob] {
        until(d, "/status", WAIT, "registered", ready).await;
    }
    // Both Alices are contacts of Bob's, and he of theirs.
    bob.api
        .call(
            Method::POST,
            "/contacts",
            Some(json!({ "uri": "alice@example.com" })),
        )
        .await
        .expect("Bob adds Alice");
    until(
        &phone,
        "/requests",
        WAIT,
        "the phone sees the request",
        |v| v.as_array().is_some_and(|r| !r.is_empty()),
    )
    .await;
    accept(&laptop, "sip:bob@example.com", "Bob").await;
    until(
        &phone,
        "/contacts",
        WAIT,
        "the phone gets the new contact",
        |v| contact(v, "bob@example.com").is_some(),
    )
    .await;
    until(
        &phone,
        "/requests",
        WAIT,
        "and the request is gone there",
        |v| v.as_array().is_some_and(Vec::is_empty),
    )
    .await;

    set_status(&laptop, "busy", "Deadline").await;
    until(
        &phone,
        "/status",
        WAIT,
        "the phone follows the laptop",
        |v| v["status"] == "busy" && v["note"] == "Deadline",
    )
    .await;
    set_status(&phone, "away", "Commuting").await;
    let laptop_status = until(&laptop, "/status", WAIT, "and back", |v| {
        v["status"] == "away" && v["note"] == "Commuting"
    })
    .await;
    assert_eq!(
        history_notes(&laptop_status),
        ["Commuting", "Deadline"],
        "synced into the history"
    );
    until(
        &bob,
        "/contacts",
        WAIT,
        "Bob sees the newest device's state",
        |v| shows(v, "alice@example.com", "away", Some("Commuting")),
    )
    .await;

    // The avatar: uploaded to pres-content, published as an icon URL with its token.
    laptop
        .api
        .call(
            Method::PUT,
            "/avatar",
            Some(json!({ "png": base64::engine::general_purpose::STANDARD.encode(png()) })),
        )
        .await
        .expect("avatar set");
    let seen = until(&bob, "/contacts", WAIT, "Bob gets Alice's icon", |v| {
        contact(v, "alice@example.com").is_some_and(|c| {
            c["availability"]["devices"]
                .as_array()
                .is_some_and(|d| d.len() == 2)
                && c["availability"]["icon"]
                    .as_str()
                    .is_some_and(|i| i.contains("#blink-icon"))
        })
    })
    .await;
    let icon = contact(&seen, "alice@example.com").expect("Alice")["availability"]["icon"]
        .as_str()
        .expect("icon URL")
        .to_owned();
    assert!(
        icon.contains("/org.openmobilealliance.pres-content/users/sip:alice@example.com/oma_status-icon/index#blink-icon"),
        "{icon}"
    );

    let fetched = bob
        .api
        .get("/contacts/alice@example.com/avatar")
        .await
        .expect("Bob fetches the icon without Alice's credentials");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(fetched["base64"].as_str().expect("base64"))
        .expect("decodes");
    let picture = decode_png(&bytes).expect("a PNG");
    assert_eq!(
        (picture.width, picture.height),
        (256, 128),
        "scaled to fit 256"
    );

    // The offline note: what Bob sees once no device of Alice's publishes.
    laptop
        .api
        .call(
            Method::PUT,
            "/offline-note",
            Some(json!({ "note": "On holiday" })),
        )
        .await
        .expect("offline note set");
    laptop.agent.stop().await;
    phone.agent.stop().await;
    until(&bob, "/contacts", WAIT, "Bob sees the offline note", |v| {
        shows(v, "alice@example.com", "offline", Some("On holiday"))
    })
    .await;
    bob.agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_reported() {
    let nobody = device_at(free_port(), free_port(), "erin", "pw").await;
    let status = until(&nobody, "/status", WAIT, "errors reported", both_failed).await;
    assert!(
        status["sip"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("unreachable")),
        "{status:#}"
    );
    assert!(
        status["xcap"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("XCAP server unreachable")),
        "{status:#}"
    );
    assert_eq!(status["sip"]["registered"], false);
    nobody.agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_over_tls_registers_publishes_and_syncs_devices() {
    let server = Server::start_tls(&[("alice", "secret-a")]);
    let laptop = device(&server, "alice", "secret-a").await;
    let phone = device(&server, "alice", "secret-a").await;
    for d in [&laptop, &phone] {
        let status = until(d, "/status", WAIT, "registered over TLS", ready).await;
        assert!(has_gruu(&status), "{status:#}");
    }
    // The phone learns the laptop's state from the laptop's PUBLISH (self-presence, §4.3).
    set_status(&laptop, "busy", "Encrypted").await;
    until(
        &phone,
        "/status",
        WAIT,
        "the phone follows the laptop",
        |v| v["status"] == "busy" && v["note"] == "Encrypted",
    )
    .await;

    // Without the server's certificate as CA the handshake fails, and says so.
    let untrusting = server
        .account_lines()
        .lines()
        .filter(|l| !l.starts_with("tls_ca_file"))
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    let stranger = device_with("alice", "secret-a", &untrusting).await;
    let status = until(&stranger, "/status", WAIT, "TLS refused", both_failed).await;
    assert!(
        status["sip"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("TLS handshake") && e.contains("failed")),
        "{status:#}"
    );
    assert_eq!(status["sip"]["registered"], false);
    for d in [laptop, phone, stranger] {
        d.agent.stop().await;
    }
}

/// An XCAP server whose xcap-caps lists every document but the three presence needs.
async fn xcap_without_presence_usages() -> (u16, tokio::task::JoinHandle<()>) {
    const CAPS: &str = "<?xml version='1.0' encoding='UTF-8'?>\n\
        <xcap-caps xmlns=\"urn:ietf:params:xml:ns:xcap-caps\">\
        <auids><auid>xcap-caps</auid><auid>pidf-manipulation</auid></auids>\
        <extensions/><namespaces><namespace>urn:ietf:params:xml:ns:xcap-caps</namespace>\
        <namespace>urn:ietf:params:xml:ns:pidf</namespace></namespaces></xcap-caps>";
    let app = axum::Router::new().route(
        "/xcap-root/xcap-caps/global/index",
        axum::routing::get(|| async { ([("content-type", "application/xcap-caps+xml")], CAPS) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serves");
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_xcap_server_without_the_presence_usages_is_reported() {
    let (http, xcap) = xcap_without_presence_usages().await;
    let frank = device_at(free_port(), http, "frank", "pw").await;
    let status = until(&frank, "/status", WAIT, "XCAP error reported", |v| {
        v["xcap"]["error"].is_string()
    })
    .await;
    let error = status["xcap"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("does not support the application usages presence needs")
            && error.contains("resource-lists")
            && error.contains("rls-services")
            && error.contains("org.openmobilealliance.pres-rules")
            && !error.contains("pidf-manipulation"),
        "{status:#}"
    );
    assert_eq!(status["xcap"]["ready"], false);
    let out = avail_cli(&frank.agent.api_addr.to_string(), &["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("XCAP error: the XCAP server does not support the application usages presence needs: resource-lists, rls-services, org.openmobilealliance.pres-rules"),
        "{text}"
    );
    frank.agent.stop().await;
    xcap.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_talks_to_the_agent() {
    let server = Server::start(&[("dave", "pw")]);
    let dave = device(&server, "dave", "pw").await;
    until(&dave, "/status", WAIT, "registered", ready).await;
    let addr = dave.agent.api_addr.to_string();
    let avail = |args: &[&str]| {
        let out = avail_cli(&addr, args);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = avail(&["status", "busy", "--note", "Writing"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("sip:dave@example.com: busy \u{2014} Writing"),
        "{out}"
    );
    let (ok, out, err) = avail(&["contacts", "add", "erin@example.com", "--name", "Erin"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "Erin <erin@example.com>");
    let (ok, out, _) = avail(&["--json", "contacts", "list"]);
    assert!(ok);
    let list: Value = serde_json::from_str(&out).expect("JSON output");
    assert_eq!(list[0]["name"], "Erin");
    let (ok, _, err) = avail(&["contacts", "remove", "Nobody"]);
    assert!(!ok);
    assert!(err.contains("no contact \"Nobody\""), "{err}");
    let (ok, _, err) = avail(&["status", "sleeping"]);
    assert!(!ok);
    assert!(err.contains("unknown state"), "{err}");
    dave.agent.stop().await;
    let (ok, _, err) = avail(&["status"]);
    assert!(!ok);
    assert!(err.contains("no running agent"), "{err}");
}

/// One configuration file with two accounts: `avail agent` runs both, `--account` picks one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_agent_process_serves_every_account_of_the_file() {
    let server = Server::start(&[("alice", "secret-a"), ("bob", "secret-b")]);
    let dir = tempfile::tempdir().expect("temp dir");
    let account = server.account_lines();
    let config = format!(
        "[account]\naddress = \"alice@{DOMAIN}\"\npassword = \"secret-a\"\n{account}\
         [[accounts]]\naddress = \"bob@{DOMAIN}\"\npassword = \"secret-b\"\n{account}"
    );
    let path = dir.path().join("avail.toml");
    std::fs::write(&path, config).expect("config written");
    let mut agent = Command::new(env!("CARGO_BIN_EXE_avail"))
        .arg("--config")
        .arg(&path)
        .arg("agent")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("agent starts");
    let avail = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_avail"))
            .arg("--config")
            .arg(&path)
            .args(args)
            .output()
            .expect("avail runs")
    };
    let deadline = Instant::now() + WAIT;
    for (args, account) in [
        (&["status"][..], "sip:alice@example.com"),
        (&["--account", "bob", "status"][..], "sip:bob@example.com"),
    ] {
        loop {
            let out = String::from_utf8_lossy(&avail(args).stdout).into_owned();
            if out.starts_with(account) && out.contains("SIP: registered") {
                break;
            }
            assert!(Instant::now() < deadline, "{args:?}: {out}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let data = dir.path().join("avail-data");
    assert!(data.join("agent.addr").is_file());
    assert!(data.join("bob@example.com").join("agent.addr").is_file());
    let out = avail(&["--account", "carol", "status"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "no account \"carol\" configured (configured: alice@example.com, bob@example.com)"
        ),
        "{err}"
    );
    let stopped = Command::new("kill")
        .args(["-TERM", &agent.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(stopped.success());
    let exit = agent.wait().expect("agent exits");
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_reported() {
    let server = Server::start(&[("carol", "right")]);
    let carol = device(&server, "carol", "wrong").await;
    let status = until(&carol, "/status", WAIT, "errors reported", both_failed).await;
    let sip = status["sip"]["error"].as_str().unwrap_or_default();
    assert!(
        sip.contains("wrong password"),
        "{status:#}\n{}",
        server.process.log()
    );
    let xcap = status["xcap"]["error"].as_str().unwrap_or_default();
    assert!(xcap.contains("authentication failed"), "{status:#}");
    carol.agent.stop().await;
}

/// A document Blink wrote (blink-compat §1.2, with another application's element and list added)
/// is read, edited through the command line, and written back with its foreign content intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blink_document_survives_an_edit_through_the_command_line() {
    let server = Server::start(&[("alice", "secret-a")]);
    let blink = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../simple-payloads/tests/corpus/resource-lists/valid/blink-normalised-addressbook.xml"
    ))
    .expect("Blink's document")
    .replace(
        "<blink:attributes><blink:attribute name=\"preferred_media\">",
        "<x:note xmlns:x=\"urn:example:other\">keep me</x:note>\
         <blink:attributes><blink:attribute name=\"preferred_media\">",
    )
    .replace(
        "<rl:list name=\"oma_buddylist\"/>",
        "<rl:list name=\"oma_buddylist\"/><rl:list name=\"work\"><rl:entry \
         uri=\"sip%3Aboss%40example.com\"><rl:display-name>Boss</rl:display-name></rl:entry>\
         </rl:list>",
    );
    let xcap = HttpClient::new(
        &format!("http://127.0.0.1:{}/xcap-root", server.http),
        Some(Credentials {
            username: "alice".into(),
            password: "secret-a".into(),
            realm: DOMAIN.into(),
        }),
        &TlsMode::Insecure,
        Duration::from_secs(10),
    )
    .expect("XCAP client");
    let path = "/resource-lists/users/sip:alice@example.com/index";
    let put = xcap
        .request(
            Method::PUT,
            path,
            &[],
            Some(("application/resource-lists+xml", blink.into())),
        )
        .await
        .expect("PUT");
    assert_eq!(put.status, 201, "{}", String::from_utf8_lossy(&put.body));

    let alice = device(&server, "alice", "secret-a").await;
    until(&alice, "/status", WAIT, "registered", ready).await;
    until(&alice, "/contacts", WAIT, "Blink's contact is read", |v| {
        contact(v, "bob@example.com").is_some_and(|c| c["name"] == "Bob Smith")
    })
    .await;
    let out = avail_cli(
        &alice.agent.api_addr.to_string(),
        &["contacts", "edit", "Bob Smith", "--name", "Robert Smith"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let stored = xcap
        .request(Method::GET, path, &[], None)
        .await
        .expect("GET");
    let text = String::from_utf8_lossy(&stored.body);
    assert!(
        text.contains("<addressbook:name>Robert Smith</addressbook:name>"),
        "{text}"
    );
    assert!(text.contains("keep me</x:note>"), "{text}");
    assert!(text.contains("xmlns:x=\"urn:example:other\""), "{text}");
    assert!(
        text.contains("<rl:display-name>Boss</rl:display-name>"),
        "{text}"
    );
    assert!(
        text.contains(r#"<blink:attribute name="preferred_media">audio</blink:attribute>"#),
        "{text}"
    );
    alice.agent.stop().await;
}
