//! Server discovery when the account names no server (blink-compat §2.1, §6, §8 items 1–2):
//! the SIP domain is resolved as RFC 3263 §4.2 says, without NAPTR (which Blink's lookup also
//! treats as optional): SRV `_sips._tcp.<domain>` for TLS or `_sip._tcp.<domain>` for TCP,
//! ordered by priority and weight (RFC 2782), else the domain's A/AAAA records on the
//! transport's default port. The XCAP root comes from the TXT records of `xcap.<domain>`: the
//! `http(s)://` answers, one picked at random, as the SDK does.
//!
//! Record selection ([`sip_targets`], [`order_srv`], [`xcap_roots`]) is sans-IO; [`Dns`] only
//! asks the system's resolver, and leaves A/AAAA to the connect call.

use std::net::IpAddr;

use hickory_resolver::TokioResolver;
use rand::seq::SliceRandom;
use rand::Rng;

use crate::config::Transport;

/// One SRV answer (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// Without the trailing dot; `.` alone means "no such service here".
    pub target: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("DNS resolver: {0}")]
    Resolver(String),
    #[error("DNS lookup of {0} failed: {1}")]
    Lookup(String, String),
    #[error("{0} says it offers no SIP service over this transport")]
    NoService(String),
    #[error("no http(s) XCAP root in the TXT records of {0}")]
    NoXcapRoot(String),
}

/// The SRV name of the SIP service for `transport` (RFC 3263 §4.1: `_sips._tcp` for TLS).
pub fn srv_name(domain: &str, transport: Transport) -> String {
    match transport {
        Transport::Tls => format!("_sips._tcp.{domain}"),
        Transport::Tcp => format!("_sip._tcp.{domain}"),
    }
}

/// A numeric address or an explicit port is used as it is (RFC 3263 §4.2).
pub fn needs_srv(domain: &str) -> bool {
    let host = domain.trim_start_matches('[').trim_end_matches(']');
    host.parse::<IpAddr>().is_err() && !domain.contains(':')
}

/// The host and port of a domain written as `host[:port]`, IPv6 literals in brackets.
pub fn host_port(domain: &str, default_port: u16) -> (String, u16) {
    let (host, port) = match domain.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((host, tail)) => (host, tail.strip_prefix(':')),
            None => (rest, None),
        },
        None if domain.matches(':').count() == 1 => {
            let (host, port) = domain.split_once(':').unwrap_or((domain, ""));
            (host, Some(port))
        }
        None => (domain, None),
    };
    let port = port.and_then(|p| p.parse().ok()).unwrap_or(default_port);
    (host.to_owned(), port)
}

/// RFC 2782 order: ascending priority; within a priority, repeatedly pick a record with
/// probability proportional to its weight (zero weights first, so they are rarely picked
/// while others remain).
pub fn order_srv(mut records: Vec<Srv>, rng: &mut impl Rng) -> Vec<Srv> {
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
            let pick = rng.gen_range(0..=total);
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

/// Where to connect for `domain`, in order. `srv` is the answer to [`srv_name`], empty when
/// there was none; then the domain itself is used on the transport's default port.
pub fn sip_targets(
    domain: &str,
    transport: Transport,
    srv: Vec<Srv>,
    rng: &mut impl Rng,
) -> Result<Vec<(String, u16)>, DiscoveryError> {
    if srv.is_empty() {
        return Ok(vec![(domain.to_owned(), transport.default_port())]);
    }
    let targets: Vec<(String, u16)> = order_srv(srv, rng)
        .into_iter()
        .filter(|r| r.target != ".")
        .map(|r| (r.target, r.port))
        .collect();
    if targets.is_empty() {
        return Err(DiscoveryError::NoService(domain.to_owned()));
    }
    Ok(targets)
}

/// The XCAP roots among TXT character strings (blink-compat §2.1).
pub fn xcap_roots<'a>(strings: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    strings
        .into_iter()
        .map(str::trim)
        .filter(|s| s.starts_with("http://") || s.starts_with("https://"))
        .map(str::to_owned)
        .collect()
}

/// The system's DNS resolver (`/etc/resolv.conf`).
pub struct Dns(TokioResolver);

impl Dns {
    pub fn system() -> Result<Dns, DiscoveryError> {
        let builder =
            TokioResolver::builder_tokio().map_err(|e| DiscoveryError::Resolver(e.to_string()))?;
        Ok(Dns(builder.build()))
    }

    /// The SIP servers of `domain` for `transport`, in the order to try them.
    pub async fn sip_targets(
        &self,
        domain: &str,
        transport: Transport,
    ) -> Result<Vec<(String, u16)>, DiscoveryError> {
        if !needs_srv(domain) {
            return Ok(vec![host_port(domain, transport.default_port())]);
        }
        let name = srv_name(domain, transport);
        let records = match self.0.srv_lookup(name.as_str()).await {
            Ok(lookup) => lookup
                .iter()
                .map(|r| {
                    let target = r.target().to_utf8();
                    Srv {
                        priority: r.priority(),
                        weight: r.weight(),
                        port: r.port(),
                        // The root name stays ".", the others lose the final dot.
                        target: match target.strip_suffix('.') {
                            Some(host) if !host.is_empty() => host.to_owned(),
                            _ => target,
                        },
                    }
                })
                .collect(),
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => Vec::new(),
            Err(e) => return Err(DiscoveryError::Lookup(name, e.to_string())),
        };
        sip_targets(domain, transport, records, &mut rand::thread_rng())
    }

    /// One XCAP root announced for `domain`, picked at random.
    pub async fn xcap_root(&self, domain: &str) -> Result<String, DiscoveryError> {
        let name = format!("xcap.{domain}");
        let lookup = match self.0.txt_lookup(name.as_str()).await {
            Ok(lookup) => lookup,
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => {
                return Err(DiscoveryError::NoXcapRoot(name))
            }
            Err(e) => return Err(DiscoveryError::Lookup(name, e.to_string())),
        };
        let strings: Vec<String> = lookup
            .iter()
            .flat_map(|txt| txt.txt_data().iter())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        xcap_roots(strings.iter().map(String::as_str))
            .choose(&mut rand::thread_rng())
            .cloned()
            .ok_or(DiscoveryError::NoXcapRoot(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig};
    use hickory_resolver::name_server::TokioConnectionProvider;
    use hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
    use hickory_resolver::proto::rr::rdata::{SRV, TXT};
    use hickory_resolver::proto::rr::{RData, Record};
    use hickory_resolver::Name;
    use rand::SeedableRng;
    use std::net::SocketAddr;

    /// A name server on loopback answering from `records`, NXDOMAIN for anything else.
    async fn name_server(records: Vec<Record>) -> SocketAddr {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let answers: Vec<Record> = records
                    .iter()
                    .filter(|r| {
                        query
                            .queries()
                            .iter()
                            .any(|q| q.name() == r.name() && q.query_type() == r.record_type())
                    })
                    .cloned()
                    .collect();
                let mut response = Message::new();
                response
                    .set_id(query.id())
                    .set_message_type(MessageType::Response)
                    .set_recursion_desired(true)
                    .set_recursion_available(true)
                    .add_queries(query.queries().to_vec());
                if answers.is_empty() {
                    response.set_response_code(ResponseCode::NXDomain);
                }
                response.add_answers(answers);
                let _ = socket.send_to(&response.to_vec().unwrap(), from).await;
            }
        });
        addr
    }

    fn dns_at(addr: SocketAddr) -> Dns {
        let servers = NameServerConfigGroup::from_ips_clear(&[addr.ip()], addr.port(), true);
        let config = ResolverConfig::from_parts(None, vec![], servers);
        Dns(TokioResolver::builder_with_config(config, TokioConnectionProvider::default()).build())
    }

    fn record(name: &str, rdata: RData) -> Record {
        Record::from_rdata(Name::from_ascii(name).unwrap(), 60, rdata)
    }

    #[tokio::test]
    async fn looks_up_srv_and_txt_records() {
        let srv = |priority, port, target: &str| {
            RData::SRV(SRV::new(
                priority,
                10,
                port,
                Name::from_ascii(target).unwrap(),
            ))
        };
        let server = name_server(vec![
            record(
                "_sips._tcp.example.com.",
                srv(20, 5062, "backup.example.com."),
            ),
            record("_sips._tcp.example.com.", srv(10, 5061, "sip.example.com.")),
            record(
                "xcap.example.com.",
                RData::TXT(TXT::new(vec![
                    "v=spf1".into(),
                    "https://xcap.example.com/xcap-root".into(),
                ])),
            ),
        ])
        .await;
        let dns = dns_at(server);
        assert_eq!(
            dns.sip_targets("example.com", Transport::Tls)
                .await
                .unwrap(),
            [
                ("sip.example.com".to_owned(), 5061),
                ("backup.example.com".to_owned(), 5062)
            ]
        );
        assert_eq!(
            dns.sip_targets("example.com", Transport::Tcp)
                .await
                .unwrap(),
            [("example.com".to_owned(), 5060)],
            "no _sip._tcp records: the domain itself"
        );
        assert_eq!(
            dns.sip_targets("127.0.0.1:5070", Transport::Tcp)
                .await
                .unwrap(),
            [("127.0.0.1".to_owned(), 5070)],
            "no lookup for an address"
        );
        assert_eq!(
            dns.xcap_root("example.com").await.unwrap(),
            "https://xcap.example.com/xcap-root"
        );
        assert!(matches!(
            dns.xcap_root("example.org").await,
            Err(DiscoveryError::NoXcapRoot(name)) if name == "xcap.example.org"
        ));
    }

    fn srv(priority: u16, weight: u16, target: &str) -> Srv {
        Srv {
            priority,
            weight,
            port: 5061,
            target: target.into(),
        }
    }

    #[test]
    fn names_the_rfc3263_services() {
        assert_eq!(
            srv_name("example.com", Transport::Tls),
            "_sips._tcp.example.com"
        );
        assert_eq!(
            srv_name("example.com", Transport::Tcp),
            "_sip._tcp.example.com"
        );
        assert!(needs_srv("example.com"));
        assert!(!needs_srv("192.0.2.1"));
        assert!(!needs_srv("[2001:db8::1]"));
        assert!(!needs_srv("example.com:5070"));
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
    }

    #[test]
    fn lower_priorities_come_first_and_weights_share_the_rest() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let records = vec![
            srv(20, 0, "backup"),
            srv(10, 90, "heavy"),
            srv(10, 10, "light"),
        ];
        let mut heavy_first = 0;
        for _ in 0..1000 {
            let ordered = order_srv(records.clone(), &mut rng);
            let targets: Vec<&str> = ordered.iter().map(|r| r.target.as_str()).collect();
            assert_eq!(targets.len(), 3);
            assert_eq!(targets[2], "backup", "priority 20 after both of 10");
            if targets[0] == "heavy" {
                heavy_first += 1;
            }
        }
        // Weight 90 of 100: about 900 of 1000 (plus the pick of 0, which takes the first).
        assert!((850..=950).contains(&heavy_first), "{heavy_first}");
    }

    #[test]
    fn zero_weights_are_picked_only_rarely_while_others_remain() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let records = vec![srv(1, 0, "zero"), srv(1, 50, "fifty")];
        let zero_first = (0..1000)
            .filter(|_| order_srv(records.clone(), &mut rng)[0].target == "zero")
            .count();
        // Only a pick of exactly 0 out of 0..=50 selects it.
        assert!(zero_first < 60, "{zero_first}");
    }

    #[test]
    fn without_srv_the_domain_is_used_on_the_default_port() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        assert_eq!(
            sip_targets("example.com", Transport::Tls, vec![], &mut rng).unwrap(),
            [("example.com".to_owned(), 5061)]
        );
        assert_eq!(
            sip_targets("example.com", Transport::Tcp, vec![], &mut rng).unwrap(),
            [("example.com".to_owned(), 5060)]
        );
        let records = vec![Srv {
            port: 5071,
            ..srv(0, 0, "sip1.example.com")
        }];
        assert_eq!(
            sip_targets("example.com", Transport::Tls, records, &mut rng).unwrap(),
            [("sip1.example.com".to_owned(), 5071)]
        );
        assert!(matches!(
            sip_targets(
                "example.com",
                Transport::Tls,
                vec![srv(0, 0, ".")],
                &mut rng
            ),
            Err(DiscoveryError::NoService(_))
        ));
    }

    #[test]
    fn xcap_roots_are_the_http_answers() {
        let strings = [
            "v=spf1 -all",
            " https://xcap.example.com/xcap-root ",
            "http://xcap2.example.com/",
            "ftp://files.example.com/",
        ];
        assert_eq!(
            xcap_roots(strings),
            [
                "https://xcap.example.com/xcap-root",
                "http://xcap2.example.com/"
            ]
        );
        assert!(xcap_roots(["nothing"]).is_empty());
    }
}
