//! Publishing to the other nodes: any thread hands a message to a bounded queue and
//! goes on (it never waits for Redis), and one thread per node sends what is queued,
//! many messages per round trip, on its own connection.
//!
//! While Redis is unreachable that thread keeps draining the queue: the broadcasts in
//! it are counted as lost (`cluster_broadcasts_lost`) rather than kept, so nothing
//! grows while Redis is away. Presence messages lost the same way are repaired by the
//! replication's state transfers.

use super::link::{Connector, POLL, Role, Shared};
use super::losses::Losses;
use super::queue::{QueueReceiver, QueueSender, queue};
use crate::message::Broadcast;
use crate::pubsub::{Adapter, AdapterError};
use crate::stats;
use crossbeam_channel::{RecvTimeoutError, Sender};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Most messages waiting to be published.
const QUEUE_ITEMS: usize = 10_000;
/// Most bytes waiting to be published.
const QUEUE_BYTES: usize = 64 << 20;
/// Most messages, and about the most bytes, sent in one round trip.
const BATCH_ITEMS: usize = 512;
const BATCH_BYTES: usize = 1 << 20;
/// How long a stopping node goes on publishing what is queued.
const FLUSH_AT_STOP: Duration = Duration::from_secs(2);

/// One message for the cluster channel.
pub(super) struct Outgoing {
    bytes: Vec<u8>,
    /// A broadcast (counted when sent or lost) rather than a presence message.
    broadcast: bool,
}

#[cfg(test)]
impl Outgoing {
    pub(super) fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// The publishing handle: cheap to clone, for any thread.
#[derive(Clone)]
pub(super) struct Publish {
    queue: QueueSender<Outgoing>,
    losses: Arc<Losses>,
}

impl Publish {
    /// A handle whose queue nobody sends to Redis: the test reads it.
    #[cfg(test)]
    pub(super) fn detached(losses: Arc<Losses>) -> (Publish, QueueReceiver<Outgoing>) {
        let (queue, receiver) = queue(QUEUE_ITEMS, QUEUE_BYTES);
        (Publish { queue, losses }, receiver)
    }

    /// Queues `bytes` for the cluster channel; never blocks. Returns whether they were
    /// queued (not when the queue is full).
    pub(super) fn send(&self, bytes: Vec<u8>, broadcast: bool) -> bool {
        let size = bytes.len();
        let queued = self.queue.try_send(Outgoing { bytes, broadcast }, size).is_ok();
        if !queued && broadcast {
            self.losses.lost(1, "the publish queue is full");
        }
        queued
    }
}

/// The endpoint's [`Adapter`] in a cluster: broadcasts go to the publish queue.
pub(super) struct RedisAdapter {
    pub(super) publish: Publish,
    pub(super) shared: Arc<Shared>,
}

impl Adapter for RedisAdapter {
    fn publish(&self, broadcast: &Broadcast) -> Result<(), AdapterError> {
        self.publish.send(self.shared.origin.broadcast("", broadcast), true);
        Ok(())
    }

    fn direct_broadcast(&self, node: &str, broadcast: &Broadcast) -> Result<(), AdapterError> {
        self.publish.send(self.shared.origin.broadcast(node, broadcast), true);
        Ok(())
    }
}

/// The publishing thread, and how to stop it.
pub(super) struct Publisher {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Publisher {
    /// Starts the thread; `attempted` hears once its first connection attempt is over.
    pub(super) fn start(
        shared: Arc<Shared>,
        client: redis::Client,
        losses: Arc<Losses>,
        attempted: Sender<()>,
    ) -> std::io::Result<(Publisher, Publish)> {
        let (sender, receiver) = queue(QUEUE_ITEMS, QUEUE_BYTES);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (stop, losses) = (stop.clone(), losses.clone());
            let connector = Connector::new(client, Role::Publisher, shared.clone());
            std::thread::Builder::new()
                .name("phx-cluster-pub".into())
                .spawn(move || run(&shared, connector, &receiver, &losses, &stop, attempted))?
        };
        Ok((Publisher { stop, thread }, Publish { queue: sender, losses }))
    }

    /// Sends what is queued (as far as Redis takes it), then ends the thread.
    pub(super) fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

fn run(
    shared: &Shared,
    mut connector: Connector,
    queue: &QueueReceiver<Outgoing>,
    losses: &Losses,
    stop: &AtomicBool,
    attempted: Sender<()>,
) {
    let mut con = connector.connect();
    let _ = attempted.send(());
    // Broadcasts lost since the connection went, for one line when it is back.
    let mut lost_while_down = 0;
    let mut batch = Vec::new();
    // Once told to stop, what is queued still goes out, for at most `FLUSH_AT_STOP`.
    let mut stop_by = None;
    loop {
        if stop_by.is_none() && stop.load(Ordering::Relaxed) {
            stop_by = Some(Instant::now() + FLUSH_AT_STOP);
        }
        match queue.recv_timeout(POLL) {
            Ok(first) => batch.push(first),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let mut bytes = batch.first().map_or(0, |m: &Outgoing| m.bytes.len());
        while batch.len() < BATCH_ITEMS
            && bytes < BATCH_BYTES
            && let Some(next) = queue.try_recv()
        {
            bytes += next.bytes.len();
            batch.push(next);
        }
        if con.is_none() {
            con = connector.connect();
            if con.is_some() && lost_while_down > 0 {
                log::warn!("cluster: {lost_while_down} cross-node broadcasts were lost while Redis was unreachable");
                lost_while_down = 0;
            }
        }
        let broadcasts = batch.iter().filter(|m| m.broadcast).count() as u64;
        match con.as_mut() {
            _ if batch.is_empty() => {}
            Some(c) => match publish(c, &shared.channel, &batch) {
                Ok(()) => stats::add(shared.stats.cluster_broadcasts_sent(), broadcasts),
                Err(err) => {
                    connector.lost(&err);
                    con = None;
                    losses.lost(broadcasts, "the Redis connection was lost");
                    lost_while_down += broadcasts;
                }
            },
            None => {
                losses.lost(broadcasts, "Redis is unreachable");
                lost_while_down += broadcasts;
            }
        }
        let idle = batch.is_empty();
        batch.clear();
        if stop_by.is_some_and(|by| idle || Instant::now() >= by) {
            return;
        }
    }
}

/// Publishes every message of `batch` in one round trip.
fn publish(con: &mut redis::Connection, channel: &str, batch: &[Outgoing]) -> redis::RedisResult<()> {
    let mut pipe = redis::pipe();
    for message in batch {
        pipe.cmd("PUBLISH").arg(channel).arg(&message.bytes[..]).ignore();
    }
    pipe.exec(con)
}
