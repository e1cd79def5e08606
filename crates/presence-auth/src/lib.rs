//! Presence subscription authorization from the presentity's pres-rules, sans-IO.
//!
//! Implements rule evaluation and combination of common-policy (RFC 4745 §7 conditions, §10
//! combining: every matching rule contributes, the largest `sub-handling` wins), the
//! `sub-handling` action of pres-rules (RFC 5025 §3.2.1) and its transformations (§4), and the
//! OMA conditions Blink writes (`external-list`, `other-identity`, `anonymous-request`;
//! blink-compat §1.6, §7 SIP item 7).
//!
//! Inputs are plain values (the parsed [`Ruleset`], the watcher's authenticated URI, the time)
//! and a [`ListResolver`] for external lists; nothing here does I/O or reads the clock. When a
//! pres-rules or resource-lists document changes, the caller calls [`authorize`] again for
//! every affected subscription and applies [`transition`] to the old and new decisions.

mod anchor;
mod datetime;
mod identity;

pub use anchor::ListAnchor;
pub use simple_payloads::common_policy::{Ruleset, SubHandling, Transformations};

use identity::{entry_key, IdentityKey};
use simple_payloads::common_policy::{Conditions, Except, Identity, Rule};

/// Looks up the lists that `ocp:external-list` anchors point to, normally in the presentity's
/// resource-lists document. Closures `Fn(&ListAnchor) -> Vec<String>` implement it.
pub trait ListResolver {
    /// The `entry/@uri` values of the list the anchor designates, as stored (Blink's are
    /// percent-encoded, some lack a scheme); empty when there is no such list. The resolver
    /// also decides whether `anchor.document` is one the presentity may refer to.
    fn entries(&self, anchor: &ListAnchor) -> Vec<String>;
}

impl<F: Fn(&ListAnchor) -> Vec<String>> ListResolver for F {
    fn entries(&self, anchor: &ListAnchor) -> Vec<String> {
        self(anchor)
    }
}

/// The subscription being authorized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The presentity's AOR, e.g. `sip:alice@example.com`.
    pub presentity: &'a str,
    /// The watcher's authenticated identity (its AOR); `None` for an anonymous request.
    pub watcher: Option<&'a str>,
    /// The current time in Unix seconds, for `cp:validity` conditions.
    pub now: i64,
    /// The presentity's current sphere, for `cp:sphere` conditions; `None` matches no sphere.
    pub sphere: Option<&'a str>,
}

/// The outcome of authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// What to do with the subscription.
    pub handling: SubHandling,
    /// For [`SubHandling::Allow`], the combined `provide-*` permissions of the matching rules
    /// that have any; `None` means the whole document, as Blink's rules (which never carry
    /// transformations) intend (blink-compat §1.6). Always `None` for the other handlings.
    pub transformations: Option<Transformations>,
}

impl Decision {
    /// `confirm` with nothing provided: the answer without a pres-rules document, and when no
    /// matching rule sets `sub-handling` (the pending state RFC 5025 §3.2.1 describes for
    /// subscriptions nobody has decided on yet).
    pub const CONFIRM: Decision = Decision {
        handling: SubHandling::Confirm,
        transformations: None,
    };

    /// `allow` with the whole document.
    pub const ALLOW_ALL: Decision = Decision {
        handling: SubHandling::Allow,
        transformations: None,
    };

    /// True if the watcher receives the composed document unfiltered.
    pub fn full_document(&self) -> bool {
        self.handling == SubHandling::Allow && self.transformations.is_none()
    }
}

/// Decides a presence subscription.
///
/// - A watcher subscribing to its own AOR is allowed the whole document whatever the rules say
///   (blink-compat §4.3 relies on it; Blink's `wp_prs_allow_own` rule says the same).
/// - Without a pres-rules document: [`Decision::CONFIRM`].
/// - Otherwise every rule whose conditions all hold applies (RFC 4745 §10.1): identity (`one`,
///   `many` with `except`), external-list membership (entries percent-decoded, `sip:` added
///   to scheme-less ones), `other-identity` (an identified watcher that no *other* rule's
///   identity or external-list condition matches), `anonymous-request` (no identity), sphere
///   and validity; an unknown condition never holds. The largest `sub-handling` of the
///   applicable rules wins (RFC 4745 §10.2), `confirm` if none sets one.
pub fn authorize(
    rules: Option<&Ruleset>,
    request: &Request<'_>,
    lists: &dyn ListResolver,
) -> Decision {
    let watcher = request.watcher.and_then(entry_key);
    if let (Some(watcher), Some(presentity)) = (&watcher, entry_key(request.presentity)) {
        if *watcher == presentity {
            return Decision::ALLOW_ALL;
        }
    }
    let Some(rules) = rules else {
        return Decision::CONFIRM;
    };

    let mut evaluator = Evaluator {
        watcher: watcher.as_ref(),
        lists,
        memberships: Vec::new(),
    };
    // RFC 4745 identity and OMA external-list conditions, per rule: None when the rule has
    // neither, which matters for other-identity.
    let identified: Vec<Option<bool>> = rules
        .rules
        .iter()
        .map(|rule| evaluator.identity_conditions(&rule.conditions))
        .collect();
    let identified_count = identified.iter().filter(|m| **m == Some(true)).count();

    let mut handling: Option<SubHandling> = None;
    let mut transformations: Option<Transformations> = None;
    for (rule, identified) in rules.rules.iter().zip(&identified) {
        let others_identified = identified_count - usize::from(*identified == Some(true));
        if !applies(
            rule,
            *identified,
            others_identified,
            request,
            watcher.is_some(),
        ) {
            continue;
        }
        handling = handling.max(rule.sub_handling);
        if let Some(provided) = &rule.transformations {
            match &mut transformations {
                Some(combined) => combined.combine(provided),
                None => transformations = Some(provided.clone()),
            }
        }
    }
    match handling {
        Some(SubHandling::Allow) => Decision {
            handling: SubHandling::Allow,
            transformations,
        },
        Some(handling) => Decision {
            handling,
            transformations: None,
        },
        None => Decision::CONFIRM,
    }
}

fn applies(
    rule: &Rule,
    identified: Option<bool>,
    others_identified: usize,
    request: &Request<'_>,
    has_identity: bool,
) -> bool {
    let c = &rule.conditions;
    !c.unsupported
        && identified != Some(false)
        && (!c.other_identity || (has_identity && others_identified == 0))
        && (!c.anonymous_request || !has_identity)
        && c.spheres.iter().all(|value| {
            request.sphere.is_some_and(|sphere| {
                value
                    .split_whitespace()
                    .any(|v| v.eq_ignore_ascii_case(sphere.trim()))
            })
        })
        && c.validities.iter().all(|intervals| {
            intervals.iter().any(|interval| {
                match (
                    datetime::parse_unix(&interval.from),
                    datetime::parse_unix(&interval.until),
                ) {
                    (Some(from), Some(until)) => from <= request.now && request.now < until,
                    _ => false,
                }
            })
        })
}

/// Most distinct anchors resolved for one decision: each costs a resolver call.
const MAX_ANCHORS: usize = 64;

struct Evaluator<'a> {
    watcher: Option<&'a IdentityKey>,
    lists: &'a dyn ListResolver,
    /// Anchors already resolved in this decision and whether the watcher is on that list:
    /// Blink's rules name each list once, but nothing stops a document from repeating them.
    memberships: Vec<(&'a str, bool)>,
}

impl<'a> Evaluator<'a> {
    fn identity_conditions(&mut self, conditions: &'a Conditions) -> Option<bool> {
        if conditions.identities.is_empty() && conditions.external_lists.is_empty() {
            return None;
        }
        let Some(watcher) = self.watcher else {
            // RFC 4745 §7.1: identity conditions match authenticated identities only.
            return Some(false);
        };
        let identities = conditions
            .identities
            .iter()
            .all(|identity| identity_matches(identity, watcher));
        Some(
            identities
                && conditions
                    .external_lists
                    .iter()
                    .all(|anchors| anchors.iter().any(|anchor| self.on_list(anchor, watcher))),
        )
    }

    fn on_list(&mut self, anchor: &'a str, watcher: &IdentityKey) -> bool {
        if let Some((_, member)) = self.memberships.iter().find(|(a, _)| *a == anchor) {
            return *member;
        }
        if self.memberships.len() == MAX_ANCHORS {
            return false;
        }
        let member = ListAnchor::parse(anchor).is_some_and(|parsed| {
            self.lists
                .entries(&parsed)
                .iter()
                .any(|entry| entry_key(entry).as_ref() == Some(watcher))
        });
        self.memberships.push((anchor, member));
        member
    }
}

fn identity_matches(identity: &Identity, watcher: &IdentityKey) -> bool {
    identity
        .one
        .iter()
        .any(|id| entry_key(id).as_ref() == Some(watcher))
        || identity.many.iter().any(|many| {
            let Some(domain) = watcher.domain() else {
                return false;
            };
            many.domain
                .as_deref()
                .is_none_or(|d| d.eq_ignore_ascii_case(domain))
                && !many.except.iter().any(|except| match except {
                    Except::Domain(d) => d.eq_ignore_ascii_case(domain),
                    Except::Id(id) => entry_key(id).as_ref() == Some(watcher),
                })
        })
}

/// What a subscription must do when its decision changes, e.g. after a pres-rules or
/// resource-lists change (issue 4: pending becomes active with a NOTIFY, active becomes
/// terminated, and no NOTIFY carries state the new rules forbid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Nothing the watcher sees changes.
    Unchanged,
    /// End the subscription (`Subscription-State: terminated;reason=rejected`, winfo event
    /// `rejected`).
    Terminate,
    /// Make it pending again: the presentity must decide (winfo status `pending`).
    Suspend,
    /// Make a pending subscription active and NOTIFY its view (winfo event `approved`).
    Activate,
    /// Still active, but its view changed (full, filtered or polite-block's closed document):
    /// NOTIFY the new view.
    Renotify,
}

/// The transition from the `previous` decision of a subscription to the `next` one.
pub fn transition(previous: &Decision, next: &Decision) -> Transition {
    use SubHandling::*;
    match (previous.handling, next.handling) {
        (Block, Block) | (Confirm, Confirm) => Transition::Unchanged,
        (_, Block) => Transition::Terminate,
        (_, Confirm) => Transition::Suspend,
        (Block | Confirm, PoliteBlock | Allow) => Transition::Activate,
        (PoliteBlock, PoliteBlock) => Transition::Unchanged,
        (Allow, Allow) if previous.transformations == next.transformations => Transition::Unchanged,
        (PoliteBlock | Allow, PoliteBlock | Allow) => Transition::Renotify,
    }
}

#[cfg(test)]
mod tests;
