//! Counters of what the endpoint did: cheap atomics, read with [`Endpoint::stats`].
//!
//! [`Endpoint::stats`]: crate::Endpoint::stats

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Whether a value only grows (a Prometheus counter) or goes up and down (a gauge).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

macro_rules! counters {
    ($($(#[doc = $doc:literal])* $(#[cfg($cfg:meta)])? $kind:ident $name:ident,)*) => {
        /// Live counters, shared by every thread of an endpoint.
        #[derive(Default, Debug)]
        pub(crate) struct Stats {
            $($(#[cfg($cfg)])? $name: AtomicU64,)*
        }

        /// A copy of the endpoint's counters at one moment.
        ///
        /// Log or export it periodically from a thread of your own, for example:
        ///
        /// ```no_run
        /// # fn demo(endpoint: phx_channels::Endpoint) {
        /// std::thread::spawn(move || loop {
        ///     std::thread::sleep(std::time::Duration::from_secs(10));
        ///     log::info!("{:?}", endpoint.stats());
        /// });
        /// # }
        /// ```
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct StatsSnapshot {
            $($(#[doc = $doc])* $(#[cfg($cfg)])? pub $name: u64,)*
        }

        impl StatsSnapshot {
            /// Every value with its name, kind and help text.
            // Pushed one by one: some entries are behind features, which a `vec![]` of
            // them could not leave out.
            #[allow(clippy::vec_init_then_push)]
            fn entries(&self) -> Vec<(&'static str, Kind, &'static str, u64)> {
                let mut entries = Vec::new();
                $($(#[cfg($cfg)])? entries.push((stringify!($name), Kind::$kind, concat!($($doc),*), self.$name));)*
                entries
            }
        }

        impl Stats {
            $($(#[cfg($cfg)])?
            pub(crate) fn $name(&self) -> &AtomicU64 { &self.$name })*

            pub(crate) fn snapshot(&self) -> StatsSnapshot {
                StatsSnapshot { $($(#[cfg($cfg)])? $name: self.$name.load(Relaxed),)* }
            }
        }
    };
}

counters! {
    /// WebSocket connections open now.
    Gauge connections,
    /// WebSocket connections accepted since start.
    Counter connections_total,
    /// Channels joined now (each is a thread).
    Gauge channels,
    /// Channel threads running a channel now (joined, joining or terminating).
    Gauge channel_threads,
    /// Channel threads whose channel has ended, waiting to run the next join (see
    /// `EndpointBuilder::channel_thread_keep_alive`).
    Gauge spare_channel_threads,
    /// Joins accepted since start.
    Counter joins_total,
    /// Messages decoded from clients.
    Counter messages_in,
    /// Frames written to clients.
    Counter frames_out,
    /// Bytes read from client sockets.
    Counter bytes_in,
    /// Bytes written to client sockets.
    Counter bytes_out,
    /// Broadcasts dispatched.
    Counter broadcasts,
    /// Frames encoded by the fastlane: at most one per wire format per broadcast.
    Counter broadcast_encodes,
    /// Frames compressed for connections that negotiated permessage-deflate: a
    /// broadcast's at most once per wire format, however many such subscribers it has.
    Counter frames_deflated,
    /// Broadcast deliveries handed to connections by the fastlane.
    Counter fastlane_deliveries,
    /// Fastlane deliveries the publishing thread wrote to the socket itself; the others
    /// went through the connections' reactors (see `fastlane_deliveries`).
    Counter fastlane_direct,
    /// Broadcasts dropped for a subscriber whose queue or mailbox was full.
    Counter broadcasts_dropped,
    /// Connections refused at the handshake (any status).
    Counter refused_connections,
    /// TLS handshakes that failed (feature `tls`): plain HTTP on the TLS port, a client
    /// that does not trust the certificate, a handshake over the size limit. Handshakes
    /// that time out count in `refused_connections`.
    #[cfg(feature = "tls")]
    Counter tls_handshake_failures,
    /// Joins refused by the server's limits (channels per connection, channel threads).
    Counter refused_joins,
    /// Connections closed because they did not read fast enough.
    Counter slow_consumer_closes,
    /// Panics caught in channel callbacks.
    Counter panics,
    /// Connections closed for sending a frame that could not be decoded.
    Counter malformed_frames,
    /// Long-poll sessions open now.
    Gauge long_poll_sessions,
    /// Long-poll sessions opened since start.
    Counter long_poll_sessions_total,
    /// Long-poll sessions closed because their client stopped polling (no poll for
    /// 1.5 windows).
    Counter long_poll_abandoned,
    /// Long-poll requests sent on to the node of the cluster that holds their session
    /// (feature `redis`; zero without a cluster).
    Counter long_poll_forwarded,
    /// Forwarded long-poll requests that got no answer in time (the window and 2 s for
    /// a poll, 2 s for a `POST`); their session was taken for gone.
    Counter long_poll_forward_timeouts,
    /// Broadcasts published to the other nodes of the cluster (feature `redis`, like
    /// the four below).
    #[cfg(feature = "redis")]
    Counter cluster_broadcasts_sent,
    /// Broadcasts received from other nodes and delivered here.
    #[cfg(feature = "redis")]
    Counter cluster_broadcasts_received,
    /// Cross-node broadcasts lost: not published (Redis unreachable, or the publish queue
    /// full) or received while this node's delivery queue was full.
    #[cfg(feature = "redis")]
    Counter cluster_broadcasts_lost,
    /// 1 while this node is connected to Redis (publishing and subscribed), else 0.
    #[cfg(feature = "redis")]
    Gauge redis_connected,
    /// Attempts to connect to Redis again after a failure or a lost connection.
    #[cfg(feature = "redis")]
    Counter redis_reconnects,
}

impl StatsSnapshot {
    /// The counters in the Prometheus text exposition format, each named
    /// `phx_channels_<name>` (counters end in `_total`), with its help text and type.
    ///
    /// ```
    /// let text = phx_channels::StatsSnapshot::default().to_prometheus();
    /// assert!(text.contains("# TYPE phx_channels_connections gauge\nphx_channels_connections 0\n"));
    /// assert!(text.contains("# TYPE phx_channels_messages_in_total counter\n"));
    /// ```
    pub fn to_prometheus(&self) -> String {
        let mut text = String::with_capacity(4096);
        for (name, kind, help, value) in self.entries() {
            let suffix = if kind == Kind::Counter && !name.ends_with("_total") { "_total" } else { "" };
            let kind = if kind == Kind::Counter { "counter" } else { "gauge" };
            let help = help.trim().replace('\\', "\\\\").replace('\n', " ");
            let _ = write!(
                text,
                "# HELP phx_channels_{name}{suffix} {help}\n# TYPE phx_channels_{name}{suffix} {kind}\nphx_channels_{name}{suffix} {value}\n"
            );
        }
        text
    }
}

pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Relaxed);
}

pub(crate) fn incr(counter: &AtomicU64) {
    counter.fetch_add(1, Relaxed);
}

#[cfg(feature = "redis")]
pub(crate) fn set(counter: &AtomicU64, n: u64) {
    counter.store(n, Relaxed);
}

pub(crate) fn decr(counter: &AtomicU64) {
    counter.fetch_sub(1, Relaxed);
}
