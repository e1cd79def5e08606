//! Behaviour of the proxy core over a real transaction layer, one RFC 3261 §16 rule per test.

use std::time::{Duration, Instant};

use bytes::Bytes;
use sip_message::{HeaderName, Limits, Message, Method};
use sip_transaction::{Action, ClientEvent, ServerEvent, ServerTxId, TransactionLayer, TxId};

use crate::{Config, Destination, Flow, Inbound, Listener, Proxy, Routing, Transport};

const OUR_HOST: &str = "192.0.2.100";
const SECRET: &[u8] = b"flow token secret";

fn flow(transport: Transport, addr: &str) -> Flow {
    Flow {
        transport,
        addr: addr.parse().unwrap(),
    }
}

fn caller() -> Flow {
    flow(Transport::Udp, "198.51.100.1:5060")
}

fn contact(n: u8) -> Destination {
    Destination {
        request_uri: format!("sip:bob@10.0.0.{n}:5060"),
        flow: flow(Transport::Udp, &format!("203.0.113.{n}:40000")),
        route: Vec::new(),
        alternates: Vec::new(),
        server_name: None,
    }
}

fn config() -> Config {
    let listener = |transport, port| Listener {
        transport,
        host: OUR_HOST.to_owned(),
        port,
    };
    Config {
        listeners: vec![
            listener(Transport::Udp, 5060),
            listener(Transport::Tcp, 5060),
            listener(Transport::Tls, 5061),
        ],
        domains: vec!["example.com".to_owned()],
        ..Config::default()
    }
}

fn parse(text: &str) -> Message {
    Message::parse(Bytes::from(text.replace('\n', "\r\n")), &Limits::default()).expect("valid")
}

/// A request from the caller, with a branch of its own.
fn request(method: &str, uri: &str, extra: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!(
        "{method} {uri} SIP/2.0\n\
         Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bK-up{n}\n\
         Max-Forwards: 10\n\
         From: <sip:alice@example.com>;tag=a1\n\
         To: <sip:bob@example.com>\n\
         Call-ID: call-1\n\
         CSeq: 1 {method}\n\
         {extra}Content-Length: 0\n\n"
    )
}

fn identity(flow: &Flow, _server_name: Option<&str>) -> Flow {
    *flow
}

struct Harness {
    layer: TransactionLayer<Flow>,
    proxy: Proxy<Flow>,
    now: Instant,
}

impl Harness {
    fn new() -> Harness {
        Harness::with(config())
    }

    fn with(config: Config) -> Harness {
        Harness {
            layer: TransactionLayer::new(sip_transaction::Config::default()),
            proxy: Proxy::new(config, SECRET, identity),
            now: Instant::now(),
        }
    }

    /// A request from the caller: its server transaction and the proxy's view of it.
    fn receive(&mut self, text: &str) -> (ServerTxId, Inbound) {
        match self
            .layer
            .on_request(parse(text), caller(), false, self.now)
        {
            ServerEvent::NewRequest { id, request } => {
                let inbound = self.proxy.inspect(request, caller()).expect("accepted");
                (id, inbound)
            }
            other => panic!("not a new request: {other:?}"),
        }
    }

    fn fork(&mut self, text: &str, destinations: Vec<Destination>) -> (ServerTxId, Sent) {
        let (id, inbound) = self.receive(text);
        let actions = self
            .proxy
            .forward(&mut self.layer, id, inbound, destinations, self.now);
        (id, sent(actions))
    }

    /// Downstream answers `forwarded` with `status`.
    fn answer(&mut self, forwarded: &Message, status: u16, tag: &str) -> Sent {
        let response =
            sip_message::response_to(forwarded, status, "Reason", Some(tag)).finish(None, b"");
        self.deliver(parse_bytes(response))
    }

    fn deliver(&mut self, response: Message) -> Sent {
        match self.layer.on_response(response, self.now) {
            ClientEvent::Response {
                id,
                response,
                actions,
            } => {
                assert!(self.proxy.owns(id));
                let mut out = self
                    .proxy
                    .on_response(&mut self.layer, id, response, self.now);
                out.extend(self.proxy.absorb(&mut self.layer, actions, self.now));
                sent(out)
            }
            ClientEvent::Retransmission(actions) => {
                sent(self.proxy.absorb(&mut self.layer, actions, self.now))
            }
            ClientEvent::Stray(_) => Sent::default(),
        }
    }

    fn advance(&mut self, by: Duration) -> Sent {
        self.now += by;
        let mut actions = self.layer.on_timer(self.now);
        actions = self.proxy.absorb(&mut self.layer, actions, self.now);
        actions.extend(self.proxy.on_timer(&mut self.layer, self.now));
        sent(actions)
    }
}

fn parse_bytes(bytes: Bytes) -> Message {
    Message::parse(bytes, &Limits::default()).expect("the proxy sends valid messages")
}

/// What went out, split by direction.
#[derive(Default, Debug)]
struct Sent {
    upstream: Vec<Message>,
    downstream: Vec<(Flow, Message)>,
}

impl Sent {
    fn statuses(&self) -> Vec<u16> {
        self.upstream.iter().filter_map(Message::status).collect()
    }

    fn requests(&self, method: Method) -> Vec<&(Flow, Message)> {
        self.downstream
            .iter()
            .filter(|(_, m)| m.method() == Some(&method))
            .collect()
    }

    /// The forwarded copies of `method`, without their destinations.
    fn forwarded(&self, method: Method) -> Vec<Message> {
        self.requests(method)
            .into_iter()
            .map(|(_, m)| m.clone())
            .collect()
    }
}

fn sent(actions: impl IntoIterator<Item = Action<Flow>>) -> Sent {
    let mut out = Sent::default();
    for action in actions {
        if let Action::Send { dest, data } = action {
            let message = parse_bytes(data);
            if dest == caller() {
                out.upstream.push(message);
            } else {
                out.downstream.push((dest, message));
            }
        }
    }
    out
}

fn rejection(text: &str) -> crate::Rejection {
    Proxy::new(config(), SECRET, identity)
        .inspect(parse(text), caller())
        .expect_err("refused")
}

// ---------------------------------------------------------------- §16.3 validation

#[test]
fn exhausted_max_forwards_is_483() {
    let zero =
        request("INVITE", "sip:bob@example.com", "").replace("Max-Forwards: 10", "Max-Forwards: 0");
    assert_eq!(rejection(&zero).status, 483);
}

#[test]
fn a_request_without_max_forwards_leaves_with_69() {
    let mut h = Harness::new();
    let text = request("MESSAGE", "sip:bob@example.com", "").replace("Max-Forwards: 10\n", "");
    let (_, out) = h.fork(&text, vec![contact(1)]);
    let message = &out.requests(Method::Message)[0].1;
    assert_eq!(
        message.u32_header(&HeaderName::MaxForwards).unwrap(),
        Some(69)
    );
}

#[test]
fn proxy_require_lists_the_unsupported_tags_in_a_420() {
    let refused = rejection(&request(
        "MESSAGE",
        "sip:bob@example.com",
        "Proxy-Require: foo, bar\n",
    ));
    assert_eq!(refused.status, 420);
    assert_eq!(refused.unsupported.as_deref(), Some("foo, bar"));
    let tel = rejection(&request("MESSAGE", "tel:+31201234567", ""));
    assert_eq!(tel.status, 416);
}

#[test]
fn a_request_returning_with_our_branch_is_a_loop_but_a_changed_one_spirals() {
    let mut h = Harness::new();
    let original = request("INVITE", "sip:bob@example.com", "");
    let (_, out) = h.fork(&original, vec![contact(1)]);
    let forwarded = &out.requests(Method::Invite)[0].1;
    let our_via = forwarded
        .header_values(&HeaderName::Via)
        .next()
        .unwrap()
        .to_owned();
    let back = |uri: &str| {
        original
            .replacen(
                "Via: ",
                &format!("Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-down\nVia: {our_via}\nVia: "),
                1,
            )
            .replacen("sip:bob@example.com", uri, 1)
    };
    let looped = h
        .proxy
        .inspect(parse(&back("sip:bob@example.com")), caller());
    assert_eq!(looped.unwrap_err().status, 482);
    let spiral = h
        .proxy
        .inspect(parse(&back("sip:carol@example.com")), caller());
    assert!(spiral.is_ok(), "a new Request-URI is a spiral, not a loop");
}

// ---------------------------------------------------------------- §16.4, §16.12 routes

#[test]
fn our_route_is_removed_and_the_next_one_followed() {
    let h = Harness::new();
    let text = request(
        "MESSAGE",
        "sip:bob@example.net",
        "Route: <sip:192.0.2.100;lr>, <sip:p2.example.net;lr>\n",
    );
    let inbound = h.proxy.inspect(parse(&text), caller()).unwrap();
    assert!(inbound.followed_our_route());
    assert_eq!(
        inbound.routing(),
        Routing::NextHop {
            uri: "sip:p2.example.net;lr",
            flow: None
        }
    );
    let plain = h
        .proxy
        .inspect(
            parse(&request("MESSAGE", "sip:bob@example.com", "")),
            caller(),
        )
        .unwrap();
    assert_eq!(plain.routing(), Routing::RequestUri);
    // In a dialog with this element itself (our presence agent's Contact): handled here.
    let to_us = request(
        "SUBSCRIBE",
        "sip:192.0.2.100:5060;transport=tcp",
        "Route: <sip:example.com;lr>\n",
    )
    .replace(
        "To: <sip:bob@example.com>",
        "To: <sip:bob@example.com>;tag=b1",
    );
    let inbound = h.proxy.inspect(parse(&to_us), caller()).unwrap();
    assert!(inbound.followed_our_route());
    assert_eq!(inbound.routing(), Routing::RequestUri);
}

#[test]
fn a_strict_routed_request_gets_its_request_uri_back_from_the_last_route() {
    let h = Harness::new();
    let text = request(
        "BYE",
        "sip:192.0.2.100:5060;lr",
        "Route: <sip:bob@10.0.0.1:5060>\n",
    )
    .replace(
        "To: <sip:bob@example.com>",
        "To: <sip:bob@example.com>;tag=b1",
    );
    let inbound = h.proxy.inspect(parse(&text), caller()).unwrap();
    assert_eq!(inbound.request_uri(), "sip:bob@10.0.0.1:5060");
    assert_eq!(
        inbound.routing(),
        Routing::NextHop {
            uri: "sip:bob@10.0.0.1:5060",
            flow: None
        }
    );
}

#[test]
fn in_dialog_requests_cross_to_the_other_flow_recorded_in_our_route() {
    let mut h = Harness::new();
    let (_, out) = h.fork(
        &request("INVITE", "sip:bob@example.com", ""),
        vec![contact(1)],
    );
    let invite = &out.requests(Method::Invite)[0].1;
    let record_route: Vec<String> = invite
        .header_values(&HeaderName::RecordRoute)
        .map(str::to_owned)
        .collect();
    assert_eq!(record_route.len(), 1, "same transport both ways: one route");
    assert!(record_route[0].ends_with(";lr>"), "{record_route:?}");
    let bye = request(
        "BYE",
        "sip:bob@10.0.0.1:5060",
        &format!("Route: {}\n", record_route[0]),
    )
    .replace(
        "To: <sip:bob@example.com>",
        "To: <sip:bob@example.com>;tag=b1",
    );
    let from_caller = h.proxy.inspect(parse(&bye), caller()).unwrap();
    assert_eq!(
        from_caller.routing(),
        Routing::NextHop {
            uri: "sip:bob@10.0.0.1:5060",
            flow: Some(contact(1).flow)
        }
    );
    let from_callee = h.proxy.inspect(parse(&bye), contact(1).flow).unwrap();
    assert!(
        matches!(from_callee.routing(), Routing::NextHop { flow: Some(f), .. } if f == caller())
    );
}

/// The Record-Route user part a fork through `proxy` records for the caller and `contact(1)`.
fn recorded_token(proxy: Proxy<Flow>) -> String {
    let mut h = Harness {
        proxy,
        ..Harness::new()
    };
    let (_, out) = h.fork(
        &request("INVITE", "sip:bob@example.com", ""),
        vec![contact(1)],
    );
    let invite = &out.requests(Method::Invite)[0].1;
    let record_route = invite.header(&HeaderName::RecordRoute).expect("recorded");
    let uri = sip_message::NameAddr::parse(record_route)
        .expect("a name-addr")
        .uri;
    uri.user.expect("a token").to_owned()
}

#[test]
fn routes_to_us_with_forged_flow_tokens_are_forbidden() {
    let bye = |token: &str, call_id: &str| {
        request(
            "BYE",
            "sip:bob@10.0.0.1:5060",
            &format!("Route: <sip:{token}@192.0.2.100:5060;lr>\n"),
        )
        .replace("Call-ID: call-1", &format!("Call-ID: {call_id}"))
        .replace(
            "To: <sip:bob@example.com>",
            "To: <sip:bob@example.com>;tag=b1",
        )
    };
    let genuine = recorded_token(Proxy::new(config(), SECRET, identity));
    let (flows, tag) = genuine.split_at(genuine.len() - 16);
    let victim = flow(Transport::Tcp, "203.0.113.99:5060");
    let other_flow = format!("{}-{}-{tag}", caller().token(), victim.token());
    let other_tag = format!("{flows}{}", "A".repeat(16));
    let other_key = recorded_token(Proxy::new(config(), b"another secret", identity));
    for (token, call_id) in [
        (other_flow.as_str(), "call-1"),
        (other_tag.as_str(), "call-1"),
        (other_key.as_str(), "call-1"),
        (genuine.as_str(), "call-2"),
        (flows.trim_end_matches('-'), "call-1"),
    ] {
        let refused = rejection(&bye(token, call_id));
        assert_eq!(refused.status, 403, "{token} in {call_id}");
    }
    // The same request with the token as recorded crosses to the recorded flow.
    let h = Harness::new();
    let inbound = h.proxy.inspect(parse(&bye(&genuine, "call-1")), caller());
    assert!(matches!(
        inbound.expect("accepted").routing(),
        Routing::NextHop { flow: Some(f), .. } if f == contact(1).flow
    ));
}

/// §16.4: after a strict router, our Record-Route (with its token) is the Request-URI.
#[test]
fn a_token_in_a_strict_routed_request_uri_is_checked_too() {
    let strict = |token: &str| {
        request(
            "BYE",
            &format!("sip:{token}@192.0.2.100:5060;lr"),
            "Route: <sip:bob@10.0.0.1:5060>\n",
        )
        .replace(
            "To: <sip:bob@example.com>",
            "To: <sip:bob@example.com>;tag=b1",
        )
    };
    let genuine = recorded_token(Proxy::new(config(), SECRET, identity));
    let h = Harness::new();
    let inbound = h.proxy.inspect(parse(&strict(&genuine)), caller()).unwrap();
    assert_eq!(
        inbound.routing(),
        Routing::NextHop {
            uri: "sip:bob@10.0.0.1:5060",
            flow: Some(contact(1).flow)
        }
    );
    let forged = format!("{}-{}", &genuine[..genuine.len() - 17], "A".repeat(16));
    assert_eq!(rejection(&strict(&forged)).status, 403);
}

// ---------------------------------------------------------------- §16.6 forwarding

#[test]
fn the_forwarded_copy_is_rewritten_per_target() {
    let mut h = Harness::new();
    let text = request(
        "INVITE",
        "sip:bob@example.com",
        "Proxy-Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"n\", uri=\"sip:bob@example.com\", response=\"r\"\n\
         Proxy-Authorization: Digest username=\"alice\", realm=\"other.net\", nonce=\"n\", uri=\"sip:bob@example.com\", response=\"r\"\n",
    );
    let mut target = contact(1);
    target.route = vec!["<sip:edge.example.com;lr>".to_owned()];
    let (_, out) = h.fork(&text, vec![target.clone()]);
    assert_eq!(out.statuses(), [100], "100 Trying at once for an INVITE");
    let (dest, invite) = out.requests(Method::Invite)[0];
    assert_eq!(*dest, target.flow);
    assert_eq!(invite.request_uri(), Some("sip:bob@10.0.0.1:5060"));
    assert_eq!(
        invite.u32_header(&HeaderName::MaxForwards).unwrap(),
        Some(9)
    );
    let vias = invite.vias().unwrap();
    assert_eq!(vias.len(), 2);
    assert_eq!(vias[0].sent_by(), "192.0.2.100:5060");
    assert!(vias[0].branch().unwrap().starts_with("z9hG4bK"));
    assert_eq!(
        invite.header_values(&HeaderName::Route).collect::<Vec<_>>(),
        ["<sip:edge.example.com;lr>"]
    );
    let credentials: Vec<&str> = invite
        .header_values(&HeaderName::ProxyAuthorization)
        .collect();
    assert_eq!(
        credentials.len(),
        1,
        "ours consumed, the other realm's kept"
    );
    assert!(credentials[0].contains("other.net"));
}

#[test]
fn a_stateless_ack_keeps_its_request_uri_and_gets_our_via() {
    let mut h = Harness::new();
    let ack = request("ACK", "sip:bob@10.0.0.1:5060", "").replace(
        "To: <sip:bob@example.com>",
        "To: <sip:bob@example.com>;tag=b1",
    );
    let inbound = h.proxy.inspect(parse(&ack), caller()).unwrap();
    let destination = Destination {
        request_uri: inbound.request_uri().to_owned(),
        ..contact(1)
    };
    let Action::Send { dest, data } = h.proxy.forward_stateless(&inbound, &destination) else {
        panic!("a send");
    };
    let forwarded = parse_bytes(data);
    assert_eq!(dest, contact(1).flow);
    assert_eq!(forwarded.request_uri(), Some("sip:bob@10.0.0.1:5060"));
    assert_eq!(forwarded.vias().unwrap().len(), 2);
    assert_eq!(h.proxy.context_count(), 0, "no state for an ACK");
}

// ---------------------------------------------------------------- §16.7 responses

#[test]
fn provisionals_go_upstream_without_our_via_except_100() {
    let mut h = Harness::new();
    let text = request("INVITE", "sip:bob@example.com", "");
    let (_, out) = h.fork(&text, vec![contact(1)]);
    let invite = out.requests(Method::Invite)[0].1.clone();
    assert!(h.answer(&invite, 100, "t").upstream.is_empty());
    let ringing = h.answer(&invite, 180, "t");
    assert_eq!(ringing.statuses(), [180]);
    let vias = ringing.upstream[0].vias().unwrap();
    assert_eq!(vias.len(), 1, "our Via removed");
    assert_eq!(vias[0].branch(), parse(&text).top_via().unwrap().branch());
}

#[test]
fn the_first_2xx_wins_and_cancels_the_ringing_branch_and_later_2xx_still_go_up() {
    let mut h = Harness::new();
    let (_, out) = h.fork(
        &request("INVITE", "sip:bob@example.com", ""),
        vec![contact(1), contact(2), contact(3)],
    );
    let invites = out.forwarded(Method::Invite);
    assert_eq!(invites.len(), 3);
    h.answer(&invites[1], 180, "two");
    let answered = h.answer(&invites[0], 200, "one");
    assert_eq!(answered.statuses(), [200]);
    let cancels = answered.requests(Method::Cancel);
    assert_eq!(
        cancels.len(),
        1,
        "only the branch with a provisional is cancelled now"
    );
    let (dest, cancel) = cancels[0];
    assert_eq!(*dest, contact(2).flow);
    assert_eq!(
        cancel.top_via().unwrap().branch(),
        invites[1].top_via().unwrap().branch()
    );
    assert_eq!(cancel.request_uri(), invites[1].request_uri());
    // §9.1: the silent branch is cancelled once it has a provisional response.
    let late = h.answer(&invites[2], 180, "three");
    assert!(late.upstream.is_empty(), "no provisional after the final");
    assert_eq!(late.requests(Method::Cancel).len(), 1);
    // RFC 6026: a 2xx from another fork is forwarded too.
    assert_eq!(h.answer(&invites[1], 200, "two").statuses(), [200]);
}

#[test]
fn a_6xx_cancels_the_others_and_is_the_answer() {
    let mut h = Harness::new();
    let (_, out) = h.fork(
        &request("INVITE", "sip:bob@example.com", ""),
        vec![contact(1), contact(2)],
    );
    let invites = out.forwarded(Method::Invite);
    h.answer(&invites[1], 180, "two");
    let declined = h.answer(&invites[0], 603, "one");
    assert!(
        declined.upstream.is_empty(),
        "held until every branch has ended"
    );
    assert_eq!(declined.requests(Method::Cancel).len(), 1);
    let last = h.answer(&invites[1], 487, "two");
    assert_eq!(last.statuses(), [603]);
    assert!(
        h.proxy.timers.is_empty(),
        "no timer left behind by ended branches"
    );
}

#[test]
fn the_lowest_class_wins_and_503_becomes_500() {
    let mut h = Harness::new();
    let (_, out) = h.fork(
        &request("MESSAGE", "sip:bob@example.com", ""),
        vec![contact(1), contact(2)],
    );
    let messages = out.forwarded(Method::Message);
    assert!(h.answer(&messages[0], 503, "one").upstream.is_empty());
    assert_eq!(h.answer(&messages[1], 404, "two").statuses(), [404]);

    let (_, out) = h.fork(
        &request("MESSAGE", "sip:bob@example.com", "").replace("call-1", "call-2"),
        vec![contact(1)],
    );
    let message = out.requests(Method::Message)[0].1.clone();
    assert_eq!(h.answer(&message, 503, "one").statuses(), [500]);
}

#[test]
fn challenges_of_every_branch_are_merged_into_the_401_or_407() {
    let mut h = Harness::new();
    let (_, out) = h.fork(
        &request("MESSAGE", "sip:bob@example.com", ""),
        vec![contact(1), contact(2)],
    );
    let messages = out.forwarded(Method::Message);
    let challenge = |forwarded: &Message, header: &str, realm: &str, status: u16| {
        let mut writer = sip_message::response_to(forwarded, status, "Challenge", Some(realm));
        writer.header(header, &format!("Digest realm=\"{realm}\", nonce=\"x\""));
        parse_bytes(writer.finish(None, b""))
    };
    assert!(h
        .deliver(challenge(
            &messages[0],
            "WWW-Authenticate",
            "a.example",
            401
        ))
        .upstream
        .is_empty());
    let merged = h.deliver(challenge(
        &messages[1],
        "Proxy-Authenticate",
        "b.example",
        407,
    ));
    assert_eq!(merged.statuses(), [401]);
    let response = &merged.upstream[0];
    assert!(response
        .header(&HeaderName::WwwAuthenticate)
        .unwrap()
        .contains("a.example"));
    assert!(response
        .header(&HeaderName::ProxyAuthenticate)
        .unwrap()
        .contains("b.example"));
}

#[test]
fn a_non_invite_fork_forwards_one_final_and_cancels_nothing() {
    let mut h = Harness::new();
    let (_, out) = h.fork(
        &request("MESSAGE", "sip:bob@example.com", ""),
        vec![contact(1), contact(2)],
    );
    let messages = out.forwarded(Method::Message);
    assert!(out.statuses().is_empty(), "no 100 Trying for a non-INVITE");
    let first = h.answer(&messages[0], 200, "one");
    assert_eq!(first.statuses(), [200]);
    assert!(first.requests(Method::Cancel).is_empty());
    assert!(h.answer(&messages[1], 200, "two").upstream.is_empty());
}

#[test]
fn an_unanswered_non_invite_times_out_as_408() {
    let mut h = Harness::new();
    h.fork(
        &request("MESSAGE", "sip:bob@example.com", ""),
        vec![contact(1)],
    );
    let out = h.advance(Duration::from_secs(33));
    assert_eq!(out.statuses(), [408]);
}

#[test]
fn a_branch_that_could_not_be_sent_counts_as_503_and_the_caller_gets_500() {
    let mut h = Harness::new();
    let (_, out) = h.fork(
        &request("MESSAGE", "sip:bob@example.com", ""),
        vec![contact(1)],
    );
    let message = &out.forwarded(Method::Message)[0];
    let branch = message.top_via_branch().expect("a branch");
    let id = h
        .layer
        .client_for(branch, Method::Message)
        .expect("the branch's client transaction");
    let actions = h.layer.on_transport_error(TxId::Client(id));
    let out = sent(h.proxy.absorb(&mut h.layer, actions, h.now));
    assert_eq!(out.statuses(), [500]);
}

#[test]
fn a_branch_that_could_not_start_ends_at_once_and_the_others_decide() {
    let mut h = Harness::new();
    h.layer = TransactionLayer::new(sip_transaction::Config {
        max_client_transactions: 1,
        ..sip_transaction::Config::default()
    });
    let (_, out) = h.fork(
        &request("MESSAGE", "sip:bob@example.com", ""),
        vec![contact(1), contact(2)],
    );
    let messages = out.forwarded(Method::Message);
    assert_eq!(
        messages.len(),
        1,
        "no room for the second client transaction"
    );
    assert_eq!(
        h.answer(&messages[0], 486, "busy").statuses(),
        [480],
        "the final response goes up once the sent branch ends; of the two 4xx the unsent \
         branch's 480 ranks first"
    );
}

// ---------------------------------------------------------------- RFC 3263 §4.3 failover

/// A next hop located at three addresses (RFC 3263): the first, then the second, then the
/// third.
fn located_hop() -> Destination {
    Destination {
        alternates: vec![
            flow(Transport::Tcp, "198.51.100.2:5060"),
            flow(Transport::Udp, "198.51.100.3:5060"),
        ],
        ..contact(1)
    }
}

impl Harness {
    fn transport_error(&mut self, forwarded: &Message) -> Sent {
        let branch = forwarded.top_via_branch().expect("a branch");
        let method = forwarded.method().expect("a request").clone();
        let id = self
            .layer
            .client_for(branch, method)
            .expect("the branch's client transaction");
        let actions = self.layer.on_transport_error(TxId::Client(id));
        sent(self.proxy.absorb(&mut self.layer, actions, self.now))
    }
}

#[test]
fn a_failed_next_hop_gives_way_to_the_next_target_with_a_new_branch() {
    let mut h = Harness::new();
    let (_, out) = h.fork(
        &request("MESSAGE", "sip:bob@example.com", ""),
        vec![located_hop()],
    );
    let first = out.forwarded(Method::Message).remove(0);

    let out = h.transport_error(&first);
    assert!(out.upstream.is_empty(), "the search goes on: {out:?}");
    let [(to, second)] = &out.requests(Method::Message)[..] else {
        panic!("one copy to the next target: {out:?}");
    };
    assert_eq!(*to, flow(Transport::Tcp, "198.51.100.2:5060"));
    assert!(second
        .header(&HeaderName::Via)
        .is_some_and(|via| via.starts_with("SIP/2.0/TCP ")));
    assert_ne!(second.top_via_branch(), first.top_via_branch());
    assert_eq!(second.request_uri(), first.request_uri());
    assert_eq!(second.body(), first.body());

    let out = h.answer(second, 503, "busy");
    assert!(out.upstream.is_empty(), "a 503 moves on too: {out:?}");
    let third = out.forwarded(Method::Message).remove(0);
    assert_eq!(
        out.requests(Method::Message)[0].0,
        flow(Transport::Udp, "198.51.100.3:5060")
    );
    assert_eq!(h.answer(&third, 200, "bob").statuses(), [200]);
}

#[test]
fn when_every_target_fails_the_caller_gets_the_best_of_their_outcomes() {
    let mut h = Harness::new();
    let (_, out) = h.fork(
        &request("MESSAGE", "sip:bob@example.com", ""),
        vec![located_hop()],
    );
    let first = out.forwarded(Method::Message).remove(0);
    let second = h
        .transport_error(&first)
        .forwarded(Method::Message)
        .remove(0);
    let third = h
        .answer(&second, 503, "busy")
        .forwarded(Method::Message)
        .remove(0);
    assert_eq!(h.answer(&third, 404, "none").statuses(), [404]);
}

#[test]
fn a_next_hop_that_has_answered_provisionally_is_not_sent_the_request_again() {
    let mut h = Harness::new();
    let (_, out) = h.fork(
        &request("INVITE", "sip:bob@example.com", ""),
        vec![located_hop()],
    );
    let invite = out.forwarded(Method::Invite).remove(0);
    assert_eq!(h.answer(&invite, 180, "ringing").statuses(), [180]);
    let out = h.transport_error(&invite);
    assert!(out.forwarded(Method::Invite).is_empty(), "{out:?}");
    assert_eq!(out.statuses(), [500], "its 503 becomes 500 upstream");
}

#[test]
fn a_next_hop_silent_until_the_transaction_times_out_gives_way_too() {
    let mut h = Harness::new();
    let (_, out) = h.fork(
        &request("MESSAGE", "sip:bob@example.com", ""),
        vec![located_hop()],
    );
    let first = out.forwarded(Method::Message).remove(0);
    let out = h.advance(Duration::from_secs(33));
    assert!(out.statuses().is_empty(), "{out:?}");
    let copies = out.forwarded(Method::Message);
    let second = copies
        .iter()
        .find(|m| m.top_via_branch() != first.top_via_branch())
        .expect("a copy to the next target");
    assert_eq!(h.answer(second, 202, "bob").statuses(), [202]);
}

// ---------------------------------------------------------------- §16.10 CANCEL, §16.8 Timer C

#[test]
fn a_cancel_reaches_every_pending_branch_and_the_invite_ends_with_487() {
    let mut h = Harness::new();
    let (id, out) = h.fork(
        &request("INVITE", "sip:bob@example.com", ""),
        vec![contact(1), contact(2)],
    );
    let invites = out.forwarded(Method::Invite);
    h.answer(&invites[0], 180, "one");
    h.answer(&invites[1], 183, "two");
    assert!(h.proxy.is_proxying(id));
    let cancelled = sent(h.proxy.cancel(&mut h.layer, id, h.now));
    assert_eq!(cancelled.requests(Method::Cancel).len(), 2);
    assert!(h.answer(&invites[0], 487, "one").upstream.is_empty());
    assert_eq!(h.answer(&invites[1], 487, "two").statuses(), [487]);
}

#[test]
fn timer_c_is_reset_by_provisionals_then_cancels_the_branch() {
    let mut h = Harness::new();
    let (_, out) = h.fork(
        &request("INVITE", "sip:bob@example.com", ""),
        vec![contact(1)],
    );
    let invite = out.requests(Method::Invite)[0].1.clone();
    // Before Timer B (32 s) would end the unanswered INVITE.
    h.advance(Duration::from_secs(10));
    h.answer(&invite, 180, "one");
    let start = h.now;
    assert_eq!(
        h.proxy.next_deadline(),
        Some(start + Duration::from_secs(180))
    );
    assert!(h
        .advance(Duration::from_secs(179))
        .requests(Method::Cancel)
        .is_empty());
    let fired = h.advance(Duration::from_secs(1));
    assert_eq!(fired.requests(Method::Cancel).len(), 1, "Timer C cancels");
    // The branch never answers the CANCEL: given up after the grace period, as 408.
    let given_up = h.advance(Duration::from_secs(32));
    assert_eq!(given_up.statuses(), [408]);
    assert_eq!(h.proxy.context_count(), 0);
}

#[test]
fn full_contexts_and_empty_target_sets_are_answered_at_once() {
    let mut h = Harness::with(Config {
        max_contexts: 1,
        ..config()
    });
    let (_, out) = h.fork(&request("MESSAGE", "sip:bob@example.com", ""), vec![]);
    assert_eq!(out.statuses(), [480]);
    h.fork(
        &request("MESSAGE", "sip:bob@example.com", "").replace("call-1", "call-2"),
        vec![contact(1)],
    );
    let (_, out) = h.fork(
        &request("MESSAGE", "sip:bob@example.com", "").replace("call-1", "call-3"),
        vec![contact(1)],
    );
    assert_eq!(out.statuses(), [503]);
}
