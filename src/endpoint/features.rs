//! The optional features' part of an endpoint, in one place: the builder methods of
//! `tls` and `redis`, the settings they fill in, and their steps of the start. The
//! builder, its config and the shutdown see only [`FeatureSettings`], [`Pending`],
//! [`Started`] and [`StopLast`].

use crate::error::Error;
use crate::presence::Presence;
use crate::pubsub::{Adapter, PubSub};
use crate::stats::Stats;
use crate::transport::reactor::ReactorContext;
use std::fmt;
use std::sync::Arc;
#[cfg(feature = "redis")]
use std::time::Duration;

/// What shutdown stops last, after the channels (the cluster: the presences of the
/// channels that ended must leave the other nodes too).
pub(super) type StopLast = Box<dyn FnOnce() + Send>;

/// The settings of the optional features, as their builder methods leave them.
#[derive(Default)]
pub(super) struct FeatureSettings {
    /// Serves TLS only, with this certificate and key.
    #[cfg(feature = "tls")]
    tls: Option<crate::transport::tls_config::TlsConfig>,
    /// The Redis cluster to join, if any.
    #[cfg(feature = "redis")]
    cluster: ClusterSettings,
}

impl fmt::Debug for FeatureSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut f = f.debug_struct("FeatureSettings");
        #[cfg(feature = "tls")]
        f.field("tls", &self.tls.is_some());
        // Not the URL: it may hold a password.
        #[cfg(feature = "redis")]
        f.field("redis", &self.cluster.url.is_some()).field("redis_channel", &self.cluster.channel);
        f.finish()
    }
}

/// The features' part of a start, begun before the endpoint's pubsub exists.
pub(super) struct Pending {
    #[cfg(feature = "redis")]
    cluster: Option<crate::cluster::Joining>,
}

impl FeatureSettings {
    /// Begins the start: joins the cluster if `redis` was set, whose adapter becomes
    /// the endpoint's. Returns the endpoint's adapter (`adapter` otherwise).
    /// `long_poll_without_secret`: a socket serves long-poll and the endpoint has no
    /// `secret_key_base` of its own, which a cluster refuses.
    pub(super) fn begin(
        &self,
        adapter: Option<Arc<dyn Adapter>>,
        long_poll_without_secret: bool,
        node: &str,
        stats: &Arc<Stats>,
    ) -> Result<(Option<Arc<dyn Adapter>>, Pending), Error> {
        #[cfg(feature = "redis")]
        {
            let cluster = self.cluster.join(adapter.is_some(), long_poll_without_secret, node, stats)?;
            let adapter = cluster.as_ref().map(crate::cluster::Joining::adapter).or(adapter);
            Ok((adapter, Pending { cluster }))
        }
        #[cfg(not(feature = "redis"))]
        {
            let _ = (long_poll_without_secret, node, stats);
            Ok((adapter, Pending {}))
        }
    }

    /// The transport's TLS configuration, if `tls` was set.
    #[cfg(feature = "tls")]
    pub(super) fn tls_server(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.tls.as_ref().map(crate::transport::tls_config::TlsConfig::server)
    }
}

impl Pending {
    /// Once the pubsub and presence run: the cluster starts receiving and replicating.
    pub(super) fn start(self, pubsub: &PubSub, presence: &Arc<Presence>) -> Result<Started, Error> {
        #[cfg(feature = "redis")]
        {
            let cluster = self.cluster.map(|joining| joining.start(pubsub.clone(), presence.clone())).transpose()?;
            Ok(Started { cluster })
        }
        #[cfg(not(feature = "redis"))]
        {
            let _ = (pubsub, presence);
            Ok(Started {})
        }
    }
}

/// The features' part of a running endpoint, until shutdown takes it as [`StopLast`].
pub(super) struct Started {
    #[cfg(feature = "redis")]
    cluster: Option<crate::cluster::Cluster>,
}

impl Started {
    /// Makes the endpoint's long-poll sessions (its reactors share `context`) reachable
    /// from the cluster's other nodes, and theirs from here.
    pub(super) fn serve_long_poll(&self, context: &Arc<ReactorContext>) {
        #[cfg(feature = "redis")]
        if let Some(cluster) = &self.cluster {
            cluster.serve_long_poll(context);
        }
        let _ = context;
    }

    /// What shutdown stops last: the cluster, if the endpoint joined one.
    pub(super) fn into_stop(self) -> Option<StopLast> {
        #[cfg(feature = "redis")]
        if let Some(cluster) = self.cluster {
            return Some(Box::new(move || cluster.stop()));
        }
        None
    }
}

cfg_tls! {
    impl super::EndpointBuilder {
        /// Serves TLS only (`wss://`, `https://`) with this certificate and key (feature
        /// `tls`). Plain HTTP on the port is refused with a `400` that says so.
        ///
        /// The TLS handshake runs on the reactors, within the
        /// [handshake timeout](Self::handshake_timeout), and the bytes a client may
        /// send before it completes are bounded by
        /// [`max_header_bytes`](Self::max_header_bytes). A TLS connection's frames
        /// are all written by its reactor: the shortcut that lets a channel thread write its
        /// reply to an idle plain socket itself does not apply, so each batch of frames
        /// costs a reactor wake-up (besides the encryption).
        ///
        /// ```no_run
        /// # fn demo(builder: phx_channels::EndpointBuilder) -> Result<(), Box<dyn std::error::Error>> {
        /// let endpoint = builder.tls(phx_channels::TlsConfig::from_pem_files("cert.pem", "key.pem")?).start()?;
        /// # Ok(()) }
        /// ```
        pub fn tls(mut self, config: crate::transport::tls_config::TlsConfig) -> Self {
            self.features.tls = Some(config);
            self
        }
    }
}

/// The cluster's settings, as the `redis` builder methods leave them.
#[cfg(feature = "redis")]
struct ClusterSettings {
    url: Option<String>,
    channel: String,
    down_after: Duration,
}

cfg_redis! {
    impl Default for ClusterSettings {
        fn default() -> Self {
            ClusterSettings {
                url: None,
                channel: crate::cluster::DEFAULT_CHANNEL.to_owned(),
                down_after: crate::cluster::DEFAULT_DOWN_AFTER,
            }
        }
    }

    impl ClusterSettings {
        /// The cluster to join, if `redis` was set (its publisher starts here).
        fn join(
            &self,
            has_adapter: bool,
            long_poll_without_secret: bool,
            node: &str,
            stats: &Arc<Stats>,
        ) -> Result<Option<crate::cluster::Joining>, Error> {
            let Some(url) = &self.url else { return Ok(None) };
            if has_adapter {
                return Err(Error::Config("an endpoint takes an adapter or redis, not both".into()));
            }
            if long_poll_without_secret {
                return Err(Error::Config(
                    "a cluster's long-poll sessions need the secret_key_base every node shares: set one".into(),
                ));
            }
            let config = crate::cluster::ClusterConfig {
                url: url.clone(),
                channel: self.channel.clone(),
                down_after: self.down_after,
            };
            crate::cluster::Joining::new(config, node, stats.clone()).map(Some)
        }
    }

    impl super::EndpointBuilder {
        /// Joins the cluster of every endpoint that uses the same Redis (and
        /// [channel](Self::redis_channel)): broadcasts, socket-id disconnects and
        /// presence reach every node, and a long-poll session is usable through every node
        /// (feature `redis`). `url` is `redis://[:password@]host:port[/db]`. With long-poll,
        /// every node needs the same [`secret_key_base`](Self::secret_key_base).
        ///
        /// [`start`](Self::start) returns once this node is subscribed, so a
        /// broadcast made right after it reaches the other nodes. If Redis cannot be reached,
        /// the endpoint starts all the same, serves its own clients and keeps trying
        /// (see `redis_connected` and `redis_reconnects` in [`Endpoint::stats`](crate::Endpoint::stats)).
        /// Publishing never waits for Redis: broadcasts for the other nodes are queued, and
        /// those that cannot be sent are counted in `cluster_broadcasts_lost`.
        ///
        /// ```no_run
        /// use phx_channels::{Endpoint, UserSocket};
        /// # use phx_channels::{Channel, JoinResult, Payload, Socket};
        /// # struct Room;
        /// # impl Channel for Room {
        /// #     fn join(&mut self, _: &str, _: &Payload, _: &mut Socket) -> JoinResult { Ok(Payload::empty()) }
        /// # }
        /// let endpoint = Endpoint::builder()
        ///     .bind("0.0.0.0:4000")
        ///     .socket("/socket", UserSocket::new().channel("room:*", |_| Room))
        ///     .node_name("web-1")
        ///     .redis("redis://10.0.0.5:6379/")
        ///     .start()?;
        /// // Every node's subscribers of room:lobby get it, once.
        /// endpoint.broadcast("room:lobby", "new_msg", serde_json::json!({"body": "hi"}))?;
        /// # Ok::<(), phx_channels::Error>(())
        /// ```
        pub fn redis(mut self, url: impl Into<String>) -> Self {
            self.features.cluster.url = Some(url.into());
            self
        }

        /// The Redis channel the cluster's nodes share; default `phx:cluster`. Clusters
        /// that share a Redis need channels of their own.
        pub fn redis_channel(mut self, channel: impl Into<String>) -> Self {
            self.features.cluster.channel = channel.into();
            self
        }

        /// How long a node of the cluster may stay silent (crashed, killed, cut off) before
        /// the others take it for gone and its presences leave; default 30 s, as
        /// Phoenix.Tracker's. At least 1 s. Nodes say they are alive every fifth of this
        /// (at most every second), so a node is taken for gone between this period and
        /// a fifth more.
        pub fn node_down_after(mut self, period: Duration) -> Self {
            self.features.cluster.down_after = period;
            self
        }
    }
}
