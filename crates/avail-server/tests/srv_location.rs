//! RFC 3263 on the wire: the server finds other domains' SIP servers through DNS NAPTR and SRV
//! records and their targets' address records, asking a real name server (Debian's dnsmasq, package
//! dnsmasq-base) given with `--nameserver`. The proxy relays a request to the server an SRV
//! record names, on the port it names, over the transport NAPTR records prefer (TLS too,
//! checking the domain's name), and to the next SRV target when the first is down; the resource list server's back-end subscription
//! goes there too, and moves on to the next SRV target when the first refuses the
//! connection (§4.3); a domain without SIP servers gets 404. Lookups run beside the SIP
//! core: a name server that never answers holds up only the requests waiting for it.

mod ua;
mod xcap_common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sip_message::{Limits, Message, StreamDecoder, StreamItem};
use ua::{body, header, Ua};
use xcap_common::common::{free_port, options_request, unique, Server, SipConn};
use xcap_common::Client;

const LOCAL: &str = "local.test";
const REMOTE: &str = "remote.test";

/// dnsmasq answering for `.test` from its `--srv-host` / `--host-record` options `records`,
/// NXDOMAIN for any other name there; names elsewhere it refuses (no upstream servers).
struct NameServer {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl NameServer {
    fn start(records: &[String]) -> NameServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("dnsmasq.log");
        let port = free_port();
        // Debian installs it in /usr/sbin, which a user's PATH leaves out.
        let installed = Path::new("/usr/sbin/dnsmasq");
        let program = if installed.exists() {
            installed
        } else {
            Path::new("dnsmasq")
        };
        let child = Command::new(program)
            .args([
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                "--pid-file=",
                // Stays who it is (root in CI) instead of switching to `nobody`.
                "--user=root",
                "--local=/test/",
                "--log-queries",
                "--log-facility=-",
            ])
            .arg(format!("--port={port}"))
            .args(records)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot run dnsmasq ({error}): install Debian's dnsmasq-base (scripts/test does)")
            });
        let mut server = NameServer {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log,
            _dir: dir,
        };
        server.wait_ready();
        server
    }

    /// dnsmasq serves TCP on its port too: once it accepts, it answers.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("dnsmasq exited ({status}):\n{}", self.log());
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("dnsmasq did not start:\n{}", self.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NameServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn srv_host(service: &str, target: &str, port: u16, priority: u16) -> String {
    format!("--srv-host={service},{target},{port},{priority},0")
}

fn host_record(name: &str) -> String {
    format!("--host-record={name},127.0.0.1")
}

/// The SIP server of the other domain: a TCP listener speaking just enough SIP.
struct RemoteServer {
    listener: TcpListener,
}

impl RemoteServer {
    fn bind() -> RemoteServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("non-blocking accept");
        RemoteServer { listener }
    }

    fn port(&self) -> u16 {
        self.listener.local_addr().expect("bound").port()
    }

    /// The connection our server opens, within 10 s.
    fn accept(&self) -> Peer {
        let socket = self.accept_tcp();
        Peer {
            stream: Box::new(socket.try_clone().expect("clone")),
            socket,
            decoder: StreamDecoder::new(Limits::default()),
        }
    }

    fn accept_tcp(&self) -> TcpStream {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).expect("blocking reads");
                    return stream;
                }
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(
                        Instant::now() < deadline,
                        "nothing connected to the server SRV names"
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(error) => panic!("accept: {error}"),
            }
        }
    }
}

/// The other domain's server over TLS, with a self-signed certificate for `name` (our
/// server trusts it through `--tls-ca-file`).
struct TlsRemoteServer {
    tcp: RemoteServer,
    config: std::sync::Arc<rustls::ServerConfig>,
    ca_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl TlsRemoteServer {
    fn bind(name: &str) -> TlsRemoteServer {
        let certified =
            rcgen::generate_simple_self_signed(vec![name.to_owned()]).expect("a certificate");
        let dir = tempfile::tempdir().expect("temp dir");
        let ca_file = dir.path().join("remote.pem");
        std::fs::write(&ca_file, certified.cert.pem()).expect("write");
        let key = rustls::pki_types::PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der());
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key.into())
            .expect("a server configuration");
        TlsRemoteServer {
            tcp: RemoteServer::bind(),
            config: std::sync::Arc::new(config),
            ca_file,
            _dir: dir,
        }
    }

    /// The connection our server opens, once its TLS handshake is done.
    fn accept(&self) -> Result<Peer, std::io::Error> {
        let socket = self.tcp.accept_tcp();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let connection = rustls::ServerConnection::new(self.config.clone()).expect("a session");
        let mut stream = rustls::StreamOwned::new(connection, socket.try_clone().expect("clone"));
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(Peer {
            stream: Box::new(stream),
            socket,
            decoder: StreamDecoder::new(Limits::default()),
        })
    }
}

trait ByteStream: Read + Write {}
impl<T: Read + Write> ByteStream for T {}

/// One connection to the other domain's server, framed as SIP over TCP or TLS.
struct Peer {
    stream: Box<dyn ByteStream>,
    /// The TCP socket under `stream`, for read timeouts.
    socket: TcpStream,
    decoder: StreamDecoder,
}

impl Peer {
    fn recv(&mut self) -> Message {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.decoder.next_item().expect("a framed stream") {
                Some(StreamItem::Message(bytes)) => {
                    return Message::parse(bytes, &Limits::default()).expect("a valid message")
                }
                Some(StreamItem::Ping | StreamItem::Pong) => continue,
                None => {}
            }
            let left = deadline
                .checked_duration_since(Instant::now())
                .expect("a message within 10 s");
            self.socket.set_read_timeout(Some(left)).expect("timeout");
            let mut chunk = [0u8; 16 * 1024];
            let n = self.stream.read(&mut chunk).expect("a message within 10 s");
            assert!(n > 0, "our server closed the connection");
            self.decoder.push(&chunk[..n]);
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    fn answer(&mut self, request: &Message, to_tag: &str, headers: &[(&str, &str)]) {
        let mut writer = sip_message::response_to(request, 200, "OK", Some(to_tag));
        for (name, value) in headers {
            writer.header(name, value);
        }
        let response = writer.finish(None, b"");
        self.send(&response);
    }
}

/// A name server that never answers: a UDP socket no one reads, and on the same port a TCP
/// listener whose connections no one serves (the resolver may ask over TCP too).
struct SilentNameServer {
    addr: SocketAddr,
    _udp: UdpSocket,
    _tcp: TcpListener,
}

impl SilentNameServer {
    fn bind() -> SilentNameServer {
        for _ in 0..100 {
            let udp = UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
            let addr = udp.local_addr().expect("bound");
            if let Ok(tcp) = TcpListener::bind(addr) {
                return SilentNameServer {
                    addr,
                    _udp: udp,
                    _tcp: tcp,
                };
            }
        }
        panic!("no port free for both UDP and TCP");
    }
}

/// A local server for `local.test` asking the name server at `dns`, with `extra` flags; and
/// its XCAP root.
fn local_server(dns: SocketAddr, users: &[(&str, &str)], extra: &[&str]) -> (Server, String) {
    let dns = dns.to_string();
    let mut flags = vec!["--nameserver", dns.as_str()];
    flags.extend_from_slice(extra);
    Server::start_domain(LOCAL, users, &flags)
}

fn message_to(uri: &str) -> String {
    request_to("MESSAGE", uri)
}

/// A `method` request to `uri` from a user of a domain we do not serve (so not challenged).
fn request_to(method: &str, uri: &str) -> String {
    let n = unique();
    format!(
        "{method} {uri} SIP/2.0\r\n\
         Via: SIP/2.0/TCP 127.0.0.1:5098;branch=z9hG4bK-srv{n}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:dave@elsewhere.example.net>;tag=d{n}\r\n\
         To: <{uri}>\r\n\
         Call-ID: srv-{n}\r\n\
         CSeq: 1 {method}\r\n\
         Contact: <sip:dave@127.0.0.1:5098;transport=tcp>\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: 5\r\n\r\nhello"
    )
}

/// The CANCEL of `invite` (RFC 3261 §9.1): its Request-URI, top Via, From, To, Call-ID and
/// CSeq number.
fn cancel_of(invite: &str) -> String {
    let invite = Message::parse(invite.to_owned().into(), &Limits::default()).expect("valid");
    format!(
        "CANCEL {uri} SIP/2.0\r\n\
         Via: {via}\r\n\
         Max-Forwards: 70\r\n\
         From: {from}\r\n\
         To: {to}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {seq} CANCEL\r\n\
         Content-Length: 0\r\n\r\n",
        uri = invite.request_uri().expect("a request"),
        via = header(&invite, "Via"),
        from = header(&invite, "From"),
        to = header(&invite, "To"),
        call_id = header(&invite, "Call-ID"),
        seq = invite.cseq().expect("a CSeq").seq,
    )
}

/// No `_sip._udp` record, so §4.1 moves on to `_sip._tcp`, whose record names the host and
/// port: the MESSAGE reaches the remote server there over TCP, and its answer comes back.
#[test]
fn a_relayed_request_reaches_the_server_an_srv_record_names() {
    let remote = RemoteServer::bind();
    let dns = NameServer::start(&[
        srv_host("_sip._tcp.remote.test", "sip.remote.test", remote.port(), 0),
        host_record("sip.remote.test"),
    ]);
    let (server, _) = local_server(dns.addr, &[], &["--relay-domain", REMOTE]);
    let (relayed, _) = relay_message(&server, &format!("sip:olga@{REMOTE}"), || remote.accept());
    assert_eq!(relayed.method(), Some(&sip_message::Method::Message));
    assert!(
        header(&relayed, "Via").starts_with("SIP/2.0/TCP "),
        "sent over the transport the SRV record was for: {relayed:?}"
    );
    assert_eq!(body(&relayed), "hello");
}

/// A MESSAGE for `uri` sent to `server` reaches the other domain's server over the
/// connection `accept` waits for, and its 200 comes back to the caller. Returns the relayed
/// request and the caller's connection.
fn relay_message(server: &Server, uri: &str, accept: impl FnOnce() -> Peer) -> (Message, SipConn) {
    let mut caller = SipConn::tcp(server.tcp_addr()).expect("connect");
    caller.send(&message_to(uri));
    let mut peer = accept();
    let relayed = peer.recv();
    assert_eq!(relayed.request_uri(), Some(uri));
    peer.answer(&relayed, "olga1", &[]);
    let answer = caller.recv();
    assert_eq!(answer.status(), Some(200), "{answer:?}\n{}", server.log());
    (relayed, caller)
}

/// TLS next hops (RFC 3263 §4.1, RFC 5922 §4): the domain's NAPTR record prefers its SIPS
/// service, so the MESSAGE is relayed over TLS to the server `_sips._tcp` names, which must
/// prove the domain's name (not the SRV target's): a server with a certificate for another
/// name is not sent the request, and the caller gets 500 (the branch's 503, RFC 3261 §16.7
/// item 6).
#[test]
fn a_next_hop_over_tls_must_prove_the_domain_name() {
    const DOMAIN: &str = "sips.test";
    let remote = TlsRemoteServer::bind(DOMAIN);
    let impostor = TlsRemoteServer::bind("elsewhere.test");
    let dns = NameServer::start(&[
        format!("--naptr-record={DOMAIN},10,10,s,SIPS+D2T,,_sips._tcp.{DOMAIN}"),
        srv_host(
            &format!("_sips._tcp.{DOMAIN}"),
            "sip.remote.test",
            remote.tcp.port(),
            0,
        ),
        "--naptr-record=impostor.test,10,10,s,SIPS+D2T,,_sips._tcp.impostor.test".to_owned(),
        srv_host(
            "_sips._tcp.impostor.test",
            "sip.remote.test",
            impostor.tcp.port(),
            0,
        ),
        host_record("sip.remote.test"),
    ]);
    // One CA file trusting both certificates: only the names differ.
    let trusted = remote._dir.path().join("trusted.pem");
    let both = [&remote.ca_file, &impostor.ca_file]
        .map(|path| std::fs::read_to_string(path).expect("read"))
        .concat();
    std::fs::write(&trusted, both).expect("write");
    let trusted = trusted.display().to_string();
    let (server, _) = local_server(
        dns.addr,
        &[],
        &[
            "--relay-domain",
            DOMAIN,
            "--relay-domain",
            "impostor.test",
            "--tls-ca-file",
            &trusted,
        ],
    );
    let (relayed, mut caller) = relay_message(&server, &format!("sip:olga@{DOMAIN}"), || {
        remote.accept().expect("a TLS handshake")
    });
    assert!(
        header(&relayed, "Via").starts_with("SIP/2.0/TLS "),
        "{relayed:?}"
    );

    caller.send(&message_to("sip:olga@impostor.test"));
    assert!(
        impostor.accept().is_err(),
        "our server must abandon the handshake with a certificate for another name"
    );
    let answer = caller.recv();
    assert_eq!(answer.status(), Some(500), "{answer:?}\n{}", server.log());
}

/// RFC 3263 §4.3: the first server the SRV records name refuses the connection, so the
/// relayed MESSAGE goes to the next one, as a new branch recorded for that server.
#[test]
fn a_relayed_request_moves_on_to_the_next_srv_target_when_the_first_is_down() {
    const DOMAIN: &str = "failover.test";
    let remote = RemoteServer::bind();
    let dns = NameServer::start(&[
        srv_host(
            &format!("_sip._tcp.{DOMAIN}"),
            "down.remote.test",
            free_port(),
            0,
        ),
        srv_host(
            &format!("_sip._tcp.{DOMAIN}"),
            "sip.remote.test",
            remote.port(),
            1,
        ),
        host_record("down.remote.test"),
        host_record("sip.remote.test"),
    ]);
    let (server, _) = local_server(dns.addr, &[], &["--relay-domain", DOMAIN]);
    relay_message(&server, &format!("sip:olga@{DOMAIN}"), || remote.accept());
}

/// The domain's NAPTR records (RFC 3263 §4.1) decide the transport and the SRV name, in their
/// order: its preferred TLS service turns out not to be offered (SRV target `.`), so its TCP
/// service under a name of its own is used, although a `_sip._udp` record would otherwise
/// have won.
#[test]
fn naptr_records_choose_the_transport_and_srv_name_of_a_relayed_request() {
    const DOMAIN: &str = "naptr.test";
    let remote = RemoteServer::bind();
    let decoy = UdpSocket::bind("127.0.0.1:0").expect("a UDP port");
    let decoy_port = decoy.local_addr().expect("bound").port();
    let dns = NameServer::start(&[
        format!("--naptr-record={DOMAIN},10,10,s,SIPS+D2T,,_sips._tcp.{DOMAIN}"),
        format!("--naptr-record={DOMAIN},20,10,S,SIP+D2T,,_sip._tcp.proxies.{DOMAIN}"),
        format!("--srv-host=_sips._tcp.{DOMAIN}"),
        srv_host(
            &format!("_sip._tcp.proxies.{DOMAIN}"),
            "sip.remote.test",
            remote.port(),
            0,
        ),
        srv_host(
            &format!("_sip._udp.{DOMAIN}"),
            "sip.remote.test",
            decoy_port,
            0,
        ),
        host_record("sip.remote.test"),
    ]);
    let (server, _) = local_server(dns.addr, &[], &["--relay-domain", DOMAIN]);
    let (relayed, _) = relay_message(&server, &format!("sip:olga@{DOMAIN}"), || remote.accept());
    assert!(
        header(&relayed, "Via").starts_with("SIP/2.0/TCP "),
        "{relayed:?}"
    );
    assert!(
        dns.log().contains(&format!("query[NAPTR] {DOMAIN}")),
        "{}",
        dns.log()
    );
}

/// NXDOMAIN, or an SRV record saying the service is not offered (target `.`, RFC 2782):
/// DNS says the domain has no SIP server, so the caller gets 404 (a 503 would only send it
/// to another server of ours, RFC 3263 §4.3). A name server that cannot answer is another
/// matter: 503, as for any next hop out of reach.
#[test]
fn a_domain_without_sip_servers_gets_404() {
    let dns = NameServer::start(&[
        "--srv-host=_sip._udp.closed.test".to_owned(),
        "--srv-host=_sip._tcp.closed.test".to_owned(),
    ]);
    let (server, _) = local_server(dns.addr, &[], &["--relay-domain", "*"]);
    let mut caller = SipConn::tcp(server.tcp_addr()).expect("connect");
    for domain in ["nowhere.test", "closed.test"] {
        caller.send(&message_to(&format!("sip:olga@{domain}")));
        let answer = caller.recv();
        assert_eq!(
            answer.status(),
            Some(404),
            "{domain}: {answer:?}\n{}",
            dns.log()
        );
    }
    caller.send(&message_to("sip:olga@unreachable.example"));
    let answer = caller.recv();
    assert_eq!(answer.status(), Some(503), "{answer:?}\n{}", dns.log());
}

/// The lookups of RFC 3263 run beside the SIP core, not in it. While the name server stays
/// silent about the domain a MESSAGE is relayed to, the server goes on answering everyone
/// else at once (a REGISTER, an OPTIONS); an INVITE to that domain gets its 100 Trying at
/// once (RFC 3261 §16.2) and, CANCELled, its 487, with nothing sent for it once its lookup
/// ends; when the MESSAGE's lookup gives up (5 s), the MESSAGE gets 503.
#[test]
fn a_silent_name_server_holds_up_only_the_requests_waiting_for_it() {
    const AT_ONCE: Duration = Duration::from_secs(1);
    let dns = SilentNameServer::bind();
    let (mut server, _) = local_server(
        dns.addr,
        &[("alice", "secret")],
        &["--relay-domain", REMOTE],
    );
    let olga = format!("sip:olga@{REMOTE}");
    let mut caller = SipConn::tcp(server.tcp_addr()).expect("connect");
    let started = Instant::now();
    caller.send(&message_to(&olga));

    let mut inviter = SipConn::tcp(server.tcp_addr()).expect("connect");
    let invite = request_to("INVITE", &olga);
    inviter.send(&invite);
    let trying = inviter.recv();
    assert_eq!(trying.status(), Some(100), "{trying:?}");
    assert!(
        started.elapsed() < AT_ONCE,
        "100 Trying after {:?}",
        started.elapsed()
    );

    let mut alice = Ua::in_domain(&server, "alice", "secret", LOCAL);
    let asked = Instant::now();
    let aor = alice.aor();
    let n = unique();
    let registered = alice.send(
        "REGISTER",
        &aor,
        &format!("reg-{n}"),
        &format!("r{n}"),
        None,
        1,
        "Expires: 600\r\n",
        "",
    );
    assert_eq!(registered.status(), Some(200), "{registered:?}");
    alice.conn.send(&options_request(server.tcp_addr(), "TCP"));
    let options = alice.response();
    assert_eq!(options.status(), Some(200), "{options:?}");
    assert!(
        asked.elapsed() < AT_ONCE,
        "REGISTER and OPTIONS answered after {:?}: they waited for DNS",
        asked.elapsed()
    );

    inviter.send(&cancel_of(&invite));
    let mut answers: Vec<(String, u16)> = (0..2)
        .map(|_| {
            let response = inviter.recv();
            let method = response.cseq().expect("a CSeq").method.as_str().to_owned();
            (method, response.status().expect("a response"))
        })
        .collect();
    answers.sort();
    assert_eq!(
        answers,
        [("CANCEL".to_owned(), 200), ("INVITE".to_owned(), 487)]
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "all this while the lookups were pending"
    );

    let answer = caller.recv();
    assert_eq!(answer.status(), Some(503), "{answer:?}\n{}", server.log());
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "503 only when the lookup gave up, after {:?}",
        started.elapsed()
    );
    assert!(
        inviter.try_recv(Duration::from_secs(1)).is_none(),
        "the cancelled INVITE's lookup ended without a word"
    );
    assert!(server.is_running(), "{}", server.log());
}

/// Alice's buddy list holds a user of a domain whose first SRV target (priority 10) refuses
/// connections: the back-end SUBSCRIBE goes to the second (priority 20), whose NOTIFY then
/// reaches Alice's list.
#[test]
fn a_back_end_subscription_moves_on_to_the_next_srv_target() {
    let remote = RemoteServer::bind();
    let dead = free_port();
    let dns = NameServer::start(&[
        srv_host("_sip._tcp.remote.test", "dead.remote.test", dead, 10),
        srv_host(
            "_sip._tcp.remote.test",
            "live.remote.test",
            remote.port(),
            20,
        ),
        host_record("dead.remote.test"),
        host_record("live.remote.test"),
    ]);
    let (server, root) = local_server(dns.addr, &[("alice", "secret")], &[]);
    let olga = format!("sip:olga@{REMOTE}");
    let contact = format!("<sip:olga@127.0.0.1:{};transport=tcp>", remote.port());
    watch_through_the_back_end(&server, &root, &olga, &contact, || remote.accept());
    let log = server.log();
    assert!(
        log.contains(&format!("127.0.0.1:{}", remote.port()))
            && log.contains("moves to the next target"),
        "the refused first target was tried first:\n{log}"
    );
}

/// Over TLS when the member's domain offers only that (`_sips._tcp`): the back-end SUBSCRIBE
/// goes over a TLS connection to a server proving the domain's name, with our TLS listener
/// in its Via and Contact, and the NOTIFY coming back reaches Alice's list.
#[test]
fn a_back_end_subscription_goes_over_tls_where_the_domain_offers_only_that() {
    const DOMAIN: &str = "tls-only.test";
    let remote = TlsRemoteServer::bind(DOMAIN);
    let dns = NameServer::start(&[
        srv_host(
            &format!("_sips._tcp.{DOMAIN}"),
            "sip.remote.test",
            remote.tcp.port(),
            0,
        ),
        host_record("sip.remote.test"),
    ]);
    let ca_file = remote.ca_file.display().to_string();
    let (server, root) = local_server(
        dns.addr,
        &[("alice", "secret")],
        &["--tls-ca-file", &ca_file],
    );
    let olga = format!("sip:olga@{DOMAIN}");
    let contact = format!("<sip:olga@127.0.0.1:{};transport=tls>", remote.tcp.port());
    let subscribe = watch_through_the_back_end(&server, &root, &olga, &contact, || {
        remote.accept().expect("a TLS handshake")
    });
    assert!(
        header(&subscribe, "Via").starts_with("SIP/2.0/TLS "),
        "{subscribe:?}"
    );
    assert!(
        header(&subscribe, "Contact").contains("transport=tls"),
        "{subscribe:?}"
    );
}

/// Alice subscribes to a list whose one member, `member`, is in another domain: the
/// back-end SUBSCRIBE reaches the connection `accept` waits for, is answered 200 with
/// `contact`, and the NOTIFY sent after it reaches Alice's list. Returns the SUBSCRIBE.
fn watch_through_the_back_end(
    server: &Server,
    root: &str,
    member: &str,
    contact: &str,
    accept: impl FnOnce() -> Peer,
) -> Message {
    let service = format!("sip:alice+buddies@{LOCAL}");
    put_buddy_list(root, &service, member);
    let mut alice = Ua::in_domain(server, "alice", "secret", LOCAL);
    let (response, _) = alice.subscribe(
        &service,
        "presence",
        "Supported: eventlist\r\n\
         Accept: multipart/related, application/rlmi+xml, application/pidf+xml\r\n",
    );
    assert_eq!(response.status(), Some(200), "{response:?}");

    let mut peer = accept();
    let subscribe = peer.recv();
    assert_eq!(subscribe.method(), Some(&sip_message::Method::Subscribe));
    assert_eq!(subscribe.request_uri(), Some(member));
    assert!(header(&subscribe, "From").contains(&format!("alice@{LOCAL}")));
    peer.answer(
        &subscribe,
        "olga1",
        &[("Expires", "600"), ("Contact", contact)],
    );
    peer.send(notify_for(&subscribe, contact, "olga-seen").as_bytes());

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let notify = alice
            .try_notify(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("list NOTIFYs\n{}", server.log()));
        if body(&notify).contains("olga-seen") {
            return subscribe;
        }
        assert!(
            Instant::now() < deadline,
            "the member's state never reached the list"
        );
    }
}

/// Alice's resource-lists with `member` and her rls-services `service` referring to it.
fn put_buddy_list(root: &str, service: &str, member: &str) {
    let client = Client::new(root.to_owned(), "alice", "secret");
    let owner = format!("sip:alice@{LOCAL}");
    let lists = format!(
        "<?xml version='1.0' encoding='UTF-8'?>\n\
         <resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\">\
         <list name=\"buddies\"><entry uri=\"{member}\"/></list></resource-lists>"
    );
    let anchor = simple_payloads::uri::encode_any_uri(&format!(
        "{root}/resource-lists/users/{owner}/index/~~/resource-lists/list[@name=\"buddies\"]"
    ));
    let services = format!(
        "<?xml version='1.0' encoding='UTF-8'?>\n\
         <rls-services xmlns=\"urn:ietf:params:xml:ns:rls-services\">\
         <service uri=\"{service}\"><resource-list>{anchor}</resource-list>\
         <packages><package>presence</package></packages></service></rls-services>"
    );
    for (auid, content_type, document) in [
        ("resource-lists", "application/resource-lists+xml", lists),
        ("rls-services", "application/rls-services+xml", services),
    ] {
        let path = format!("{auid}/users/{owner}/index");
        let reply = client.put(&path, content_type, document.as_bytes());
        assert!(
            reply.status == 200 || reply.status == 201,
            "PUT {path}: {} {}",
            reply.status,
            reply.text()
        );
    }
}

/// The remote server's NOTIFY in the dialog `subscribe` created, with a PIDF saying `note`,
/// sent from `contact` (`<sip:olga@HOST:PORT;transport=T>`).
fn notify_for(subscribe: &Message, contact: &str, note: &str) -> String {
    let (host, transport) = contact
        .trim_start_matches("<sip:olga@")
        .trim_end_matches('>')
        .split_once(";transport=")
        .expect("a contact with a transport");
    let target = header(subscribe, "Contact");
    let target = target.trim().trim_start_matches('<').trim_end_matches('>');
    let entity = subscribe.request_uri().expect("a request");
    let pidf = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"{entity}\">\
         <tuple id=\"t1\"><status><basic>open</basic></status><note>{note}</note></tuple>\
         </presence>"
    );
    format!(
        "NOTIFY {target} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {host};branch=z9hG4bK-notify{n}\r\n\
         Max-Forwards: 70\r\n\
         From: <{entity}>;tag=olga1\r\n\
         To: {to}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 NOTIFY\r\n\
         Contact: {contact}\r\n\
         Event: presence\r\n\
         Subscription-State: active;expires=600\r\n\
         Content-Type: application/pidf+xml\r\n\
         Content-Length: {length}\r\n\r\n{pidf}",
        transport = transport.to_ascii_uppercase(),
        n = unique(),
        to = header(subscribe, "From"),
        call_id = header(subscribe, "Call-ID"),
        length = pidf.len(),
    )
}
