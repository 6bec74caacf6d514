//! Receiving: one thread per node reads the cluster's Redis channel on a connection of
//! its own and only sorts what arrives, so that it keeps up with Redis (which
//! disconnects subscribers that read slowly). Broadcasts go to the delivery thread and
//! presence messages to the replication thread, each through a bounded queue, and
//! long-poll requests and answers to the reactors' mailboxes (`long_poll.rs`); the
//! node's own messages (Redis sends them back), messages meant for another node and
//! broadcasts on topics without a subscriber here stop here.
//!
//! The node hears its own heartbeat at least once per heartbeat period, so a connection
//! that stays silent much longer than that is taken for dead and opened again.

use super::link::{Connector, POLL, Role, Shared};
use super::long_poll;
use super::losses::Losses;
use super::queue::QueueSender;
use super::replication::Event;
use super::wire::{Envelope, Kind};
use crate::pubsub::PubSub;
use crate::transport::reactor::RemoteSessions;
use crossbeam_channel::Sender;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Where the subscriber hands messages on.
pub(super) struct Routes {
    /// This node's subscriptions, to drop broadcasts nobody here wants.
    pub(super) pubsub: PubSub,
    pub(super) delivery: QueueSender<Vec<u8>>,
    pub(super) replication: QueueSender<Event>,
    pub(super) losses: Arc<Losses>,
    /// The endpoint's long-poll sessions, once its reactors run.
    pub(super) sessions: Arc<OnceLock<RemoteSessions>>,
}

/// Starts the thread; `attempted` hears once its first attempt to subscribe is over.
/// `silence`: how long the channel may stay quiet before the connection is replaced.
pub(super) fn start(
    shared: Arc<Shared>,
    client: redis::Client,
    routes: Routes,
    silence: Duration,
    attempted: Sender<()>,
) -> std::io::Result<JoinHandle<()>> {
    let connector = Connector::new(client, Role::Subscriber, shared.clone());
    std::thread::Builder::new()
        .name("phx-cluster-sub".into())
        .spawn(move || run(&shared, connector, &routes, silence, attempted))
}

fn run(shared: &Shared, mut connector: Connector, routes: &Routes, silence: Duration, attempted: Sender<()>) {
    let mut attempted = Some(attempted);
    let mut sorter = Sorter { shared, routes, warned: false };
    while !shared.stopping() {
        let Some(mut con) = connector.connect() else {
            tell(&mut attempted);
            connector.pause();
            continue;
        };
        let mut pubsub = con.as_pubsub();
        if let Err(err) = pubsub.subscribe(&shared.channel).and_then(|()| pubsub.set_read_timeout(Some(POLL))) {
            drop(pubsub);
            connector.lost(&err);
            tell(&mut attempted);
            continue;
        }
        log::debug!("cluster: subscribed to {}", shared.channel);
        let _ = routes.replication.try_send(Event::Subscribed, 0);
        tell(&mut attempted);
        let mut heard = Instant::now();
        let lost = loop {
            match pubsub.get_message() {
                Ok(msg) => {
                    heard = Instant::now();
                    sorter.sort(msg.get_payload_bytes());
                }
                Err(err) if err.is_timeout() => {
                    if shared.stopping() {
                        return;
                    }
                    if heard.elapsed() > silence {
                        break format!("nothing heard for {:.1?}", heard.elapsed());
                    }
                }
                Err(err) => break err.to_string(),
            }
        };
        drop(pubsub);
        connector.lost(&lost);
    }
}

/// Tells `start` that the first attempt to subscribe is over, once.
fn tell(attempted: &mut Option<Sender<()>>) {
    if let Some(attempted) = attempted.take() {
        let _ = attempted.send(());
    }
}

/// Sends each message where it goes.
struct Sorter<'a> {
    shared: &'a Shared,
    routes: &'a Routes,
    /// Whether another process using this node's name was reported.
    warned: bool,
}

impl Sorter<'_> {
    fn sort(&mut self, bytes: &[u8]) {
        let envelope = match Envelope::decode(bytes) {
            Ok(envelope) => envelope,
            Err(err) => {
                log::warn!("cluster: ignoring a message on {}: {err}", self.shared.channel);
                return;
            }
        };
        let me = &self.shared.origin;
        if envelope.origin == me.node {
            if envelope.incarnation != me.incarnation && !self.warned {
                self.warned = true;
                log::error!("cluster: another process uses this node's name {:?}; node names must be unique", me.node);
            }
            return;
        }
        if !envelope.target.is_empty() && envelope.target != me.node {
            return;
        }
        match envelope.kind {
            Kind::Broadcast => {
                // Every node hears every broadcast: one on a topic nobody here subscribes
                // to stops here, without waking the delivery thread.
                if envelope.topic().is_ok_and(|topic| self.routes.pubsub.subscriber_count(topic) == 0) {
                    return;
                }
                if self.routes.delivery.try_send(bytes.to_vec(), bytes.len()).is_err() {
                    self.routes.losses.lost(1, "this node's delivery queue is full");
                }
            }
            Kind::LongPollRequest | Kind::LongPollAnswer => {
                long_poll::receive(&self.routes.sessions, me.incarnation, envelope);
            }
            Kind::Heartbeat | Kind::Delta | Kind::State | Kind::StateRequest => {
                // A presence message that does not fit is repaired by a later state transfer.
                let _ = self.routes.replication.try_send(Event::Remote(bytes.to_vec()), bytes.len());
            }
        }
    }
}
