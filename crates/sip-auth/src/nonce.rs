//! Stateless nonces and replay protection (RFC 7616 §3.3 "nonce", §5.4–§5.5; RFC 2617 §4.5).
//!
//! A nonce is `hex(issue time) ‖ hex(random salt) ‖ hex(HMAC-SHA256(secret, time ‖ salt ‖
//! realm))[..32]`, so any
//! node holding the secret can validate it without remembering it, and it survives a restart
//! when the secret is persisted. State is only kept for nonces that have authenticated a
//! request: the `nc` values already used, so a captured request cannot be replayed.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::digest::{expected_response, response_matches, DigestCredentials};

/// Seconds a nonce stays valid; after that the client is re-challenged with `stale=true`,
/// which it answers without asking the user for a password.
pub const DEFAULT_NONCE_LIFETIME: u64 = 300;

/// Default bound on the number of nonces whose `nc` usage is remembered.
pub const DEFAULT_MAX_TRACKED: usize = 65_536;

/// Nodes sharing a secret may disagree slightly about the time; a nonce "from the future"
/// within this margin is still accepted.
const CLOCK_SKEW: u64 = 30;

const TIMESTAMP_HEX: usize = 16;
/// A random part, so that two challenges issued in the same second differ: a client
/// restarts `nc` at 1 for every new challenge, which would otherwise look like a replay.
const SALT_HEX: usize = 16;
const MAC_HEX: usize = 32;

/// `nc` values below the highest seen that are still individually remembered. Clients may
/// send several requests on one nonce concurrently (REGISTER and SUBSCRIBE...), so they
/// can arrive out of order; a window tolerates that without allowing reuse.
const NC_WINDOW: u32 = 64;

/// The state of a nonce as presented by a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceStatus {
    Valid,
    /// Ours, but too old (or from a clock that jumped): challenge again with `stale=true`.
    Stale,
    /// Not issued by us for this realm.
    Invalid,
}

/// The result of checking digest credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    Ok,
    /// The response is right but the nonce is no longer usable: send a new challenge with
    /// `stale=true` (RFC 7616 §3.3), so the client retries without prompting.
    Stale,
    /// Wrong password, unknown algorithm, malformed parameters...: challenge again
    /// without `stale` (or reject after repeated failures).
    Failed(&'static str),
    /// A correct response whose (nonce, nc) pair was already used: a replayed request.
    /// Treat like a failure: challenge again with a fresh nonce.
    Replay,
}

/// Issues and checks nonces, and remembers which `nc` values each one has used.
///
/// Thread-safe (`&self` everywhere) so one instance can serve every connection.
pub struct Nonces {
    secret: Vec<u8>,
    lifetime: u64,
    max_tracked: usize,
    used: Mutex<UsedNonces>,
}

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret must not end up in logs.
        f.debug_struct("Nonces")
            .field("lifetime", &self.lifetime)
            .field("max_tracked", &self.max_tracked)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct UsedNonces {
    by_nonce: HashMap<String, NcWindow>,
    /// When the map overflowed, the entries issued at or before this time were dropped;
    /// such nonces can no longer be proven unused, so they are reported stale.
    forgotten_up_to: Option<u64>,
    last_purge: u64,
}

struct NcWindow {
    issued: u64,
    highest: u32,
    /// Bit `i` set: `highest - i` was used.
    seen: u64,
}

impl NcWindow {
    /// Record `nc`; false if it was already used or is too old to tell.
    fn accept(&mut self, nc: u32) -> bool {
        if nc > self.highest {
            let shift = nc - self.highest;
            self.seen = if shift >= 64 { 0 } else { self.seen << shift };
            self.seen |= 1;
            self.highest = nc;
            return true;
        }
        let back = self.highest - nc;
        if back >= NC_WINDOW {
            return false;
        }
        let bit = 1u64 << back;
        if self.seen & bit != 0 {
            return false;
        }
        self.seen |= bit;
        true
    }
}

type HmacSha256 = Hmac<Sha256>;

/// 32 random bytes from the OS generator, suitable as a nonce or GRUU secret.
pub fn generate_secret() -> Vec<u8> {
    use rand::RngCore;
    let mut secret = vec![0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    secret
}

impl Nonces {
    /// Use a persisted secret, so nonces stay valid across restarts and across nodes.
    pub fn new(secret: &[u8]) -> Nonces {
        Nonces {
            secret: secret.to_vec(),
            lifetime: DEFAULT_NONCE_LIFETIME,
            max_tracked: DEFAULT_MAX_TRACKED,
            used: Mutex::new(UsedNonces::default()),
        }
    }

    /// A fresh random secret: outstanding nonces die with the process.
    pub fn with_random_secret() -> Nonces {
        Nonces::new(&generate_secret())
    }

    pub fn with_lifetime(mut self, seconds: u64) -> Nonces {
        self.lifetime = seconds;
        self
    }

    pub fn with_max_tracked(mut self, entries: usize) -> Nonces {
        self.max_tracked = entries.max(1);
        self
    }

    /// The `WWW-Authenticate` / `Proxy-Authenticate` values of one challenge: one per
    /// algorithm in the order given (RFC 8760 §2.4: most preferred first), sharing one fresh
    /// nonce, `qop="auth"`, and `stale=true` when the client's nonce had only expired.
    pub fn challenges(
        &self,
        realm: &str,
        stale: bool,
        algorithms: &[crate::Algorithm],
        now: u64,
    ) -> Vec<String> {
        let nonce = self.issue(realm, now);
        algorithms
            .iter()
            .map(|algorithm| {
                sip_message::Challenge {
                    realm: realm.into(),
                    nonce: nonce.as_str().into(),
                    algorithm: Some(algorithm.as_str().into()),
                    qop: Some("auth".into()),
                    stale,
                    ..sip_message::Challenge::default()
                }
                .to_header_value()
            })
            .collect()
    }

    /// A new nonce for a challenge in `realm`.
    pub fn issue(&self, realm: &str, now: u64) -> String {
        let mut nonce = format!("{now:016x}{:016x}", rand::random::<u64>());
        let mac = self.mac_hex(&nonce, realm);
        nonce.push_str(&mac);
        nonce
    }

    /// Whether `nonce` was issued by us for `realm` and is still within its lifetime.
    pub fn check(&self, nonce: &str, realm: &str, now: u64) -> NonceStatus {
        match self.issued_at(nonce, realm) {
            None => NonceStatus::Invalid,
            Some(issued) if self.is_fresh(issued, now) => NonceStatus::Valid,
            Some(_) => NonceStatus::Stale,
        }
    }

    /// Check credentials for a request with `method` against the account's stored HA1
    /// (the one for `Algorithm::from_param(creds.algorithm)?.base()`).
    ///
    /// The caller is responsible for choosing `stored_ha1` by `creds.username` and its own
    /// realm, and for deciding whether `creds.uri` designates the request's target.
    pub fn verify(
        &self,
        method: &str,
        creds: &DigestCredentials<'_>,
        stored_ha1: &str,
        now: u64,
    ) -> AuthOutcome {
        let expected = match expected_response(method, creds, stored_ha1) {
            Ok(expected) => expected,
            Err(malformed) => return AuthOutcome::Failed(malformed.reason()),
        };
        if !response_matches(creds.response, &expected) {
            return AuthOutcome::Failed("wrong response");
        }
        // Only a correct response may be told "stale" (RFC 7616 §3.3): an invalid nonce with
        // a correct response is typically one issued before a secret change.
        let Some(issued) = self.issued_at(creds.nonce, creds.realm) else {
            return AuthOutcome::Stale;
        };
        if !self.is_fresh(issued, now) {
            return AuthOutcome::Stale;
        }
        match creds.qop {
            Some(_) => {
                let Some(nc) = creds.nc.and_then(parse_nc) else {
                    return AuthOutcome::Failed("invalid nc");
                };
                self.record_use(creds.nonce, issued, nc, now)
            }
            // RFC 2069 clients reuse a nonce without a counter: allow each nonce once and
            // make them fetch a new one (stale, so no password prompt) for the next request.
            None => match self.record_use(creds.nonce, issued, 0, now) {
                AuthOutcome::Replay => AuthOutcome::Stale,
                other => other,
            },
        }
    }

    fn mac_hex(&self, prefix: &str, realm: &str) -> String {
        let mac = self.mac(prefix, realm).finalize().into_bytes();
        hex::encode(&mac[..MAC_HEX / 2])
    }

    /// MAC over the nonce's time and salt (`prefix`) and the realm, separated so that no
    /// realm can be confused with a longer prefix.
    fn mac(&self, prefix: &str, realm: &str) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(prefix.as_bytes());
        mac.update(b"\0");
        mac.update(realm.as_bytes());
        mac
    }

    /// The issue time of a nonce whose MAC is correct for `realm`.
    fn issued_at(&self, nonce: &str, realm: &str) -> Option<u64> {
        if nonce.len() != TIMESTAMP_HEX + SALT_HEX + MAC_HEX || !nonce.is_ascii() {
            return None;
        }
        let (prefix, mac_hex) = nonce.split_at(TIMESTAMP_HEX + SALT_HEX);
        let issued = u64::from_str_radix(&prefix[..TIMESTAMP_HEX], 16).ok()?;
        let received = hex::decode(mac_hex).ok()?;
        self.mac(prefix, realm)
            .verify_truncated_left(&received)
            .ok()?;
        Some(issued)
    }

    fn is_fresh(&self, issued: u64, now: u64) -> bool {
        issued <= now.saturating_add(CLOCK_SKEW) && now < issued.saturating_add(self.lifetime)
    }

    fn lock(&self) -> MutexGuard<'_, UsedNonces> {
        // A panic elsewhere while holding the lock leaves the map consistent (every update
        // is a single insert or field write), so poisoning is not a reason to fail.
        self.used
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn record_use(&self, nonce: &str, issued: u64, nc: u32, now: u64) -> AuthOutcome {
        let mut used = self.lock();
        if now >= used.last_purge.saturating_add(self.lifetime) {
            self.purge_expired(&mut used, now);
        }
        if let Some(window) = used.by_nonce.get_mut(nonce) {
            return if window.accept(nc) {
                AuthOutcome::Ok
            } else {
                AuthOutcome::Replay
            };
        }
        if used.forgotten_up_to.is_some_and(|limit| issued <= limit) {
            return AuthOutcome::Stale;
        }
        if used.by_nonce.len() >= self.max_tracked {
            self.purge_expired(&mut used, now);
            if used.by_nonce.len() >= self.max_tracked {
                Self::forget_oldest(&mut used);
                if used.forgotten_up_to.is_some_and(|limit| issued <= limit) {
                    return AuthOutcome::Stale;
                }
            }
        }
        let mut window = NcWindow {
            issued,
            highest: 0,
            seen: 0,
        };
        window.accept(nc);
        used.by_nonce.insert(nonce.to_owned(), window);
        AuthOutcome::Ok
    }

    fn purge_expired(&self, used: &mut UsedNonces, now: u64) {
        used.last_purge = now;
        used.by_nonce.retain(|_, w| self.is_fresh(w.issued, now));
    }

    /// Drop the oldest quarter of the entries (amortising the scan) and remember the cut-off,
    /// so the dropped nonces turn stale instead of becoming replayable.
    fn forget_oldest(used: &mut UsedNonces) {
        let mut issued: Vec<u64> = used.by_nonce.values().map(|w| w.issued).collect();
        let index = issued.len() / 4;
        let (_, cutoff, _) = issued.select_nth_unstable(index);
        let cutoff = *cutoff;
        used.by_nonce.retain(|_, w| w.issued > cutoff);
        used.forgotten_up_to = Some(used.forgotten_up_to.map_or(cutoff, |old| old.max(cutoff)));
    }
}

/// `nc` is 8 hex digits (RFC 7616 §3.4); 0 is never sent by a conforming client.
fn parse_nc(nc: &str) -> Option<u32> {
    if nc.is_empty() || nc.len() > 8 {
        return None;
    }
    u32::from_str_radix(nc, 16).ok().filter(|&n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ha1, Algorithm};

    const REALM: &str = "example.com";
    const T0: u64 = 1_700_000_000;

    struct Client {
        ha1: String,
        nonce: String,
        cnonce: &'static str,
        algorithm: Algorithm,
    }

    impl Client {
        fn new(nonces: &Nonces, algorithm: Algorithm, password: &str, now: u64) -> Client {
            Client {
                ha1: ha1(algorithm, "alice", REALM, password),
                nonce: nonces.issue(REALM, now),
                cnonce: "0a4f113b",
                algorithm,
            }
        }

        /// Builds credentials for `nc` the way a client does, by computing the response.
        fn creds(&self, nc: &'static str) -> (DigestCredentials<'_>, String) {
            let creds = DigestCredentials {
                username: "alice",
                realm: REALM,
                nonce: &self.nonce,
                uri: "sip:example.com",
                response: "",
                algorithm: Some(self.algorithm.as_str()),
                cnonce: Some(self.cnonce),
                nc: Some(nc),
                qop: Some("auth"),
                opaque: None,
            };
            let response = expected_response("REGISTER", &creds, &self.ha1).unwrap();
            (creds, response)
        }

        fn verify(&self, nonces: &Nonces, nc: &'static str, stored: &str, now: u64) -> AuthOutcome {
            let (mut creds, response) = self.creds(nc);
            creds.response = &response;
            nonces.verify("REGISTER", &creds, stored, now)
        }
    }

    #[test]
    fn challenges_list_the_algorithms_in_order_with_one_nonce() {
        let nonces = Nonces::new(b"secret");
        let values = nonces.challenges(REALM, true, &[Algorithm::Md5, Algorithm::Sha256], T0);
        assert_eq!(values.len(), 2);
        let parsed: Vec<_> = values
            .iter()
            .map(|v| sip_message::Challenge::parse(v).unwrap())
            .collect();
        assert_eq!(parsed[0].algorithm.as_deref(), Some("MD5"));
        assert_eq!(parsed[1].algorithm.as_deref(), Some("SHA-256"));
        assert_eq!(parsed[0].nonce, parsed[1].nonce);
        assert_eq!(
            nonces.check(&parsed[0].nonce, REALM, T0),
            NonceStatus::Valid
        );
        assert!(parsed
            .iter()
            .all(|c| c.stale && c.realm == REALM && c.qop.as_deref() == Some("auth")));
    }

    #[test]
    fn nonce_is_valid_then_stale_after_its_lifetime() {
        let nonces = Nonces::new(b"secret").with_lifetime(300);
        let nonce = nonces.issue(REALM, T0);
        assert_eq!(nonce.len(), 64);
        assert!(nonce.starts_with(&format!("{T0:016x}")));
        assert_ne!(
            nonce,
            nonces.issue(REALM, T0),
            "two challenges in the same second differ"
        );
        assert_eq!(nonces.check(&nonce, REALM, T0), NonceStatus::Valid);
        assert_eq!(nonces.check(&nonce, REALM, T0 + 299), NonceStatus::Valid);
        assert_eq!(nonces.check(&nonce, REALM, T0 + 300), NonceStatus::Stale);
        assert_eq!(
            nonces.check(&nonce, REALM, T0 - CLOCK_SKEW - 1),
            NonceStatus::Stale
        );
    }

    #[test]
    fn nonce_is_bound_to_secret_and_realm() {
        let nonces = Nonces::new(b"secret");
        let nonce = nonces.issue(REALM, T0);
        assert_eq!(nonces.check(&nonce, "other.org", T0), NonceStatus::Invalid);
        assert_eq!(
            Nonces::new(b"other").check(&nonce, REALM, T0),
            NonceStatus::Invalid
        );
        assert_eq!(
            Nonces::new(b"secret").check(&nonce, REALM, T0),
            NonceStatus::Valid
        );
        let mut tampered = nonce.clone();
        tampered.replace_range(15..16, if &nonce[15..16] == "0" { "1" } else { "0" });
        assert_eq!(nonces.check(&tampered, REALM, T0), NonceStatus::Invalid);
        assert_eq!(nonces.check("", REALM, T0), NonceStatus::Invalid);
        assert_eq!(
            nonces.check(&"é".repeat(24), REALM, T0),
            NonceStatus::Invalid
        );
    }

    #[test]
    fn correct_password_is_accepted_for_both_algorithms() {
        let nonces = Nonces::new(b"secret");
        let algorithms = [
            Algorithm::Md5,
            Algorithm::Sha256,
            Algorithm::Md5Sess,
            Algorithm::Sha256Sess,
        ];
        // One nonce per algorithm (distinct issue times): sharing one would be a replay.
        for (issued, alg) in (T0..).zip(algorithms) {
            let client = Client::new(&nonces, alg, "pw", issued);
            let stored = ha1(alg.base(), "alice", REALM, "pw");
            assert_eq!(
                client.verify(&nonces, "00000001", &stored, T0 + 1),
                AuthOutcome::Ok,
                "{alg:?}"
            );
        }
    }

    #[test]
    fn wrong_password_fails() {
        let nonces = Nonces::new(b"secret");
        let client = Client::new(&nonces, Algorithm::Sha256, "guess", T0);
        let stored = ha1(Algorithm::Sha256, "alice", REALM, "pw");
        assert_eq!(
            client.verify(&nonces, "00000001", &stored, T0),
            AuthOutcome::Failed("wrong response")
        );
    }

    #[test]
    fn expired_nonce_with_right_password_is_stale_and_wrong_password_still_fails() {
        let nonces = Nonces::new(b"secret").with_lifetime(60);
        let client = Client::new(&nonces, Algorithm::Md5, "pw", T0);
        let stored = ha1(Algorithm::Md5, "alice", REALM, "pw");
        assert_eq!(
            client.verify(&nonces, "00000001", &stored, T0 + 60),
            AuthOutcome::Stale
        );
        let wrong = ha1(Algorithm::Md5, "alice", REALM, "other");
        assert_eq!(
            client.verify(&nonces, "00000001", &wrong, T0 + 60),
            AuthOutcome::Failed("wrong response")
        );
    }

    #[test]
    fn nonce_from_another_secret_with_right_password_is_stale() {
        let old = Nonces::new(b"before restart");
        let client = Client::new(&old, Algorithm::Md5, "pw", T0);
        let stored = ha1(Algorithm::Md5, "alice", REALM, "pw");
        let new = Nonces::new(b"after restart");
        assert_eq!(
            client.verify(&new, "00000001", &stored, T0),
            AuthOutcome::Stale
        );
    }

    #[test]
    fn reused_nc_is_a_replay_but_out_of_order_nc_is_accepted() {
        let nonces = Nonces::new(b"secret");
        let client = Client::new(&nonces, Algorithm::Sha256, "pw", T0);
        let stored = ha1(Algorithm::Sha256, "alice", REALM, "pw");
        assert_eq!(
            client.verify(&nonces, "00000001", &stored, T0),
            AuthOutcome::Ok
        );
        assert_eq!(
            client.verify(&nonces, "00000001", &stored, T0),
            AuthOutcome::Replay
        );
        assert_eq!(
            client.verify(&nonces, "00000003", &stored, T0),
            AuthOutcome::Ok
        );
        assert_eq!(
            client.verify(&nonces, "00000002", &stored, T0),
            AuthOutcome::Ok
        );
        assert_eq!(
            client.verify(&nonces, "00000002", &stored, T0),
            AuthOutcome::Replay
        );
        assert_eq!(
            client.verify(&nonces, "00000003", &stored, T0),
            AuthOutcome::Replay
        );
        assert_eq!(
            client.verify(&nonces, "00000100", &stored, T0),
            AuthOutcome::Ok
        );
        // 0x100 - 3 is beyond the window: can no longer be told apart from a replay.
        assert_eq!(
            client.verify(&nonces, "00000004", &stored, T0),
            AuthOutcome::Replay
        );
        assert_eq!(
            client.verify(&nonces, "00000000", &stored, T0),
            AuthOutcome::Failed("invalid nc")
        );
    }

    #[test]
    fn rfc2069_client_gets_each_nonce_once() {
        let nonces = Nonces::new(b"secret");
        let nonce = nonces.issue(REALM, T0);
        let stored = ha1(Algorithm::Md5, "alice", REALM, "pw");
        let mut creds = DigestCredentials {
            username: "alice",
            realm: REALM,
            nonce: &nonce,
            uri: "sip:example.com",
            ..DigestCredentials::default()
        };
        let response = expected_response("REGISTER", &creds, &stored).unwrap();
        creds.response = &response;
        assert_eq!(
            nonces.verify("REGISTER", &creds, &stored, T0),
            AuthOutcome::Ok
        );
        assert_eq!(
            nonces.verify("REGISTER", &creds, &stored, T0),
            AuthOutcome::Stale
        );
    }

    #[test]
    fn method_is_part_of_the_response() {
        let nonces = Nonces::new(b"secret");
        let client = Client::new(&nonces, Algorithm::Md5, "pw", T0);
        let (mut creds, response) = client.creds("00000001");
        creds.response = &response;
        assert_eq!(
            nonces.verify("SUBSCRIBE", &creds, &client.ha1, T0),
            AuthOutcome::Failed("wrong response")
        );
    }

    #[test]
    fn overflowing_the_tracking_map_makes_forgotten_nonces_stale_not_replayable() {
        let nonces = Nonces::new(b"secret").with_max_tracked(4);
        let stored = ha1(Algorithm::Md5, "alice", REALM, "pw");
        let clients: Vec<Client> = (0..5)
            .map(|i| Client::new(&nonces, Algorithm::Md5, "pw", T0 + i))
            .collect();
        for client in &clients {
            assert_eq!(
                client.verify(&nonces, "00000001", &stored, T0 + 10),
                AuthOutcome::Ok
            );
        }
        // The oldest nonce was dropped to make room: reusing its nc must not succeed.
        assert_eq!(
            clients[0].verify(&nonces, "00000001", &stored, T0 + 10),
            AuthOutcome::Stale
        );
        assert_eq!(
            clients[4].verify(&nonces, "00000001", &stored, T0 + 10),
            AuthOutcome::Replay
        );
        assert_eq!(
            clients[4].verify(&nonces, "00000002", &stored, T0 + 10),
            AuthOutcome::Ok
        );
    }

    #[test]
    fn expired_entries_are_purged() {
        let nonces = Nonces::new(b"secret").with_lifetime(60);
        let stored = ha1(Algorithm::Md5, "alice", REALM, "pw");
        let old = Client::new(&nonces, Algorithm::Md5, "pw", T0);
        assert_eq!(
            old.verify(&nonces, "00000001", &stored, T0),
            AuthOutcome::Ok
        );
        let fresh = Client::new(&nonces, Algorithm::Md5, "pw", T0 + 100);
        assert_eq!(
            fresh.verify(&nonces, "00000001", &stored, T0 + 100),
            AuthOutcome::Ok
        );
        assert_eq!(nonces.lock().by_nonce.len(), 1);
    }

    #[test]
    fn generated_secrets_differ() {
        let a = generate_secret();
        assert_eq!(a.len(), 32);
        assert_ne!(a, generate_secret());
    }
}
