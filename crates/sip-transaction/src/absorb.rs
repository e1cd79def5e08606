//! Completed non-INVITE client transactions over unreliable transports (RFC 3261
//! §17.1.2.2, Timer K).
//!
//! All such a transaction does for its T4 in Completed is absorb retransmissions of its final
//! response, so what stays is the hash of its key and the instant it stops absorbing, not the
//! transaction. A UDP NOTIFY fan-out completes tens of thousands every T4: kept whole, they
//! were most of the server's memory at 15,000 NOTIFY/s, and firing each one's Timer K cost a
//! timer and a table visit. Two keys with one hash (64 bits: in practice never) only make a
//! retransmission count as a stray response, which the core drops as well.

use std::collections::VecDeque;
use std::time::Instant;

/// Keys per slot. Keys are appended in the order their transactions complete, which keeps
/// the insert that every UDP NOTIFY pays sequential in memory: a hash map of 75,000 keys took
/// two cache misses per NOTIFY (insert and removal), 3% of the server's CPU.
const SLOT_KEYS: usize = 256;

#[derive(Debug, Default)]
pub(crate) struct Absorbing {
    /// Keys with the instant each stops absorbing, oldest slot first. Every slot but the last
    /// is full and sorted by hash, so a lookup is a binary search per slot plus a scan of the
    /// last: lookups only come from responses that match no transaction.
    slots: VecDeque<Slot>,
    len: usize,
}

#[derive(Debug)]
struct Slot {
    /// Sorted by hash once the slot is full; in insertion order until then.
    keys: Vec<(u64, Instant)>,
    /// The latest instant any of `keys` absorbs until.
    until: Instant,
}

impl Absorbing {
    /// Absorbs retransmissions for the key with `hash` until `until`; at most `cap` keys are
    /// kept, the oldest giving way (once there is more than one slot, a whole slot at a time).
    pub(crate) fn insert(&mut self, hash: u64, until: Instant, now: Instant, cap: usize) {
        self.expire(now);
        while self.len >= cap.max(1) {
            self.evict_oldest();
        }
        if self
            .slots
            .back()
            .is_none_or(|slot| slot.keys.len() >= SLOT_KEYS)
        {
            if let Some(full) = self.slots.back_mut() {
                full.keys.sort_unstable_by_key(|&(hash, _)| hash);
            }
            self.slots.push_back(Slot {
                keys: Vec::with_capacity(SLOT_KEYS),
                until,
            });
        }
        if let Some(open) = self.slots.back_mut() {
            open.keys.push((hash, until));
            open.until = open.until.max(until);
            self.len += 1;
        }
    }

    /// Whether a response whose key has `hash` is a retransmission to absorb at `now`.
    pub(crate) fn absorbs(&self, hash: u64, now: Instant) -> bool {
        let live = |&(key, until): &(u64, Instant)| key == hash && now < until;
        let Some(open) = self.slots.back() else {
            return false;
        };
        open.keys.iter().any(live)
            || self.slots.iter().take(self.slots.len() - 1).any(|full| {
                let first = full.keys.partition_point(|&(key, _)| key < hash);
                full.keys
                    .get(first..)
                    .unwrap_or_default()
                    .iter()
                    .take_while(|&&(key, _)| key == hash)
                    .any(live)
            })
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Drops the slots whose keys have all stopped absorbing.
    fn expire(&mut self, now: Instant) {
        while self.slots.front().is_some_and(|slot| slot.until <= now) {
            self.drop_front();
        }
    }

    fn evict_oldest(&mut self) {
        match self.slots.len() {
            0 => {}
            // The only slot is still in insertion order: its first key is the oldest.
            1 => {
                if let Some(slot) = self.slots.front_mut() {
                    slot.keys.remove(0);
                    self.len -= 1;
                }
            }
            _ => self.drop_front(),
        }
    }

    fn drop_front(&mut self) {
        if let Some(slot) = self.slots.pop_front() {
            self.len -= slot.keys.len();
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
    fn full_slots_are_searched_and_expire_and_give_way_whole() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // Spread-out hashes, so sorting a slot really reorders it.
        let hash = |i: u64| i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let keys = 3 * SLOT_KEYS as u64 + 10;
        let mut a = Absorbing::default();
        for i in 0..keys {
            a.insert(hash(i), t0 + ms(5_000 + i), t0 + ms(i), 10_000);
        }
        assert_eq!(a.slots.len(), 4);
        let now = t0 + ms(keys);
        assert!((0..keys).all(|i| a.absorbs(hash(i), now)));
        assert!(!a.absorbs(hash(keys), now));
        // The same hash again, in a later slot, absorbs for longer.
        a.insert(hash(0), t0 + ms(9_000), now, 10_000);
        assert!(a.absorbs(hash(0), t0 + ms(8_000)));
        assert!(!a.absorbs(hash(1), t0 + ms(8_000)));
        // The first slot goes once its last key stops absorbing, and only then.
        let first_slot_end = t0 + ms(5_000 + SLOT_KEYS as u64 - 1);
        a.insert(
            hash(keys + 1),
            t0 + ms(10_000),
            first_slot_end - ms(1),
            10_000,
        );
        assert_eq!(a.slots.len(), 4);
        a.insert(hash(keys + 2), t0 + ms(10_000), first_slot_end, 10_000);
        assert_eq!(a.slots.len(), 3);
        assert_eq!(a.len(), keys as usize + 3 - SLOT_KEYS);
        // At the cap the oldest full slot gives way as a whole.
        let cap = a.len();
        a.insert(hash(keys + 3), t0 + ms(10_000), first_slot_end, cap);
        assert_eq!(a.len(), cap + 1 - SLOT_KEYS);
        assert!(!a.absorbs(hash(2 * SLOT_KEYS as u64 - 1), first_slot_end));
        assert!(a.absorbs(hash(2 * SLOT_KEYS as u64), first_slot_end));
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
