//! A log line that overload or an attacker can repeat thousands of times a second (a
//! refused connection, a refused join): the first goes out, then at most one a second,
//! saying how many were left out meanwhile.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The least time between two lines of one kind.
const EVERY: Duration = Duration::from_secs(1);

/// One kind of line's state; a `static` at the place that logs it.
pub(crate) struct Throttled {
    /// When the last line went out, and how many were left out since.
    state: Mutex<(Option<Instant>, u64)>,
}

impl Throttled {
    pub(crate) const fn new() -> Self {
        Throttled { state: Mutex::new((None, 0)) }
    }

    /// Calls `log` with the number of lines left out since the last one, unless a line
    /// went out less than a second ago.
    pub(crate) fn log(&self, log: impl FnOnce(u64)) {
        self.log_at(Instant::now(), log);
    }

    fn log_at(&self, now: Instant, log: impl FnOnce(u64)) {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (last, left_out) = &mut *state;
        if last.is_some_and(|last| now.duration_since(last) < EVERY) {
            *left_out += 1;
            return;
        }
        let skipped = std::mem::take(left_out);
        *last = Some(now);
        drop(state);
        log(skipped);
    }
}

/// Logs at `level` at most once a second from this place in the code, adding how many
/// lines were left out since the last one:
/// `log_throttled!(log::Level::Warn, "refusing {peer}")`.
macro_rules! log_throttled {
    ($level:expr, $($arg:tt)+) => {{
        static THROTTLED: $crate::logging::Throttled = $crate::logging::Throttled::new();
        THROTTLED.log(|more| {
            log::log!($level, "{}{}", format_args!($($arg)+), $crate::logging::left_out(more))
        });
    }};
}
pub(crate) use log_throttled;

/// `" (N more like it since the last)"` when lines were left out, else nothing.
pub(crate) fn left_out(count: u64) -> String {
    if count == 0 { String::new() } else { format!(" ({count} more like it since the last)") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_a_second_goes_out_and_says_how_many_were_left_out() {
        let throttled = Throttled::new();
        let start = Instant::now();
        let mut lines = Vec::new();
        for ms in 0..2500 {
            throttled.log_at(start + Duration::from_millis(ms), |skipped| lines.push((ms, skipped)));
        }
        assert_eq!(lines, [(0, 0), (1000, 999), (2000, 999)]);
        assert_eq!(left_out(0), "");
        assert_eq!(left_out(3), " (3 more like it since the last)");
    }
}
