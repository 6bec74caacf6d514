//! Presence: who is in a topic, in the shapes the official client's `Presence` reads.
//!
//! Entries are tracked per channel (their owner) and per node. Every change is turned
//! into a `presence_diff` broadcast on the topic; changes that happen within a short
//! window are sent as one diff per topic. A channel's entries go away when it ends, for
//! any reason.
//!
//! The application can enrich presences before they go out and react to changes
//! ([`EndpointBuilder::presence_fetch`](crate::EndpointBuilder::presence_fetch) and
//! [`presence_handle_metas`](crate::EndpointBuilder::presence_handle_metas), in
//! `presence/hooks.rs`), look up one key ([`Presence::get_by_key`]), and track presences
//! from code that is not a channel ([`Presence::track_external`]).
//!
//! State is kept per node: this node owns its entries, and in a cluster (feature
//! `redis`) the other nodes' entries are replicated here (`remote.rs`). A topic's list
//! orders each key's metas by node name, then by when they were tracked, so every node
//! lists the same topic the same way.

cfg_redis! {
    pub(crate) mod remote;
}

mod by_key;
mod external;
mod hooks;
mod replication;

pub use external::PresenceHandle;
pub(crate) use hooks::Hooks;
pub use hooks::{PresenceChange, Presences};
pub(crate) use replication::Replication;

use crate::pubsub::PubSub;
use crate::subscriber_id::SubscriberId;
use crate::telemetry::{Event, Telemetry};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The event of presence diffs.
pub const PRESENCE_DIFF: &str = "presence_diff";
/// The event applications push the current state with, after joining.
pub const PRESENCE_STATE: &str = "presence_state";

/// Names a node of a cluster.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct NodeId(pub(crate) String);

/// Why a presence operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PresenceError {
    /// This channel already tracks this key on this topic.
    AlreadyTracked {
        /// The topic.
        topic: String,
        /// The key.
        key: String,
    },
    /// This channel tracks no such key on this topic (`update` only).
    NoPresence,
    /// The meta must be a JSON object.
    MetaNotAnObject,
}

impl fmt::Display for PresenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PresenceError::AlreadyTracked { topic, key } => write!(f, "already tracked: {key:?} on {topic:?}"),
            PresenceError::NoPresence => f.write_str("no presence to update"),
            PresenceError::MetaNotAnObject => f.write_str("presence metas must be JSON objects"),
        }
    }
}

impl std::error::Error for PresenceError {}

/// A meta as stored: shared by its entry, its owner's index and the lists being built.
type SharedMeta = Arc<Map<String, Value>>;

/// One tracked meta. Its key and meta are shared, so that a list takes the entries
/// it needs under the lock and builds its JSON after releasing it.
#[derive(Debug)]
struct Entry {
    owner: SubscriberId,
    key: Arc<str>,
    /// The user's meta with `phx_ref` (and `phx_ref_prev` after an update) added.
    meta: SharedMeta,
}

/// A topic's entries, by node.
#[derive(Default)]
struct TopicState {
    nodes: HashMap<NodeId, Vec<Entry>>,
    /// The keys each owner tracks here on this node, with their metas (shared with
    /// the entries): a `track` finds a duplicate without comparing every entry of the
    /// topic, and an `update` or `untrack` finds its entry by comparing pointers.
    tracked: HashMap<SubscriberId, HashMap<Arc<str>, SharedMeta>>,
}

/// Changes on one topic not yet broadcast.
#[derive(Default)]
struct PendingDiff {
    joins: Map<String, Value>,
    leaves: Map<String, Value>,
    due: Option<Instant>,
}

impl PendingDiff {
    fn add(map: &mut Map<String, Value>, key: &str, meta: &Map<String, Value>) {
        let slot = map.entry(key.to_owned()).or_insert_with(|| json!({"metas": []}));
        if let Some(Value::Array(metas)) = slot.get_mut("metas") {
            metas.push(Value::Object(meta.clone()));
        }
    }
}

/// The endpoint's presence tracker. Get it with
/// [`Endpoint::presence`](crate::Endpoint::presence) or use it through
/// [`Socket::track`](crate::Socket::track) and friends.
pub struct Presence {
    topics: Mutex<HashMap<String, TopicState>>,
    /// The topics each owner has tracked on, so its end visits only those.
    owners: Mutex<HashMap<SubscriberId, HashSet<String>>>,
    flusher: Mutex<Option<(Sender<String>, JoinHandle<()>)>>,
    pending: Mutex<HashMap<String, PendingDiff>>,
    window: Duration,
    counter: AtomicU32,
    hooks: Hooks,
    /// For the ids of presences tracked from outside channels.
    pubsub: PubSub,
    /// This node.
    local: NodeId,
    /// Where this node's changes go, once a cluster replicates them.
    replication: OnceLock<Box<dyn Replication>>,
}

impl fmt::Debug for Presence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Presence")
            .field("node", &self.local)
            .field("topics", &self.topics.lock().len())
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl Presence {
    /// Starts the tracker of node `local`.
    pub(crate) fn start(
        pubsub: PubSub,
        window: Duration,
        hooks: Hooks,
        telemetry: Telemetry,
        local: NodeId,
    ) -> std::io::Result<std::sync::Arc<Presence>> {
        let (sender, receiver) = crossbeam_channel::unbounded();
        let presence = std::sync::Arc::new(Presence {
            topics: Mutex::new(HashMap::new()),
            owners: Mutex::new(HashMap::new()),
            flusher: Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
            window,
            counter: AtomicU32::new(0),
            hooks,
            pubsub: pubsub.clone(),
            local,
            replication: OnceLock::new(),
        });
        let weak = std::sync::Arc::downgrade(&presence);
        let handle = std::thread::Builder::new()
            .name("phx-presence".into())
            .spawn(move || flush_loop(&receiver, &pubsub, &weak, &telemetry))?;
        *presence.flusher.lock() = Some((sender, handle));
        Ok(presence)
    }

    /// Sends what is pending and stops the diff thread.
    pub(crate) fn stop(&self) {
        let flusher = self.flusher.lock().take();
        if let Some((sender, handle)) = flusher {
            drop(sender);
            let _ = handle.join();
        }
    }

    /// A unique, opaque ref: url-safe base64 of a nanosecond timestamp and a counter.
    fn new_ref(&self) -> String {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let count = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut bytes = [0u8; 12];
        bytes[..8].copy_from_slice(&nanos.to_be_bytes());
        bytes[8..].copy_from_slice(&count.to_be_bytes());
        crate::base64url::encode(&bytes)
    }

    /// Tracks `key` with `meta` on `topic` for `owner`: returns the new `phx_ref`.
    pub(crate) fn track(
        &self,
        owner: SubscriberId,
        topic: &str,
        key: &str,
        meta: Value,
    ) -> Result<String, PresenceError> {
        let Value::Object(mut meta) = meta else { return Err(PresenceError::MetaNotAnObject) };
        let mut topics = self.topics.lock();
        let state = topics.entry(topic.to_owned()).or_default();
        let keys = state.tracked.entry(owner).or_default();
        if keys.contains_key(key) {
            return Err(PresenceError::AlreadyTracked { topic: topic.to_owned(), key: key.to_owned() });
        }
        let phx_ref = self.new_ref();
        meta.insert("phx_ref".into(), Value::String(phx_ref.clone()));
        self.changed(topic, key, Some(&meta), None);
        self.replicate(|replication| replication.joined(topic, key, &meta));
        let (key, meta): (Arc<str>, _) = (key.into(), Arc::new(meta));
        keys.insert(key.clone(), meta.clone());
        state.nodes.entry(self.local.clone()).or_default().push(Entry { owner, key, meta });
        self.owners.lock().entry(owner).or_default().insert(topic.to_owned());
        Ok(phx_ref)
    }

    /// Replaces the meta of `key`: one diff, the new meta (with `phx_ref_prev`) in
    /// joins and the old one in leaves.
    pub(crate) fn update(
        &self,
        owner: SubscriberId,
        topic: &str,
        key: &str,
        meta: Value,
    ) -> Result<String, PresenceError> {
        let Value::Object(mut meta) = meta else { return Err(PresenceError::MetaNotAnObject) };
        let mut topics = self.topics.lock();
        let state = topics.get_mut(topic).ok_or(PresenceError::NoPresence)?;
        let current =
            state.tracked.get_mut(&owner).and_then(|keys| keys.get_mut(key)).ok_or(PresenceError::NoPresence)?;
        let entry = state
            .nodes
            .get_mut(&self.local)
            .and_then(|entries| entries.iter_mut().find(|e| Arc::ptr_eq(&e.meta, current)))
            .ok_or(PresenceError::NoPresence)?;
        let phx_ref = self.new_ref();
        meta.insert("phx_ref".into(), Value::String(phx_ref.clone()));
        if let Some(prev) = entry.meta.get("phx_ref").cloned() {
            meta.insert("phx_ref_prev".into(), prev);
        }
        let old = std::mem::replace(&mut entry.meta, Arc::new(meta));
        *current = entry.meta.clone();
        self.changed(topic, key, Some(&entry.meta), Some(&old));
        self.replicate(|replication| replication.updated(topic, key, &old, &entry.meta));
        Ok(phx_ref)
    }

    /// Hands a change of this node's entries to the replication, if there is one.
    fn replicate(&self, change: impl FnOnce(&dyn Replication)) {
        if let Some(replication) = self.replication.get() {
            change(replication.as_ref());
        }
    }

    /// Stops tracking `key` on `topic` for `owner`. Idempotent.
    pub(crate) fn untrack(&self, owner: SubscriberId, topic: &str, key: &str) {
        let mut topics = self.topics.lock();
        let tracked = topics.get(topic).and_then(|state| state.tracked.get(&owner)?.get(key)).cloned();
        if let Some(meta) = tracked {
            self.remove_from(&mut topics, topic, |entry| Arc::ptr_eq(&entry.meta, &meta));
        }
    }

    /// Removes everything `owner` tracks, on every topic.
    pub(crate) fn untrack_all(&self, owner: SubscriberId) {
        let topics = self.owners.lock().remove(&owner).unwrap_or_default();
        for topic in topics {
            self.remove_from(&mut self.topics.lock(), &topic, |entry| entry.owner == owner);
        }
    }

    /// Removes this node's entries on `topic` that `matches` picks, recording leaves;
    /// `topics` is the tracker's, locked by the caller.
    fn remove_from(&self, topics: &mut HashMap<String, TopicState>, topic: &str, matches: impl Fn(&Entry) -> bool) {
        let Some(state) = topics.get_mut(topic) else { return };
        if let Some(entries) = state.nodes.get_mut(&self.local) {
            entries.retain(|entry| {
                let remove = matches(entry);
                if remove {
                    if let Some(keys) = state.tracked.get_mut(&entry.owner) {
                        keys.remove(&*entry.key);
                        if keys.is_empty() {
                            state.tracked.remove(&entry.owner);
                        }
                    }
                    self.changed(topic, &entry.key, None, Some(&entry.meta));
                    self.replicate(|replication| replication.left(topic, &entry.meta));
                }
                !remove
            });
        }
        state.nodes.retain(|_, entries| !entries.is_empty());
        if state.nodes.is_empty() {
            topics.remove(topic);
        }
    }

    /// Everyone on `topic`, as `{key: {"metas": [meta, ...]}}`, every node's
    /// entries included, enriched by the endpoint's
    /// [`presence_fetch`](crate::EndpointBuilder::presence_fetch) if it has one.
    pub fn list(&self, topic: &str) -> Value {
        let mut out = self.grouped(topic);
        self.hooks.fetch(topic, &mut out);
        Value::Object(out)
    }

    /// Everyone on `topic`, as `{key: {"metas": [meta, ...]}}`, not fetched. Only the
    /// entries' shared keys and metas are taken under the lock (in their order: by
    /// node, then as tracked); the JSON is built after it, so a large topic holds back
    /// no change.
    fn grouped(&self, topic: &str) -> Map<String, Value> {
        let mut entries: Vec<(Arc<str>, SharedMeta)> = {
            let topics = self.topics.lock();
            let Some(state) = topics.get(topic) else { return Map::new() };
            let mut nodes: Vec<_> = state.nodes.iter().collect();
            nodes.sort_by(|a, b| a.0.cmp(b.0));
            let mut entries = Vec::with_capacity(nodes.iter().map(|(_, entries)| entries.len()).sum());
            entries.extend(
                nodes.into_iter().flat_map(|(_, entries)| entries).map(|entry| (entry.key.clone(), entry.meta.clone())),
            );
            entries
        };
        // Stable: each key's metas keep their order. A sorted slice groups by key
        // without a map of its own, and sorted keys make the result in one pass.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries
            .chunk_by(|a, b| a.0 == b.0)
            .map(|same_key| {
                let metas = same_key.iter().map(|(_, meta)| Value::Object(Map::clone(meta))).collect();
                let mut slot = Map::new();
                slot.insert("metas".to_owned(), Value::Array(metas));
                (same_key[0].0.to_string(), Value::Object(slot))
            })
            .collect()
    }

    /// Records a change for the next diff of `topic`.
    fn changed(&self, topic: &str, key: &str, join: Option<&Map<String, Value>>, leave: Option<&Map<String, Value>>) {
        let mut pending = self.pending.lock();
        let diff = pending.entry(topic.to_owned()).or_default();
        if let Some(meta) = join {
            PendingDiff::add(&mut diff.joins, key, meta);
        }
        if let Some(meta) = leave {
            PendingDiff::add(&mut diff.leaves, key, meta);
        }
        if diff.due.is_none() {
            diff.due = Some(Instant::now() + self.window);
            if let Some((sender, _)) = &*self.flusher.lock() {
                let _ = sender.send(topic.to_owned());
            }
        }
    }

    /// Takes the diffs due by `now` (all of them if `all`), and the next due time.
    fn take_due(&self, now: Instant, all: bool) -> (Vec<(String, PendingDiff)>, Option<Instant>) {
        let mut pending = self.pending.lock();
        let due: Vec<String> =
            pending.iter().filter(|(_, d)| all || d.due.is_some_and(|t| t <= now)).map(|(t, _)| t.clone()).collect();
        let taken = due.into_iter().filter_map(|t| pending.remove_entry(&t)).collect();
        (taken, pending.values().filter_map(|d| d.due).min())
    }
}

/// Broadcasts pending diffs when their window closes.
fn flush_loop(
    wakeups: &Receiver<String>,
    pubsub: &PubSub,
    presence: &std::sync::Weak<Presence>,
    telemetry: &Telemetry,
) {
    let mut next: Option<Instant> = None;
    loop {
        let received = match next {
            Some(at) => wakeups.recv_deadline(at),
            None => wakeups.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let Some(presence) = presence.upgrade() else { return };
        let closing = matches!(received, Err(RecvTimeoutError::Disconnected));
        let (due, upcoming) = presence.take_due(Instant::now(), closing);
        for (topic, PendingDiff { mut joins, mut leaves, .. }) in due {
            presence.hooks.fetch(&topic, &mut joins);
            presence.hooks.fetch(&topic, &mut leaves);
            telemetry
                .emit(|hook| hook(&Event::PresenceChanged { topic: &topic, joins: joins.len(), leaves: leaves.len() }));
            let payload = json!({"joins": &joins, "leaves": &leaves});
            if let Err(err) = pubsub.local_broadcast(&topic, PRESENCE_DIFF, payload) {
                log::error!("cannot broadcast a presence diff on {topic}: {err}");
            }
            presence.after_diff(&topic, &joins, &leaves);
        }
        if closing {
            return;
        }
        next = upcoming;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Stats;
    use std::sync::Arc;

    fn presence() -> (Arc<Presence>, PubSub) {
        let pubsub = PubSub::new(4, 1, Arc::new(Stats::default()), None, 100, Arc::from("a"));
        let presence = Presence::start(
            pubsub.clone(),
            Duration::from_millis(20),
            Hooks::default(),
            Telemetry::default(),
            NodeId("a".into()),
        );
        (presence.unwrap(), pubsub)
    }

    #[test]
    fn refs_are_unique_16_character_strings() {
        let (p, _) = presence();
        let a = p.track(SubscriberId(1), "t", "alice", json!({})).unwrap();
        let b = p.track(SubscriberId(2), "t", "alice", json!({})).unwrap();
        assert_eq!(a.len(), 16);
        assert_ne!(a, b);
        p.stop();
    }

    #[test]
    fn tracking_the_same_key_twice_from_one_owner_is_an_error() {
        let (p, _) = presence();
        p.track(SubscriberId(1), "t", "alice", json!({})).unwrap();
        assert_eq!(
            p.track(SubscriberId(1), "t", "alice", json!({})),
            Err(PresenceError::AlreadyTracked { topic: "t".into(), key: "alice".into() })
        );
        assert!(p.track(SubscriberId(1), "other", "alice", json!({})).is_ok());
        p.stop();
    }

    #[test]
    fn an_updated_entry_is_still_found_by_untrack_and_a_key_untracked_can_be_tracked_again() {
        let (p, _) = presence();
        p.track(SubscriberId(1), "t", "alice", json!({"s": 1})).unwrap();
        p.track(SubscriberId(2), "t", "alice", json!({"s": 2})).unwrap();
        p.update(SubscriberId(1), "t", "alice", json!({"s": 3})).unwrap();
        p.untrack(SubscriberId(1), "t", "alice");
        assert_eq!(p.list("t")["alice"]["metas"].as_array().unwrap().len(), 1);
        assert_eq!(p.list("t")["alice"]["metas"][0]["s"], 2);
        assert_eq!(p.update(SubscriberId(1), "t", "alice", json!({})), Err(PresenceError::NoPresence));
        assert!(p.track(SubscriberId(1), "t", "alice", json!({"s": 4})).is_ok());
        p.untrack_all(SubscriberId(1));
        p.untrack_all(SubscriberId(2));
        assert!(p.topics.lock().is_empty(), "nothing is left of an emptied topic");
        p.stop();
    }

    #[test]
    fn list_groups_metas_by_key() {
        let (p, _) = presence();
        let r1 = p.track(SubscriberId(1), "t", "alice", json!({"device": "phone"})).unwrap();
        let r2 = p.track(SubscriberId(2), "t", "alice", json!({"device": "laptop"})).unwrap();
        p.track(SubscriberId(3), "t", "bob", json!({})).unwrap();
        let list = p.list("t");
        assert_eq!(list["alice"]["metas"][0], json!({"device": "phone", "phx_ref": r1}));
        assert_eq!(list["alice"]["metas"][1], json!({"device": "laptop", "phx_ref": r2}));
        assert_eq!(list["bob"]["metas"].as_array().unwrap().len(), 1);
        p.stop();
    }

    #[test]
    fn a_burst_of_changes_is_one_diff_and_an_update_carries_the_previous_ref() {
        let (p, pubsub) = presence();
        let sub = pubsub.subscribe("t");
        let first = p.track(SubscriberId(1), "t", "alice", json!({"s": "away"})).unwrap();
        let second = p.update(SubscriberId(1), "t", "alice", json!({"s": "here"})).unwrap();
        p.track(SubscriberId(2), "t", "bob", json!({})).unwrap();
        let diff = sub.recv_timeout(Duration::from_secs(2)).expect("a diff");
        assert_eq!(diff.event, PRESENCE_DIFF);
        let payload = diff.payload.as_json().unwrap();
        let joins = &payload["joins"];
        assert_eq!(joins["alice"]["metas"][1], json!({"s": "here", "phx_ref": second, "phx_ref_prev": first}));
        assert_eq!(payload["leaves"]["alice"]["metas"][0], json!({"s": "away", "phx_ref": first}));
        assert!(joins["bob"].is_object());
        assert_eq!(
            sub.recv_timeout(Duration::from_millis(100)).err(),
            Some(crate::pubsub::RecvTimeoutError::Timeout),
            "one diff for the burst"
        );
        p.stop();
    }

    #[test]
    fn untrack_all_removes_an_owners_entries_everywhere_with_leaves() {
        let (p, pubsub) = presence();
        p.track(SubscriberId(1), "a", "alice", json!({})).unwrap();
        p.track(SubscriberId(1), "b", "alice", json!({})).unwrap();
        p.track(SubscriberId(2), "b", "bob", json!({})).unwrap();
        std::thread::sleep(Duration::from_millis(60));
        let sub = pubsub.subscribe("b");
        p.untrack_all(SubscriberId(1));
        assert_eq!(p.list("a"), json!({}));
        assert_eq!(p.list("b").as_object().unwrap().keys().collect::<Vec<_>>(), ["bob"]);
        let diff = sub.recv_timeout(Duration::from_secs(2)).expect("a diff");
        assert!(diff.payload.as_json().unwrap()["leaves"]["alice"].is_object());
        p.stop();
    }
}
