//! Timer bookkeeping: one min-heap for all transactions, with lazy deletion.
//!
//! Each transaction has three slots, because no state of §17 runs more than one timer of
//! each role at a time:
//! * `Retransmit`: A, E (client), G (server);
//! * `Timeout`: B, F (client), H (server);
//! * `Linger`: D, K, M (client), I, J, L (server).
//!
//! Cancelling a timer only clears its slot; the queued entry stays and is skipped when popped,
//! because its instant no longer equals the slot. Stale entries therefore live at most until
//! their own deadline (64*T1 or Timer D at most), and the layer also compacts the queue when
//! cancelled entries clearly outnumber live ones.
//!
//! Most timers run for a fixed duration from the configuration (F = 64*T1, J = 64*T1, the first
//! E = T1, ...), armed as time goes on, so each such (duration, role) pair gets a FIFO lane
//! whose entries come out in deadline order by themselves: arming and firing them is O(1),
//! where a heap of the hundreds of thousands of entries a NOTIFY load leaves queued (every
//! UDP NOTIFY leaves its Timer F entry for 32 s) paid a logarithmic sift through cold
//! memory for each. Entries that would break a lane's order, and durations beyond the lane
//! cap (doubled retransmission intervals), go to the heap; the earliest of heap top and lane
//! fronts fires first, in exactly the heap's order.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use crate::TxId;

/// Declaration order is firing order for equal instants: a timeout that coincides with a
/// retransmission wins, so nothing is sent for a transaction that is ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimerKind {
    Timeout,
    Linger,
    Retransmit,
}

#[derive(Debug, Default)]
pub(crate) struct TxTimers {
    pub(crate) retransmit: Option<Instant>,
    /// Current retransmission interval (doubles per §17.1.1.2, §17.1.2.2, §17.2.1).
    pub(crate) interval: Duration,
    pub(crate) timeout: Option<Instant>,
    pub(crate) linger: Option<Instant>,
    /// Set while the timeout is armed but not queued: see [`Self::defer_timeout`].
    unqueued_timeout: bool,
}

impl TxTimers {
    pub(crate) fn slot(&mut self, kind: TimerKind) -> &mut Option<Instant> {
        match kind {
            TimerKind::Timeout => &mut self.timeout,
            TimerKind::Linger => &mut self.linger,
            TimerKind::Retransmit => &mut self.retransmit,
        }
    }

    fn get(&self, kind: TimerKind) -> Option<Instant> {
        match kind {
            TimerKind::Timeout => self.timeout,
            TimerKind::Linger => self.linger,
            TimerKind::Retransmit => self.retransmit,
        }
    }

    /// Whether a popped heap entry is still the armed timer.
    pub(crate) fn is_armed(&self, kind: TimerKind, at: Instant) -> bool {
        self.get(kind) == Some(at)
    }

    /// Arm `kind` to fire `delay` after `from`. A deadline beyond what `Instant` can
    /// represent (absurd configuration) leaves the timer disarmed, i.e. infinite.
    pub(crate) fn arm(
        &mut self,
        queue: &mut TimerQueue,
        id: TxId,
        kind: TimerKind,
        from: Instant,
        delay: Duration,
    ) {
        let at = from.checked_add(delay);
        *self.slot(kind) = at;
        if let Some(at) = at {
            queue.push((at, kind, id), delay);
        }
    }

    /// Re-arm the retransmission timer after it fired at `at`, with the (already updated)
    /// current interval. The next instant follows the schedule rather than `now`, so
    /// retransmissions stay on their RFC times; if the caller was so late that it is already
    /// due, it is pushed out to avoid a burst. The interval is at least 1 ms so that a zero
    /// T1 cannot make [`crate::TransactionLayer::on_timer`] loop forever.
    pub(crate) fn rearm_retransmit(
        &mut self,
        queue: &mut TimerQueue,
        id: TxId,
        at: Instant,
        now: Instant,
    ) {
        self.interval = self.interval.max(Duration::from_millis(1));
        let from = if at.checked_add(self.interval).is_some_and(|next| next > now) {
            at
        } else {
            now
        };
        self.arm(queue, id, TimerKind::Retransmit, from, self.interval);
    }

    /// Stop the retransmission and timeout timers (a state left Calling/Trying/Completed).
    pub(crate) fn stop_running(&mut self) {
        self.retransmit = None;
        self.timeout = None;
        self.unqueued_timeout = false;
    }

    /// Arm the timeout (B, F) of a client transaction that also retransmits (A, E), to fire
    /// `delay` after `from`, queueing it only when the first retransmission fires
    /// ([`Self::queue_deferred_timeout`]): a NOTIFY over UDP is mostly answered within
    /// milliseconds, and its queued 64*T1 entry would outlive it by half a minute (at
    /// 15,000 NOTIFY/s, half a million dead entries to keep and pop).
    pub(crate) fn defer_timeout(&mut self, from: Instant, delay: Duration) {
        self.timeout = from.checked_add(delay);
        self.unqueued_timeout = self.timeout.is_some();
    }

    /// Queue a timeout [`Self::defer_timeout`] left unqueued, if it is still armed.
    /// `remaining` is its nominal delay from the first retransmission, which gives deferred
    /// timeouts a lane of their own (their deadlines arrive in order, but earlier than
    /// those of timeouts armed now for the full delay).
    pub(crate) fn queue_deferred_timeout(
        &mut self,
        queue: &mut TimerQueue,
        id: TxId,
        remaining: Duration,
    ) {
        if std::mem::take(&mut self.unqueued_timeout) {
            if let Some(at) = self.timeout {
                queue.push((at, TimerKind::Timeout, id), remaining);
            }
        }
    }
}

type Entry = (Instant, TimerKind, TxId);

/// Distinct (duration, role) lanes at most; each pop compares every lane's front.
const MAX_LANES: usize = 8;

/// Entries armed with one duration for one role, deadlines (then ids) non-decreasing.
#[derive(Debug)]
struct Lane {
    delay: Duration,
    kind: TimerKind,
    entries: VecDeque<(Instant, TxId)>,
}

#[derive(Debug, Default)]
pub(crate) struct TimerQueue {
    heap: BinaryHeap<Reverse<Entry>>,
    lanes: Vec<Lane>,
}

/// Where the earliest entry is.
#[derive(Clone, Copy)]
enum Source {
    Heap,
    Lane(usize),
}

impl TimerQueue {
    /// Queue `entry`, armed `delay` after its start.
    fn push(&mut self, entry: Entry, delay: Duration) {
        let (at, kind, id) = entry;
        let lane = match self
            .lanes
            .iter()
            .position(|lane| lane.delay == delay && lane.kind == kind)
        {
            Some(index) => Some(index),
            None if self.lanes.len() < MAX_LANES => {
                self.lanes.push(Lane {
                    delay,
                    kind,
                    entries: VecDeque::new(),
                });
                Some(self.lanes.len() - 1)
            }
            None => None,
        };
        if let Some(lane) = lane.map(|index| &mut self.lanes[index]) {
            // Callers' clocks may step back (or ties come in any id order); only an entry
            // not earlier than the lane's last keeps the lane sorted.
            if lane.entries.back().is_none_or(|&last| last <= (at, id)) {
                lane.entries.push_back((at, id));
                return;
            }
        }
        self.heap.push(Reverse(entry));
    }

    fn earliest(&self) -> Option<(Source, Entry)> {
        let mut best = self
            .heap
            .peek()
            .map(|Reverse(entry)| (Source::Heap, *entry));
        for (index, lane) in self.lanes.iter().enumerate() {
            if let Some(&(at, id)) = lane.entries.front() {
                let entry = (at, lane.kind, id);
                if best.is_none_or(|(_, earliest)| entry < earliest) {
                    best = Some((Source::Lane(index), entry));
                }
            }
        }
        best
    }

    pub(crate) fn peek(&self) -> Option<Entry> {
        self.earliest().map(|(_, entry)| entry)
    }

    pub(crate) fn pop(&mut self) {
        if let Some((source, _)) = self.earliest() {
            self.remove(source);
        }
    }

    fn remove(&mut self, source: Source) {
        match source {
            Source::Heap => {
                self.heap.pop();
            }
            Source::Lane(index) => {
                self.lanes[index].entries.pop_front();
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
            + self
                .lanes
                .iter()
                .map(|lane| lane.entries.len())
                .sum::<usize>()
    }

    pub(crate) fn retain(&mut self, mut keep: impl FnMut(Instant, TimerKind, TxId) -> bool) {
        self.heap
            .retain(|Reverse((at, kind, id))| keep(*at, *kind, *id));
        for lane in &mut self.lanes {
            let kind = lane.kind;
            lane.entries.retain(|&(at, id)| keep(at, kind, id));
        }
    }

    /// Pop the earliest entry if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Entry> {
        let (source, entry) = self.earliest().filter(|(_, (at, _, _))| *at <= now)?;
        self.remove(source);
        Some(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClientTxId;

    /// Lanes, the heap and the lane cap together still pop in (instant, role, id) order,
    /// whatever order the timers were armed in.
    #[test]
    fn pops_in_heap_order() {
        let base = Instant::now();
        let mut queue = TimerQueue::default();
        let mut armed = Vec::new();
        let kinds = [TimerKind::Timeout, TimerKind::Linger, TimerKind::Retransmit];
        for n in 0..200u64 {
            // Start instants step back now and then; twelve durations exceed the lane cap.
            let from = base + Duration::from_millis((n * 7) % 50);
            let delay = Duration::from_millis(100 * (n % 12));
            let entry = (
                from + delay,
                kinds[(n % 3) as usize],
                TxId::Client(ClientTxId(crate::table::Handle { serial: n, slot: 0 })),
            );
            queue.push(entry, delay);
            armed.push(entry);
        }
        assert_eq!(queue.len(), armed.len());
        armed.sort();
        let mut popped = Vec::new();
        while let Some(entry) = queue.pop_due(base + Duration::from_secs(10)) {
            popped.push(entry);
        }
        assert_eq!(popped, armed);
        assert_eq!(queue.len(), 0);
    }
}
