//! The HTTP shell for XCAP (RFC 4825): one HTTP/1.1 connection per request over hyper, plain or
//! TLS, with RFC 7616 digest authentication (MD5 or SHA-256, qop=auth) answered only for the
//! realm equal to the SIP domain, with the AOR's user part as username (blink-compat §2.1).
//!
//! Blink does not verify XCAP certificates; here that is the explicit [`TlsMode::Insecure`],
//! and the default verifies against a configured CA file (no system roots are bundled).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{
    HeaderValue, AUTHORIZATION, CONTENT_TYPE, ETAG, HOST, USER_AGENT, WWW_AUTHENTICATE,
};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use md5::{Digest as _, Md5};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::Sha256;
use sip_message::Challenge;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::xml::MAX_DOCUMENT_BYTES;

/// How HTTPS servers are authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// Verify against the certificates in this PEM file, or without one against the
    /// system's trust store (Debian's ca-certificates, `SSL_CERT_FILE` / `SSL_CERT_DIR`).
    Verify { ca_file: Option<PathBuf> },
    /// Accept any certificate, as Blink does.
    Insecure,
}

impl Default for TlsMode {
    fn default() -> TlsMode {
        TlsMode::Verify { ca_file: None }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("bad XCAP root {0:?}: {1}")]
    BadRoot(String, String),
    #[error("CA file: {0}")]
    CaFile(String),
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("HTTP: {0}")]
    Protocol(String),
    #[error("timed out")]
    Timeout,
    #[error("response body larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge,
}

/// What the manager needs from a response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub etag: Option<String>,
    pub body: Bytes,
}

/// Username and password for digest authentication.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// Only challenges with exactly this realm (the SIP domain) are answered.
    pub realm: String,
}

#[derive(Clone)]
struct Digest {
    realm: String,
    nonce: String,
    opaque: Option<String>,
    sha256: bool,
    qop: bool,
}

/// An XCAP HTTP client for one root.
pub struct HttpClient {
    scheme_https: bool,
    host: String,
    port: u16,
    base_path: String,
    tls: Option<tokio_rustls::TlsConnector>,
    credentials: Option<Credentials>,
    digest: Mutex<Option<Digest>>,
    nonce_count: AtomicU32,
    timeout: Duration,
}

impl HttpClient {
    pub fn new(
        root: &str,
        credentials: Option<Credentials>,
        tls: &TlsMode,
        timeout: Duration,
    ) -> Result<HttpClient, HttpError> {
        let bad = |why: &str| HttpError::BadRoot(root.to_owned(), why.to_owned());
        let uri: Uri = root.parse().map_err(|_| bad("not a URL"))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(bad("scheme must be http or https")),
        };
        if uri.query().is_some() {
            return Err(bad("query not allowed"));
        }
        let host = uri.host().ok_or_else(|| bad("no host"))?.to_owned();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tls = https.then(|| tls_connector(tls)).transpose()?;
        Ok(HttpClient {
            scheme_https: https,
            host,
            port,
            base_path: uri.path().trim_end_matches('/').to_owned(),
            tls,
            credentials,
            digest: Mutex::new(None),
            nonce_count: AtomicU32::new(0),
            timeout,
        })
    }

    /// Sends `method` to `path` (below the root, starting with `/`), answering one digest
    /// challenge; the cached challenge is reused for later requests.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&'static str, String)],
        body: Option<(&str, Bytes)>,
    ) -> Result<Response, HttpError> {
        let full_path = format!("{}{path}", self.base_path);
        let mut response = self
            .send(&method, &full_path, headers, body.clone())
            .await?;
        if response.0.status == 401 {
            if let Some(challenge) = self.pick_challenge(&response.1) {
                *self.digest.lock().unwrap_or_else(|e| e.into_inner()) = Some(challenge);
                response = self.send(&method, &full_path, headers, body).await?;
            }
        }
        Ok(response.0)
    }

    fn pick_challenge(&self, values: &[String]) -> Option<Digest> {
        let credentials = self.credentials.as_ref()?;
        let mut best: Option<Digest> = None;
        for value in values {
            if !value.trim_start().starts_with("Digest") {
                continue;
            }
            let Ok(c) = Challenge::parse(value) else {
                continue;
            };
            let algorithm = c.algorithm.as_deref().unwrap_or("MD5");
            let sha256 = match algorithm.to_ascii_uppercase().as_str() {
                "MD5" => false,
                "SHA-256" => true,
                _ => continue,
            };
            if c.realm != credentials.realm {
                continue;
            }
            let qop = c
                .qop
                .as_deref()
                .is_some_and(|q| q.split(',').any(|v| v.trim() == "auth"));
            let candidate = Digest {
                realm: c.realm.into_owned(),
                nonce: c.nonce.into_owned(),
                opaque: c.opaque.map(|o| o.into_owned()),
                sha256,
                qop,
            };
            if best.as_ref().is_none_or(|b| !b.sha256 && sha256) {
                best = Some(candidate);
            }
        }
        self.nonce_count.store(0, Ordering::Relaxed);
        best
    }

    fn authorization(&self, method: &Method, uri: &str) -> Option<String> {
        let credentials = self.credentials.as_ref()?;
        let digest = self
            .digest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()?;
        let h = |s: String| {
            if digest.sha256 {
                hex::encode(Sha256::digest(s.as_bytes()))
            } else {
                hex::encode(Md5::digest(s.as_bytes()))
            }
        };
        let ha1 = h(format!(
            "{}:{}:{}",
            credentials.username, digest.realm, credentials.password
        ));
        let ha2 = h(format!("{method}:{uri}"));
        let algorithm = if digest.sha256 { "SHA-256" } else { "MD5" };
        let mut header = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", algorithm={algorithm}",
            credentials.username, digest.realm, digest.nonce
        );
        if digest.qop {
            let nc = format!(
                "{:08x}",
                self.nonce_count.fetch_add(1, Ordering::Relaxed) + 1
            );
            let cnonce = hex::encode(rand::random::<[u8; 8]>());
            let response = h(format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", digest.nonce));
            header.push_str(&format!(
                ", qop=auth, nc={nc}, cnonce=\"{cnonce}\", response=\"{response}\""
            ));
        } else {
            let response = h(format!("{ha1}:{}:{ha2}", digest.nonce));
            header.push_str(&format!(", response=\"{response}\""));
        }
        if let Some(opaque) = &digest.opaque {
            header.push_str(&format!(", opaque=\"{opaque}\""));
        }
        Some(header)
    }

    async fn send(
        &self,
        method: &Method,
        path: &str,
        headers: &[(&'static str, String)],
        body: Option<(&str, Bytes)>,
    ) -> Result<(Response, Vec<String>), HttpError> {
        tokio::time::timeout(self.timeout, self.exchange(method, path, headers, body))
            .await
            .map_err(|_| HttpError::Timeout)?
    }

    async fn exchange(
        &self,
        method: &Method,
        path: &str,
        headers: &[(&'static str, String)],
        body: Option<(&str, Bytes)>,
    ) -> Result<(Response, Vec<String>), HttpError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| HttpError::Connect(e.to_string()))?;
        let default_port = if self.scheme_https { 443 } else { 80 };
        let host = if self.port == default_port {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        };
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(HOST, host)
            .header(USER_AGENT, concat!("avail/", env!("CARGO_PKG_VERSION")));
        for (name, value) in headers {
            builder = builder.header(*name, value);
        }
        if let Some(auth) = self.authorization(method, path) {
            builder = builder.header(AUTHORIZATION, auth);
        }
        let payload = match body {
            Some((content_type, bytes)) => {
                builder = builder.header(CONTENT_TYPE, content_type);
                bytes
            }
            None => Bytes::new(),
        };
        let request = builder
            .body(Full::new(payload))
            .map_err(|e| HttpError::Protocol(e.to_string()))?;
        match &self.tls {
            Some(connector) => {
                let name = ServerName::try_from(self.host.clone())
                    .map_err(|e| HttpError::Tls(e.to_string()))?;
                let stream = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| HttpError::Tls(e.to_string()))?;
                round_trip(stream, request).await
            }
            None => round_trip(tcp, request).await,
        }
    }
}

async fn round_trip<S>(
    stream: S,
    request: Request<Full<Bytes>>,
) -> Result<(Response, Vec<String>), HttpError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let protocol = |e: hyper::Error| HttpError::Protocol(e.to_string());
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(protocol)?;
    let driver = tokio::spawn(connection);
    let response = sender.send_request(request).await.map_err(protocol)?;
    let status = response.status().as_u16();
    let header = |v: &HeaderValue| v.to_str().ok().map(str::to_owned);
    let etag = response.headers().get(ETAG).and_then(header);
    let challenges = response
        .headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(header)
        .collect();
    let body = Limited::new(response.into_body(), MAX_DOCUMENT_BYTES)
        .collect()
        .await
        .map_err(|_| HttpError::TooLarge)?
        .to_bytes();
    driver.abort();
    Ok((Response { status, etag, body }, challenges))
}

/// A TLS connector for `mode`, shared by XCAP and the SIP connection.
pub fn tls_connector(mode: &TlsMode) -> Result<tokio_rustls::TlsConnector, HttpError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| HttpError::Tls(e.to_string()))?;
    let config = match mode {
        TlsMode::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth(),
        TlsMode::Verify { ca_file } => {
            let roots = sip_transport::tls::trusted_roots(ca_file.as_deref())
                .map_err(|e| HttpError::CaFile(e.to_string()))?;
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Skips certificate checks but still checks the handshake signatures, so the connection is
/// at least bound to the presented key.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> HttpClient {
        let credentials = Credentials {
            username: "alice".into(),
            password: "secret".into(),
            realm: "example.com".into(),
        };
        HttpClient::new(
            "http://127.0.0.1:8080/xcap-root/",
            Some(credentials),
            &TlsMode::default(),
            Duration::from_secs(1),
        )
        .unwrap()
    }

    fn field<'a>(header: &'a str, name: &str) -> &'a str {
        let start = header.find(&format!("{name}=")).unwrap() + name.len() + 1;
        let rest = header[start..].trim_start_matches('"');
        &rest[..rest.find(['"', ',']).unwrap_or(rest.len())]
    }

    #[test]
    fn answers_only_the_sip_domain_realm_preferring_sha256() {
        let c = client();
        assert_eq!(c.base_path, "/xcap-root");
        let other_realm = [r#"Digest realm="other.org", nonce="n1", qop="auth""#.to_owned()];
        assert!(c.pick_challenge(&other_realm).is_none());
        let both = [
            r#"Digest realm="example.com", nonce="n1", qop="auth", algorithm=MD5"#.to_owned(),
            r#"Digest realm="example.com", nonce="n2", qop="auth", algorithm=SHA-256"#.to_owned(),
        ];
        let picked = c.pick_challenge(&both).unwrap();
        assert!(picked.sha256);
        assert_eq!(picked.nonce, "n2");
    }

    #[test]
    fn computes_rfc7616_md5_responses_with_increasing_nonce_counts() {
        let c = client();
        let challenge = [
            r#"Digest realm="example.com", nonce="abc", qop="auth,auth-int", opaque="op""#
                .to_owned(),
        ];
        *c.digest.lock().unwrap() = c.pick_challenge(&challenge);
        let path = "/xcap-root/resource-lists/users/sip:alice@example.com/index";
        let first = c.authorization(&Method::GET, path).unwrap();
        let second = c.authorization(&Method::GET, path).unwrap();
        assert_eq!(field(&first, "nc"), "00000001");
        assert_eq!(field(&second, "nc"), "00000002");
        assert_eq!(field(&first, "algorithm"), "MD5");
        assert_eq!(field(&first, "opaque"), "op");
        let md5 = |s: String| hex::encode(Md5::digest(s.as_bytes()));
        let ha1 = md5("alice:example.com:secret".into());
        let ha2 = md5(format!("GET:{path}"));
        let expected = md5(format!(
            "{ha1}:abc:00000001:{}:auth:{ha2}",
            field(&first, "cnonce")
        ));
        assert_eq!(field(&first, "response"), expected);
    }

    #[test]
    fn rejects_roots_that_are_not_http_urls() {
        let bad = |root: &str| {
            HttpClient::new(root, None, &TlsMode::Insecure, Duration::from_secs(1)).is_err()
        };
        assert!(bad("ftp://example.com/xcap"));
        assert!(bad("https://example.com/xcap?x=1"));
        assert!(bad("not a url"));
        assert!(!bad("https://xcap.example.com/xcap-root"));
    }
}
