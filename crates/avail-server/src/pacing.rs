//! Interrupt moderation for the SIP thread, as network cards and Linux's NAPI do it.
//!
//! Under load, responses and requests arrive one or two at a time, and each wakes the SIP
//! thread on its own: an `epoll_wait` that sleeps, a context switch in and one out, a
//! recvmmsg(2) and a sendmmsg(2) for a message or two, and a wakeup of every peer the turn
//! sends to. Under load, turns therefore start at most once per period (`[sip]
//! batch_wait_us`): after a turn that started within two periods of the previous one, the
//! thread sleeps outside the reactor until the period is over, so arrivals do not wake it,
//! and takes what queued meanwhile in one turn. Away from load turns are far apart and no
//! wait is added; under load a message waits at most one period. A turn that took a whole
//! period or more does not wait at all.
//!
//! The period, not a fixed wait after a turn that took few messages: with such a wait, a
//! turn that found many messages was followed at once by one that found few, so every other
//! turn was small.
//!
//! Sans-IO: the caller passes the time in and does the sleeping.

use std::time::{Duration, Instant};

/// When the SIP loop waits before looking for its next events.
#[derive(Debug)]
pub struct Pacing {
    period: Duration,
    /// When the latest turn with transport events started.
    last_start: Option<Instant>,
    /// Whether that turn came within two periods of the one before it: load.
    paced: bool,
}

impl Pacing {
    /// Turns at most once per `period` under load; a zero period never waits.
    pub fn new(period: Duration) -> Pacing {
        Pacing {
            period,
            last_start: None,
            paced: false,
        }
    }

    /// A turn with transport events started at `now`.
    pub fn turn_started(&mut self, now: Instant) {
        let gap = self
            .last_start
            .map(|start| now.saturating_duration_since(start));
        self.paced = !self.period.is_zero() && gap.is_some_and(|gap| gap < self.period * 2);
        self.last_start = Some(now);
    }

    /// The turn ended at `now` (its sends flushed): how long to sleep before the next, if at
    /// all. Turns without transport events (timers, storage results) never wait.
    pub fn wait_after_turn(&mut self, now: Instant) -> Option<Duration> {
        if !std::mem::take(&mut self.paced) {
            return None;
        }
        let period_end = self.last_start? + self.period;
        Some(period_end.saturating_duration_since(now)).filter(|wait| !wait.is_zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERIOD: Duration = Duration::from_micros(1000);

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn under_load_turns_start_once_per_period() {
        let start = Instant::now();
        let mut pacing = Pacing::new(PERIOD);
        // The first turn has nothing to be close behind.
        pacing.turn_started(start);
        assert_eq!(pacing.wait_after_turn(start + us(50)), None);
        pacing.turn_started(start + us(300));
        assert_eq!(pacing.wait_after_turn(start + us(380)), Some(us(920)));
        // The next turn starts when the wait is over, and waits for the rest of its period.
        pacing.turn_started(start + us(1310));
        assert_eq!(pacing.wait_after_turn(start + us(1500)), Some(us(810)));
    }

    #[test]
    fn turns_far_apart_never_wait() {
        let start = Instant::now();
        let mut pacing = Pacing::new(PERIOD);
        let mut now = start;
        for _ in 0..5 {
            now += PERIOD * 2;
            pacing.turn_started(now);
            now += us(50);
            assert_eq!(pacing.wait_after_turn(now), None);
        }
    }

    #[test]
    fn a_turn_as_long_as_its_period_does_not_wait() {
        let start = Instant::now();
        let mut pacing = Pacing::new(PERIOD);
        pacing.turn_started(start);
        pacing.turn_started(start + us(100));
        assert_eq!(pacing.wait_after_turn(start + us(1100)), None);
        pacing.turn_started(start + us(1100));
        assert_eq!(
            pacing.wait_after_turn(start + us(1099) + PERIOD),
            Some(us(1))
        );
    }

    #[test]
    fn turns_without_transport_events_and_a_zero_period_never_wait() {
        let start = Instant::now();
        let mut pacing = Pacing::new(PERIOD);
        pacing.turn_started(start);
        pacing.turn_started(start + us(10));
        assert!(pacing.wait_after_turn(start + us(20)).is_some());
        // A timer turn right after: no events were taken.
        assert_eq!(pacing.wait_after_turn(start + us(30)), None);
        let mut off = Pacing::new(Duration::ZERO);
        off.turn_started(start);
        off.turn_started(start + us(10));
        assert_eq!(off.wait_after_turn(start + us(20)), None);
    }
}
