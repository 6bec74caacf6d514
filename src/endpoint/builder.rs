//! The endpoint's builder: every setting, with its default, and `start`.

use super::Endpoint;
use super::config::{EndpointConfig, available_cores};
use super::running::Running;
use crate::channel_runtime::{ChannelRuntime, ChannelSettings, ThreadTracker};
use crate::error::Error;
use crate::presence::Presence;
use crate::protocol::connect_pool::ConnectPool;
use crate::protocol::routes::{Mount, Routes, StaticResponse};
use crate::protocol::sockets::Sockets;
use crate::protocol::user_socket::UserSocket;
use crate::pubsub::{Adapter, PubSub};
use crate::stats::Stats;
use crate::transport::acceptor::Acceptor;
use crate::transport::reactor::{Reactor, ReactorContext};
use crate::transport::settings::TransportSettings;
#[cfg(feature = "tls")]
use crate::transport::tls_config::TlsConfig;
use bytes::Bytes;
use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

/// Configures and starts an [`Endpoint`]. Get one with [`Endpoint::builder`].
pub struct EndpointBuilder {
    /// None: no listener (connections come through `Endpoint::adopt` only).
    bind: Option<String>,
    host: String,
    mounts: Vec<(String, UserSocket)>,
    statics: HashMap<String, StaticResponse>,
    config: EndpointConfig,
    adapter: Option<Arc<dyn Adapter>>,
    #[cfg(feature = "tls")]
    tls: Option<TlsConfig>,
}

impl EndpointBuilder {
    pub(super) fn new() -> Self {
        EndpointBuilder {
            bind: Some("127.0.0.1:4000".into()),
            host: "localhost".into(),
            mounts: Vec::new(),
            statics: HashMap::new(),
            config: EndpointConfig::default(),
            adapter: None,
            #[cfg(feature = "tls")]
            tls: None,
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

    /// Forwards broadcasts to other nodes (see [`Adapter`]).
    pub fn adapter(mut self, adapter: impl Adapter) -> Self {
        self.adapter = Some(Arc::new(adapter));
        self
    }

    /// Serves TLS only (`wss://`, `https://`) with this certificate and key (feature
    /// `tls`). Plain HTTP on the port is refused with a `400` that says so.
    ///
    /// The TLS handshake runs on the reactors, within the
    /// [handshake timeout](EndpointBuilder::handshake_timeout), and the bytes a client may
    /// send before it completes are bounded by
    /// [`max_header_bytes`](EndpointBuilder::max_header_bytes). A TLS connection's frames
    /// are all written by its reactor: the shortcut that lets a channel thread write its
    /// reply to an idle plain socket itself does not apply, so each batch of frames
    /// costs a reactor wake-up (besides the encryption).
    ///
    /// ```no_run
    /// # fn demo(builder: phx_channels::EndpointBuilder) -> Result<(), Box<dyn std::error::Error>> {
    /// let endpoint = builder.tls(phx_channels::TlsConfig::from_pem_files("cert.pem", "key.pem")?).start()?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: TlsConfig) -> Self {
        self.tls = Some(config);
        self
    }

    /// Binds the listener (unless [`no_listener`](EndpointBuilder::no_listener)) and
    /// starts the endpoint's threads; the server runs in the background until
    /// [`Endpoint::shutdown`].
    pub fn start(self) -> Result<Endpoint, Error> {
        for (path, socket) in &self.mounts {
            if let Some(err) = socket.errors.first() {
                return Err(Error::Config(format!("socket {path}: {err}")));
            }
        }
        let listener = match &self.bind {
            Some(bind) => {
                let addr =
                    bind.to_socket_addrs()?.next().ok_or_else(|| Error::Config(format!("cannot resolve {bind:?}")))?;
                Some(mio::net::TcpListener::bind(addr)?)
            }
            None => None,
        };
        let local_addr = match &listener {
            Some(listener) => listener.local_addr()?,
            None => SocketAddr::from(([0, 0, 0, 0], 0)),
        };
        let stats = Arc::new(Stats::default());
        let mut config = self.config;
        config.clamp_to_os();
        // A fan-out can be written by its publisher and every reactor at once, as far as
        // the process has cores for them.
        let writers = available_cores().min(config.reactors + 1);
        let pubsub =
            PubSub::new(config.registry_shards, writers, stats.clone(), self.adapter, config.subscription_capacity);
        let presence = Presence::start(pubsub.clone(), config.presence_window)?;
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
                #[cfg(feature = "tls")]
                tls: self.tls.as_ref().map(TlsConfig::server),
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
        let acceptor = match listener {
            Some(listener) => {
                let (acceptor, stop) = Acceptor::new(listener, mailboxes.clone())?;
                let thread = std::thread::Builder::new().name("phx-acceptor".into()).spawn(move || acceptor.run())?;
                log::info!("phx-channels endpoint listening on {local_addr}");
                Some((thread, stop))
            }
            None => {
                log::info!("phx-channels endpoint started without a listener");
                None
            }
        };
        Ok(Endpoint::new(Running::new(sockets, config, local_addr, acceptor, threads, mailboxes)))
    }
}
