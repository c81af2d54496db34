//! Performance warnings: a destination whose p99 attempt latency passes its
//! threshold is *slow*; a queue whose oldest due delivery has waited longer
//! than the configured lag is *lagging*. Both are checked every few seconds,
//! set a gauge while they last, and are announced once, then again only
//! after the debounce window if they still hold.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::failing::may_announce;

/// Recent attempts a latency is taken over: at most this many...
const SAMPLES: usize = 256;
/// ...of at most this age...
const WINDOW: Duration = Duration::from_secs(300);
/// ...and at least this many, or no judgement is made.
const MIN_SAMPLES: usize = 20;

/// The durations of a destination's recent attempts.
#[derive(Debug, Default, Clone)]
pub struct RecentLatency {
    samples: VecDeque<(Instant, u64)>,
}

impl RecentLatency {
    pub fn record(&mut self, at: Instant, duration_ms: u64) {
        if self.samples.len() == SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back((at, duration_ms));
    }

    /// The p99 of the recent attempts (nearest rank), if there are enough.
    pub fn p99(&mut self, now: Instant) -> Option<u64> {
        while self
            .samples
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > WINDOW)
        {
            self.samples.pop_front();
        }
        if self.samples.len() < MIN_SAMPLES {
            return None;
        }
        let mut ms: Vec<u64> = self.samples.iter().map(|(_, d)| *d).collect();
        ms.sort_unstable();
        let rank = (ms.len() * 99).div_ceil(100);
        ms.get(rank.saturating_sub(1)).copied()
    }
}

/// A condition announced once, then again after `debounce` while it holds.
#[derive(Debug, Default, Clone)]
pub struct Warning {
    active: bool,
    announced_at: Option<DateTime<Utc>>,
}

impl Warning {
    /// Whether the condition holds now; `true` when it is to be announced.
    pub fn update(&mut self, holds: bool, now: DateTime<Utc>, debounce_s: u64) -> bool {
        self.active = holds;
        if !holds {
            return false;
        }
        let due = may_announce(self.announced_at, now, debounce_s);
        if due {
            self.announced_at = Some(now);
        }
        due
    }

    pub fn active(&self) -> bool {
        self.active
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_p99_needs_enough_recent_samples() {
        let now = Instant::now();
        let mut l = RecentLatency::default();
        for _ in 0..19 {
            l.record(now, 1);
        }
        assert_eq!(l.p99(now), None);
        for _ in 0..80 {
            l.record(now, 10);
        }
        l.record(now, 5_000);
        // 100 samples: the 99th smallest.
        assert_eq!(l.p99(now), Some(10));
        l.record(now, 6_000);
        // 101: rank 100.
        assert_eq!(l.p99(now), Some(5_000));
        assert_eq!(l.p99(now + WINDOW + Duration::from_secs(1)), None);
    }

    #[test]
    fn a_warning_is_announced_once_per_window_while_it_holds() {
        let t = Utc::now();
        let mut w = Warning::default();
        assert!(!w.update(false, t, 60));
        assert!(w.update(true, t, 60));
        assert!(!w.update(true, t + chrono::Duration::seconds(30), 60));
        assert!(w.active());
        assert!(!w.update(false, t + chrono::Duration::seconds(40), 60));
        assert!(!w.active());
        // Back within the window: still debounced.
        assert!(!w.update(true, t + chrono::Duration::seconds(50), 60));
        assert!(w.update(true, t + chrono::Duration::seconds(61), 60));
    }
}
