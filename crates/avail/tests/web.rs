//! The web UI of a running agent, spoken to in plain HTTP/1.1 over TCP so that the `Host` and
//! `Origin` headers are exactly the test's: the page and the files it references with their
//! types; every API call of `app.js` reaching a handler with its method (against a real
//! `avail-server`); requests for another host misdirected (DNS rebinding); state changes from
//! another site's page refused; no markup built from data in the script; `avail ui`.

mod agents;
#[path = "../../avail-client/tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use agents::start_agent;
use avail::agent::AgentHandle;
use serde_json::{json, Value};
use support::{free_port, ServerProcess, DOMAIN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const UI_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/ui");
/// Registration and the first XCAP sync against the local server.
const READY_WITHIN: Duration = Duration::from_secs(20);

struct Agent {
    handle: AgentHandle,
    _dir: tempfile::TempDir,
}

impl Agent {
    /// An agent of `user` whose `[account]` also has `account_lines`.
    async fn start(user: &str, password: &str, account_lines: &str) -> Agent {
        let account = format!("transport = \"tcp\"\n{account_lines}");
        let (handle, dir) = start_agent(user, password, &account).await;
        Agent { handle, _dir: dir }
    }

    /// An agent whose SIP and XCAP servers do not answer: the local HTTP server is all there is.
    async fn alone() -> Agent {
        let lines = format!(
            "outbound_proxy = \"127.0.0.1:{}\"\nxcap_root = \"http://127.0.0.1:{}/xcap-root\"\n",
            free_port(),
            free_port()
        );
        Agent::start("carol", "pw", &lines).await
    }

    fn addr(&self) -> SocketAddr {
        self.handle.api_addr
    }

    /// `Host` as a browser sends it for the page's own address.
    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.addr().port())
    }

    /// `Origin` of the page served by this agent.
    fn origin(&self) -> String {
        format!("http://{}", self.host())
    }

    /// A request with the page's own `Host` and the given other headers.
    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Reply {
        let host = self.host();
        let mut all = vec![("Host", host.as_str())];
        all.extend_from_slice(headers);
        http(self.addr(), method, path, &all, body).await
    }

    async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, &[], None).await
    }

    async fn stop(self) {
        self.handle.stop().await;
    }
}

/// One answer.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): HTTP {} {:?}", self.status, self.body))
    }

    /// A 4xx or 5xx carrying the API's `{"error": "..."}` body.
    fn is_api_error(&self, status: u16) -> bool {
        self.status == status
            && self.header("content-type") == Some("application/json")
            && self.json()["error"].as_str().is_some_and(|e| !e.is_empty())
    }
}

/// Sends one HTTP/1.1 request with exactly these headers (plus `Connection: close` and, with
/// a body, its JSON type and length) and reads the whole answer.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body.unwrap_or(""));
    let mut stream = TcpStream::connect(addr).await.expect("agent accepts");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request sent");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("answer read");
    let raw = String::from_utf8(raw).expect("UTF-8 answer");
    let (head, body) = raw.split_once("\r\n\r\n").expect("header block");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("status line of {head:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    assert!(
        !headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked")),
        "the agent's answers have a length: {head}"
    );
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

fn ui_file(name: &str) -> String {
    std::fs::read_to_string(format!("{UI_DIR}/{name}")).expect("UI file")
}

/// The values of `attribute="/..."` in `html`: the page's own files it loads.
fn local_references(html: &str, attribute: &str) -> Vec<String> {
    html.split(&format!("{attribute}=\""))
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|value| value.starts_with('/'))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_the_files_it_loads_are_served_with_their_types() {
    let agent = Agent::alone().await;
    let page = agent.get("/").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    let policy = page.header("content-security-policy").expect("a CSP");
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert_eq!(page.body, ui_file("index.html"));

    let scripts = local_references(&page.body, "src");
    let styles = local_references(&page.body, "href");
    assert_eq!(scripts, ["/app.js"]);
    assert_eq!(styles, ["/style.css"]);
    for (path, file, content_type) in [
        ("/app.js", "app.js", "text/javascript"),
        ("/style.css", "style.css", "text/css"),
    ] {
        let reply = agent.get(path).await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(
            reply.header("content-type"),
            Some(format!("{content_type}; charset=utf-8").as_str()),
            "{path}"
        );
        assert_eq!(reply.header("cache-control"), Some("no-cache"), "{path}");
        assert_eq!(reply.body, ui_file(file), "{path}");
    }

    let head = agent.send("HEAD", "/", &[], None).await;
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-type"),
        Some("text/html; charset=utf-8")
    );

    let status = agent.get("/status").await;
    assert_eq!(status.status, 200, "the API shares the address");
    assert_eq!(status.json()["account"], format!("sip:carol@{DOMAIN}"));
    assert_eq!(agent.get("/no-such-page").await.status, 404);
    agent.stop().await;
}

#[test]
fn the_script_builds_no_markup_from_data() {
    let script = ui_file("app.js");
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
    ] {
        assert!(!script.contains(sink), "app.js uses {sink}");
    }
    assert!(script.contains("textContent"), "text goes in as text");
    // A syntax check where node happens to be installed; the test does not depend on it.
    if Command::new("node").arg("--version").output().is_ok() {
        let check = Command::new("node")
            .args(["--check", &format!("{UI_DIR}/app.js")])
            .output()
            .expect("node runs");
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
}

/// The `api("METHOD", "path")` and ``api("METHOD", `path`)`` calls of the page's script.
fn api_calls(script: &str) -> Vec<(String, String)> {
    script
        .match_indices("api(\"")
        .filter(|(at, _)| {
            !script[..*at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '.')
        })
        .map(|(at, call)| {
            let rest = &script[at + call.len()..];
            let (method, rest) = rest.split_once('"').expect("method closed");
            let rest = rest
                .strip_prefix(',')
                .expect("a path after the method")
                .trim_start();
            let quote = rest.chars().next().expect("path");
            assert!(quote == '"' || quote == '`', "literal path: {rest:.40}");
            let path = rest[1..].split(quote).next().expect("path closed");
            (method.to_owned(), path.to_owned())
        })
        .collect()
}

/// `template` with its `${...}` placeholders replaced by the probe contact's or group's id,
/// and a query replaced by `wait=0`: the long poll would wait 25 s for an event.
fn concrete_path(template: &str, contact: &str, group: &str) -> String {
    let (path, query) = template.split_once('?').unwrap_or((template, ""));
    let mut parts = path.split("${");
    let mut out = parts.next().unwrap_or_default().to_owned();
    for part in parts {
        let (_, after) = part.split_once('}').expect("placeholder closed");
        let id = if out.ends_with("/contacts/") {
            contact
        } else if out.ends_with("/groups/") {
            group
        } else {
            panic!("no probe value for a placeholder of {template}")
        };
        out.push_str(id);
        out.push_str(after);
    }
    if !query.is_empty() {
        out.push_str("?wait=0");
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_call_of_the_page_reaches_a_handler() {
    let calls = api_calls(&ui_file("app.js"));
    for expected in [
        ("GET", "/status"),
        ("PUT", "/status"),
        ("PUT", "/offline-note"),
        ("PUT", "/avatar"),
        ("GET", "/contacts"),
        ("POST", "/contacts"),
        ("GET", "/groups"),
        ("POST", "/groups"),
        ("GET", "/requests"),
        ("POST", "/requests/accept"),
        ("POST", "/requests/block"),
        ("GET", "/watchers"),
        ("GET", "/blocked"),
    ] {
        assert!(
            calls
                .iter()
                .any(|(m, p)| (m.as_str(), p.as_str()) == expected),
            "app.js calls {expected:?}: found {calls:?}"
        );
    }
    for method in ["PATCH", "DELETE"] {
        assert!(calls.iter().any(|(m, _)| m == method), "{calls:?}");
    }

    let (server, sip, xcap) = ServerProcess::start_plain(&[("webui", "pw")]);
    let agent = Agent::start(
        "webui",
        "pw",
        &format!(
            "outbound_proxy = \"127.0.0.1:{sip}\"\nxcap_root = \"http://127.0.0.1:{xcap}/xcap-root\"\n"
        ),
    )
    .await;
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        let status = agent.get("/status").await.json();
        if status["sip"]["registered"] == json!(true) && status["xcap"]["ready"] == json!(true) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not ready: {status:#}\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let created = agent
        .send(
            "POST",
            "/contacts",
            &[],
            Some(
                &json!({ "uri": "probe@example.com", "name": "Probe", "group": "Probes" })
                    .to_string(),
            ),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let contact = created.json()["id"]
        .as_str()
        .expect("contact id")
        .to_owned();
    let groups = agent.get("/groups").await.json();
    let group = groups[0]["id"].as_str().expect("group id").to_owned();

    // Deletions last: the other calls need the probe contact and group.
    let mut calls = calls;
    calls.sort_by_key(|(method, _)| method == "DELETE");
    let origin = agent.origin();
    for (method, template) in &calls {
        let path = concrete_path(template, &contact, &group);
        let call = format!("{method} {path} (app.js: {template})");
        let headers = [("Origin", origin.as_str())];
        match method.as_str() {
            "GET" | "DELETE" => {
                let reply = agent.send(method, &path, &headers, None).await;
                // A handler's 404 names what is missing (a contact without an avatar);
                // the router's has no body.
                assert!(
                    reply.status == 200 || reply.is_api_error(404),
                    "{call}: HTTP {} {:?}",
                    reply.status,
                    reply.body
                );
            }
            "PUT" | "POST" | "PATCH" => {
                // A JSON string where an object is expected: the handler's body extractor
                // refuses it, so nothing changes, and only a routed request gets that far.
                let reply = agent
                    .send(method, &path, &headers, Some("\"not an object\""))
                    .await;
                assert_eq!(reply.status, 422, "{call}: {:?}", reply.body);
            }
            other => panic!("{call}: unexpected method {other}"),
        }
    }
    let contacts = agent.get("/contacts").await.json();
    assert_eq!(
        contacts,
        json!([]),
        "the page's DELETE removed the probe contact"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_for_another_host_are_misdirected() {
    let agent = Agent::alone().await;
    let port = agent.addr().port();
    let before = agent.get("/status").await.json();
    for host in [
        "evil.example".to_owned(),
        format!("evil.example:{port}"),
        "127.0.0.1".to_owned(),
        format!("localhost.evil.example:{port}"),
    ] {
        for path in ["/", "/app.js", "/status", "/contacts", "/no-such-page"] {
            let reply = http(agent.addr(), "GET", path, &[("Host", &host)], None).await;
            assert!(
                reply.is_api_error(421),
                "GET {path} for {host}: HTTP {} {:?}",
                reply.status,
                reply.body
            );
        }
        let body = json!({ "status": "busy", "note": "rebound" }).to_string();
        let reply = http(
            agent.addr(),
            "PUT",
            "/status",
            &[("Host", &host)],
            Some(&body),
        )
        .await;
        assert!(reply.is_api_error(421), "PUT /status for {host}");
    }
    let after = agent.get("/status").await.json();
    assert_eq!(after["note"], before["note"], "nothing changed");
    assert_eq!(after["status"], before["status"]);

    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("LocalHost:{port}"),
        format!("[::1]:{port}"),
    ] {
        for path in ["/", "/status"] {
            let reply = http(agent.addr(), "GET", path, &[("Host", &host)], None).await;
            assert_eq!(reply.status, 200, "GET {path} for {host}");
        }
    }
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changes_from_another_sites_page_are_refused() {
    let agent = Agent::alone().await;
    let port = agent.addr().port();
    let set = |note: &str| json!({ "status": "busy", "note": note }).to_string();
    let before = agent.get("/status").await.json();
    assert_ne!(before["status"], "busy");

    for origin in [
        "http://evil.example",
        "null",
        "https://127.0.0.1",
        &format!("https://127.0.0.1:{port}"),
    ] {
        let reply = agent
            .send(
                "PUT",
                "/status",
                &[("Origin", origin)],
                Some(&set("from evil")),
            )
            .await;
        assert!(
            reply.is_api_error(403),
            "Origin {origin}: HTTP {} {:?}",
            reply.status,
            reply.body
        );
    }
    let unchanged = agent.get("/status").await.json();
    assert_eq!(unchanged["status"], before["status"]);
    assert_eq!(unchanged["note"], before["note"]);
    assert!(
        unchanged["history"].as_array().is_some_and(Vec::is_empty),
        "{unchanged:#}"
    );

    // Reading is not refused: the browser keeps another site from seeing the answer.
    let read = agent
        .send("GET", "/status", &[("Origin", "http://evil.example")], None)
        .await;
    assert_eq!(read.status, 200);

    let own = agent.origin();
    let reply = agent
        .send(
            "PUT",
            "/status",
            &[("Origin", &own)],
            Some(&set("from the page")),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["status"], "busy");
    assert_eq!(reply.json()["note"], "from the page");

    let localhost = format!("http://localhost:{port}");
    let reply = agent
        .send(
            "PUT",
            "/status",
            &[("Origin", &localhost)],
            Some(&set("from localhost")),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    let reply = agent
        .send("PUT", "/status", &[], Some(&set("from the command line")))
        .await;
    assert_eq!(reply.status, 200, "without Origin: {}", reply.body);
    assert_eq!(
        agent.get("/status").await.json()["note"],
        "from the command line"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_prints_the_address_of_the_web_ui() {
    let agent = Agent::alone().await;
    let port = agent.addr().port();
    let url = format!("http://127.0.0.1:{port}/");
    let ui = |api: String, json: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_avail"));
        command.args(["--api", &api]);
        if json {
            command.arg("--json");
        }
        command.arg("ui").output().expect("avail runs")
    };
    let out = ui(agent.addr().to_string(), false);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), url);

    // A wildcard address, as agent.addr holds for `api = "0.0.0.0:PORT"`, is reached through
    // loopback, so the agent's Host check lets the command line in.
    let out = ui(format!("0.0.0.0:{port}"), true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(printed["url"], url);

    agent.stop().await;
    let out = ui(format!("127.0.0.1:{port}"), false);
    assert!(!out.status.success(), "no agent, no address");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no running agent"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_long_poll_does_not_hold_up_stopping_the_agent() {
    let agent = Agent::alone().await;
    let mut since = agent.get("/events?wait=0").await.json()["next"].clone();
    // The agent reports its unreachable servers as events, which end a poll early: poll
    // again from there until one is waiting on the agent.
    let mut early = 0;
    let poll = loop {
        let (host, addr) = (agent.host(), agent.addr());
        let path = format!("/events?since={since}&wait=25");
        let poll =
            tokio::spawn(async move { http(addr, "GET", &path, &[("Host", &host)], None).await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        if !poll.is_finished() {
            break poll;
        }
        since = poll.await.expect("the poll task").json()["next"].clone();
        early += 1;
        assert!(
            early < 20,
            "events never stop long enough for a poll to wait"
        );
    };
    let began = std::time::Instant::now();
    agent.stop().await;
    let took = began.elapsed();
    assert!(took < Duration::from_secs(5), "stopping took {took:?}");
    let reply = poll.await.expect("the poll task");
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert!(reply.json()["events"].is_array(), "{:?}", reply.body);
}
