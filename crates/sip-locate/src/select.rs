//! Sans-IO server selection (RFC 3263 §4.1 and §4.2, with RFC 2782's ordering as §4.3 asks):
//! which transport and port a URI calls for, what a domain's NAPTR records (RFC 3403) say
//! about its transports, which SRV names to ask and in what order, how an SRV answer is
//! ordered and which servers it names, and the targets their addresses make. The random
//! numbers of RFC 2782's weighted pick come in through [`WeightDraw`], so that a test can
//! script them.

use std::collections::VecDeque;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use rand::Rng;
use sip_message::Uri;

use crate::LocateError;

/// Targets one destination yields at most (SRV records considered, then addresses): a
/// domain publishing more gains nothing but a longer list to fail over through.
pub const MAX_TARGETS: usize = 16;

pub use sip_message::Transport;

/// §4.1: TLS is the `_sips` service, also when a SIP URI is sent over TLS.
fn srv_labels(transport: Transport) -> &'static str {
    match transport {
        Transport::Udp => "_sip._udp",
        Transport::Tcp => "_sip._tcp",
        Transport::Tls => "_sips._tcp",
    }
}

/// The SRV name of `domain`'s SIP service over `transport` (RFC 3263 §4.1).
pub fn srv_name(domain: &str, transport: Transport) -> String {
    format!("{}.{domain}", srv_labels(transport))
}

/// A destination's host: an address is used as it is (§4.2), a name is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Ip(IpAddr),
    /// Lower case, without a trailing dot.
    Name(String),
}

impl Host {
    fn parse(text: &str) -> Host {
        match text.parse() {
            Ok(ip) => Host::Ip(ip),
            Err(_) => Host::Name(text.trim_end_matches('.').to_ascii_lowercase()),
        }
    }
}

/// An address without brackets, as a connect call takes it.
impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(ip) => ip.fmt(f),
            Host::Name(name) => f.write_str(name),
        }
    }
}

/// What RFC 3263 §4 looks at in a URI: host, port, scheme and `transport` parameter. The
/// `maddr` parameter is deliberately left out: it would let a request name any host as its
/// next hop whatever its domain, around a relay policy decided on the domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub host: Host,
    pub port: Option<u16>,
    /// A SIPS URI: TLS only (§4.1).
    pub secure: bool,
    /// The transport the URI's `transport` parameter names (TLS for any on a SIPS URI).
    /// Without one, §4.1 asks the domain's NAPTR records which transports it prefers.
    pub transport: Option<Transport>,
}

impl Destination {
    pub fn from_uri(text: &str) -> Result<Destination, LocateError> {
        let not_sip = || LocateError::NotSip(text.to_owned());
        let uri = Uri::parse(text).map_err(|_| not_sip())?;
        if !uri.is_sip() {
            return Err(not_sip());
        }
        let secure = uri.scheme.eq_ignore_ascii_case("sips");
        let transport = match uri.param("transport").flatten() {
            Some(_) if secure => Some(Transport::Tls),
            Some(name) => Some(
                Transport::from_name(name)
                    .ok_or_else(|| LocateError::UnsupportedTransport(name.to_owned()))?,
            ),
            None => None,
        };
        let host = match uri.host {
            sip_message::Host::Ipv4(ip) => Host::Ip(ip.into()),
            sip_message::Host::Ipv6(ip) => Host::Ip(ip.into()),
            sip_message::Host::Name(name) => Host::parse(name),
        };
        Ok(Destination {
            host,
            port: uri.port,
            secure,
            transport,
        })
    }

    /// A server written as `host[:port]` (an IPv6 address in brackets): a client's
    /// configured domain, whose transports the client names in its `probe` (see [`plan`]).
    pub fn from_host_port(text: &str) -> Destination {
        let (host, port) = split_host_port(text);
        Destination {
            host: Host::parse(host),
            port,
            secure: false,
            transport: None,
        }
    }

    /// The name a TLS server must prove it holds (RFC 5922 §4): the destination's domain,
    /// never an SRV target's name, since an SRV answer is not authenticated. None for an
    /// address.
    pub fn server_name(&self) -> Option<&str> {
        match &self.host {
            Host::Name(name) => Some(name),
            Host::Ip(_) => None,
        }
    }

    /// The one target of a destination whose host is an address (§4.2: no DNS); None for a
    /// name. `probe` as in [`plan`].
    pub fn address_target(&self, probe: &[Transport]) -> Option<Target> {
        match plan(self, probe) {
            Plan::Host(ServerHost {
                transport,
                host: Host::Ip(ip),
                port,
            }) => Some(Target {
                transport,
                addr: SocketAddr::new(ip, port),
                server_name: None,
            }),
            _ => None,
        }
    }
}

/// `text` as `host[:port]`: an IPv6 address needs brackets to carry a port; a port that is
/// not a number counts as none.
fn split_host_port(text: &str) -> (&str, Option<u16>) {
    let (host, port) = match text.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((host, tail)) => (host, tail.strip_prefix(':')),
            None => (rest, None),
        },
        None => match text.split_once(':') {
            Some((host, port)) if !port.contains(':') => (host, Some(port)),
            _ => (text, None),
        },
    };
    (host, port.and_then(|p| p.parse().ok()))
}

/// The host and port of `text` written as `host[:port]`, `default_port` when it has none.
pub fn host_port(text: &str, default_port: u16) -> (String, u16) {
    let (host, port) = split_host_port(text);
    (host.to_owned(), port.unwrap_or(default_port))
}

/// A server before its addresses are looked up: a host on a port, over a transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHost {
    pub transport: Transport,
    pub host: Host,
    pub port: u16,
}

/// Where to send: what a destination resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub transport: Transport,
    pub addr: SocketAddr,
    /// See [`Destination::server_name`].
    pub server_name: Option<String>,
}

/// The lookups a destination needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// §4.2 without SRV: an address, or a name with an explicit port, over the transport
    /// §4.1 settles on.
    Host(ServerHost),
    /// A name without a port: NAPTR and SRV first.
    Search(ServiceSearch),
}

/// What to ask DNS for `destination` (§4.1, §4.2). `probe` lists the transports the caller
/// can send on, in its order of preference, for a SIP URI that names none; §4.1 leaves that
/// order to the client.
pub fn plan(destination: &Destination, probe: &[Transport]) -> Plan {
    let named = destination
        .transport
        .or(destination.secure.then_some(Transport::Tls));
    // §4.1: UDP for a SIP URI when nothing says otherwise; a caller that cannot send over UDP
    // takes its own first choice instead.
    let fallback = named.unwrap_or(match probe.first() {
        Some(first) if !probe.contains(&Transport::Udp) => *first,
        _ => Transport::Udp,
    });
    match (&destination.host, destination.port) {
        (Host::Name(domain), None) => {
            let candidates = match named {
                Some(transport) => vec![transport],
                None if probe.is_empty() => vec![fallback],
                None => probe.to_vec(),
            };
            Plan::Search(ServiceSearch {
                naptr_pending: destination.transport.is_none(),
                pending: candidates
                    .iter()
                    .map(|transport| (*transport, srv_name(domain, *transport)))
                    .collect(),
                candidates,
                domain: domain.clone(),
                fallback,
                declined: Vec::new(),
                found: None,
            })
        }
        (host, port) => Plan::Host(ServerHost {
            transport: fallback,
            host: host.clone(),
            port: port.unwrap_or(fallback.default_port()),
        }),
    }
}

/// A DNS question a [`ServiceSearch`] needs answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// The domain's NAPTR records.
    Naptr(String),
    /// The SRV records of a name, for the servers of one transport.
    Srv(Transport, String),
}

/// §4.1's queries for a domain. When the URI names no transport, its NAPTR records first:
/// those of transports the caller can send on (only `SIPS+D2T` for a SIPS URI) give the
/// SRV names to ask, in their order. Without such records, one SRV name per candidate
/// transport, in order. The first SRV name that answers with a server settles it; without
/// any, §4.2's fallback: the domain's own addresses on the fallback transport's default
/// port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSearch {
    domain: String,
    naptr_pending: bool,
    /// The transports the destination may use, in the caller's order.
    candidates: Vec<Transport>,
    /// SRV names not asked about yet, in order.
    pending: VecDeque<(Transport, String)>,
    fallback: Transport,
    /// Transports whose only SRV answer was `.`: decidedly not offered (RFC 2782).
    declined: Vec<Transport>,
    found: Option<Vec<ServerHost>>,
}

impl ServiceSearch {
    /// The next question; None once a transport has servers or every SRV name has been
    /// asked about.
    pub fn next_query(&self) -> Option<Query> {
        if self.found.is_some() {
            return None;
        }
        if self.naptr_pending {
            return Some(Query::Naptr(self.domain.clone()));
        }
        let (transport, name) = self.pending.front()?;
        Some(Query::Srv(*transport, name.clone()))
    }

    /// The domain's NAPTR records (none for NXDOMAIN, an empty answer or a failure to
    /// answer: the SRV queries then go ahead as if there were none). Only terminal records
    /// pointing at SRV names (flag `s`, RFC 3263 §4.1) of a candidate transport count; they
    /// are asked about in order, then preference (RFC 3403 §4.1).
    pub fn on_naptr(&mut self, records: Vec<Naptr>) {
        self.naptr_pending = false;
        let mut usable: Vec<(u16, u16, Transport, String)> = records
            .into_iter()
            .filter(|record| record.flags.eq_ignore_ascii_case("s"))
            .filter_map(|record| {
                let transport = naptr_transport(&record.services)?;
                let name = record
                    .replacement
                    .trim_end_matches('.')
                    .to_ascii_lowercase();
                (self.candidates.contains(&transport) && !name.is_empty()).then_some((
                    record.order,
                    record.preference,
                    transport,
                    name,
                ))
            })
            .collect();
        if usable.is_empty() {
            return;
        }
        usable.sort_by_key(|(order, preference, ..)| (*order, *preference));
        self.pending = usable
            .into_iter()
            .take(MAX_TARGETS)
            .map(|(_, _, transport, name)| (transport, name))
            .collect();
    }

    /// The answer about `transport`'s SRV name: its records, none for NXDOMAIN or an empty
    /// answer.
    pub fn on_answer(
        &mut self,
        transport: Transport,
        records: Vec<Srv>,
        draw: &mut impl WeightDraw,
    ) {
        if let Some(asked) = self.pending.iter().position(|(t, _)| *t == transport) {
            self.pending.remove(asked);
        }
        if records.is_empty() || self.found.is_some() {
            return;
        }
        let servers: Vec<ServerHost> = order_srv(records, draw)
            .into_iter()
            .filter(|record| record.target != ".")
            .take(MAX_TARGETS)
            .map(|record| ServerHost {
                transport,
                host: Host::Name(record.target),
                port: record.port,
            })
            .collect();
        if servers.is_empty() {
            self.declined.push(transport);
        } else {
            self.found = Some(servers);
        }
    }

    /// The servers found, in the order to try them.
    pub fn finish(self) -> Result<Vec<ServerHost>, LocateError> {
        if let Some(servers) = self.found {
            return Ok(servers);
        }
        if self.declined.contains(&self.fallback) {
            return Err(LocateError::NoService(self.domain));
        }
        Ok(vec![ServerHost {
            transport: self.fallback,
            port: self.fallback.default_port(),
            host: Host::Name(self.domain),
        }])
    }
}

/// The transport of a NAPTR service field RFC 3263 §4.1 defines (case-insensitive, RFC 3403
/// §4.1); None for the others (SCTP, other applications).
fn naptr_transport(services: &str) -> Option<Transport> {
    [
        ("SIP+D2U", Transport::Udp),
        ("SIP+D2T", Transport::Tcp),
        ("SIPS+D2T", Transport::Tls),
    ]
    .into_iter()
    .find(|(service, _)| services.eq_ignore_ascii_case(service))
    .map(|(_, transport)| transport)
}

/// One NAPTR answer (RFC 3403 §4.1): the fields RFC 3263 looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naptr {
    pub order: u16,
    pub preference: u16,
    pub flags: String,
    pub services: String,
    /// The name to look up next, here an SRV name.
    pub replacement: String,
}

/// The targets `found` makes (each server's addresses, in order), at most [`MAX_TARGETS`];
/// `server_name` as [`Destination::server_name`].
pub fn targets(found: Vec<(ServerHost, Vec<IpAddr>)>, server_name: Option<&str>) -> Vec<Target> {
    found
        .into_iter()
        .flat_map(|(server, ips)| {
            ips.into_iter().map(move |ip| Target {
                transport: server.transport,
                addr: SocketAddr::new(ip, server.port),
                server_name: server_name.map(str::to_owned),
            })
        })
        .take(MAX_TARGETS)
        .collect()
}

/// One SRV answer (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// Without the trailing dot; `.` alone means "no such service here".
    pub target: String,
}

/// The random numbers of RFC 2782's weighted pick, each uniform in `0..=total`. Every
/// [`Rng`] is one; a test scripts them.
pub trait WeightDraw {
    fn draw(&mut self, total: u32) -> u32;
}

impl<R: Rng + ?Sized> WeightDraw for R {
    fn draw(&mut self, total: u32) -> u32 {
        self.gen_range(0..=total)
    }
}

/// RFC 2782 order: ascending priority; within a priority, repeatedly the record whose
/// running weight sum first reaches a number drawn from 0 to the sum of the weights left.
/// Zero weights go first, so that they win only a draw of 0 while others remain.
pub fn order_srv(mut records: Vec<Srv>, draw: &mut impl WeightDraw) -> Vec<Srv> {
    records.sort_by_key(|r| (r.priority, r.weight != 0));
    let mut ordered = Vec::with_capacity(records.len());
    while !records.is_empty() {
        let priority = records[0].priority;
        let end = records
            .iter()
            .position(|r| r.priority != priority)
            .unwrap_or(records.len());
        let mut group: Vec<Srv> = records.drain(..end).collect();
        while !group.is_empty() {
            let total: u32 = group.iter().map(|r| u32::from(r.weight)).sum();
            let pick = draw.draw(total);
            let mut running = 0;
            let index = group
                .iter()
                .position(|r| {
                    running += u32::from(r.weight);
                    running >= pick
                })
                .unwrap_or(0);
            ordered.push(group.remove(index));
        }
    }
    ordered
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Draws as scripted, in order (clamped to the total, as a real draw would be).
    struct Scripted(VecDeque<u32>);

    impl WeightDraw for Scripted {
        fn draw(&mut self, total: u32) -> u32 {
            self.0.pop_front().expect("a scripted draw").min(total)
        }
    }

    fn scripted(draws: &[u32]) -> Scripted {
        Scripted(draws.iter().copied().collect())
    }

    fn srv(priority: u16, weight: u16, target: &str) -> Srv {
        Srv {
            priority,
            weight,
            port: 5061,
            target: target.into(),
        }
    }

    fn targets_of(records: &[Srv]) -> Vec<&str> {
        records.iter().map(|r| r.target.as_str()).collect()
    }

    fn destination(uri: &str) -> Destination {
        Destination::from_uri(uri).expect("a SIP URI")
    }

    fn search(uri: &str, probe: &[Transport]) -> ServiceSearch {
        match plan(&destination(uri), probe) {
            Plan::Search(search) => search,
            other => panic!("{uri}: a search expected, got {other:?}"),
        }
    }

    /// The search once the domain has answered that it has no NAPTR records.
    fn without_naptr(uri: &str, probe: &[Transport]) -> ServiceSearch {
        let mut search = search(uri, probe);
        assert_eq!(
            search.next_query(),
            Some(Query::Naptr("example.com".into())),
            "{uri}: NAPTR first"
        );
        search.on_naptr(Vec::new());
        search
    }

    fn srv_query(transport: Transport, name: &str) -> Option<Query> {
        Some(Query::Srv(transport, name.into()))
    }

    fn naptr(order: u16, preference: u16, services: &str, replacement: &str) -> Naptr {
        Naptr {
            order,
            preference,
            flags: "s".into(),
            services: services.into(),
            replacement: replacement.into(),
        }
    }

    fn server(transport: Transport, host: &str, port: u16) -> ServerHost {
        ServerHost {
            transport,
            host: Host::parse(host),
            port,
        }
    }

    const UDP_TCP: &[Transport] = &[Transport::Udp, Transport::Tcp];

    #[test]
    fn names_the_rfc3263_services_and_default_ports() {
        assert_eq!(
            srv_name("example.com", Transport::Udp),
            "_sip._udp.example.com"
        );
        assert_eq!(
            srv_name("example.com", Transport::Tcp),
            "_sip._tcp.example.com"
        );
        assert_eq!(
            srv_name("example.com", Transport::Tls),
            "_sips._tcp.example.com"
        );
        assert_eq!(Transport::Udp.default_port(), 5060);
        assert_eq!(Transport::Tcp.default_port(), 5060);
        assert_eq!(Transport::Tls.default_port(), 5061);
        assert_eq!(Transport::from_name("TCP"), Some(Transport::Tcp));
        assert_eq!(Transport::from_name("sctp"), None);
    }

    #[test]
    fn host_and_port_come_apart_with_ipv6_in_brackets() {
        assert_eq!(
            host_port("example.com:5070", 5061),
            ("example.com".into(), 5070)
        );
        assert_eq!(host_port("192.0.2.1", 5060), ("192.0.2.1".into(), 5060));
        assert_eq!(
            host_port("[2001:db8::1]:5071", 5061),
            ("2001:db8::1".into(), 5071)
        );
        assert_eq!(
            host_port("[2001:db8::1]", 5061),
            ("2001:db8::1".into(), 5061)
        );
        assert_eq!(host_port("2001:db8::1", 5060), ("2001:db8::1".into(), 5060));
        assert_eq!(
            host_port("example.com:sip", 5060),
            ("example.com".into(), 5060)
        );
    }

    #[test]
    fn lower_priorities_come_first_whatever_the_draws() {
        let records = vec![
            srv(20, 0, "backup"),
            srv(10, 0, "primary"),
            srv(30, 5, "last"),
        ];
        let ordered = order_srv(records, &mut scripted(&[0, 0, 5]));
        assert_eq!(targets_of(&ordered), ["primary", "backup", "last"]);
    }

    #[test]
    fn the_draw_picks_the_first_record_whose_running_weight_reaches_it() {
        let records = vec![srv(1, 10, "a"), srv(1, 30, "b"), srv(1, 60, "c")];
        // Running sums 10, 40, 100: 35 falls to b; then a and c sum 10, 70: 11 falls to c.
        let ordered = order_srv(records.clone(), &mut scripted(&[35, 11, 0]));
        assert_eq!(targets_of(&ordered), ["b", "c", "a"]);
        // A draw equal to a running sum picks that record.
        let ordered = order_srv(records.clone(), &mut scripted(&[10, 30, 0]));
        assert_eq!(targets_of(&ordered), ["a", "b", "c"]);
        let ordered = order_srv(records, &mut scripted(&[100, 0, 0]));
        assert_eq!(targets_of(&ordered), ["c", "a", "b"]);
    }

    #[test]
    fn a_zero_weight_wins_only_a_draw_of_zero_while_others_remain() {
        let records = vec![srv(1, 50, "fifty"), srv(1, 0, "zero")];
        let ordered = order_srv(records.clone(), &mut scripted(&[0, 0]));
        assert_eq!(targets_of(&ordered), ["zero", "fifty"]);
        let ordered = order_srv(records, &mut scripted(&[1, 0]));
        assert_eq!(targets_of(&ordered), ["fifty", "zero"]);
        // All weights zero: every draw is 0 and the records keep their order.
        let ordered = order_srv(vec![srv(1, 0, "x"), srv(1, 0, "y")], &mut scripted(&[0, 0]));
        assert_eq!(targets_of(&ordered), ["x", "y"]);
    }

    #[test]
    fn weights_share_the_picks_in_proportion() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let records = vec![
            srv(20, 0, "backup"),
            srv(10, 90, "heavy"),
            srv(10, 10, "light"),
        ];
        let mut heavy_first = 0;
        for _ in 0..1000 {
            let ordered = order_srv(records.clone(), &mut rng);
            let targets = targets_of(&ordered);
            assert_eq!(targets.len(), 3);
            assert_eq!(targets[2], "backup", "priority 20 after both of 10");
            if targets[0] == "heavy" {
                heavy_first += 1;
            }
        }
        // Weight 90 of 100: about 900 of 1000 (plus the pick of 0, which takes the first).
        assert!((850..=950).contains(&heavy_first), "{heavy_first}");
        let records = vec![srv(1, 0, "zero"), srv(1, 50, "fifty")];
        let zero_first = (0..1000)
            .filter(|_| order_srv(records.clone(), &mut rng)[0].target == "zero")
            .count();
        // Only a draw of exactly 0 out of 0..=50 selects it.
        assert!(zero_first < 60, "{zero_first}");
    }

    #[test]
    fn an_address_or_an_explicit_port_skips_srv() {
        let numeric = destination("sip:192.0.2.1");
        assert_eq!(
            plan(&numeric, UDP_TCP),
            Plan::Host(server(Transport::Udp, "192.0.2.1", 5060))
        );
        assert_eq!(
            numeric.address_target(UDP_TCP),
            Some(Target {
                transport: Transport::Udp,
                addr: "192.0.2.1:5060".parse().unwrap(),
                server_name: None,
            })
        );
        assert_eq!(
            plan(&destination("sips:[2001:db8::1]"), UDP_TCP),
            Plan::Host(server(Transport::Tls, "2001:db8::1", 5061))
        );
        assert_eq!(
            plan(
                &destination("sip:bob@Example.COM:5070;transport=tcp"),
                UDP_TCP
            ),
            Plan::Host(server(Transport::Tcp, "example.com", 5070))
        );
        let named = destination("sip:example.com:5070");
        assert_eq!(
            plan(&named, UDP_TCP),
            Plan::Host(server(Transport::Udp, "example.com", 5070))
        );
        assert_eq!(named.address_target(UDP_TCP), None, "a name needs DNS");
        assert_eq!(named.server_name(), Some("example.com"));
        assert_eq!(numeric.server_name(), None);
    }

    #[test]
    fn without_a_transport_or_naptr_records_the_supported_ones_are_asked_in_order() {
        let mut search = without_naptr("sip:bob@example.com", UDP_TCP);
        assert_eq!(
            search.next_query(),
            srv_query(Transport::Udp, "_sip._udp.example.com")
        );
        search.on_answer(Transport::Udp, Vec::new(), &mut scripted(&[]));
        assert_eq!(
            search.next_query(),
            srv_query(Transport::Tcp, "_sip._tcp.example.com")
        );
        let records = vec![Srv {
            port: 5080,
            ..srv(0, 0, "sip.example.com")
        }];
        search.on_answer(Transport::Tcp, records, &mut scripted(&[0]));
        assert_eq!(search.next_query(), None);
        assert_eq!(
            search.finish(),
            Ok(vec![server(Transport::Tcp, "sip.example.com", 5080)])
        );
    }

    #[test]
    fn the_first_transport_with_servers_wins() {
        let mut search = without_naptr("sip:example.com", UDP_TCP);
        search.on_answer(
            Transport::Udp,
            vec![srv(0, 0, "udp.example.com")],
            &mut scripted(&[0]),
        );
        assert_eq!(search.next_query(), None, "TCP is not asked about");
        assert_eq!(
            search.finish(),
            Ok(vec![server(Transport::Udp, "udp.example.com", 5061)])
        );
    }

    #[test]
    fn a_named_transport_or_sips_asks_only_its_own_service() {
        let only = |uri: &str| search(uri, UDP_TCP).next_query();
        assert_eq!(
            without_naptr("sips:example.com", UDP_TCP).next_query(),
            srv_query(Transport::Tls, "_sips._tcp.example.com")
        );
        assert_eq!(
            only("sip:example.com;transport=tls"),
            srv_query(Transport::Tls, "_sips._tcp.example.com"),
            "a named transport: no NAPTR"
        );
        assert_eq!(
            only("sips:example.com;transport=tcp"),
            srv_query(Transport::Tls, "_sips._tcp.example.com")
        );
        let mut tcp = search("sip:example.com;transport=TCP", UDP_TCP);
        assert_eq!(
            tcp.next_query(),
            srv_query(Transport::Tcp, "_sip._tcp.example.com")
        );
        tcp.on_answer(Transport::Tcp, Vec::new(), &mut scripted(&[]));
        assert_eq!(tcp.next_query(), None);
        assert_eq!(
            tcp.finish(),
            Ok(vec![server(Transport::Tcp, "example.com", 5060)])
        );
        assert_eq!(
            Destination::from_uri("sip:example.com;transport=sctp"),
            Err(LocateError::UnsupportedTransport("sctp".into()))
        );
        assert!(matches!(
            Destination::from_uri("tel:+15551234"),
            Err(LocateError::NotSip(_))
        ));
    }

    #[test]
    fn without_srv_records_the_domain_is_used_on_the_default_port() {
        let exhaust = |mut search: ServiceSearch| {
            while let Some(query) = search.next_query() {
                match query {
                    Query::Naptr(_) => search.on_naptr(Vec::new()),
                    Query::Srv(transport, _) => {
                        search.on_answer(transport, Vec::new(), &mut scripted(&[]))
                    }
                }
            }
            search.finish()
        };
        assert_eq!(
            exhaust(search("sip:example.com", UDP_TCP)),
            Ok(vec![server(Transport::Udp, "example.com", 5060)]),
            "§4.1: UDP for a SIP URI"
        );
        assert_eq!(
            exhaust(search("sips:example.com", UDP_TCP)),
            Ok(vec![server(Transport::Tls, "example.com", 5061)]),
            "§4.1: TLS for a SIPS URI"
        );
        assert_eq!(
            exhaust(search("sip:example.com", &[Transport::Tcp])),
            Ok(vec![server(Transport::Tcp, "example.com", 5060)]),
            "a caller without UDP"
        );
        let client = Destination::from_host_port("example.com");
        let Plan::Search(search) = plan(&client, &[Transport::Tls]) else {
            panic!("a domain without a port needs SRV");
        };
        assert_eq!(
            exhaust(search),
            Ok(vec![server(Transport::Tls, "example.com", 5061)])
        );
    }

    #[test]
    fn a_dot_target_means_the_service_is_not_offered() {
        let mut declined = without_naptr("sip:example.com", UDP_TCP);
        declined.on_answer(Transport::Udp, vec![srv(0, 0, ".")], &mut scripted(&[0]));
        declined.on_answer(Transport::Tcp, Vec::new(), &mut scripted(&[]));
        let error = declined.finish().unwrap_err();
        assert_eq!(error, LocateError::NoService("example.com".into()));
        assert!(error.is_negative_answer());

        let mut elsewhere = without_naptr("sip:example.com", UDP_TCP);
        elsewhere.on_answer(Transport::Udp, vec![srv(0, 0, ".")], &mut scripted(&[0]));
        assert_eq!(
            elsewhere.next_query(),
            srv_query(Transport::Tcp, "_sip._tcp.example.com")
        );
        let records = vec![srv(0, 0, "."), srv(1, 0, "tcp.example.com")];
        elsewhere.on_answer(Transport::Tcp, records, &mut scripted(&[0, 0]));
        assert_eq!(
            elsewhere.finish(),
            Ok(vec![server(Transport::Tcp, "tcp.example.com", 5061)])
        );
    }

    #[test]
    fn servers_and_targets_are_capped() {
        let mut search = without_naptr("sip:example.com", UDP_TCP);
        let records: Vec<Srv> = (0..40).map(|i| srv(i, 0, &format!("s{i}"))).collect();
        search.on_answer(Transport::Udp, records, &mut scripted(&[0; 40]));
        let servers = search.finish().expect("servers");
        assert_eq!(servers.len(), MAX_TARGETS);
        assert_eq!(servers[0].host, Host::Name("s0".into()));
        let ips: Vec<IpAddr> = (0..10).map(|i| IpAddr::from([192, 0, 2, i])).collect();
        let found: Vec<(ServerHost, Vec<IpAddr>)> =
            servers.into_iter().map(|s| (s, ips.clone())).collect();
        let made = targets(found, Some("example.com"));
        assert_eq!(made.len(), MAX_TARGETS);
        assert_eq!(made[0].addr, "192.0.2.0:5061".parse().unwrap());
        assert_eq!(
            made[10].addr,
            "192.0.2.0:5061".parse().unwrap(),
            "s1's first"
        );
        assert!(made
            .iter()
            .all(|t| t.server_name.as_deref() == Some("example.com")));
    }

    #[test]
    fn naptr_records_of_usable_transports_name_the_srv_names_in_order_then_preference() {
        let mut naptr_led = search("sip:bob@Example.com", UDP_TCP);
        assert_eq!(
            naptr_led.next_query(),
            Some(Query::Naptr("example.com".into()))
        );
        naptr_led.on_naptr(vec![
            naptr(20, 10, "SIP+D2U", "_sip._udp.example.com."),
            naptr(10, 20, "SIP+D2T", "_sip._tcp.Servers.example.com."),
            naptr(10, 10, "SIPS+D2T", "_sips._tcp.example.com."),
            naptr(5, 10, "SIP+D2S", "_sip._sctp.example.com."),
            naptr(5, 10, "E2U+sip", "_sip._tcp.enum.example.com."),
            Naptr {
                flags: "a".into(),
                ..naptr(1, 1, "SIP+D2T", "sip.example.com.")
            },
        ]);
        assert_eq!(
            naptr_led.next_query(),
            srv_query(Transport::Tcp, "_sip._tcp.servers.example.com"),
            "TLS is preferred, but this caller cannot send over it; SCTP, ENUM and \
             non-terminal records are no SIP transports of ours"
        );
        naptr_led.on_answer(Transport::Tcp, Vec::new(), &mut scripted(&[]));
        assert_eq!(
            naptr_led.next_query(),
            srv_query(Transport::Udp, "_sip._udp.example.com")
        );
        naptr_led.on_answer(
            Transport::Udp,
            vec![srv(0, 0, "udp.example.com")],
            &mut scripted(&[0]),
        );
        assert_eq!(naptr_led.next_query(), None);
        assert_eq!(
            naptr_led.finish(),
            Ok(vec![server(Transport::Udp, "udp.example.com", 5061)])
        );

        let mut with_tls = search("sip:example.com", &[Transport::Tls, Transport::Tcp]);
        with_tls.on_naptr(vec![
            naptr(10, 20, "sip+d2t", "_sip._tcp.example.com"),
            naptr(10, 10, "SIPS+D2T", "_sips._tcp.example.com"),
        ]);
        assert_eq!(
            with_tls.next_query(),
            srv_query(Transport::Tls, "_sips._tcp.example.com"),
            "§4.1: a client that can do TLS keeps SIPS records for a SIP URI"
        );
    }

    #[test]
    fn a_sips_uri_keeps_only_sips_naptr_records() {
        let mut secure = search("sips:example.com", UDP_TCP);
        secure.on_naptr(vec![
            naptr(10, 10, "SIP+D2T", "_sip._tcp.example.com"),
            naptr(20, 10, "SIPS+D2T", "_sips._tcp.tls.example.com"),
        ]);
        assert_eq!(
            secure.next_query(),
            srv_query(Transport::Tls, "_sips._tcp.tls.example.com")
        );
    }

    #[test]
    fn without_usable_naptr_records_each_transport_is_asked_about() {
        let mut search = search("sip:example.com", UDP_TCP);
        search.on_naptr(vec![naptr(10, 10, "SIPS+D2T", "_sips._tcp.example.com")]);
        assert_eq!(
            search.next_query(),
            srv_query(Transport::Udp, "_sip._udp.example.com"),
            "only TLS offered there, which this caller cannot use: as if no NAPTR"
        );
        let client = Destination::from_host_port("example.com");
        let Plan::Search(mut tls_client) = plan(&client, &[Transport::Tls]) else {
            panic!("a domain without a port needs a search");
        };
        tls_client.on_naptr(vec![
            naptr(10, 10, "SIP+D2T", "_sip._tcp.example.com"),
            naptr(20, 10, "SIPS+D2T", "_sips._tcp.sip.example.com"),
        ]);
        assert_eq!(
            tls_client.next_query(),
            srv_query(Transport::Tls, "_sips._tcp.sip.example.com"),
            "a client configured for TLS follows the domain's SIPS record"
        );
    }
}
