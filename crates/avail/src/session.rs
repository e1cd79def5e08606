//! The SIP side of the agent (blink-compat §3.1, §4, §6, §8 items 1, 5, 6): one TCP or TLS
//! connection to the outbound proxy or to a server RFC 3263 finds for the domain (SRV, then
//! A/AAAA; see `avail_client::discovery`), reconnected with exponential back-off (1 s doubling
//! to 60 s), that drives the sans-IO `sip-ua` user agent: REGISTER with `+sip.instance` and
//! GRUU, PUBLISH of the own PIDF (modified on every change, removed on shutdown), and once XCAP
//! is discovered the RLS buddy-list, self-presence, presence.winfo and xcap-diff
//! subscriptions. When the server has no resource list service (the RLS SUBSCRIBE fails with a
//! 4xx), each subscribed contact URI gets its own presence subscription instead.
//!
//! A new connection gets a new user agent: everything is registered, published and subscribed
//! afresh, as the SDK does after a network change.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use avail_client::config::{AccountSettings, Transport};
use avail_client::discovery::{host_port, Dns};
use avail_client::http::tls_connector;
use avail_client::pidf_view::PresenceDocument;
use avail_client::presence::remote_choice;
use avail_client::roster::{changed_documents, contact_availability, strip_scheme, Applied};
use bytes::Bytes;
use rand::SeedableRng;
use serde_json::json;
use simple_payloads::encode_any_uri;
use simple_payloads::rlmi::InstanceState;
use sip_message::{Limits, Message, StreamDecoder, StreamItem};
use sip_ua::{
    Config, Credentials, Event, Flow, Identity, Output, PublicationId, PublishParams,
    RegisterParams, RegistrationId, SubscribeParams, SubscriptionId, SubscriptionStatus, UserAgent,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use crate::agent::{stopped, user_agent, Shared, SipCommand, XcapCommand};

/// Requested lifetimes (Blink's `register_interval`, `publish_interval`, subscriptions).
const REGISTER_EXPIRES: u32 = 600;
const PUBLISH_EXPIRES: u32 = 600;
const SUBSCRIBE_EXPIRES: u32 = 600;
/// pjsip's CRLF keepalive period on TCP/TLS (blink-compat §6).
const KEEPALIVE: Duration = Duration::from_secs(90);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long shutdown waits for the unpublish and unregister answers.
const GOODBYE_WAIT: Duration = Duration::from_secs(2);
/// Direct subscriptions at most (fallback without an RLS).
const MAX_DIRECT: usize = 500;
const READ_CHUNK: usize = 16 * 1024;

/// What a failed request means for the user: authentication failures name the password.
fn failure(what: &str, status: u16) -> String {
    match status {
        401 | 403 | 407 => {
            format!("{what} refused ({status}): wrong password or unknown account")
        }
        408 | 503 => format!("{what} failed ({status}): no answer from the server"),
        _ => format!("{what} failed: SIP {status}"),
    }
}

/// Queues the sends of a shutdown and counts the finished unpublications and unregistrations;
/// other events no longer matter.
fn goodbye_outputs(outputs: Vec<Output<()>>, outgoing: &mut Vec<Bytes>) -> usize {
    let mut finished = 0;
    for output in outputs {
        match output {
            Output::Send { data, .. } => outgoing.push(data),
            Output::Event(Event::Unpublished { .. } | Event::Unregistered { .. }) => finished += 1,
            Output::Event(_) => {}
        }
    }
    finished
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Connects to the outbound proxy, or else to the servers RFC 3263 finds for the domain, in
/// order. A server found through DNS must present a certificate for the SIP domain, since the
/// SRV answer itself is not authenticated (RFC 5922 §4.1); a proxy, for its own name.
async fn connect(shared: &Shared) -> Result<(Box<dyn Io>, std::net::SocketAddr), String> {
    let settings = &shared.settings;
    let (targets, tls_name) = match &settings.outbound_proxy {
        Some((host, port)) => (vec![(host.clone(), *port)], host.clone()),
        None => {
            let dns = Dns::system().map_err(|e| e.to_string())?;
            let targets = dns
                .sip_targets(&settings.domain, settings.transport)
                .await
                .map_err(|e| e.to_string())?;
            let domain = host_port(&settings.domain, settings.transport.default_port()).0;
            (targets, domain)
        }
    };
    let mut failures = Vec::new();
    for (host, port) in targets {
        match connect_to(settings, &host, port, &tls_name).await {
            Ok(connection) => return Ok(connection),
            Err(e) => failures.push(e),
        }
    }
    Err(failures.join("; "))
}

async fn connect_to(
    settings: &AccountSettings,
    host: &str,
    port: u16,
    tls_name: &str,
) -> Result<(Box<dyn Io>, std::net::SocketAddr), String> {
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host, port)))
        .await
        .map_err(|_| format!("SIP server {host}:{port} unreachable: timed out"))?
        .map_err(|e| format!("SIP server {host}:{port} unreachable: {e}"))?;
    tcp.set_nodelay(true).ok();
    let local = tcp.local_addr().map_err(|e| e.to_string())?;
    match settings.transport {
        Transport::Tcp => Ok((Box::new(tcp), local)),
        Transport::Tls => {
            let connector = tls_connector(&settings.tls).map_err(|e| e.to_string())?;
            let name = rustls::pki_types::ServerName::try_from(tls_name.to_owned())
                .map_err(|e| format!("bad server name {tls_name}: {e}"))?;
            let stream = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp))
                .await
                .map_err(|_| format!("TLS handshake with {host}:{port} timed out"))?
                .map_err(|e| format!("TLS handshake with {host}:{port} failed: {e}"))?;
            Ok((Box::new(stream), local))
        }
    }
}

/// Runs connections until shutdown.
pub async fn run(
    shared: Arc<Shared>,
    mut commands: mpsc::UnboundedReceiver<SipCommand>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        match connect(&shared).await {
            Ok((stream, local)) => {
                let started = Instant::now();
                shared.state().sip.connected = true;
                let mut session = Session::new(shared.clone(), local);
                let stopped = session.run(stream, &mut commands, &mut shutdown).await;
                {
                    let mut state = shared.state();
                    state.sip.connected = false;
                    state.sip.registered = false;
                }
                if stopped {
                    return;
                }
                shared
                    .events
                    .push("registration", json!({ "connected": false }));
                if started.elapsed() > MAX_BACKOFF {
                    backoff = FIRST_BACKOFF;
                }
            }
            Err(message) => {
                tracing::warn!(error = %message, "SIP connection failed");
                shared.state().sip.error = Some(message.clone());
                shared
                    .events
                    .push("registration", json!({ "error": message }));
            }
        }
        // Jitter keeps many clients of a restarted server from reconnecting in step.
        let jitter = Duration::from_millis(rand::random::<u64>() % 500);
        tokio::select! {
            _ = tokio::time::sleep(backoff + jitter) => {}
            _ = stopped(&mut shutdown) => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// What a subscription is for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Purpose {
    BuddyList,
    OwnPresence,
    WatcherInfo,
    XcapDiff,
    Contact(String),
}

struct Session {
    shared: Arc<Shared>,
    ua: UserAgent<()>,
    flow: Flow<()>,
    identity: Identity,
    registration: Option<RegistrationId>,
    publication: Option<PublicationId>,
    published_body: Option<String>,
    subscriptions: HashMap<SubscriptionId, Purpose>,
    subscribed: bool,
    direct_mode: bool,
    /// Bytes to write, in order.
    outgoing: Vec<Bytes>,
    /// The connection failed to write or read.
    broken: bool,
}

impl Session {
    fn new(shared: Arc<Shared>, local: std::net::SocketAddr) -> Session {
        let settings = &shared.settings;
        let transport = settings.transport.as_str();
        let flow = Flow {
            dest: (),
            reliable: true,
            via: format!("SIP/2.0/{} {local};rport", transport.to_ascii_uppercase()),
            // A random 8-digit user, as the SDK's Contact (blink-compat §6).
            contact: format!(
                "sip:{:08}@{local};transport={transport}",
                rand::random::<u32>() % 100_000_000
            ),
        };
        let identity = Identity {
            aor: settings.aor(),
            display_name: settings.display_name.clone(),
            credentials: Some(Credentials {
                username: settings.user.clone(),
                password: settings.password.clone(),
            }),
        };
        let config = Config {
            user_agent: Some(user_agent()),
            keepalive_interval: KEEPALIVE,
            ..Config::default()
        };
        Session {
            ua: UserAgent::new(config, rand::rngs::StdRng::from_entropy()),
            flow,
            identity,
            registration: None,
            publication: None,
            published_body: None,
            subscriptions: HashMap::new(),
            subscribed: false,
            direct_mode: false,
            outgoing: Vec::new(),
            broken: false,
            shared,
        }
    }

    /// Returns true when stopped by shutdown, false when the connection broke.
    async fn run(
        &mut self,
        stream: Box<dyn Io>,
        commands: &mut mpsc::UnboundedReceiver<SipCommand>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        let (mut reader, mut writer) = tokio::io::split(stream);
        let mut decoder = StreamDecoder::new(Limits::default());
        let mut chunk = vec![0u8; READ_CHUNK];
        let now = Instant::now();
        match self.ua.register(
            RegisterParams {
                identity: self.identity.clone(),
                flow: self.flow.clone(),
                instance: format!("urn:uuid:{}", self.shared.settings.instance_uuid),
                expires: REGISTER_EXPIRES,
            },
            now,
        ) {
            Ok((id, out)) => {
                self.registration = Some(id);
                self.carry_out(out, now);
            }
            Err(e) => self.fail(&format!("cannot register: {e}")),
        }
        // Publishing does not wait for XCAP (blink-compat §3.1).
        self.republish(now);
        if self.shared.state().xcap.ready {
            self.start_subscriptions(now);
        }
        loop {
            if !self.flush(&mut writer).await || self.broken {
                return false;
            }
            let deadline = self.ua.next_deadline();
            let sleep = tokio::time::sleep_until(
                deadline
                    .map(tokio::time::Instant::from_std)
                    .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600)),
            );
            tokio::select! {
                read = reader.read(&mut chunk) => {
                    let n = match read {
                        Ok(0) | Err(_) => return false,
                        Ok(n) => n,
                    };
                    decoder.push(&chunk[..n]);
                    loop {
                        match decoder.next_item() {
                            Ok(Some(StreamItem::Message(bytes))) => {
                                match Message::parse(bytes, &Limits::default()) {
                                    Ok(message) => {
                                        let now = Instant::now();
                                        let out = self.ua.on_message(message, (), true, now);
                                        self.carry_out(out, now);
                                    }
                                    Err(e) => tracing::debug!(error = ?e, "unparsable SIP message"),
                                }
                            }
                            Ok(Some(StreamItem::Ping)) => self.outgoing.push(Bytes::from_static(b"\r\n")),
                            Ok(Some(StreamItem::Pong)) => {}
                            Ok(None) => break,
                            Err(e) => {
                                tracing::warn!(error = ?e, "SIP framing error; reconnecting");
                                return false;
                            }
                        }
                    }
                }
                _ = sleep, if deadline.is_some() => {
                    let now = Instant::now();
                    let out = self.ua.on_timer(now);
                    self.carry_out(out, now);
                }
                command = commands.recv() => {
                    let now = Instant::now();
                    match command {
                        None => return true,
                        Some(SipCommand::Republish) => self.republish(now),
                        Some(SipCommand::XcapReady) => self.start_subscriptions(now),
                        Some(SipCommand::ContactsChanged) => self.sync_direct(now),
                    }
                }
                _ = stopped(shutdown) => {
                    self.goodbye(&mut reader, &mut writer, &mut decoder).await;
                    return true;
                }
            }
        }
    }

    async fn flush(&mut self, writer: &mut (impl AsyncWrite + Unpin)) -> bool {
        for data in std::mem::take(&mut self.outgoing) {
            if writer.write_all(&data).await.is_err() {
                return false;
            }
        }
        writer.flush().await.is_ok()
    }

    /// Unsubscribe, unpublish and unregister, waiting briefly for the last two answers (the
    /// final NOTIFYs of the subscriptions are not waited for).
    async fn goodbye(
        &mut self,
        reader: &mut (impl AsyncRead + Unpin),
        writer: &mut (impl AsyncWrite + Unpin),
        decoder: &mut StreamDecoder,
    ) {
        let now = Instant::now();
        let mut sends = Vec::new();
        for id in std::mem::take(&mut self.subscriptions).into_keys() {
            sends.extend(self.ua.unsubscribe(id, now).unwrap_or_default());
        }
        let mut awaited = 0;
        if let Some(id) = self.publication.take() {
            if let Ok(out) = self.ua.unpublish(id, now) {
                sends.extend(out);
                awaited += 1;
            }
        }
        if let Some(id) = self.registration.take() {
            if let Ok(out) = self.ua.unregister(id, now) {
                sends.extend(out);
                awaited += 1;
            }
        }
        awaited -= goodbye_outputs(sends, &mut self.outgoing).min(awaited);
        let until = tokio::time::Instant::now() + GOODBYE_WAIT;
        let mut chunk = vec![0u8; READ_CHUNK];
        while self.flush(writer).await && awaited > 0 {
            let read = tokio::time::timeout_at(until, reader.read(&mut chunk)).await;
            let Ok(Ok(n)) = read else { return };
            if n == 0 {
                return;
            }
            decoder.push(&chunk[..n]);
            while let Ok(Some(item)) = decoder.next_item() {
                let StreamItem::Message(bytes) = item else {
                    continue;
                };
                if let Ok(message) = Message::parse(bytes, &Limits::default()) {
                    let out = self.ua.on_message(message, (), true, Instant::now());
                    awaited -= goodbye_outputs(out, &mut self.outgoing).min(awaited);
                }
            }
        }
    }

    fn fail(&mut self, message: &str) {
        tracing::warn!(error = %message);
        self.shared.state().sip.error = Some(message.to_owned());
        self.shared
            .events
            .push("registration", json!({ "error": message }));
    }

    fn carry_out(&mut self, outputs: Vec<Output<()>>, now: Instant) {
        let mut queue: std::collections::VecDeque<Output<()>> = outputs.into();
        while let Some(output) = queue.pop_front() {
            match output {
                Output::Send { data, .. } => self.outgoing.push(data),
                Output::Event(event) => queue.extend(self.on_event(event, now)),
            }
        }
    }

    fn republish(&mut self, now: Instant) {
        let body = {
            let state = self.shared.state();
            let publisher = self.shared.publisher(&state);
            publisher.document(&state.presence.effective(), state.sip.gruu.as_deref())
        };
        if self.published_body.as_deref() == Some(body.as_str()) {
            return;
        }
        let result = match self.publication {
            Some(id) => self
                .ua
                .modify_publication(id, Bytes::from(body.clone()), now),
            None => self
                .ua
                .publish(
                    PublishParams {
                        identity: self.identity.clone(),
                        flow: self.flow.clone(),
                        resource: None,
                        event: "presence".into(),
                        content_type: "application/pidf+xml".into(),
                        body: Bytes::from(body.clone()),
                        expires: PUBLISH_EXPIRES,
                    },
                    now,
                )
                .map(|(id, out)| {
                    self.publication = Some(id);
                    out
                }),
        };
        match result {
            Ok(out) => {
                self.published_body = Some(body);
                self.carry_out(out, now);
            }
            Err(e) => self.fail(&format!("cannot publish: {e}")),
        }
    }

    fn subscribe(&mut self, purpose: Purpose, now: Instant) {
        let settings = &self.shared.settings;
        let aor = settings.aor();
        let presence = vec![
            "multipart/related".to_owned(),
            "application/rlmi+xml".to_owned(),
            "application/pidf+xml".to_owned(),
        ];
        let (target, event, accept, body) = match &purpose {
            Purpose::BuddyList => (
                format!("sip:{}+presence@{}", settings.user, settings.domain),
                "presence",
                presence,
                None,
            ),
            Purpose::OwnPresence => (aor, "presence", presence, None),
            Purpose::WatcherInfo => (
                aor,
                "presence.winfo",
                vec!["application/watcherinfo+xml".to_owned()],
                None,
            ),
            Purpose::XcapDiff => (
                aor,
                "xcap-diff",
                vec!["application/xcap-diff+xml".to_owned()],
                Some((
                    "application/resource-lists+xml".to_owned(),
                    Bytes::from(self.xcap_diff_body()),
                )),
            ),
            Purpose::Contact(uri) => (
                uri.clone(),
                "presence",
                vec!["application/pidf+xml".to_owned()],
                None,
            ),
        };
        match &purpose {
            Purpose::BuddyList => self.shared.state().buddies.restart(),
            Purpose::WatcherInfo => self.shared.state().watchers.restart(),
            _ => {}
        }
        let params = SubscribeParams {
            identity: self.identity.clone(),
            flow: self.flow.clone(),
            target,
            event: event.into(),
            event_id: None,
            accept,
            list: purpose == Purpose::BuddyList,
            expires: SUBSCRIBE_EXPIRES,
            body,
        };
        match self.ua.subscribe(params, now) {
            Ok((id, out)) => {
                self.subscriptions.insert(id, purpose);
                self.carry_out(out, now);
            }
            Err(e) => self.fail(&format!("cannot subscribe ({event}): {e}")),
        }
    }

    /// Subscriptions start once XCAP is discovered (blink-compat §4.1).
    fn start_subscriptions(&mut self, now: Instant) {
        if self.subscribed {
            return;
        }
        self.subscribed = true;
        for purpose in [
            Purpose::BuddyList,
            Purpose::OwnPresence,
            Purpose::WatcherInfo,
            Purpose::XcapDiff,
        ] {
            self.subscribe(purpose, now);
        }
    }

    /// One entry per supported document, relative and percent-encoded (blink-compat §4.5).
    fn xcap_diff_body(&self) -> String {
        let state = self.shared.state();
        // The account is known before XCAP is ready, so before this subscription starts.
        let entries: String = self
            .shared
            .xcap_account
            .get()
            .into_iter()
            .flat_map(|account| {
                state.xcap.supported.iter().map(|&kind| {
                    let path = account.document_path(kind);
                    format!(
                        "<entry uri=\"{}\"/>",
                        encode_any_uri(path.trim_start_matches('/'))
                    )
                })
            })
            .collect();
        format!(
            "<?xml version='1.0' encoding='UTF-8'?>\n<resource-lists \
             xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><list>{entries}</list></resource-lists>"
        )
    }

    /// Without an RLS: one presence subscription per URI of each contact to subscribe to.
    fn sync_direct(&mut self, now: Instant) {
        if !self.direct_mode {
            return;
        }
        let wanted: Vec<String> = {
            let state = self.shared.state();
            let mut wanted: Vec<String> = state
                .snapshot
                .address_book
                .contacts
                .iter()
                .filter(|c| c.presence.subscribe)
                .flat_map(|c| c.uris.iter())
                .filter(|u| u.uri.contains('@'))
                .map(|u| {
                    if u.uri.starts_with("sip:") || u.uri.starts_with("sips:") {
                        u.uri.clone()
                    } else {
                        format!("sip:{}", u.uri)
                    }
                })
                .collect();
            wanted.sort();
            wanted.dedup();
            wanted.truncate(MAX_DIRECT);
            wanted
        };
        let current: Vec<(SubscriptionId, String)> = self
            .subscriptions
            .iter()
            .filter_map(|(id, p)| match p {
                Purpose::Contact(uri) => Some((*id, uri.clone())),
                _ => None,
            })
            .collect();
        for (id, uri) in &current {
            if !wanted.contains(uri) {
                self.subscriptions.remove(id);
                self.shared.state().buddies.forget_direct(uri);
                if let Ok(out) = self.ua.unsubscribe(*id, now) {
                    self.carry_out(out, now);
                }
            }
        }
        for uri in wanted {
            if !current.iter().any(|(_, u)| u == &uri) {
                self.subscribe(Purpose::Contact(uri), now);
            }
        }
    }

    /// Only list and watcher-info NOTIFYs carry versions, so only they ask for renewal.
    fn renew(&mut self, id: SubscriptionId, now: Instant) {
        let purpose = self.subscriptions.get(&id).cloned();
        if !matches!(purpose, Some(Purpose::BuddyList | Purpose::WatcherInfo)) {
            return;
        }
        self.subscriptions.remove(&id);
        if let Ok(out) = self.ua.unsubscribe(id, now) {
            self.carry_out(out, now);
        }
        if let Some(purpose) = purpose {
            self.subscribe(purpose, now);
        }
    }

    fn on_event(&mut self, event: Event, now: Instant) -> Vec<Output<()>> {
        tracing::debug!(?event, "SIP event");
        match event {
            Event::Registered { gruu, expires, .. } => {
                let changed = {
                    let mut state = self.shared.state();
                    let was = state.sip.registered;
                    state.sip.registered = true;
                    state.sip.error = None;
                    let changed = state.sip.gruu != gruu;
                    state.sip.gruu = gruu.clone();
                    if !was {
                        self.shared.events.push(
                            "registration",
                            json!({ "registered": true, "gruu": gruu, "expires": expires }),
                        );
                    }
                    changed
                };
                if changed {
                    self.republish(now);
                }
            }
            Event::RegistrationFailed { status, .. } => {
                self.shared.state().sip.registered = false;
                self.fail(&failure("registration", status));
            }
            Event::PublicationFailed { status, .. } => {
                self.fail(&failure("publication", status));
            }
            Event::Unpublished { .. } | Event::Published { .. } | Event::Unregistered { .. } => {}
            Event::Unsubscribed { id } => {
                self.subscriptions.remove(&id);
            }
            Event::SubscriptionFailed { id, status, .. } => {
                self.on_subscription_failed(id, status, now)
            }
            Event::SubscriptionState {
                id,
                status,
                resubscribe_at,
            } => {
                if let SubscriptionStatus::Terminated { .. } = status {
                    match self.subscriptions.get(&id) {
                        Some(Purpose::BuddyList) => self.shared.state().buddies.restart(),
                        Some(Purpose::WatcherInfo) => self.shared.state().watchers.restart(),
                        _ => {}
                    }
                    if resubscribe_at.is_none() {
                        self.subscriptions.remove(&id);
                    }
                }
            }
            Event::Notify {
                id,
                status,
                content_type,
                body,
            } => self.on_notify(id, status, content_type.as_deref(), &body, now),
        }
        Vec::new()
    }

    fn on_subscription_failed(&mut self, id: SubscriptionId, status: u16, now: Instant) {
        let purpose = self.subscriptions.get(&id).cloned();
        tracing::info!(?purpose, status, "subscription failed");
        if matches!(status, 401 | 403 | 407) {
            self.fail(&failure("subscription", status));
        }
        if purpose == Some(Purpose::BuddyList)
            && (400..500).contains(&status)
            && !matches!(status, 401 | 407 | 408 | 423)
        {
            self.fall_back_to_direct(id, now);
        }
    }

    /// No resource list service here: one subscription per contact instead.
    fn fall_back_to_direct(&mut self, list: SubscriptionId, now: Instant) {
        tracing::info!("no resource list service; subscribing to each contact");
        self.subscriptions.remove(&list);
        if let Ok(out) = self.ua.unsubscribe(list, now) {
            self.carry_out(out, now);
        }
        self.direct_mode = true;
        self.shared.state().sip.list_mode = "direct";
        self.sync_direct(now);
    }

    fn on_notify(
        &mut self,
        id: SubscriptionId,
        status: SubscriptionStatus,
        content_type: Option<&str>,
        body: &[u8],
        now: Instant,
    ) {
        let Some(purpose) = self.subscriptions.get(&id).cloned() else {
            return;
        };
        let applied = match &purpose {
            Purpose::BuddyList => {
                let (applied, never_listed) = {
                    let mut state = self.shared.state();
                    let applied = state.buddies.apply_list_notify(content_type, body);
                    (applied, !state.buddies.has_list_state())
                };
                if matches!(applied, Applied::Ignored(_)) && never_listed {
                    // A server without a resource list service treats the list URI as an
                    // ordinary presentity: its NOTIFYs are never multipart/related.
                    self.fall_back_to_direct(id, now);
                    return;
                }
                self.report_contacts(&applied);
                applied
            }
            Purpose::Contact(uri) => {
                let state = match status {
                    SubscriptionStatus::Active { .. } => InstanceState::Active,
                    SubscriptionStatus::Pending { .. } => InstanceState::Pending,
                    SubscriptionStatus::Terminated { .. } => InstanceState::Terminated,
                };
                let applied =
                    self.shared
                        .state()
                        .buddies
                        .apply_direct_notify(uri, state, content_type, body);
                self.report_contacts(&applied);
                applied
            }
            Purpose::WatcherInfo => {
                let applied = self.shared.state().watchers.apply_notify(body);
                if let Applied::Changed(uris) = &applied {
                    self.shared
                        .events
                        .push("watchers", json!({ "changed": uris }));
                }
                applied
            }
            Purpose::OwnPresence => {
                self.on_own_presence(body, now);
                return;
            }
            Purpose::XcapDiff => {
                let changed = self.shared.xcap_account.get().and_then(|account| {
                    let state = self.shared.state();
                    changed_documents(body, account, |kind| state.xcap.etags.get(&kind).cloned())
                });
                if changed.is_none_or(|kinds| !kinds.is_empty()) {
                    let _ = self.shared.xcap.send(XcapCommand::Refresh);
                }
                return;
            }
        };
        if let Applied::Resubscribe(reason) = applied {
            tracing::info!(?purpose, %reason, "renewing the subscription");
            self.renew(id, now);
        }
    }

    /// Self-presence sync (blink-compat §4.3).
    fn on_own_presence(&mut self, body: &[u8], now: Instant) {
        let Some(document) = std::str::from_utf8(body)
            .ok()
            .and_then(|text| PresenceDocument::parse(text).ok())
        else {
            return;
        };
        if document.entity != self.shared.settings.aor() {
            return;
        }
        let changed = {
            let mut state = self.shared.state();
            let own_ids = self.shared.publisher(&state).own_tuple_ids();
            let own_changed_at = state.presence.effective().changed_at;
            match remote_choice(&document, &own_ids, own_changed_at) {
                Some(choice) => {
                    let changed = state.presence.adopt_remote(choice, SystemTime::now());
                    if changed {
                        self.shared.save_presence(&state.presence.saved());
                    }
                    changed
                }
                None => false,
            }
        };
        if changed {
            self.shared
                .events
                .push("status", json!({ "reason": "changed on another device" }));
            self.republish(now);
        }
    }

    /// One event per contact whose resources changed.
    fn report_contacts(&self, applied: &Applied) {
        let Applied::Changed(uris) = applied else {
            return;
        };
        let state = self.shared.state();
        for contact in &state.snapshot.address_book.contacts {
            if !contact
                .uris
                .iter()
                .any(|u| uris.iter().any(|r| strip_scheme(r) == strip_scheme(&u.uri)))
            {
                continue;
            }
            let availability = contact_availability(contact, &state.buddies);
            self.shared.events.push(
                "contact",
                json!({
                    "id": contact.id,
                    "name": contact.name,
                    "state": availability.state,
                    "note": availability.note,
                    "pending": availability.pending,
                }),
            );
        }
    }
}
