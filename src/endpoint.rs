//! The endpoint: a builder for the server, and the handle of a running one, with the
//! broadcast API (PROTOCOL.md 6).

use crate::channel_thread::ThreadTracker;
use crate::error::Error;
use crate::logging::DEFAULT_FILTER;
use crate::payload::Payload;
use crate::presence::Presence;
use crate::pubsub::{Adapter, PubSub, SubscriberId, Subscription};
use crate::stats::{Stats, StatsSnapshot};
use crate::transport::acceptor::{Acceptor, AcceptorStop};
use crate::transport::connect_pool::{ConnectJob, ConnectPool};
use crate::transport::mailbox::{Command, Mailbox};
use crate::transport::reactor::Reactor;
use crate::user_socket::UserSocket;
use bytes::Bytes;
use parking_lot::{Condvar, Mutex};
use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub(crate) use crate::transport::http::StaticResponse;

/// Endpoint-wide settings.
#[derive(Clone, Debug)]
pub(crate) struct EndpointConfig {
    pub(crate) reactors: usize,
    pub(crate) connect_workers: usize,
    pub(crate) channel_stack_size: usize,
    pub(crate) channel_inbox_limit: usize,
    pub(crate) max_channel_threads: usize,
    /// Whether `max_channel_threads` was set by the user (only then is clamping it worth a warning).
    pub(crate) max_channel_threads_set: bool,
    pub(crate) handshake_timeout: Duration,
    pub(crate) max_header_bytes: usize,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) filter_parameters: Arc<[String]>,
    pub(crate) registry_shards: usize,
    pub(crate) subscription_capacity: usize,
    pub(crate) presence_window: Duration,
    pub(crate) max_connections: usize,
    pub(crate) drain_batch_size: usize,
    pub(crate) drain_batch_interval: Duration,
}

/// The cores this process may run on (its CPU affinity and quota included).
fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Default for EndpointConfig {
    fn default() -> Self {
        let cores = available_cores();
        EndpointConfig {
            reactors: cores,
            connect_workers: cores.max(2),
            channel_stack_size: 128 * 1024,
            channel_inbox_limit: 10_000,
            max_channel_threads: 20_000,
            max_channel_threads_set: false,
            handshake_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            shutdown_timeout: Duration::from_secs(30),
            filter_parameters: DEFAULT_FILTER.iter().map(|w| w.to_string()).collect(),
            registry_shards: 64,
            subscription_capacity: 10_000,
            presence_window: Duration::from_millis(20),
            max_connections: 16_384,
            drain_batch_size: 10_000,
            drain_batch_interval: Duration::from_secs(2),
        }
    }
}

/// The channel threads this system lets one process have, with room left for
/// everything else: each thread takes a pid and four memory mappings.
fn os_thread_limit() -> Option<usize> {
    let read = |path: &str| std::fs::read_to_string(path).ok()?.trim().parse::<usize>().ok();
    let by_maps = read("/proc/sys/vm/max_map_count").map(|maps| maps.saturating_sub(4096) / 4);
    let by_pids = read("/proc/sys/kernel/pid_max").map(|pids| pids.saturating_sub(2048));
    let by_threads = read("/proc/sys/kernel/threads-max").map(|threads| threads / 2);
    [by_maps, by_pids, by_threads].into_iter().flatten().min()
}

/// A socket mounted at a path: `/socket` serves `/socket/websocket` (P1).
pub(crate) struct Mount {
    /// The mount path, as configured (for logs).
    pub(crate) path: String,
    /// The WebSocket path's segments; `:name` segments capture connect params.
    segments: Vec<String>,
    pub(crate) socket: Arc<UserSocket>,
}

impl Mount {
    fn new(path: &str, socket: UserSocket) -> Mount {
        let ws_path = format!("{}/websocket", path.trim_end_matches('/'));
        let segments = ws_path.split('/').map(str::to_owned).collect();
        Mount { path: path.to_owned(), segments, socket: Arc::new(socket) }
    }

    /// The path params if `path` is this mount's WebSocket path.
    pub(crate) fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        let parts: Vec<&str> = path.split('/').collect();
        if parts.len() != self.segments.len() {
            return None;
        }
        let mut params = Vec::new();
        for (segment, part) in self.segments.iter().zip(parts) {
            match segment.strip_prefix(':') {
                Some(name) if !part.is_empty() => params.push((name.to_owned(), crate::params::decode(part))),
                _ if segment == part => {}
                _ => return None,
            }
        }
        Some(params)
    }
}

/// What every thread of a running endpoint shares.
pub(crate) struct Shared {
    pub(crate) mounts: Vec<Arc<Mount>>,
    pub(crate) statics: HashMap<String, StaticResponse>,
    pub(crate) host: String,
    pub(crate) pubsub: PubSub,
    pub(crate) stats: Arc<Stats>,
    pub(crate) tracker: Arc<ThreadTracker>,
    pub(crate) presence: Arc<Presence>,
    pub(crate) config: EndpointConfig,
    pub(crate) connect_pool: ConnectPoolHandle,
    /// TCP connections held by the reactors, in any state (for the connection cap).
    pub(crate) tcp_connections: AtomicUsize,
}

/// The connect workers' queue, closed at shutdown.
pub(crate) struct ConnectPoolHandle(Mutex<Option<ConnectPool>>);

impl ConnectPoolHandle {
    pub(crate) fn submit(&self, job: ConnectJob) {
        if let Some(pool) = &*self.0.lock() {
            pool.submit(job);
        }
    }

    fn stop(&self) {
        if let Some(mut pool) = self.0.lock().take() {
            pool.stop();
        }
    }
}

/// Configures and starts an [`Endpoint`].
pub struct EndpointBuilder {
    bind: String,
    host: String,
    mounts: Vec<(String, UserSocket)>,
    statics: HashMap<String, StaticResponse>,
    config: EndpointConfig,
    adapter: Option<Arc<dyn Adapter>>,
}

impl EndpointBuilder {
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

    /// Mounts `socket` at `path`: clients connect to `<path>/websocket` (P1). The path
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

    /// Words whose keys are logged as `[FILTERED]`; default `password` and `token` (P86).
    pub fn filter_parameters<I: IntoIterator<Item = S>, S: Into<String>>(mut self, words: I) -> Self {
        self.config.filter_parameters = words.into_iter().map(Into::into).collect();
        self
    }

    /// Undelivered broadcasts one [`Subscription`] may hold; default 10 000.
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

    /// Forwards broadcasts to other nodes (see [`Adapter`]).
    pub fn adapter(mut self, adapter: impl Adapter) -> Self {
        self.adapter = Some(Arc::new(adapter));
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
        if let Some(limit) = os_thread_limit()
            && config.max_channel_threads > limit
        {
            if config.max_channel_threads_set {
                log::warn!(
                    "max_channel_threads {} is more than this system allows ({limit}: see vm.max_map_count, \
                     kernel.pid_max, kernel.threads-max); using {limit}",
                    config.max_channel_threads
                );
            }
            config.max_channel_threads = limit;
        }
        // A fan-out can be written by its publisher and every reactor at once, as far as
        // the process has cores for them.
        let writers = available_cores().min(config.reactors + 1);
        let pubsub =
            PubSub::new(config.registry_shards, writers, stats.clone(), self.adapter, config.subscription_capacity);
        let presence = Presence::start(pubsub.clone(), config.presence_window)?;
        let shared = Arc::new(Shared {
            mounts: self.mounts.into_iter().map(|(path, socket)| Arc::new(Mount::new(&path, socket))).collect(),
            statics: self.statics,
            host: self.host,
            pubsub,
            stats,
            tracker: Arc::new(ThreadTracker::default()),
            presence,
            tcp_connections: AtomicUsize::new(0),
            connect_pool: ConnectPoolHandle(Mutex::new(Some(ConnectPool::start(config.connect_workers)?))),
            config,
        });
        let mut threads = Vec::new();
        let mut mailboxes = Vec::new();
        for i in 0..shared.config.reactors {
            let reactor = Reactor::new(shared.clone())?;
            mailboxes.push(reactor.mailbox());
            threads.push(std::thread::Builder::new().name(format!("phx-reactor-{i}")).spawn(move || reactor.run())?);
        }
        let (acceptor, acceptor_stop) = Acceptor::new(listener, mailboxes.clone())?;
        let acceptor_thread = std::thread::Builder::new().name("phx-acceptor".into()).spawn(move || acceptor.run())?;
        log::info!("phx-channels endpoint listening on {local_addr}");
        Ok(Endpoint {
            running: Arc::new(Running {
                shared,
                local_addr,
                acceptor: Mutex::new(Some((acceptor_thread, acceptor_stop))),
                reactors: Mutex::new(threads),
                mailboxes: Mutex::new(mailboxes),
                stopped: Mutex::new(false),
                stopped_signal: Condvar::new(),
            }),
        })
    }
}

struct Running {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    acceptor: Mutex<Option<(JoinHandle<()>, AcceptorStop)>>,
    reactors: Mutex<Vec<JoinHandle<()>>>,
    /// Emptied at shutdown, so that no file descriptor outlives the server.
    mailboxes: Mutex<Vec<Arc<Mailbox>>>,
    stopped: Mutex<bool>,
    stopped_signal: Condvar,
}

impl Running {
    fn shutdown(&self) {
        let mut stopped = self.stopped.lock();
        if *stopped {
            return;
        }
        let deadline = Instant::now() + self.shared.config.shutdown_timeout;
        if let Some((acceptor, stop)) = self.acceptor.lock().take() {
            stop.stop();
            let _ = acceptor.join();
        }
        let mailboxes = std::mem::take(&mut *self.mailboxes.lock());
        self.drain(&mailboxes, deadline);
        for mailbox in &mailboxes {
            mailbox.command(Command::Stop);
        }
        let left = self.shared.tracker.wait_until_none(deadline);
        if left > 0 {
            log::error!("shutdown: {left} channel threads did not finish terminate in time; leaving them behind");
        }
        for reactor in self.reactors.lock().drain(..) {
            let _ = reactor.join();
        }
        self.shared.connect_pool.stop();
        self.shared.presence.stop();
        *stopped = true;
        self.stopped_signal.notify_all();
        log::info!("phx-channels endpoint on {} shut down", self.local_addr);
    }
}

impl Running {
    /// Closes open connections in batches until none is left or `deadline` passes.
    fn drain(&self, mailboxes: &[Arc<Mailbox>], deadline: Instant) {
        let config = &self.shared.config;
        let per_reactor = config.drain_batch_size.div_ceil(mailboxes.len());
        while self.shared.stats.connections().load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
            for mailbox in mailboxes {
                mailbox.command(Command::Drain(per_reactor));
            }
            let next = (Instant::now() + config.drain_batch_interval).min(deadline);
            while Instant::now() < next && self.shared.stats.connections().load(Ordering::Relaxed) > 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A running server. Cheap to clone; the server stops when [`shutdown`](Endpoint::shutdown)
/// is called or the last handle is dropped.
///
/// ```no_run
/// use phx_channels::{Endpoint, UserSocket};
/// # use phx_channels::{Channel, JoinResult, Payload, Socket};
/// # struct Room;
/// # impl Channel for Room {
/// #     fn join(&mut self, _: &str, _: &Payload, _: &mut Socket) -> JoinResult { Ok(Payload::empty()) }
/// # }
/// let endpoint = Endpoint::builder()
///     .bind("127.0.0.1:4000")
///     .socket("/socket", UserSocket::new().channel("room:*", |_| Room))
///     .start()?;
/// endpoint.broadcast("room:lobby", "new_msg", serde_json::json!({"body": "hi"}))?;
/// endpoint.shutdown();
/// # Ok::<(), phx_channels::Error>(())
/// ```
#[derive(Clone)]
pub struct Endpoint {
    running: Arc<Running>,
}

impl Endpoint {
    /// A builder with the defaults.
    pub fn builder() -> EndpointBuilder {
        EndpointBuilder {
            bind: "127.0.0.1:4000".into(),
            host: "localhost".into(),
            mounts: Vec::new(),
            statics: HashMap::new(),
            config: EndpointConfig::default(),
            adapter: None,
        }
    }

    /// The address the endpoint listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.running.local_addr
    }

    /// The broadcast API, to hand to other threads.
    pub fn pubsub(&self) -> &PubSub {
        &self.running.shared.pubsub
    }

    /// Broadcasts to every subscriber of `topic` (P83). See [`PubSub::broadcast`].
    pub fn broadcast(&self, topic: &str, event: &str, payload: impl Into<Payload>) -> Result<(), Error> {
        self.pubsub().broadcast(topic, event, payload)
    }

    /// Broadcasts to every subscriber but those of `from`. See [`PubSub::broadcast_from`].
    pub fn broadcast_from(
        &self,
        from: SubscriberId,
        topic: &str,
        event: &str,
        payload: impl Into<Payload>,
    ) -> Result<(), Error> {
        self.pubsub().broadcast_from(from, topic, event, payload)
    }

    /// Broadcasts on this node only. See [`PubSub::local_broadcast`].
    pub fn local_broadcast(&self, topic: &str, event: &str, payload: impl Into<Payload>) -> Result<(), Error> {
        self.pubsub().local_broadcast(topic, event, payload)
    }

    /// Subscribes the calling code to `topic`. See [`PubSub::subscribe`].
    pub fn subscribe(&self, topic: &str) -> Subscription {
        self.pubsub().subscribe(topic)
    }

    /// Ends a subscription. See [`PubSub::unsubscribe`].
    pub fn unsubscribe(&self, subscription: Subscription) {
        self.pubsub().unsubscribe(subscription)
    }

    /// Presence: who is on which topic.
    pub fn presence(&self) -> &Presence {
        &self.running.shared.presence
    }

    /// The endpoint's counters now.
    pub fn stats(&self) -> StatsSnapshot {
        self.running.shared.stats.snapshot()
    }

    /// Stops the server in order: no more connections are accepted; every channel
    /// terminates with `{shutdown, draining}`; every connection closes with 1012 so
    /// clients reconnect elsewhere (P81). Returns once every thread the endpoint
    /// started has ended, or the shutdown timeout has passed (a channel stuck in a
    /// callback is reported and left behind). Calling it again does nothing.
    pub fn shutdown(&self) {
        self.running.shutdown();
    }

    /// Blocks until the endpoint has been shut down (from another thread or handle).
    pub fn wait(&self) {
        let mut stopped = self.running.stopped.lock();
        while !*stopped {
            self.running.stopped_signal.wait(&mut stopped);
        }
    }
}
