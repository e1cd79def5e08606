//! Sans-IO event state compositor (ESC) state for SIP PUBLISH: RFC 3903 §6 (processing
//! PUBLISH requests: entity tags, initial / refresh / modify / remove, 412, 423, 489),
//! §11 (SIP-ETag, SIP-If-Match), and RFC 3261 §21.4.16 (415 with Accept).
//!
//! Package-agnostic: the caller declares the events it composes and their body types, passes
//! each PUBLISH it has authenticated and authorised for an AOR, and gets back the response
//! bytes plus what changed. Bodies are stored exactly as received; composing them is the
//! event package's business ([`Esc::publications`]). Time enters as [`Instant`];
//! [`Esc::export`] and [`Esc::import`] convert expiry to unix seconds for persistence.
//!
//! ```text
//! PUBLISH (server transaction) -> on_publish(request, aor, now) -> PublishOutcome
//!     send `response`; if `changed()` names (event, aor): re-compose and notify
//! after every call             -> next_deadline(); at that instant on_timer(now) -> expired
//! ```

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::RngCore;
use sip_message::{default_reason, response_to, HeaderName, Message, Method};

/// One event package the ESC accepts publications for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventConfig {
    /// Event package, e.g. `presence`.
    pub event: String,
    /// Body types accepted (`type/subtype`); others get 415 listing these.
    pub content_types: Vec<String>,
    /// Shorter non-zero requested lifetimes get 423 with Min-Expires.
    pub min_expires: u32,
    /// Longer requested lifetimes are shortened to this.
    pub max_expires: u32,
    /// Lifetime when the PUBLISH has no Expires.
    pub default_expires: u32,
}

impl EventConfig {
    /// An event with 60/3600/3600 s expiry limits.
    pub fn new(event: &str, content_types: &[&str]) -> EventConfig {
        EventConfig {
            event: event.to_owned(),
            content_types: content_types.iter().map(|c| (*c).to_owned()).collect(),
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
        }
    }
}

/// ESC policy and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub events: Vec<EventConfig>,
    /// Larger bodies get 413.
    pub max_body_bytes: usize,
    /// Live publications per (event, AOR), one per device in practice; beyond it, 403.
    pub max_per_aor: usize,
    /// Live publications in total; beyond it, 503 with `Retry-After`.
    pub max_publications: usize,
    /// `Retry-After` seconds in that 503.
    pub overload_retry_after: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            events: Vec::new(),
            max_body_bytes: 64 * 1024,
            max_per_aor: 20,
            max_publications: 100_000,
            overload_retry_after: 60,
        }
    }
}

/// One piece of published event state (one entity tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    /// Stays as the entity tag changes: the tag the publication was created with. Saved
    /// state is keyed by it, so a modify or refresh rewrites one record where keying by
    /// entity tag would delete one and write another.
    pub id: String,
    pub etag: String,
    pub event: String,
    pub aor: String,
    /// Content-Type as received, parameters included.
    pub content_type: String,
    /// The body exactly as received.
    pub body: Bytes,
    pub expires_at: Instant,
}

/// A publication as plain data, for persistence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicationRecord {
    /// [`Publication::id`].
    pub id: String,
    pub etag: String,
    pub event: String,
    pub aor: String,
    pub content_type: String,
    pub body: Bytes,
    /// Unix seconds.
    pub expires_at: u64,
}

/// Which RFC 3903 §4 operation a successful PUBLISH was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Body without SIP-If-Match.
    Initial,
    /// SIP-If-Match without body: new lifetime and entity tag, same state.
    Refresh,
    /// SIP-If-Match with body: the state is replaced.
    Modify,
    /// SIP-If-Match with `Expires: 0`.
    Remove,
}

/// What a successful PUBLISH did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub operation: Operation,
    pub event: String,
    pub aor: String,
    /// The entity tag in the response (for Remove, the removed one).
    pub etag: String,
    /// The entity tag the request's SIP-If-Match named.
    pub previous_etag: Option<String>,
    /// Granted lifetime in seconds.
    pub expires: u32,
}

/// Result of [`Esc::on_publish`].
#[derive(Debug, Clone)]
pub struct PublishOutcome {
    /// Send on the PUBLISH's server transaction.
    pub response: Bytes,
    pub status: u16,
    /// Set for every 2xx except an initial PUBLISH with `Expires: 0`, which stores nothing.
    pub applied: Option<Applied>,
}

impl PublishOutcome {
    /// The (event, AOR) whose composed state changed, if any: refreshes change nothing a
    /// watcher sees.
    pub fn changed(&self) -> Option<(&str, &str)> {
        self.applied
            .as_ref()
            .filter(|a| a.operation != Operation::Refresh)
            .map(|a| (a.event.as_str(), a.aor.as_str()))
    }
}

struct Refusal {
    code: u16,
    reason: Option<String>,
    headers: Vec<(&'static str, String)>,
}

impl Refusal {
    fn new(code: u16) -> Refusal {
        Refusal {
            code,
            reason: None,
            headers: Vec::new(),
        }
    }
    fn bad(reason: impl ToString) -> Refusal {
        Refusal {
            reason: Some(reason.to_string()),
            ..Refusal::new(400)
        }
    }
    fn with(mut self, name: &'static str, value: String) -> Refusal {
        self.headers.push((name, value));
        self
    }
}

type Key = (String, String);

/// The event state compositor's publications.
#[derive(Debug)]
pub struct Esc {
    config: Config,
    rng: StdRng,
    /// By entity tag. Tags are ours and AORs are the authenticated publisher's, so no peer
    /// chooses these keys and a fast hash serves: SipHash was a tenth of a PUBLISH's cost.
    publications: HashMap<String, Publication, foldhash::fast::RandomState>,
    /// Entity tags per (event, AOR), oldest publication first (a modify keeps its place).
    by_key: HashMap<Key, Vec<String>, foldhash::fast::RandomState>,
    timers: BTreeSet<(Instant, String)>,
    /// Publications created, changed or removed since the last [`Esc::take_changes`]:
    /// [`Publication::id`] to the current entity tag, None once removed.
    changed: BTreeMap<String, Option<String>>,
}

impl Esc {
    /// `rng` makes entity tags and To tags; seed it from entropy in the server.
    pub fn new(config: Config, rng: StdRng) -> Esc {
        Esc {
            config,
            rng,
            publications: HashMap::default(),
            by_key: HashMap::default(),
            timers: BTreeSet::new(),
            changed: BTreeMap::new(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn len(&self) -> usize {
        self.publications.len()
    }

    pub fn is_empty(&self) -> bool {
        self.publications.is_empty()
    }

    /// Publications of `aor` for `event`, oldest first. Ones past their expiry stay until
    /// [`Esc::on_timer`] runs at [`Esc::next_deadline`].
    pub fn publications<'a>(
        &'a self,
        event: &str,
        aor: &str,
    ) -> impl Iterator<Item = &'a Publication> + 'a {
        self.by_key
            .get(&(event.to_owned(), aor.to_owned()))
            .into_iter()
            .flatten()
            .filter_map(|etag| self.publications.get(etag))
    }

    /// Process a PUBLISH for `aor` (the caller has authenticated the publisher and checked
    /// it may publish for `aor`).
    pub fn on_publish(&mut self, request: &Message, aor: &str, now: Instant) -> PublishOutcome {
        let result = self.publish(request, aor, now);
        let tag = token(&mut self.rng);
        match result {
            Ok(applied) => {
                let expires = applied.expires.to_string();
                let mut w = response_to(request, 200, default_reason(200), Some(&tag));
                w.header("SIP-ETag", &applied.etag)
                    .header("Expires", &expires);
                PublishOutcome {
                    response: w.finish(None, b""),
                    status: 200,
                    applied: (applied.operation != Operation::Initial || applied.expires > 0)
                        .then_some(applied),
                }
            }
            Err(refusal) => {
                let reason = refusal
                    .reason
                    .as_deref()
                    .unwrap_or_else(|| default_reason(refusal.code));
                let mut w = response_to(request, refusal.code, reason, Some(&tag));
                for (name, value) in &refusal.headers {
                    w.header(name, value);
                }
                PublishOutcome {
                    response: w.finish(None, b""),
                    status: refusal.code,
                    applied: None,
                }
            }
        }
    }

    fn publish(&mut self, request: &Message, aor: &str, now: Instant) -> Result<Applied, Refusal> {
        if request.method() != Some(&Method::Publish) {
            return Err(Refusal::new(405).with("Allow", "PUBLISH".to_owned()));
        }
        // §6 step 2: the event package.
        let event = request.event().map_err(Refusal::bad)?;
        let ev = event
            .and_then(|e| {
                self.config
                    .events
                    .iter()
                    .find(|c| c.event.eq_ignore_ascii_case(e.package))
            })
            .ok_or_else(|| self.bad_event())?
            .clone();
        let requested = request
            .u32_header(&HeaderName::Expires)
            .map_err(Refusal::bad)?;
        let if_match = request.header(&HeaderName::SipIfMatch).map(str::trim);
        let body = request.body();
        let content_type = if body.is_empty() {
            None
        } else {
            Some(self.check_body(request, &ev, body.len())?)
        };
        let expires = match requested {
            None => ev.default_expires.min(ev.max_expires),
            Some(0) => 0,
            Some(e) => e.min(ev.max_expires),
        };
        let key = (ev.event.clone(), aor.to_owned());

        // §6 step 4: which publication the request is about.
        let Some(etag) = if_match else {
            let Some(content_type) = content_type else {
                return Err(Refusal::bad("Missing Body or SIP-If-Match"));
            };
            check_min(&ev, requested)?;
            let applied = Applied {
                operation: Operation::Initial,
                event: ev.event.clone(),
                aor: aor.to_owned(),
                etag: token(&mut self.rng),
                previous_etag: None,
                expires,
            };
            if expires > 0 {
                self.check_limits(&key)?;
                self.insert(Publication {
                    id: applied.etag.clone(),
                    etag: applied.etag.clone(),
                    event: ev.event,
                    aor: aor.to_owned(),
                    content_type,
                    body,
                    expires_at: now + secs(expires),
                });
            }
            return Ok(applied);
        };
        let live = self
            .publications
            .get(etag)
            .is_some_and(|p| p.event == ev.event && p.aor == aor && p.expires_at > now);
        if !live {
            return Err(Refusal::new(412));
        }
        // §6 step 5: the lifetime.
        check_min(&ev, requested)?;
        let previous_etag = Some(etag.to_owned());
        if expires == 0 {
            self.remove(etag);
            return Ok(Applied {
                operation: Operation::Remove,
                event: ev.event,
                aor: aor.to_owned(),
                etag: etag.to_owned(),
                previous_etag,
                expires: 0,
            });
        }
        let Some(mut publication) = self.remove_entry(etag) else {
            return Err(Refusal::new(412));
        };
        // §6 step 5/7: every successful refresh or modify gets a fresh entity tag.
        let new_etag = token(&mut self.rng);
        let operation = match content_type {
            Some(content_type) => {
                publication.content_type = content_type;
                publication.body = body;
                Operation::Modify
            }
            None => Operation::Refresh,
        };
        publication.etag.clone_from(&new_etag);
        publication.expires_at = now + secs(expires);
        if let Some(tags) = self.by_key.get_mut(&key) {
            for tag in tags.iter_mut().filter(|t| t.as_str() == etag) {
                tag.clone_from(&new_etag);
            }
        }
        self.timers
            .insert((publication.expires_at, new_etag.clone()));
        self.changed
            .insert(publication.id.clone(), Some(new_etag.clone()));
        self.publications.insert(new_etag.clone(), publication);
        Ok(Applied {
            operation,
            event: ev.event,
            aor: aor.to_owned(),
            etag: new_etag,
            previous_etag,
            expires,
        })
    }

    /// When [`Esc::on_timer`] must next run.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.first().map(|(at, _)| *at)
    }

    /// Remove the publications whose lifetime ended; the caller re-composes each
    /// (event, AOR) they name and notifies its watchers.
    pub fn on_timer(&mut self, now: Instant) -> Vec<Publication> {
        let due: Vec<String> = self
            .timers
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, etag)| etag.clone())
            .collect();
        due.iter().filter_map(|etag| self.remove(etag)).collect()
    }

    /// Every publication as plain data; `now_unix` is `now` in unix seconds.
    pub fn export(&self, now: Instant, now_unix: u64) -> Vec<PublicationRecord> {
        let mut keys: Vec<&Key> = self.by_key.keys().collect();
        keys.sort();
        keys.into_iter()
            .flat_map(|(event, aor)| self.publications(event, aor))
            .map(|p| record(p, now, now_unix))
            .collect()
    }

    /// What changed since the last call (or since creation): the live publications among
    /// them as plain data, and the [`Publication::id`]s of those gone. Persistence stores
    /// just these instead of a whole [`Esc::export`]; the set of changes is bounded by the
    /// publications touched since the last call, however often each was modified.
    pub fn take_changes(
        &mut self,
        now: Instant,
        now_unix: u64,
    ) -> (Vec<PublicationRecord>, Vec<String>) {
        let mut records = Vec::new();
        let mut removed = Vec::new();
        for (id, etag) in std::mem::take(&mut self.changed) {
            match etag.and_then(|etag| self.publications.get(&etag)) {
                Some(p) => records.push(record(p, now, now_unix)),
                None => removed.push(id),
            }
        }
        (records, removed)
    }

    /// Marks the publication `id` changed, so the next [`Esc::take_changes`] reports it, as
    /// removed unless [`Esc::import`] brings it back: for records read back on start, which
    /// must be rewritten or deleted.
    pub fn touch(&mut self, id: &str) {
        self.changed.entry(id.to_owned()).or_insert(None);
    }

    /// Restore exported publications in order, skipping expired ones and entity tags
    /// already present.
    pub fn import(
        &mut self,
        records: impl IntoIterator<Item = PublicationRecord>,
        now: Instant,
        now_unix: u64,
    ) {
        for r in records {
            if r.expires_at <= now_unix || self.publications.contains_key(&r.etag) {
                continue;
            }
            self.insert(Publication {
                id: r.id,
                etag: r.etag,
                event: r.event,
                aor: r.aor,
                content_type: r.content_type,
                body: r.body,
                expires_at: now + secs(r.expires_at.saturating_sub(now_unix)),
            });
        }
    }

    // ------------------------------------------------------------------ internals

    /// 489 with every event we accept (RFC 3903 §6 step 2, RFC 6665 §8.3.2).
    fn bad_event(&self) -> Refusal {
        let names: Vec<&str> = self
            .config
            .events
            .iter()
            .map(|e| e.event.as_str())
            .collect();
        Refusal::new(489).with("Allow-Events", names.join(", "))
    }

    /// The body's Content-Type, when the event accepts it and the size is within limits.
    fn check_body(
        &self,
        request: &Message,
        ev: &EventConfig,
        len: usize,
    ) -> Result<String, Refusal> {
        if len > self.config.max_body_bytes {
            return Err(Refusal::new(413));
        }
        let unsupported = || Refusal::new(415).with("Accept", ev.content_types.join(", "));
        let media = request
            .content_type()
            .map_err(Refusal::bad)?
            .ok_or_else(unsupported)?;
        let known = ev.content_types.iter().any(|c| {
            c.split_once('/')
                .is_some_and(|(t, s)| media.is(t.trim(), s.trim()))
        });
        if !known {
            return Err(unsupported());
        }
        Ok(request
            .header(&HeaderName::ContentType)
            .unwrap_or_default()
            .to_owned())
    }

    fn check_limits(&self, key: &Key) -> Result<(), Refusal> {
        if self.publications.len() >= self.config.max_publications {
            return Err(
                Refusal::new(503).with("Retry-After", self.config.overload_retry_after.to_string())
            );
        }
        if self.by_key.get(key).map_or(0, Vec::len) >= self.config.max_per_aor {
            return Err(Refusal {
                reason: Some("Too Many Publications".to_owned()),
                ..Refusal::new(403)
            });
        }
        Ok(())
    }

    fn insert(&mut self, publication: Publication) {
        self.by_key
            .entry((publication.event.clone(), publication.aor.clone()))
            .or_default()
            .push(publication.etag.clone());
        self.timers
            .insert((publication.expires_at, publication.etag.clone()));
        self.changed
            .insert(publication.id.clone(), Some(publication.etag.clone()));
        self.publications
            .insert(publication.etag.clone(), publication);
    }

    /// Take a publication out of the tag and timer indexes, leaving its (event, AOR) slot.
    fn remove_entry(&mut self, etag: &str) -> Option<Publication> {
        let publication = self.publications.remove(etag)?;
        self.timers
            .remove(&(publication.expires_at, publication.etag.clone()));
        self.changed.insert(publication.id.clone(), None);
        Some(publication)
    }

    fn remove(&mut self, etag: &str) -> Option<Publication> {
        let publication = self.remove_entry(etag)?;
        let key = (publication.event.clone(), publication.aor.clone());
        if let Some(tags) = self.by_key.get_mut(&key) {
            tags.retain(|t| t != etag);
            if tags.is_empty() {
                self.by_key.remove(&key);
            }
        }
        Some(publication)
    }
}

fn record(p: &Publication, now: Instant, now_unix: u64) -> PublicationRecord {
    PublicationRecord {
        id: p.id.clone(),
        etag: p.etag.clone(),
        event: p.event.clone(),
        aor: p.aor.clone(),
        content_type: p.content_type.clone(),
        body: p.body.clone(),
        expires_at: now_unix.saturating_add(p.expires_at.saturating_duration_since(now).as_secs()),
    }
}

/// 423 for a non-zero lifetime below the event's minimum (RFC 3903 §6 step 5).
fn check_min(ev: &EventConfig, requested: Option<u32>) -> Result<(), Refusal> {
    match requested {
        Some(e) if e > 0 && e < ev.min_expires => {
            Err(Refusal::new(423).with("Min-Expires", ev.min_expires.to_string()))
        }
        _ => Ok(()),
    }
}

fn secs(s: impl Into<u64>) -> Duration {
    Duration::from_secs(s.into())
}

/// 128 random bits in hex: entity tags must not be guessable, or anyone could refresh or
/// remove another device's state (RFC 3903 §13).
fn token(rng: &mut StdRng) -> String {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}
