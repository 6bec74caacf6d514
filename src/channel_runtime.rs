//! What every channel of an endpoint shares: the broadcast API, presence, timers, counters,
//! the channel threads' settings, their spares, and the count of live threads shutdown
//! waits on.

use crate::presence::Presence;
use crate::pubsub::PubSub;
use crate::scheduling::Scheduling;
use crate::spare_threads::SpareThreads;
use crate::stats::Stats;
use crate::telemetry::Telemetry;
use crate::timer::Timers;
use parking_lot::{Condvar, Mutex};
use std::sync::Arc;
use std::time::Instant;

/// Settings of every channel thread.
#[derive(Clone, Debug)]
pub(crate) struct ChannelSettings {
    pub(crate) stack_size: usize,
    pub(crate) inbox_limit: usize,
    /// Most channel threads at once, endpoint-wide.
    pub(crate) max_threads: usize,
    /// Parameter names logged as `[FILTERED]`.
    pub(crate) filter_parameters: Arc<[String]>,
    /// The channel threads' scheduling policy.
    pub(crate) scheduling: Scheduling,
}

/// Counts live channel threads, spares included, so shutdown can wait for them.
#[derive(Default)]
pub(crate) struct ThreadTracker {
    live: Mutex<usize>,
    ended: Condvar,
}

impl ThreadTracker {
    pub(crate) fn enter(&self) {
        *self.live.lock() += 1;
    }

    pub(crate) fn leave(&self) {
        let mut live = self.live.lock();
        *live -= 1;
        if *live == 0 {
            self.ended.notify_all();
        }
    }

    pub(crate) fn live(&self) -> usize {
        *self.live.lock()
    }

    /// Waits until no channel thread is left, or `deadline`; returns how many are left.
    pub(crate) fn wait_until_none(&self, deadline: Instant) -> usize {
        let mut live = self.live.lock();
        while *live > 0 && !self.ended.wait_until(&mut live, deadline).timed_out() {}
        *live
    }
}

/// What every channel of an endpoint shares.
pub(crate) struct ChannelRuntime {
    pub(crate) pubsub: PubSub,
    pub(crate) presence: Arc<Presence>,
    pub(crate) timers: Arc<Timers>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) settings: ChannelSettings,
    pub(crate) tracker: ThreadTracker,
    /// Threads whose channel has ended, waiting for the next join.
    pub(crate) spares: SpareThreads,
    pub(crate) telemetry: Telemetry,
}
