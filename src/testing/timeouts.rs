//! How long the test API waits, and the process-wide default.

use std::sync::RwLock;
use std::time::Duration;

/// What test connections start with; `None` for [`Timeouts::default`].
static DEFAULT: RwLock<Option<Timeouts>> = RwLock::new(None);

/// How long a test connection's assertions and synchronous operations wait.
///
/// The defaults are Phoenix's: 100 ms for `assert_*` and `refute_*` (ExUnit's
/// `assert_receive_timeout` and `refute_receive_timeout`), 5 s for a join or a close.
/// An assertion returns as soon as what it waits for arrives, so a longer `assert`
/// costs nothing in a passing test; a `refute` always waits its whole time.
///
/// A connection starts with the process-wide default, [`set_default_timeouts`]
/// (ExUnit's `config :ex_unit, assert_receive_timeout: ...`), and
/// [`TestSocket::set_timeouts`](super::TestSocket::set_timeouts) changes one connection's.
///
/// ```
/// use phx_channels::testing::Timeouts;
/// use std::time::Duration;
///
/// let slow_machine = Timeouts { assert: Duration::from_secs(2), ..Timeouts::default() };
/// assert_eq!(slow_machine.refute, Duration::from_millis(100));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// How long `assert_push`, `assert_reply` and `assert_broadcast` wait.
    pub assert: Duration,
    /// How long `refute_push`, `refute_reply` and `refute_broadcast` watch.
    pub refute: Duration,
    /// How long a join waits for its reply, and a close for the channels to end.
    pub sync: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            assert: Duration::from_millis(100),
            refute: Duration::from_millis(100),
            sync: Duration::from_secs(5),
        }
    }
}

/// Sets the timeouts every test connection opened from now on starts with, in the whole
/// process: ExUnit's `assert_receive_timeout` and `refute_receive_timeout` config. Tests
/// of one binary run on threads of one process, so set it the same way in each (a
/// shared setup function, say) or once before any connects.
///
/// ```
/// use phx_channels::testing::{self, Timeouts};
/// use std::time::Duration;
///
/// testing::set_default_timeouts(Timeouts { assert: Duration::from_secs(1), ..Timeouts::default() });
/// assert_eq!(testing::default_timeouts().assert, Duration::from_secs(1));
/// ```
pub fn set_default_timeouts(timeouts: Timeouts) {
    *DEFAULT.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(timeouts);
}

/// The timeouts a new test connection starts with: those of [`set_default_timeouts`],
/// or [`Timeouts::default`].
pub fn default_timeouts() -> Timeouts {
    DEFAULT.read().unwrap_or_else(|poisoned| poisoned.into_inner()).unwrap_or_default()
}
