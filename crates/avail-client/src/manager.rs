//! The XCAP manager's I/O loop (blink-compat §2.2): xcap-caps check requiring the three AUIDs,
//! conditional GET of every supported document with an on-disk ETag cache, whole-document PUT
//! with `If-Match` / `If-None-Match: *` (RFC 4825 §7.11) one at a time in Blink's order, DELETE
//! for removed content, and on 412 a re-fetch and replay of the whole journal. Other failures
//! are retried after the configured back-off delays, a bounded number of times.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use hyper::Method;
use simple_payloads::{validate, Usage};

use crate::account::Account;
use crate::content::{offline_note, Icon};
use crate::documents::{plan, DocumentKind, Fetched, PlanError};
pub use crate::http::TlsMode;
use crate::http::{Credentials, HttpClient, HttpError};
use crate::journal::{Journal, JournalError, Operation};
use crate::pres_rules::{self, DefaultPolicy};
use crate::resource_lists::{self, AddressBook};

/// Everything the manager needs to run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub account: Account,
    pub password: String,
    pub tls: TlsMode,
    /// Journal and ETag cache live here.
    pub data_dir: PathBuf,
    /// Waits before each retry of a failed update; its length bounds the retries.
    pub retry_delays: Vec<Duration>,
    /// How many 412 → re-fetch → replay rounds one sync may take.
    pub max_replays: usize,
    pub request_timeout: Duration,
}

impl Settings {
    pub fn new(account: Account, password: &str, data_dir: &Path) -> Settings {
        Settings {
            account,
            password: password.to_owned(),
            tls: TlsMode::default(),
            data_dir: data_dir.to_owned(),
            retry_delays: vec![
                Duration::from_secs(1),
                Duration::from_secs(5),
                Duration::from_secs(30),
            ],
            max_replays: 5,
            request_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("{method} {path}: HTTP {status}")]
    Status {
        method: Method,
        path: String,
        status: u16,
    },
    #[error("authentication failed (wrong password, or the realm is not the SIP domain)")]
    Unauthorized,
    #[error(
        "the XCAP server does not support the application usages presence needs: {} \
         (presence subscriptions stay off)",
        .0.join(", ")
    )]
    MissingAuids(Vec<&'static str>),
    #[error("invalid xcap-caps document: {0}")]
    InvalidCaps(String),
    #[error("invalid {0:?} document from the server: {1}")]
    InvalidDocument(DocumentKind, String),
    #[error("no strong quoted ETag on a {0:?} response")]
    NoEtag(DocumentKind),
    #[error("still conflicting after {0} replays")]
    Conflict(usize),
    #[error("xcap-caps not fetched yet")]
    NotDiscovered,
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("cache {path}: {source}")]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ManagerError {
    /// Network trouble, server errors and 409 are retried (Blink retries them forever).
    fn retryable(&self) -> bool {
        match self {
            ManagerError::Http(e) => !matches!(e, HttpError::BadRoot(..) | HttpError::CaFile(_)),
            ManagerError::Status { status, .. } => {
                *status == 409 || *status >= 500 || *status == 408
            }
            ManagerError::InvalidDocument(..) | ManagerError::InvalidCaps(_) => true,
            _ => false,
        }
    }
}

/// One cached document: its ETag and body as the server holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cached {
    etag: String,
    body: String,
}

/// What a sync achieved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub written: Vec<DocumentKind>,
    pub replays: usize,
    pub retries: usize,
}

/// The decoded state of the documents after a sync.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    pub address_book: AddressBook,
    pub default_policy: DefaultPolicy,
    pub icon: Option<Icon>,
    pub offline_note: Option<String>,
}

/// Internal outcome of one attempt.
enum Attempt {
    Done(Vec<DocumentKind>),
    Conflict,
}

pub struct XcapManager {
    settings: Settings,
    http: HttpClient,
    journal: Journal,
    cache: BTreeMap<DocumentKind, Cached>,
    supported: Option<Vec<DocumentKind>>,
}

const MAX_CACHE_BYTES: u64 = crate::xml::MAX_DOCUMENT_BYTES as u64;

impl XcapManager {
    /// Opens the journal and ETag cache in the data directory; no network yet.
    pub fn open(settings: Settings) -> Result<XcapManager, ManagerError> {
        let credentials = Credentials {
            username: settings.account.user.clone(),
            password: settings.password.clone(),
            realm: settings.account.domain.clone(),
        };
        let http = HttpClient::new(
            &settings.account.xcap_root,
            Some(credentials),
            &settings.tls,
            settings.request_timeout,
        )?;
        let journal = Journal::open(&settings.data_dir.join("xcap-journal.jsonl"))?;
        let mut cache = BTreeMap::new();
        for kind in DocumentKind::ALL {
            if let Some(cached) = read_cache(&cache_path(&settings.data_dir, kind)) {
                cache.insert(kind, cached);
            }
        }
        Ok(XcapManager {
            settings,
            http,
            journal,
            cache,
            supported: None,
        })
    }

    /// GETs xcap-caps and records which documents the server supports; fails when one of
    /// resource-lists, rls-services or OMA pres-rules is missing (blink-compat §2.2 item 1).
    pub async fn discover(&mut self) -> Result<&[DocumentKind], ManagerError> {
        let path = "/xcap-caps/global/index";
        let response = self
            .http
            .request(
                Method::GET,
                path,
                &[("accept", "application/xcap-caps+xml".into())],
                None,
            )
            .await?;
        check_status(&Method::GET, path, response.status, &[200])?;
        let text = String::from_utf8_lossy(&response.body);
        validate(Usage::XcapCaps, &text).map_err(|e| {
            ManagerError::InvalidDocument(DocumentKind::ResourceLists, e.to_string())
        })?;
        let auids = caps_auids(&text);
        let missing: Vec<&'static str> = DocumentKind::ALL
            .into_iter()
            .filter(|k| k.required() && !auids.iter().any(|a| a == k.auid()))
            .map(DocumentKind::auid)
            .collect();
        if !missing.is_empty() {
            return Err(ManagerError::MissingAuids(missing));
        }
        let supported = DocumentKind::ALL
            .into_iter()
            .filter(|k| auids.iter().any(|a| a == k.auid()))
            .collect();
        Ok(self.supported.insert(supported))
    }

    /// The account and root this manager works for.
    pub fn account(&self) -> &Account {
        &self.settings.account
    }

    /// Queues an operation durably; it reaches the server on the next [`push`](Self::push).
    pub fn queue(&mut self, op: Operation) -> Result<(), ManagerError> {
        Ok(self.journal.push(op)?)
    }

    pub fn pending(&self) -> &[Operation] {
        self.journal.operations()
    }

    /// Re-fetches and then pushes: the full §2.2 cycle.
    pub async fn sync(&mut self) -> Result<SyncReport, ManagerError> {
        self.refresh().await?;
        self.push().await
    }

    /// Conditional GET of every supported document into the cache.
    pub async fn refresh(&mut self) -> Result<(), ManagerError> {
        let supported = self.supported.clone().ok_or(ManagerError::NotDiscovered)?;
        for kind in supported {
            self.fetch(kind).await?;
        }
        Ok(())
    }

    /// Applies the journal to the cached documents and writes what changed; on 412 re-fetches
    /// and replays, on other errors waits and retries, both bounded.
    pub async fn push(&mut self) -> Result<SyncReport, ManagerError> {
        let mut report = SyncReport::default();
        loop {
            match self.attempt().await {
                Ok(Attempt::Done(written)) => {
                    let done = self.journal.operations().len();
                    self.journal.complete(done)?;
                    report.written = written;
                    return Ok(report);
                }
                Ok(Attempt::Conflict) if report.replays < self.settings.max_replays => {
                    report.replays += 1;
                    tracing::info!(
                        replay = report.replays,
                        "XCAP 412: re-fetching and replaying the journal"
                    );
                    self.refresh_with_retries(&mut report).await?;
                }
                Ok(Attempt::Conflict) => return Err(ManagerError::Conflict(report.replays)),
                Err(e) if e.retryable() && report.retries < self.settings.retry_delays.len() => {
                    tracing::warn!(error = %e, "XCAP update failed; retrying");
                    tokio::time::sleep(self.settings.retry_delays[report.retries]).await;
                    report.retries += 1;
                    self.refresh_with_retries(&mut report).await?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn refresh_with_retries(&mut self, report: &mut SyncReport) -> Result<(), ManagerError> {
        loop {
            match self.refresh().await {
                Ok(()) => return Ok(()),
                Err(e) if e.retryable() && report.retries < self.settings.retry_delays.len() => {
                    tokio::time::sleep(self.settings.retry_delays[report.retries]).await;
                    report.retries += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The decoded documents as last fetched or written.
    pub fn snapshot(&self) -> Snapshot {
        let body = |kind| self.cache.get(&kind).map(|c: &Cached| c.body.as_str());
        let address_book = resource_lists::parse(body(DocumentKind::ResourceLists))
            .map(|d| AddressBook::read(&d))
            .unwrap_or_default();
        let default_policy = pres_rules::parse(body(DocumentKind::PresRules))
            .map(|d| pres_rules::default_policy(&d))
            .unwrap_or_default();
        Snapshot {
            address_book,
            default_policy,
            icon: body(DocumentKind::StatusIcon).and_then(Icon::parse),
            offline_note: body(DocumentKind::PidfManipulation).and_then(offline_note),
        }
    }

    /// The cached ETag of a document as the server sent it (quoted).
    pub fn etag(&self, kind: DocumentKind) -> Option<&str> {
        self.cache.get(&kind).map(|c| c.etag.as_str())
    }

    /// The cached body of a document, if the server has one.
    pub fn document(&self, kind: DocumentKind) -> Option<&str> {
        self.cache.get(&kind).map(|c| c.body.as_str())
    }

    async fn fetch(&mut self, kind: DocumentKind) -> Result<(), ManagerError> {
        let path = self.settings.account.document_path(kind);
        let mut headers = vec![("accept", kind.content_type().to_owned())];
        if let Some(cached) = self.cache.get(&kind) {
            headers.push(("if-none-match", cached.etag.clone()));
        }
        let response = self
            .http
            .request(Method::GET, &path, &headers, None)
            .await?;
        match response.status {
            304 => Ok(()),
            404 => self.forget(kind),
            200 => {
                let body = String::from_utf8(response.body.to_vec())
                    .map_err(|_| ManagerError::InvalidDocument(kind, "not UTF-8".into()))?;
                validate(kind.usage(), &body)
                    .map_err(|e| ManagerError::InvalidDocument(kind, e.to_string()))?;
                let etag = strong_etag(response.etag, kind)?;
                self.remember(kind, Cached { etag, body })
            }
            status => {
                check_status(&Method::GET, &path, status, &[])?;
                Ok(())
            }
        }
    }

    async fn attempt(&mut self) -> Result<Attempt, ManagerError> {
        let supported = self.supported.clone().ok_or(ManagerError::NotDiscovered)?;
        let fetched: Fetched = supported
            .iter()
            .map(|&k| (k, self.cache.get(&k).map(|c| c.body.clone())))
            .collect();
        let updates = plan(&self.settings.account, &fetched, self.journal.operations())?;
        let mut written = Vec::new();
        for update in updates {
            let kind = update.kind;
            let path = self.settings.account.document_path(kind);
            let precondition = match self.cache.get(&kind) {
                Some(cached) => ("if-match", cached.etag.clone()),
                None => ("if-none-match", "*".to_owned()),
            };
            match update.body {
                Some(body) => {
                    let response = self
                        .http
                        .request(
                            Method::PUT,
                            &path,
                            &[precondition],
                            Some((kind.content_type(), Bytes::from(body.clone()))),
                        )
                        .await?;
                    if response.status == 412 {
                        return Ok(Attempt::Conflict);
                    }
                    check_status(&Method::PUT, &path, response.status, &[200, 201])?;
                    let etag = strong_etag(response.etag, kind)?;
                    self.remember(kind, Cached { etag, body })?;
                }
                None => {
                    if !self.cache.contains_key(&kind) {
                        continue;
                    }
                    let response = self
                        .http
                        .request(Method::DELETE, &path, &[precondition], None)
                        .await?;
                    if response.status == 412 {
                        return Ok(Attempt::Conflict);
                    }
                    check_status(&Method::DELETE, &path, response.status, &[200, 204, 404])?;
                    self.forget(kind)?;
                }
            }
            written.push(kind);
        }
        Ok(Attempt::Done(written))
    }

    fn remember(&mut self, kind: DocumentKind, cached: Cached) -> Result<(), ManagerError> {
        let path = cache_path(&self.settings.data_dir, kind);
        write_cache(&path, &cached).map_err(|source| ManagerError::Cache { path, source })?;
        self.cache.insert(kind, cached);
        Ok(())
    }

    fn forget(&mut self, kind: DocumentKind) -> Result<(), ManagerError> {
        self.cache.remove(&kind);
        let path = cache_path(&self.settings.data_dir, kind);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(ManagerError::Cache { path, source: e })
            }
            _ => Ok(()),
        }
    }
}

fn check_status(method: &Method, path: &str, status: u16, ok: &[u16]) -> Result<(), ManagerError> {
    if ok.contains(&status) {
        return Ok(());
    }
    if status == 401 || status == 403 {
        return Err(ManagerError::Unauthorized);
    }
    Err(ManagerError::Status {
        method: method.clone(),
        path: path.to_owned(),
        status,
    })
}

/// Blink requires strong quoted ETags (blink-compat §2.1); anything else is a server fault.
fn strong_etag(etag: Option<String>, kind: DocumentKind) -> Result<String, ManagerError> {
    etag.filter(|e| e.len() >= 2 && e.starts_with('"') && e.ends_with('"'))
        .ok_or(ManagerError::NoEtag(kind))
}

fn caps_auids(text: &str) -> Vec<String> {
    let Ok(doc) = roxmltree::Document::parse(text) else {
        return Vec::new();
    };
    doc.descendants()
        .filter(|n| n.has_tag_name((crate::ns::XCAP_CAPS, "auid")))
        .filter_map(|n| n.text())
        .map(|t| t.trim().to_owned())
        .collect()
}

fn cache_path(dir: &Path, kind: DocumentKind) -> PathBuf {
    dir.join("xcap-cache").join(kind.auid())
}

/// The cache file is the ETag line followed by the body, like the SDK's.
fn read_cache(path: &Path) -> Option<Cached> {
    if fs::metadata(path).ok()?.len() > MAX_CACHE_BYTES {
        return None;
    }
    let text = fs::read_to_string(path).ok()?;
    let (etag, body) = text.split_once('\n')?;
    Some(Cached {
        etag: etag.to_owned(),
        body: body.to_owned(),
    })
}

fn write_cache(path: &Path, cached: &Cached) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let temp = path.with_extension("tmp");
    fs::write(&temp, format!("{}\n{}", cached.etag, cached.body))?;
    fs::rename(temp, path)
}
