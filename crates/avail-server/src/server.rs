//! `avail-server run`: opens storage, starts the transports, and runs the SIP core's event
//! loop, feeding it received messages and timer expiries.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sip_transport::{tls, Transport, TransportConfig, Transports};
use tracing::info;

use crate::config::Config;
use crate::register::Registration;
use crate::sip_core::SipCore;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub async fn run(config: Config) -> Result<(), BoxError> {
    let config = Arc::new(config);
    let store = store::Store::open(&config.data_dir).await?;
    let tls_server_config = match config.sip.tls {
        Some(_) => Some(tls::load_or_generate(
            config.tls.cert.as_deref(),
            config.tls.key.as_deref(),
            &config.data_dir,
            &config.domains,
        )?),
        None => None,
    };
    let transport_config = TransportConfig {
        udp: config.sip.udp,
        tcp: config.sip.tcp,
        tls: config.sip.tls,
        tls_server_config,
        idle_timeout: Duration::from_secs(config.sip.idle_timeout_secs),
        limits: config.limits.sip(),
        max_connections: config.sip.max_connections,
        ..TransportConfig::default()
    };
    let (transport, mut events) = Transports::start(transport_config).await?;
    for kind in [Transport::Udp, Transport::Tcp, Transport::Tls] {
        if let Some(addr) = transport.local_addr(kind) {
            info!("SIP over {kind} on {addr}");
        }
    }
    info!(domains = ?config.domains, data_dir = %config.data_dir.display(), "avail-server started");
    let registration = Registration::start(config.clone(), store).await?;
    let mut core = SipCore::new(config, registration, transport.clone());
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let deadline = core
            .next_deadline()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            event = events.recv() => match event {
                Some(event) => core.on_transport_event(event, Instant::now()).await,
                None => break,
            },
            _ = tokio::time::sleep_until(deadline.into()) => core.on_timer(Instant::now()).await,
            _ = &mut shutdown => {
                info!("shutting down");
                break;
            }
        }
    }
    transport.shutdown();
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
