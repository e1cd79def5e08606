//! The sans-IO user agent core (`sip-ua`) against the running server over TCP: register with
//! GRUU (RFC 5627), publish (RFC 3903), subscribe to the own presence (RFC 6665), receive the
//! NOTIFY carrying the published body, unsubscribe and get the terminated NOTIFY.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::SeedableRng;
use sip_message::{Limits, Message, StreamDecoder, StreamItem};
use sip_ua::{
    Config, Credentials, Event, Flow, Identity, Output, PublishParams, RegisterParams,
    SubscribeParams, SubscriptionStatus, UserAgent,
};

use common::{Server, DOMAIN};

const NOTE: &str = "written-by-sip-ua";

/// One TCP flow to the server, driving the user agent: outputs are written, messages read
/// and fed back, timers fired, until an event satisfies `done`.
struct Driver {
    ua: UserAgent<SocketAddr>,
    stream: TcpStream,
    decoder: StreamDecoder,
    server: SocketAddr,
    events: Vec<Event>,
}

impl Driver {
    fn connect(server: SocketAddr) -> Driver {
        let stream = TcpStream::connect_timeout(&server, Duration::from_secs(2)).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Driver {
            ua: UserAgent::new(Config::default(), rand::rngs::StdRng::seed_from_u64(1)),
            stream,
            decoder: StreamDecoder::new(Limits::default()),
            server,
            events: Vec::new(),
        }
    }

    fn flow(&self) -> Flow<SocketAddr> {
        let local = self.stream.local_addr().expect("local address");
        Flow {
            dest: self.server,
            reliable: true,
            via: format!("SIP/2.0/TCP {local};rport"),
            contact: format!("sip:ua-core@{local};transport=tcp"),
        }
    }

    fn carry_out(&mut self, outputs: Vec<Output<SocketAddr>>) {
        for output in outputs {
            match output {
                Output::Send { dest, data } => {
                    assert_eq!(dest, self.server, "one flow only");
                    self.stream.write_all(&data).expect("write");
                }
                Output::Event(event) => self.events.push(event),
            }
        }
    }

    /// Run until an event (new since the call) matches `done`; returns it.
    fn until(&mut self, what: &str, done: impl Fn(&Event) -> bool) -> Event {
        let give_up = Instant::now() + Duration::from_secs(10);
        let mut seen = self.events.len();
        loop {
            if let Some(event) = self.events[seen..].iter().find(|e| done(e)) {
                return event.clone();
            }
            seen = self.events.len();
            let now = Instant::now();
            assert!(
                now < give_up,
                "no {what} within 10 s; events: {:#?}",
                self.events
            );
            if self.ua.next_deadline().is_some_and(|at| at <= now) {
                let outputs = self.ua.on_timer(now);
                self.carry_out(outputs);
                continue;
            }
            let wait = self
                .ua
                .next_deadline()
                .map_or(Duration::from_millis(200), |at| {
                    at.saturating_duration_since(now)
                })
                .clamp(Duration::from_millis(1), Duration::from_millis(200));
            self.stream.set_read_timeout(Some(wait)).expect("timeout");
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!(
                    "the server closed the connection; events: {:#?}",
                    self.events
                ),
                Ok(n) => self.decoder.push(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("read: {e}"),
            }
            while let Some(item) = self.decoder.next_item().expect("framing") {
                if let StreamItem::Message(bytes) = item {
                    let message = Message::parse(bytes, &Limits::default()).expect("valid SIP");
                    let outputs = self
                        .ua
                        .on_message(message, self.server, true, Instant::now());
                    self.carry_out(outputs);
                }
            }
        }
    }
}

fn identity() -> Identity {
    Identity {
        aor: format!("sip:alice@{DOMAIN}"),
        display_name: Some("Alice".into()),
        credentials: Some(Credentials {
            username: "alice".into(),
            password: "secret".into(),
        }),
    }
}

#[test]
fn register_publish_self_subscribe_and_unsubscribe() {
    let server = Server::start(&[("alice", "secret")]);
    let mut driver = Driver::connect(server.tcp_addr());
    let aor = format!("sip:alice@{DOMAIN}");
    let instance = "urn:uuid:6c0e3a5e-2a4f-4f7e-9d51-0a1b2c3d4e5f";

    let (registration, outputs) = driver
        .ua
        .register(
            RegisterParams {
                identity: identity(),
                flow: driver.flow(),
                instance: instance.into(),
                expires: 600,
            },
            Instant::now(),
        )
        .expect("register");
    driver.carry_out(outputs);
    let Event::Registered {
        gruu,
        temp_gruu,
        expires,
        ..
    } = driver.until("registration", |e| matches!(e, Event::Registered { .. }))
    else {
        unreachable!("matched above")
    };
    assert!(expires > 0 && expires <= 600, "granted {expires}");
    let gruu = gruu.expect("a public GRUU for our instance");
    assert!(gruu.contains("gr="), "{gruu}");
    assert!(temp_gruu.is_some(), "a temporary GRUU too");

    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"{aor}\">\
         <tuple id=\"sip-ua-core\"><status><basic>open</basic></status>\
         <contact>{gruu}</contact><note>{NOTE}</note></tuple></presence>"
    );
    let (_, outputs) = driver
        .ua
        .publish(
            PublishParams {
                identity: identity(),
                flow: driver.flow(),
                resource: None,
                event: "presence".into(),
                content_type: "application/pidf+xml".into(),
                body: Bytes::from(body),
                expires: 600,
            },
            Instant::now(),
        )
        .expect("publish");
    driver.carry_out(outputs);
    let Event::Published { etag, .. } =
        driver.until("publication", |e| matches!(e, Event::Published { .. }))
    else {
        unreachable!("matched above")
    };
    assert!(etag.is_some(), "the 200 carries a SIP-ETag");

    let (subscription, outputs) = driver
        .ua
        .subscribe(
            SubscribeParams {
                identity: identity(),
                flow: driver.flow(),
                target: aor.clone(),
                event: "presence".into(),
                event_id: None,
                accept: vec!["application/pidf+xml".into()],
                list: false,
                expires: 600,
                body: None,
            },
            Instant::now(),
        )
        .expect("subscribe");
    driver.carry_out(outputs);
    let notify = driver.until(
        "NOTIFY with the published note",
        |e| matches!(e, Event::Notify { body, .. } if String::from_utf8_lossy(body).contains(NOTE)),
    );
    let Event::Notify {
        id,
        status,
        content_type,
        ..
    } = notify
    else {
        unreachable!("matched above")
    };
    assert_eq!(id, subscription);
    assert!(
        matches!(status, SubscriptionStatus::Active { .. }),
        "{status:?}"
    );
    assert!(content_type.is_some_and(|c| c.starts_with("application/pidf+xml")));

    let outputs = driver
        .ua
        .unsubscribe(subscription, Instant::now())
        .expect("unsubscribe");
    driver.carry_out(outputs);
    driver.until(
        "the end of the subscription",
        |e| matches!(e, Event::Unsubscribed { id } if *id == subscription),
    );
    assert!(
        driver.events.iter().any(|e| matches!(
            e,
            Event::Notify { id, status: SubscriptionStatus::Terminated { .. }, .. } if *id == subscription
        )),
        "the final NOTIFY says terminated: {:#?}",
        driver.events
    );

    let outputs = driver
        .ua
        .unregister(registration, Instant::now())
        .expect("unregister");
    driver.carry_out(outputs);
    driver.until(
        "unregistration",
        |e| matches!(e, Event::Unregistered { id } if *id == registration),
    );
    assert!(
        !driver.events.iter().any(|e| matches!(
            e,
            Event::RegistrationFailed { .. }
                | Event::PublicationFailed { .. }
                | Event::SubscriptionFailed { .. }
        )),
        "no failures: {:#?}",
        driver.events
    );
}
