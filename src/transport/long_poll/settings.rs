//! A socket's long-poll settings, and their defaults.

use crate::token::MaxAge;
use std::time::Duration;

/// The long-poll transport of one socket mount; enable it with
/// [`UserSocket::long_poll`](crate::UserSocket::long_poll). The defaults are Phoenix's.
///
/// ```
/// use phx_channels::LongPollSettings;
/// use phx_channels::token::MaxAge;
/// use std::time::Duration;
///
/// let settings = LongPollSettings::new()
///     .window(Duration::from_secs(2))
///     .max_body_bytes(1_000_000)
///     .token_max_age(MaxAge::Seconds(86_400));
/// assert_ne!(settings, LongPollSettings::default());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LongPollSettings {
    pub(crate) window: Duration,
    pub(crate) max_body_bytes: usize,
    pub(crate) token_max_age: MaxAge,
}

impl Default for LongPollSettings {
    fn default() -> Self {
        LongPollSettings {
            window: Duration::from_secs(10),
            max_body_bytes: 8_000_000,
            token_max_age: MaxAge::Seconds(1_209_600),
        }
    }
}

impl LongPollSettings {
    /// The defaults: a 10 s window, 8 000 000-byte bodies, tokens good for 14 days.
    #[must_use]
    pub fn new() -> Self {
        LongPollSettings::default()
    }

    /// How long a poll waits for output before it is answered with nothing (Phoenix's
    /// `window_ms`); default 10 s. A session whose client has not polled for 1.5 times
    /// this long is closed: its channels terminate with `{shutdown, closed}`.
    #[must_use]
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window.max(Duration::from_millis(1));
        self
    }

    /// The largest request body a client may post; default 8 000 000 bytes (as Plug
    /// reads a body by default). A larger one is answered with HTTP 413.
    #[must_use]
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// How long a session token stays valid after it was issued; default 14 days (as
    /// Phoenix's long-poll `crypto: [max_age: 1_209_600]`). A session lives until its
    /// client stops polling, but no longer than this.
    #[must_use]
    pub fn token_max_age(mut self, max_age: MaxAge) -> Self {
        self.token_max_age = max_age;
        self
    }
}
