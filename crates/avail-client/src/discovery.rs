//! Server discovery when the account names no server (blink-compat §2.1, §6, §8 items 1–2):
//! the SIP domain is resolved as RFC 3263 §4 says, by the `sip-locate` crate, for the
//! configured transport: the SRV name of the domain's NAPTR record for it (`SIPS+D2T` for TLS,
//! `SIP+D2T` for TCP), else SRV `_sips._tcp.<domain>` or `_sip._tcp.<domain>`, ordered by priority and weight (RFC 2782), else the
//! domain's A/AAAA records on the transport's default port. The XCAP root comes from the TXT
//! records of `xcap.<domain>`: the `http(s)://` answers, one picked at random, as the SDK does.
//!
//! Record selection ([`xcap_roots`], and `sip-locate`'s) is sans-IO; [`Dns`] only asks the
//! system's resolver, and leaves A/AAAA of the SIP servers to the connect call.

use std::time::Duration;

use rand::seq::SliceRandom;
use sip_locate::{Destination, LocateError, Locator};

use crate::config::Transport;

pub use sip_locate::host_port;

/// How long the SRV lookups for the SIP servers may take.
const SIP_LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error(transparent)]
    Sip(#[from] LocateError),
    #[error("DNS lookup of {0} failed: {1}")]
    Lookup(String, String),
    #[error("no http(s) XCAP root in the TXT records of {0}")]
    NoXcapRoot(String),
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
pub struct Dns(Locator);

impl Dns {
    pub fn system() -> Result<Dns, DiscoveryError> {
        Ok(Dns(Locator::new(&[], SIP_LOOKUP_TIMEOUT)))
    }

    /// The SIP servers of `domain` (`host[:port]`) for `transport`, in the order to try them.
    pub async fn sip_targets(
        &self,
        domain: &str,
        transport: Transport,
    ) -> Result<Vec<(String, u16)>, DiscoveryError> {
        let destination = Destination::from_host_port(domain);
        let servers = self
            .0
            .server_hosts(&destination, &[located(transport)])
            .await?;
        Ok(servers
            .into_iter()
            .map(|server| (server.host.to_string(), server.port))
            .collect())
    }

    /// One XCAP root announced for `domain`, picked at random.
    pub async fn xcap_root(&self, domain: &str) -> Result<String, DiscoveryError> {
        let name = format!("xcap.{domain}");
        let lookup = match self.0.resolver().txt_lookup(name.as_str()).await {
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

fn located(transport: Transport) -> sip_locate::Transport {
    match transport {
        Transport::Tls => sip_locate::Transport::Tls,
        Transport::Tcp => sip_locate::Transport::Tcp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::proto::rr::rdata::{NAPTR, SRV, TXT};
    use hickory_resolver::proto::rr::RData;
    use hickory_resolver::Name;
    use sip_locate::test_server::{name_server, record};

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
            record("_sips._tcp.closed.example.", srv(0, 0, ".")),
            // The domain's NAPTR records name its TLS service: followed for TLS only.
            record(
                "naptr.example.",
                RData::NAPTR(NAPTR::new(
                    10,
                    10,
                    b"s".to_vec().into_boxed_slice(),
                    b"SIPS+D2T".to_vec().into_boxed_slice(),
                    Box::default(),
                    Name::from_ascii("_sips._tcp.tls.naptr.example.").unwrap(),
                )),
            ),
            record(
                "_sips._tcp.tls.naptr.example.",
                srv(0, 5071, "tls.naptr.example."),
            ),
        ])
        .await;
        let dns = Dns(Locator::new(&[server], SIP_LOOKUP_TIMEOUT));
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
            dns.sip_targets("naptr.example", Transport::Tls)
                .await
                .unwrap(),
            [("tls.naptr.example".to_owned(), 5071)]
        );
        assert_eq!(
            dns.sip_targets("naptr.example", Transport::Tcp)
                .await
                .unwrap(),
            [("naptr.example".to_owned(), 5060)],
            "no NAPTR record for TCP, no _sip._tcp record"
        );
        assert!(matches!(
            dns.sip_targets("closed.example", Transport::Tls).await,
            Err(DiscoveryError::Sip(LocateError::NoService(domain))) if domain == "closed.example"
        ));
        assert_eq!(
            dns.xcap_root("example.com").await.unwrap(),
            "https://xcap.example.com/xcap-root"
        );
        assert!(matches!(
            dns.xcap_root("example.org").await,
            Err(DiscoveryError::NoXcapRoot(name)) if name == "xcap.example.org"
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
