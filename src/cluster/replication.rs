//! Presence across the cluster, as Phoenix.Tracker does it: each node owns its entries
//! and sends its changes to the others; a node that has missed some, or has just
//! arrived, asks the owner for its whole state; a node not heard from for the down
//! period is taken for gone and its entries leave.
//!
//! One thread per node. It sends this node's changes (numbered: `seq`), a heartbeat
//! carrying the last number every heartbeat period, and its state to whoever asks; it
//! applies the other nodes' messages. A node knows another (a replica) by its name and
//! incarnation, and takes its changes only in order: a gap, a heartbeat with a number
//! it has not seen, an unknown node or a new incarnation make it ask for the state.
//! When this node's subscription to Redis starts (or starts again after an outage) it
//! asks every node for its state and sends its own.

use super::link::{POLL, Shared};
use super::publisher::Publish;
use super::queue::QueueReceiver;
use super::wire::{Envelope, Replication};
use crate::presence::remote::{Change, ChangeFeed};
use crate::presence::{NodeId, Presence};
use crossbeam_channel::Select;
use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Most changes one delta message carries.
const CHANGES_PER_MESSAGE: usize = 1_000;
/// Most of this node's changes waiting to be sent; past that, the others get the state.
const FEED_CAPACITY: usize = 100_000;

/// What the replication thread hears from the subscriber.
pub(super) enum Event {
    /// The subscription to the cluster channel is (again) live.
    Subscribed,
    /// A presence message from another node (a whole wire message).
    Remote(Vec<u8>),
}

/// The replication's timing.
#[derive(Clone, Copy, Debug)]
pub(super) struct Timing {
    /// How often this node says it is alive.
    pub(super) heartbeat: Duration,
    /// How long a node may be silent before it is taken for gone.
    pub(super) down_after: Duration,
}

impl Timing {
    /// The heartbeat for a down period: a fifth of it, at most 1 s.
    pub(super) fn new(down_after: Duration) -> Self {
        Timing { heartbeat: (down_after / 5).min(Duration::from_secs(1)), down_after }
    }
}

/// What this node knows of another.
struct Replica {
    incarnation: u64,
    /// The number of its last message applied here.
    seq: u64,
    /// Whether its state has arrived (before that its changes are not applied).
    synced: bool,
    last_seen: Instant,
    /// When its state was last asked for, until it arrives.
    requested: Option<Instant>,
}

impl Replica {
    fn new(incarnation: u64, now: Instant) -> Self {
        Replica { incarnation, seq: 0, synced: false, last_seen: now, requested: None }
    }
}

/// The replication thread and its input.
pub(super) struct Replicator {
    shared: Arc<Shared>,
    presence: Arc<Presence>,
    publish: Publish,
    feed: ChangeFeed,
    timing: Timing,
    /// The number of this node's last presence message.
    seq: u64,
    replicas: HashMap<String, Replica>,
    next_heartbeat: Instant,
}

/// Starts replicating `presence` through `publish`, hearing the others on `events`.
pub(super) fn start(
    shared: Arc<Shared>,
    presence: Arc<Presence>,
    publish: Publish,
    events: QueueReceiver<Event>,
    timing: Timing,
) -> std::io::Result<JoinHandle<()>> {
    let feed = presence.feed(FEED_CAPACITY);
    let replicator = Replicator {
        shared,
        presence,
        publish,
        feed,
        timing,
        seq: 0,
        replicas: HashMap::new(),
        next_heartbeat: Instant::now(),
    };
    std::thread::Builder::new().name("phx-cluster-presence".into()).spawn(move || replicator.run(&events))
}

impl Replicator {
    fn run(mut self, events: &QueueReceiver<Event>) {
        while !self.shared.stopping() {
            let wait = self.next_heartbeat.saturating_duration_since(Instant::now()).min(POLL);
            let mut select = Select::new();
            events.watch(&mut select);
            select.recv(&self.feed.changes);
            let _ = select.ready_timeout(wait);
            while let Some(event) = events.try_recv() {
                self.handle(event);
            }
            self.send_changes();
            let now = Instant::now();
            if now >= self.next_heartbeat {
                self.next_heartbeat = now + self.timing.heartbeat;
                self.publish.send(self.shared.origin.heartbeat(self.seq), false);
                self.check_replicas(now);
            }
        }
        // Channels that ended during shutdown untracked their presences: tell the others.
        self.send_changes();
    }

    /// Sends this node's changes since the last call, or its whole state if some were lost.
    fn send_changes(&mut self) {
        let lost = self.feed.take_lost();
        let changes: Vec<Change> = self.feed.changes.try_iter().collect();
        if lost {
            log::warn!("cluster: presence changes came faster than they could be sent; sending the whole state");
            self.seq += 1;
            self.send_state("");
            return;
        }
        for chunk in changes.chunks(CHANGES_PER_MESSAGE) {
            self.seq += 1;
            self.publish.send(self.shared.origin.delta(self.seq, chunk), false);
        }
    }

    /// Sends this node's state as of its last message to `target` ("" for all).
    fn send_state(&self, target: &str) {
        let state = self.presence.local_state();
        self.publish.send(self.shared.origin.state(target, self.seq, &state), false);
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Subscribed => {
                self.send_changes();
                self.send_state("");
                self.publish.send(self.shared.origin.state_request(""), false);
            }
            Event::Remote(bytes) => {
                let decoded = Envelope::decode(&bytes).and_then(|envelope| {
                    let (node, incarnation) = (envelope.origin.to_owned(), envelope.incarnation);
                    Ok((node, incarnation, envelope.replication()?))
                });
                match decoded {
                    Ok((node, incarnation, message)) => self.remote(node, incarnation, message),
                    Err(err) => log::warn!("cluster: ignoring a presence message: {err}"),
                }
            }
        }
    }

    /// Applies one message from node `node`.
    fn remote(&mut self, node: String, incarnation: u64, message: Replication) {
        let now = Instant::now();
        let id = NodeId(node.clone());
        let answer = message == Replication::StateRequest;
        let shared = &self.shared;
        let replica = self.replicas.entry(node.clone()).or_insert_with(|| {
            log::info!("cluster: node {node:?} is up");
            shared.set_live(&node, true);
            Replica::new(incarnation, now)
        });
        if replica.incarnation != incarnation {
            log::info!("cluster: node {node:?} restarted");
            self.presence.remove_node(&id);
            *replica = Replica::new(incarnation, now);
        }
        replica.last_seen = now;
        let ask = match message {
            Replication::Heartbeat { seq } => !replica.synced || seq != replica.seq,
            Replication::Delta { seq, changes } => {
                if replica.synced && seq == replica.seq + 1 {
                    self.presence.apply_remote(&id, changes);
                    replica.seq = seq;
                    false
                } else {
                    !replica.synced || seq > replica.seq
                }
            }
            Replication::State { seq, state } => {
                self.presence.replace_node(&id, state);
                replica.seq = seq;
                replica.synced = true;
                replica.requested = None;
                false
            }
            Replication::StateRequest => !replica.synced,
        };
        // Ask again only when an answer is overdue.
        let retry = self.timing.heartbeat * 2;
        if ask && replica.requested.is_none_or(|at| now.duration_since(at) >= retry) {
            replica.synced = false;
            replica.requested = Some(now);
            self.publish.send(self.shared.origin.state_request(&node), false);
        }
        if answer {
            self.send_changes();
            self.send_state(&node);
        }
    }

    /// Takes the nodes not heard from for the down period for gone: their entries leave.
    fn check_replicas(&mut self, now: Instant) {
        let down_after = self.timing.down_after;
        let (presence, shared) = (&self.presence, &self.shared);
        self.replicas.retain(|node, replica| {
            let silent = now.duration_since(replica.last_seen);
            if silent < down_after {
                return true;
            }
            log::warn!("cluster: node {node:?} is down (nothing heard for {silent:.1?}); its presences leave");
            presence.remove_node(&NodeId(node.clone()));
            shared.set_live(node, false);
            false
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::losses::Losses;
    use crate::cluster::publisher::Outgoing;
    use crate::cluster::wire::{Kind, Origin};
    use crate::presence::remote::TopicEntries;
    use crate::pubsub::PubSub;
    use crate::stats::Stats;
    use crate::subscriber_id::SubscriberId;
    use serde_json::{Map, Value, json};

    /// Node "me", replicating into a queue the test reads.
    fn replicator() -> (Replicator, QueueReceiver<Outgoing>) {
        let stats = Arc::new(Stats::default());
        let pubsub = PubSub::new(4, 1, stats.clone(), None, 100, Arc::from("me"));
        let presence = Presence::start(
            pubsub,
            Duration::from_millis(5),
            crate::presence::Hooks::default(),
            crate::telemetry::Telemetry::default(),
            NodeId("me".into()),
        )
        .unwrap();
        let origin = Origin { node: "me".into(), incarnation: 7 };
        let shared = Arc::new(Shared::new(origin, "phx:test".into(), stats.clone()));
        let (publish, sent) = Publish::detached(Arc::new(Losses::new(stats)));
        let replicator = Replicator {
            shared,
            feed: presence.feed(100),
            presence,
            publish,
            timing: Timing::new(Duration::from_secs(3)),
            seq: 0,
            replicas: HashMap::new(),
            next_heartbeat: Instant::now(),
        };
        (replicator, sent)
    }

    /// What the replicator published since the last call: (kind, target, message).
    fn sent(queue: &QueueReceiver<Outgoing>) -> Vec<(Kind, String, Replication)> {
        std::iter::from_fn(|| queue.try_recv())
            .map(|out| {
                let envelope = Envelope::decode(out.bytes()).unwrap();
                let (kind, target) = (envelope.kind, envelope.target.to_owned());
                (kind, target, envelope.replication().unwrap())
            })
            .collect()
    }

    fn state(key: &str, phx_ref: &str) -> Replication {
        let meta: Map<String, Value> = json!({"phx_ref": phx_ref}).as_object().cloned().unwrap();
        Replication::State {
            seq: 1,
            state: vec![TopicEntries { topic: "t".into(), entries: vec![(key.into(), meta)] }],
        }
    }

    fn keys(replicator: &Replicator) -> Vec<String> {
        replicator.presence.list("t").as_object().unwrap().keys().cloned().collect()
    }

    #[test]
    fn an_unknown_node_is_asked_for_its_state_once_until_the_answer_is_overdue() {
        let (mut r, queue) = replicator();
        r.remote("b".into(), 1, Replication::Heartbeat { seq: 3 });
        assert_eq!(sent(&queue), [(Kind::StateRequest, "b".into(), Replication::StateRequest)]);
        r.remote("b".into(), 1, Replication::Heartbeat { seq: 3 });
        assert!(sent(&queue).is_empty(), "asked already");
        r.replicas.get_mut("b").unwrap().requested = Some(Instant::now() - r.timing.heartbeat * 2);
        r.remote("b".into(), 1, Replication::Heartbeat { seq: 3 });
        assert_eq!(sent(&queue).len(), 1, "asked again once the answer is overdue");
        r.presence.stop();
    }

    #[test]
    fn deltas_apply_in_order_only_and_a_gap_asks_for_the_state() {
        let (mut r, queue) = replicator();
        r.remote("b".into(), 1, state("alice", "A"));
        assert_eq!(keys(&r), ["alice"]);
        let join = |key: &str, phx_ref: &str| Change::Join {
            topic: "t".into(),
            key: key.into(),
            meta: json!({"phx_ref": phx_ref}).as_object().cloned().unwrap(),
        };
        r.remote("b".into(), 1, Replication::Delta { seq: 2, changes: vec![join("bob", "B")] });
        r.remote("b".into(), 1, Replication::Heartbeat { seq: 2 });
        assert_eq!(keys(&r), ["alice", "bob"]);
        assert!(sent(&queue).is_empty(), "in step");
        r.remote("b".into(), 1, Replication::Delta { seq: 4, changes: vec![join("carol", "C")] });
        assert_eq!(keys(&r), ["alice", "bob"], "a delta after a gap waits for the state");
        assert_eq!(sent(&queue), [(Kind::StateRequest, "b".into(), Replication::StateRequest)]);
        r.presence.stop();
    }

    #[test]
    fn a_new_incarnation_replaces_the_old_one_and_a_silent_node_is_taken_for_gone() {
        let (mut r, queue) = replicator();
        r.remote("b".into(), 1, state("alice", "A"));
        r.remote("b".into(), 2, Replication::Heartbeat { seq: 0 });
        assert!(keys(&r).is_empty(), "the old run's entries left");
        assert_eq!(sent(&queue).len(), 1, "the new run is asked for its state");
        r.remote("b".into(), 2, state("bob", "B"));
        assert_eq!(keys(&r), ["bob"]);
        r.check_replicas(Instant::now() + Duration::from_secs(2));
        assert_eq!(keys(&r), ["bob"], "not silent long enough");
        r.check_replicas(Instant::now() + Duration::from_secs(3));
        assert!(keys(&r).is_empty() && r.replicas.is_empty(), "gone after the down period");
        r.presence.stop();
    }

    #[test]
    fn a_state_request_is_answered_for_the_asker_with_this_nodes_entries() {
        let (mut r, queue) = replicator();
        let phx_ref = r.presence.track(SubscriberId(1), "t", "me-user", json!({})).unwrap();
        r.send_changes();
        let delta = sent(&queue);
        assert!(matches!(&delta[..], [(Kind::Delta, target, Replication::Delta { seq: 1, .. })] if target.is_empty()));
        r.remote("b".into(), 1, Replication::StateRequest);
        let out = sent(&queue);
        assert_eq!(out[0], (Kind::StateRequest, "b".into(), Replication::StateRequest), "b is new here: ask it");
        let (kind, target, Replication::State { seq, state }) = &out[1] else { panic!("{out:?}") };
        assert_eq!((*kind, target.as_str(), *seq), (Kind::State, "b", 1));
        assert_eq!(state[0].entries[0].1["phx_ref"], phx_ref);
        r.presence.stop();
    }
}
