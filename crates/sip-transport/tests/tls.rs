mod common;

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use common::{loopback, next_event, next_message, request, response, WAIT};
use rustls::pki_types::ServerName;
use sip_transport::tls::{self, TlsError};
use sip_transport::{Target, Transport, TransportConfig, TransportEvent, Transports};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

fn generated(dir: &Path) -> Arc<rustls::ServerConfig> {
    tls::load_or_generate(None, None, dir, &["sip.avail.test".to_owned()]).unwrap()
}

fn tls_server_config(dir: &Path) -> TransportConfig {
    TransportConfig {
        tls: Some(loopback()),
        tls_server_config: Some(generated(dir)),
        ..TransportConfig::default()
    }
}

#[test]
fn certificate_is_generated_once_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    generated(dir.path());
    let cert_path = dir.path().join("tls/cert.pem");
    let key_path = dir.path().join("tls/key.pem");
    let cert = std::fs::read(&cert_path).unwrap();
    let key = std::fs::read(&key_path).unwrap();
    assert!(String::from_utf8_lossy(&cert).contains("BEGIN CERTIFICATE"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    generated(dir.path());
    assert_eq!(std::fs::read(&cert_path).unwrap(), cert);
    assert_eq!(std::fs::read(&key_path).unwrap(), key);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("tls")).unwrap().collect();
    assert_eq!(
        leftovers.len(),
        2,
        "temporary files left behind: {leftovers:?}"
    );

    // The same files load when configured explicitly.
    tls::load_or_generate(
        Some(&cert_path),
        Some(&key_path),
        Path::new("/nonexistent"),
        &[],
    )
    .unwrap();
}

#[test]
fn certificate_and_key_must_be_configured_together() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    assert!(matches!(
        tls::load_or_generate(Some(&cert), None, dir.path(), &[]),
        Err(TlsError::IncompletePaths)
    ));
    let error = tls::load_or_generate(Some(&cert), Some(&cert), dir.path(), &[]).unwrap_err();
    assert!(error.to_string().contains("cert.pem"), "{error}");
}

#[tokio::test]
async fn tls_round_trip_with_a_client_trusting_the_generated_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, mut events) = Transports::start(tls_server_config(dir.path()))
        .await
        .unwrap();
    let server = handle.local_addr(Transport::Tls).unwrap();

    let client_config = tls::client_config(Some(&dir.path().join("tls/cert.pem"))).unwrap();
    let tcp = TcpStream::connect(server).await.unwrap();
    let name = ServerName::try_from("sip.avail.test").unwrap();
    let mut client = timeout(WAIT, TlsConnector::from(client_config).connect(name, tcp))
        .await
        .unwrap()
        .unwrap();

    let message = request("tls1", "secret");
    client.write_all(message.as_bytes()).await.unwrap();
    client.flush().await.unwrap();
    let inbound = next_message(&mut events).await;
    assert_eq!(inbound.transport, Transport::Tls);
    assert_eq!(inbound.local, server);
    assert_eq!(&inbound.data[..], message.as_bytes());

    let reply = response("tls1");
    handle
        .send(
            Target::Connection(inbound.connection.unwrap()),
            Bytes::from(reply.clone()),
        )
        .await
        .unwrap();
    let mut buf = vec![0; reply.len()];
    timeout(WAIT, client.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(buf, reply.as_bytes());
}

#[tokio::test]
async fn outgoing_tls_connection_between_two_transports() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mut server_events) = Transports::start(tls_server_config(dir.path()))
        .await
        .unwrap();
    let client_cfg = TransportConfig {
        tcp: Some(loopback()),
        tls_client_config: Some(
            tls::client_config(Some(&dir.path().join("tls/cert.pem"))).unwrap(),
        ),
        ..TransportConfig::default()
    };
    let (client, mut client_events) = Transports::start(client_cfg).await.unwrap();

    let addr = server.local_addr(Transport::Tls).unwrap();
    let target = Target::Connect {
        transport: Transport::Tls,
        addr,
        server_name: Some("localhost".into()),
    };
    let notify = request("notify1", "<presence/>");
    client
        .send(target, Bytes::from(notify.clone()))
        .await
        .unwrap();
    let inbound = next_message(&mut server_events).await;
    assert_eq!(&inbound.data[..], notify.as_bytes());

    let reply = response("notify1");
    server
        .send(
            Target::Connection(inbound.connection.unwrap()),
            Bytes::from(reply.clone()),
        )
        .await
        .unwrap();
    let answer = next_message(&mut client_events).await;
    assert_eq!(answer.transport, Transport::Tls);
    assert_eq!(answer.peer, addr);
    assert_eq!(&answer.data[..], reply.as_bytes());

    // A name the certificate does not carry fails verification.
    let (other, _other_events) = Transports::start(TransportConfig {
        tls_client_config: Some(
            tls::client_config(Some(&dir.path().join("tls/cert.pem"))).unwrap(),
        ),
        ..TransportConfig::default()
    })
    .await
    .unwrap();
    let wrong = Target::Connect {
        transport: Transport::Tls,
        addr,
        server_name: Some("evil.test".into()),
    };
    assert!(other.send(wrong, Bytes::from_static(b"x")).await.is_err());

    server.shutdown();
    assert!(matches!(
        next_event(&mut server_events).await,
        TransportEvent::Closed(_)
    ));
}
