//! State machine tests. Time is a base `Instant` plus offsets; nothing sleeps.
//!
//! The first group drives the cores with hand-made keys (no message parsing); the second
//! goes through the public API with parsed messages.

use std::time::{Duration, Instant};

use bytes::Bytes;
use sip_message::{Limits, Message, Method};

use crate::key::{ClientKey, RequestInfo, ServerKey};
use crate::layer::{RoutedRequest, RoutedResponse};
use crate::*;

type Layer = TransactionLayer<&'static str>;

const SRC: &str = "udp:192.0.2.1:5060";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn layer() -> Layer {
    TransactionLayer::new(Config::default())
}

fn info(method: Method, branch: &str) -> RequestInfo {
    let key_method = if method == Method::Ack {
        Method::Invite
    } else {
        method.clone()
    };
    RequestInfo {
        method,
        key: ServerKey::Rfc3261 {
            branch: branch.into(),
            sent_by: "client.example.com:5060".into(),
            method: key_method,
        },
        to_tag: None,
    }
}

fn new_server(
    l: &mut Layer,
    method: Method,
    branch: &str,
    reliable: bool,
    now: Instant,
) -> ServerTxId {
    match l.route_request(info(method, branch), SRC, reliable, now) {
        RoutedRequest::New(id) => id,
        _ => panic!("expected a new transaction"),
    }
}

fn resend(l: &mut Layer, method: Method, branch: &str, now: Instant) -> Vec<Action<&'static str>> {
    match l.route_request(info(method, branch), SRC, false, now) {
        RoutedRequest::Retransmission(actions) => actions,
        _ => panic!("expected a retransmission"),
    }
}

fn send(data: &Bytes) -> Action<&'static str> {
    Action::Send {
        dest: SRC,
        data: data.clone(),
    }
}

/// Run every timer up to and including `end`; each action with its offset from `start`.
fn run(l: &mut Layer, start: Instant, end: Instant) -> Vec<(Duration, Action<&'static str>)> {
    let mut out = Vec::new();
    while let Some(at) = l.next_deadline().filter(|at| *at <= end) {
        out.extend(l.on_timer(at).into_iter().map(|a| (at - start, a)));
    }
    out
}

fn send_times(actions: &[(Duration, Action<&'static str>)]) -> Vec<u64> {
    actions
        .iter()
        .filter(|(_, a)| matches!(a, Action::Send { .. }))
        .map(|(t, _)| t.as_millis() as u64)
        .collect()
}

fn client_key(method: Method, branch: &str) -> ClientKey {
    ClientKey {
        branch: branch.into(),
        method,
    }
}

fn new_client(
    l: &mut Layer,
    method: Method,
    branch: &str,
    reliable: bool,
    now: Instant,
) -> ClientTxId {
    let data = Bytes::from_static(b"REQUEST");
    let (id, action) = l
        .start_client(
            client_key(method, branch),
            data.clone(),
            None,
            SRC,
            reliable,
            now,
        )
        .unwrap();
    assert_eq!(action, send(&data));
    id
}

// ------------------------------------------------------------------ non-INVITE server

#[test]
fn non_invite_server_udp_absorbs_retransmissions_and_lingers_for_timer_j() {
    let t0 = Instant::now();
    let mut l = layer();
    let id = new_server(&mut l, Method::Publish, "z9hG4bK1", false, t0);
    // Trying: absorbed without a response.
    assert!(resend(&mut l, Method::Publish, "z9hG4bK1", t0 + ms(500)).is_empty());

    let trying = Bytes::from_static(b"SIP/2.0 100 Trying\r\n\r\n");
    assert_eq!(
        l.respond(id, trying.clone(), 100, t0 + ms(600)).unwrap(),
        vec![send(&trying)]
    );
    assert_eq!(
        resend(&mut l, Method::Publish, "z9hG4bK1", t0 + ms(700)),
        vec![send(&trying)]
    );

    let ok = Bytes::from_static(b"SIP/2.0 200 OK\r\n\r\n");
    assert_eq!(
        l.respond(id, ok.clone(), 200, t0 + ms(1000)).unwrap(),
        vec![send(&ok)]
    );
    assert_eq!(
        resend(&mut l, Method::Publish, "z9hG4bK1", t0 + ms(2000)),
        vec![send(&ok)]
    );
    assert_eq!(
        l.respond(id, ok.clone(), 200, t0 + ms(2000)),
        Err(RespondError::FinalAlreadySent)
    );
    assert_eq!(
        l.respond(id, trying, 100, t0 + ms(2000)),
        Err(RespondError::FinalAlreadySent)
    );

    // Timer J = 64*T1 from the final response.
    assert_eq!(l.next_deadline(), Some(t0 + ms(33_000)));
    assert!(l.on_timer(t0 + ms(32_999)).is_empty());
    assert_eq!(
        l.on_timer(t0 + ms(33_000)),
        vec![Action::Terminated(TxId::Server(id))]
    );
    assert_eq!(l.server_count(), 0);
    assert_eq!(l.next_deadline(), None);
    assert_eq!(
        l.respond(id, ok, 200, t0 + ms(34_000)),
        Err(RespondError::UnknownTransaction)
    );
    // A late retransmission is a new request again.
    new_server(&mut l, Method::Publish, "z9hG4bK1", false, t0 + ms(34_000));
}

#[test]
fn non_invite_server_tcp_terminates_on_final_response() {
    let t0 = Instant::now();
    let mut l = layer();
    let id = new_server(&mut l, Method::Subscribe, "z9hG4bK2", true, t0);
    let ok = Bytes::from_static(b"SIP/2.0 200 OK\r\n\r\n");
    assert_eq!(
        l.respond(id, ok.clone(), 200, t0).unwrap(),
        vec![send(&ok), Action::Terminated(TxId::Server(id))]
    );
    assert_eq!(l.server_count(), 0);
    assert_eq!(l.next_deadline(), None);
}

#[test]
fn respond_rejects_bad_status_and_unknown_ids() {
    let t0 = Instant::now();
    let mut l = layer();
    let id = new_server(&mut l, Method::Options, "z9hG4bK3", false, t0);
    let b = Bytes::from_static(b"x");
    assert_eq!(
        l.respond(id, b.clone(), 99, t0),
        Err(RespondError::InvalidStatus(99))
    );
    assert_eq!(
        l.respond(id, b.clone(), 700, t0),
        Err(RespondError::InvalidStatus(700))
    );
    assert_eq!(
        l.respond(
            ServerTxId(crate::table::Handle {
                serial: 999,
                slot: 999
            }),
            b,
            200,
            t0
        ),
        Err(RespondError::UnknownTransaction)
    );
}

// ------------------------------------------------------------------ INVITE server

#[test]
fn invite_server_501_retransmitted_by_timer_g_until_ack_then_timer_i() {
    let t0 = Instant::now();
    let mut l = layer();
    let id = new_server(&mut l, Method::Invite, "z9hG4bK4", false, t0);
    let resp = Bytes::from_static(b"SIP/2.0 501 Not Implemented\r\n\r\n");
    assert_eq!(
        l.respond(id, resp.clone(), 501, t0).unwrap(),
        vec![send(&resp)]
    );

    // Timer G: T1, 2*T1, 4*T1 ... capped at T2.
    let early = run(&mut l, t0, t0 + ms(4_000));
    assert_eq!(send_times(&early), vec![500, 1_500, 3_500]);
    assert!(early.iter().all(|(_, a)| *a == send(&resp)));
    // A retransmitted INVITE in Completed gets the final response again.
    assert_eq!(
        resend(&mut l, Method::Invite, "z9hG4bK4", t0 + ms(4_000)),
        vec![send(&resp)]
    );

    // The ACK (same branch) is absorbed: Completed → Confirmed, Timer I = T4.
    match l.route_request(info(Method::Ack, "z9hG4bK4"), SRC, false, t0 + ms(5_000)) {
        RoutedRequest::AckForFinal(got, actions) => {
            assert_eq!(got, id);
            assert!(actions.is_empty());
        }
        _ => panic!("ACK not absorbed"),
    }
    // ACK retransmissions in Confirmed are absorbed silently; INVITE ones too.
    assert!(matches!(
        l.route_request(info(Method::Ack, "z9hG4bK4"), SRC, false, t0 + ms(6_000)),
        RoutedRequest::Retransmission(a) if a.is_empty()
    ));
    assert!(resend(&mut l, Method::Invite, "z9hG4bK4", t0 + ms(6_000)).is_empty());

    // Timer G was stopped (its 7.5 s entry is stale) and Timer H too; only I fires.
    assert_eq!(l.next_deadline(), Some(t0 + ms(10_000)));
    let rest = run(&mut l, t0, t0 + ms(60_000));
    assert_eq!(
        rest,
        vec![(ms(10_000), Action::Terminated(TxId::Server(id)))]
    );
    assert_eq!(l.server_count(), 0);
}

#[test]
fn invite_server_timer_h_reports_missing_ack() {
    let t0 = Instant::now();
    let mut l = layer();
    let id = new_server(&mut l, Method::Invite, "z9hG4bK5", false, t0);
    let resp = Bytes::from_static(b"SIP/2.0 486 Busy Here\r\n\r\n");
    l.respond(id, resp.clone(), 486, t0 + ms(100)).unwrap();
    let all = run(&mut l, t0 + ms(100), t0 + ms(100_000));
    assert_eq!(
        send_times(&all),
        vec![500, 1_500, 3_500, 7_500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500]
    );
    let tail: Vec<_> = all
        .iter()
        .filter(|(_, a)| !matches!(a, Action::Send { .. }))
        .cloned()
        .collect();
    assert_eq!(
        tail,
        vec![
            (ms(32_000), Action::Timeout(TxId::Server(id))),
            (ms(32_000), Action::Terminated(TxId::Server(id))),
        ]
    );
    assert_eq!(l.server_count(), 0);
}

#[test]
fn invite_server_tcp_has_no_timer_g_and_zero_timer_i() {
    let t0 = Instant::now();
    let mut l = layer();
    let id = new_server(&mut l, Method::Invite, "z9hG4bK6", true, t0);
    let resp = Bytes::from_static(b"SIP/2.0 488 Not Acceptable Here\r\n\r\n");
    assert_eq!(
        l.respond(id, resp.clone(), 488, t0).unwrap(),
        vec![send(&resp)]
    );
    // Only Timer H is armed.
    assert_eq!(l.next_deadline(), Some(t0 + ms(32_000)));
    match l.route_request(info(Method::Ack, "z9hG4bK6"), SRC, true, t0 + ms(50)) {
        RoutedRequest::AckForFinal(got, actions) => {
            assert_eq!(got, id);
            assert_eq!(actions, vec![Action::Terminated(TxId::Server(id))]);
        }
        _ => panic!("ACK not absorbed"),
    }
    assert_eq!(l.next_deadline(), None);
}

#[test]
fn invite_server_resends_provisional_while_proceeding() {
    let t0 = Instant::now();
    let mut l = layer();
    let id = new_server(&mut l, Method::Invite, "z9hG4bK7", false, t0);
    // Before any response a retransmission is absorbed, and an ACK acknowledges nothing.
    assert!(resend(&mut l, Method::Invite, "z9hG4bK7", t0).is_empty());
    assert!(matches!(
        l.route_request(info(Method::Ack, "z9hG4bK7"), SRC, false, t0),
        RoutedRequest::StrayAck
    ));
    let ringing = Bytes::from_static(b"SIP/2.0 180 Ringing\r\n\r\n");
    l.respond(id, ringing.clone(), 180, t0).unwrap();
    assert_eq!(
        resend(&mut l, Method::Invite, "z9hG4bK7", t0 + ms(500)),
        vec![send(&ringing)]
    );
    // Provisional responses arm nothing.
    assert_eq!(l.next_deadline(), None);
}

#[test]
fn invite_server_2xx_enters_accepted_until_timer_l() {
    let t0 = Instant::now();
    let mut l = layer();
    let id = new_server(&mut l, Method::Invite, "z9hG4bK8", false, t0);
    let ok = Bytes::from_static(b"SIP/2.0 200 OK\r\n\r\n");
    assert_eq!(l.respond(id, ok.clone(), 200, t0).unwrap(), vec![send(&ok)]);
    // RFC 6026: INVITE retransmissions are absorbed (the TU retransmits the 2xx itself)...
    assert!(resend(&mut l, Method::Invite, "z9hG4bK8", t0 + ms(500)).is_empty());
    // ...further 2xx from the TU are sent, other finals refused...
    assert_eq!(
        l.respond(id, ok.clone(), 200, t0 + ms(500)).unwrap(),
        vec![send(&ok)]
    );
    assert_eq!(
        l.respond(id, ok, 486, t0 + ms(500)),
        Err(RespondError::FinalAlreadySent)
    );
    // ...and a matching ACK goes to the TU.
    assert!(matches!(
        l.route_request(info(Method::Ack, "z9hG4bK8"), SRC, false, t0 + ms(600)),
        RoutedRequest::Ack2xx(got) if got == id
    ));
    assert_eq!(
        run(&mut l, t0, t0 + ms(60_000)),
        vec![(ms(32_000), Action::Terminated(TxId::Server(id)))]
    );
}

#[test]
fn cancel_is_its_own_transaction_and_finds_its_invite() {
    let t0 = Instant::now();
    let mut l = layer();
    let invite = new_server(&mut l, Method::Invite, "z9hG4bK9", false, t0);
    let cancel = match l.route_request(info(Method::Cancel, "z9hG4bK9"), SRC, false, t0) {
        RoutedRequest::Cancel(id, CancelTarget::Pending(target)) => {
            assert_eq!(target, invite);
            assert_ne!(id, invite);
            id
        }
        _ => panic!("CANCEL not matched"),
    };
    let ok = Bytes::from_static(b"SIP/2.0 200 OK\r\n\r\n");
    l.respond(cancel, ok.clone(), 200, t0).unwrap();
    assert_eq!(
        resend(&mut l, Method::Cancel, "z9hG4bK9", t0 + ms(10)),
        vec![send(&ok)]
    );
    // The INVITE is untouched by the CANCEL's transaction.
    assert!(resend(&mut l, Method::Invite, "z9hG4bK9", t0 + ms(10)).is_empty());
    l.respond(
        invite,
        Bytes::from_static(b"SIP/2.0 487 Request Terminated\r\n\r\n"),
        487,
        t0,
    )
    .unwrap();

    let answered = new_server(&mut l, Method::Invite, "z9hG4bKa", false, t0);
    l.respond(answered, ok, 200, t0).unwrap();
    assert!(matches!(
        l.route_request(info(Method::Cancel, "z9hG4bKa"), SRC, false, t0),
        RoutedRequest::Cancel(_, CancelTarget::AlreadyAnswered(target)) if target == answered
    ));
    assert!(matches!(
        l.route_request(info(Method::Cancel, "z9hG4bKzz"), SRC, false, t0),
        RoutedRequest::Cancel(_, CancelTarget::NotFound)
    ));
}

#[test]
fn server_cap_refuses_new_requests_but_absorbs_retransmissions() {
    let t0 = Instant::now();
    let mut l: Layer = TransactionLayer::new(Config {
        max_server_transactions: 2,
        ..Config::default()
    });
    let first = new_server(&mut l, Method::Register, "z9hG4bKb1", true, t0);
    new_server(&mut l, Method::Register, "z9hG4bKb2", true, t0);
    assert!(matches!(
        l.route_request(info(Method::Register, "z9hG4bKb3"), SRC, true, t0),
        RoutedRequest::Overloaded
    ));
    assert!(resend(&mut l, Method::Register, "z9hG4bKb1", t0).is_empty());
    // ACKs create no state and are never refused.
    assert!(matches!(
        l.route_request(info(Method::Ack, "z9hG4bKb9"), SRC, true, t0),
        RoutedRequest::StrayAck
    ));
    assert_eq!(l.server_count(), 2);
    l.respond(
        first,
        Bytes::from_static(b"SIP/2.0 200 OK\r\n\r\n"),
        200,
        t0,
    )
    .unwrap();
    new_server(&mut l, Method::Register, "z9hG4bKb3", true, t0);
}

#[test]
fn legacy_keys_match_on_dialog_fields_and_ack_to_tag() {
    let t0 = Instant::now();
    let mut l = layer();
    let legacy = |method: Method, to_tag: Option<&str>, from_tag: &str| {
        let key_method = if method == Method::Ack {
            Method::Invite
        } else {
            method.clone()
        };
        RequestInfo {
            method,
            key: ServerKey::Rfc2543(Box::new(crate::key::LegacyKey {
                request_uri: "sip:bob@example.com".into(),
                to_tag: to_tag.map(Box::from),
                from_tag: Some(from_tag.into()),
                call_id: "c1".into(),
                cseq: 7,
                top_via: "SIP/2.0/UDP old.example.com".into(),
                method: key_method,
            })),
            to_tag: to_tag.map(Box::from),
        }
    };
    let id = match l.route_request(legacy(Method::Invite, None, "f1"), SRC, false, t0) {
        RoutedRequest::New(id) => id,
        _ => panic!(),
    };
    assert!(matches!(
        l.route_request(legacy(Method::Invite, None, "f1"), SRC, false, t0),
        RoutedRequest::Retransmission(_)
    ));
    assert!(matches!(
        l.route_request(legacy(Method::Invite, None, "f2"), SRC, false, t0),
        RoutedRequest::New(_)
    ));
    // Without a parseable To tag in the response (these bytes are not SIP), any To tag is
    // accepted; the tag check itself is covered by the message-level test below.
    l.respond(id, Bytes::from_static(b"x"), 404, t0).unwrap();
    assert!(matches!(
        l.route_request(legacy(Method::Ack, Some("t9"), "f1"), SRC, false, t0),
        RoutedRequest::AckForFinal(got, _) if got == id
    ));
}

// ------------------------------------------------------------------ client side

#[test]
fn non_invite_client_udp_timer_e_doubles_to_t2_and_timer_f_times_out() {
    let t0 = Instant::now();
    let mut l = layer();
    let id = new_client(&mut l, Method::Notify, "z9hG4bKc1", false, t0);
    let all = run(&mut l, t0, t0 + ms(100_000));
    // E: 500, 1000, 2000, 4000 (T2), 4000...
    assert_eq!(
        send_times(&all),
        vec![500, 1_500, 3_500, 7_500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500]
    );
    assert!(all.iter().any(|(_, a)| *a
        == Action::Send {
            dest: SRC,
            data: Bytes::from_static(b"REQUEST")
        }));
    let tail: Vec<_> = all
        .iter()
        .filter(|(_, a)| !matches!(a, Action::Send { .. }))
        .cloned()
        .collect();
    assert_eq!(
        tail,
        vec![
            (ms(32_000), Action::Timeout(TxId::Client(id))),
            (ms(32_000), Action::Terminated(TxId::Client(id))),
        ]
    );
    assert_eq!(l.client_count(), 0);
    assert_eq!(l.next_deadline(), None);
}

#[test]
fn non_invite_client_proceeding_retransmits_at_t2_then_completes_with_timer_k() {
    let t0 = Instant::now();
    let mut l = layer();
    let id = new_client(&mut l, Method::Notify, "z9hG4bKc2", false, t0);
    let key = client_key(Method::Notify, "z9hG4bKc2");
    assert_eq!(send_times(&run(&mut l, t0, t0 + ms(600))), vec![500]);
    assert!(
        matches!(l.route_response(&key, 100, None, t0 + ms(600)), RoutedResponse::Deliver(got, a) if got == id && a.is_empty())
    );
    // Already-scheduled E at 1.5 s, then every T2.
    assert_eq!(
        send_times(&run(&mut l, t0, t0 + ms(10_000))),
        vec![1_500, 5_500, 9_500]
    );
    // The final response ends the transaction at once; E and F are gone.
    assert!(
        matches!(l.route_response(&key, 200, None, t0 + ms(10_000)), RoutedResponse::Deliver(got, a) if got == id && a.to_vec() == vec![Action::Terminated(TxId::Client(id))])
    );
    assert_eq!(l.client_count(), 0);
    assert_eq!(l.next_deadline(), None);
    // Timer K = T4: its retransmissions are absorbed until then, and strays after.
    for at in [11_000, 14_999] {
        assert!(
            matches!(l.route_response(&key, 200, None, t0 + ms(at)), RoutedResponse::Absorbed(a) if a.is_empty())
        );
    }
    assert!(matches!(
        l.route_response(&key, 200, None, t0 + ms(15_000)),
        RoutedResponse::Stray
    ));
    // Another method's response with the same branch is not this transaction's.
    assert!(matches!(
        l.route_response(
            &client_key(Method::Publish, "z9hG4bKc2"),
            200,
            None,
            t0 + ms(12_000)
        ),
        RoutedResponse::Stray
    ));
}

#[test]
fn non_invite_client_tcp_never_retransmits_and_ends_on_final() {
    let t0 = Instant::now();
    let mut l = layer();
    let id = new_client(&mut l, Method::Notify, "z9hG4bKc3", true, t0);
    assert_eq!(l.next_deadline(), Some(t0 + ms(32_000)));
    assert!(matches!(
        l.route_response(&client_key(Method::Notify, "z9hG4bKc3"), 481, None, t0 + ms(100)),
        RoutedResponse::Deliver(got, a) if got == id && a.to_vec() == vec![Action::Terminated(TxId::Client(id))]
    ));
    assert_eq!(l.next_deadline(), None);

    let id = new_client(&mut l, Method::Notify, "z9hG4bKc4", true, t0);
    assert_eq!(
        run(&mut l, t0, t0 + ms(100_000)),
        vec![
            (ms(32_000), Action::Timeout(TxId::Client(id))),
            (ms(32_000), Action::Terminated(TxId::Client(id)))
        ]
    );
}

#[test]
fn invite_client_timer_a_doubles_without_cap_until_timer_b() {
    let t0 = Instant::now();
    let mut l = layer();
    let id = new_client(&mut l, Method::Invite, "z9hG4bKd1", false, t0);
    let all = run(&mut l, t0, t0 + ms(100_000));
    assert_eq!(
        send_times(&all),
        vec![500, 1_500, 3_500, 7_500, 15_500, 31_500]
    );
    assert_eq!(
        all[all.len() - 2..],
        [
            (ms(32_000), Action::Timeout(TxId::Client(id))),
            (ms(32_000), Action::Terminated(TxId::Client(id)))
        ]
    );
}

#[test]
fn invite_client_provisional_stops_a_and_b_and_final_uses_timer_d_or_m() {
    let t0 = Instant::now();
    let mut l = layer();
    let id = new_client(&mut l, Method::Invite, "z9hG4bKd2", false, t0);
    let key = client_key(Method::Invite, "z9hG4bKd2");
    assert!(matches!(
        l.route_response(&key, 180, None, t0 + ms(100)),
        RoutedResponse::Deliver(..)
    ));
    assert_eq!(l.next_deadline(), None);
    // 486: Completed, Timer D = 32 s; retransmitted 486 absorbed; a 2xx now is absorbed too.
    assert!(
        matches!(l.route_response(&key, 486, None, t0 + ms(1_000)), RoutedResponse::Deliver(got, _) if got == id)
    );
    assert!(matches!(
        l.route_response(&key, 486, None, t0 + ms(2_000)),
        RoutedResponse::Absorbed(_)
    ));
    assert!(matches!(
        l.route_response(&key, 200, None, t0 + ms(2_000)),
        RoutedResponse::Absorbed(_)
    ));
    assert_eq!(
        run(&mut l, t0, t0 + ms(100_000)),
        vec![(ms(33_000), Action::Terminated(TxId::Client(id)))]
    );

    // 2xx: Accepted (RFC 6026), every 2xx to the TU until Timer M.
    let id = new_client(&mut l, Method::Invite, "z9hG4bKd3", false, t0);
    let key = client_key(Method::Invite, "z9hG4bKd3");
    assert!(matches!(
        l.route_response(&key, 200, None, t0 + ms(1_000)),
        RoutedResponse::Deliver(..)
    ));
    assert!(
        matches!(l.route_response(&key, 200, None, t0 + ms(1_500)), RoutedResponse::Deliver(got, _) if got == id)
    );
    assert!(matches!(
        l.route_response(&key, 180, None, t0 + ms(1_500)),
        RoutedResponse::Absorbed(_)
    ));
    assert_eq!(
        run(&mut l, t0, t0 + ms(100_000)),
        vec![(ms(33_000), Action::Terminated(TxId::Client(id)))]
    );
}

#[test]
fn client_refuses_duplicates_and_overload_and_reports_transport_errors() {
    let t0 = Instant::now();
    let mut l: Layer = TransactionLayer::new(Config {
        max_client_transactions: 2,
        ..Config::default()
    });
    let id = new_client(&mut l, Method::Notify, "z9hG4bKe1", false, t0);
    let data = Bytes::from_static(b"REQUEST");
    assert_eq!(
        l.start_client(
            client_key(Method::Notify, "z9hG4bKe1"),
            data.clone(),
            None,
            SRC,
            false,
            t0
        )
        .unwrap_err(),
        SendError::DuplicateBranch
    );
    // Same branch, other method (CANCEL of an INVITE) is another transaction.
    new_client(&mut l, Method::Cancel, "z9hG4bKe1", false, t0);
    assert_eq!(
        l.start_client(
            client_key(Method::Notify, "z9hG4bKe3"),
            data,
            None,
            SRC,
            false,
            t0
        )
        .unwrap_err(),
        SendError::Overloaded
    );
    assert_eq!(
        l.on_transport_error(TxId::Client(id)),
        vec![
            Action::TransportError(TxId::Client(id)),
            Action::Terminated(TxId::Client(id))
        ]
    );
    assert!(l.on_transport_error(TxId::Client(id)).is_empty());
    assert_eq!(l.client_count(), 1);
}

#[test]
fn late_timer_call_sends_one_retransmission_not_a_burst() {
    let t0 = Instant::now();
    let mut l = layer();
    new_client(&mut l, Method::Notify, "z9hG4bKf1", false, t0);
    let actions = l.on_timer(t0 + ms(10_000));
    assert_eq!(
        actions,
        vec![Action::Send {
            dest: SRC,
            data: Bytes::from_static(b"REQUEST")
        }]
    );
    assert_eq!(l.next_deadline(), Some(t0 + ms(11_000)));
}

#[test]
fn cancelled_timers_are_compacted() {
    let t0 = Instant::now();
    let mut l = layer();
    for n in 0..3000 {
        let branch = format!("z9hG4bKg{n}");
        new_client(&mut l, Method::Notify, &branch, true, t0);
        l.route_response(&client_key(Method::Notify, &branch), 200, None, t0);
    }
    // One live transaction keeps one armed timer (Timer F).
    new_client(&mut l, Method::Notify, "z9hG4bKlive", true, t0);
    assert_eq!(l.queued_timers(), 3001);
    assert_eq!(l.next_deadline(), Some(t0 + ms(32_000)));
    assert_eq!(l.queued_timers(), 1);
}

/// Completed server transactions linger over UDP only while their table is under half its
/// limit, so a steady stream of answered requests never fills it and refuses new ones;
/// completed client transactions leave the table at once, and at most
/// `max_client_transactions` keys, the newest, are remembered for Timer K.
#[test]
fn lingering_stops_at_half_the_limit_instead_of_refusing_new_transactions() {
    let t0 = Instant::now();
    let mut l = TransactionLayer::new(Config {
        max_client_transactions: 6,
        max_server_transactions: 4,
        ..Config::default()
    });
    let mut terminated_at_once = Vec::new();
    for n in 0..100 {
        let branch = format!("z9hG4bKburst{n}");
        let id = new_client(&mut l, Method::Notify, &branch, false, t0);
        match l.route_response(&client_key(Method::Notify, &branch), 200, None, t0) {
            RoutedResponse::Deliver(got, actions) => {
                assert_eq!(got, id);
                if actions.to_vec() == vec![Action::Terminated(TxId::Client(id))] {
                    terminated_at_once.push(n);
                }
            }
            _ => panic!("the 200 is delivered"),
        }
    }
    assert_eq!(terminated_at_once, (0..100).collect::<Vec<_>>());
    assert_eq!(l.client_count(), 0);
    let absorbed: Vec<usize> = (0..100)
        .filter(|n| {
            let key = client_key(Method::Notify, &format!("z9hG4bKburst{n}"));
            matches!(
                l.route_response(&key, 200, None, t0 + ms(1)),
                RoutedResponse::Absorbed(_)
            )
        })
        .collect();
    // At most the cap's six keys stay, the newest among them: the oldest give way a whole
    // table at a time (here 0..96 in sixes, leaving 96..100).
    assert_eq!(absorbed, (96..100).collect::<Vec<_>>());

    let ok = Bytes::from_static(b"SIP/2.0 200 OK\r\n\r\n");
    for n in 0..100 {
        let id = new_server(
            &mut l,
            Method::Publish,
            &format!("z9hG4bKpub{n}"),
            false,
            t0,
        );
        let actions = l.respond(id, ok.clone(), 200, t0).unwrap();
        let ended = actions.contains(&Action::Terminated(TxId::Server(id)));
        // Two linger for Timer J.
        assert_eq!(ended, n >= 2, "request {n}");
    }
    assert_eq!(l.server_count(), 2);
}

#[test]
fn a_udp_request_answered_before_its_first_retransmission_never_queues_timer_f() {
    let t0 = Instant::now();
    let mut l = layer();
    let id = new_client(&mut l, Method::Notify, "z9hG4bKquick", false, t0);
    // Timer E only; Timer F waits for E to fire.
    assert_eq!(l.queued_timers(), 1);
    assert!(matches!(
        l.route_response(&client_key(Method::Notify, "z9hG4bKquick"), 200, None, t0 + ms(2)),
        RoutedResponse::Deliver(got, a) if got == id && a.to_vec() == vec![Action::Terminated(TxId::Client(id))]
    ));
    // The stale E alone: Timer K needs no timer.
    assert_eq!(l.queued_timers(), 1);
    assert_eq!(run(&mut l, t0, t0 + ms(100_000)), vec![]);
    assert_eq!(l.queued_timers(), 0);
}

// ------------------------------------------------------------------ through parsed messages
//
// These need sip-message's parser and writer.

fn parse(text: &str) -> Message {
    Message::parse(Bytes::copy_from_slice(text.as_bytes()), &Limits::default()).unwrap()
}

const INVITE: &str = "INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bKinv1\r\n\
Via: SIP/2.0/UDP 192.0.2.200:5060;branch=z9hG4bKupstream\r\n\
Route: <sip:proxy.example.com;lr>\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@example.com>;tag=a1\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: call-1@192.0.2.9\r\n\
CSeq: 4 INVITE\r\n\
Content-Length: 0\r\n\r\n";

#[test]
fn invite_client_sends_ack_for_4xx() {
    let t0 = Instant::now();
    let mut l = layer();
    let (id, send) = l.send_request(parse(INVITE), SRC, false, t0).unwrap();
    assert_eq!(
        send,
        Action::Send {
            dest: SRC,
            data: Bytes::from_static(INVITE.as_bytes())
        }
    );
    let busy = parse(
        "SIP/2.0 486 Busy Here\r\n\
Via: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bKinv1\r\n\
Via: SIP/2.0/UDP 192.0.2.200:5060;branch=z9hG4bKupstream\r\n\
From: <sip:alice@example.com>;tag=a1\r\n\
To: <sip:bob@example.com>;tag=b7\r\n\
Call-ID: call-1@192.0.2.9\r\n\
CSeq: 4 INVITE\r\n\
Content-Length: 0\r\n\r\n",
    );
    let expected_ack = Bytes::from_static(
        b"ACK sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bKinv1\r\n\
Route: <sip:proxy.example.com;lr>\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@example.com>;tag=a1\r\n\
To: <sip:bob@example.com>;tag=b7\r\n\
Call-ID: call-1@192.0.2.9\r\n\
CSeq: 4 ACK\r\n\
Content-Length: 0\r\n\r\n",
    );
    let ack = Action::Send {
        dest: SRC,
        data: expected_ack,
    };
    match l.on_response(busy.clone(), t0 + ms(200)) {
        ClientEvent::Response {
            id: got,
            response,
            actions,
        } => {
            assert_eq!(got, id);
            assert_eq!(response.status(), Some(486));
            assert_eq!(actions.to_vec(), vec![ack.clone()]);
        }
        other => panic!("unexpected {other:?}"),
    }
    // The retransmitted 486 gets the same ACK again.
    assert!(
        matches!(l.on_response(busy, t0 + ms(700)), ClientEvent::Retransmission(a) if a.to_vec() == vec![ack])
    );
    assert_eq!(
        run(&mut l, t0, t0 + ms(100_000)),
        vec![(ms(32_200), Action::Terminated(TxId::Client(id)))]
    );
}

#[test]
fn server_matches_parsed_requests_ack_and_cancel() {
    let t0 = Instant::now();
    let mut l = layer();
    let ServerEvent::NewRequest { id, request } = l.on_request(parse(INVITE), SRC, false, t0)
    else {
        panic!("not new")
    };
    assert_eq!(request.method(), Some(&Method::Invite));
    // sent-by compares case-insensitively; a different branch is a different transaction.
    assert!(matches!(
        l.on_request(parse(INVITE), SRC, false, t0),
        ServerEvent::Retransmission(_)
    ));
    let cancel = "CANCEL sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bKinv1\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@example.com>;tag=a1\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: call-1@192.0.2.9\r\n\
CSeq: 4 CANCEL\r\n\
Content-Length: 0\r\n\r\n";
    assert!(matches!(
        l.on_request(parse(cancel), SRC, false, t0),
        ServerEvent::Cancel { target: CancelTarget::Pending(target), .. } if target == id
    ));
    l.respond(
        id,
        Bytes::from_static(b"SIP/2.0 487 Request Terminated\r\n\r\n"),
        487,
        t0,
    )
    .unwrap();
    let ack = |branch: &str| {
        format!(
            "ACK sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.9:5060;branch={branch}\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@example.com>;tag=a1\r\n\
To: <sip:bob@example.com>;tag=b7\r\n\
Call-ID: call-1@192.0.2.9\r\n\
CSeq: 4 ACK\r\n\
Content-Length: 0\r\n\r\n"
        )
    };
    assert!(matches!(
        l.on_request(parse(&ack("z9hG4bKother")), SRC, false, t0),
        ServerEvent::StrayAck(_)
    ));
    assert!(matches!(
        l.on_request(parse(&ack("z9hG4bKinv1")), SRC, false, t0),
        ServerEvent::AckForFinal { id: got, .. } if got == id
    ));
    // A response handed to on_request is refused without state.
    let resp = parse("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n");
    assert!(matches!(
        l.on_request(resp, SRC, false, t0),
        ServerEvent::Invalid { .. }
    ));
}

#[test]
fn rfc2543_requests_match_without_magic_cookie() {
    let t0 = Instant::now();
    let mut l = layer();
    let invite = |from_tag: &str| {
        parse(&format!(
            "INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP old.example.com:5060\r\n\
From: <sip:alice@example.com>;tag={from_tag}\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: legacy-1\r\n\
CSeq: 9 INVITE\r\n\
Content-Length: 0\r\n\r\n"
        ))
    };
    let ServerEvent::NewRequest { id, .. } = l.on_request(invite("f1"), SRC, false, t0) else {
        panic!()
    };
    assert!(matches!(
        l.on_request(invite("f1"), SRC, false, t0),
        ServerEvent::Retransmission(_)
    ));
    assert!(matches!(
        l.on_request(invite("f2"), SRC, false, t0),
        ServerEvent::NewRequest { .. }
    ));
    let not_found = Bytes::from_static(
        b"SIP/2.0 404 Not Found\r\n\
Via: SIP/2.0/UDP old.example.com:5060\r\n\
From: <sip:alice@example.com>;tag=f1\r\n\
To: <sip:bob@example.com>;tag=srv\r\n\
Call-ID: legacy-1\r\n\
CSeq: 9 INVITE\r\n\
Content-Length: 0\r\n\r\n",
    );
    l.respond(id, not_found, 404, t0).unwrap();
    let ack = |to_tag: &str| {
        parse(&format!(
            "ACK sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP old.example.com:5060\r\n\
From: <sip:alice@example.com>;tag=f1\r\n\
To: <sip:bob@example.com>;tag={to_tag}\r\n\
Call-ID: legacy-1\r\n\
CSeq: 9 ACK\r\n\
Content-Length: 0\r\n\r\n"
        ))
    };
    assert!(matches!(
        l.on_request(ack("wrong"), SRC, false, t0),
        ServerEvent::StrayAck(_)
    ));
    assert!(matches!(
        l.on_request(ack("srv"), SRC, false, t0),
        ServerEvent::AckForFinal { id: got, .. } if got == id
    ));
}
