//! Router-level tests (no sockets): the change-event stream and the access rules. The
//! HTTP-level suite against the running server is in `avail-server/tests/xcap.rs`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use sip_auth::{Algorithm, Nonces};
use store::BoxFuture;
use tower::ServiceExt;
use xcap::DocumentChange;

use crate::{AccountSource, XcapConfig, XcapService, Xui};

/// Accounts with clear-text passwords, hashed on lookup.
pub(crate) struct Accounts(HashMap<(String, String), String>);

impl Accounts {
    pub(crate) fn with(user: &str, domain: &str, password: &str) -> Accounts {
        Accounts(HashMap::from([(
            (user.to_owned(), domain.to_owned()),
            password.to_owned(),
        )]))
    }
}

impl AccountSource for Accounts {
    fn digest_ha1<'a>(
        &'a self,
        user: &'a str,
        domain: &'a str,
        algorithm: Algorithm,
    ) -> BoxFuture<'a, Option<String>> {
        let ha1 = self
            .0
            .get(&(user.to_owned(), domain.to_owned()))
            .map(|pw| sip_auth::ha1(algorithm, user, domain, pw));
        Box::pin(async move { ha1 })
    }
}

struct Fixture {
    service: Arc<XcapService>,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    fixture_with(XcapConfig::default()).await
}

async fn fixture_with(config: XcapConfig) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = store::Store::open(dir.path()).await.unwrap();
    let config = XcapConfig {
        domains: vec!["Example.com".into()],
        ..config
    };
    let service = XcapService::new(
        config,
        Arc::new(store),
        Arc::new(Accounts::with("alice", "example.com", "pw")),
        Nonces::with_random_secret(),
    );
    Fixture { service, _dir: dir }
}

/// One request over the TLS-flavoured router, authenticated as alice with Basic.
async fn send(
    service: &Arc<XcapService>,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> (StatusCode, Option<String>, String) {
    let token = base64::engine::general_purpose::STANDARD.encode("alice:pw");
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("Host", "xcap.example.com")
        .header("Authorization", format!("Basic {token}"));
    if let Some(ct) = content_type {
        request = request.header("Content-Type", ct);
    }
    let response = service
        .router(true)
        .oneshot(request.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let etag = response
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, etag, String::from_utf8(body.to_vec()).unwrap())
}

const DOC: &str = "/xcap-root/resource-lists/users/sip:alice@example.com/index";
const LISTS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">
  <list name="friends"/>
</resource-lists>"#;

#[tokio::test]
async fn every_committed_write_emits_one_change_event() {
    let f = fixture().await;
    let mut events = f.service.subscribe();
    let rl = Some("application/resource-lists+xml");
    let (status, created, _) = send(&f.service, "PUT", DOC, rl, LISTS).await;
    assert_eq!(status, StatusCode::CREATED);
    let element = format!("{DOC}/~~/resource-lists/list%5b@name=%22family%22%5d");
    let (status, inserted, _) = send(
        &f.service,
        "PUT",
        &element,
        Some("application/xcap-el+xml"),
        r#"<list name="family"/>"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    // Refused writes emit nothing.
    let (status, _, _) = send(&f.service, "PUT", DOC, rl, "<broken").await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _, _) = send(&f.service, "DELETE", DOC, None, "").await;
    assert_eq!(status, StatusCode::OK);

    let change = |old: &Option<String>, new: &Option<String>| DocumentChange {
        auid: "resource-lists".into(),
        user: Some("sip:alice@example.com".into()),
        document: "index".into(),
        old_etag: old.clone(),
        new_etag: new.clone(),
    };
    assert_eq!(events.recv().await.unwrap(), change(&None, &created));
    assert_eq!(events.recv().await.unwrap(), change(&created, &inserted));
    assert_eq!(events.recv().await.unwrap(), change(&inserted, &None));
    assert!(events.try_recv().is_err(), "exactly one event per write");
}

#[tokio::test]
async fn percent_encoded_and_literal_xuis_name_one_document() {
    let f = fixture().await;
    let rl = Some("application/resource-lists+xml");
    let (status, etag, _) = send(&f.service, "PUT", DOC, rl, LISTS).await;
    assert_eq!(status, StatusCode::CREATED);
    let encoded = "/xcap-root/resource-lists/users/sip%3Aalice%40EXAMPLE.com/index";
    let (status, etag2, body) = send(&f.service, "GET", encoded, None, "").await;
    assert_eq!(
        (status, etag2, body.as_str()),
        (StatusCode::OK, etag, LISTS)
    );
}

#[tokio::test]
async fn unknown_paths_and_domains_are_not_found() {
    let f = fixture().await;
    for path in [
        "/elsewhere/resource-lists/users/sip:alice@example.com/index",
        "/xcap-root/no-such-auid/users/sip:alice@example.com/index",
        "/xcap-root/resource-lists/users/sip:alice@other.org/index",
        "/xcap-root/resource-lists/users/alice/index",
        "/xcap-root/xcap-caps/global/other",
    ] {
        let (status, _, _) = send(&f.service, "GET", path, None, "").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (status, _, body) = send(
        &f.service,
        "GET",
        "/xcap-root/xcap-caps/global/index",
        None,
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("<auid>org.openmobilealliance.pres-rules</auid>"));
}

#[tokio::test]
async fn oversized_bodies_are_refused_before_anything_else() {
    let mut config = XcapConfig::default();
    config.limits.max_document_bytes = 64;
    let f = fixture_with(config).await;
    let big = format!("{LISTS}<!--{}-->", "x".repeat(64));
    let (status, _, _) = send(
        &f.service,
        "PUT",
        DOC,
        Some("application/resource-lists+xml"),
        &big,
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _, _) = send(&f.service, "GET", DOC, None, "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[test]
fn xuis_normalise_scheme_case_and_domain_case() {
    let a = Xui::parse("SIP:alice@Example.COM").unwrap();
    assert_eq!(a.key(), "sip:alice@example.com");
    assert_eq!(Xui::parse("sips:alice@example.com"), Some(a));
    assert_eq!(Xui::parse("tel:+123"), None);
    assert_eq!(Xui::parse("sip:@example.com"), None);
    assert_eq!(Xui::parse("sip:alice@example.com;transport=tcp"), None);
}

#[test]
fn roots_are_normalised() {
    assert_eq!(crate::normalise_root("/xcap-root/"), "/xcap-root");
    assert_eq!(crate::normalise_root("/"), "");
    assert_eq!(crate::normalise_root("xcap"), "/xcap");
    assert_eq!(crate::strip_root("/a/b", ""), Some("a/b"));
    assert_eq!(
        crate::xcap_path_of("https://h:1/xcap-root/x/y?q", "/xcap-root"),
        Some(("x/y", Some("q")))
    );
    assert_eq!(crate::xcap_path_of("https://h/other/x", "/xcap-root"), None);
}
