//! Counting and logging cross-node broadcasts that were lost, without flooding the log
//! when many are.

use crate::stats::{self, Stats};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The least time between two log lines about losses.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// Where losses are counted (`cluster_broadcasts_lost`) and logged.
pub(super) struct Losses {
    stats: Arc<Stats>,
    /// When the last line was logged, and what was lost since without a line.
    log: Mutex<(Option<Instant>, u64)>,
}

impl Losses {
    pub(super) fn new(stats: Arc<Stats>) -> Self {
        Losses { stats, log: Mutex::new((None, 0)) }
    }

    /// Counts `n` lost broadcasts; logs at once, or with the next loss at least
    /// `LOG_EVERY` after the previous line.
    pub(super) fn lost(&self, n: u64, why: &str) {
        if n == 0 {
            return;
        }
        stats::add(self.stats.cluster_broadcasts_lost(), n);
        let mut log = self.log.lock();
        log.1 += n;
        if log.0.is_none_or(|at| at.elapsed() >= LOG_EVERY) {
            log::warn!("cluster: {} cross-node broadcasts lost ({why})", log.1);
            *log = (Some(Instant::now()), 0);
        }
    }
}
