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
use std::time::{Duration, Instant};

/// The span of absorbing deadlines one table covers: T4 (5 s) spans ten or eleven. Keys are
/// never removed one by one, only with their whole table once all of them are past: one map
/// of all 75,000 keys at 15,000 NOTIFY/s took a cache miss for every insert and another for
/// every removal, 3% of the server's CPU over UDP, and the tables halve that. A lookup, made
/// only for a response that matches no transaction, asks each table once.
const TABLE_SPAN: Duration = Duration::from_millis(500);

#[derive(Debug, Default)]
pub(crate) struct Absorbing {
    /// Oldest first.
    tables: VecDeque<Table>,
    len: usize,
}

#[derive(Debug)]
struct Table {
    /// Deadlines up to `opened + TABLE_SPAN` go here.
    opened: Instant,
    /// The latest deadline in `keys`.
    until: Instant,
    keys: HashMap<u64, Instant, foldhash::fast::RandomState>,
}

impl Absorbing {
    /// Absorbs retransmissions for the key with `hash` until `until`. At most `cap` keys are
    /// kept: the oldest table gives way whole (a key that is no longer absorbed only turns a
    /// retransmission into a stray response, which is dropped as well).
    pub(crate) fn insert(&mut self, hash: u64, until: Instant, now: Instant, cap: usize) {
        while self.tables.front().is_some_and(|table| table.until <= now) || self.len >= cap.max(1)
        {
            let Some(table) = self.tables.pop_front() else {
                break;
            };
            self.len -= table.keys.len();
        }
        if self
            .tables
            .back()
            .is_none_or(|table| until >= table.opened + TABLE_SPAN)
        {
            // Grown from empty, not sized like the table before it: while it is small, the
            // inserts stay in cache, and the rehashes that grow it cost less (perf, harness over
            // UDP: 1.49% of the server's samples growing, 1.93% sized at once).
            self.tables.push_back(Table {
                opened: until,
                until,
                keys: HashMap::default(),
            });
        }
        if let Some(table) = self.tables.back_mut() {
            let kept = table.keys.entry(hash).or_insert_with(|| {
                self.len += 1;
                until
            });
            *kept = (*kept).max(until);
            table.until = table.until.max(until);
        }
    }

    /// Whether a response whose key has `hash` is a retransmission to absorb at `now`.
    pub(crate) fn absorbs(&self, hash: u64, now: Instant) -> bool {
        self.tables
            .iter()
            .any(|table| table.keys.get(&hash).is_some_and(|&until| now < until))
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absorbs_until_its_instant_and_expired_keys_leave() {
        let t0 = Instant::now();
        let t4 = Duration::from_secs(5);
        let mut a = Absorbing::default();
        a.insert(1, t0 + t4, t0, 3);
        assert!(a.absorbs(1, t0 + t4 - Duration::from_millis(1)));
        assert!(!a.absorbs(1, t0 + t4));
        assert!(!a.absorbs(2, t0));
        // Expired keys leave at the next insert.
        a.insert(2, t0 + 2 * t4, t0 + t4, 3);
        assert_eq!(a.len(), 1);
        assert!(a.absorbs(2, t0 + t4));
    }

    #[test]
    fn tables_expire_whole_and_the_oldest_gives_way_at_the_cap() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // Deadlines 5,000..6,999 ms: four tables of 500 ms.
        let mut a = Absorbing::default();
        for i in 0..2_000u64 {
            a.insert(i, t0 + ms(5_000 + i), t0 + ms(i), 10_000);
        }
        assert_eq!(a.tables.len(), 4);
        assert_eq!(a.len(), 2_000);
        let now = t0 + ms(2_000);
        assert!((0..2_000).all(|i| a.absorbs(i, now)));
        assert!(!a.absorbs(2_000, now));
        // Each key stops absorbing at its own deadline, its table stays until the last one.
        assert!(!a.absorbs(0, t0 + ms(5_000)));
        assert!(a.absorbs(499, t0 + ms(5_000)));
        a.insert(2_000, t0 + ms(7_000), t0 + ms(5_498), 10_000);
        assert_eq!(a.len(), 2_001);
        a.insert(2_001, t0 + ms(7_000), t0 + ms(5_499), 10_000);
        assert_eq!(a.len(), 1_502);
        assert!(a.absorbs(500, t0 + ms(5_499)));
        // At the cap the oldest table goes whole: deadlines 5,500..5,999 ms.
        a.insert(2_002, t0 + ms(7_000), t0 + ms(5_499), 1_502);
        assert_eq!(a.len(), 1_003);
        assert!(!a.absorbs(999, t0 + ms(5_499)));
        assert!(a.absorbs(1_000, t0 + ms(5_499)));
        assert!(a.absorbs(2_002, t0 + ms(5_499)));
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
