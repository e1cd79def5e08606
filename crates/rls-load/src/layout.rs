//! Who subscribes to what: the users of a run and the XCAP documents that define their lists.
//!
//! Subscriber `i` is `<prefix><i>@<domain>`; its Blink-style service
//! `sip:<prefix><i>+presence@<domain>` refers (by absolute XCAP URI, percent-encoded) to the
//! `sipsimple_presence_rls` list of its resource-lists document, which holds `list_size`
//! distinct presentities `pres<j>@<domain>` (the names presence-load publishes as). Each
//! list is a pseudo-random sample of the presentities, the same for a given subscriber in
//! every run, so `prepare` and `run` agree without sharing files. Sampling rather than
//! contiguous blocks matters for the measurement: with blocks, a round-robin publisher would
//! hit one list's members in a burst and leave it idle the rest of the round, which folds
//! its updates into a few large NOTIFYs and flatters the NOTIFY rate; buddy lists overlap
//! arbitrarily in practice.

use simple_payloads::uri::{decode_any_uri, encode_any_uri};

/// The list Blink keeps its presence buddies in, which its rls-services document refers to.
pub const RLS_LIST: &str = "sipsimple_presence_rls";

/// A pres-rules document that lets every watcher see everything: without it Avail keeps
/// list members pending and their state would carry no presence document.
pub const ALLOW_ALL_RULES: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
    <cp:ruleset xmlns:cp=\"urn:ietf:params:xml:ns:common-policy\" \
    xmlns:pr=\"urn:ietf:params:xml:ns:pres-rules\"><cp:rule id=\"all\"><cp:conditions/>\
    <cp:actions><pr:sub-handling>allow</pr:sub-handling></cp:actions><cp:transformations/>\
    </cp:rule></cp:ruleset>";

#[derive(Debug, Clone)]
pub struct Layout {
    pub domain: String,
    /// User name prefix of the subscribers, so runs of different shapes share one server.
    pub prefix: String,
    pub subscribers: usize,
    pub list_size: usize,
    pub presentities: usize,
    /// Per subscriber, its list's presentities in list order.
    lists: Vec<Vec<u32>>,
    /// Per subscriber, `(presentity, position)` sorted by presentity, for reading NOTIFYs.
    positions: Vec<Vec<(u32, u32)>>,
}

impl Layout {
    pub fn new(
        domain: &str,
        prefix: &str,
        subscribers: usize,
        list_size: usize,
        presentities: usize,
    ) -> Result<Layout, String> {
        if subscribers == 0 || list_size == 0 || presentities == 0 {
            return Err("--subscribers, --list-size and --presentities must be positive".into());
        }
        if list_size > presentities {
            return Err("--list-size cannot exceed --presentities (entries would repeat)".into());
        }
        let lists: Vec<Vec<u32>> = (0..subscribers)
            .map(|i| sample(i as u64, list_size, presentities))
            .collect();
        let positions = lists
            .iter()
            .map(|list| {
                let mut index: Vec<(u32, u32)> = list
                    .iter()
                    .enumerate()
                    .map(|(k, &j)| (j, k as u32))
                    .collect();
                index.sort_unstable();
                index
            })
            .collect();
        Ok(Layout {
            domain: domain.to_owned(),
            prefix: prefix.to_owned(),
            subscribers,
            list_size,
            presentities,
            lists,
            positions,
        })
    }

    pub fn subscriber(&self, i: usize) -> String {
        format!("{}{i}", self.prefix)
    }

    /// Presentity user names follow presence-load's PUBLISH requests (`pres<j>`).
    pub fn presentity(&self, j: usize) -> String {
        format!("pres{j}")
    }

    pub fn aor(&self, user: &str) -> String {
        format!("sip:{user}@{}", self.domain)
    }

    pub fn service_uri(&self, i: usize) -> String {
        format!("sip:{}+presence@{}", self.subscriber(i), self.domain)
    }

    /// The presentities in subscriber `i`'s list, in list order.
    pub fn members(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.lists[i].iter().map(|&j| j as usize)
    }

    /// Where presentity `j` stands in subscriber `i`'s list, if it is a member.
    pub fn position(&self, i: usize, j: usize) -> Option<usize> {
        let index = &self.positions[i];
        let at = index.binary_search_by_key(&j, |&(p, _)| p as usize).ok()?;
        Some(index[at].1 as usize)
    }

    /// The presentity a resource URI of an RLMI document names (percent-encoded or not).
    pub fn presentity_index(&self, uri: &str) -> Option<usize> {
        let uri = decode_any_uri(uri);
        let user = uri.strip_prefix("sip:")?.strip_suffix(&*self.domain)?;
        user.strip_suffix('@')?.strip_prefix("pres")?.parse().ok()
    }

    /// Per presentity, the subscribers whose list holds it.
    pub fn lists_of(&self) -> Vec<Vec<u32>> {
        let mut lists = vec![Vec::new(); self.presentities];
        for i in 0..self.subscribers {
            for j in self.members(i) {
                lists[j].push(i as u32);
            }
        }
        lists
    }

    /// Subscriber `i`'s resource-lists document as Blink writes it: the buddies in
    /// `sipsimple_presence_rls`, each URI percent-encoded, beside Blink's other lists.
    pub fn resource_lists(&self, i: usize) -> String {
        let entries: String = self
            .members(i)
            .map(|j| {
                let uri = encode_any_uri(&self.aor(&self.presentity(j)));
                format!("<rl:entry uri=\"{uri}\"/>")
            })
            .collect();
        format!(
            "<?xml version='1.0' encoding='UTF-8'?>\n\
             <rl:resource-lists xmlns:rl=\"urn:ietf:params:xml:ns:resource-lists\">\
             <rl:list name=\"oma_buddylist\"/><rl:list name=\"oma_grantedcontacts\"/>\
             <rl:list name=\"oma_blockedcontacts\"/>\
             <rl:list name=\"{RLS_LIST}\">{entries}</rl:list>\
             <rl:list name=\"sipsimple_dialog_rls\"/></rl:resource-lists>"
        )
    }

    /// Subscriber `i`'s rls-services document: the `+presence` service referring to its list
    /// by an absolute XCAP URI under `xcap_root` (e.g. `http://127.0.0.1:8080/xcap-root`).
    pub fn rls_services(&self, i: usize, xcap_root: &str) -> String {
        let anchor = format!(
            "{xcap_root}/resource-lists/users/{}/index/~~/resource-lists/list[@name=\"{RLS_LIST}\"]",
            self.aor(&self.subscriber(i))
        );
        format!(
            "<?xml version='1.0' encoding='UTF-8'?>\n\
             <rls-services xmlns=\"urn:ietf:params:xml:ns:rls-services\">\
             <service uri=\"{}\"><resource-list>{}</resource-list>\
             <packages><package>presence</package></packages></service></rls-services>",
            encode_any_uri(&self.service_uri(i)),
            encode_any_uri(&anchor),
        )
    }
}

/// `count` distinct presentities out of `presentities`, drawn by a partial Fisher-Yates
/// shuffle seeded with `seed` (when `count == presentities`, all of them, shuffled).
fn sample(seed: u64, count: usize, presentities: usize) -> Vec<u32> {
    let mut pool: Vec<u32> = (0..presentities as u32).collect();
    let mut rng = SplitMix64(seed);
    for k in 0..count {
        let pick = k + (rng.next() % (presentities - k) as u64) as usize;
        pool.swap(k, pick);
    }
    pool.truncate(count);
    pool
}

/// SplitMix64 (Steele, Lea, Flood 2014): a few lines of well-mixed, reproducible numbers,
/// which is all the sampling needs.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(subscribers: usize, list_size: usize, presentities: usize) -> Layout {
        Layout::new("bench.test", "sub", subscribers, list_size, presentities).unwrap()
    }

    #[test]
    fn lists_are_reproducible_samples_spread_over_the_presentities() {
        let l = layout(1000, 100, 1000);
        let again = layout(1000, 100, 1000);
        for i in [0, 9, 999] {
            let mut members: Vec<usize> = l.members(i).collect();
            assert_eq!(members, again.members(i).collect::<Vec<_>>());
            for (k, &j) in members.iter().enumerate() {
                assert_eq!(l.position(i, j), Some(k));
            }
            members.sort_unstable();
            members.dedup();
            assert_eq!(members.len(), 100, "distinct entries");
            assert!(members.iter().all(|&j| j < 1000));
        }
        assert_ne!(
            l.members(0).collect::<Vec<_>>(),
            l.members(1).collect::<Vec<_>>()
        );
        let lists_of = l.lists_of();
        assert_eq!(lists_of.iter().map(Vec::len).sum::<usize>(), 100_000);
        // Every presentity is in some lists, none in a great many.
        assert!(lists_of
            .iter()
            .all(|lists| (40..=160).contains(&lists.len())));
        let everyone = layout(1, 1000, 1000);
        assert_eq!(
            everyone.lists_of().iter().filter(|l| l.len() == 1).count(),
            1000
        );
        assert!(Layout::new("d", "sub", 1, 1001, 1000).is_err());
        assert!(Layout::new("d", "sub", 0, 1, 1000).is_err());
    }

    #[test]
    fn resource_uris_map_back_to_presentities() {
        let l = layout(1, 10, 10);
        assert_eq!(l.presentity_index("sip:pres7@bench.test"), Some(7));
        assert_eq!(l.presentity_index("sip%3Apres7%40bench.test"), Some(7));
        assert_eq!(l.presentity_index("sip:pres7@other.test"), None);
        assert_eq!(l.presentity_index("sip:sub7@bench.test"), None);
        assert_eq!(l.presentity_index("pres7@bench.test"), None);
    }

    #[test]
    fn documents_are_blink_shaped() {
        let l = layout(2, 3, 5);
        let lists = l.resource_lists(1);
        for j in l.members(1) {
            assert!(lists.contains(&format!("<rl:entry uri=\"sip%3Apres{j}%40bench.test\"/>")));
        }
        roxmltree::Document::parse(&lists).expect("well-formed resource-lists");
        let services = l.rls_services(1, "http://127.0.0.1:8080/xcap-root");
        assert!(services.contains("uri=\"sip%3Asub1%2Bpresence%40bench.test\""));
        assert!(services.contains("http%3A//127.0.0.1%3A8080/xcap-root/resource-lists/users/sip%3Asub1%40bench.test/index/~~/"));
        roxmltree::Document::parse(&services).expect("well-formed rls-services");
        roxmltree::Document::parse(ALLOW_ALL_RULES).expect("well-formed pres-rules");
    }
}
