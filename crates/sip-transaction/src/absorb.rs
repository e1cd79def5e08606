//! Completed non-INVITE client transactions over unreliable transports (RFC 3261
//! §17.1.2.2, Timer K).
//!
//! All such a transaction does for its T4 in Completed is absorb retransmissions of its final
//! response, so what stays is the hash of its key and the instant it stops absorbing, not the
//! transaction. A UDP NOTIFY fan-out completes tens of thousands every T4: kept whole, they
//! were most of the server's memory at 15,000 NOTIFY/s, and firing each one's Timer K cost a
//! timer and a table visit. Two keys with one hash (64 bits: in practice never) only make a
//! retransmission count as a stray response, which the core drops as well.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

#[derive(Debug, Default)]
pub(crate) struct Absorbing {
    /// Key hashes with the instant each stops absorbing, in the order they completed: T4 is
    /// one constant, so that is also the order they expire in.
    order: VecDeque<(Instant, u64)>,
    until: HashMap<u64, Instant, foldhash::fast::RandomState>,
}

impl Absorbing {
    /// Absorbs retransmissions for the key with `hash` until `until`; at most `cap` keys are
    /// kept, the oldest giving way.
    pub(crate) fn insert(&mut self, hash: u64, until: Instant, now: Instant, cap: usize) {
        self.expire(now);
        while self.order.len() >= cap.max(1) {
            let Some((at, oldest)) = self.order.pop_front() else {
                break;
            };
            self.forget(at, oldest);
        }
        self.order.push_back((until, hash));
        self.until.insert(hash, until);
    }

    /// Whether a response whose key has `hash` is a retransmission to absorb at `now`.
    pub(crate) fn absorbs(&self, hash: u64, now: Instant) -> bool {
        self.until.get(&hash).is_some_and(|&until| now < until)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(at, hash)) = self.order.front() {
            if at > now {
                break;
            }
            self.order.pop_front();
            self.forget(at, hash);
        }
    }

    /// Drops `hash` unless a later insert of the same hash renewed it.
    fn forget(&mut self, at: Instant, hash: u64) {
        if self.until.get(&hash) == Some(&at) {
            self.until.remove(&hash);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn absorbs_until_its_instant_and_the_oldest_give_way_at_the_cap() {
        let t0 = Instant::now();
        let t4 = Duration::from_secs(5);
        let mut a = Absorbing::default();
        a.insert(1, t0 + t4, t0, 3);
        assert!(a.absorbs(1, t0 + t4 - Duration::from_millis(1)));
        assert!(!a.absorbs(1, t0 + t4));
        assert!(!a.absorbs(2, t0));
        // Expired entries leave at the next insert.
        a.insert(2, t0 + 2 * t4, t0 + t4, 3);
        assert_eq!(a.len(), 1);
        for hash in 3..=5 {
            a.insert(hash, t0 + 2 * t4, t0 + t4, 3);
        }
        assert_eq!(a.len(), 3);
        assert!(!a.absorbs(2, t0 + t4));
        assert!((3..=5).all(|hash| a.absorbs(hash, t0 + t4)));
    }

    #[test]
    fn a_renewed_hash_outlives_its_first_entry() {
        let t0 = Instant::now();
        let mut a = Absorbing::default();
        a.insert(7, t0 + Duration::from_secs(5), t0, 10);
        a.insert(
            7,
            t0 + Duration::from_secs(8),
            t0 + Duration::from_secs(3),
            10,
        );
        a.insert(
            8,
            t0 + Duration::from_secs(11),
            t0 + Duration::from_secs(6),
            10,
        );
        assert!(a.absorbs(7, t0 + Duration::from_secs(6)));
        assert!(!a.absorbs(7, t0 + Duration::from_secs(8)));
    }
}
