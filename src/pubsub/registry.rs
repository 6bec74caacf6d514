//! The local registry: topic -> subscribers, in shards behind `parking_lot` locks so that
//! broadcasts on different topics rarely touch the same lock.
//!
//! Subscribing and unsubscribing are O(1) amortised: each topic keeps its subscribers
//! in a vector plus an index from subscription id to position, and removal swaps the
//! last entry into the hole.
//!
//! A fan-out that its topic's [`Pacer`] lets the publisher write itself collects the
//! subscribers' queues under the shard's read lock and writes after releasing it, so
//! joins and leaves in the shard never wait for socket writes.

use crate::channel::Info;
use crate::channel_thread::ChannelMsg;
use crate::inbox::Inbox;
use crate::message::Broadcast;
use crate::serializer::{Frame, Serializer};
use crate::stats::{self, Stats};
use crate::transport::outbound::{Delivery, OutItem, Outbound, Pushed, Refused};
use crossbeam_channel::Sender;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Instant;

use super::pacer::Pacer;

/// How many direct writes a publisher makes between looks at its own mailbox: once it
/// has messages waiting, it hands the rest of the fan-out to the reactors.
const MAILBOX_CHECK_EVERY: usize = 64;

/// A direct fan-out to more subscribers than this is shared with the reactors when the
/// process has more than one core: they write their part in parallel.
const SHARE_ABOVE: usize = 256;

/// One subscription's id, unique for the registry's lifetime. A channel's subscription
/// to its own topic uses the channel's instance id, which is also its owner id.
pub(crate) type SubscriptionId = u64;

/// Who receives a topic's broadcasts, and how.
pub(crate) enum Subscriber {
    /// A joined channel on its own topic: the fastlane, unless it intercepts the event.
    Channel(ChannelSubscriber),
    /// A channel's extra topic: broadcasts arrive in `handle_info` (P76).
    Info { owner: u64, inbox: Inbox },
    /// Code that is not a channel, holding a receiver (P83).
    /// The queue is unbounded in type (a bounded crossbeam channel would allocate its
    /// whole capacity up front) and bounded by `capacity` here.
    Plain { owner: u64, sender: Sender<Broadcast>, capacity: usize },
    /// A connection subscribed to its socket id: a `disconnect` closes it (P22).
    Connection(Arc<Outbound>),
}

/// The fastlane data of a joined channel (PROTOCOL.md 5.8).
pub(crate) struct ChannelSubscriber {
    pub(crate) owner: u64,
    pub(crate) outbound: Arc<Outbound>,
    pub(crate) serializer: Serializer,
    pub(crate) intercepts: Arc<[String]>,
    pub(crate) inbox: Inbox,
}

#[derive(Default)]
struct TopicSubscribers {
    entries: Vec<(SubscriptionId, Subscriber)>,
    position: HashMap<SubscriptionId, usize>,
    /// Shared so that a direct fan-out can report to it after releasing the shard.
    pacer: Arc<Pacer>,
}

pub(crate) struct Registry {
    shards: Box<[RwLock<HashMap<String, TopicSubscribers>>]>,
    hasher: RandomState,
    /// The pacers' clock.
    epoch: Instant,
    /// Threads that can write one fan-out in parallel: the publisher and the reactors,
    /// as far as the process has cores for them.
    writers: usize,
}

impl Registry {
    /// `writers`: how many threads can write one fan-out in parallel (at least 1).
    pub(crate) fn new(shards: usize, writers: usize) -> Self {
        let shards = (0..shards.max(1)).map(|_| RwLock::new(HashMap::new())).collect();
        Registry { shards, hasher: RandomState::new(), epoch: Instant::now(), writers: writers.max(1) }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn shard(&self, topic: &str) -> &RwLock<HashMap<String, TopicSubscribers>> {
        &self.shards[self.hasher.hash_one(topic) as usize % self.shards.len()]
    }

    /// Adds `subscriber` to `topic`, then runs `then` while the topic's shard is still
    /// locked: a join reply queued there goes out before any broadcast the new
    /// subscriber receives (PROTOCOL.md 5.12, rule 1).
    pub(crate) fn subscribe_then(&self, id: SubscriptionId, topic: &str, subscriber: Subscriber, then: impl FnOnce()) {
        let mut shard = self.shard(topic).write();
        let subscribers = shard.entry(topic.to_owned()).or_default();
        subscribers.position.insert(id, subscribers.entries.len());
        subscribers.entries.push((id, subscriber));
        then();
    }

    pub(crate) fn subscribe(&self, id: SubscriptionId, topic: &str, subscriber: Subscriber) {
        self.subscribe_then(id, topic, subscriber, || {});
    }

    /// Removes one subscription; unknown ids are ignored.
    pub(crate) fn unsubscribe(&self, id: SubscriptionId, topic: &str) {
        let mut shard = self.shard(topic).write();
        let Some(subscribers) = shard.get_mut(topic) else { return };
        let Some(at) = subscribers.position.remove(&id) else { return };
        subscribers.entries.swap_remove(at);
        if let Some((moved, _)) = subscribers.entries.get(at) {
            subscribers.position.insert(*moved, at);
        }
        if subscribers.entries.is_empty() {
            shard.remove(topic);
        }
    }

    /// Number of subscriptions on `topic`.
    pub(crate) fn count(&self, topic: &str) -> usize {
        self.shard(topic).read().get(topic).map_or(0, |s| s.entries.len())
    }

    /// Delivers `broadcast` to every subscriber of its topic except those owned by
    /// `from`. Fastlane frames are encoded at most once per wire format (P74).
    ///
    /// `publisher` is the publishing channel's mailbox, if a channel publishes: a
    /// direct fan-out stops writing once the channel has messages waiting.
    pub(crate) fn dispatch(
        &self,
        broadcast: &Arc<Broadcast>,
        from: Option<u64>,
        publisher: Option<&Inbox>,
        stats: &Stats,
    ) {
        stats::incr(stats.broadcasts());
        let started = self.now();
        let shard = self.shard(&broadcast.topic).read();
        let Some(subscribers) = shard.get(&broadcast.topic) else { return };
        let pacer = subscribers.pacer.clone();
        let direct = pacer.try_direct(started);
        let mut frames: [Option<Option<Frame>>; 2] = [None, None];
        let mut to_write: Vec<(Arc<Outbound>, Frame)> = Vec::new();
        let mut fastlane = 0;
        for (_, subscriber) in &subscribers.entries {
            match subscriber {
                Subscriber::Channel(channel) => {
                    if from == Some(channel.owner) {
                        continue;
                    }
                    if channel.intercepts.iter().any(|event| *event == broadcast.event) {
                        if channel.inbox.try_send(ChannelMsg::Out(broadcast.clone())).is_err() {
                            stats::incr(stats.broadcasts_dropped());
                        }
                        continue;
                    }
                    let slot = &mut frames[channel.serializer.index()];
                    let Some(frame) = slot.get_or_insert_with(|| encode(channel.serializer, broadcast, stats)) else {
                        continue;
                    };
                    if direct {
                        to_write.push((channel.outbound.clone(), frame.clone()));
                    } else {
                        fastlane += deliver(&channel.outbound, frame.clone(), Delivery::Queue, stats);
                    }
                }
                Subscriber::Info { owner, inbox } => {
                    if from != Some(*owner)
                        && inbox.try_send(ChannelMsg::Info(Info::Broadcast(Broadcast::clone(broadcast)))).is_err()
                    {
                        stats::incr(stats.broadcasts_dropped());
                    }
                }
                Subscriber::Plain { owner, sender, capacity } => {
                    if from == Some(*owner) {
                        continue;
                    }
                    if sender.len() >= *capacity {
                        stats::incr(stats.broadcasts_dropped());
                    } else {
                        let _ = sender.send(Broadcast::clone(broadcast));
                    }
                }
                Subscriber::Connection(outbound) => {
                    if broadcast.event == "disconnect" {
                        let _ = outbound.push_control(OutItem::Disconnect);
                    }
                }
            }
        }
        drop(shard);
        if direct {
            // The reactors' share is queued first, so that they write while we do.
            let planned = match to_write.len() {
                total if total > SHARE_ABOVE => total.div_ceil(self.writers),
                total => total,
            };
            for (outbound, frame) in to_write.drain(planned..) {
                fastlane += deliver(&outbound, frame, Delivery::Queue, stats);
            }
            let mut written = planned;
            for (i, (outbound, frame)) in to_write.into_iter().enumerate() {
                if written == planned
                    && i % MAILBOX_CHECK_EVERY == MAILBOX_CHECK_EVERY - 1
                    && publisher.is_some_and(Inbox::has_mail)
                {
                    written = i;
                }
                let delivery = if i < written { Delivery::WriteIfIdle } else { Delivery::Queue };
                fastlane += deliver(&outbound, frame, delivery, stats);
            }
            pacer.end_direct(started, self.now(), written, planned);
        } else {
            pacer.end_queued(self.now());
        }
        stats::add(stats.fastlane_deliveries(), fastlane);
    }
}

/// Hands a fastlane frame to a connection; returns how many deliveries it made (0 or 1).
fn deliver(outbound: &Outbound, frame: Frame, delivery: Delivery, stats: &Stats) -> u64 {
    match outbound.push_frame(None, frame, delivery) {
        Ok(Pushed::Written) => {
            stats::incr(stats.fastlane_direct());
            1
        }
        Ok(Pushed::Queued) => 1,
        Err(Refused::Full) => {
            stats::incr(stats.broadcasts_dropped());
            0
        }
        Err(Refused::Closed) => 0,
    }
}

/// Encodes a fastlane frame; a payload this format cannot carry is logged and skipped.
fn encode(serializer: Serializer, broadcast: &Broadcast, stats: &Stats) -> Option<Frame> {
    stats::incr(stats.broadcast_encodes());
    match serializer.encode_broadcast(broadcast) {
        Ok(frame) => Some(frame),
        Err(err) => {
            log::warn!(
                "broadcast {:?} on {:?} skipped for {serializer:?} subscribers: {err}",
                broadcast.event,
                broadcast.topic
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::unbounded;

    fn plain(owner: u64) -> (Subscriber, crossbeam_channel::Receiver<Broadcast>) {
        let (sender, receiver) = unbounded();
        (Subscriber::Plain { owner, sender, capacity: 100 }, receiver)
    }

    #[test]
    fn unsubscribe_removes_exactly_one_subscription() {
        let registry = Registry::new(4, 1);
        let mut receivers = Vec::new();
        for id in 0..10 {
            let (sub, rx) = plain(id);
            registry.subscribe(id, "t", sub);
            receivers.push(rx);
        }
        registry.unsubscribe(3, "t");
        registry.unsubscribe(0, "t");
        registry.unsubscribe(99, "t");
        assert_eq!(registry.count("t"), 8);
        let stats = Stats::default();
        registry.dispatch(&Arc::new(Broadcast::new("t", "e", serde_json::json!({}))), Some(5), None, &stats);
        let got: Vec<usize> = receivers.iter().map(|rx| rx.len()).collect();
        assert_eq!(got, [0, 1, 1, 0, 1, 0, 1, 1, 1, 1]);
    }

    #[test]
    fn a_full_plain_subscription_drops_and_counts_the_overflow() {
        let registry = Registry::new(1, 1);
        let (sub, rx) = plain(1);
        registry.subscribe(1, "t", sub);
        let stats = Stats::default();
        for _ in 0..150 {
            registry.dispatch(&Arc::new(Broadcast::new("t", "e", serde_json::json!({}))), None, None, &stats);
        }
        assert_eq!(rx.len(), 100);
        assert_eq!(stats.snapshot().broadcasts_dropped, 50);
    }

    #[test]
    fn last_unsubscribe_drops_the_topic() {
        let registry = Registry::new(1, 1);
        let (sub, _rx) = plain(1);
        registry.subscribe(1, "t", sub);
        registry.unsubscribe(1, "t");
        assert_eq!(registry.count("t"), 0);
        assert!(registry.shards[0].read().is_empty());
    }
}
