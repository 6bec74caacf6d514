//! The node's two connections to Redis (one publishes, one is subscribed): what they
//! share, and connecting again with backoff after a failure.

use super::wire::Origin;
use crate::stats::{self, Stats};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The longest a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest one write (and, on the publishing connection, one reply) may take.
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// The first wait after a failed attempt; it doubles up to `MAX_BACKOFF`.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// A connection that lived this long before it broke starts the backoff again from
/// `MIN_BACKOFF`; one that breaks sooner (say, a server that accepts and then refuses
/// to subscribe) waits longer each time.
const STABLE: Duration = Duration::from_secs(10);
/// How often a thread waiting for something checks whether the node is stopping.
pub(super) const POLL: Duration = Duration::from_millis(100);
/// Most other nodes remembered; past that, those taken for gone are forgotten (a node
/// that restarts under a new default name leaves its old name behind).
const MAX_KNOWN_NODES: usize = 10_000;

/// What the cluster's threads share.
pub(super) struct Shared {
    pub(super) origin: Origin,
    /// The Redis channel every node of the cluster publishes to and subscribes to.
    pub(super) channel: String,
    pub(super) stats: Arc<Stats>,
    stop: AtomicBool,
    /// Whether each connection is up, by `Role`.
    up: [AtomicBool; 2],
    /// The other nodes heard from: whether each is up or was taken for gone (the
    /// replication thread knows).
    nodes: RwLock<HashMap<String, bool>>,
}

/// Which connection.
#[derive(Clone, Copy, Debug)]
pub(super) enum Role {
    Publisher = 0,
    Subscriber = 1,
}

impl Shared {
    pub(super) fn new(origin: Origin, channel: String, stats: Arc<Stats>) -> Self {
        Shared {
            origin,
            channel,
            stats,
            stop: AtomicBool::new(false),
            up: Default::default(),
            nodes: RwLock::default(),
        }
    }

    /// Records whether node `node` is up (heard from) or gone.
    pub(super) fn set_live(&self, node: &str, live: bool) {
        let mut nodes = self.nodes.write();
        nodes.insert(node.to_owned(), live);
        if nodes.len() > MAX_KNOWN_NODES {
            nodes.retain(|_, live| *live);
        }
    }

    /// Whether node `node` was taken for gone (and has not been heard from since). A
    /// node never heard from is not: it may have started a moment ago.
    pub(super) fn is_gone(&self, node: &str) -> bool {
        self.nodes.read().get(node) == Some(&false)
    }

    pub(super) fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    pub(super) fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Whether the connection `role` is up now.
    pub(super) fn is_up(&self, role: Role) -> bool {
        self.up[role as usize].load(Ordering::Relaxed)
    }

    fn set_up(&self, role: Role, up: bool) {
        self.up[role as usize].store(up, Ordering::Relaxed);
        let both = self.up.iter().all(|u| u.load(Ordering::Relaxed));
        stats::set(self.stats.redis_connected(), u64::from(both));
    }
}

/// Opens one of the node's connections, again and again with backoff while Redis is
/// unreachable.
pub(super) struct Connector {
    client: redis::Client,
    role: Role,
    shared: Arc<Shared>,
    backoff: Duration,
    next_attempt: Instant,
    attempts: u64,
    /// When the connection was lost or first failed, until it is back.
    down_since: Option<Instant>,
    /// When the connection last came up.
    up_since: Option<Instant>,
}

impl Connector {
    pub(super) fn new(client: redis::Client, role: Role, shared: Arc<Shared>) -> Self {
        Connector {
            client,
            role,
            shared,
            backoff: MIN_BACKOFF,
            next_attempt: Instant::now(),
            attempts: 0,
            down_since: None,
            up_since: None,
        }
    }

    fn address(&self) -> String {
        self.client.get_connection_info().addr().to_string()
    }

    /// Connects, if an attempt is due: `None` when it is not or the attempt failed.
    pub(super) fn connect(&mut self) -> Option<redis::Connection> {
        if Instant::now() < self.next_attempt {
            return None;
        }
        if self.attempts > 0 {
            stats::incr(self.shared.stats.redis_reconnects());
        }
        self.attempts += 1;
        let connected = self.client.get_connection_with_timeout(CONNECT_TIMEOUT).and_then(|con| {
            con.set_write_timeout(Some(IO_TIMEOUT))?;
            con.set_read_timeout(Some(IO_TIMEOUT))?;
            Ok(con)
        });
        match connected {
            Ok(con) => {
                if let Some(since) = self.down_since.take() {
                    log::info!(
                        "cluster: {:?} connection to Redis at {} is back after {:.1?}",
                        self.role,
                        self.address(),
                        since.elapsed()
                    );
                }
                self.up_since = Some(Instant::now());
                self.shared.set_up(self.role, true);
                Some(con)
            }
            Err(err) => {
                if self.down_since.is_none() {
                    self.down_since = Some(Instant::now());
                    log::error!(
                        "cluster: cannot connect to Redis at {} ({:?}): {err}; this node serves its own \
                         clients only and keeps trying",
                        self.address(),
                        self.role
                    );
                } else {
                    log::debug!("cluster: Redis at {} still unreachable: {err}", self.address());
                }
                self.wait_longer();
                None
            }
        }
    }

    fn wait_longer(&mut self) {
        self.next_attempt = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    /// Records that the connection broke; the next attempt is due after the backoff.
    pub(super) fn lost(&mut self, why: &dyn std::fmt::Display) {
        log::error!("cluster: lost the {:?} connection to Redis at {}: {why}; reconnecting", self.role, self.address());
        self.shared.set_up(self.role, false);
        self.down_since = Some(Instant::now());
        if self.up_since.take().is_some_and(|at| at.elapsed() >= STABLE) {
            self.backoff = MIN_BACKOFF;
        }
        self.wait_longer();
    }

    /// Sleeps until the next attempt is due (or the node stops).
    pub(super) fn pause(&self) {
        let left = self.next_attempt.saturating_duration_since(Instant::now());
        std::thread::sleep(left.min(POLL));
    }
}
