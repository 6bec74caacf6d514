//! Scale-out over Redis (feature `redis`): broadcasts, socket-id disconnects and
//! presence reach every node of the cluster, as phoenix_pubsub_redis and
//! Phoenix.Tracker do it for Phoenix.
//!
//! Every node publishes to and subscribes to one Redis channel (ARCHITECTURE.md says
//! why one, and gives the format of its messages, `wire.rs`). A node runs four threads,
//! none of them on a channel's path:
//!
//! - `publisher.rs`: takes messages from a bounded queue and publishes them; any thread
//!   queues without waiting (the endpoint's [`Adapter`](crate::Adapter) is the queue).
//! - `subscriber.rs`: reads the channel and sorts what arrives, fast (a broadcast on
//!   a topic without a subscriber here goes no further).
//! - `delivery.rs`: fans the other nodes' broadcasts out on this node.
//! - `replication.rs`: presence: sends this node's changes and heartbeats, applies the
//!   others', takes silent nodes for gone.
//!
//! `long_poll.rs` carries long-poll requests to the node that holds their session, and
//! the answers back.
//!
//! `link.rs` connects (and reconnects with backoff); `queue.rs` is the bounded queue;
//! `losses.rs` counts and logs lost broadcasts.

mod delivery;
mod link;
mod long_poll;
mod losses;
mod publisher;
mod queue;
mod replication;
mod subscriber;
mod wire;

use crate::error::Error;
use crate::presence::Presence;
use crate::pubsub::{Adapter, PubSub};
use crate::stats::Stats;
use crate::transport::reactor::{ReactorContext, RemoteSessions};
use crossbeam_channel::Receiver;
use link::Shared;
use losses::Losses;
use publisher::{Publish, Publisher, RedisAdapter};
use replication::Timing;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wire::Origin;

/// The Redis channel of a cluster unless the endpoint names another.
pub(crate) const DEFAULT_CHANNEL: &str = "phx:cluster";
/// How long a node may be silent before the others take it for gone, by default
/// (Phoenix.Tracker's default too).
pub(crate) const DEFAULT_DOWN_AFTER: Duration = Duration::from_secs(30);

/// How long `start` waits for the first connections to Redis.
const START_WAIT: Duration = Duration::from_secs(5);
/// Most broadcasts, and bytes, received and waiting to be delivered here.
const DELIVERY_ITEMS: usize = 100_000;
const DELIVERY_BYTES: usize = 64 << 20;
/// Most presence messages, and bytes, received and waiting to be applied here.
const REPLICATION_ITEMS: usize = 10_000;
const REPLICATION_BYTES: usize = 64 << 20;

/// A cluster's settings.
#[derive(Clone, Debug)]
pub(crate) struct ClusterConfig {
    /// `redis://host:port/db`, as the `redis` crate reads it.
    pub(crate) url: String,
    pub(crate) channel: String,
    pub(crate) down_after: Duration,
}

/// A cluster whose publishing side runs (the endpoint's pubsub needs it), not yet
/// receiving.
pub(crate) struct Joining {
    shared: Arc<Shared>,
    client: redis::Client,
    config: ClusterConfig,
    publisher: Publisher,
    publish: Publish,
    losses: Arc<Losses>,
    attempted: Receiver<()>,
}

/// A running cluster node.
pub(crate) struct Cluster {
    shared: Arc<Shared>,
    publish: Publish,
    publisher: Publisher,
    /// The endpoint's long-poll sessions, for the subscriber to hand other nodes'
    /// requests to; set once the reactors exist.
    sessions: Arc<OnceLock<RemoteSessions>>,
    /// Replication first: it sends its last changes before the publisher stops.
    threads: Vec<JoinHandle<()>>,
}

/// A number that tells this run of a node from its earlier ones.
fn incarnation() -> u64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    RandomState::new().hash_one((nanos, std::process::id()))
}

impl Joining {
    /// Starts publishing for node `node`; Redis may be unreachable (the publisher keeps trying).
    pub(crate) fn new(config: ClusterConfig, node: &str, stats: Arc<Stats>) -> Result<Joining, Error> {
        if config.down_after < Duration::from_secs(1) {
            return Err(Error::Config(format!("node_down_after must be at least 1 s, not {:?}", config.down_after)));
        }
        let client = redis::Client::open(config.url.as_str())
            .map_err(|err| Error::Config(format!("Redis URL {:?}: {err}", config.url)))?;
        let origin = Origin { node: node.to_owned(), incarnation: incarnation() };
        let shared = Arc::new(Shared::new(origin, config.channel.clone(), stats.clone()));
        let losses = Arc::new(Losses::new(stats));
        let (attempted_tx, attempted) = crossbeam_channel::bounded(2);
        let (publisher, publish) = Publisher::start(shared.clone(), client.clone(), losses.clone(), attempted_tx)?;
        Ok(Joining { shared, client, config, publisher, publish, losses, attempted })
    }

    /// The endpoint's adapter: broadcasts for the other nodes go to the publisher.
    pub(crate) fn adapter(&self) -> Arc<dyn Adapter> {
        Arc::new(RedisAdapter { publish: self.publish.clone(), shared: self.shared.clone() })
    }

    /// Starts receiving into `pubsub` and replicating `presence`. Returns once this
    /// node is subscribed, or has failed to (then it keeps trying in the background),
    /// or `START_WAIT` has passed.
    pub(crate) fn start(self, pubsub: PubSub, presence: Arc<Presence>) -> Result<Cluster, Error> {
        let Joining { shared, client, config, publisher, publish, losses, attempted } = self;
        let timing = Timing::new(config.down_after);
        let (replication_tx, replication_rx) = queue::queue(REPLICATION_ITEMS, REPLICATION_BYTES);
        let (delivery_tx, delivery_rx) = queue::queue(DELIVERY_ITEMS, DELIVERY_BYTES);
        let mut threads = vec![replication::start(shared.clone(), presence, publish.clone(), replication_rx, timing)?];
        threads.push(delivery::start(shared.clone(), pubsub.clone(), delivery_rx)?);
        let sessions = Arc::new(OnceLock::new());
        let routes = subscriber::Routes {
            pubsub,
            delivery: delivery_tx,
            replication: replication_tx,
            losses,
            sessions: sessions.clone(),
        };
        // The node hears its own heartbeat every period: three missed mean a dead link.
        let silence = (timing.heartbeat * 3).max(Duration::from_secs(2));
        let (sub_attempted, sub_attempted_rx) = crossbeam_channel::bounded(1);
        threads.push(subscriber::start(shared.clone(), client, routes, silence, sub_attempted)?);
        let deadline = Instant::now() + START_WAIT;
        let _ = sub_attempted_rx.recv_deadline(deadline);
        let _ = attempted.recv_deadline(deadline);
        if shared.is_up(link::Role::Subscriber) {
            log::info!("cluster: node {:?} subscribed to {}", shared.origin.node, shared.channel);
        }
        Ok(Cluster { shared, publish, publisher, sessions, threads })
    }
}

impl Cluster {
    /// Makes the endpoint's long-poll sessions (its reactors share `context`) reachable
    /// from every node, and the other nodes' from here.
    pub(crate) fn serve_long_poll(&self, context: &Arc<ReactorContext>) {
        let forwarder = long_poll::Forwarder { shared: self.shared.clone(), publish: self.publish.clone() };
        let _ = self.sessions.set(RemoteSessions::link(context, Arc::new(forwarder)));
    }

    /// Stops receiving, sends the last presence changes, then stops publishing.
    pub(crate) fn stop(self) {
        self.shared.stop();
        for thread in self.threads {
            let _ = thread.join();
        }
        self.publisher.stop();
    }
}
