//! SIPp (Debian's sip-tester) as the third-party peer: digest registration, refresh and
//! unregistration over UDP and TCP, 1,000 users registering with zero failures, a wrong
//! password refused, and the bench's presence publisher, watcher and watcher-info scenarios.

mod common;

use common::{sipp, sipp_with, users_csv, Server};

fn users(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| (format!("user{i}"), format!("pw-{i}-x")))
        .collect()
}

fn as_refs(users: &[(String, String)]) -> Vec<(&str, &str)> {
    users
        .iter()
        .map(|(u, p)| (u.as_str(), p.as_str()))
        .collect()
}

#[test]
fn register_refresh_unregister_over_udp_and_tcp() {
    let accounts = users(10);
    let server = Server::start(&as_refs(&accounts));
    let csv = users_csv(&as_refs(&accounts));
    for transport in ["u1", "t1", "tn"] {
        let run = sipp("register.xml", transport, server.tcp_addr(), &csv, 10, 50);
        assert_eq!(
            (run.successful, run.failed),
            (10, 0),
            "over {transport}: {run:?}"
        );
    }
}

#[test]
fn a_thousand_users_register_without_failure() {
    let accounts = users(1000);
    let temp = tempfile::tempdir().unwrap();
    let lines: String = accounts
        .iter()
        .map(|(u, p)| format!("{u}@{} {p}\n", common::DOMAIN))
        .collect();
    let file = temp.path().join("accounts.txt");
    std::fs::write(&file, lines).unwrap();
    let out = common::run_cli(temp.path(), &["user", "import", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let data_dir = temp.path().to_owned();
    let server = Server::launch(data_dir, Some(temp), &[]);
    let csv = users_csv(&as_refs(&accounts));
    for transport in ["t1", "u1"] {
        let run = sipp(
            "register_only.xml",
            transport,
            server.tcp_addr(),
            &csv,
            1000,
            500,
        );
        assert_eq!(
            (run.successful, run.failed),
            (1000, 0),
            "over {transport}: {run:?}"
        );
    }
}

#[test]
fn a_wrong_password_is_refused() {
    let accounts = users(3);
    let server = Server::start(&as_refs(&accounts));
    let csv = users_csv(&as_refs(&accounts));
    for transport in ["u1", "t1"] {
        let run = sipp(
            "register_wrong_password.xml",
            transport,
            server.tcp_addr(),
            &csv,
            3,
            10,
        );
        assert_eq!(
            (run.successful, run.failed),
            (3, 0),
            "over {transport}: {run:?}"
        );
    }
}

/// The bench's presence scenarios (copies adapted for digest authentication): a publisher
/// modifying its state while a watcher subscribed to that AOR receives every change, ends on
/// the `bench-end` note and unsubscribes; over TCP and UDP (NOTIFYs retransmitted there).
#[test]
fn publisher_and_watcher_scenarios_over_tcp_and_udp() {
    let server = Server::start(&[("alice", "secret")]);
    let credentials = "[authentication username=alice password=secret]";
    let target = server.tcp_addr();
    for transport in ["t1", "u1"] {
        let watcher = std::thread::spawn(move || {
            let csv = format!("SEQUENTIAL\nalice;alice;{};{credentials}\n", common::DOMAIN);
            common::sipp_with(
                "watcher.xml",
                transport,
                target,
                &csv,
                1,
                1,
                &["-aa", "-key", "hold_s", "30"],
            )
        });
        std::thread::sleep(std::time::Duration::from_millis(500));
        let csv = format!("SEQUENTIAL\nalice;{};{credentials}\n", common::DOMAIN);
        let publisher = common::sipp_with(
            "publisher.xml",
            transport,
            target,
            &csv,
            1,
            1,
            &[
                "-key",
                "pub_s",
                "2",
                "-key",
                "period_ms",
                "200",
                "-key",
                "pub_expires",
                "600",
            ],
        );
        assert_eq!(
            (publisher.successful, publisher.failed),
            (1, 0),
            "over {transport}: {publisher:?}"
        );
        let watcher = watcher.join().expect("watcher thread");
        assert_eq!(
            (watcher.successful, watcher.failed),
            (1, 0),
            "over {transport}: {watcher:?}"
        );
    }
}

/// The bench's watcher-info scenario (a copy adapted for digest authentication): each user
/// subscribes to its own `presence.winfo`, answers every NOTIFY (checked to carry
/// `application/watcherinfo+xml`) until 4 s pass without one, and unsubscribes; over TCP and UDP.
#[test]
fn winfo_scenario_over_tcp_and_udp() {
    let accounts = users(3);
    let server = Server::start(&as_refs(&accounts));
    let csv = users_csv(&as_refs(&accounts));
    for transport in ["t1", "u1"] {
        let run = sipp_with(
            "winfo.xml",
            transport,
            server.tcp_addr(),
            &csv,
            3,
            10,
            &["-aa"],
        );
        assert_eq!(
            (run.successful, run.failed),
            (3, 0),
            "over {transport}: {run:?}"
        );
    }
}
