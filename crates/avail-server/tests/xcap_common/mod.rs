//! Harness for the XCAP tests: starts the real `avail-server` binary with HTTP and HTTPS on
//! free loopback ports, and a blocking HTTP client (ureq) with a small RFC 7616 digest
//! helper that answers the server's first challenge it can compute.
#![allow(dead_code)] // each test binary uses a different subset of the harness

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use md5::Md5;
use sha2::{Digest, Sha256};
use sip_message::Challenge;

#[path = "../common/mod.rs"]
pub mod common;

pub use common::{add_user, free_port, DOMAIN};

/// The server (started and stopped by the common harness) with XCAP on HTTP and HTTPS.
pub struct XcapServer {
    server: common::Server,
    pub http_port: u16,
    pub https_port: u16,
}

impl XcapServer {
    /// A fresh server for `example.com` with `users` (user part, password).
    pub fn start(users: &[(&str, &str)]) -> XcapServer {
        let temp = tempfile::tempdir().expect("temp dir");
        for (user, password) in users {
            add_user(temp.path(), &format!("{user}@{DOMAIN}"), password);
        }
        XcapServer::launch(temp.path().to_owned(), Some(temp))
    }

    /// Start on an existing data directory (restart tests).
    pub fn launch(data_dir: PathBuf, temp: Option<tempfile::TempDir>) -> XcapServer {
        let http_port = free_port();
        let https_port = free_port();
        let server = common::Server::spawn(
            data_dir,
            temp,
            &format!("127.0.0.1:{http_port}"),
            &format!("127.0.0.1:{https_port}"),
            &[],
        );
        let server = XcapServer {
            server,
            http_port,
            https_port,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let client = Client::anonymous(self);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if client
                .try_get("/xcap-caps/global/index")
                .is_some_and(|r| r.status == 200)
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not become ready; log:\n{}", self.log());
    }

    pub fn http_root(&self) -> String {
        format!("http://127.0.0.1:{}/xcap-root", self.http_port)
    }

    pub fn https_root(&self) -> String {
        format!("https://127.0.0.1:{}/xcap-root", self.https_port)
    }

    pub fn log(&self) -> String {
        self.server.log()
    }

    /// SIGKILL (an unclean stop), handing back the data directory for a restart.
    pub fn kill(self) -> (PathBuf, Option<tempfile::TempDir>) {
        self.server.kill()
    }
}

/// What a test looks at in a response.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub etag: Option<String>,
    pub content_type: Option<String>,
    pub allow: Option<String>,
    pub challenges: Vec<String>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The RFC 4825 §11 error element of a 409 body, e.g. `no-parent`.
    pub fn xcap_error(&self) -> Option<String> {
        let text = self.text();
        let doc = roxmltree::Document::parse(&text).ok()?;
        let root = doc.root_element();
        (root.tag_name().name() == "xcap-error"
            && root.tag_name().namespace() == Some("urn:ietf:params:xml:ns:xcap-error"))
        .then(|| {
            root.first_element_child()
                .map(|e| e.tag_name().name().to_owned())
        })
        .flatten()
    }
}

/// Which digest algorithm the client answers with (the server offers both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Md5,
    Sha256,
}

/// A blocking XCAP client for one root URL, optionally with credentials.
pub struct Client {
    agent: ureq::Agent,
    root: String,
    credentials: Option<(String, String)>,
    pub algorithm: Alg,
    /// Send Basic credentials up front instead of waiting for a Digest challenge.
    pub basic: bool,
}

impl Client {
    pub fn new(root: String, user: &str, password: &str) -> Client {
        Client {
            agent: agent(),
            root,
            credentials: Some((user.to_owned(), password.to_owned())),
            algorithm: Alg::Md5,
            basic: false,
        }
    }

    pub fn anonymous(server: &XcapServer) -> Client {
        Client {
            agent: agent(),
            root: server.http_root(),
            credentials: None,
            algorithm: Alg::Md5,
            basic: false,
        }
    }

    /// `alice` over plain HTTP.
    pub fn user(server: &XcapServer, user: &str, password: &str) -> Client {
        Client::new(server.http_root(), user, password)
    }

    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[], None)
    }

    pub fn try_get(&self, path: &str) -> Option<Reply> {
        self.try_request("GET", path, &[], None)
    }

    /// A PUT that reports transport failures (a killed server) as `None`.
    pub fn try_put(&self, path: &str, content_type: &str, body: &[u8]) -> Option<Reply> {
        self.try_request("PUT", path, &[], Some((content_type, body)))
    }

    pub fn put(&self, path: &str, content_type: &str, body: &[u8]) -> Reply {
        self.request("PUT", path, &[], Some((content_type, body)))
    }

    pub fn delete(&self, path: &str) -> Reply {
        self.request("DELETE", path, &[], None)
    }

    /// A request with extra headers; `path` is relative to the XCAP root and already
    /// percent-encoded where HTTP needs it.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
    ) -> Reply {
        self.try_request(method, path, headers, body)
            .unwrap_or_else(|| panic!("{method} {path} failed at the transport level"))
    }

    fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
    ) -> Option<Reply> {
        let url = format!("{}/{path}", self.root);
        let mut extra: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let (true, Some((user, password))) = (self.basic, &self.credentials) {
            use base64::Engine as _;
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            extra.push(("Authorization".into(), format!("Basic {token}")));
        }
        let first = self.send(method, &url, &extra, body)?;
        let Some((user, password)) = &self.credentials else {
            return Some(first);
        };
        if first.status != 401 || self.basic {
            return Some(first);
        }
        let uri = url
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_owned()))
            .unwrap_or_default();
        let authorization = self.digest(&first.challenges, method, &uri, user, password)?;
        extra.push(("Authorization".into(), authorization));
        self.send(method, &url, &extra, body)
    }

    fn digest(
        &self,
        challenges: &[String],
        method: &str,
        uri: &str,
        user: &str,
        password: &str,
    ) -> Option<String> {
        let wanted = match self.algorithm {
            Alg::Md5 => "MD5",
            Alg::Sha256 => "SHA-256",
        };
        let challenge = challenges
            .iter()
            .filter(|c| c.starts_with("Digest"))
            .filter_map(|c| Challenge::parse(c).ok())
            .find(|c| c.algorithm.as_deref().unwrap_or("MD5") == wanted)?;
        let h = |s: String| match self.algorithm {
            Alg::Md5 => hex::encode(Md5::digest(s.as_bytes())),
            Alg::Sha256 => hex::encode(Sha256::digest(s.as_bytes())),
        };
        static CNONCE: AtomicU64 = AtomicU64::new(1);
        let cnonce = format!("c{}", CNONCE.fetch_add(1, Ordering::Relaxed));
        let nc = "00000001";
        let ha1 = h(format!("{user}:{}:{password}", challenge.realm));
        let ha2 = h(format!("{method}:{uri}"));
        let response = h(format!(
            "{ha1}:{}:{nc}:{cnonce}:auth:{ha2}",
            challenge.nonce
        ));
        Some(format!(
            "Digest username=\"{user}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", \
             algorithm={wanted}, qop=auth, nc={nc}, cnonce=\"{cnonce}\", response=\"{response}\"",
            challenge.realm, challenge.nonce
        ))
    }

    fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Option<(&str, &[u8])>,
    ) -> Option<Reply> {
        let result = match method {
            "PUT" => {
                let (content_type, bytes) = body.unwrap_or(("", b""));
                let mut request = self.agent.put(url);
                if !content_type.is_empty() {
                    request = request.header("Content-Type", content_type);
                }
                for (k, v) in headers {
                    request = request.header(k, v);
                }
                request.send(bytes)
            }
            other => {
                let mut request = match other {
                    "GET" => self.agent.get(url),
                    "HEAD" => self.agent.head(url),
                    "DELETE" => self.agent.delete(url),
                    _ => panic!("unsupported method {other}"),
                };
                for (k, v) in headers {
                    request = request.header(k, v);
                }
                request.call()
            }
        };
        let mut response = result.ok()?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap_or_default().to_owned())
        };
        let (etag, content_type, allow) = (header("etag"), header("content-type"), header("allow"));
        let challenges = response
            .headers()
            .get_all("www-authenticate")
            .iter()
            .map(|v| v.to_str().unwrap_or_default().to_owned())
            .collect();
        let status = response.status().as_u16();
        let body = if method == "HEAD" {
            Vec::new()
        } else {
            response
                .body_mut()
                .with_config()
                .limit(16 * 1024 * 1024)
                .read_to_vec()
                .ok()?
        };
        Some(Reply {
            status,
            etag,
            content_type,
            allow,
            challenges,
            body,
        })
    }
}

fn agent() -> ureq::Agent {
    // ureq is built without a bundled provider; use rustls' ring provider like the server.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .disable_verification(true)
        .build();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// A document from the simple-payloads test corpus.
pub fn corpus(usage: &str, validity: &str, name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../simple-payloads/tests/corpus/{usage}/{validity}/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every file of a corpus directory, as (name, bytes).
pub fn corpus_dir(usage: &str, validity: &str) -> Vec<(String, Vec<u8>)> {
    let dir = format!(
        "{}/../simple-payloads/tests/corpus/{usage}/{validity}",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.expect("dir entry").path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("corpus file"))
        })
        .collect();
    files.sort();
    files
}
