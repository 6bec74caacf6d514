//! Telemetry: typed events for dashboards and alerts, the counterparts of Phoenix's
//! `[:phoenix, :socket_connected]`, `[:phoenix, :channel_joined]`,
//! `[:phoenix, :channel_handled_in]` and `[:phoenix, :socket_drain]`, plus slow-consumer
//! closes, crashes and presence changes.
//!
//! Register one hook with
//! [`EndpointBuilder::telemetry`](crate::EndpointBuilder::telemetry). It runs on the
//! thread where the event happened (a connect worker, a channel thread, a reactor, the
//! presence thread), so it should be quick: count, record a histogram, or hand the event
//! to a thread of your own. Without a hook an event costs one branch: nothing is built,
//! timed or filtered for it.
//!
//! Parameters in events are filtered as in the logs: values under keys that contain a
//! word of [`EndpointBuilder::filter_parameters`](crate::EndpointBuilder::filter_parameters)
//! read `"[FILTERED]"`.
//!
//! ```
//! use phx_channels::telemetry::Event;
//! use phx_channels::Endpoint;
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use std::sync::Arc;
//!
//! let joins = Arc::new(AtomicU64::new(0));
//! let counted = joins.clone();
//! let endpoint = Endpoint::builder()
//!     .bind("127.0.0.1:0")
//!     .telemetry(move |event: &Event| {
//!         if let Event::ChannelJoined { duration, .. } = event {
//!             counted.fetch_add(1, Ordering::Relaxed);
//!             log::debug!("joined in {duration:?}");
//!         }
//!     })
//!     .start()?;
//! endpoint.shutdown();
//! # Ok::<(), phx_channels::Error>(())
//! ```

use crate::serializer::Serializer;
use serde_json::Value;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How a connect, a join or a callback ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted, joined, or handled.
    Ok,
    /// Refused by the application (`connect` returned a refusal, `join` an error).
    Refused,
    /// The callback panicked (or, for a join, its reply could not be encoded).
    Crashed,
}

/// One telemetry event. New kinds may be added, so match with a wildcard arm.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A socket's `connect` (and `id`) ran: `[:phoenix, :socket_connected]`.
    SocketConnected {
        /// The socket's mount path.
        endpoint_path: &'a str,
        /// The transport, as Phoenix names it (`websocket`).
        transport: &'a str,
        /// The connection's wire format.
        serializer: Serializer,
        /// The connect params, filtered.
        params: &'a Value,
        /// Accepted or refused (a panicking `connect` is refused with 403, and counts as refused).
        outcome: Outcome,
        /// How long `connect` and `id` took.
        duration: Duration,
    },
    /// A join finished: `[:phoenix, :channel_joined]`.
    ChannelJoined {
        /// The topic.
        topic: &'a str,
        /// The channel's type name.
        channel: &'a str,
        /// The join payload, filtered.
        params: &'a Value,
        /// Joined, refused by `join`, or crashed.
        outcome: Outcome,
        /// How long `join` took.
        duration: Duration,
    },
    /// `handle_in` returned: `[:phoenix, :channel_handled_in]`.
    ChannelHandledIn {
        /// The topic.
        topic: &'a str,
        /// The channel's type name.
        channel: &'a str,
        /// The event.
        event: &'a str,
        /// The payload, filtered.
        params: &'a Value,
        /// How long `handle_in` took.
        duration: Duration,
    },
    /// A batch of connections was told to drain at shutdown: `[:phoenix, :socket_drain]`.
    SocketDrain {
        /// Connections open when the batch started.
        connections: u64,
        /// Most connections drained per batch.
        batch_size: usize,
        /// The pause between batches.
        interval: Duration,
    },
    /// A connection was closed because it did not read fast enough (code 1008).
    SlowConsumerClosed {
        /// The client's address.
        peer: SocketAddr,
    },
    /// A channel crashed: a panic, [`Handled::Crash`](crate::Handled::Crash), or an
    /// event no `handle_in` takes. The client got `phx_error` (or, for a join, an error reply).
    ChannelCrashed {
        /// The topic.
        topic: &'a str,
        /// The channel's type name.
        channel: &'a str,
        /// The callback that crashed (`join`, `handle_in`, ...).
        callback: &'a str,
        /// What was logged.
        reason: &'a str,
    },
    /// A `presence_diff` went out on a topic.
    PresenceChanged {
        /// The topic.
        topic: &'a str,
        /// Keys that joined (or changed their metas).
        joins: usize,
        /// Keys that left (or changed their metas).
        leaves: usize,
    },
}

type Hook = dyn Fn(&Event<'_>) + Send + Sync;

/// Where an endpoint's events go: the registered hook, if any.
#[derive(Clone, Default)]
pub(crate) struct Telemetry(Option<Arc<Hook>>);

impl Telemetry {
    pub(crate) fn new(hook: impl Fn(&Event<'_>) + Send + Sync + 'static) -> Self {
        Telemetry(Some(Arc::new(hook)))
    }

    /// Whether a hook is set: callers skip the work of building an event otherwise.
    pub(crate) fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// Hands the event `build` makes to the hook; without a hook `build` does not run.
    pub(crate) fn emit(&self, build: impl FnOnce(&dyn Fn(&Event<'_>))) {
        if let Some(hook) = &self.0 {
            build(hook.as_ref());
        }
    }
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_on() { "Telemetry(hook)" } else { "Telemetry(none)" })
    }
}
