//! The HTTP side of RFC 4825: mapping requests to the engine's operations (§7 GET/PUT/DELETE
//! of documents, elements, attributes and namespace bindings, §8 server behaviour), access
//! control (§5.7), conditional requests (§7.11, RFC 9110 §13.2.2), error responses (§11) and
//! the generated documents (§12 xcap-caps, OMA xcap-directory).
//!
//! Writes follow read → check preconditions → edit → compare-and-swap on the ETag that was
//! read. A lost swap means another writer committed in between, so the whole request is
//! evaluated again on the new state: a request whose precondition named the old ETag then
//! fails with 412, an unconditional one is applied on top of the other writer's change.

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method as HttpMethod, StatusCode};
use axum::response::Response;
use axum::Router;
use simple_payloads::xcap_error::{Exists, XcapErrorKind};
use simple_payloads::{decode_any_uri, Usage};
use store::{DocumentKey, DocumentWrite, RemoveOutcome, WriteOutcome};
use tracing::warn;
use xcap::{
    check_preconditions, etag_for, xcap_caps, xcap_directory, ApplicationUsage, DeleteOutcome,
    DirectoryEntry, DocumentChange, Engine, Method, NameTest, Precondition, Tree,
    UniquenessConflict, XcapError, XcapUri,
};

use crate::auth::{self, Verdict};
use crate::usages::{self, Payload, RESOURCE_LISTS_NS, RLS_SERVICES_NS};
use crate::{strip_root, xcap_path_of, XcapService, Xui};

/// How often a write is re-evaluated after losing its compare-and-swap to another writer
/// before the server gives up with 503.
const WRITE_ATTEMPTS: usize = 16;

/// Name of the only generated xcap-directory document (OMA-TS-XDM_Core §C.2).
const DIRECTORY_DOCUMENT: &str = "directory.xml";

const ALLOW_ALL: &str = "GET, HEAD, PUT, DELETE";
const ALLOW_READ: &str = "GET, HEAD";

#[derive(Clone)]
struct App {
    service: Arc<XcapService>,
    secure: bool,
}

pub(crate) fn router(service: Arc<XcapService>, secure: bool) -> Router {
    Router::new()
        .fallback(handle)
        .with_state(App { service, secure })
}

/// One request after routing and access control.
struct Ctx<'a> {
    service: &'a XcapService,
    usage: &'a Payload,
    uri: XcapUri,
    /// The owner of a `users` tree document, `None` in the global tree.
    owner: Option<Xui>,
    key: DocumentKey,
    /// `scheme://host/root`, the prefix of absolute URIs in responses.
    base: String,
    if_match: Option<String>,
    if_none_match: Option<String>,
}

async fn handle(State(app): State<App>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let service = &*app.service;
    let Some(below_root) = strip_root(parts.uri.path(), &service.config.root) else {
        return status(StatusCode::NOT_FOUND);
    };
    let method = match parts.method {
        HttpMethod::GET => Method::Get,
        HttpMethod::HEAD => Method::Head,
        HttpMethod::PUT => Method::Put,
        HttpMethod::DELETE => Method::Delete,
        _ => return not_allowed(ALLOW_ALL),
    };
    // The body is read before any answer: a response sent while the client is still
    // uploading ends in a connection reset (unread data at close) that the client may see
    // before the response, which is what happens to a PUT that first meets the 401.
    let body = match method {
        Method::Put => match to_bytes(body, service.config.limits.max_document_bytes).await {
            Ok(body) => body,
            Err(_) => return status(StatusCode::PAYLOAD_TOO_LARGE),
        },
        _ => Default::default(),
    };
    let uri = match XcapUri::parse(below_root, parts.uri.query(), &service.config.limits) {
        Ok(uri) => uri,
        Err(error) => return status(code(error.status())),
    };
    let Some(usage) = service.usage(&uri.auid) else {
        return status(StatusCode::NOT_FOUND);
    };
    let writes = matches!(method, Method::Put | Method::Delete);
    if writes && usage.is_generated() {
        return not_allowed(ALLOW_READ);
    }
    let owner = match &uri.tree {
        Tree::Global if writes => return status(StatusCode::FORBIDDEN),
        Tree::Global => None,
        Tree::Users(xui) => match Xui::parse(xui) {
            Some(xui) if service.serves(&xui.domain) => Some(xui),
            _ => return status(StatusCode::NOT_FOUND),
        },
    };
    // The global tree is world-readable (xcap-caps must be fetchable before the client
    // knows which realm to answer), and so is pres-content: other users' clients fetch
    // status icons without credentials (blink-compat §3.4).
    let public = owner.is_none() || (!writes && usage.public_read());
    if let (Some(owner), false) = (&owner, public) {
        let verdict = auth::authenticate(
            &parts.headers,
            parts.method.as_str(),
            &owner.domain,
            app.secure,
            &service.nonces,
            &*service.accounts,
        )
        .await;
        match verdict {
            Verdict::User(user) if user == owner.user => {}
            Verdict::User(_) => return status(StatusCode::FORBIDDEN),
            Verdict::Challenge { stale } => {
                return unauthorized(service, &owner.domain, stale, app.secure)
            }
        }
    }
    let key = DocumentKey {
        auid: uri.auid.clone(),
        owner: owner.as_ref().map(Xui::key).unwrap_or_default(),
        path: uri.document.clone(),
    };
    let ctx = Ctx {
        service,
        usage,
        base: base_url(&parts.headers, app.secure, &service.config.root),
        if_match: joined(&parts.headers, header::IF_MATCH),
        if_none_match: joined(&parts.headers, header::IF_NONE_MATCH),
        uri,
        owner,
        key,
    };
    match method {
        Method::Get | Method::Head => ctx.get(method).await,
        Method::Put => {
            let content_type = parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            ctx.put(&content_type, &body).await
        }
        Method::Delete => ctx.delete().await,
    }
}

impl Ctx<'_> {
    fn engine(&self) -> Engine<'_> {
        Engine::new(self.usage, self.service.config.limits.clone())
    }

    fn preconditions(&self, method: Method, etag: Option<&str>) -> Precondition {
        check_preconditions(
            method,
            self.if_match.as_deref(),
            self.if_none_match.as_deref(),
            etag,
        )
    }

    async fn get(&self, method: Method) -> Response {
        let current = match self.usage.usage() {
            Usage::XcapCaps => self.generated_caps(),
            Usage::XcapDirectory => match self.generated_directory().await {
                Ok(doc) => doc,
                Err(response) => return response,
            },
            _ => match self.load().await {
                Ok(doc) => doc,
                Err(response) => return response,
            },
        };
        let etag = current.as_ref().map(|(_, etag)| etag.as_str());
        match self.preconditions(method, etag) {
            Precondition::Proceed => {}
            Precondition::NotModified => {
                let mut response = status(StatusCode::NOT_MODIFIED);
                set_etag(&mut response, etag);
                return response;
            }
            Precondition::Failed => return status(StatusCode::PRECONDITION_FAILED),
        }
        let Some((document, etag)) = current else {
            return status(StatusCode::NOT_FOUND);
        };
        match self.engine().get(&self.uri, &document) {
            Ok(selected) => {
                let mut response = Response::new(Body::from(selected.body));
                set_header(&mut response, header::CONTENT_TYPE, &selected.content_type);
                set_etag(&mut response, Some(&etag));
                response
            }
            Err(error) => self.error(&error),
        }
    }

    async fn put(&self, content_type: &str, body: &[u8]) -> Response {
        for _ in 0..WRITE_ATTEMPTS {
            let current = match self.load().await {
                Ok(current) => current,
                Err(response) => return response,
            };
            let current_etag = current.as_ref().map(|(_, etag)| etag.clone());
            if self.preconditions(Method::Put, current_etag.as_deref()) != Precondition::Proceed {
                return status(StatusCode::PRECONDITION_FAILED);
            }
            let outcome = match self.engine().put(
                &self.uri,
                current.as_ref().map(|(doc, _)| doc.as_str()),
                body,
                content_type,
            ) {
                Ok(outcome) => outcome,
                Err(error) => return self.error(&error),
            };
            let unique_keys = match self.server_constraints(&outcome.new_document).await {
                Ok(keys) => keys,
                Err(response) => return response,
            };
            let etag = etag_for(outcome.new_document.as_bytes());
            let write = DocumentWrite {
                content: outcome.new_document.as_bytes(),
                etag: &etag,
                unique_keys: &unique_keys,
            };
            let stored = self
                .service
                .documents
                .put_document_if(&self.key, Some(current_etag.as_deref()), write)
                .await;
            match stored {
                Ok(WriteOutcome::Written { previous_etag }) => {
                    self.emit(previous_etag, Some(etag.clone()));
                    let code = if outcome.created {
                        StatusCode::CREATED
                    } else {
                        StatusCode::OK
                    };
                    let mut response = status(code);
                    set_etag(&mut response, Some(&etag));
                    return response;
                }
                Ok(WriteOutcome::Conflict { .. }) => continue,
                Ok(WriteOutcome::KeyTaken { values }) => {
                    return self.service_uri_conflict(&values, &unique_keys).await
                }
                Err(error) => return storage_failure(&error),
            }
        }
        status(StatusCode::SERVICE_UNAVAILABLE)
    }

    async fn delete(&self) -> Response {
        for _ in 0..WRITE_ATTEMPTS {
            let current = match self.load().await {
                Ok(current) => current,
                Err(response) => return response,
            };
            let etag = current.as_ref().map(|(_, etag)| etag.as_str());
            if self.preconditions(Method::Delete, etag) != Precondition::Proceed {
                return status(StatusCode::PRECONDITION_FAILED);
            }
            let Some((document, etag)) = current else {
                return status(StatusCode::NOT_FOUND);
            };
            // The engine borrows a non-Sync usage: finish with it before awaiting.
            let outcome = self.engine().delete(&self.uri, &document);
            let new_document = match outcome {
                Ok(DeleteOutcome::Document) => {
                    let removed = self
                        .service
                        .documents
                        .delete_document_if(&self.key, Some(&etag))
                        .await;
                    match removed {
                        Ok(RemoveOutcome::Removed { previous_etag }) => {
                            self.emit(Some(previous_etag), None);
                            return status(StatusCode::OK);
                        }
                        Ok(RemoveOutcome::Conflict { .. }) => continue,
                        Err(error) => return storage_failure(&error),
                    }
                }
                Ok(DeleteOutcome::Updated(new_document)) => new_document,
                Err(error) => return self.error(&error),
            };
            // Removing a node can only drop unique keys, never claim new ones.
            let unique_keys = self.unique_keys(&new_document);
            let new_etag = etag_for(new_document.as_bytes());
            let write = DocumentWrite {
                content: new_document.as_bytes(),
                etag: &new_etag,
                unique_keys: &unique_keys,
            };
            let stored = self
                .service
                .documents
                .put_document_if(&self.key, Some(Some(&etag)), write)
                .await;
            match stored {
                Ok(WriteOutcome::Written { previous_etag }) => {
                    self.emit(previous_etag, Some(new_etag.clone()));
                    let mut response = status(StatusCode::OK);
                    set_etag(&mut response, Some(&new_etag));
                    return response;
                }
                Ok(WriteOutcome::Conflict { .. }) => continue,
                Ok(WriteOutcome::KeyTaken { values }) => {
                    return self.service_uri_conflict(&values, &unique_keys).await
                }
                Err(error) => return storage_failure(&error),
            }
        }
        status(StatusCode::SERVICE_UNAVAILABLE)
    }

    /// The stored document as text with its ETag.
    async fn load(&self) -> Result<Option<(String, String)>, Response> {
        let stored = self
            .service
            .documents
            .get_document(&self.key)
            .await
            .map_err(|e| storage_failure(&e))?;
        let Some(doc) = stored else {
            return Ok(None);
        };
        match String::from_utf8(doc.content) {
            Ok(text) => Ok(Some((text, doc.etag))),
            Err(_) => {
                warn!(key = ?self.key, "stored XCAP document is not UTF-8");
                Err(status(StatusCode::INTERNAL_SERVER_ERROR))
            }
        }
    }

    fn generated_caps(&self) -> Option<(String, String)> {
        if self.owner.is_some() || self.uri.document != "index" {
            return None;
        }
        let usages: Vec<&dyn ApplicationUsage> = self
            .service
            .usages
            .iter()
            .map(|u| u as &dyn ApplicationUsage)
            .collect();
        let caps = xcap_caps(&usages, &[]);
        let etag = etag_for(caps.as_bytes());
        Some((caps, etag))
    }

    async fn generated_directory(&self) -> Result<Option<(String, String)>, Response> {
        let Some(owner) = &self.owner else {
            return Ok(None);
        };
        if self.uri.document != DIRECTORY_DOCUMENT {
            return Ok(None);
        }
        let owner_key = owner.key();
        let listed = self
            .service
            .documents
            .list_documents(&owner_key)
            .await
            .map_err(|e| storage_failure(&e))?;
        let entries: Vec<DirectoryEntry> = listed
            .into_iter()
            .map(|info| {
                let path = XcapUri {
                    auid: info.key.auid.clone(),
                    tree: Tree::Users(owner_key.clone()),
                    document: info.key.path,
                    node: None,
                    namespaces: Vec::new(),
                }
                .document_path();
                DirectoryEntry {
                    auid: info.key.auid,
                    uri: format!("{}/{path}", self.base),
                    // OMA lists the entity tag's opaque value, without the HTTP quotes.
                    etag: info.etag.trim_matches('"').to_owned(),
                    last_modified: Some(xs_date_time(info.modified_at)),
                    size: Some(info.size),
                }
            })
            .collect();
        let auids: Vec<&str> = self
            .service
            .usages
            .iter()
            .filter(|u| !u.is_generated())
            .map(|u| u.auid())
            .collect();
        let directory = xcap_directory(&auids, &entries);
        let etag = etag_for(directory.as_bytes());
        Ok(Some((directory, etag)))
    }

    /// Constraints that need the store (RFC 4826 §4.1, §4.4): rls-services `service@uri`
    /// unique across every user, and every `<resource-list>` resolving to a list. Returns
    /// the unique keys the document claims.
    async fn server_constraints(&self, new_document: &str) -> Result<Vec<String>, Response> {
        if self.usage.usage() != Usage::RlsServices {
            return Ok(Vec::new());
        }
        let keys = self.unique_keys(new_document);
        let holders = self
            .service
            .documents
            .unique_key_holders(&self.key.auid, &keys)
            .await
            .map_err(|e| storage_failure(&e))?;
        let taken: Vec<String> = holders
            .into_iter()
            .filter(|(_, holder)| *holder != self.key)
            .map(|(value, _)| value)
            .collect();
        if !taken.is_empty() {
            return Err(self.service_uri_conflict(&taken, &keys).await);
        }
        let Ok(doc) = roxmltree::Document::parse(new_document) else {
            return Err(status(StatusCode::INTERNAL_SERVER_ERROR));
        };
        let references: Vec<String> = doc
            .descendants()
            .filter(|n| n.tag_name().namespace() == Some(RLS_SERVICES_NS))
            .filter(|n| n.tag_name().name() == "resource-list")
            .map(|n| n.text().unwrap_or_default().trim().to_owned())
            .collect();
        drop(doc);
        for reference in references {
            if !self.resource_list_resolves(&reference).await {
                let error = XcapError::Constraint {
                    phrase: Some(format!(
                        "resource-list {reference} does not reference an existing list"
                    )),
                };
                return Err(self.error(&error));
            }
        }
        Ok(keys)
    }

    /// Deduplicated decoded `service@uri` values for rls-services, nothing for other usages.
    fn unique_keys(&self, document: &str) -> Vec<String> {
        if self.usage.usage() != Usage::RlsServices {
            return Vec::new();
        }
        let Ok(doc) = roxmltree::Document::parse(document) else {
            return Vec::new();
        };
        let mut keys = usages::service_uris(&doc);
        keys.sort();
        keys.dedup();
        keys
    }

    /// 409 uniqueness-failure for service URIs other users' documents hold, with suggested
    /// alternatives that are free both here and server-wide.
    async fn service_uri_conflict(&self, taken: &[String], own: &[String]) -> Response {
        let mut conflicts = Vec::new();
        for value in taken {
            let candidates = usages::alternative_service_uris(value, |c| own.contains(c));
            let held = self
                .service
                .documents
                .unique_key_holders(&self.key.auid, &candidates)
                .await
                .unwrap_or_default();
            conflicts.push(UniquenessConflict {
                field: "rls-services/service/@uri".into(),
                alt_values: candidates
                    .into_iter()
                    .filter(|c| !held.iter().any(|(v, _)| v == c))
                    .collect(),
            });
        }
        self.error(&XcapError::Uniqueness(conflicts))
    }

    /// Whether an rls-services `<resource-list>` value (percent-encoded as Blink writes it,
    /// blink-compat §0.1) names an existing `<list>` in a resource-lists document here.
    async fn resource_list_resolves(&self, reference: &str) -> bool {
        let decoded = decode_any_uri(reference);
        let config = &self.service.config;
        let Some((path, query)) = xcap_path_of(&decoded, &config.root) else {
            return false;
        };
        let Ok(uri) = XcapUri::parse(path, query, &config.limits) else {
            return false;
        };
        let names_a_list = uri.node.as_ref().is_some_and(|node| {
            node.terminal.is_none()
                && node.steps.last().is_some_and(|step| {
                    matches!(&step.name, NameTest::Name { ns, local }
                        if local == "list" && ns.as_deref().is_none_or(|n| n == RESOURCE_LISTS_NS))
                })
        });
        let (Some(usage), true, Tree::Users(xui)) =
            (self.service.usage(&uri.auid), names_a_list, &uri.tree)
        else {
            return false;
        };
        let Some(owner) = Xui::parse(xui) else {
            return false;
        };
        if usage.usage() != Usage::ResourceLists {
            return false;
        }
        let key = DocumentKey {
            auid: uri.auid.clone(),
            owner: owner.key(),
            path: uri.document.clone(),
        };
        let Ok(Some(stored)) = self.service.documents.get_document(&key).await else {
            return false;
        };
        let Ok(text) = std::str::from_utf8(&stored.content) else {
            return false;
        };
        Engine::new(usage, config.limits.clone())
            .get(&uri, text)
            .is_ok()
    }

    fn emit(&self, old_etag: Option<String>, new_etag: Option<String>) {
        let change = DocumentChange {
            auid: self.key.auid.clone(),
            user: self.owner.as_ref().map(Xui::key),
            document: self.key.path.clone(),
            old_etag,
            new_etag,
        };
        // No subscriber yet is normal (the presence agent attaches later).
        let _ = self.service.events.send(change);
    }

    /// The response for an engine error: 409 with an xcap-error body, 405 with Allow, or the
    /// bare status.
    fn error(&self, error: &XcapError) -> Response {
        if let XcapError::MethodNotAllowed { .. } = error {
            return not_allowed(ALLOW_READ);
        }
        let Some(body) = error_body(error, &self.base) else {
            if let XcapError::CorruptDocument(detail) = error {
                warn!(key = ?self.key, %detail, "stored XCAP document does not parse");
            }
            return status(code(error.status()));
        };
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = StatusCode::CONFLICT;
        set_header(
            &mut response,
            header::CONTENT_TYPE,
            simple_payloads::xcap_error::CONTENT_TYPE,
        );
        response
    }
}

/// The RFC 4825 §11 body for a 409, `None` for errors with another status.
fn error_body(error: &XcapError, base: &str) -> Option<String> {
    let (kind, phrase) = match error {
        XcapError::NotWellFormed { phrase } => (XcapErrorKind::NotWellFormed, Some(phrase.clone())),
        XcapError::NotXmlFrag => (XcapErrorKind::NotXmlFrag, None),
        XcapError::NoParent { ancestor } => (
            XcapErrorKind::NoParent {
                ancestor: ancestor.as_ref().map(|a| format!("{base}/{a}")),
            },
            None,
        ),
        XcapError::SchemaValidation(failure) => {
            (XcapErrorKind::SchemaValidationError, failure.phrase.clone())
        }
        XcapError::NotXmlAttValue => (XcapErrorKind::NotXmlAttValue, None),
        XcapError::CannotInsert { phrase } => {
            (XcapErrorKind::CannotInsert, Some((*phrase).to_owned()))
        }
        XcapError::CannotDelete { phrase } => {
            (XcapErrorKind::CannotDelete, Some((*phrase).to_owned()))
        }
        XcapError::Uniqueness(conflicts) => {
            let mut exists = conflicts.iter().map(|c| Exists {
                field: c.field.clone(),
                alt_values: c.alt_values.clone(),
            });
            match exists.next() {
                Some(first) => (
                    XcapErrorKind::UniquenessFailure {
                        first,
                        more: exists.collect(),
                    },
                    None,
                ),
                None => (XcapErrorKind::ConstraintFailure, None),
            }
        }
        XcapError::Constraint { phrase } => (XcapErrorKind::ConstraintFailure, phrase.clone()),
        XcapError::NotUtf8 => (XcapErrorKind::NotUtf8, None),
        XcapError::NotFound
        | XcapError::MethodNotAllowed { .. }
        | XcapError::UnsupportedMediaType { .. }
        | XcapError::TooLarge
        | XcapError::CorruptDocument(_) => return None,
    };
    Some(simple_payloads::XcapError { kind, phrase }.to_xml())
}

fn code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn status(code: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = code;
    response
}

fn not_allowed(allow: &'static str) -> Response {
    let mut response = status(StatusCode::METHOD_NOT_ALLOWED);
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

fn unauthorized(service: &XcapService, realm: &str, stale: bool, secure: bool) -> Response {
    let mut response = status(StatusCode::UNAUTHORIZED);
    let challenges = auth::challenges(
        realm,
        stale,
        secure,
        &service.config.algorithms,
        &service.nonces,
    );
    for challenge in challenges {
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .append(header::WWW_AUTHENTICATE, value);
        }
    }
    response
}

fn storage_failure(error: &store::StoreError) -> Response {
    warn!(%error, "XCAP storage failure");
    status(StatusCode::INTERNAL_SERVER_ERROR)
}

fn set_header(response: &mut Response, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

fn set_etag(response: &mut Response, etag: Option<&str>) {
    if let Some(etag) = etag {
        set_header(response, header::ETAG, etag);
    }
}

/// All values of a list-valued header joined as one (RFC 9110 §5.3).
fn joined(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// `http(s)://host/root` from the request's Host header, for absolute URIs in responses;
/// just the root path when the Host header is missing or not a plain authority.
fn base_url(headers: &HeaderMap, secure: bool, root: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        });
    match host {
        Some(host) => {
            let scheme = if secure { "https" } else { "http" };
            format!("{scheme}://{host}{root}")
        }
        None => root.to_owned(),
    }
}

/// Unix seconds as an `xs:dateTime` in UTC (RFC 3339 is a profile of it).
fn xs_date_time(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_times_are_utc_calendar_dates() {
        assert_eq!(xs_date_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(xs_date_time(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(xs_date_time(1_715_772_400), "2024-05-15T11:26:40Z");
        assert_eq!(xs_date_time(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn base_url_uses_a_sane_host_only() {
        let mut h = HeaderMap::new();
        assert_eq!(base_url(&h, true, "/xcap-root"), "/xcap-root");
        h.insert(
            header::HOST,
            HeaderValue::from_static("xcap.example.com:8443"),
        );
        assert_eq!(
            base_url(&h, true, "/xcap-root"),
            "https://xcap.example.com:8443/xcap-root"
        );
        h.insert(header::HOST, HeaderValue::from_static("evil/path"));
        assert_eq!(base_url(&h, false, "/r"), "/r");
    }
}
