//! Timer bookkeeping: one min-heap for all transactions, with lazy deletion.
//!
//! Each transaction has three slots, because no state of §17 runs more than one timer of
//! each role at a time:
//! * `Retransmit`: A, E (client), G (server);
//! * `Timeout`: B, F (client), H (server);
//! * `Linger`: D, K, M (client), I, J, L (server).
//!
//! Cancelling a timer only clears its slot; the heap entry stays and is skipped when popped,
//! because its instant no longer equals the slot. Stale entries therefore live at most until
//! their own deadline (64*T1 or Timer D at most), and the layer also compacts the heap when
//! cancelled entries clearly outnumber live ones.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
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
            queue.heap.push(Reverse((at, kind, id)));
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
    }
}

#[derive(Debug, Default)]
pub(crate) struct TimerQueue {
    heap: BinaryHeap<Reverse<(Instant, TimerKind, TxId)>>,
}

impl TimerQueue {
    pub(crate) fn peek(&self) -> Option<(Instant, TimerKind, TxId)> {
        self.heap.peek().map(|Reverse(entry)| *entry)
    }

    pub(crate) fn pop(&mut self) {
        self.heap.pop();
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    pub(crate) fn retain(&mut self, mut keep: impl FnMut(Instant, TimerKind, TxId) -> bool) {
        self.heap
            .retain(|Reverse((at, kind, id))| keep(*at, *kind, *id));
    }

    /// Pop the earliest entry if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, TimerKind, TxId)> {
        let entry = self.peek().filter(|(at, _, _)| *at <= now)?;
        self.heap.pop();
        Some(entry)
    }
}
