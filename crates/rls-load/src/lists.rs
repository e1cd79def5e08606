//! Reading list NOTIFYs (RFC 4662 §5): the `multipart/related` body through
//! `simple-payloads`' multipart and RLMI parsers, reduced to what the run counts, and the
//! per-subscription bookkeeping of RLMI versions and of when the list's state is complete.

use std::time::{Duration, Instant};

use simple_payloads::multipart::Related;
use simple_payloads::rlmi::{InstanceState, Rlmi};

use crate::layout::Layout;
use crate::sip::{call_id, sent_micros, Endpoint, Owner};

/// The list SUBSCRIBE of subscriber `i` (RFC 4662 §5: `Supported: eventlist` and the body
/// types Blink accepts), with our address `local` in Via and Contact so NOTIFYs come back
/// over the same connection. Its Call-ID names the subscriber as presence-load names a
/// watcher.
pub fn subscribe(
    ep: &Endpoint,
    local: std::net::SocketAddr,
    layout: &Layout,
    i: usize,
    expires: u32,
) -> String {
    let (service, me) = (layout.service_uri(i), layout.aor(&layout.subscriber(i)));
    format!(
        "SUBSCRIBE {service} SIP/2.0\r\n\
         Via: SIP/2.0/TCP {local};branch=z9hG4bK-s{i}-{run};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <{me}>;tag=w{i}\r\n\
         To: <{service}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 SUBSCRIBE\r\n\
         Contact: <sip:{user}@{local};transport=tcp>\r\n\
         Event: presence\r\n\
         Supported: eventlist\r\n\
         Accept: multipart/related, application/rlmi+xml, application/pidf+xml\r\n\
         Expires: {expires}\r\n\
         Content-Length: 0\r\n\r\n",
        run = ep.run,
        call_id = call_id(Owner::Watcher(i), ep.run),
        user = layout.subscriber(i),
    )
}

/// One list NOTIFY, as far as the run is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListNotify {
    pub version: u32,
    pub full_state: bool,
    pub resources: Vec<ResourceUpdate>,
}

/// One `<resource>` of the RLMI document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceUpdate {
    /// The presentity named by the resource URI; None for a URI outside the layout.
    pub presentity: Option<usize>,
    /// State of its (first) instance; None when the resource has no instance yet.
    pub state: Option<InstanceState>,
    /// Whether the instance's `cid` points at a state part (a presence document).
    pub has_document: bool,
    /// The PUBLISH send time stamped in that document's note, if any.
    pub sent_micros: Option<u64>,
}

/// Reads a NOTIFY body given its Content-Type value.
pub fn read(content_type: &str, body: &[u8], layout: &Layout) -> Result<ListNotify, String> {
    let related = Related::parse(content_type, body).map_err(|e| e.to_string())?;
    let root = related.root().ok_or("no root part")?;
    let text = std::str::from_utf8(&root.body).map_err(|_| "RLMI is not UTF-8")?;
    let rlmi = Rlmi::parse(text).map_err(|e| e.to_string())?;
    let resources = rlmi
        .resources
        .iter()
        .map(|resource| {
            let instance = resource.instances.first();
            let document = instance
                .and_then(|i| i.cid.as_deref())
                .and_then(|cid| related.part(cid));
            ResourceUpdate {
                presentity: layout.presentity_index(&resource.uri),
                state: instance.map(|i| i.state),
                has_document: document.is_some(),
                sent_micros: document.and_then(|part| sent_micros(&part.body)),
            }
        })
        .collect();
    Ok(ListNotify {
        version: rlmi.version,
        full_state: rlmi.full_state,
        resources,
    })
}

/// How a NOTIFY's RLMI version follows the previous one of its subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sequence {
    /// The first NOTIFY, or exactly one more than the last.
    InOrder,
    /// This many versions were skipped.
    Gap(u32),
    /// Not above the last version: repeated or out of order.
    Behind,
}

/// One list subscription as the subscriber sees it.
#[derive(Debug, Default)]
pub struct ListWatch {
    /// When the SUBSCRIBE went out.
    pub subscribed_at: Option<Instant>,
    /// Final status of the SUBSCRIBE, 0 before it arrived.
    pub status: u16,
    pub last_cseq: Option<u32>,
    pub version: Option<u32>,
    /// Versions skipped so far.
    pub gaps: u64,
    /// From the SUBSCRIBE to the first full-state NOTIFY.
    pub first_full: Option<Duration>,
    /// From the SUBSCRIBE to the NOTIFY after which every member had a presence document.
    pub complete: Option<Duration>,
    /// Per position in the list, the PUBLISH stamp of the member's last document seen
    /// (0: none yet), to check that every list ends with every member's latest state.
    pub stamps: Vec<u64>,
    /// Members known to have a document, by position in the list, until complete.
    with_document: Vec<bool>,
    missing: usize,
    pub terminated: bool,
}

impl ListWatch {
    /// Books `notify`'s RLMI version.
    pub fn sequence(&mut self, version: u32) -> Sequence {
        let sequence = match self.version {
            None => Sequence::InOrder,
            Some(last) if version == last.wrapping_add(1) => Sequence::InOrder,
            Some(last) if version > last => Sequence::Gap(version - last - 1),
            Some(_) => Sequence::Behind,
        };
        match sequence {
            Sequence::Behind => {}
            Sequence::Gap(missing) => {
                self.gaps += u64::from(missing);
                self.version = Some(version);
            }
            Sequence::InOrder => self.version = Some(version),
        }
        sequence
    }

    /// Books the PUBLISH stamps `notify` carries.
    pub fn note_stamps(
        &mut self,
        notify: &ListNotify,
        list_size: usize,
        position: impl Fn(usize) -> Option<usize>,
    ) {
        if self.stamps.len() != list_size {
            self.stamps = vec![0; list_size];
        }
        for resource in &notify.resources {
            let (Some(k), Some(stamp)) = (
                resource.presentity.and_then(&position),
                resource.sent_micros,
            ) else {
                continue;
            };
            if let Some(slot) = self.stamps.get_mut(k) {
                *slot = stamp;
            }
        }
    }

    /// Follows which members have a document; whether this NOTIFY completed the list.
    /// `position` maps a presentity to its place in this subscriber's list.
    pub fn track(
        &mut self,
        notify: &ListNotify,
        list_size: usize,
        position: impl Fn(usize) -> Option<usize>,
        now: Instant,
    ) -> bool {
        let Some(since) = self.subscribed_at else {
            return false;
        };
        if notify.full_state {
            self.first_full.get_or_insert(now.duration_since(since));
        }
        if self.complete.is_some() {
            return false;
        }
        if notify.full_state || self.with_document.len() != list_size {
            self.with_document = vec![false; list_size];
            self.missing = list_size;
        }
        for resource in &notify.resources {
            let Some(k) = resource.presentity.and_then(&position) else {
                continue;
            };
            let Some(seen) = self.with_document.get_mut(k) else {
                continue;
            };
            let active = resource.state == Some(InstanceState::Active) && resource.has_document;
            if active != *seen {
                *seen = active;
                if active {
                    self.missing -= 1;
                } else {
                    self.missing += 1;
                }
            }
        }
        if self.missing > 0 {
            return false;
        }
        self.complete = Some(now.duration_since(since));
        self.with_document = Vec::new();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use simple_payloads::multipart::Part;
    use simple_payloads::rlmi::{Instance, Resource, CONTENT_TYPE};

    fn layout() -> Layout {
        Layout::new("bench.test", "sub", 1, 3, 3).unwrap()
    }

    /// A body as the server renders it: RLMI root, then one PIDF part per `cid`.
    fn body(
        version: u32,
        full: bool,
        resources: &[(&str, InstanceState, Option<&str>)],
    ) -> (String, Vec<u8>) {
        let mut parts = Vec::new();
        let resources = resources
            .iter()
            .enumerate()
            .map(|(n, (uri, state, note))| {
                let cid = note.map(|note| {
                    let cid = format!("p{n}@rls.avail");
                    parts.push(Part {
                        content_type: "application/pidf+xml".into(),
                        content_id: cid.clone(),
                        body: format!(
                            "<presence><tuple id=\"t\"><note>{note}</note></tuple></presence>"
                        )
                        .into_bytes(),
                    });
                    cid
                });
                Resource {
                    uri: (*uri).into(),
                    names: Vec::new(),
                    instances: vec![Instance {
                        id: format!("i{n}"),
                        state: *state,
                        reason: None,
                        cid,
                    }],
                }
            })
            .collect();
        let rlmi = Rlmi {
            uri: "sip:sub0+presence@bench.test".into(),
            version,
            full_state: full,
            cid: None,
            names: Vec::new(),
            resources,
        };
        parts.insert(
            0,
            Part {
                content_type: CONTENT_TYPE.into(),
                content_id: "root@rls.avail".into(),
                body: rlmi.to_xml().into_bytes(),
            },
        );
        Related::with_root_first(parts).to_bytes("b")
    }

    #[test]
    fn bodies_reduce_to_versions_states_and_stamps() {
        let (content_type, data) = body(
            4,
            false,
            &[
                (
                    "sip:pres1@bench.test",
                    InstanceState::Active,
                    Some("pl 3 1500"),
                ),
                ("sip%3Apres2%40bench.test", InstanceState::Pending, None),
                ("tel:+123", InstanceState::Active, Some("away")),
            ],
        );
        let notify = read(&content_type, &data, &layout()).unwrap();
        assert_eq!(notify.version, 4);
        assert!(!notify.full_state);
        assert_eq!(
            notify.resources,
            [
                ResourceUpdate {
                    presentity: Some(1),
                    state: Some(InstanceState::Active),
                    has_document: true,
                    sent_micros: Some(1500),
                },
                ResourceUpdate {
                    presentity: Some(2),
                    state: Some(InstanceState::Pending),
                    has_document: false,
                    sent_micros: None,
                },
                ResourceUpdate {
                    presentity: None,
                    state: Some(InstanceState::Active),
                    has_document: true,
                    sent_micros: None,
                },
            ]
        );
        assert!(read("application/pidf+xml", &data, &layout()).is_err());
        assert!(read(&content_type, b"garbage", &layout()).is_err());
    }

    #[test]
    fn list_subscribes_negotiate_eventlist() {
        let ep = Endpoint {
            domain: "bench.test",
            transport: "TCP",
            run: 9,
        };
        let local = "127.0.0.1:40000".parse().unwrap();
        let text = subscribe(&ep, local, &layout(), 0, 600);
        let message =
            sip_message::Message::parse(bytes::Bytes::from(text), &Default::default()).unwrap();
        assert_eq!(
            crate::sip::owner(message.call_id().unwrap()),
            Some(Owner::Watcher(0))
        );
        assert_eq!(message.other_header("Supported"), Some("eventlist"));
        assert_eq!(message.other_header("Event"), Some("presence"));
        assert_eq!(
            message.other_header("To"),
            Some("<sip:sub0+presence@bench.test>")
        );
    }

    #[test]
    fn versions_must_follow_one_another() {
        let mut watch = ListWatch::default();
        assert_eq!(watch.sequence(0), Sequence::InOrder);
        assert_eq!(watch.sequence(1), Sequence::InOrder);
        assert_eq!(watch.sequence(4), Sequence::Gap(2));
        assert_eq!(watch.sequence(4), Sequence::Behind);
        assert_eq!(watch.sequence(2), Sequence::Behind);
        assert_eq!(watch.sequence(5), Sequence::InOrder);
        assert_eq!(watch.gaps, 2);
    }

    #[test]
    fn a_list_completes_when_every_member_has_a_document() {
        let layout = layout();
        let start = Instant::now();
        let mut watch = ListWatch {
            subscribed_at: Some(start),
            ..ListWatch::default()
        };
        let position = |j: usize| Some(j);
        let (ct, data) = body(
            0,
            true,
            &[
                ("sip:pres0@bench.test", InstanceState::Active, Some("a")),
                ("sip:pres1@bench.test", InstanceState::Active, None),
                ("sip:pres2@bench.test", InstanceState::Active, Some("c")),
            ],
        );
        let full = read(&ct, &data, &layout).unwrap();
        let later = start + Duration::from_millis(30);
        assert!(!watch.track(&full, 3, position, later));
        assert_eq!(watch.first_full, Some(Duration::from_millis(30)));
        let (ct, data) = body(
            1,
            false,
            &[("sip:pres1@bench.test", InstanceState::Active, Some("b"))],
        );
        let partial = read(&ct, &data, &layout).unwrap();
        let done = start + Duration::from_millis(250);
        assert!(watch.track(&partial, 3, position, done));
        assert_eq!(watch.complete, Some(Duration::from_millis(250)));
        assert_eq!(watch.first_full, Some(Duration::from_millis(30)));
        // Completion is reported once.
        assert!(!watch.track(&partial, 3, position, done));
        watch.note_stamps(&full, 3, position);
        assert_eq!(watch.stamps, [0, 0, 0], "notes without a PUBLISH stamp");
        let (ct, data) = body(
            2,
            false,
            &[(
                "sip:pres2@bench.test",
                InstanceState::Active,
                Some("pl 9 777"),
            )],
        );
        watch.note_stamps(&read(&ct, &data, &layout).unwrap(), 3, position);
        assert_eq!(watch.stamps, [0, 0, 777]);
    }
}
