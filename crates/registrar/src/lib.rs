//! Sans-IO SIP registrar: RFC 3261 §10.3 (processing REGISTER), RFC 5627 §5.1 (GRUUs in
//! the registrar), RFC 3327 §5.3 (Path).
//!
//! The registrar sees requests the server has already authenticated and authorised for an
//! AOR (RFC 3261 §10.3 steps 1–5 are the server's), and never does I/O: the server passes
//! the time, persists [`RegisterOutcome::bindings`] and only then calls
//! [`Registrar::apply`] and sends the response. Between [`Registrar::register`] and
//! [`Registrar::apply`] the server must not process another REGISTER for the same AOR,
//! or one of the two updates would be lost.

mod date;
mod gruu;
mod register;

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;
use sip_message::Uri;

pub use gruu::GruuTarget;

/// Registrar policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Shorter non-zero requested lifetimes get 423 Interval Too Brief.
    pub min_expires: u32,
    /// Longer requested lifetimes are shortened to this.
    pub max_expires: u32,
    /// Lifetime when neither the contact nor the request says.
    pub default_expires: u32,
    /// Bindings per AOR; a REGISTER that would exceed it gets 403.
    pub max_contacts: usize,
    /// Temporary GRUUs remembered per binding; the oldest are forgotten first. RFC 5627
    /// keeps every one valid while the binding lives, but a UA refreshing every 10 minutes
    /// would otherwise accumulate thousands.
    pub max_temp_gruus: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            max_contacts: 20,
            max_temp_gruus: 64,
        }
    }
}

/// One registered contact of an AOR; the store persists this type as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// `user@domain` (the AOR key).
    pub aor: String,
    /// The Contact URI, without angle brackets or header parameters.
    pub contact: String,
    /// `+sip.instance` with quotes removed, e.g. `<urn:uuid:...>`.
    pub instance: Option<String>,
    pub q: Option<f32>,
    pub call_id: String,
    pub cseq: u32,
    /// Unix seconds.
    pub expires_at: i64,
    /// Path header values of the REGISTER (RFC 3327), in order.
    pub path: Vec<String>,
    /// Transport the REGISTER arrived on (`udp`, `tcp`, `tls`...).
    pub transport: String,
    /// `ip:port` the REGISTER came from: requests for this contact reuse that flow.
    pub source: String,
    pub user_agent: Option<String>,
    /// Temporary GRUU tokens issued for this binding, oldest first (RFC 5627 §3.2).
    pub temp_gruus: Vec<String>,
}

/// Where a REGISTER came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin<'a> {
    /// `udp`, `tcp`, `tls`...
    pub transport: &'a str,
    /// `ip:port`.
    pub source: &'a str,
}

/// What to do with a REGISTER.
#[derive(Debug, Clone)]
pub struct RegisterOutcome {
    pub status: u16,
    /// The complete response to send.
    pub response: Bytes,
    /// The AOR's new complete binding set, when it changed: persist it, then
    /// [`Registrar::apply`] it, then send the response (a 500 instead if persisting fails).
    pub bindings: Option<Vec<Binding>>,
}

/// The current bindings of every AOR, and the temporary GRUUs issued for them.
pub struct Registrar {
    config: Config,
    /// HMAC key for temporary GRUU tokens; persisted so tokens keep meaning across restarts.
    gruu_key: Vec<u8>,
    by_aor: HashMap<String, Vec<Binding>>,
    /// Temporary GRUU token → (AOR, instance).
    temp_gruus: HashMap<String, (String, String)>,
    /// (earliest expiry, AOR) for every AOR: the server asks for the next expiry on every
    /// event-loop turn, so it must not cost a scan of all bindings.
    expiries: BTreeSet<(i64, String)>,
}

impl std::fmt::Debug for Registrar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The GRUU key must not end up in logs.
        f.debug_struct("Registrar")
            .field("config", &self.config)
            .field("aors", &self.by_aor.len())
            .field("temp_gruus", &self.temp_gruus.len())
            .finish_non_exhaustive()
    }
}

impl Registrar {
    pub fn new(config: Config, gruu_key: &[u8]) -> Registrar {
        Registrar {
            config,
            gruu_key: gruu_key.to_vec(),
            by_aor: HashMap::new(),
            temp_gruus: HashMap::new(),
            expiries: BTreeSet::new(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Install bindings loaded at start-up (any order); expired ones are dropped.
    pub fn load(&mut self, bindings: impl IntoIterator<Item = Binding>, now: i64) {
        let mut grouped: HashMap<String, Vec<Binding>> = HashMap::new();
        for binding in bindings.into_iter().filter(|b| b.expires_at > now) {
            grouped
                .entry(binding.aor.clone())
                .or_default()
                .push(binding);
        }
        for (aor, bindings) in grouped {
            self.apply(&aor, bindings);
        }
    }

    /// Process an authenticated REGISTER for `aor` (an AOR key, `user@domain`). Does not
    /// change the registrar: see [`RegisterOutcome::bindings`].
    pub fn register(
        &self,
        request: &sip_message::Message,
        aor: &str,
        origin: Origin<'_>,
        now: i64,
    ) -> RegisterOutcome {
        register::process(self, request, aor, origin, now)
    }

    /// Make `bindings` the AOR's binding set (empty removes the AOR).
    pub fn apply(&mut self, aor: &str, bindings: Vec<Binding>) {
        if let Some(old) = self.by_aor.remove(aor) {
            for token in old.iter().flat_map(|b| &b.temp_gruus) {
                self.temp_gruus.remove(token);
            }
            if let Some(earliest) = earliest_expiry(&old) {
                self.expiries.remove(&(earliest, aor.to_owned()));
            }
        }
        let Some(earliest) = earliest_expiry(&bindings) else {
            return;
        };
        self.expiries.insert((earliest, aor.to_owned()));
        for binding in &bindings {
            if let Some(instance) = &binding.instance {
                for token in &binding.temp_gruus {
                    self.temp_gruus
                        .insert(token.clone(), (aor.to_owned(), instance.clone()));
                }
            }
        }
        self.by_aor.insert(aor.to_owned(), bindings);
    }

    /// The AOR's unexpired bindings.
    pub fn bindings<'s>(&'s self, aor: &str, now: i64) -> impl Iterator<Item = &'s Binding> + 's {
        self.by_aor
            .get(aor)
            .into_iter()
            .flatten()
            .filter(move |b| b.expires_at > now)
    }

    /// Remove every binding that has expired; returns the AORs whose set changed, with
    /// their remaining bindings (to persist, or use `store`'s bulk expiry instead).
    pub fn expire(&mut self, now: i64) -> Vec<(String, Vec<Binding>)> {
        let due: Vec<String> = self
            .expiries
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, aor)| aor.clone())
            .collect();
        let changed: Vec<(String, Vec<Binding>)> = due
            .into_iter()
            .map(|aor| {
                let remaining = self
                    .by_aor
                    .get(&aor)
                    .into_iter()
                    .flatten()
                    .filter(|b| b.expires_at > now)
                    .cloned()
                    .collect();
                (aor, remaining)
            })
            .collect();
        for (aor, remaining) in &changed {
            self.apply(aor, remaining.clone());
        }
        changed
    }

    /// When the next binding expires, for the server's timer.
    pub fn next_expiry(&self) -> Option<i64> {
        self.expiries.first().map(|(at, _)| *at)
    }

    /// The instance a GRUU designates (RFC 5627 §5.3 — the proxy's question). Public GRUUs
    /// are recognised by form, whether or not the instance is registered now (the proxy
    /// answers 480 then, and 404 when this returns None); temporary GRUUs only while
    /// their binding lives.
    pub fn lookup_gruu(&self, uri: &Uri<'_>) -> Option<GruuTarget> {
        if let Some((token, domain)) = gruu::parse_temporary_gruu(uri) {
            let (aor, instance) = self.temp_gruus.get(token)?;
            let (_, aor_domain) = gruu::split_aor(aor);
            return aor_domain
                .eq_ignore_ascii_case(&domain)
                .then(|| GruuTarget {
                    aor: aor.clone(),
                    instance: instance.clone(),
                    temporary: true,
                });
        }
        gruu::parse_public_gruu(uri)
    }
}

fn earliest_expiry(bindings: &[Binding]) -> Option<i64> {
    bindings.iter().map(|b| b.expires_at).min()
}

#[cfg(test)]
mod expiry_index_tests {
    use super::*;

    fn binding(aor: &str, contact: &str, expires_at: i64) -> Binding {
        Binding {
            aor: aor.into(),
            contact: contact.into(),
            instance: None,
            q: None,
            call_id: "c".into(),
            cseq: 1,
            expires_at,
            path: Vec::new(),
            transport: "tcp".into(),
            source: "192.0.2.1:5060".into(),
            user_agent: None,
            temp_gruus: Vec::new(),
        }
    }

    #[test]
    fn next_expiry_follows_every_change() {
        let mut registrar = Registrar::new(Config::default(), b"key");
        assert_eq!(registrar.next_expiry(), None);
        registrar.apply(
            "a@x",
            vec![
                binding("a@x", "sip:a@h1", 500),
                binding("a@x", "sip:a@h2", 300),
            ],
        );
        registrar.apply("b@x", vec![binding("b@x", "sip:b@h", 400)]);
        assert_eq!(registrar.next_expiry(), Some(300));
        // a refresh moves a's earliest expiry past b's
        registrar.apply("a@x", vec![binding("a@x", "sip:a@h1", 900)]);
        assert_eq!(registrar.next_expiry(), Some(400));
        let expired = registrar.expire(400);
        assert_eq!(expired, vec![("b@x".to_string(), Vec::new())]);
        assert_eq!(registrar.next_expiry(), Some(900));
        registrar.apply("a@x", Vec::new());
        assert_eq!(registrar.next_expiry(), None);
    }

    #[test]
    fn expire_keeps_the_live_bindings_of_an_aor() {
        let mut registrar = Registrar::new(Config::default(), b"key");
        registrar.apply(
            "a@x",
            vec![
                binding("a@x", "sip:a@h1", 100),
                binding("a@x", "sip:a@h2", 200),
            ],
        );
        let expired = registrar.expire(150);
        assert_eq!(expired.len(), 1);
        assert_eq!(
            expired[0]
                .1
                .iter()
                .map(|b| b.contact.as_str())
                .collect::<Vec<_>>(),
            ["sip:a@h2"]
        );
        assert_eq!(registrar.next_expiry(), Some(200));
    }
}
