//! When a reactor's connections next need a look: a min-heap of (time, connection), so
//! that a tick costs the connections whose time has come, not every connection held.
//!
//! A connection's real deadline lives in the connection and moves often (every frame
//! received pushes its idle deadline on); the heap is not told. It holds at most one
//! live entry per connection, never later than the connection's deadline: when the
//! entry comes due and the deadline has moved on, the reactor schedules the connection
//! again at its deadline. Only a deadline moved earlier (a connection closing, a poll
//! held) needs a new entry; the one it supersedes stays in the heap, stale, until it
//! comes due or the heap is compacted.

use super::super::mailbox::ConnKey;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Entries the heap may hold per live connection before stale ones are swept out.
const STALE_FACTOR: usize = 4;
/// Entries below which the heap is never swept.
const SWEEP_FLOOR: usize = 1024;

/// The connections' next deadlines, earliest first.
#[derive(Default)]
pub(super) struct Deadlines {
    heap: BinaryHeap<Reverse<(Instant, usize, u64)>>,
}

impl Deadlines {
    /// Looks at connection `key` at `at`.
    pub(super) fn schedule(&mut self, at: Instant, key: ConnKey) {
        self.heap.push(Reverse((at, key.slot, key.serial)));
    }

    /// The earliest entry due by `now`, taken out.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<(Instant, ConnKey)> {
        let Reverse((at, _, _)) = self.heap.peek()?;
        if *at > now {
            return None;
        }
        let Reverse((at, slot, serial)) = self.heap.pop()?;
        Some((at, ConnKey { slot, serial }))
    }

    /// Drops stale entries once they outnumber the `live` connections by far; `is_live`
    /// says whether an entry is its connection's live one.
    pub(super) fn sweep(&mut self, live: usize, mut is_live: impl FnMut(Instant, ConnKey) -> bool) {
        if self.heap.len() > SWEEP_FLOOR.max(live * STALE_FACTOR) {
            self.heap.retain(|Reverse((at, slot, serial))| is_live(*at, ConnKey { slot: *slot, serial: *serial }));
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn key(slot: usize) -> ConnKey {
        ConnKey { slot, serial: slot as u64 + 100 }
    }

    #[test]
    fn entries_come_due_in_time_order_and_not_before_their_time() {
        let now = Instant::now();
        let mut deadlines = Deadlines::default();
        for (slot, secs) in [(0, 30), (1, 10), (2, 20)] {
            deadlines.schedule(now + Duration::from_secs(secs), key(slot));
        }
        assert!(deadlines.pop_due(now).is_none());
        let due: Vec<usize> =
            std::iter::from_fn(|| deadlines.pop_due(now + Duration::from_secs(25))).map(|(_, k)| k.slot).collect();
        assert_eq!(due, [1, 2]);
        assert_eq!(
            deadlines.pop_due(now + Duration::from_secs(60)).map(|(at, k)| (at, k.slot)),
            Some((now + Duration::from_secs(30), 0))
        );
        assert!(deadlines.pop_due(now + Duration::from_secs(60)).is_none());
    }

    #[test]
    fn a_tick_with_nothing_due_touches_one_entry_whatever_the_count() {
        let now = Instant::now();
        let mut deadlines = Deadlines::default();
        for slot in 0..100_000 {
            deadlines.schedule(now + Duration::from_secs(60), key(slot));
        }
        assert!(deadlines.pop_due(now + Duration::from_secs(1)).is_none());
        assert_eq!(deadlines.len(), 100_000);
    }

    #[test]
    fn a_sweep_keeps_only_live_entries_and_only_when_stale_ones_pile_up() {
        let now = Instant::now();
        let mut deadlines = Deadlines::default();
        for slot in 0..2000 {
            deadlines.schedule(now + Duration::from_secs(1), key(slot));
        }
        // 2,000 entries for 1,000 live connections: not worth a sweep yet.
        deadlines.sweep(1000, |_, k| k.slot < 10);
        assert_eq!(deadlines.len(), 2000);
        deadlines.sweep(10, |_, k| k.slot < 10);
        assert_eq!(deadlines.len(), 10);
    }
}
