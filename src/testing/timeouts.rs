//! How long the test API waits.

use std::time::Duration;

/// How long a test connection's assertions and synchronous operations wait.
///
/// The defaults are Phoenix's: 100 ms for `assert_*` and `refute_*` (ExUnit's
/// `assert_receive_timeout` and `refute_receive_timeout`), 5 s for a join or a close.
/// An assertion returns as soon as what it waits for arrives, so a longer `assert`
/// costs nothing in a passing test; a `refute` always waits its whole time.
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
