//! The local registry: topic -> subscribers, in shards behind `parking_lot` locks so that
//! broadcasts on different topics rarely touch the same lock.
//!
//! Subscribing and unsubscribing are O(1) amortised: each topic keeps its subscribers
//! in a vector plus an index from subscription id to position, and removal swaps the
//! last entry into the hole.
//!
//! A broadcast is dispatched in two steps. Under the shard's read lock it is handed to
//! every subscriber that takes it on a thread of its own (intercepting channels, extra
//! topics, plain subscriptions, connections), and the fastlane's connections are
//! collected with at most one frame per wire format. After the lock is released the
//! fastlane frames are written or queued (`fanout.rs`), so joins and leaves in the
//! shard never wait for socket writes.

use super::fanout::FanOut;
use super::pacer::Pacer;
use super::subscriber::Subscriber;
use crate::inbox::{ChannelMsg, Inbox};
use crate::info::Info;
use crate::intercepted::Intercepted;
use crate::message::Broadcast;
use crate::serializer::{Frame, Serializer};
use crate::stats::{self, Stats};
use crate::subscriber_id::SubscriberId;
use crate::transport::outbound::OutItem;
use crate::transport::permessage_deflate::PerMessageDeflate;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Instant;

/// One subscription's key in its topic, unique for the registry's lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct SubscriptionId(pub(super) u64);

#[derive(Default)]
struct TopicSubscribers {
    entries: Vec<(SubscriptionId, Subscriber)>,
    position: HashMap<SubscriptionId, usize>,
    /// Shared so that a direct fan-out can report to it after releasing the shard.
    pacer: Arc<Pacer>,
}

pub(super) struct Registry {
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
    pub(super) fn new(shards: usize, writers: usize) -> Self {
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
    /// subscriber receives.
    pub(super) fn subscribe_then(&self, id: SubscriptionId, topic: &str, subscriber: Subscriber, then: impl FnOnce()) {
        let mut shard = self.shard(topic).write();
        let subscribers = shard.entry(topic.to_owned()).or_default();
        subscribers.position.insert(id, subscribers.entries.len());
        subscribers.entries.push((id, subscriber));
        then();
    }

    /// Removes one subscription; unknown ids are ignored.
    pub(super) fn unsubscribe(&self, id: SubscriptionId, topic: &str) {
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

    /// The channels joined to `topic`: each one's id and mailbox, read under the
    /// shard's read lock.
    pub(super) fn channels(&self, topic: &str) -> Vec<(SubscriberId, Inbox)> {
        let shard = self.shard(topic).read();
        let Some(subscribers) = shard.get(topic) else { return Vec::new() };
        subscribers
            .entries
            .iter()
            .filter_map(|(_, subscriber)| match subscriber {
                Subscriber::Channel(channel) => Some((channel.owner, channel.inbox.clone())),
                _ => None,
            })
            .collect()
    }

    /// Removes every [`Subscription`](crate::Subscription)'s sender, so that each one
    /// reports the shutdown once it has handed out what was queued for it.
    pub(super) fn close_plain(&self) {
        for shard in &self.shards {
            let mut shard = shard.write();
            shard.retain(|_, subscribers| {
                subscribers.entries.retain(|(_, subscriber)| !matches!(subscriber, Subscriber::Plain { .. }));
                subscribers.position = subscribers.entries.iter().enumerate().map(|(at, (id, _))| (*id, at)).collect();
                !subscribers.entries.is_empty()
            });
        }
    }

    /// Number of subscriptions on `topic`.
    pub(super) fn count(&self, topic: &str) -> usize {
        self.shard(topic).read().get(topic).map_or(0, |s| s.entries.len())
    }

    /// Delivers `broadcast` to every subscriber of its topic except those owned by
    /// `from`. Fastlane frames are encoded at most once per wire format.
    ///
    /// `publisher` is the publishing channel's mailbox, if a channel publishes: a
    /// direct fan-out stops writing once the channel has messages waiting.
    pub(super) fn dispatch(
        &self,
        broadcast: &Arc<Broadcast>,
        from: Option<SubscriberId>,
        publisher: Option<&Inbox>,
        stats: &Stats,
    ) {
        stats::incr(stats.broadcasts());
        let started = self.now();
        let Some(fanout) = self.collect(broadcast, from, stats) else { return };
        let now = || self.now();
        fanout.run(started, now, self.writers, publisher, stats);
    }

    /// Under the shard's read lock: delivers to the subscribers that take a broadcast
    /// on their own threads, and gathers the fastlane's connections.
    fn collect(&self, broadcast: &Arc<Broadcast>, from: Option<SubscriberId>, stats: &Stats) -> Option<FanOut> {
        let shard = self.shard(&broadcast.topic).read();
        let subscribers = shard.get(&broadcast.topic)?;
        let mut fanout = FanOut::new(subscribers.pacer.clone());
        let mut frames = Frames::default();
        let mut intercepted = None;
        for (_, subscriber) in &subscribers.entries {
            if from.is_some() && subscriber.owner() == from {
                continue;
            }
            match subscriber {
                Subscriber::Channel(channel) if channel.intercepts(&broadcast.event) => {
                    let shared = intercepted.get_or_insert_with(|| Arc::new(Intercepted::new(broadcast.clone())));
                    if channel.inbox.try_send(ChannelMsg::Out(shared.clone())).is_err() {
                        stats::incr(stats.broadcasts_dropped());
                    }
                }
                Subscriber::Channel(channel) => {
                    let deflate = channel.outbound.deflate();
                    if let Some(frame) = frames.get(channel.serializer, deflate, broadcast, stats) {
                        fanout.add(channel.outbound.clone(), frame.clone());
                    }
                }
                Subscriber::Info { inbox, .. } => {
                    if inbox.try_send(ChannelMsg::Info(Info::Broadcast(Broadcast::clone(broadcast)))).is_err() {
                        stats::incr(stats.broadcasts_dropped());
                    }
                }
                Subscriber::Plain { sender, .. } => {
                    if sender.try_send(Broadcast::clone(broadcast)).is_err() {
                        stats::incr(stats.broadcasts_dropped());
                    }
                }
                Subscriber::Connection(outbound) => {
                    if broadcast.event == "disconnect" {
                        let _ = outbound.push_control(OutItem::Disconnect);
                    }
                }
            }
        }
        Some(fanout)
    }
}

/// A broadcast's fastlane frames, encoded on first use: at most one per wire format,
/// and at most one compressed copy of it, made only if a subscriber compresses.
#[derive(Default)]
struct Frames {
    plain: [Option<Option<Frame>>; 2],
    deflated: [Option<Frame>; 2],
}

impl Frames {
    fn get(
        &mut self,
        serializer: Serializer,
        deflate: Option<&PerMessageDeflate>,
        broadcast: &Broadcast,
        stats: &Stats,
    ) -> Option<&Frame> {
        let at = serializer.index();
        let plain = self.plain[at].get_or_insert_with(|| encode(serializer, broadcast, stats)).as_ref()?;
        match deflate {
            Some(deflate) if deflate.wants(plain) => Some(self.deflated[at].get_or_insert_with(|| {
                stats::incr(stats.frames_deflated());
                plain.deflated()
            })),
            _ => Some(plain),
        }
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
    use crate::bounded::BoundedSender;

    fn plain(owner: u64) -> (Subscriber, crossbeam_channel::Receiver<Broadcast>) {
        let (sender, receiver) = BoundedSender::new(100);
        (Subscriber::Plain { owner: SubscriberId(owner), sender }, receiver)
    }

    fn subscribe(registry: &Registry, id: u64, topic: &str, subscriber: Subscriber) {
        registry.subscribe_then(SubscriptionId(id), topic, subscriber, || {});
    }

    fn broadcast() -> Arc<Broadcast> {
        Arc::new(Broadcast::new("t", "e", serde_json::json!({})))
    }

    #[test]
    fn unsubscribe_removes_exactly_one_subscription() {
        let registry = Registry::new(4, 1);
        let mut receivers = Vec::new();
        for id in 0..10 {
            let (sub, rx) = plain(id);
            subscribe(&registry, id, "t", sub);
            receivers.push(rx);
        }
        registry.unsubscribe(SubscriptionId(3), "t");
        registry.unsubscribe(SubscriptionId(0), "t");
        registry.unsubscribe(SubscriptionId(99), "t");
        assert_eq!(registry.count("t"), 8);
        let stats = Stats::default();
        registry.dispatch(&broadcast(), Some(SubscriberId(5)), None, &stats);
        let got: Vec<usize> = receivers.iter().map(|rx| rx.len()).collect();
        assert_eq!(got, [0, 1, 1, 0, 1, 0, 1, 1, 1, 1]);
    }

    #[test]
    fn a_full_plain_subscription_drops_and_counts_the_overflow() {
        let registry = Registry::new(1, 1);
        let (sub, rx) = plain(1);
        subscribe(&registry, 1, "t", sub);
        let stats = Stats::default();
        for _ in 0..150 {
            registry.dispatch(&broadcast(), None, None, &stats);
        }
        assert_eq!(rx.len(), 100);
        assert_eq!(stats.snapshot().broadcasts_dropped, 50);
    }

    #[test]
    fn last_unsubscribe_drops_the_topic() {
        let registry = Registry::new(1, 1);
        let (sub, _rx) = plain(1);
        subscribe(&registry, 1, "t", sub);
        registry.unsubscribe(SubscriptionId(1), "t");
        assert_eq!(registry.count("t"), 0);
        assert!(registry.shards[0].read().is_empty());
    }
}
