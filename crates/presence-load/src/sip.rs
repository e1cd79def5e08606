//! The SIP the generator speaks: SUBSCRIBE and PUBLISH requests, and the naming that lets
//! any connection route an incoming message to its watcher or presentity by Call-ID.
//!
//! Every PUBLISH body carries `<note>pl SEQ MICROS</note>`, MICROS being the send time in
//! microseconds since the run started; the watcher that receives the composed document reads
//! it back for the publish-to-NOTIFY latency.

use std::net::SocketAddr;

/// Who a message belongs to, from its Call-ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Watcher(usize),
    Publisher(usize),
    /// The OPTIONS readiness probe.
    Probe,
}

/// Call-IDs are `w<index>.<run>` and `p<index>.<run>`; the run tag keeps two runs against
/// one server apart.
pub fn call_id(owner: Owner, run: u32) -> String {
    match owner {
        Owner::Watcher(i) => format!("w{i}.{run}"),
        Owner::Publisher(i) => format!("p{i}.{run}"),
        Owner::Probe => format!("o0.{run}"),
    }
}

pub fn owner(call_id: &str) -> Option<Owner> {
    let (kind, rest) = call_id.split_at_checked(1)?;
    let index = rest.split_once('.')?.0.parse().ok()?;
    match kind {
        "w" => Some(Owner::Watcher(index)),
        "p" => Some(Owner::Publisher(index)),
        "o" => Some(Owner::Probe),
        _ => None,
    }
}

/// Addresses and names shared by every request of a run.
pub struct Endpoint<'a> {
    /// The SIP domain of every URI (the server's address by default, as the SIPp scenarios do).
    pub domain: &'a str,
    /// `UDP` or `TCP`.
    pub transport: &'a str,
    pub run: u32,
}

/// OPTIONS to the server (number `n` of the probe), answered by any live SIP server.
pub fn options(ep: &Endpoint, local: SocketAddr, n: u32) -> String {
    let (domain, transport) = (ep.domain, ep.transport);
    format!(
        "OPTIONS sip:{domain} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {local};branch=z9hG4bK-o{n}-{run};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@{domain}>;tag=o{n}\r\n\
         To: <sip:{domain}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {n} OPTIONS\r\n\
         Content-Length: 0\r\n\r\n",
        run = ep.run,
        call_id = call_id(Owner::Probe, ep.run),
    )
}

/// SUBSCRIBE for watcher `watcher` to presentity `presentity`, with our own socket
/// address `local` in Via and Contact so NOTIFYs come back to it.
pub fn subscribe(
    ep: &Endpoint,
    local: SocketAddr,
    watcher: usize,
    presentity: usize,
    expires: u32,
) -> String {
    let (domain, transport) = (ep.domain, ep.transport);
    format!(
        "SUBSCRIBE sip:pres{presentity}@{domain} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {local};branch=z9hG4bK-s{watcher}-{run};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:watcher{watcher}@{domain}>;tag=w{watcher}\r\n\
         To: <sip:pres{presentity}@{domain}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 SUBSCRIBE\r\n\
         Contact: <sip:watcher{watcher}@{local};transport={lower}>\r\n\
         Event: presence\r\n\
         Accept: application/pidf+xml\r\n\
         Expires: {expires}\r\n\
         Content-Length: 0\r\n\r\n",
        run = ep.run,
        call_id = call_id(Owner::Watcher(watcher), ep.run),
        lower = transport.to_ascii_lowercase(),
    )
}

/// PUBLISH number `seq` (CSeq and branch) for `presentity`: initial without `etag`, a
/// modification with `SIP-If-Match` otherwise.
pub fn publish(
    ep: &Endpoint,
    local: SocketAddr,
    presentity: usize,
    seq: u32,
    etag: Option<&str>,
    sent_micros: u64,
    expires: u32,
) -> String {
    let (domain, transport) = (ep.domain, ep.transport);
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
         <presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:pres{presentity}@{domain}\">\
         <tuple id=\"t{presentity}\"><status><basic>open</basic></status>\
         <note>pl {seq} {sent_micros}</note></tuple></presence>\r\n"
    );
    let if_match = etag.map_or(String::new(), |e| format!("SIP-If-Match: {e}\r\n"));
    format!(
        "PUBLISH sip:pres{presentity}@{domain} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {local};branch=z9hG4bK-p{presentity}-{seq}-{run};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:pres{presentity}@{domain}>;tag=p{presentity}\r\n\
         To: <sip:pres{presentity}@{domain}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {seq} PUBLISH\r\n\
         Event: presence\r\n\
         {if_match}\
         Expires: {expires}\r\n\
         Content-Type: application/pidf+xml\r\n\
         Content-Length: {len}\r\n\r\n{body}",
        run = ep.run,
        call_id = call_id(Owner::Publisher(presentity), ep.run),
        len = body.len(),
    )
}

/// The send time embedded by [`publish`] in a NOTIFY body, None when the body carries no
/// marker (initial state, another client's publication).
pub fn sent_micros(body: &[u8]) -> Option<u64> {
    const MARK: &[u8] = b"<note>pl ";
    let start = body.windows(MARK.len()).position(|w| w == MARK)? + MARK.len();
    let rest = &body[start..];
    let end = rest.iter().position(|&b| b == b'<')?;
    let text = std::str::from_utf8(&rest[..end]).ok()?;
    let (_seq, micros) = text.split_once(' ')?;
    micros.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use sip_message::{Limits, Message};

    fn endpoint() -> Endpoint<'static> {
        Endpoint {
            domain: "127.0.0.1",
            transport: "TCP",
            run: 7,
        }
    }

    fn parse(text: String) -> Message {
        Message::parse(Bytes::from(text), &Limits::default()).expect("valid SIP")
    }

    #[test]
    fn call_ids_route_back_to_their_owner() {
        for owner_in in [
            Owner::Watcher(0),
            Owner::Watcher(9999),
            Owner::Publisher(42),
            Owner::Probe,
        ] {
            assert_eq!(owner(&call_id(owner_in, 3)), Some(owner_in));
        }
        for foreign in ["", "w", "w12", "x1.2", "wabc.1", "p-1.2"] {
            assert_eq!(owner(foreign), None, "{foreign:?}");
        }
    }

    #[test]
    fn requests_are_valid_sip_with_the_expected_headers() {
        let local = "127.0.0.1:40000".parse().unwrap();
        let probe = parse(options(&endpoint(), local, 3));
        assert_eq!(owner(probe.call_id().unwrap()), Some(Owner::Probe));
        let sub = parse(subscribe(&endpoint(), local, 12, 2, 600));
        assert_eq!(sub.call_id().unwrap(), "w12.7");
        assert_eq!(sub.other_header("Event"), Some("presence"));
        assert_eq!(
            sub.other_header("Contact"),
            Some("<sip:watcher12@127.0.0.1:40000;transport=tcp>")
        );

        let first = parse(publish(&endpoint(), local, 2, 1, None, 5, 600));
        assert_eq!(first.other_header("SIP-If-Match"), None);
        let next = parse(publish(&endpoint(), local, 2, 8, Some("abc"), 123_456, 600));
        assert_eq!(next.other_header("SIP-If-Match"), Some("abc"));
        assert_eq!(next.cseq().unwrap().seq, 8);
        assert_eq!(owner(next.call_id().unwrap()), Some(Owner::Publisher(2)));
        assert_eq!(sent_micros(&next.body()), Some(123_456));
    }

    #[test]
    fn the_timestamp_survives_composition_and_garbage_is_ignored() {
        let composed = b"<presence><tuple id=\"a\"><note>pl 17 99000</note></tuple></presence>";
        assert_eq!(sent_micros(composed), Some(99_000));
        assert_eq!(sent_micros(b"<note>start</note>"), None);
        assert_eq!(sent_micros(b"<note>pl 17</note>"), None);
        assert_eq!(sent_micros(b"<note>pl 17 x</note>"), None);
        assert_eq!(sent_micros(b"<note>pl 1 2"), None);
        assert_eq!(sent_micros(b""), None);
    }
}
