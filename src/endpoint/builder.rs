//! The endpoint's builder: every setting, with its default, and `start`.

use super::Endpoint;
use super::config::{EndpointConfig, available_cores, default_node_name};
use super::features::FeatureSettings;
use super::running::Running;
use super::system_limits::{self, SystemLimits};
use crate::channel_runtime::{ChannelRuntime, ChannelSettings, ThreadTracker};
use crate::error::Error;
use crate::futex_hash;
use crate::origin::EndpointHosts;
use crate::presence::{Hooks, NodeId, Presence, PresenceChange, Presences};
use crate::protocol::connect_pool::ConnectPool;
use crate::protocol::routes::{Body, Mount, Routes, StaticResponse};
use crate::protocol::sockets::Sockets;
use crate::protocol::user_socket::UserSocket;
use crate::pubsub::{Adapter, PubSub};
use crate::scheduling::{self, Scheduling};
use crate::spare_threads::SpareThreads;
use crate::stats::Stats;
use crate::telemetry::Telemetry;
use crate::timer::Timers;
use crate::transport::acceptor::Acceptor;
use crate::transport::listener;
use crate::transport::long_poll::SessionTokens;
use crate::transport::reactor::{Reactor, ReactorContext};
use crate::transport::settings::TransportSettings;
use bytes::Bytes;
use std::collections::HashMap;
use std::fmt;
use std::net::ToSocketAddrs;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The content type of the Prometheus text exposition format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Configures and starts an [`Endpoint`]. Get one with [`Endpoint::builder`].
#[must_use = "an endpoint builder does nothing until `start` is called"]
pub struct EndpointBuilder {
    /// None: no listener (connections come through `Endpoint::adopt` only).
    bind: Option<String>,
    /// `None`: the default, `localhost`.
    host: Option<String>,
    /// `None`: a random one, drawn at start.
    secret_key_base: Option<String>,
    mounts: Vec<(String, UserSocket)>,
    statics: HashMap<String, StaticResponse>,
    config: EndpointConfig,
    adapter: Option<Arc<dyn Adapter>>,
    metrics_path: Option<String>,
    presence_hooks: Hooks,
    /// What the `tls` and `redis` builder methods set (`features.rs`).
    pub(super) features: FeatureSettings,
}

impl fmt::Debug for EndpointBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The secret key base stays out.
        let mut f = f.debug_struct("EndpointBuilder");
        f.field("bind", &self.bind)
            .field("host", &self.host)
            .field("sockets", &self.mounts.iter().map(|(path, _)| path).collect::<Vec<_>>())
            .field("statics", &self.statics.keys().collect::<Vec<_>>())
            .field("metrics_path", &self.metrics_path)
            .field("adapter", &self.adapter.is_some())
            .field("features", &self.features);
        f.finish_non_exhaustive()
    }
}

impl EndpointBuilder {
    pub(super) fn new() -> Self {
        EndpointBuilder {
            bind: Some("127.0.0.1:4000".into()),
            host: None,
            secret_key_base: None,
            mounts: Vec::new(),
            statics: HashMap::new(),
            config: EndpointConfig::default(),
            adapter: None,
            metrics_path: None,
            presence_hooks: Hooks::default(),
            features: FeatureSettings::default(),
        }
    }

    /// The address to listen on; default `127.0.0.1:4000`. Port 0 picks a free port
    /// (see [`Endpoint::local_addr`]).
    pub fn bind(mut self, addr: impl Into<String>) -> Self {
        self.bind = Some(addr.into());
        self
    }

    /// Starts no listener: every connection comes from another HTTP server of the
    /// program through [`Endpoint::adopt`]. [`Endpoint::local_addr`] is then `0.0.0.0:0`.
    ///
    /// The endpoint's traffic threads still run in the program's process under the
    /// [`scheduling`](EndpointBuilder::scheduling) policy, `SCHED_BATCH` by default: a
    /// process-level change (threads a callback spawns inherit it) that the start log
    /// line states; see [`Endpoint::adopt`].
    ///
    /// ```
    /// # use phx_channels::{Channel, JoinResult, Payload, Socket, UserSocket};
    /// # struct Room;
    /// # impl Channel for Room {
    /// #     fn join(&mut self, _: &str, _: &Payload, _: &mut Socket) -> JoinResult { Ok(Payload::empty()) }
    /// # }
    /// let endpoint = phx_channels::Endpoint::builder()
    ///     .no_listener()
    ///     .socket("/socket", UserSocket::new().channel("room:*", |_| Room))
    ///     .start()?;
    /// assert_eq!(endpoint.local_addr().port(), 0);
    /// # endpoint.shutdown();
    /// # Ok::<(), phx_channels::Error>(())
    /// ```
    pub fn no_listener(mut self) -> Self {
        self.bind = None;
        self
    }

    /// The endpoint's host name, which [`CheckOrigin::EndpointHost`](crate::CheckOrigin::EndpointHost)
    /// compares origins with; default `localhost`. Once set, only origins of this host
    /// pass. Left at the default, the check also lets through the host a request was
    /// sent to and, on a listener bound to a loopback address, every loopback origin (a
    /// page on `http://127.0.0.1:8080/`, say).
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// The endpoint's secret, which signs long-poll session tokens (Phoenix's
    /// `secret_key_base`); default a random one drawn at start.
    ///
    /// Long-poll sessions live in memory and do not survive a restart whatever the
    /// secret; a token also names the node and the run of it that issued it, so a token
    /// from before a restart finds no session here and its client opens a new one. Set
    /// the secret to keep it out of the process's randomness, for example from your
    /// deployment's secret store.
    ///
    /// In a cluster (`EndpointBuilder::redis`, feature `redis`) every node
    /// must have the same secret: a long-poll request may reach any node, which checks
    /// the token and forwards the request to the node that holds the session. An
    /// endpoint with `redis` and a socket that serves long-poll refuses to start
    /// without one ([`Error::Config`]).
    ///
    /// ```
    /// use phx_channels::Endpoint;
    ///
    /// let builder = Endpoint::builder().secret_key_base("a long random string from the secret store");
    /// ```
    pub fn secret_key_base(mut self, secret: impl Into<String>) -> Self {
        self.secret_key_base = Some(secret.into());
        self
    }

    /// Mounts `socket` at `path`: clients connect to `<path>/websocket` (and, if the
    /// socket enables long-poll, poll at `<path>/longpoll`). The path may hold `:name`
    /// segments, whose values become connect params.
    pub fn socket(mut self, path: &str, socket: UserSocket) -> Self {
        self.mounts.push((path.to_owned(), socket));
        self
    }

    /// Answers `GET path` with `body` (for example a page of the application, or its
    /// scripts). Other paths that are not sockets get 404.
    pub fn static_response(mut self, path: &str, content_type: &str, body: impl Into<Bytes>) -> Self {
        let page = StaticResponse { content_type: content_type.to_owned(), body: Body::Fixed(body.into()) };
        self.statics.insert(path.to_owned(), page);
        self
    }

    /// Answers `GET path` with the endpoint's counters in the Prometheus text format
    /// (see [`StatsSnapshot::to_prometheus`](crate::StatsSnapshot::to_prometheus)), for
    /// a Prometheus server to scrape.
    ///
    /// ```no_run
    /// let endpoint = phx_channels::Endpoint::builder().prometheus_metrics("/metrics").start()?;
    /// # Ok::<(), phx_channels::Error>(())
    /// ```
    pub fn prometheus_metrics(mut self, path: &str) -> Self {
        self.metrics_path = Some(path.to_owned());
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

    /// How the OS schedules the traffic threads; default [`Scheduling::Batch`], which
    /// costs little CPU per message and keeps a lone connection's round trip short. It
    /// changes the policy of threads of the program's process (and of the threads
    /// callbacks spawn), so the start log line says which policy is in force. See
    /// [`Scheduling`].
    pub fn scheduling(mut self, scheduling: Scheduling) -> Self {
        self.config.scheduling = scheduling;
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

    /// How long a channel thread whose channel has ended waits, parked, to run the next
    /// join before it exits; default 10 s. `Duration::ZERO` ends each thread with its
    /// channel.
    ///
    /// Ending an OS thread costs the kernel and the C library tens of microseconds, so a
    /// mass close of many channels (a deploy, a network blip) would spend seconds ending
    /// threads while the closes wait to be answered, and the reconnects that follow would
    /// spend as long starting them again. Waiting threads, counted in
    /// [`StatsSnapshot::spare_channel_threads`](crate::StatsSnapshot::spare_channel_threads),
    /// count toward [`max_channel_threads`](EndpointBuilder::max_channel_threads); each
    /// keeps the stack pages its channels touched. A channel may run on a thread that ran
    /// others before it: keep per-channel state in the channel, not in thread-locals.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let builder = phx_channels::Endpoint::builder().channel_thread_keep_alive(Duration::from_secs(30));
    /// # let _ = builder;
    /// ```
    pub fn channel_thread_keep_alive(mut self, keep_alive: Duration) -> Self {
        self.config.channel_thread_keep_alive = keep_alive;
        self
    }

    /// Most channel threads in the whole endpoint; by default, as many as the OS allows
    /// this process, read at start. A join past the cap is refused with
    /// `{"reason":"too many channel threads"}`.
    ///
    /// Each thread takes a process id (`kernel.pid_max`, `kernel.threads-max`, and
    /// `ulimit -u`, which counts every process and thread of the user, root's only inside
    /// a container's user namespace) and four memory mappings (its stack and
    /// its signal stack, each with a guard page), which `vm.max_map_count` bounds (65 530
    /// on a stock kernel, so about 15 000 threads). Running out of mappings would abort
    /// the process, so the cap never goes past what these allow, with room left for
    /// the rest: a cap set higher is lowered, and the endpoint logs a warning naming
    /// each setting to raise and the value it needs (for `N` threads:
    /// `vm.max_map_count` ≥ 4·N + 4096, `kernel.pid_max` ≥ N + 2048,
    /// `kernel.threads-max` ≥ 2·N).
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

    /// Most TCP connections at once, handshakes included; by default, as many as this
    /// process may open files (`ulimit -n`), less 256 kept for everything else. Past
    /// that, new connections get HTTP 503. At start the endpoint raises the process's
    /// soft open-file limit toward its hard limit (all the way by default, as far as
    /// this cap needs when it is set), since a shell's soft limit is often 1,024; it logs
    /// that at info. A cap set above the hard limit is lowered to it, with a warning
    /// that says what to raise `ulimit -n` to.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.config.max_connections = max;
        self.config.max_connections_set = true;
        self
    }

    /// Most long-poll sessions at once; default 16 384. Past that, a request for a new
    /// session gets HTTP 503 (`Service Unavailable: too many long-poll sessions`), which
    /// the official client retries after its reconnect delay.
    pub fn max_long_poll_sessions(mut self, max: usize) -> Self {
        self.config.max_long_poll_sessions = max;
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

    /// Registers the telemetry hook: it gets every [`telemetry::Event`](crate::telemetry::Event),
    /// on the thread where the event happened. Without one, events cost nothing.
    /// Registering again replaces the hook.
    pub fn telemetry(mut self, hook: impl Fn(&crate::telemetry::Event<'_>) + Send + Sync + 'static) -> Self {
        self.config.telemetry = Telemetry::new(hook);
        self
    }

    /// Enriches presences before they go out, Phoenix's `Presence.fetch/2`: `fetch`
    /// gets a topic and its presences (`{key: {"metas": [...]}}`) and adds to each
    /// key's object what clients should see (a user's name, say), once per key for each
    /// [`Presence::list`] (the `presence_state` a channel pushes), each
    /// [`Presence::get_by_key`], and each `presence_diff` (its joins, then its leaves):
    /// one call per outgoing message, whatever the number of clients, so one database
    /// query can serve every key. Diffs are fetched on the presence thread; lists on
    /// the calling thread. A panic is logged and the presences go out as they were.
    ///
    /// ```
    /// use phx_channels::{Endpoint, testing};
    /// use serde_json::json;
    ///
    /// let builder = Endpoint::builder().presence_fetch(|_topic, presences| {
    ///     for (key, presence) in presences.iter_mut() {
    ///         presence["name"] = json!(format!("User {key}")); // one query for all keys, in a real app
    ///     }
    /// });
    /// let endpoint = testing::endpoint(builder)?;
    /// let _me = endpoint.presence().track_external("room:1", "42", json!({}))?;
    /// assert_eq!(endpoint.presence().list("room:1")["42"]["name"], "User 42");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn presence_fetch(mut self, fetch: impl Fn(&str, &mut Presences) + Send + Sync + 'static) -> Self {
        self.presence_hooks.set_fetch(fetch);
        self
    }

    /// Runs `handle_metas` after each topic's `presence_diff` has gone out, with the
    /// topic, the diff's joins and leaves (fetched) and everyone on the topic now:
    /// Phoenix's `handle_metas/4`, for server-side reactions to presence (keeping a
    /// count, telling other systems). It runs on the presence thread, one change at a
    /// time, never on a channel's thread; keep it short, diffs wait for it. A panic is
    /// logged.
    ///
    /// ```
    /// use phx_channels::{Endpoint, testing};
    /// use serde_json::json;
    /// use std::time::Duration;
    ///
    /// let (changes, changed) = crossbeam_channel::unbounded();
    /// let builder = Endpoint::builder().presence_handle_metas(move |change| {
    ///     let _ = changes.send((change.topic.to_owned(), change.presences.len()));
    /// });
    /// let endpoint = testing::endpoint(builder)?;
    /// let _bot = endpoint.presence().track_external("room:1", "bot", json!({}))?;
    /// assert_eq!(changed.recv_timeout(Duration::from_secs(5))?, ("room:1".to_owned(), 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn presence_handle_metas(mut self, handle_metas: impl FnMut(&PresenceChange<'_>) + Send + 'static) -> Self {
        self.presence_hooks.set_handle_metas(handle_metas);
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

    /// Binds the listener (unless [`no_listener`](EndpointBuilder::no_listener)) and
    /// starts the endpoint's threads; the server runs in the background until
    /// [`Endpoint::shutdown`].
    pub fn start(self) -> Result<Endpoint, Error> {
        self.check()?;
        let listening = match &self.bind {
            Some(bind) => {
                let addr =
                    bind.to_socket_addrs()?.next().ok_or_else(|| Error::Config(format!("cannot resolve {bind:?}")))?;
                Listening::Listener(listener::bind(addr)?)
            }
            None => Listening::HandedOver,
        };
        self.launch(listening)
    }

    /// Starts the endpoint without a listener, acceptor or reactors: its connections
    /// are in memory ([`testing`](crate::testing)).
    pub(crate) fn start_without_listener(self) -> Result<Endpoint, Error> {
        self.check()?;
        self.launch(Listening::InMemory)
    }

    /// Refuses a configuration with errors.
    fn check(&self) -> Result<(), Error> {
        for (path, socket) in &self.mounts {
            if let Some(err) = socket.errors.first() {
                return Err(Error::Config(format!("socket {path}: {err}")));
            }
        }
        Ok(())
    }

    /// Starts the endpoint's threads: the reactors unless its connections are in
    /// memory, and the acceptor only with a listener.
    fn launch(self, listening: Listening) -> Result<Endpoint, Error> {
        let stats = Arc::new(Stats::default());
        let mut statics = self.statics;
        if let Some(path) = self.metrics_path {
            let stats = stats.clone();
            let body = Body::Generated(Arc::new(move || stats.snapshot().to_prometheus().into()));
            statics.insert(path, StaticResponse { content_type: PROMETHEUS_TEXT.to_owned(), body });
        }
        let mut config = self.config;
        // As much of the hard open-file limit as the connections may use, before the
        // caps are read from it (a shell's soft limit is often 1,024).
        let wanted = config.max_connections_set.then(|| system_limits::files_for_connections(config.max_connections));
        if let Some((from, to)) = system_limits::raise_open_files(wanted) {
            log::info!("raised this process's open-file limit (ulimit -n) from {from} to {to} for connections");
        }
        config.fit_to_system(&SystemLimits::read());
        // A fan-out can be written by its publisher and every reactor at once, as far as
        // the process has cores for them.
        let writers = available_cores().min(config.reactors + 1);
        let node: Arc<str> = config.node_name.clone().unwrap_or_else(default_node_name).into();
        let long_poll_without_secret =
            self.secret_key_base.is_none() && self.mounts.iter().any(|(_, socket)| socket.settings.long_poll.is_some());
        let (adapter, pending) = self.features.begin(self.adapter, long_poll_without_secret, &node, &stats)?;
        let pubsub = PubSub::new(
            config.registry_shards,
            writers,
            stats.clone(),
            adapter,
            config.subscription_capacity,
            node.clone(),
        );
        let presence = Presence::start(
            pubsub.clone(),
            config.presence_window,
            self.presence_hooks,
            config.telemetry.clone(),
            NodeId(node.to_string()),
        )?;
        let started = pending.start(&pubsub, &presence)?;
        let runtime = Arc::new(ChannelRuntime {
            pubsub,
            presence,
            timers: Arc::new(Timers::start()?),
            stats: stats.clone(),
            settings: ChannelSettings {
                stack_size: config.channel_stack_size,
                inbox_limit: config.channel_inbox_limit,
                max_threads: config.max_channel_threads,
                filter_parameters: config.filter_parameters.clone(),
                scheduling: config.scheduling,
            },
            tracker: ThreadTracker::default(),
            spares: SpareThreads::new(config.channel_thread_keep_alive, stats.clone()),
            telemetry: config.telemetry.clone(),
        });
        let mounts: Vec<Arc<Mount>> =
            self.mounts.into_iter().map(|(path, socket)| Arc::new(Mount::new(&path, socket))).collect();
        // Deadlines are checked often enough for the shortest idle timeout, and to end
        // long-poll windows within a tenth of the shortest.
        let idle = mounts.iter().map(|m| m.socket.settings.idle_timeout / 4);
        let windows = mounts.iter().filter_map(|m| m.socket.settings.long_poll).map(|lp| lp.window / 10);
        let tick = idle
            .chain(windows)
            .min()
            .unwrap_or(Duration::from_secs(1))
            .clamp(Duration::from_millis(10), Duration::from_secs(1));
        let secret_key_base = match self.secret_key_base {
            Some(secret) => secret,
            None => random_secret()?,
        };
        let host = endpoint_hosts(self.host, &listening);
        let sockets = Arc::new(Sockets {
            routes: Routes { mounts, statics, host },
            runtime,
            connect_pool: ConnectPool::start(
                match listening {
                    Listening::InMemory => 1,
                    _ => config.connect_workers,
                },
                config.scheduling,
            )?,
        });
        if let Listening::InMemory = listening {
            log::debug!("phx-channels endpoint started with in-memory connections only");
            return Ok(Endpoint::new(Running::new(
                sockets,
                config,
                None,
                None,
                Vec::new(),
                Vec::new(),
                started.into_stop(),
            )));
        }
        // Before the channel threads: their wake-ups should not share a few hundred
        // futex buckets with every other thread (futex_hash.rs).
        futex_hash::reserve_for_threads(config.max_channel_threads);
        let context = Arc::new(ReactorContext {
            settings: TransportSettings {
                handshake_timeout: config.handshake_timeout,
                max_header_bytes: config.max_header_bytes,
                max_connections: config.max_connections,
                max_sessions: config.max_long_poll_sessions,
                shutdown_timeout: config.shutdown_timeout,
                tick,
                #[cfg(feature = "tls")]
                tls: self.features.tls_server(),
            },
            handler: sockets.clone(),
            stats,
            telemetry: config.telemetry.clone(),
            open_sockets: AtomicUsize::new(0),
            open_sessions: AtomicUsize::new(0),
            reactors: OnceLock::new(),
            tokens: SessionTokens::new(&secret_key_base, &node)?,
            forwarder: OnceLock::new(),
        });
        started.serve_long_poll(&context);
        let reactors = (0..config.reactors).map(|i| Reactor::new(context.clone(), i)).collect::<Result<Vec<_>, _>>()?;
        let mailboxes: Vec<_> = reactors.iter().map(Reactor::mailbox).collect();
        // Before any reactor runs: a long-poll request may move to any of them.
        let _ = context.reactors.set(mailboxes.clone());
        let mut threads = Vec::new();
        let scheduling = config.scheduling;
        let reactor_cpus = scheduling.reactor_cpus(reactors.len());
        for ((i, reactor), cpus) in reactors.into_iter().enumerate().zip(reactor_cpus) {
            threads.push(std::thread::Builder::new().name(format!("phx-reactor-{i}")).spawn(move || {
                scheduling.apply_to_current_thread();
                // The channel threads this reactor starts inherit its CPUs.
                if let Some(cpus) = cpus {
                    scheduling::pin_current_thread(&cpus);
                }
                reactor.run()
            })?);
        }
        let acceptor = match listening {
            Listening::Listener(listener) => {
                let local_addr = listener.local_addr()?;
                let (acceptor, stop) = Acceptor::new(listener, mailboxes.clone())?;
                let thread = std::thread::Builder::new().name("phx-acceptor".into()).spawn(move || {
                    scheduling.apply_to_current_thread();
                    acceptor.run()
                })?;
                log::info!(
                    "phx-channels endpoint listening on {local_addr}: at most {} connections and {} channel threads; {}",
                    config.max_connections,
                    config.max_channel_threads,
                    scheduling.log_note()
                );
                Some((thread, stop, local_addr))
            }
            _ => {
                log::info!("phx-channels endpoint started without a listener; {}", scheduling.log_note());
                None
            }
        };
        let local_addr = acceptor.as_ref().map(|(_, _, addr)| *addr);
        let acceptor = acceptor.map(|(thread, stop, _)| (thread, stop));
        Ok(Endpoint::new(Running::new(sockets, config, local_addr, acceptor, threads, mailboxes, started.into_stop())))
    }
}

/// Where an endpoint's connections come from.
enum Listening {
    /// Its own listener.
    Listener(mio::net::TcpListener),
    /// Only [`Endpoint::adopt`]: reactors, no listener.
    HandedOver,
    /// In-memory test connections: no listener, no reactors.
    InMemory,
}

/// What the default origin check allows: a configured host alone; with the default
/// host, each request's own host, and every loopback origin on a loopback listener.
fn endpoint_hosts(configured: Option<String>, listening: &Listening) -> EndpointHosts {
    match configured {
        Some(host) => EndpointHosts::Configured(host),
        None => EndpointHosts::Default {
            loopback_listener: matches!(listening, Listening::Listener(listener)
                if listener.local_addr().is_ok_and(|addr| addr.ip().is_loopback())),
        },
    }
}

/// A secret key base for an endpoint not given one: 64 random bytes, in hex.
fn random_secret() -> Result<String, Error> {
    let mut random = [0u8; 64];
    getrandom::fill(&mut random).map_err(std::io::Error::other)?;
    Ok(random.iter().map(|b| format!("{b:02x}")).collect())
}
