//! Counters of what the endpoint did: cheap atomics, read with [`Endpoint::stats`].
//!
//! [`Endpoint::stats`]: crate::Endpoint::stats

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// Live counters, shared by every thread of an endpoint.
        #[derive(Default, Debug)]
        pub(crate) struct Stats {
            $($name: AtomicU64,)*
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
            $($(#[$doc])* pub $name: u64,)*
        }

        impl Stats {
            // `tls_handshake_failures` is counted only with the `tls` feature.
            $(#[cfg_attr(not(feature = "tls"), allow(dead_code))]
            pub(crate) fn $name(&self) -> &AtomicU64 { &self.$name })*

            pub(crate) fn snapshot(&self) -> StatsSnapshot {
                StatsSnapshot { $($name: self.$name.load(Relaxed),)* }
            }
        }
    };
}

counters! {
    /// WebSocket connections open now.
    connections,
    /// WebSocket connections accepted since start.
    connections_total,
    /// Channels joined now (each is a thread).
    channels,
    /// Channel threads running now (joined, joining or terminating).
    channel_threads,
    /// Joins accepted since start.
    joins_total,
    /// Messages decoded from clients.
    messages_in,
    /// Frames written to clients.
    frames_out,
    /// Bytes read from client sockets.
    bytes_in,
    /// Bytes written to client sockets.
    bytes_out,
    /// Broadcasts dispatched.
    broadcasts,
    /// Frames encoded by the fastlane: at most one per wire format per broadcast.
    broadcast_encodes,
    /// Broadcast deliveries handed to connections by the fastlane.
    fastlane_deliveries,
    /// Fastlane deliveries the publishing thread wrote to the socket itself; the others
    /// went through the connections' reactors (see `fastlane_deliveries`).
    fastlane_direct,
    /// Broadcasts dropped for a subscriber whose queue or mailbox was full.
    broadcasts_dropped,
    /// Connections refused at the handshake (any status).
    refused_connections,
    /// TLS handshakes that failed (feature `tls`): plain HTTP on the TLS port, a client
    /// that does not trust the certificate, a handshake over the size limit. Handshakes
    /// that time out count in `refused_connections`.
    tls_handshake_failures,
    /// Joins refused by the server's limits (channels per connection, channel threads).
    refused_joins,
    /// Connections closed because they did not read fast enough.
    slow_consumer_closes,
    /// Panics caught in channel callbacks.
    panics,
    /// Connections closed for sending a frame that could not be decoded.
    malformed_frames,
}

pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Relaxed);
}

pub(crate) fn incr(counter: &AtomicU64) {
    counter.fetch_add(1, Relaxed);
}

pub(crate) fn decr(counter: &AtomicU64) {
    counter.fetch_sub(1, Relaxed);
}
