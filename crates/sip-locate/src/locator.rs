//! The DNS side of [`crate::select`] (RFC 3263 §4.1, §4.2): NAPTR, SRV and A/AAAA queries through
//! hickory-resolver, all those of one destination under one deadline. The name servers are
//! the system's (`/etc/resolv.conf`, and `/etc/hosts` for addresses) unless some are given.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfig, NameServerConfigGroup, ResolverConfig,
};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::rdata::SRV;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::proto::{ProtoError, ProtoErrorKind};
use hickory_resolver::{ResolveError, ResolverBuilder, TokioResolver};
use tracing::{debug, warn};

use crate::select::{
    plan, targets, Destination, Host, Naptr, Plan, Query, ServerHost, Srv, Target, Transport,
    MAX_TARGETS,
};
use crate::LocateError;

/// Asks DNS where a destination's SIP servers are. Clones share one resolver and its cache.
#[derive(Clone)]
pub struct Locator {
    resolver: TokioResolver,
    timeout: Duration,
}

impl Locator {
    /// A locator asking `name_servers` (UDP, and TCP for answers too long for UDP), or the
    /// system's when there are none; `timeout` bounds all the lookups for one destination.
    pub fn new(name_servers: &[SocketAddr], timeout: Duration) -> Locator {
        let mut builder = if name_servers.is_empty() {
            system_builder()
        } else {
            let mut group = NameServerConfigGroup::new();
            for addr in name_servers {
                group.push(NameServerConfig::new(*addr, Protocol::Udp));
                group.push(NameServerConfig::new(*addr, Protocol::Tcp));
            }
            builder_for(group)
        };
        // Both families: which one the caller can reach is for its listeners to say.
        builder.options_mut().ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        Locator {
            resolver: builder.build(),
            timeout,
        }
    }

    /// The resolver, for the caller's own record types (a client's TXT lookups).
    pub fn resolver(&self) -> &TokioResolver {
        &self.resolver
    }

    /// Where to send for `destination`, in the order to try (RFC 3263 §4); `probe` as in
    /// [`plan`].
    pub async fn locate(
        &self,
        destination: &Destination,
        probe: &[Transport],
    ) -> Result<Vec<Target>, LocateError> {
        let lookups = async {
            let servers = self.servers(plan(destination, probe)).await?;
            self.addresses(servers, destination).await
        };
        self.within_deadline(destination, lookups).await
    }

    /// The servers for `destination`, in order, before their addresses are looked up: for a
    /// caller whose connect call looks names up itself.
    pub async fn server_hosts(
        &self,
        destination: &Destination,
        probe: &[Transport],
    ) -> Result<Vec<ServerHost>, LocateError> {
        let lookups = self.servers(plan(destination, probe));
        self.within_deadline(destination, lookups).await
    }

    async fn servers(&self, plan: Plan) -> Result<Vec<ServerHost>, LocateError> {
        let mut search = match plan {
            Plan::Host(server) => return Ok(vec![server]),
            Plan::Search(search) => search,
        };
        while let Some(query) = search.next_query() {
            match query {
                Query::Naptr(domain) => search.on_naptr(self.naptr(&domain).await),
                Query::Srv(transport, name) => {
                    let records = self.srv(&name).await?;
                    search.on_answer(transport, records, &mut rand::thread_rng());
                }
            }
        }
        search.finish()
    }

    /// A failure to answer counts as no records: the SRV queries that follow either work or
    /// report the name server's failure themselves.
    async fn naptr(&self, domain: &str) -> Vec<Naptr> {
        match self
            .resolver
            .lookup(format!("{domain}."), RecordType::NAPTR)
            .await
        {
            Ok(lookup) => lookup
                .record_iter()
                .filter_map(|record| match record.data() {
                    RData::NAPTR(naptr) => Some(Naptr {
                        order: naptr.order(),
                        preference: naptr.preference(),
                        flags: String::from_utf8_lossy(naptr.flags()).into_owned(),
                        services: String::from_utf8_lossy(naptr.services()).into_owned(),
                        replacement: naptr.replacement().to_utf8(),
                    }),
                    _ => None,
                })
                .collect(),
            Err(error) => {
                if !is_no_such_records(&error) {
                    debug!(domain, %error, "NAPTR lookup failed; asking for SRV records");
                }
                Vec::new()
            }
        }
    }

    async fn srv(&self, name: &str) -> Result<Vec<Srv>, LocateError> {
        // Absolute: a search domain appended to a service name can only find another service.
        match self.resolver.srv_lookup(format!("{name}.")).await {
            Ok(lookup) => Ok(lookup.iter().map(srv_record).collect()),
            Err(error) if is_no_such_records(&error) => Ok(Vec::new()),
            Err(error) => Err(lookup_error(name, &error)),
        }
    }

    /// The targets of `servers`; a server whose name does not resolve is skipped, since the
    /// next one may.
    async fn addresses(
        &self,
        servers: Vec<ServerHost>,
        destination: &Destination,
    ) -> Result<Vec<Target>, LocateError> {
        let mut found = Vec::new();
        let mut addresses = 0;
        let mut failure = None;
        for server in servers {
            if addresses >= MAX_TARGETS {
                break;
            }
            let ips: Vec<IpAddr> = match &server.host {
                Host::Ip(ip) => vec![*ip],
                Host::Name(name) => match self.resolver.lookup_ip(name.as_str()).await {
                    Ok(lookup) => lookup.iter().collect(),
                    Err(error) if is_no_such_records(&error) => Vec::new(),
                    Err(error) => {
                        failure = Some(lookup_error(name, &error));
                        Vec::new()
                    }
                },
            };
            addresses += ips.len();
            found.push((server, ips));
        }
        let targets = targets(found, destination.server_name());
        if targets.is_empty() {
            return Err(
                failure.unwrap_or_else(|| LocateError::NoAddresses(destination.host.to_string()))
            );
        }
        Ok(targets)
    }

    async fn within_deadline<T>(
        &self,
        destination: &Destination,
        lookups: impl Future<Output = Result<T, LocateError>>,
    ) -> Result<T, LocateError> {
        tokio::time::timeout(self.timeout, lookups)
            .await
            .unwrap_or_else(|_| Err(LocateError::TimedOut(destination.host.to_string())))
    }
}

/// The system's configuration; without a usable one, what the C library then does: ask a
/// name server on this host (resolv.conf(5)).
fn system_builder() -> ResolverBuilder<TokioConnectionProvider> {
    TokioResolver::builder_tokio().unwrap_or_else(|error| {
        warn!(%error, "no usable system resolver configuration; asking 127.0.0.1:53");
        let local = IpAddr::from([127, 0, 0, 1]);
        builder_for(NameServerConfigGroup::from_ips_clear(&[local], 53, true))
    })
}

fn builder_for(name_servers: NameServerConfigGroup) -> ResolverBuilder<TokioConnectionProvider> {
    let config = ResolverConfig::from_parts(None, Vec::new(), name_servers);
    TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
}

fn srv_record(record: &SRV) -> Srv {
    let target = record.target().to_utf8();
    Srv {
        priority: record.priority(),
        weight: record.weight(),
        port: record.port(),
        // The root name stays ".", the others lose the final dot.
        target: match target.strip_suffix('.') {
            Some(host) if !host.is_empty() => host.to_owned(),
            _ => target,
        },
    }
}

/// NXDOMAIN or an empty answer: DNS says there are no such records. Other response codes
/// (SERVFAIL, REFUSED) come as "no records" too, but they are failures to answer.
fn is_no_such_records(error: &ResolveError) -> bool {
    matches!(
        error.proto().map(ProtoError::kind),
        Some(ProtoErrorKind::NoRecordsFound {
            response_code: ResponseCode::NXDomain | ResponseCode::NoError,
            ..
        })
    )
}

fn lookup_error(name: &str, error: &ResolveError) -> LocateError {
    LocateError::Lookup {
        name: name.to_owned(),
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_server::{name_server, record, refusing_name_server};
    use hickory_resolver::proto::rr::rdata::{A, AAAA};
    use hickory_resolver::proto::rr::RData;
    use hickory_resolver::Name;

    const TIMEOUT: Duration = Duration::from_secs(5);
    const UDP_TCP: &[Transport] = &[Transport::Udp, Transport::Tcp];

    fn srv(priority: u16, port: u16, target: &str) -> RData {
        RData::SRV(SRV::new(
            priority,
            0,
            port,
            Name::from_ascii(target).unwrap(),
        ))
    }

    fn a(octets: [u8; 4]) -> RData {
        RData::A(A::from(std::net::Ipv4Addr::from(octets)))
    }

    fn naptr(order: u16, services: &str, replacement: &str) -> RData {
        RData::NAPTR(hickory_resolver::proto::rr::rdata::NAPTR::new(
            order,
            10,
            b"S".to_vec().into_boxed_slice(),
            services.as_bytes().to_vec().into_boxed_slice(),
            Box::default(),
            Name::from_ascii(replacement).unwrap(),
        ))
    }

    fn target(transport: Transport, addr: &str, name: Option<&str>) -> Target {
        Target {
            transport,
            addr: addr.parse().unwrap(),
            server_name: name.map(str::to_owned),
        }
    }

    async fn locator() -> Locator {
        let server = name_server(vec![
            record("_sip._tcp.example.com.", srv(20, 5071, "b.example.com.")),
            record("_sip._tcp.example.com.", srv(10, 5070, "a.example.com.")),
            record("a.example.com.", a([192, 0, 2, 1])),
            record(
                "b.example.com.",
                RData::AAAA(AAAA::from(
                    "2001:db8::2".parse::<std::net::Ipv6Addr>().unwrap(),
                )),
            ),
            record("example.net.", a([192, 0, 2, 9])),
            record("_sip._udp.declined.example.", srv(0, 0, ".")),
            record("_sip._tcp.dangling.example.", srv(0, 5060, "gone.example.")),
            // NAPTR prefers TCP at a name of its own over the UDP service SRV would find.
            record(
                "naptr.example.",
                naptr(10, "SIP+D2T", "_sip._tcp.sip.naptr.example."),
            ),
            record(
                "naptr.example.",
                naptr(20, "SIP+D2U", "_sip._udp.naptr.example."),
            ),
            record("_sip._udp.naptr.example.", srv(0, 5060, "a.example.com.")),
            record(
                "_sip._tcp.sip.naptr.example.",
                srv(0, 5090, "a.example.com."),
            ),
        ])
        .await;
        Locator::new(&[server], TIMEOUT)
    }

    async fn locate(locator: &Locator, uri: &str) -> Result<Vec<Target>, LocateError> {
        let destination = Destination::from_uri(uri).expect("a SIP URI");
        locator.locate(&destination, UDP_TCP).await
    }

    #[tokio::test]
    async fn srv_targets_are_looked_up_in_priority_order_on_the_transport_that_has_them() {
        let locator = locator().await;
        assert_eq!(
            locate(&locator, "sip:bob@example.com").await,
            Ok(vec![
                target(Transport::Tcp, "192.0.2.1:5070", Some("example.com")),
                target(Transport::Tcp, "[2001:db8::2]:5071", Some("example.com")),
            ]),
            "no _sip._udp records: _sip._tcp's, the TLS name being the domain's"
        );
        let servers = locator
            .server_hosts(&Destination::from_uri("sip:example.com").unwrap(), UDP_TCP)
            .await
            .unwrap();
        let hosts: Vec<String> = servers.iter().map(|s| s.host.to_string()).collect();
        assert_eq!(hosts, ["a.example.com", "b.example.com"]);
    }

    #[tokio::test]
    async fn naptr_records_choose_the_transport_and_the_srv_name() {
        let locator = locator().await;
        assert_eq!(
            locate(&locator, "sip:bob@naptr.example").await,
            Ok(vec![target(
                Transport::Tcp,
                "192.0.2.1:5090",
                Some("naptr.example")
            )])
        );
        assert_eq!(
            locate(&locator, "sip:bob@naptr.example;transport=udp").await,
            Ok(vec![target(
                Transport::Udp,
                "192.0.2.1:5060",
                Some("naptr.example")
            )]),
            "a named transport asks SRV directly"
        );
    }

    #[tokio::test]
    async fn without_srv_the_domain_addresses_are_used_on_the_default_port() {
        let locator = locator().await;
        assert_eq!(
            locate(&locator, "sip:alice@example.net").await,
            Ok(vec![target(
                Transport::Udp,
                "192.0.2.9:5060",
                Some("example.net")
            )])
        );
        assert_eq!(
            locate(&locator, "sip:alice@example.net:5080;transport=tcp").await,
            Ok(vec![target(
                Transport::Tcp,
                "192.0.2.9:5080",
                Some("example.net")
            )]),
            "an explicit port: address records only"
        );
    }

    #[tokio::test]
    async fn an_address_needs_no_name_server() {
        let nobody = Locator::new(&["127.0.0.1:9".parse().unwrap()], TIMEOUT);
        assert_eq!(
            locate(&nobody, "sip:192.0.2.7:5090;transport=tcp").await,
            Ok(vec![target(Transport::Tcp, "192.0.2.7:5090", None)])
        );
    }

    #[tokio::test]
    async fn a_domain_without_records_has_no_target() {
        let locator = locator().await;
        let missing = locate(&locator, "sip:bob@nowhere.example")
            .await
            .unwrap_err();
        assert_eq!(missing, LocateError::NoAddresses("nowhere.example".into()));
        assert!(missing.is_negative_answer());
        let declined = locate(&locator, "sip:bob@declined.example")
            .await
            .unwrap_err();
        assert_eq!(declined, LocateError::NoService("declined.example".into()));
        let dangling = locate(&locator, "sip:bob@dangling.example")
            .await
            .unwrap_err();
        assert!(dangling.is_negative_answer(), "{dangling}");
    }

    #[tokio::test]
    async fn a_refusing_name_server_is_a_failure_not_an_answer() {
        let locator = Locator::new(&[refusing_name_server().await], TIMEOUT);
        let error = locate(&locator, "sip:bob@example.com").await.unwrap_err();
        assert!(
            matches!(&error, LocateError::Lookup { name, .. } if name == "_sip._udp.example.com"),
            "{error}"
        );
        assert!(!error.is_negative_answer());
    }

    #[tokio::test]
    async fn a_silent_name_server_times_out() {
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let deadline = Duration::from_millis(300);
        let locator = Locator::new(&[silent.local_addr().unwrap()], deadline);
        let started = std::time::Instant::now();
        let error = locate(&locator, "sip:bob@example.com").await.unwrap_err();
        assert_eq!(error, LocateError::TimedOut("example.com".into()));
        assert!(!error.is_negative_answer());
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
