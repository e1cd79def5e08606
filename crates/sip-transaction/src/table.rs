//! Where live transactions are kept (RFC 3261 §17): a slab whose handles name a slot and the
//! serial number of the transaction that holds it.
//!
//! A UDP NOTIFY fan-out keeps every client transaction until its response or for 64*T1
//! (Timer F, §17.1.2.2), and every UDP PUBLISH's server transaction lingers for 64*T1
//! (Timer J, §17.2.2): tens of thousands live at once, each created and looked up a few
//! times. In a hash map that churn cost a hash per lookup, tables of twice the live count
//! (hashbrown grows rather than clean up once deletions have used its spare room), and a
//! copy of all entries at each growth. Here a lookup is an index, freed slots are reused,
//! and memory stays at the peak number of live transactions.

/// Names one transaction of a [`Table`]. Slots are reused, serials never, so a handle kept
/// after its transaction ended finds nothing rather than a later transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Handle {
    /// Field order makes handles order by creation.
    pub(crate) serial: u64,
    pub(crate) slot: usize,
}

struct Slot<T> {
    serial: u64,
    value: Option<T>,
}

pub(crate) struct Table<T> {
    slots: Vec<Slot<T>>,
    /// Empty slots; the one freed last is taken first, as it is the likeliest still cached.
    free: Vec<usize>,
    len: usize,
    last_serial: u64,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
            last_serial: 0,
        }
    }
}

impl<T> std::fmt::Debug for Table<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("len", &self.len)
            .field("slots", &self.slots.len())
            .finish()
    }
}

impl<T> Table<T> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Stores the value `make` builds, which is given the value's handle.
    pub(crate) fn insert_with(&mut self, make: impl FnOnce(Handle) -> T) -> Handle {
        self.last_serial += 1;
        let serial = self.last_serial;
        let slot = self.free.pop().unwrap_or(self.slots.len());
        let handle = Handle { serial, slot };
        let filled = Slot {
            serial,
            value: Some(make(handle)),
        };
        match self.slots.get_mut(slot) {
            Some(reused) => *reused = filled,
            None => self.slots.push(filled),
        }
        self.len += 1;
        handle
    }

    pub(crate) fn get(&self, handle: Handle) -> Option<&T> {
        self.slots
            .get(handle.slot)
            .filter(|slot| slot.serial == handle.serial)?
            .value
            .as_ref()
    }

    pub(crate) fn get_mut(&mut self, handle: Handle) -> Option<&mut T> {
        self.slots
            .get_mut(handle.slot)
            .filter(|slot| slot.serial == handle.serial)?
            .value
            .as_mut()
    }

    pub(crate) fn remove(&mut self, handle: Handle) -> Option<T> {
        let value = self
            .slots
            .get_mut(handle.slot)
            .filter(|slot| slot.serial == handle.serial)?
            .value
            .take()?;
        self.free.push(handle.slot);
        self.len -= 1;
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_slot_is_not_found_through_the_old_handle() {
        let mut table = Table::default();
        let first = table.insert_with(|_| "first");
        assert_eq!(table.remove(first), Some("first"));
        assert_eq!(table.remove(first), None);
        let second = table.insert_with(|_| "second");
        assert_eq!(second.slot, first.slot, "the freed slot is reused");
        assert!(second > first);
        assert_eq!(table.get(first), None);
        assert_eq!(table.get(second), Some(&"second"));
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn slots_grow_only_to_the_peak_of_live_entries() {
        let mut table = Table::default();
        let mut live = std::collections::VecDeque::new();
        for n in 0..10_000u32 {
            live.push_back((table.insert_with(|_| n), n));
            if live.len() > 100 {
                let (handle, value) = live.pop_front().unwrap();
                assert_eq!(table.remove(handle), Some(value));
            }
        }
        assert_eq!(table.len(), 100);
        // 101 were live for a moment, after each insert.
        assert_eq!(table.slots.len(), 101);
        for (handle, value) in live {
            assert_eq!(table.get(handle), Some(&value));
        }
    }
}
