//! The real `avail-server` binary for integration tests: avail-client's, and avail's, which
//! include this file by path.
//!
//! The binary is found next to the test's own executable (`target/<profile>/avail-server`).
//! `cargo test --workspace` always builds it, because avail-server's own integration tests need
//! it; when only the testing package is built and the binary is missing, it is built once with
//! the same cargo. `CARGO_BIN_EXE_*` is only available inside avail-server's package.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The domain the server serves and its users are in.
pub const DOMAIN: &str = "example.com";

fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps layout");
    let path = dir.join(format!("avail-server{}", std::env::consts::EXE_SUFFIX));
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "avail-server", "--bin", "avail-server"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building avail-server failed");
    }
    path
}

/// A local TCP port nothing listens on (at the time of asking).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A running `avail-server` with its own data directory; killed when dropped.
pub struct ServerProcess {
    child: Child,
    pub dir: tempfile::TempDir,
}

impl ServerProcess {
    /// Add `users` (name and password, in [`DOMAIN`]), start the server for [`DOMAIN`]
    /// without SIP over UDP and with the `listen` options, logging to `server.log` in its
    /// data directory, and wait until it accepts connections on each of `ports`.
    pub fn start(users: &[(&str, &str)], listen: &[&str], ports: &[u16]) -> ServerProcess {
        let bin = server_binary();
        let dir = tempfile::tempdir().expect("temp dir");
        for (user, password) in users {
            let out = Command::new(&bin)
                .arg("--data-dir")
                .arg(dir.path())
                .args(["user", "add", &format!("{user}@{DOMAIN}")])
                .args(["--password", password])
                .output()
                .expect("user add runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let log = std::fs::File::create(dir.path().join("server.log")).expect("log file");
        let child = Command::new(&bin)
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--domain", DOMAIN, "--sip-udp", "off"])
            .args(listen)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("server starts");
        let server = ServerProcess { child, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while ports
            .iter()
            .any(|port| TcpStream::connect(("127.0.0.1", *port)).is_err())
        {
            assert!(
                Instant::now() < deadline,
                "server did not start: {}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// [`Self::start`] with SIP over TCP and XCAP over plain HTTP only, on free ports of
    /// 127.0.0.1, once both accept; returns the server and those two ports.
    // Every test binary compiles this file; only avail's use this.
    #[allow(dead_code)]
    pub fn start_plain(users: &[(&str, &str)]) -> (ServerProcess, u16, u16) {
        let (sip, xcap) = (free_port(), free_port());
        let server = ServerProcess::start(
            users,
            &[
                "--sip-tcp",
                &format!("127.0.0.1:{sip}"),
                "--sip-tls",
                "off",
                "--http",
                &format!("127.0.0.1:{xcap}"),
                "--https",
                "off",
            ],
            &[sip, xcap],
        );
        (server, sip, xcap)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An agent's settings for `user`: a configuration file in `dir` whose top has `top_lines`
/// (the local API on a free port is always there) and whose `[account]` has
/// `account_lines` after the address and password.
// Every test binary compiles this file; only avail's use this.
#[allow(dead_code)]
pub fn agent_settings(
    dir: &Path,
    top_lines: &str,
    user: &str,
    password: &str,
    account_lines: &str,
) -> avail_client::config::AccountSettings {
    let config = format!(
        "api = \"127.0.0.1:0\"\n{top_lines}\n[account]\naddress = \"{user}@{DOMAIN}\"\n\
         password = \"{password}\"\n{account_lines}\n"
    );
    let path = dir.join("avail.toml");
    std::fs::write(&path, config).expect("config written");
    avail_client::config::AccountSettings::load(&path, None).expect("config loads")
}
