//! A name server on loopback for tests (RFC 1035 over UDP, which the [`crate::Locator`]
//! asks first): it answers from a fixed set of records, with NXDOMAIN for a name it holds
//! nothing for and an empty answer for a name it holds only other types for (RFC 2308's
//! NODATA), as an authoritative server would; or one refusing every query.

use std::net::SocketAddr;

use hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
use hickory_resolver::proto::rr::{RData, Record};
use hickory_resolver::Name;

/// Starts the server on the current runtime; it runs until the runtime ends.
pub async fn name_server(records: Vec<Record>) -> SocketAddr {
    serve(move |query| answer(query, &records)).await
}

/// A server that refuses every query (REFUSED: it is there, but will not answer).
pub async fn refusing_name_server() -> SocketAddr {
    serve(|query| {
        let mut response = response_to(query);
        response.set_response_code(ResponseCode::Refused);
        response
    })
    .await
}

async fn serve(respond: impl Fn(&Message) -> Message + Send + 'static) -> SocketAddr {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("a loopback UDP port");
    let addr = socket.local_addr().expect("bound");
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let Ok(response) = respond(&query).to_vec() else {
                continue;
            };
            let _ = socket.send_to(&response, from).await;
        }
    });
    addr
}

/// One record of `name` (absolute, with its final dot).
pub fn record(name: &str, rdata: RData) -> Record {
    Record::from_rdata(Name::from_ascii(name).expect("a domain name"), 60, rdata)
}

fn answer(query: &Message, records: &[Record]) -> Message {
    let asked = |record: &Record| query.queries().iter().any(|q| q.name() == record.name());
    let answers: Vec<Record> = records
        .iter()
        .filter(|r| asked(r))
        .filter(|r| {
            query
                .queries()
                .iter()
                .any(|q| q.query_type() == r.record_type())
        })
        .cloned()
        .collect();
    let mut response = response_to(query);
    if !records.iter().any(asked) {
        response.set_response_code(ResponseCode::NXDomain);
    }
    response.add_answers(answers);
    response
}

fn response_to(query: &Message) -> Message {
    let mut response = Message::new();
    response
        .set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_recursion_desired(true)
        .set_recursion_available(true)
        .set_authoritative(true)
        .add_queries(query.queries().to_vec());
    response
}
