//! The registrar over real sockets: digest authentication, GRUU (RFC 5627), keepalives
//! (RFC 5626 §3.5.1), persistence across a restart, and the error answers of RFC 3261 §10.3.

mod ua;
mod xcap_common;

use std::time::Duration;

use sip_message::{ContactValue, HeaderName, Message};
use xcap_common::common::{self, Server, SipConn, DOMAIN};

/// A UA that registers over one connection, answering digest challenges like a client.
struct Ua {
    conn: SipConn,
    user: &'static str,
    password: &'static str,
    transport: &'static str,
    call_id: String,
    cseq: u32,
    instance: String,
}

impl Ua {
    fn new(
        conn: SipConn,
        user: &'static str,
        password: &'static str,
        transport: &'static str,
    ) -> Ua {
        let n = common::unique();
        Ua {
            conn,
            user,
            password,
            transport,
            call_id: format!("reg-{n}"),
            cseq: 0,
            instance: format!("urn:uuid:3f2504e0-4f89-41d3-9a0c-{n:012}"),
        }
    }

    fn register_request(
        &mut self,
        expires: Option<u32>,
        contact: Option<&str>,
        authorization: Option<String>,
    ) -> String {
        self.cseq += 1;
        let mut request = format!(
            "REGISTER sip:{DOMAIN} SIP/2.0\r\n\
             Via: SIP/2.0/{t} 192.0.2.10:5062;branch=z9hG4bK-{n};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{u}@{DOMAIN}>;tag=ua{n}\r\n\
             To: <sip:{u}@{DOMAIN}>\r\n\
             Call-ID: {c}\r\n\
             CSeq: {s} REGISTER\r\n\
             Supported: gruu, path\r\n",
            t = self.transport,
            n = common::unique(),
            u = self.user,
            c = self.call_id,
            s = self.cseq
        );
        if let Some(contact) = contact {
            request.push_str(&format!("Contact: {contact}\r\n"));
        }
        if let Some(expires) = expires {
            request.push_str(&format!("Expires: {expires}\r\n"));
        }
        if let Some(authorization) = authorization {
            request.push_str(&format!("Authorization: {authorization}\r\n"));
        }
        request.push_str("Content-Length: 0\r\n\r\n");
        request
    }

    fn default_contact(&self) -> String {
        format!(
            "<sip:{}@192.0.2.10:5062;transport={}>;+sip.instance=\"<{}>\"",
            self.user,
            self.transport.to_lowercase(),
            self.instance
        )
    }

    /// REGISTER, answer the 401 with MD5 digest credentials, return the final response.
    fn register(&mut self, expires: Option<u32>, contact: Option<&str>) -> Message {
        self.register_with_password(expires, contact, self.password)
    }

    fn register_with_password(
        &mut self,
        expires: Option<u32>,
        contact: Option<&str>,
        password: &str,
    ) -> Message {
        let first = self.register_request(expires, contact, None);
        self.conn.send(&first);
        let challenge = self.conn.recv();
        assert_eq!(
            challenge.status(),
            Some(401),
            "unauthenticated REGISTER must be challenged"
        );
        let authorization = digest_md5(&challenge, self.user, password);
        let second = self.register_request(expires, contact, Some(authorization));
        self.conn.send(&second);
        self.conn.recv()
    }
}

/// The MD5 (qop=auth) credentials answering a 401 to REGISTER sip:DOMAIN (RFC 2617 §3.2.2).
fn digest_md5(challenge: &Message, user: &str, password: &str) -> String {
    ua::digest(
        challenge,
        user,
        password,
        "REGISTER",
        &format!("sip:{DOMAIN}"),
    )
}

/// One Contact of a registrar's 200: the binding's URI, lifetime and GRUUs.
#[derive(Debug)]
struct Listed {
    uri: String,
    expires: Option<String>,
    pub_gruu: Option<String>,
    temp_gruu: Option<String>,
}

fn contacts(response: &Message) -> Vec<Listed> {
    let param = |addr: &sip_message::NameAddr, name| {
        addr.params
            .get(name)
            .flatten()
            .map(|v| sip_message::unquote(v).into_owned())
    };
    response
        .contacts()
        .expect("valid Contact headers")
        .into_iter()
        .filter_map(|c| match c {
            ContactValue::Addr(addr) => Some(Listed {
                uri: addr.uri.text.to_string(),
                expires: param(&addr, "expires"),
                pub_gruu: param(&addr, "pub-gruu"),
                temp_gruu: param(&addr, "temp-gruu"),
            }),
            ContactValue::Star => None,
        })
        .collect()
}

#[test]
fn gruus_are_returned_and_the_public_one_is_stable() {
    let server = Server::start(&[("alice", "wonderland")]);
    let mut ua = Ua::new(
        SipConn::tcp(server.tcp_addr()).unwrap(),
        "alice",
        "wonderland",
        "TCP",
    );
    let contact = ua.default_contact();
    let first = ua.register(Some(600), Some(&contact));
    assert_eq!(first.status(), Some(200), "{:?}", first.reason());
    let bindings = contacts(&first);
    assert_eq!(bindings.len(), 1);
    assert_eq!(bindings[0].expires.as_deref(), Some("600"));
    let pub_gruu = bindings[0]
        .pub_gruu
        .clone()
        .expect("pub-gruu on the contact with +sip.instance");
    assert_eq!(pub_gruu, format!("sip:alice@{DOMAIN};gr={}", ua.instance));
    let temp_gruu = bindings[0].temp_gruu.clone().expect("temp-gruu");
    assert!(
        temp_gruu.starts_with("sip:") && temp_gruu.ends_with(";gr"),
        "{temp_gruu}"
    );

    let refreshed = ua.register(Some(600), Some(&contact));
    assert_eq!(refreshed.status(), Some(200));
    let bindings = contacts(&refreshed);
    assert_eq!(
        bindings.len(),
        1,
        "a refresh with the same instance replaces, not adds"
    );
    assert_eq!(
        bindings[0].pub_gruu.as_deref(),
        Some(pub_gruu.as_str()),
        "pub-gruu is stable across refreshes"
    );
    assert_ne!(
        bindings[0].temp_gruu.as_deref(),
        Some(temp_gruu.as_str()),
        "each refresh mints a new temp-gruu"
    );
}

#[test]
fn registration_over_tls_gets_gruus() {
    let server = Server::start(&[("carol", "secret")]);
    let mut ua = Ua::new(
        SipConn::tls(server.tls_addr(), &server.data_dir),
        "carol",
        "secret",
        "TLS",
    );
    let contact = ua.default_contact();
    let response = ua.register(Some(300), Some(&contact));
    assert_eq!(response.status(), Some(200));
    let bindings = contacts(&response);
    assert_eq!(bindings[0].expires.as_deref(), Some("300"));
    assert!(bindings[0].pub_gruu.is_some() && bindings[0].temp_gruu.is_some());
}

#[test]
fn double_crlf_keepalive_is_answered_with_one_crlf() {
    let server = Server::start(&[]);
    for mut conn in [
        SipConn::tcp(server.tcp_addr()).unwrap(),
        SipConn::tls(server.tls_addr(), &server.data_dir),
    ] {
        conn.send_bytes(b"\r\n\r\n");
        assert_eq!(conn.read_raw(Duration::from_secs(5)), b"\r\n");
        // The connection still carries SIP afterwards.
        conn.send(&common::options_request(server.tcp_addr(), "TCP"));
        assert_eq!(conn.recv().status(), Some(200));
    }
}

#[test]
fn bindings_survive_a_restart() {
    let server = Server::start(&[("dave", "pw")]);
    let mut ua = Ua::new(
        SipConn::tcp(server.tcp_addr()).unwrap(),
        "dave",
        "pw",
        "TCP",
    );
    let contact = ua.default_contact();
    let registered = ua.register(Some(3600), Some(&contact));
    assert_eq!(registered.status(), Some(200));
    let pub_gruu = contacts(&registered)[0].pub_gruu.clone();
    let (data_dir, temp) = server.kill();

    let server = Server::launch(data_dir, temp, &[]);
    let mut ua = Ua::new(
        SipConn::tcp(server.tcp_addr()).unwrap(),
        "dave",
        "pw",
        "TCP",
    );
    let query = ua.register(None, None);
    assert_eq!(query.status(), Some(200));
    let bindings = contacts(&query);
    assert_eq!(
        bindings.len(),
        1,
        "the binding is still there after a kill and restart"
    );
    assert!(
        bindings[0].uri.starts_with("sip:dave@192.0.2.10:5062"),
        "{:?}",
        bindings[0]
    );
    let expires: u32 = bindings[0].expires.as_deref().unwrap().parse().unwrap();
    assert!(
        (3500..=3600).contains(&expires),
        "remaining lifetime {expires}"
    );
    assert_eq!(
        contacts(&ua.register(Some(3600), Some(&contact)))[0].pub_gruu,
        pub_gruu,
        "pub-gruu stable across restarts"
    );
}

#[test]
fn registrar_errors_are_precise() {
    let server = Server::start(&[("erin", "pw")]);
    let mut ua = Ua::new(
        SipConn::tcp(server.tcp_addr()).unwrap(),
        "erin",
        "pw",
        "TCP",
    );
    let contact = ua.default_contact();

    let too_brief = ua.register(Some(10), Some(&contact));
    assert_eq!(too_brief.status(), Some(423));
    assert_eq!(
        too_brief.u32_header(&HeaderName::MinExpires).unwrap(),
        Some(60)
    );

    let wrong = ua.register_with_password(Some(600), Some(&contact), "not-the-password");
    assert_eq!(
        wrong.status(),
        Some(401),
        "wrong credentials are challenged again"
    );

    let star_with_contact = ua.register(Some(0), Some(&format!("*, {contact}")));
    assert_eq!(star_with_contact.status(), Some(400));

    assert_eq!(ua.register(Some(600), Some(&contact)).status(), Some(200));
    let removed = ua.register(Some(0), Some("*"));
    assert_eq!(removed.status(), Some(200));
    assert!(
        contacts(&removed).is_empty(),
        "`*` with Expires 0 removes every binding"
    );
}

#[test]
fn a_user_cannot_register_someone_else() {
    let server = Server::start(&[("frank", "pw"), ("grace", "pw2")]);
    // frank's credentials, grace's address of record.
    let mut ua = Ua::new(
        SipConn::tcp(server.tcp_addr()).unwrap(),
        "grace",
        "pw",
        "TCP",
    );
    ua.cseq = 0;
    let first = ua.register_request(Some(600), Some("<sip:grace@192.0.2.1>"), None);
    ua.conn.send(&first);
    let challenge = ua.conn.recv();
    let authorization = digest_md5(&challenge, "frank", "pw");
    let second = ua.register_request(
        Some(600),
        Some("<sip:grace@192.0.2.1>"),
        Some(authorization),
    );
    ua.conn.send(&second);
    assert_eq!(ua.conn.recv().status(), Some(403));
}

/// Two authenticated REGISTERs for one AOR sent back to back: the second is computed from
/// the bindings the first stored, so the last 200 lists both contacts.
#[test]
fn pipelined_registers_for_one_aor_build_on_each_other() {
    let server = Server::start(&[("heidi", "pw")]);
    let mut ua = Ua::new(
        SipConn::tcp(server.tcp_addr()).unwrap(),
        "heidi",
        "pw",
        "TCP",
    );
    let mut authorizations = Vec::new();
    for _ in 0..2 {
        let probe = ua.register_request(Some(600), Some("<sip:heidi@192.0.2.1>"), None);
        ua.conn.send(&probe);
        let challenge = ua.conn.recv();
        authorizations.push(digest_md5(&challenge, "heidi", "pw"));
    }
    let mut burst = String::new();
    for (contact, authorization) in ["<sip:heidi@192.0.2.1>", "<sip:heidi@192.0.2.2>"]
        .iter()
        .zip(authorizations)
    {
        burst.push_str(&ua.register_request(Some(600), Some(contact), Some(authorization)));
    }
    ua.conn.send(&burst);
    let first = ua.conn.recv();
    let second = ua.conn.recv();
    assert_eq!((first.status(), second.status()), (Some(200), Some(200)));
    let mut listed: Vec<String> = contacts(&second).into_iter().map(|c| c.uri).collect();
    listed.sort();
    assert_eq!(listed, ["sip:heidi@192.0.2.1", "sip:heidi@192.0.2.2"]);
}
