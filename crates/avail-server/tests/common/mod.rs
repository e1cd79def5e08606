//! Shared harness for the wire-level tests: starts the real `avail-server` binary on free
//! loopback ports with a temporary data directory, and speaks SIP to it over real sockets.
#![allow(dead_code)] // each test binary uses a different subset of the harness

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sip_message::{Limits, Message, StreamDecoder, StreamItem};

pub const DOMAIN: &str = "example.com";
const BINARY: &str = env!("CARGO_BIN_EXE_avail-server");

pub fn binary() -> &'static str {
    BINARY
}

/// Runs `avail-server` with `args` to completion (account management commands).
pub fn run_cli(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(BINARY)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("avail-server runs")
}

pub fn add_user(data_dir: &Path, address: &str, password: &str) {
    let out = run_cli(data_dir, &["user", "add", address, "--password", password]);
    assert!(
        out.status.success(),
        "user add failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A port free on 127.0.0.1 for both UDP and TCP (SIP listens on both with one number).
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port pair found");
}

pub struct Server {
    child: Option<Child>,
    pub data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    pub sip_port: u16,
    pub tls_port: u16,
    log_path: PathBuf,
}

impl Server {
    /// A fresh server for `example.com` with the given accounts.
    pub fn start(users: &[(&str, &str)]) -> Server {
        let temp = tempfile::tempdir().expect("temp dir");
        for (user, password) in users {
            add_user(temp.path(), &format!("{user}@{DOMAIN}"), password);
        }
        let data_dir = temp.path().to_owned();
        Server::launch(data_dir, Some(temp), &[])
    }

    /// A fresh server with XCAP over plain HTTP too; returns it and the XCAP root URL.
    pub fn start_with_xcap(users: &[(&str, &str)]) -> (Server, String) {
        Server::start_domain(DOMAIN, users, &[])
    }

    /// [`Self::start_with_xcap`] for another domain, with extra flags.
    pub fn start_domain(domain: &str, users: &[(&str, &str)], extra: &[&str]) -> (Server, String) {
        let temp = tempfile::tempdir().expect("temp dir");
        for (user, password) in users {
            add_user(temp.path(), &format!("{user}@{domain}"), password);
        }
        let http = format!("127.0.0.1:{}", free_port());
        let data_dir = temp.path().to_owned();
        let server = Server::spawn_in(domain, data_dir, Some(temp), &http, "off", extra);
        (server, format!("http://{http}/xcap-root"))
    }

    /// Start on an existing data directory (restart tests), with extra flags.
    pub fn launch(data_dir: PathBuf, temp: Option<tempfile::TempDir>, extra: &[&str]) -> Server {
        Server::spawn(data_dir, temp, "off", "off", extra)
    }

    /// Start with the given XCAP listeners (`ADDR` or `off`) and extra flags.
    pub fn spawn(
        data_dir: PathBuf,
        temp: Option<tempfile::TempDir>,
        http: &str,
        https: &str,
        extra: &[&str],
    ) -> Server {
        Server::spawn_in(DOMAIN, data_dir, temp, http, https, extra)
    }

    /// [`Self::spawn`] serving `domain`.
    pub fn spawn_in(
        domain: &str,
        data_dir: PathBuf,
        temp: Option<tempfile::TempDir>,
        http: &str,
        https: &str,
        extra: &[&str],
    ) -> Server {
        let sip_port = free_port();
        let tls_port = free_port();
        let log_path = data_dir.join(format!("server-{sip_port}.log"));
        let log = std::fs::File::create(&log_path).expect("log file");
        let child = Command::new(BINARY)
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--domain", domain])
            .args(["--sip-udp", &format!("127.0.0.1:{sip_port}")])
            .args(["--sip-tcp", &format!("127.0.0.1:{sip_port}")])
            .args(["--sip-tls", &format!("127.0.0.1:{tls_port}")])
            .args(["--http", http, "--https", https])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("server starts");
        let server = Server {
            child: Some(child),
            data_dir,
            _temp: temp,
            sip_port,
            tls_port,
            log_path,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(mut conn) = SipConn::tcp(self.tcp_addr()) {
                conn.send(&options_request(self.tcp_addr(), "TCP"));
                if let Some(response) = conn.try_recv(Duration::from_secs(2)) {
                    if response.status() == Some(200) {
                        return;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not become ready; log:\n{}", self.log());
    }

    pub fn tcp_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.sip_port))
    }

    pub fn tls_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.tls_port))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Stop the process (SIGKILL: a restart test must survive an unclean stop) and hand
    /// back the data directory so the next server can start on it.
    pub fn kill(mut self) -> (PathBuf, Option<tempfile::TempDir>) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        (self.data_dir.clone(), self._temp.take())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn options_request(target: SocketAddr, transport: &str) -> String {
    format!(
        "OPTIONS sip:{target} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} 127.0.0.1:9;branch=z9hG4bK-ready-{n};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@{DOMAIN}>;tag=p{n}\r\n\
         To: <sip:{target}>\r\n\
         Call-ID: ready-{n}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n",
        n = unique()
    )
}

/// A process-wide counter for branches, tags and Call-IDs.
pub fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed) * 1000 + u64::from(std::process::id() % 1000)
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// A SIP connection over TCP or TLS that frames what it reads like the server does.
pub struct SipConn {
    stream: Box<dyn Stream>,
    decoder: StreamDecoder,
    tcp: TcpStream,
}

impl SipConn {
    pub fn tcp(addr: SocketAddr) -> std::io::Result<SipConn> {
        let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        tcp.set_nodelay(true)?;
        Ok(SipConn {
            stream: Box::new(tcp.try_clone()?),
            decoder: StreamDecoder::new(Limits::default()),
            tcp,
        })
    }

    /// TLS, trusting only the certificate the server generated in its data directory.
    pub fn tls(addr: SocketAddr, data_dir: &Path) -> SipConn {
        let pem = std::fs::read(data_dir.join("tls/cert.pem")).expect("generated certificate");
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            roots.add(cert.expect("pem")).expect("trusted");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocols")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let session = rustls::ClientConnection::new(Arc::new(config), name).expect("tls session");
        let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
        let stream = rustls::StreamOwned::new(session, tcp.try_clone().expect("clone"));
        SipConn {
            stream: Box::new(stream),
            decoder: StreamDecoder::new(Limits::default()),
            tcp,
        }
    }

    pub fn send(&mut self, message: &str) {
        self.send_bytes(message.as_bytes());
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
        self.stream.flush().expect("flush");
    }

    /// Whatever bytes arrive within `timeout` (at most one read), bypassing the framing.
    pub fn read_raw(&mut self, timeout: Duration) -> Vec<u8> {
        self.tcp.set_read_timeout(Some(timeout)).expect("timeout");
        let mut chunk = [0u8; 4096];
        match self.stream.read(&mut chunk) {
            Ok(n) => chunk[..n].to_vec(),
            Err(_) => Vec::new(),
        }
    }

    /// Next framed item within `timeout`, None on timeout or close.
    pub fn try_recv_item(&mut self, timeout: Duration) -> Option<StreamItem> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.decoder.next_item() {
                Ok(Some(item)) => return Some(item),
                Ok(None) => {}
                Err(error) => panic!("server sent an unframeable stream: {error}"),
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            self.tcp
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .ok()?;
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.decoder.push(&chunk[..n]),
                Err(_) => return None,
            }
        }
    }

    pub fn try_recv(&mut self, timeout: Duration) -> Option<Message> {
        loop {
            match self.try_recv_item(timeout)? {
                StreamItem::Message(bytes) => {
                    return Some(
                        Message::parse(bytes, &Limits::default())
                            .expect("server sent a valid message"),
                    )
                }
                StreamItem::Ping | StreamItem::Pong => continue,
            }
        }
    }

    pub fn recv(&mut self) -> Message {
        self.try_recv(Duration::from_secs(10))
            .expect("a message from the server within 10 s")
    }

    /// True when the server closed the connection within `timeout`.
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut chunk = [0u8; 4096];
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            self.tcp
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .ok();
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return false
                }
                Err(_) => return true,
            }
        }
        false
    }
}

/// A UDP SIP socket bound on loopback.
pub struct SipUdp {
    pub socket: UdpSocket,
    pub server: SocketAddr,
}

impl SipUdp {
    pub fn new(server: SocketAddr) -> SipUdp {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        SipUdp { socket, server }
    }
    pub fn send(&self, message: &[u8]) {
        self.socket.send_to(message, self.server).expect("send");
    }
    pub fn try_recv(&self, timeout: Duration) -> Option<Message> {
        let datagram = self.try_recv_raw(timeout)?;
        Some(Message::parse(datagram, &Limits::default()).expect("server sent a valid message"))
    }
    pub fn try_recv_raw(&self, timeout: Duration) -> Option<Bytes> {
        self.recv_from(timeout).map(|(datagram, _)| datagram)
    }

    /// The next datagram and who sent it (after a restart, NOTIFYs come from whichever
    /// server is running).
    pub fn recv_from(&self, timeout: Duration) -> Option<(Bytes, SocketAddr)> {
        self.socket.set_read_timeout(Some(timeout)).ok()?;
        let mut buf = vec![0u8; 65535];
        let (n, from) = self.socket.recv_from(&mut buf).ok()?;
        buf.truncate(n);
        Some((Bytes::from(buf), from))
    }

    fn recv_message(&self, timeout: Duration) -> Option<(Message, SocketAddr)> {
        let (datagram, from) = self.recv_from(timeout)?;
        let message = Message::parse(datagram, &Limits::default()).expect("a valid message");
        Some((message, from))
    }

    /// Answers a request with 200 OK.
    pub fn answer(&self, request: &Message, to: SocketAddr) {
        let reply = sip_message::response_to(request, 200, "OK", None).finish(None, b"");
        self.socket.send_to(&reply, to).expect("send");
    }

    /// The next response; requests arriving meanwhile are answered.
    pub fn next_response(&self) -> Message {
        loop {
            let (message, from) = self
                .recv_message(Duration::from_secs(5))
                .expect("a response");
            if !message.is_request() {
                return message;
            }
            self.answer(&message, from);
        }
    }

    /// The next request whose body contains `text`, answered; the earlier ones are answered
    /// too.
    pub fn request_with(&self, text: &str) -> Message {
        loop {
            let (message, from) = self
                .recv_message(Duration::from_secs(5))
                .unwrap_or_else(|| panic!("a request with {text}"));
            if !message.is_request() {
                continue;
            }
            self.answer(&message, from);
            if String::from_utf8_lossy(&message.body()).contains(text) {
                return message;
            }
        }
    }
}

/// Cumulative counters of one SIPp run, from its `-trace_stat` file.
#[derive(Debug)]
pub struct SippRun {
    pub successful: u64,
    pub failed: u64,
    pub retransmissions: u64,
}

/// Runs SIPp as a UAC against the server; panics with SIPp's error log when a call failed.
pub fn sipp(
    scenario: &str,
    transport: &str,
    target: SocketAddr,
    csv: &str,
    calls: usize,
    rate: usize,
) -> SippRun {
    sipp_with(scenario, transport, target, csv, calls, rate, &[])
}

/// [`sipp`] with extra SIPp arguments (`-aa`, `-key name value`).
pub fn sipp_with(
    scenario: &str,
    transport: &str,
    target: SocketAddr,
    csv: &str,
    calls: usize,
    rate: usize,
    extra: &[&str],
) -> SippRun {
    let dir = tempfile::tempdir().expect("temp dir");
    let inf = dir.path().join("users.csv");
    std::fs::write(&inf, csv).expect("csv");
    let scenario_path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(scenario);
    let stats = dir.path().join("stats.csv");
    let output = Command::new("sipp")
        .arg(target.to_string())
        .args(["-i", "127.0.0.1", "-p", &free_port().to_string()])
        .arg("-sf")
        .arg(&scenario_path)
        .arg("-inf")
        .arg(&inf)
        .args(["-t", transport])
        .args([
            "-m",
            &calls.to_string(),
            "-r",
            &rate.to_string(),
            "-l",
            "200",
        ])
        .args([
            "-timeout",
            "120",
            "-timeout_error",
            "-max_recv_loops",
            "1000",
        ])
        .arg("-nostdin")
        .args(extra)
        // A failed call must not make SIPp send a BYE for a REGISTER "dialog".
        .args(["-default_behaviors", "all,-bye", "-max_socket", "1000"])
        .arg("-trace_err")
        .arg("-trace_stat")
        .arg("-stf")
        .arg(&stats)
        .arg("-error_file")
        .arg(dir.path().join("errors.log"))
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run sipp ({e}): install Debian's sip-tester (scripts/test does)")
        });
    if !output.status.success() {
        let errors = std::fs::read_to_string(dir.path().join("errors.log")).unwrap_or_default();
        panic!(
            "sipp {scenario} over {transport} failed ({}):\n{}\n{}\nerrors:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            errors.chars().take(4000).collect::<String>()
        );
    }
    let stats = std::fs::read_to_string(&stats).expect("sipp statistics file");
    let mut rows = stats.lines().filter(|l| !l.trim().is_empty());
    let head: Vec<&str> = rows.next().expect("statistics header").split(';').collect();
    let last: Vec<&str> = rows
        .next_back()
        .expect("statistics row")
        .split(';')
        .collect();
    let counter = |name: &str| -> u64 {
        let index = head
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no {name} column"));
        last[index].trim().parse().expect("numeric counter")
    };
    SippRun {
        successful: counter("SuccessfulCall(C)"),
        failed: counter("FailedCall(C)"),
        retransmissions: counter("Retransmissions(C)"),
    }
}

/// SIPp injection file: `user;domain;password;uuid;[authentication ...];[authentication ...]`
/// with the right and a wrong password (SIPp evaluates `[authentication]` inside a field,
/// and per-user credentials cannot be given any other way).
pub fn users_csv(users: &[(&str, &str)]) -> String {
    let mut csv = String::from("SEQUENTIAL\n");
    for (i, (user, password)) in users.iter().enumerate() {
        csv.push_str(&format!(
            "{user};{DOMAIN};{password};6f1c2a3e-0000-4000-8000-{i:012};\
             [authentication username={user} password={password}];\
             [authentication username={user} password=wrong-{password}]\n"
        ));
    }
    csv
}
