//! [`authorize`] with an attacker-chosen pres-rules document. The input is split at the first
//! NUL byte: the part before is read with [`Ruleset::parse`], the part after as the
//! presentity's resource-lists document, which answers `external-list` anchors through the
//! presence agent's own resolver (only anchors into the presentity's own `index` resolve, as
//! in the server). Several watchers are decided:
//! anonymous, the presentity itself (also spelt differently), an unrelated `sip:` URI and
//! identities taken from the input (rule `one` ids, `except` ids, list entries). Checks that
//! nothing panics and that:
//! - the presentity's own subscription is allowed the whole document, with or without rules;
//! - without a pres-rules document everyone else is `confirm`;
//! - only `allow` carries transformations;
//! - an anonymous decision never consults the lists, an identified one resolves at most 64
//!   anchors, and a decision is the same when asked twice;
//! - an unchanged decision is the `Unchanged` transition.
#![no_main]

use std::cell::Cell;

use libfuzzer_sys::fuzz_target;
use presence_auth::{
    authorize, transition, Decision, ListAnchor, ListResolver, Request, Ruleset, SubHandling,
    Transition,
};
use simple_payloads::common_policy::Except;

const PRESENTITY: &str = "sip:alice@example.com";
/// The most anchors one decision resolves (`presence_auth`'s own bound).
const MAX_ANCHORS: usize = 64;

fn check_shape(decision: &Decision) {
    if decision.handling != SubHandling::Allow {
        assert_eq!(decision.transformations, None, "{decision:?}");
    }
    assert_eq!(transition(decision, decision), Transition::Unchanged);
}

fuzz_target!(|data: &[u8]| {
    let (rules_part, lists_part) = match data.iter().position(|b| *b == 0) {
        Some(nul) => (&data[..nul], &data[nul + 1..]),
        None => (data, &[][..]),
    };
    let rules = Ruleset::parse(&String::from_utf8_lossy(rules_part)).ok();
    let policy = presence::Policy::from_documents(None, Some(lists_part), None);
    let lists = policy.resolver(PRESENTITY);
    let calls = Cell::new(0usize);
    let resolver = |anchor: &ListAnchor| {
        calls.set(calls.get() + 1);
        lists.entries(anchor)
    };

    let mut watchers: Vec<String> = vec![
        PRESENTITY.into(),
        "SIP:alice@EXAMPLE.com:5060;transport=tcp".into(),
        "sip:bob@example.com".into(),
        "tel:+15551234".into(),
    ];
    let mut spheres = vec![None, Some("work")];
    if let Some(rules) = &rules {
        for rule in &rules.rules {
            let c = &rule.conditions;
            for anchor in c.external_lists.iter().flatten() {
                let _ = ListAnchor::parse(anchor);
            }
            for identity in &c.identities {
                watchers.extend(identity.one.iter().cloned());
                for many in &identity.many {
                    if let Some(domain) = &many.domain {
                        watchers.push(format!("sip:carol@{domain}"));
                    }
                    watchers.extend(many.except.iter().filter_map(|e| match e {
                        Except::Id(id) => Some(id.clone()),
                        Except::Domain(_) => None,
                    }));
                }
            }
            spheres.extend(c.spheres.iter().map(|s| Some(s.as_str())));
        }
    }
    if let Ok(text) = std::str::from_utf8(lists_part) {
        watchers.extend(presence::list_entries(text).unwrap_or_default());
    }
    watchers.truncate(16);
    spheres.truncate(4);

    for now in [i64::MIN, 0, 1_747_300_000, i64::MAX] {
        for &sphere in &spheres {
            let request = |watcher| Request {
                presentity: PRESENTITY,
                watcher,
                now,
                sphere,
            };

            // Anonymous: never resolves a list.
            calls.set(0);
            let anonymous = authorize(rules.as_ref(), &request(None), &resolver);
            assert_eq!(calls.get(), 0, "an anonymous request consulted the lists");
            check_shape(&anonymous);
            assert_eq!(
                authorize(None, &request(None), &resolver),
                Decision::CONFIRM
            );

            for (i, watcher) in watchers.iter().enumerate() {
                let request = request(Some(watcher.as_str()));
                calls.set(0);
                let decision = authorize(rules.as_ref(), &request, &resolver);
                assert!(
                    calls.get() <= MAX_ANCHORS,
                    "{} anchors resolved",
                    calls.get()
                );
                check_shape(&decision);
                assert_eq!(authorize(rules.as_ref(), &request, &resolver), decision);
                let without_rules = authorize(None, &request, &resolver);
                // The first two watchers are the presentity itself.
                if i < 2 {
                    assert_eq!(decision, Decision::ALLOW_ALL, "own subscription");
                    assert_eq!(without_rules, Decision::ALLOW_ALL, "own subscription");
                } else if without_rules != Decision::ALLOW_ALL {
                    assert_eq!(without_rules, Decision::CONFIRM);
                }
            }
        }
    }
});
