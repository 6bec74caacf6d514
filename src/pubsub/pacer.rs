//! Who writes a topic's broadcast to the sockets: the publishing thread, or the
//! subscribers' reactors.
//!
//! Writing directly saves a hand-off per delivery (queueing, waking the reactor, its
//! pass over the connection), so it is the cheapest way to send a broadcast that goes
//! out alone. Under sustained load the reactors do better: frames wait for each
//! connection and go out several per system call. So a fan-out is direct only when the
//! topic has been quiet for at least as long as a direct fan-out of it is expected to
//! take (direct writing then keeps a core at most half busy with the topic), and no
//! other direct fan-out of the topic is under way.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// One topic's fan-out history. Times are nanoseconds on the registry's clock.
#[derive(Default)]
pub(crate) struct Pacer {
    /// A direct fan-out of the topic is under way.
    direct_busy: AtomicBool,
    /// When the topic's last fan-out ended.
    quiet_since: AtomicU64,
    /// How long a direct fan-out to every subscriber took last time.
    direct_cost: AtomicU64,
}

impl Pacer {
    /// Claims the topic for a direct fan-out starting at `now`, if it is quiet enough.
    /// A claim must be ended with [`end_direct`](Pacer::end_direct).
    pub(crate) fn try_direct(&self, now: u64) -> bool {
        let quiet = now.saturating_sub(self.quiet_since.load(Ordering::Relaxed));
        quiet >= self.direct_cost.load(Ordering::Relaxed)
            && self.direct_busy.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok()
    }

    /// A direct fan-out that began at `started` ended at `now`, having written `written`
    /// of the `planned` deliveries it meant to write itself (the rest were handed to the
    /// reactors when the publisher had other work).
    pub(crate) fn end_direct(&self, started: u64, now: u64, written: usize, planned: usize) {
        if written > 0 {
            let per_delivery = now.saturating_sub(started) / written as u64;
            self.direct_cost.store(per_delivery.saturating_mul(planned as u64), Ordering::Relaxed);
        }
        self.quiet_since.fetch_max(now, Ordering::Relaxed);
        self.direct_busy.store(false, Ordering::Release);
    }

    /// A fan-out through the reactors ended at `now`.
    pub(crate) fn end_queued(&self, now: u64) {
        self.quiet_since.fetch_max(now, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_fan_out_is_direct_and_a_busy_topic_goes_through_the_reactors() {
        let pacer = Pacer::default();
        assert!(pacer.try_direct(1_000));
        // A second publisher while the first is still writing.
        assert!(!pacer.try_direct(1_500));
        pacer.end_direct(1_000, 8_000, 100, 100);
        // 7 µs of direct writing: the topic must stay quiet that long.
        assert!(!pacer.try_direct(8_000 + 6_999));
        pacer.end_queued(15_000);
        assert!(!pacer.try_direct(15_000 + 6_999));
        assert!(pacer.try_direct(15_000 + 7_000));
    }

    #[test]
    fn a_fan_out_handed_off_half_way_is_costed_as_if_it_had_finished() {
        let pacer = Pacer::default();
        assert!(pacer.try_direct(0));
        pacer.end_direct(0, 1_000, 10, 40);
        assert!(!pacer.try_direct(1_000 + 3_999));
        assert!(pacer.try_direct(1_000 + 4_000));
    }
}
