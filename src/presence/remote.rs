//! Presence across a cluster: this node's changes as the other nodes apply them, and
//! the other nodes' entries kept here.
//!
//! Each node owns its entries. Its changes go out in order (`Change`), and a node that
//! has missed some receives the owner's whole state instead (`NodeState`). Applying a
//! change is idempotent (entries are matched by `phx_ref`), so a change that arrives
//! after a state which already holds it changes nothing. Remote entries keep the order
//! their owner tracked them in, and an update keeps the entry's place, as it does on
//! the owner.

use super::{Entry, NodeId, Presence, Replication};
use crate::bounded::BoundedSender;
use crate::subscriber_id::SubscriberId;
use crossbeam_channel::Receiver;
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// One change of a node's entries.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Change {
    /// `key` was tracked on `topic` with `meta` (which holds its `phx_ref`).
    Join { topic: String, key: String, meta: Map<String, Value> },
    /// The entry with `phx_ref` left `topic`.
    Leave { topic: String, phx_ref: String },
    /// The entry with `prev_ref` now has `meta` (which holds its new `phx_ref`).
    Update { topic: String, key: String, prev_ref: String, meta: Map<String, Value> },
}

/// One node's entries on one topic: `(key, meta)` in the order they were tracked.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TopicEntries {
    pub(crate) topic: String,
    pub(crate) entries: Vec<(String, Map<String, Value>)>,
}

/// All of one node's entries.
pub(crate) type NodeState = Vec<TopicEntries>;

/// This node's changes, on their way to the cluster: the tracker's [`Replication`].
struct Feed {
    sender: BoundedSender<Change>,
    /// Set when a change did not fit in the queue: the others need the whole state.
    lost: Arc<AtomicBool>,
}

impl Feed {
    fn send(&self, change: Change) {
        if self.sender.try_send(change).is_err() {
            self.lost.store(true, Ordering::Relaxed);
        }
    }
}

impl Replication for Feed {
    fn joined(&self, topic: &str, key: &str, meta: &Map<String, Value>) {
        self.send(Change::Join { topic: topic.to_owned(), key: key.to_owned(), meta: meta.clone() });
    }

    fn updated(&self, topic: &str, key: &str, old: &Map<String, Value>, new: &Map<String, Value>) {
        let prev_ref = phx_ref_of(old).to_owned();
        self.send(Change::Update { topic: topic.to_owned(), key: key.to_owned(), prev_ref, meta: new.clone() });
    }

    fn left(&self, topic: &str, meta: &Map<String, Value>) {
        self.send(Change::Leave { topic: topic.to_owned(), phx_ref: phx_ref_of(meta).to_owned() });
    }
}

/// The cluster's end of the feed: this node's changes, in order.
pub(crate) struct ChangeFeed {
    pub(crate) changes: Receiver<Change>,
    lost: Arc<AtomicBool>,
}

impl ChangeFeed {
    /// Whether changes were dropped from the feed since the last call.
    pub(crate) fn take_lost(&self) -> bool {
        self.lost.swap(false, Ordering::Relaxed)
    }
}

/// The `phx_ref` of a meta ("" if it has none, which no meta of this tracker lacks).
fn phx_ref_of(meta: &Map<String, Value>) -> &str {
    meta.get("phx_ref").and_then(Value::as_str).unwrap_or_default()
}

fn position(entries: &[Entry], phx_ref: &str) -> Option<usize> {
    entries.iter().position(|entry| phx_ref_of(&entry.meta) == phx_ref)
}

impl Presence {
    /// Turns the feed of this node's changes on: they arrive, in order, on the returned
    /// queue of `capacity`. Changes that do not fit are dropped and
    /// [`ChangeFeed::take_lost`] says so. Only the first call counts.
    pub(crate) fn feed(&self, capacity: usize) -> ChangeFeed {
        let (sender, changes) = BoundedSender::new(capacity);
        let lost = Arc::new(AtomicBool::new(false));
        let _ = self.replication.set(Box::new(Feed { sender, lost: lost.clone() }));
        ChangeFeed { changes, lost }
    }

    /// Every entry this node owns.
    pub(crate) fn local_state(&self) -> NodeState {
        let topics = self.topics.lock();
        let mut state: NodeState = topics
            .iter()
            .filter_map(|(topic, state)| {
                let entries = state.nodes.get(&self.local)?;
                let entries = entries.iter().map(|e| (e.key.to_string(), Map::clone(&e.meta))).collect();
                Some(TopicEntries { topic: topic.clone(), entries })
            })
            .collect();
        state.sort_by(|a, b| a.topic.cmp(&b.topic));
        state
    }

    /// Applies `node`'s changes, in order, recording the diffs.
    pub(crate) fn apply_remote(&self, node: &NodeId, changes: Vec<Change>) {
        let mut topics = self.topics.lock();
        let mut touched = HashSet::new();
        for change in changes {
            match change {
                Change::Join { topic, key, meta } => {
                    let entries = topics.entry(topic.clone()).or_default().nodes.entry(node.clone()).or_default();
                    if position(entries, phx_ref_of(&meta)).is_none() {
                        self.changed(&topic, &key, Some(&meta), None);
                        entries.push(Entry { owner: SubscriberId(0), key: key.into(), meta: Arc::new(meta) });
                    }
                }
                Change::Leave { topic, phx_ref } => {
                    let entries = topics.get_mut(&topic).and_then(|state| state.nodes.get_mut(node));
                    if let Some(entries) = entries
                        && let Some(at) = position(entries, &phx_ref)
                    {
                        let entry = entries.remove(at);
                        self.changed(&topic, &entry.key, None, Some(&entry.meta));
                        touched.insert(topic);
                    }
                }
                Change::Update { topic, key, prev_ref, meta } => {
                    let entries = topics.entry(topic.clone()).or_default().nodes.entry(node.clone()).or_default();
                    if position(entries, phx_ref_of(&meta)).is_some() {
                        // Already there (from a state): only the previous meta may be left.
                        if let Some(at) = position(entries, &prev_ref) {
                            let entry = entries.remove(at);
                            self.changed(&topic, &entry.key, None, Some(&entry.meta));
                        }
                        continue;
                    }
                    match position(entries, &prev_ref) {
                        Some(at) => {
                            let old = std::mem::replace(&mut entries[at].meta, Arc::new(meta));
                            self.changed(&topic, &key, Some(&entries[at].meta), Some(&old));
                        }
                        None => {
                            self.changed(&topic, &key, Some(&meta), None);
                            entries.push(Entry { owner: SubscriberId(0), key: key.into(), meta: Arc::new(meta) });
                        }
                    }
                }
            }
        }
        for topic in touched {
            if let Some(state) = topics.get_mut(&topic) {
                state.nodes.retain(|_, entries| !entries.is_empty());
                if state.nodes.is_empty() {
                    topics.remove(&topic);
                }
            }
        }
    }

    /// Replaces everything known of `node` with `state`, recording the diffs.
    pub(crate) fn replace_node(&self, node: &NodeId, state: NodeState) {
        let mut topics = self.topics.lock();
        let mut incoming: std::collections::HashMap<String, Vec<Entry>> = state
            .into_iter()
            .map(|t| {
                let entries = t.entries.into_iter().map(|(key, meta)| Entry {
                    owner: SubscriberId(0),
                    key: key.into(),
                    meta: Arc::new(meta),
                });
                (t.topic, entries.collect())
            })
            .collect();
        let known: Vec<String> =
            topics.iter().filter(|(_, state)| state.nodes.contains_key(node)).map(|(topic, _)| topic.clone()).collect();
        let all: HashSet<String> = known.into_iter().chain(incoming.keys().cloned()).collect();
        for topic in all {
            let new = incoming.remove(&topic).unwrap_or_default();
            let state = topics.entry(topic.clone()).or_default();
            let old = state.nodes.remove(node).unwrap_or_default();
            let same = |a: &Entry, b: &Entry| a.key == b.key && phx_ref_of(&a.meta) == phx_ref_of(&b.meta);
            for entry in old.iter().filter(|o| !new.iter().any(|n| same(o, n))) {
                self.changed(&topic, &entry.key, None, Some(&entry.meta));
            }
            for entry in new.iter().filter(|n| !old.iter().any(|o| same(o, n))) {
                self.changed(&topic, &entry.key, Some(&entry.meta), None);
            }
            if !new.is_empty() {
                state.nodes.insert(node.clone(), new);
            }
            if state.nodes.is_empty() {
                topics.remove(&topic);
            }
        }
    }

    /// Forgets every entry of `node` (it went away), recording the leaves.
    pub(crate) fn remove_node(&self, node: &NodeId) {
        self.replace_node(node, NodeState::new());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pubsub::PubSub;
    use crate::stats::Stats;
    use serde_json::json;
    use std::sync::Arc;
    use std::time::Duration;

    fn presence(node: &str) -> (Arc<Presence>, PubSub) {
        let pubsub = PubSub::new(4, 1, Arc::new(Stats::default()), None, 100, Arc::from("a"));
        let hooks = crate::presence::Hooks::default();
        let telemetry = crate::telemetry::Telemetry::default();
        (
            Presence::start(pubsub.clone(), Duration::from_millis(5), hooks, telemetry, NodeId(node.into())).unwrap(),
            pubsub,
        )
    }

    fn meta(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    /// Node a, whose changes are fed, and node b, which applies them (`replicate`).
    fn pair() -> (Arc<Presence>, Arc<Presence>, ChangeFeed) {
        let (a, _) = presence("a");
        let (b, _) = presence("b");
        let feed = a.feed(100);
        (a, b, feed)
    }

    /// Applies every change `a` fed so far to `b`.
    fn replicate(feed: &ChangeFeed, b: &Presence) {
        b.apply_remote(&NodeId("a".into()), feed.changes.try_iter().collect());
    }

    #[test]
    fn changes_replayed_on_another_node_give_the_same_list() {
        let (a, b, feed) = pair();
        a.track(SubscriberId(1), "t", "alice", json!({"s": 1})).unwrap();
        a.track(SubscriberId(2), "t", "alice", json!({"s": 2})).unwrap();
        a.track(SubscriberId(3), "t", "bob", json!({})).unwrap();
        a.update(SubscriberId(1), "t", "alice", json!({"s": 3})).unwrap();
        a.untrack(SubscriberId(3), "t", "bob");
        replicate(&feed, &b);
        assert_eq!(b.list("t"), a.list("t"));
        assert_eq!(b.list("t")["alice"]["metas"][0]["s"], 3, "an update keeps its place");
        a.untrack_all(SubscriberId(1));
        a.untrack_all(SubscriberId(2));
        replicate(&feed, &b);
        assert_eq!(b.list("t"), json!({}));
        assert!(b.topics.lock().is_empty(), "nothing is left of an emptied topic");
        a.stop();
        b.stop();
    }

    #[test]
    fn changes_already_in_a_state_change_nothing() {
        let (a, b, feed) = pair();
        a.track(SubscriberId(1), "t", "alice", json!({})).unwrap();
        a.update(SubscriberId(1), "t", "alice", json!({"s": "busy"})).unwrap();
        a.track(SubscriberId(2), "u", "bob", json!({})).unwrap();
        a.untrack(SubscriberId(2), "u", "bob");
        b.replace_node(&NodeId("a".into()), a.local_state());
        replicate(&feed, &b);
        assert_eq!(b.list("t"), a.list("t"));
        assert_eq!(b.list("u"), json!({}));
        a.stop();
        b.stop();
    }

    #[test]
    fn a_full_feed_is_reported_as_lost() {
        let (a, _) = presence("a");
        let feed = a.feed(1);
        a.track(SubscriberId(1), "t", "alice", json!({})).unwrap();
        assert!(!feed.take_lost());
        a.track(SubscriberId(2), "t", "bob", json!({})).unwrap();
        assert!(feed.take_lost());
        assert!(!feed.take_lost(), "reported once");
        a.stop();
    }

    #[test]
    fn remote_nodes_merge_sort_by_node_and_go_away_with_leaves() {
        let (p, pubsub) = presence("b");
        let node = NodeId("a".into());
        p.track(SubscriberId(1), "t", "alice", json!({"on": "b"})).unwrap();
        let state = vec![TopicEntries {
            topic: "t".into(),
            entries: vec![("alice".into(), meta(json!({"on": "a", "phx_ref": "R1"})))],
        }];
        p.replace_node(&node, state);
        assert_eq!(p.list("t")["alice"]["metas"][0]["on"], "a", "node a's metas come first");
        assert_eq!(p.list("t")["alice"]["metas"][1]["on"], "b");
        std::thread::sleep(Duration::from_millis(50));
        let sub = pubsub.subscribe("t");
        p.remove_node(&node);
        assert_eq!(p.list("t")["alice"]["metas"].as_array().unwrap().len(), 1);
        let diff = sub.recv_timeout(Duration::from_secs(2)).expect("a diff");
        assert_eq!(diff.payload.as_json().unwrap()["leaves"]["alice"]["metas"][0]["phx_ref"], "R1");
        p.stop();
    }
}
