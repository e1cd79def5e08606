//! Certificate verification without a configured CA file uses the system's trust store
//! (rustls-native-certs: Debian's ca-certificates, or the files `SSL_CERT_FILE` names), against
//! the real `avail-server` over HTTPS. One test in its own process, since it sets the
//! environment variable the store is read from.

mod support;

use std::time::Duration;

use avail_client::http::HttpError;
use avail_client::{Account, ManagerError, Settings, TlsMode, XcapManager};
use support::{free_port, ServerProcess, DOMAIN};

#[tokio::test]
async fn without_a_ca_file_the_system_trust_store_decides() {
    let (http, https) = (free_port(), free_port());
    let server = ServerProcess::start(
        &[("alice", "secret")],
        &[
            "--sip-tls",
            "off",
            "--sip-tcp",
            &format!("127.0.0.1:{}", free_port()),
            "--http",
            &format!("127.0.0.1:{http}"),
            "--https",
            &format!("127.0.0.1:{https}"),
        ],
        &[https],
    );
    let root = format!("https://127.0.0.1:{https}/xcap-root");
    let device = tempfile::tempdir().expect("temp dir");
    let strict = || {
        let mut settings = Settings::new(
            Account::new("alice", DOMAIN, &root),
            "secret",
            device.path(),
        );
        settings.retry_delays = vec![Duration::from_millis(50)];
        settings.tls = TlsMode::Verify { ca_file: None };
        settings
    };
    let discover = |settings: Settings| async move {
        let mut manager = XcapManager::open(settings)?;
        manager.discover().await?;
        manager.sync().await?;
        Ok::<_, ManagerError>(())
    };

    // The server's own (self-signed) certificate is in no system store...
    let untrusted = discover(strict()).await;
    assert!(
        matches!(untrusted, Err(ManagerError::Http(HttpError::Tls(_)))),
        "{untrusted:?}"
    );

    // ...until the store names it: the same settings then verify and work. (A directory
    // named by SSL_CERT_DIR would be read too: none here.)
    std::env::remove_var("SSL_CERT_DIR");
    let cert = server.dir.path().join("tls/cert.pem");
    std::env::set_var("SSL_CERT_FILE", &cert);
    discover(strict())
        .await
        .unwrap_or_else(|error| panic!("trusted through SSL_CERT_FILE: {error:?}"));

    // A store without a single certificate is said to be one, with the way out.
    let empty = device.path().join("empty.pem");
    std::fs::write(&empty, "").expect("write");
    std::env::set_var("SSL_CERT_FILE", &empty);
    let error = discover(strict()).await.expect_err("nothing trusted");
    assert!(
        matches!(&error, ManagerError::Http(HttpError::CaFile(why)) if why.contains("ca-certificates")),
        "{error:?}"
    );
}
