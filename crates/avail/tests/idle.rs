//! The agent reads the desktop's idle time from a real X server (Xvfb, through the
//! MIT-SCREEN-SAVER extension) and publishes auto-away by itself: with no input the published
//! state becomes idle and away once the threshold has passed, `xdotool mousemove` brings it
//! back. A real Wayland compositor (headless sway) does the same through its idle
//! notifications, `wtype` typing being the input. Without a usable display server (lost,
//! frozen, lacking the extension, switched off, or never there) the agent keeps working and
//! `avail idle` / `POST /idle` report the idle time.
//!
//! Needs Debian's `xvfb`, `xdotool`, `sway` and `wtype` packages; without them the tests
//! fail, saying so.

#[path = "../../avail-client/tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use avail::agent::{start, AgentHandle};
use avail::cli::ApiClient;
use axum::http::Method;
use serde_json::{json, Value};
use support::{agent_settings, ServerProcess};

const PACKAGES: &str =
    "install Debian's xvfb and xdotool packages (apt-get install -y xvfb xdotool)";
/// The idle threshold of the agents here.
const THRESHOLD: Duration = Duration::from_secs(3);
/// Registration, and a state change the agent has to notice, on a loaded machine.
const WAIT: Duration = Duration::from_secs(20);

/// An Xvfb server of its own, killed when dropped.
struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    fn start() -> Xvfb {
        Xvfb::start_with(&[])
    }

    /// An Xvfb server with `options` too.
    fn start_with(options: &[&str]) -> Xvfb {
        // With -displayfd the server picks a free display number itself and writes it once it
        // accepts connections: no race with parallel tests or other X servers on the machine.
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-nolisten",
                "tcp",
                "-screen",
                "0",
                "320x240x24",
            ])
            .args(options)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run Xvfb ({e}): {PACKAGES}"));
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            let _ = BufReader::new(stdout).read_line(&mut line);
        }
        let number = line.trim().to_owned();
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            let _ = child.kill();
            panic!("Xvfb did not report a display ({line:?}): {PACKAGES}");
        }
        assert!(
            Path::new(&format!("/tmp/.X11-unix/X{number}")).exists(),
            "Xvfb :{number} has no socket"
        );
        Xvfb {
            child,
            display: format!(":{number}"),
        }
    }

    /// User input: the pointer moves to (`x`, `y`), through XTEST like a real device.
    fn move_pointer(&self, x: u16, y: u16) {
        let status = Command::new("xdotool")
            .args(["mousemove", &x.to_string(), &y.to_string()])
            .env("DISPLAY", &self.display)
            .status()
            .unwrap_or_else(|e| panic!("cannot run xdotool ({e}): {PACKAGES}"));
        assert!(status.success(), "xdotool mousemove on {}", self.display);
    }

    /// Sends the server a signal (`STOP`, `CONT`, `TERM`).
    fn signal(&self, name: &str) {
        let _ = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status();
    }
}

impl Drop for Xvfb {
    /// Terminated rather than killed, so that it removes its socket and lock file.
    fn drop(&mut self) {
        self.signal("TERM");
        self.signal("CONT");
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless sway of its own (wlroots' headless backend: no GPU, no input devices), killed
/// when dropped. Sway refuses to run as root, so under root it runs as `nobody`, in a runtime
/// directory of that user's.
struct Sway {
    child: Child,
    runtime_dir: tempfile::TempDir,
    socket: std::path::PathBuf,
}

const WAYLAND_PACKAGES: &str =
    "install Debian's sway and wtype packages (apt-get install -y sway wtype)";

impl Sway {
    fn start() -> Sway {
        const NOBODY: u32 = 65534;
        let runtime_dir = tempfile::tempdir().expect("temp dir");
        let mut command = if running_as_root() {
            std::os::unix::fs::chown(runtime_dir.path(), Some(NOBODY), Some(NOBODY))
                .expect("chown the runtime directory");
            let mut setpriv = Command::new("setpriv");
            setpriv.args([
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                "sway",
            ]);
            setpriv
        } else {
            Command::new("sway")
        };
        let child = command
            .args(["--config", "/dev/null"])
            .env("XDG_RUNTIME_DIR", runtime_dir.path())
            .env("HOME", runtime_dir.path())
            .env("WLR_BACKENDS", "headless")
            .env("WLR_LIBINPUT_NO_DEVICES", "1")
            .env("WLR_RENDERER", "pixman")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("DISPLAY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run sway ({e}): {WAYLAND_PACKAGES}"));
        let mut sway = Sway {
            child,
            socket: std::path::PathBuf::new(),
            runtime_dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = sway.child.try_wait() {
                panic!("sway exited ({status}): {WAYLAND_PACKAGES}");
            }
            let socket = std::fs::read_dir(sway.runtime_dir.path())
                .expect("runtime directory")
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .find(|path| {
                    path.file_name()
                        .and_then(|name| name.to_str())
                        .is_some_and(|name| {
                            name.starts_with("wayland-") && !name.ends_with(".lock")
                        })
                });
            if let Some(socket) = socket {
                sway.socket = socket;
                return sway;
            }
            assert!(Instant::now() < deadline, "sway made no Wayland socket");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// User input: a key typed through the virtual keyboard protocol, as a real one would.
    fn type_key(&self) {
        let status = Command::new("wtype")
            .arg("x")
            .env("WAYLAND_DISPLAY", &self.socket)
            .env("XDG_RUNTIME_DIR", self.runtime_dir.path())
            .status()
            .unwrap_or_else(|e| panic!("cannot run wtype ({e}): {WAYLAND_PACKAGES}"));
        assert!(status.success(), "wtype on {}", self.socket.display());
    }
}

impl Drop for Sway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().next().map(|uid| uid == "0"))
            .unwrap_or(false)
    })
}

/// A display number no X server uses: neither its socket nor its lock file exists.
fn missing_display() -> String {
    (1000..2000)
        .find(|n| {
            !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                && !Path::new(&format!("/tmp/.X{n}-lock")).exists()
        })
        .map(|n| format!(":{n}"))
        .expect("a free display number")
}

struct Agent {
    handle: AgentHandle,
    api: ApiClient,
    _server: ServerProcess,
    _dir: tempfile::TempDir,
}

impl Agent {
    /// Alice's agent against a real avail-server over TCP, its file starting with
    /// `idle_lines`, its threshold [`THRESHOLD`]; returns once registered and synced.
    /// An agent with this `idle_source` and `x11_display`.
    async fn reading(source: &str, display: &str) -> Agent {
        Agent::start(&format!(
            "idle_source = \"{source}\"\nx11_display = \"{display}\""
        ))
        .await
    }

    async fn start(idle_lines: &str) -> Agent {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let (server, sip, http) = ServerProcess::start_plain(&[("alice", "secret")]);
        let dir = tempfile::tempdir().expect("temp dir");
        let account = format!(
            "transport = \"tcp\"\noutbound_proxy = \"127.0.0.1:{sip}\"\n\
             xcap_root = \"http://127.0.0.1:{http}/xcap-root\"\nidle_threshold_secs = {}",
            THRESHOLD.as_secs()
        );
        let settings = agent_settings(dir.path(), idle_lines, "alice", "secret", &account);
        let handle = start(settings).await.expect("agent starts");
        let api = ApiClient::new(&handle.api_addr.to_string()).expect("API client");
        let agent = Agent {
            handle,
            api,
            _server: server,
            _dir: dir,
        };
        agent
            .status_until("registered and synced", |s| {
                s["sip"]["registered"] == true && s["xcap"]["ready"] == true
            })
            .await;
        agent
    }

    async fn status(&self) -> Value {
        self.api.get("/status").await.expect("GET /status answers")
    }

    /// Polls `GET /status` until `done` holds, failing with the last answer after [`WAIT`];
    /// returns it and when it was seen.
    async fn status_until(&self, what: &str, done: impl Fn(&Value) -> bool) -> (Value, Instant) {
        let deadline = Instant::now() + WAIT;
        loop {
            let status = self.status().await;
            if done(&status) {
                return (status, Instant::now());
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {WAIT:?}; last /status: {status:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Asserts for `long` that the published state stays active and available.
    async fn stays_active(&self, long: Duration, why: &str) {
        let end = Instant::now() + long;
        while Instant::now() < end {
            let status = self.status().await;
            assert!(active(&status), "{why}: {status:#}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Asserts that nothing reads the desktop (the state stays active for twice the
    /// threshold without input), that `POST /idle` still reports idle time, then stops.
    async fn reads_no_idle_time_but_takes_reports(self, why: &str) {
        self.stays_active(THRESHOLD * 2, why).await;
        assert!(
            away(&self.report_idle(3600).await),
            "{why}: POST /idle still works"
        );
        self.handle.stop().await;
    }

    async fn report_idle(&self, seconds: u64) -> Value {
        self.api
            .call(Method::POST, "/idle", Some(json!({ "seconds": seconds })))
            .await
            .expect("POST /idle answers")
    }
}

/// Auto-away: idle and away published, the user's own choice (available) kept for the return.
fn away(status: &Value) -> bool {
    status["published"]["idle"] == true
        && status["published"]["status"] == "away"
        && status["status"] == "available"
}

fn active(status: &Value) -> bool {
    status["published"]["idle"] == false && status["published"]["status"] == "available"
}

/// The desktop's `input`, then none: active at once, away once the threshold has passed;
/// input again brings the user back, and without more, away again.
async fn away_and_back(agent: &Agent, mut input: impl FnMut()) {
    for round in ["", " again"] {
        input();
        let typed = Instant::now();
        agent
            .status_until(&format!("active after input{round}"), active)
            .await;
        let (_, seen) = agent
            .status_until(&format!("away{round} without input"), |s| {
                assert!(away(s) || active(s), "{s:#}");
                away(s)
            })
            .await;
        assert!(
            seen - typed >= THRESHOLD,
            "away{round} {:?} after the last input, before the threshold {THRESHOLD:?}",
            seen - typed
        );
    }
}

/// The display server is gone: the agent carries on and `POST /idle` reports the idle time.
async fn carries_on_without_the_display(agent: Agent, why: &str) {
    let back = agent.report_idle(0).await;
    assert!(active(&back), "{back:#}");
    agent.reads_no_idle_time_but_takes_reports(why).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_x_servers_idle_time_drives_auto_away() {
    let x = Xvfb::start();
    let agent = Agent::reading("x11", &x.display).await;

    // Xvfb may have been idle long enough already: input first, seen by the agent.
    let mut corner = 0;
    away_and_back(&agent, || {
        corner = (corner + 1) % 2;
        x.move_pointer(10 + 190 * corner, 10 + 140 * corner);
    })
    .await;

    drop(x);
    carries_on_without_the_display(agent, "no reading once the X server is gone").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wayland_compositors_idle_notifications_drive_auto_away() {
    let sway = Sway::start();
    let agent = Agent::start(&format!(
        "idle_source = \"wayland\"\nwayland_display = \"{}\"",
        sway.socket.display()
    ))
    .await;

    // The compositor may have told of idleness already: input first, seen by the agent.
    away_and_back(&agent, || sway.type_key()).await;

    drop(sway);
    carries_on_without_the_display(agent, "no notification once the compositor is gone").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_x_server_holds_up_neither_the_api_nor_the_stop() {
    let x = Xvfb::start();
    let agent = Agent::reading("x11", &x.display).await;
    agent.status_until("away: the server is read", away).await;
    x.signal("STOP");
    assert!(active(&agent.report_idle(0).await), "the API answers");
    agent
        .stays_active(THRESHOLD * 2, "no reading from a frozen server")
        .await;
    let stopped = tokio::time::timeout(Duration::from_secs(2), agent.handle.stop()).await;
    assert!(stopped.is_ok(), "the agent stops at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_idle_source_off_the_x_server_is_not_read() {
    let x = Xvfb::start();
    let agent = Agent::reading("off", &x.display).await;
    agent
        .reads_no_idle_time_but_takes_reports("no input, yet off means not read")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_x_server_without_mit_screen_saver_is_not_read() {
    let x = Xvfb::start_with(&["-extension", "MIT-SCREEN-SAVER"]);
    let agent = Agent::reading("x11", &x.display).await;
    agent
        .reads_no_idle_time_but_takes_reports("no idle time without the extension")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_x_server_avail_idle_reports_the_idle_time() {
    let agent = Agent::reading("x11", &missing_display()).await;
    agent.stays_active(THRESHOLD * 2, "nothing to read").await;

    let api = agent.handle.api_addr.to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_avail"))
        .args(["--api", &api, "idle", "3600"])
        .output()
        .expect("avail runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(away(&agent.status().await), "`avail idle` made it away");
    assert!(
        active(&agent.report_idle(1).await),
        "POST /idle: input a second ago"
    );
    agent.handle.stop().await;
}
