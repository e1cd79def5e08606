//! The web UI in a real browser: Debian's Chromium, headless, driven through ChromeDriver's
//! W3C WebDriver protocol against Alice's running agent and a real `avail-server`. The page
//! shows her account, connection and availability; the availability form changes the agent's
//! state; a contact added through the form appears in the contact list; and, without a reload,
//! the page follows what changes elsewhere: Bob accepting her and publishing a note, Bob
//! watching her, and a status set through the agent's API as the command line sets it.
//!
//! Chromium and ChromeDriver come from Debian's `chromium` and `chromium-driver`, which
//! scripts/test installs; without them the test fails and says so rather than passing unseen.

mod agents;
#[path = "../../avail-client/tests/support/mod.rs"]
mod support;

use std::fmt::Debug;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agents::start_agent;
use avail::agent::AgentHandle;
use avail::cli::ApiClient;
use axum::http::Method;
use serde_json::{json, Value};
use support::{free_port, ServerProcess, DOMAIN};

const CHROMIUM: &str = "/usr/bin/chromium";
const MISSING: &str = "this test drives Chromium through ChromeDriver: install Debian's \
                       `chromium` and `chromium-driver` (scripts/test installs them)";
/// Registration, subscriptions and page updates, generous for a busy 2-core machine.
const WAIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);
/// The key of an element reference in WebDriver answers (W3C WebDriver §12.1).
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Agent {
    handle: AgentHandle,
    api: ApiClient,
    _dir: tempfile::TempDir,
}

impl Agent {
    async fn start(user: &str, password: &str, sip: u16, xcap: u16) -> Agent {
        let account = format!(
            "transport = \"tcp\"\noutbound_proxy = \"127.0.0.1:{sip}\"\n\
             xcap_root = \"http://127.0.0.1:{xcap}/xcap-root\""
        );
        let (handle, dir) = start_agent(user, password, &account).await;
        let api = ApiClient::new(&handle.api_addr.to_string()).expect("API client");
        Agent {
            handle,
            api,
            _dir: dir,
        }
    }

    async fn call(&self, method: Method, path: &str, body: Value) -> Value {
        self.api
            .call(method, path, Some(body))
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Polls `path` until `done` holds, failing with the last answer.
    async fn until(&self, path: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let value = self.api.get(path).await.expect("the agent answers");
            if done(&value) {
                return value;
            }
            assert!(Instant::now() < deadline, "{what}; last {path}: {value:#}");
            tokio::time::sleep(POLL).await;
        }
    }

    async fn stop(self) {
        self.handle.stop().await;
    }
}

fn ready(status: &Value) -> bool {
    status["sip"]["registered"] == json!(true) && status["xcap"]["ready"] == json!(true)
}

/// ChromeDriver on a local port; killed when dropped.
struct Driver {
    child: Child,
    base: String,
    /// Chromium's profile and ChromeDriver's log.
    dir: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One headless Chromium session; the session ends, and with it Chromium, when dropped.
struct Browser {
    http: ureq::Agent,
    /// `<driver>/session/<id>`, the prefix of every command.
    session: String,
    driver: Driver,
}

impl Browser {
    fn start() -> Browser {
        assert!(
            Path::new(CHROMIUM).is_file(),
            "{CHROMIUM} missing: {MISSING}"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg(format!(
                "--log-path={}",
                dir.path().join("chromedriver.log").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("chromedriver does not start ({e}): {MISSING}"));
        let driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            dir,
        };
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let mut browser = Browser {
            http,
            session: String::new(),
            driver,
        };

        let status_url = format!("{}/status", browser.driver.base);
        browser.until(
            "ChromeDriver ready",
            |b| b.send("GET", &status_url, None),
            |status| status["ready"] == json!(true),
        );
        let profile = browser.driver.dir.path().join("profile");
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                // Root needs --no-sandbox; the machine has no outside network, and the
                // background fetches would only fill the log with refused connections.
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1280,1024",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        }}});
        let session = browser
            .send(
                "POST",
                &format!("{}/session", browser.driver.base),
                Some(capabilities),
            )
            .unwrap_or_else(|e| panic!("no Chromium session: {e}\n{}", browser.driver_log()));
        let id = session["sessionId"].as_str().expect("session id");
        browser.session = format!("{}/session/{id}", browser.driver.base);
        browser
    }

    fn driver_log(&self) -> String {
        std::fs::read_to_string(self.driver.dir.path().join("chromedriver.log")).unwrap_or_default()
    }

    /// A WebDriver request: its answer's `value`, or the error WebDriver reported.
    fn send(&self, method: &str, url: &str, body: Option<Value>) -> Result<Value, String> {
        let response = match (method, body) {
            ("GET", None) => self.http.get(url).call(),
            ("DELETE", None) => self.http.delete(url).call(),
            ("POST", body) => self
                .http
                .post(url)
                .header("Content-Type", "application/json")
                .send(body.unwrap_or_else(|| json!({})).to_string()),
            (method, body) => panic!("no WebDriver command {method} with {body:?}"),
        };
        let mut response = response.map_err(|e| format!("{method} {url}: {e}"))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("{method} {url}: {e}"))?;
        let mut answer: Value =
            serde_json::from_str(&text).map_err(|e| format!("{method} {url}: {e}: {text}"))?;
        let value = answer["value"].take();
        if status >= 400 {
            return Err(format!(
                "{method} {url}: HTTP {status} {}: {}",
                value["error"], value["message"]
            ));
        }
        Ok(value)
    }

    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        self.send(method, &format!("{}{path}", self.session), body)
    }

    fn goto(&self, url: &str) {
        self.command("POST", "/url", Some(json!({ "url": url })))
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// The element `selector` (CSS) finds.
    fn find(&self, selector: &str) -> String {
        self.find_by("css selector", selector)
    }

    fn find_by(&self, using: &str, selector: &str) -> String {
        let found = self
            .command(
                "POST",
                "/element",
                Some(json!({ "using": using, "value": selector })),
            )
            .unwrap_or_else(|e| panic!("{selector}: {e}"));
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("{selector}: no element reference in {found}"))
            .to_owned()
    }

    fn on_element(&self, element: &str, what: &str, body: Option<Value>) -> Value {
        let method = if body.is_some() { "POST" } else { "GET" };
        self.command(method, &format!("/element/{element}/{what}"), body)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn click(&self, element: &str) {
        self.on_element(element, "click", Some(json!({})));
    }

    /// Replaces what the text field holds by typing `text`.
    fn type_into(&self, element: &str, text: &str) {
        self.on_element(element, "clear", Some(json!({})));
        self.on_element(element, "value", Some(json!({ "text": text })));
    }

    /// The rendered text of the element `selector` finds (empty while it is hidden).
    fn text(&self, selector: &str) -> Result<Value, String> {
        let element = self.find(selector);
        self.command("GET", &format!("/element/{element}/text"), None)
    }

    /// What `script`, a function body run in the page, returns.
    fn script(&self, script: &str) -> Result<Value, String> {
        self.command(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
    }

    /// Reads until `done` holds: the page changes on its own, after its long poll answers.
    fn until<T: Debug>(
        &self,
        what: &str,
        read: impl Fn(&Browser) -> Result<T, String>,
        done: impl Fn(&T) -> bool,
    ) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            let last = read(self);
            if let Ok(value) = &last {
                if done(value) {
                    return last.expect("checked");
                }
            }
            assert!(Instant::now() < deadline, "{what}; last read: {last:?}");
            std::thread::sleep(POLL);
        }
    }

    fn until_text(&self, selector: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
        let value = self.until(
            what,
            |b| b.text(selector),
            |v| v.as_str().is_some_and(&done),
        );
        value.as_str().expect("text").to_owned()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.send("DELETE", &self.session, None);
        }
    }
}

/// The contact list as the page shows it: group, name, state and note or address per row.
const CONTACT_ROWS: &str = r##"
    return [...document.querySelectorAll("#groups li.contact")].map((row) => [
      row.closest("section.group").querySelector("h3").firstChild.textContent,
      row.querySelector(".name").textContent,
      row.querySelector(".state").textContent,
      row.querySelector(".note, .address").textContent,
    ]);
"##;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_in_chromium_sets_availability_adds_a_contact_and_follows_changes() {
    // First, so that a machine without Chromium fails at once.
    let browser = Browser::start();
    let (_server, sip, xcap) =
        ServerProcess::start_plain(&[("alice", "secret-a"), ("bob", "secret-b")]);
    let alice = Agent::start("alice", "secret-a", sip, xcap).await;
    let bob = Agent::start("bob", "secret-b", sip, xcap).await;
    let status = alice.until("/status", "Alice is ready", ready).await;
    bob.until("/status", "Bob is ready", ready).await;

    // (1) The page loads and shows the account, its connection and its availability.
    browser.goto(&alice.api.ui_url());
    let account = format!("sip:alice@{DOMAIN}");
    browser.until_text("#account", "the account is shown", |t| t == account);
    browser.until_text("#sip-state", "SIP is shown registered", |t| {
        t.starts_with("registered")
    });
    browser.until_text("#xcap-state", "XCAP is shown ready", |t| t == "ready");
    let shown = browser.until_text("#published-state", "the published state", |t| {
        !t.is_empty() && t != "…"
    });
    assert_eq!(
        shown,
        status["published"]["status"].as_str().expect("state")
    );
    assert_eq!(
        browser.script("return document.title"),
        Ok(json!(format!("Avail: {account}")))
    );
    // Survives only as long as this page: a reload would lose it.
    browser
        .script("window.loadedOnce = true")
        .expect("the page runs scripts");

    // (2) The availability form changes the agent's state.
    browser.click(&browser.find("#status-form input[name=status][value=busy]"));
    browser.type_into(&browser.find("#status-note"), "In a meeting");
    browser.click(&browser.find("#status-form button[type=submit]"));
    alice
        .until("/status", "the form set Alice busy in a meeting", |s| {
            s["status"] == "busy" && s["note"] == "In a meeting"
        })
        .await;
    browser.until_text("#published-state", "the page shows busy", |t| t == "busy");
    browser.until_text("#published-note", "the page shows the note", |t| {
        t == "“In a meeting”"
    });
    browser.until_text("#history", "the history offers the choice again", |t| {
        t.contains("busy: In a meeting")
    });

    // (3) A contact added through the form appears in the list.
    browser.click(&browser.find_by("xpath", "//summary[normalize-space()='Add a contact']"));
    browser.type_into(&browser.find("#add-contact-uri"), &format!("bob@{DOMAIN}"));
    browser.type_into(&browser.find("#add-contact-name"), "Bob");
    browser.type_into(&browser.find("#add-contact-group"), "Friends");
    browser.click(&browser.find("#add-contact-form button[type=submit]"));
    browser.until(
        "Bob is listed in Friends",
        |b| b.script(CONTACT_ROWS),
        |rows| {
            rows.as_array()
                .is_some_and(|r| r.len() == 1 && r[0][0] == "Friends" && r[0][1] == "Bob")
        },
    );
    let contacts = alice.api.get("/contacts").await.expect("contacts");
    assert_eq!(contacts[0]["name"], "Bob", "{contacts:#}");
    assert_eq!(contacts[0]["groups"], json!(["Friends"]), "{contacts:#}");

    // (4) Changes made elsewhere reach the open page through its long poll.
    let alice_uri = format!("sip:alice@{DOMAIN}");
    bob.until("/requests", "Bob sees Alice's request", |r| {
        r.as_array()
            .is_some_and(|r| r.iter().any(|w| w["uri"] == alice_uri))
    })
    .await;
    bob.call(
        Method::POST,
        "/requests/accept",
        json!({ "uri": alice_uri, "name": "Alice" }),
    )
    .await;
    bob.call(
        Method::PUT,
        "/status",
        json!({ "status": "away", "note": "Lunch" }),
    )
    .await;
    browser.until(
        "Bob's row shows him away at lunch",
        |b| b.script(CONTACT_ROWS),
        |rows| rows == &json!([["Friends", "Bob", "away", "Lunch"]]),
    );
    browser.until_text("#watchers", "Bob is shown watching", |t| {
        t.contains(&format!("bob@{DOMAIN}"))
    });

    // As `avail status` sets it: through the agent's API, not the page.
    alice
        .call(
            Method::PUT,
            "/status",
            json!({ "status": "away", "note": "Back at three" }),
        )
        .await;
    browser.until_text("#published-note", "the page shows the new note", |t| {
        t == "“Back at three”"
    });
    browser.until_text("#published-state", "the page shows away", |t| t == "away");
    assert_eq!(
        browser.script(
            "return [document.querySelector('#status-form input[name=status]:checked')?.value, \
             document.getElementById('status-note').value]"
        ),
        Ok(json!(["away", "Back at three"])),
        "the form shows the new choice"
    );

    assert_eq!(
        browser.script("return window.loadedOnce === true"),
        Ok(json!(true)),
        "the page was never reloaded"
    );
    assert_eq!(
        browser.text("#message"),
        Ok(json!("")),
        "the page reported no failure"
    );
    // Closed first: the page would otherwise see its agent go and retry against nothing.
    drop(browser);
    alice.stop().await;
    bob.stop().await;
}
