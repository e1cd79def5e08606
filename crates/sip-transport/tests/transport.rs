mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{config, loopback, next_event, next_message, request, response, WAIT};
use sip_message::Limits;
use sip_transport::{
    SendError, Target, Transport, TransportConfig, TransportError, TransportEvent, Transports,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::time::timeout;

async fn read_exact(stream: &mut TcpStream, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    timeout(WAIT, stream.read_exact(&mut buf))
        .await
        .expect("read timed out")
        .expect("read");
    buf
}

/// Waits until the peer closes the stream (EOF or reset).
async fn assert_closed(stream: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    loop {
        match timeout(WAIT, stream.read(&mut buf))
            .await
            .expect("connection not closed")
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

async fn tcp_client(handle: &sip_transport::TransportHandle) -> TcpStream {
    let stream = TcpStream::connect(handle.local_addr(Transport::Tcp).unwrap())
        .await
        .unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

#[tokio::test]
async fn udp_datagram_in_and_reply_from_listener_socket() {
    let (handle, mut events) = Transports::start(config()).await.unwrap();
    let server = handle.local_addr(Transport::Udp).unwrap();
    let client = UdpSocket::bind(loopback()).await.unwrap();

    let message = request("udp1", "");
    client.send_to(message.as_bytes(), server).await.unwrap();
    let inbound = next_message(&mut events).await;
    assert_eq!(inbound.transport, Transport::Udp);
    assert_eq!(inbound.peer, client.local_addr().unwrap());
    assert_eq!(inbound.local, server);
    assert_eq!(inbound.connection, None);
    assert_eq!(&inbound.data[..], message.as_bytes());

    let reply = response("udp1");
    handle
        .send(Target::Udp(inbound.peer), Bytes::from(reply.clone()))
        .await
        .unwrap();
    let mut buf = vec![0; 65535];
    let (len, from) = timeout(WAIT, client.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(from, server);
    assert_eq!(&buf[..len], reply.as_bytes());
}

#[tokio::test]
async fn a_batch_of_datagrams_reaches_every_peer_in_order_past_one_that_fails() {
    let (handle, _events) = Transports::start(config()).await.unwrap();
    let server = handle.local_addr(Transport::Udp).unwrap();
    let mut peers = Vec::new();
    for _ in 0..3 {
        peers.push(UdpSocket::bind(loopback()).await.unwrap());
    }
    // More than one system call's worth, with a destination the IPv4 socket cannot reach
    // in the middle of a call.
    let unreachable: std::net::SocketAddr = "[2001:db8::1]:5060".parse().unwrap();
    let mut batch = Vec::new();
    for n in 0..150 {
        if n == 70 {
            batch.push((unreachable, Bytes::from_static(b"lost")));
        }
        let peer = peers[n % 3].local_addr().unwrap();
        batch.push((peer, Bytes::from(response(&format!("batch{n}")))));
    }
    let errors = handle.send_datagrams(&batch).await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        matches!(&errors[0], SendError::Udp { addr, .. } if *addr == unreachable),
        "{errors:?}"
    );
    let mut buf = vec![0; 65535];
    for n in 0..150 {
        let (len, from) = timeout(WAIT, peers[n % 3].recv_from(&mut buf))
            .await
            .expect("datagram not delivered")
            .unwrap();
        assert_eq!(from, server);
        assert_eq!(&buf[..len], response(&format!("batch{n}")).as_bytes());
    }
}

#[tokio::test]
async fn udp_bursts_of_every_size_around_a_read_batch_arrive_whole_and_in_order() {
    let (handle, mut events) = Transports::start(config()).await.unwrap();
    let server = handle.local_addr(Transport::Udp).unwrap();
    let client = UdpSocket::bind(loopback()).await.unwrap();
    // Nobody reads while a burst arrives, so each read finds a whole burst queued: shorter
    // than, as long as and longer than one system call's batch, and longer than one call of
    // `recv_many`. A read that took a short batch for an empty queue must still see the
    // next burst.
    let mut sent = 0;
    for burst in [1, 2, 15, 16, 17, 31, 33, 50, 1] {
        for n in sent..sent + burst {
            let message = request(&format!("burst{n}"), "");
            client.send_to(message.as_bytes(), server).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut received = Vec::new();
        while received.len() < burst {
            let before = received.len();
            let taken = timeout(WAIT, events.recv_many(&mut received, 20))
                .await
                .expect("burst not delivered");
            assert!(taken > 0 && taken <= 20 && received.len() == before + taken);
        }
        assert_eq!(received.len(), burst);
        for (n, event) in (sent..).zip(received) {
            let TransportEvent::Message(inbound) = event else {
                panic!("expected a message, got {event:?}");
            };
            assert_eq!(
                &inbound.data[..],
                request(&format!("burst{n}"), "").as_bytes()
            );
        }
        sent += burst;
    }
}

#[tokio::test]
async fn a_flood_of_datagrams_does_not_hold_back_stream_messages() {
    let (handle, mut events) = Transports::start(config()).await.unwrap();
    let server = handle.local_addr(Transport::Udp).unwrap();
    let client = UdpSocket::bind(loopback()).await.unwrap();
    for n in 0..200 {
        let message = request(&format!("flood{n}"), "");
        client.send_to(message.as_bytes(), server).await.unwrap();
    }
    let mut stream = tcp_client(&handle).await;
    stream
        .write_all(request("over-tcp", "").as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Two reads of eight: the second starts with the stream messages.
    let mut received = Vec::new();
    for _ in 0..2 {
        timeout(WAIT, events.recv_many(&mut received, 8))
            .await
            .unwrap();
    }
    let over_tcp = received.iter().position(|event| {
        matches!(event, TransportEvent::Message(inbound) if inbound.transport == Transport::Tcp)
    });
    assert!(over_tcp.is_some(), "{received:?}");
}

#[tokio::test]
async fn udp_keepalives_and_oversized_datagrams_are_dropped() {
    let limits = Limits {
        max_header_bytes: 512,
        max_headers: 32,
        max_body_bytes: 512,
    };
    let (handle, mut events) = Transports::start(TransportConfig { limits, ..config() })
        .await
        .unwrap();
    let server = handle.local_addr(Transport::Udp).unwrap();
    let client = UdpSocket::bind(loopback()).await.unwrap();

    client.send_to(b"\r\n\r\n", server).await.unwrap();
    client
        .send_to(request("big", &"x".repeat(2000)).as_bytes(), server)
        .await
        .unwrap();
    // One byte over the limit is dropped, exactly at the limit is taken.
    let at_limit = |extra: usize| {
        let headers = request("limit", &"y".repeat(999)).len() - 999;
        request("limit", &"y".repeat(1024 + extra - headers))
    };
    assert_eq!(at_limit(0).len(), 1024);
    assert_eq!(at_limit(1).len(), 1025);
    client
        .send_to(at_limit(1).as_bytes(), server)
        .await
        .unwrap();
    let small = request("small", "");
    client.send_to(small.as_bytes(), server).await.unwrap();
    client
        .send_to(at_limit(0).as_bytes(), server)
        .await
        .unwrap();
    // Datagrams on one loopback socket pair arrive in order, so the first events tell.
    assert_eq!(&next_message(&mut events).await.data[..], small.as_bytes());
    assert_eq!(
        &next_message(&mut events).await.data[..],
        at_limit(0).as_bytes()
    );
}

#[tokio::test]
async fn tcp_message_split_across_writes_is_framed() {
    let (handle, mut events) = Transports::start(config()).await.unwrap();
    let mut client = tcp_client(&handle).await;
    let message = request("split", "hello body");
    let bytes = message.as_bytes();
    for part in [
        &bytes[..10],
        &bytes[10..60],
        &bytes[60..bytes.len() - 3],
        &bytes[bytes.len() - 3..],
    ] {
        client.write_all(part).await.unwrap();
        client.flush().await.unwrap();
        tokio::task::yield_now().await;
    }
    let inbound = next_message(&mut events).await;
    assert_eq!(inbound.transport, Transport::Tcp);
    assert_eq!(inbound.peer, client.local_addr().unwrap());
    assert_eq!(inbound.local, client.peer_addr().unwrap());
    assert!(inbound.connection.is_some());
    assert_eq!(&inbound.data[..], bytes);
}

#[tokio::test]
async fn tcp_two_messages_in_one_write() {
    let (handle, mut events) = Transports::start(config()).await.unwrap();
    let mut client = tcp_client(&handle).await;
    let (first, second) = (request("one", "a"), request("two", "bb"));
    client
        .write_all(format!("{first}{second}").as_bytes())
        .await
        .unwrap();
    let a = next_message(&mut events).await;
    let b = next_message(&mut events).await;
    assert_eq!(&a.data[..], first.as_bytes());
    assert_eq!(&b.data[..], second.as_bytes());
    assert_eq!(a.connection, b.connection);
}

#[tokio::test]
async fn ping_is_answered_with_exactly_one_crlf() {
    let (handle, mut events) = Transports::start(config()).await.unwrap();
    let mut client = tcp_client(&handle).await;
    client.write_all(b"\r\n\r\n").await.unwrap();
    assert_eq!(read_exact(&mut client, 2).await, b"\r\n");

    // The next bytes on the stream are the response, so nothing else followed the pong.
    client
        .write_all(request("after-ping", "").as_bytes())
        .await
        .unwrap();
    let inbound = next_message(&mut events).await;
    let reply = response("after-ping");
    handle
        .send(
            Target::Connection(inbound.connection.unwrap()),
            Bytes::from(reply.clone()),
        )
        .await
        .unwrap();
    assert_eq!(read_exact(&mut client, reply.len()).await, reply.as_bytes());
}

#[tokio::test]
async fn response_goes_back_on_the_same_connection() {
    let (handle, mut events) = Transports::start(config()).await.unwrap();
    let mut first = tcp_client(&handle).await;
    let mut second = tcp_client(&handle).await;
    first.write_all(request("c1", "").as_bytes()).await.unwrap();
    let one = next_message(&mut events).await;
    second
        .write_all(request("c2", "").as_bytes())
        .await
        .unwrap();
    let two = next_message(&mut events).await;
    assert_ne!(one.connection, two.connection);

    let reply = response("c2");
    handle
        .send(
            Target::Connection(two.connection.unwrap()),
            Bytes::from(reply.clone()),
        )
        .await
        .unwrap();
    assert_eq!(read_exact(&mut second, reply.len()).await, reply.as_bytes());
    let reply = response("c1");
    handle
        .send(
            Target::Connection(one.connection.unwrap()),
            Bytes::from(reply.clone()),
        )
        .await
        .unwrap();
    assert_eq!(read_exact(&mut first, reply.len()).await, reply.as_bytes());
}

#[tokio::test]
async fn oversized_header_closes_the_connection() {
    let limits = Limits {
        max_header_bytes: 256,
        max_headers: 32,
        max_body_bytes: 1024,
    };
    let (handle, mut events) = Transports::start(TransportConfig { limits, ..config() })
        .await
        .unwrap();
    let mut client = tcp_client(&handle).await;
    let header = format!(
        "OPTIONS sip:avail.test SIP/2.0\r\nX-Long: {}\r\n",
        "y".repeat(1000)
    );
    // The server may close before it has read everything.
    let _ = client.write_all(header.as_bytes()).await;
    assert!(matches!(
        next_event(&mut events).await,
        TransportEvent::Closed(_)
    ));
    assert_closed(&mut client).await;
}

#[tokio::test]
async fn idle_connection_is_closed() {
    let idle = TransportConfig {
        idle_timeout: Duration::from_millis(200),
        ..config()
    };
    let (handle, mut events) = Transports::start(idle).await.unwrap();
    let mut client = tcp_client(&handle).await;
    client
        .write_all(request("idle", "").as_bytes())
        .await
        .unwrap();
    let id = next_message(&mut events).await.connection.unwrap();
    assert!(
        matches!(next_event(&mut events).await, TransportEvent::Closed(closed) if closed == id)
    );
    assert!(!handle.is_connected(id));
    assert_closed(&mut client).await;
    assert!(matches!(
        handle.send(Target::Connection(id), Bytes::from_static(b"late")).await,
        Err(SendError::ConnectionClosed(closed)) if closed == id
    ));
}

#[tokio::test]
async fn reading_postpones_the_idle_timeout() {
    let idle_timeout = Duration::from_millis(400);
    let idle = TransportConfig {
        idle_timeout,
        ..config()
    };
    let (handle, mut events) = Transports::start(idle).await.unwrap();
    let mut client = tcp_client(&handle).await;
    let started = std::time::Instant::now();
    let mut connection = None;
    for n in 0..6 {
        if n > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        client
            .write_all(request(&format!("busy{n}"), "").as_bytes())
            .await
            .unwrap();
        connection = next_message(&mut events).await.connection;
    }
    let id = connection.unwrap();
    // Busy for longer than the idle timeout, and still open.
    assert!(handle.is_connected(id));
    assert!(
        matches!(next_event(&mut events).await, TransportEvent::Closed(closed) if closed == id)
    );
    // The last message was read at least 500 ms after the start.
    assert!(started.elapsed() >= Duration::from_millis(500) + idle_timeout);
    assert_closed(&mut client).await;
}

#[tokio::test]
async fn many_queued_messages_arrive_whole_and_in_order() {
    let (handle, mut events) = Transports::start(config()).await.unwrap();
    let mut client = tcp_client(&handle).await;
    client
        .write_all(request("many", "").as_bytes())
        .await
        .unwrap();
    let id = next_message(&mut events).await.connection.unwrap();
    // Far more than the socket buffers hold while the client does not read, so writes end
    // part-way through a message and must resume exactly there.
    let messages: Vec<String> = (0..3000)
        .map(|n| request(&format!("m{n}"), &"x".repeat(n % 700)))
        .collect();
    for message in &messages {
        handle
            .send(Target::Connection(id), Bytes::from(message.clone()))
            .await
            .unwrap();
    }
    let expected = messages.concat();
    assert_eq!(
        read_exact(&mut client, expected.len()).await,
        expected.as_bytes()
    );
}

#[tokio::test]
async fn batches_over_several_connections_arrive_whole_and_in_order() {
    let (handle, mut events) = Transports::start(config()).await.unwrap();
    let mut clients = Vec::new();
    let mut ids = Vec::new();
    for name in ["first", "second", "gone"] {
        let mut client = tcp_client(&handle).await;
        client
            .write_all(request(name, "").as_bytes())
            .await
            .unwrap();
        ids.push(next_message(&mut events).await.connection.unwrap());
        clients.push(client);
    }
    let gone = ids[2];
    handle.close(gone);
    assert!(
        matches!(next_event(&mut events).await, TransportEvent::Closed(closed) if closed == gone)
    );

    // Interleaved, and far more than the socket buffers hold while the clients do not read:
    // the first batch's direct writes stop part-way through a message, the rest of it and
    // the second batch must queue behind that and resume exactly there.
    let mut expected = [String::new(), String::new()];
    let mut batches = Vec::new();
    for round in 0..2 {
        let mut batch = Vec::new();
        for n in 0..1500 {
            // The first ones too large for the socket buffers together.
            let body_len = if round == 0 && n < 64 {
                200_000 + n
            } else {
                n % 700
            };
            let message = request(&format!("r{round}m{n}"), &"x".repeat(body_len));
            expected[n % 2].push_str(&message);
            batch.push((ids[n % 2], Bytes::from(message)));
            if n == 700 {
                batch.push((gone, Bytes::from_static(b"lost")));
            }
        }
        batches.push(batch);
    }
    for mut batch in batches {
        let errors = handle.send_on_connections(&mut batch);
        assert!(
            matches!(errors.as_slice(), [SendError::ConnectionClosed(id)] if *id == gone),
            "{errors:?}"
        );
    }
    for (client, expected) in clients.iter_mut().zip(&expected) {
        assert_eq!(
            read_exact(client, expected.len()).await,
            expected.as_bytes()
        );
    }
}

#[tokio::test]
async fn close_flushes_queued_data_first() {
    let (handle, mut events) = Transports::start(config()).await.unwrap();
    let mut client = tcp_client(&handle).await;
    client
        .write_all(request("bye", "").as_bytes())
        .await
        .unwrap();
    let id = next_message(&mut events).await.connection.unwrap();
    let reply = response("bye");
    handle
        .send(Target::Connection(id), Bytes::from(reply.clone()))
        .await
        .unwrap();
    handle.close(id);
    assert_eq!(read_exact(&mut client, reply.len()).await, reply.as_bytes());
    assert_closed(&mut client).await;
    assert!(
        matches!(next_event(&mut events).await, TransportEvent::Closed(closed) if closed == id)
    );
}

#[tokio::test]
async fn write_budget_exceeded_closes_a_connection_that_never_reads() {
    let budget = 64 * 1024;
    let cfg = TransportConfig {
        max_queued_bytes_per_connection: budget,
        ..config()
    };
    let (handle, mut events) = Transports::start(cfg).await.unwrap();
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut client = socket
        .connect(handle.local_addr(Transport::Tcp).unwrap())
        .await
        .unwrap();
    client
        .write_all(request("slow", "").as_bytes())
        .await
        .unwrap();
    let id = next_message(&mut events).await.connection.unwrap();

    let chunk = Bytes::from(vec![b'x'; 16 * 1024]);
    let result = timeout(WAIT, async {
        loop {
            if let Err(error) = handle.send(Target::Connection(id), chunk.clone()).await {
                return error;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("budget never exceeded");
    assert!(
        matches!(result, SendError::QueueFull { connection, budget: b } if connection == id && b == budget)
    );
    assert!(!handle.is_connected(id));
    assert!(
        matches!(next_event(&mut events).await, TransportEvent::Closed(closed) if closed == id)
    );
    drop(client);
}

#[tokio::test]
async fn connect_target_reuses_one_connection_and_receives_on_it() {
    let (handle, mut events) = Transports::start(config()).await.unwrap();
    let peer = TcpListener::bind(loopback()).await.unwrap();
    let addr = peer.local_addr().unwrap();
    let target = Target::Connect {
        transport: Transport::Tcp,
        addr,
        server_name: None,
    };
    let (first, second) = (request("out1", ""), request("out2", ""));
    handle
        .send(target.clone(), Bytes::from(first.clone()))
        .await
        .unwrap();
    let (mut accepted, _) = timeout(WAIT, peer.accept()).await.unwrap().unwrap();
    handle
        .send(target, Bytes::from(second.clone()))
        .await
        .unwrap();
    // Both arrive on the one accepted socket, so no second connection was made.
    assert_eq!(
        read_exact(&mut accepted, first.len() + second.len()).await,
        format!("{first}{second}").as_bytes()
    );

    let reply = response("out1");
    accepted.write_all(reply.as_bytes()).await.unwrap();
    let inbound = next_message(&mut events).await;
    assert_eq!(inbound.transport, Transport::Tcp);
    assert_eq!(inbound.peer, addr);
    assert_eq!(&inbound.data[..], reply.as_bytes());
    let id = inbound.connection.unwrap();
    assert!(handle.is_connected(id));

    drop(accepted);
    assert!(
        matches!(next_event(&mut events).await, TransportEvent::Closed(closed) if closed == id)
    );
}

#[tokio::test]
async fn connection_cap_closes_extra_connections() {
    let cfg = TransportConfig {
        max_connections: 1,
        ..config()
    };
    let (handle, mut events) = Transports::start(cfg).await.unwrap();
    let mut first = tcp_client(&handle).await;
    first
        .write_all(request("cap1", "").as_bytes())
        .await
        .unwrap();
    let id = next_message(&mut events).await.connection.unwrap();

    let mut second = tcp_client(&handle).await;
    assert_closed(&mut second).await;
    assert!(handle.is_connected(id));
    let reply = response("cap1");
    handle
        .send(Target::Connection(id), Bytes::from(reply.clone()))
        .await
        .unwrap();
    assert_eq!(read_exact(&mut first, reply.len()).await, reply.as_bytes());
}

#[tokio::test]
async fn bind_error_names_the_address() {
    let taken = TcpListener::bind(loopback()).await.unwrap();
    let addr = taken.local_addr().unwrap();
    let cfg = TransportConfig {
        tcp: Some(addr),
        ..TransportConfig::default()
    };
    let error = Transports::start(cfg).await.unwrap_err();
    assert!(
        matches!(error, TransportError::Bind { transport: Transport::Tcp, addr: a, .. } if a == addr)
    );
    assert!(error.to_string().contains(&addr.to_string()), "{error}");
}

#[tokio::test]
async fn disabled_transports_are_reported() {
    let cfg = TransportConfig {
        tcp: Some(loopback()),
        ..TransportConfig::default()
    };
    let (handle, _events) = Transports::start(cfg).await.unwrap();
    assert_eq!(handle.local_addr(Transport::Udp), None);
    assert!(matches!(
        handle
            .send(Target::Udp(loopback()), Bytes::from_static(b"x"))
            .await,
        Err(SendError::NotEnabled(Transport::Udp))
    ));
    let tls = Target::Connect {
        transport: Transport::Tls,
        addr: loopback(),
        server_name: None,
    };
    assert!(matches!(
        handle.send(tls, Bytes::from_static(b"x")).await,
        Err(SendError::NoTlsClientConfig)
    ));
}
