//! Counters of what the endpoint did: cheap atomics, read with [`Endpoint::stats`].
//!
//! [`Endpoint::stats`]: crate::Endpoint::stats

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

macro_rules! counters {
    ($($(#[doc = $doc:literal])* $(#[cfg($cfg:meta)])? $name:ident,)*) => {
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

        impl Stats {
            $($(#[cfg($cfg)])? pub(crate) fn $name(&self) -> &AtomicU64 { &self.$name })*

            pub(crate) fn snapshot(&self) -> StatsSnapshot {
                StatsSnapshot { $($(#[cfg($cfg)])? $name: self.$name.load(Relaxed),)* }
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
    /// Joins refused by the server's limits (channels per connection, channel threads).
    refused_joins,
    /// Connections closed because they did not read fast enough.
    slow_consumer_closes,
    /// Panics caught in channel callbacks.
    panics,
    /// Connections closed for sending a frame that could not be decoded.
    malformed_frames,
    /// Broadcasts published to the other nodes of the cluster (feature `redis`, like
    /// the four below).
    #[cfg(feature = "redis")]
    cluster_broadcasts_sent,
    /// Broadcasts received from other nodes and delivered here.
    #[cfg(feature = "redis")]
    cluster_broadcasts_received,
    /// Cross-node broadcasts lost: not published (Redis unreachable, or the publish queue
    /// full) or received while this node's delivery queue was full.
    #[cfg(feature = "redis")]
    cluster_broadcasts_lost,
    /// 1 while this node is connected to Redis (publishing and subscribed), else 0.
    #[cfg(feature = "redis")]
    redis_connected,
    /// Attempts to connect to Redis again after a failure or a lost connection.
    #[cfg(feature = "redis")]
    redis_reconnects,
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
