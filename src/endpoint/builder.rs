//! The endpoint's builder: every setting, with its default, and `start`.

use super::Endpoint;
use super::config::{EndpointConfig, available_cores, default_node_name};
use super::running::Running;
use crate::channel_runtime::{ChannelRuntime, ChannelSettings, ThreadTracker};
#[cfg(feature = "redis")]
use crate::cluster::{ClusterConfig, Joining};
use crate::error::Error;
use crate::presence::{NodeId, Presence};
use crate::protocol::connect_pool::ConnectPool;
use crate::protocol::routes::{Mount, Routes, StaticResponse};
use crate::protocol::sockets::Sockets;
use crate::protocol::user_socket::UserSocket;
use crate::pubsub::{Adapter, PubSub};
use crate::stats::Stats;
use crate::transport::acceptor::Acceptor;
use crate::transport::reactor::{Reactor, ReactorContext};
use crate::transport::settings::TransportSettings;
use bytes::Bytes;
use std::collections::HashMap;
use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

/// Configures and starts an [`Endpoint`]. Get one with [`Endpoint::builder`].
pub struct EndpointBuilder {
    bind: String,
    host: String,
    mounts: Vec<(String, UserSocket)>,
    statics: HashMap<String, StaticResponse>,
    config: EndpointConfig,
    adapter: Option<Arc<dyn Adapter>>,
}

impl EndpointBuilder {
    pub(super) fn new() -> Self {
        EndpointBuilder {
            bind: "127.0.0.1:4000".into(),
            host: "localhost".into(),
            mounts: Vec::new(),
            statics: HashMap::new(),
            config: EndpointConfig::default(),
            adapter: None,
        }
    }

    /// The address to listen on; default `127.0.0.1:4000`. Port 0 picks a free port
    /// (see [`Endpoint::local_addr`]).
    pub fn bind(mut self, addr: impl Into<String>) -> Self {
        self.bind = addr.into();
        self
    }

    /// The endpoint's host name, which [`CheckOrigin::EndpointHost`](crate::CheckOrigin::EndpointHost)
    /// compares origins with; default `localhost`.
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self
    }

    /// Mounts `socket` at `path`: clients connect to `<path>/websocket`. The path
    /// may hold `:name` segments, whose values become connect params.
    pub fn socket(mut self, path: &str, socket: UserSocket) -> Self {
        self.mounts.push((path.to_owned(), socket));
        self
    }

    /// Answers `GET path` with `body` (for example a page of the application, or its
    /// scripts). Other paths that are not sockets get 404.
    pub fn static_response(mut self, path: &str, content_type: &str, body: impl Into<Bytes>) -> Self {
        let page = StaticResponse { content_type: content_type.to_owned(), body: body.into() };
        self.statics.insert(path.to_owned(), page);
        self
    }

    /// Answers `GET path` with `200 ok`, for load balancers and supervisors.
    pub fn health_check(self, path: &str) -> Self {
        self.static_response(path, "text/plain; charset=utf-8", &b"ok"[..])
    }

    /// Reactor threads; default the number of cores.
    pub fn reactors(mut self, count: usize) -> Self {
        self.config.reactors = count.max(1);
        self
    }

    /// Threads that run `connect` callbacks; default the number of cores (at least 2).
    pub fn connect_workers(mut self, count: usize) -> Self {
        self.config.connect_workers = count.max(1);
        self
    }

    /// Stack size of each channel thread; default 128 KiB. Only the pages a thread
    /// touches use memory.
    pub fn channel_stack_size(mut self, bytes: usize) -> Self {
        self.config.channel_stack_size = bytes;
        self
    }

    /// Most messages waiting in one channel's mailbox; default 10 000. Past that,
    /// client messages are dropped with a warning and broadcasts are counted as dropped.
    pub fn channel_inbox_limit(mut self, limit: usize) -> Self {
        self.config.channel_inbox_limit = limit.max(1);
        self
    }

    /// Most channel threads in the whole endpoint; default 20 000. A join past the cap
    /// is refused with `{"reason":"too many channel threads"}`.
    ///
    /// The cap never exceeds what the OS allows this process, read at start: each thread
    /// takes a process id (`kernel.pid_max`, `kernel.threads-max`) and four memory
    /// mappings (its stack and its signal stack, each with a guard page), and
    /// `vm.max_map_count` bounds the mappings (65 530 by default, so about 15 000
    /// threads; raise it with `sysctl vm.max_map_count=262144` for more). Running out
    /// of mappings would abort the process, so the endpoint stops short of it.
    pub fn max_channel_threads(mut self, max: usize) -> Self {
        self.config.max_channel_threads = max;
        self.config.max_channel_threads_set = true;
        self
    }

    /// Time a client has to send its HTTP request; default 10 s.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.config.handshake_timeout = timeout;
        self
    }

    /// Largest HTTP request head; default 16 KiB. Larger ones get 431.
    pub fn max_header_bytes(mut self, bytes: usize) -> Self {
        self.config.max_header_bytes = bytes;
        self
    }

    /// Most TCP connections at once, handshakes included; default 16 384. Past that,
    /// new connections get HTTP 503.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.config.max_connections = max;
        self
    }

    /// How [`Endpoint::shutdown`] drains: `size` connections per batch, batches
    /// `interval` apart; default 10 000 every 2 s, as Phoenix.
    pub fn drain_batches(mut self, size: usize, interval: Duration) -> Self {
        self.config.drain_batch_size = size.max(1);
        self.config.drain_batch_interval = interval;
        self
    }

    /// How long [`Endpoint::shutdown`] waits for channels to terminate; default 30 s.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.config.shutdown_timeout = timeout;
        self
    }

    /// Words whose keys are logged as `[FILTERED]`; default `password` and `token`.
    pub fn filter_parameters<I: IntoIterator<Item = S>, S: Into<String>>(mut self, words: I) -> Self {
        self.config.filter_parameters = words.into_iter().map(Into::into).collect();
        self
    }

    /// Undelivered broadcasts one [`Subscription`](crate::Subscription) may hold; default 10 000.
    pub fn subscription_capacity(mut self, capacity: usize) -> Self {
        self.config.subscription_capacity = capacity.max(1);
        self
    }

    /// How long presence changes are gathered into one `presence_diff` per topic;
    /// default 20 ms.
    pub fn presence_window(mut self, window: Duration) -> Self {
        self.config.presence_window = window;
        self
    }

    /// Forwards broadcasts to other nodes through an adapter of your own (see
    /// [`Adapter`]). With the `redis` feature, `redis` does it over Redis, presence
    /// included.
    pub fn adapter(mut self, adapter: impl Adapter) -> Self {
        self.adapter = Some(Arc::new(adapter));
        self
    }

    /// This node's name in a cluster; default `<host name>-<process id>`. Every process
    /// of a cluster needs a name of its own: it is where
    /// [`direct_broadcast`](crate::PubSub::direct_broadcast) sends, and presence keeps
    /// each node's entries under it.
    pub fn node_name(mut self, name: impl Into<String>) -> Self {
        self.config.node_name = Some(name.into());
        self
    }

    /// Joins the cluster of every endpoint that uses the same Redis (and
    /// [channel](EndpointBuilder::redis_channel)): broadcasts, socket-id disconnects and
    /// presence reach every node (feature `redis`). `url` is `redis://[:password@]host:port[/db]`.
    ///
    /// [`start`](EndpointBuilder::start) returns once this node is subscribed, so a
    /// broadcast made right after it reaches the other nodes. If Redis cannot be reached,
    /// the endpoint starts all the same, serves its own clients and keeps trying
    /// (see `redis_connected` and `redis_reconnects` in [`Endpoint::stats`]).
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
    #[cfg(feature = "redis")]
    pub fn redis(mut self, url: impl Into<String>) -> Self {
        self.config.redis_url = Some(url.into());
        self
    }

    /// The Redis channel the cluster's nodes share; default `phx:cluster`. Clusters
    /// that share a Redis need channels of their own.
    #[cfg(feature = "redis")]
    pub fn redis_channel(mut self, channel: impl Into<String>) -> Self {
        self.config.redis_channel = channel.into();
        self
    }

    /// How long a node of the cluster may stay silent (crashed, killed, cut off) before
    /// the others take it for gone and its presences leave; default 30 s, as
    /// Phoenix.Tracker's. At least 1 s. Nodes say they are alive every fifth of this
    /// (at most every second), so a node is taken for gone between this period and
    /// a fifth more.
    #[cfg(feature = "redis")]
    pub fn node_down_after(mut self, period: Duration) -> Self {
        self.config.node_down_after = period;
        self
    }

    /// Binds the listener and starts the endpoint's threads; the server runs in the
    /// background until [`Endpoint::shutdown`].
    pub fn start(self) -> Result<Endpoint, Error> {
        for (path, socket) in &self.mounts {
            if let Some(err) = socket.errors.first() {
                return Err(Error::Config(format!("socket {path}: {err}")));
            }
        }
        let addr = self
            .bind
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| Error::Config(format!("cannot resolve {:?}", self.bind)))?;
        let listener = mio::net::TcpListener::bind(addr)?;
        let local_addr = listener.local_addr()?;
        let stats = Arc::new(Stats::default());
        let mut config = self.config;
        config.clamp_to_os();
        // A fan-out can be written by its publisher and every reactor at once, as far as
        // the process has cores for them.
        let writers = available_cores().min(config.reactors + 1);
        let node: Arc<str> = config.node_name.clone().unwrap_or_else(default_node_name).into();
        #[cfg(feature = "redis")]
        let cluster = Self::cluster(self.adapter.is_some(), &config, &node, &stats)?;
        #[cfg(feature = "redis")]
        let adapter = cluster.as_ref().map(Joining::adapter).or(self.adapter);
        #[cfg(not(feature = "redis"))]
        let adapter = self.adapter;
        let pubsub = PubSub::new(
            config.registry_shards,
            writers,
            stats.clone(),
            adapter,
            config.subscription_capacity,
            node.clone(),
        );
        let presence = Presence::start(pubsub.clone(), config.presence_window, NodeId(node.to_string()))?;
        #[cfg(feature = "redis")]
        let cluster = cluster.map(|c| c.start(pubsub.clone(), presence.clone())).transpose()?;
        let runtime = Arc::new(ChannelRuntime {
            pubsub,
            presence,
            stats: stats.clone(),
            settings: ChannelSettings {
                stack_size: config.channel_stack_size,
                inbox_limit: config.channel_inbox_limit,
                max_threads: config.max_channel_threads,
                filter_parameters: config.filter_parameters.clone(),
            },
            tracker: ThreadTracker::default(),
        });
        let mounts: Vec<Arc<Mount>> =
            self.mounts.into_iter().map(|(path, socket)| Arc::new(Mount::new(&path, socket))).collect();
        // Deadlines are checked often enough for the shortest idle timeout.
        let shortest_idle = mounts.iter().map(|m| m.socket.settings.idle_timeout).min();
        let tick = shortest_idle
            .map_or(Duration::from_secs(1), |t| t / 4)
            .clamp(Duration::from_millis(10), Duration::from_secs(1));
        let sockets = Arc::new(Sockets {
            routes: Routes { mounts, statics: self.statics, host: self.host },
            runtime,
            connect_pool: ConnectPool::start(config.connect_workers)?,
        });
        let context = Arc::new(ReactorContext {
            settings: TransportSettings {
                handshake_timeout: config.handshake_timeout,
                max_header_bytes: config.max_header_bytes,
                max_connections: config.max_connections,
                shutdown_timeout: config.shutdown_timeout,
                tick,
            },
            handler: sockets.clone(),
            stats,
            open_sockets: AtomicUsize::new(0),
        });
        let mut threads = Vec::new();
        let mut mailboxes = Vec::new();
        for i in 0..config.reactors {
            let reactor = Reactor::new(context.clone())?;
            mailboxes.push(reactor.mailbox());
            threads.push(std::thread::Builder::new().name(format!("phx-reactor-{i}")).spawn(move || reactor.run())?);
        }
        let (acceptor, acceptor_stop) = Acceptor::new(listener, mailboxes.clone())?;
        let acceptor_thread = std::thread::Builder::new().name("phx-acceptor".into()).spawn(move || acceptor.run())?;
        log::info!("phx-channels endpoint listening on {local_addr}");
        Ok(Endpoint::new(Running::new(
            sockets,
            config,
            local_addr,
            (acceptor_thread, acceptor_stop),
            threads,
            mailboxes,
            #[cfg(feature = "redis")]
            cluster,
        )))
    }

    /// The cluster to join, if `redis` was set (its publisher starts here).
    #[cfg(feature = "redis")]
    fn cluster(
        has_adapter: bool,
        config: &EndpointConfig,
        node: &str,
        stats: &Arc<Stats>,
    ) -> Result<Option<Joining>, Error> {
        let Some(url) = &config.redis_url else { return Ok(None) };
        if has_adapter {
            return Err(Error::Config("an endpoint takes an adapter or redis, not both".into()));
        }
        let cluster = ClusterConfig {
            url: url.clone(),
            channel: config.redis_channel.clone(),
            down_after: config.node_down_after,
        };
        Joining::new(cluster, node, stats.clone()).map(Some)
    }
}
