//! One virtual client: one account, one HTTP/1.1 keep-alive connection (hyper's low-level
//! client, so nothing pools or multiplexes behind our back) and one digest session.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, ETAG, HOST, IF_MATCH};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::cli::{Account, Root};
use crate::digest::Session;

/// What the scenarios look at in a response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub etag: Option<String>,
}

/// A request: the path below the XCAP root (already percent-encoded), an optional
/// `If-Match` and an optional body with its content type.
pub struct Call<'a> {
    pub method: Method,
    pub path: &'a str,
    pub if_match: Option<&'a str>,
    pub body: Option<(&'static str, Bytes)>,
}

pub struct Client {
    account: Account,
    root: Root,
    addr: SocketAddr,
    sender: Option<SendRequest<Full<Bytes>>>,
    session: Option<Session>,
    cnonce: String,
    /// 401s answered with a new challenge (the first one, stale nonces, lost connections).
    pub challenges: u64,
    /// Connections opened, so reconnects show up in the report.
    pub connects: u64,
}

/// The loopback address to connect to: `localhost` may resolve to several, all checked.
pub async fn resolve(root: &Root) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(&root.authority)
        .await
        .map_err(|e| format!("resolving {}: {e}", root.authority))?
        .collect();
    if let Some(outside) = addrs.iter().find(|a| !a.ip().is_loopback()) {
        return Err(format!(
            "{} resolves to {outside}, not loopback",
            root.authority
        ));
    }
    addrs
        .first()
        .copied()
        .ok_or_else(|| format!("{} resolves to nothing", root.authority))
}

impl Client {
    pub fn new(account: Account, root: Root, addr: SocketAddr, index: usize) -> Client {
        Client {
            account,
            root,
            addr,
            sender: None,
            session: None,
            cnonce: format!("xcap-load-{}-{index}", std::process::id()),
            challenges: 0,
            connects: 0,
        }
    }

    pub fn account(&self) -> &Account {
        &self.account
    }

    async fn connect(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, String> {
        let usable = self.sender.as_ref().is_some_and(|s| !s.is_closed());
        if !usable {
            let stream = TcpStream::connect(self.addr)
                .await
                .map_err(|e| format!("connect {}: {e}", self.addr))?;
            // Small request/response exchanges: do not let Nagle hold back the last segment.
            stream
                .set_nodelay(true)
                .map_err(|e| format!("TCP_NODELAY: {e}"))?;
            let (sender, connection) = http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("HTTP handshake: {e}"))?;
            // The connection task ends by itself when the sender is dropped or the peer closes.
            tokio::spawn(connection);
            self.connects += 1;
            self.sender = Some(sender);
        }
        let sender = self
            .sender
            .as_mut()
            .ok_or_else(|| "no connection".to_owned())?;
        sender
            .ready()
            .await
            .map_err(|e| format!("connection not ready: {e}"))?;
        Ok(sender)
    }

    /// Sends `call`, answering one 401 with a fresh digest session (first use, stale
    /// nonce); a second 401 is returned as it is.
    pub async fn send(&mut self, call: &Call<'_>) -> Result<Reply, String> {
        let result = self.exchange(call).await;
        if result.is_err() {
            // A failed exchange may leave a half-read response behind: start afresh.
            self.sender = None;
        }
        result
    }

    async fn exchange(&mut self, call: &Call<'_>) -> Result<Reply, String> {
        let first = self.send_once(call).await?;
        if first.0.status != 401 {
            return Ok(first.0);
        }
        self.challenges += 1;
        self.session = Some(Session::from_challenges(
            &first.1,
            &self.account,
            self.cnonce.clone(),
        )?);
        Ok(self.send_once(call).await?.0)
    }

    async fn send_once(&mut self, call: &Call<'_>) -> Result<(Reply, hyper::HeaderMap), String> {
        let uri = format!("{}/{}", self.root.path, call.path);
        let mut request = Request::builder()
            .method(call.method.clone())
            .uri(&uri)
            .header(HOST, &self.root.authority);
        if let Some(session) = self.session.as_mut() {
            request = request.header(
                AUTHORIZATION,
                session.authorization(call.method.as_str(), &uri),
            );
        }
        if let Some(etag) = call.if_match {
            request = request.header(IF_MATCH, etag);
        }
        let body = match &call.body {
            Some((content_type, bytes)) => {
                request = request.header(CONTENT_TYPE, *content_type);
                bytes.clone()
            }
            None => Bytes::new(),
        };
        let request = request
            .body(Full::new(body))
            .map_err(|e| format!("building {} {uri}: {e}", call.method))?;
        let sender = self.connect().await?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("{} {uri}: {e}", call.method))?;
        let (parts, body) = response.into_parts();
        // The whole body has to be read before the connection can carry the next request.
        body.collect()
            .await
            .map_err(|e| format!("{} {uri}: reading body: {e}", call.method))?;
        let etag = parts
            .headers
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok((
            Reply {
                status: parts.status.as_u16(),
                etag,
            },
            parts.headers,
        ))
    }
}
