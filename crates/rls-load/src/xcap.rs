//! Preparing a run through XCAP: an allow-all pres-rules document per presentity, and per
//! subscriber its resource-lists and rls-services documents (see [`crate::layout`]).
//!
//! A few workers, each with one HTTP/1.1 keep-alive connection (hyper's low-level client, as
//! xcap-load uses it), share the users between them. Every user authenticates with digest
//! (RFC 7616, answered by `sip-auth`, the code the server verifies with): its first PUT
//! draws the 401, the following ones reuse that nonce with the next `nc`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, WWW_AUTHENTICATE};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use sip_auth::{answer, preferred_challenge, AnswerInput};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::layout::{Layout, ALLOW_ALL_RULES};

/// An `http://host:port/path` XCAP root.
#[derive(Debug, Clone)]
pub struct Root {
    /// `host:port`, for connecting and the Host header.
    pub authority: String,
    /// The path without a trailing slash, e.g. `/xcap-root`.
    pub path: String,
    /// The whole URL without a trailing slash, for the absolute anchors of rls-services.
    pub url: String,
}

impl Root {
    pub fn parse(url: &str) -> Result<Root, String> {
        let uri: Uri = url.parse().map_err(|e| format!("XCAP root {url:?}: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!("XCAP root {url:?}: only http:// is supported"));
        }
        let authority = uri
            .authority()
            .filter(|a| a.port().is_some())
            .ok_or_else(|| format!("XCAP root {url:?}: host:port expected"))?
            .to_string();
        let path = uri.path().trim_end_matches('/').to_owned();
        Ok(Root {
            authority,
            path,
            url: url.trim_end_matches('/').to_owned(),
        })
    }
}

/// What to write.
pub struct Preparation {
    pub layout: Layout,
    pub root: Root,
    /// The password of every account (`avail-server user import` lines use one for all).
    pub password: String,
    /// Write the presentities' pres-rules (off when another preparation already did).
    pub pres_rules: bool,
    pub workers: usize,
}

/// One user's documents, written in order over one connection.
struct Job {
    user: String,
    documents: Vec<Document>,
}

struct Document {
    auid: &'static str,
    content_type: &'static str,
    body: String,
}

/// Writes every document; the number written, or the first failure.
pub async fn prepare(plan: Preparation) -> Result<usize, String> {
    let plan = Arc::new(plan);
    let presentities = if plan.pres_rules {
        plan.layout.presentities
    } else {
        0
    };
    let jobs = presentities + plan.layout.subscribers;
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = JoinSet::new();
    for worker in 0..plan.workers.max(1) {
        let (plan, next) = (plan.clone(), next.clone());
        workers.spawn(async move {
            let mut connection = Connection::new(&plan.root, worker);
            let mut written = 0;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= jobs {
                    return Ok::<usize, String>(written);
                }
                let job = if n < presentities {
                    pres_rules_job(&plan.layout, n)
                } else {
                    list_job(&plan.layout, n - presentities, &plan.root.url)
                };
                written += connection
                    .write_user(&job, &plan.layout.domain, &plan.password)
                    .await?;
            }
        });
    }
    let mut written = 0;
    while let Some(result) = workers.join_next().await {
        written += result.map_err(|e| format!("XCAP worker: {e}"))??;
    }
    Ok(written)
}

fn pres_rules_job(layout: &Layout, j: usize) -> Job {
    Job {
        user: layout.presentity(j),
        documents: vec![Document {
            auid: "org.openmobilealliance.pres-rules",
            content_type: "application/auth-policy+xml",
            body: ALLOW_ALL_RULES.to_owned(),
        }],
    }
}

fn list_job(layout: &Layout, i: usize, root_url: &str) -> Job {
    Job {
        user: layout.subscriber(i),
        // The list first, so the service never refers to a missing document.
        documents: vec![
            Document {
                auid: "resource-lists",
                content_type: "application/resource-lists+xml",
                body: layout.resource_lists(i),
            },
            Document {
                auid: "rls-services",
                content_type: "application/rls-services+xml",
                body: layout.rls_services(i, root_url),
            },
        ],
    }
}

struct Connection {
    root: Root,
    sender: Option<SendRequest<Full<Bytes>>>,
    cnonce: String,
}

impl Connection {
    fn new(root: &Root, worker: usize) -> Connection {
        Connection {
            root: root.clone(),
            sender: None,
            cnonce: format!("rls-load-{}-{worker}", std::process::id()),
        }
    }

    /// Writes `job`'s documents as its user of `domain`; how many.
    async fn write_user(
        &mut self,
        job: &Job,
        domain: &str,
        password: &str,
    ) -> Result<usize, String> {
        // The WWW-Authenticate values of this user's 401, and the requests made with its
        // nonce so far.
        let mut challenges: Option<(Vec<String>, u32)> = None;
        for document in &job.documents {
            let path = format!(
                "{}/{}/users/sip:{}@{domain}/index",
                self.root.path, document.auid, job.user
            );
            for attempt in 0..2 {
                let authorization = match &mut challenges {
                    None => None,
                    Some((values, count)) => {
                        *count += 1;
                        let challenge =
                            preferred_challenge(values.iter().map(String::as_str), None)
                                .ok_or_else(|| format!("PUT {path}: no usable digest challenge"))?;
                        let input = AnswerInput {
                            method: "PUT",
                            uri: &path,
                            username: &job.user,
                            password,
                            cnonce: &self.cnonce,
                            nonce_count: *count,
                        };
                        Some(answer(&challenge, &input).map_err(|e| format!("PUT {path}: {e}"))?)
                    }
                };
                let (status, values) = self.put(&path, document, authorization.as_deref()).await?;
                match status {
                    StatusCode::OK | StatusCode::CREATED => break,
                    // The user's first request, or a stale nonce: answer the new challenge.
                    StatusCode::UNAUTHORIZED if attempt == 0 => challenges = Some((values, 0)),
                    other => return Err(format!("PUT {path}: {other}")),
                }
            }
        }
        Ok(job.documents.len())
    }

    /// One PUT; its status and, for a 401, the WWW-Authenticate values.
    async fn put(
        &mut self,
        path: &str,
        document: &Document,
        authorization: Option<&str>,
    ) -> Result<(StatusCode, Vec<String>), String> {
        let result = self.exchange(path, document, authorization).await;
        if result.is_err() {
            // A failed exchange may leave a half-read response behind: start afresh.
            self.sender = None;
        }
        result
    }

    async fn exchange(
        &mut self,
        path: &str,
        document: &Document,
        authorization: Option<&str>,
    ) -> Result<(StatusCode, Vec<String>), String> {
        let mut request = Request::builder()
            .method(Method::PUT)
            .uri(path)
            .header(HOST, &self.root.authority)
            .header(CONTENT_TYPE, document.content_type);
        if let Some(value) = authorization {
            request = request.header(AUTHORIZATION, value);
        }
        let request = request
            .body(Full::new(Bytes::from(document.body.clone())))
            .map_err(|e| format!("building PUT {path}: {e}"))?;
        let sender = self.connect().await?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("PUT {path}: {e}"))?;
        let (parts, body) = response.into_parts();
        // The whole body has to be read before the connection can carry the next request.
        body.collect()
            .await
            .map_err(|e| format!("PUT {path}: reading the body: {e}"))?;
        let challenges = parts
            .headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect();
        Ok((parts.status, challenges))
    }

    async fn connect(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, String> {
        if self.sender.as_ref().is_none_or(SendRequest::is_closed) {
            let stream = TcpStream::connect(&self.root.authority)
                .await
                .map_err(|e| format!("connect {}: {e}", self.root.authority))?;
            // Small request/response exchanges: do not let Nagle hold back the last segment.
            stream
                .set_nodelay(true)
                .map_err(|e| format!("TCP_NODELAY: {e}"))?;
            let (sender, connection) = http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("HTTP handshake: {e}"))?;
            // The connection task ends by itself when the sender is dropped or the peer closes.
            tokio::spawn(connection);
            self.sender = Some(sender);
        }
        let sender = self.sender.as_mut().ok_or("no connection")?;
        sender
            .ready()
            .await
            .map_err(|e| format!("connection not ready: {e}"))?;
        Ok(sender)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_are_split_for_connecting_and_anchors() {
        let root = Root::parse("http://127.0.0.1:8080/xcap-root/").unwrap();
        assert_eq!(root.authority, "127.0.0.1:8080");
        assert_eq!(root.path, "/xcap-root");
        assert_eq!(root.url, "http://127.0.0.1:8080/xcap-root");
        assert!(Root::parse("https://127.0.0.1:8443/xcap-root").is_err());
        assert!(Root::parse("http://127.0.0.1/xcap-root").is_err());
    }
}
