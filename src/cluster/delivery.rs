//! Delivering the other nodes' broadcasts here: one thread per node takes them from
//! the subscriber's queue, in the order they arrived, and fans each out locally
//! (`PubSub::deliver_remote`: the fastlane encodes it once per wire format here too).
//! A broadcast on a topic nobody here subscribes to is dropped before its payload is
//! parsed: every node receives every broadcast of the cluster (ARCHITECTURE.md).

use super::link::{POLL, Shared};
use super::queue::QueueReceiver;
use super::wire::{Envelope, WireError};
use crate::pubsub::PubSub;
use crate::stats;
use crossbeam_channel::RecvTimeoutError;
use std::sync::Arc;
use std::thread::JoinHandle;

/// Starts the thread that delivers the broadcasts arriving on `queue` (whole wire messages).
pub(super) fn start(
    shared: Arc<Shared>,
    pubsub: PubSub,
    queue: QueueReceiver<Vec<u8>>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("phx-cluster-deliver".into()).spawn(move || {
        while !shared.stopping() {
            match queue.recv_timeout(POLL) {
                Ok(bytes) => {
                    if let Err(err) = deliver(&pubsub, &shared, &bytes) {
                        log::warn!("cluster: ignoring a broadcast: {err}");
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    })
}

/// Delivers one broadcast (a whole wire message) here, if anyone here subscribes.
fn deliver(pubsub: &PubSub, shared: &Shared, bytes: &[u8]) -> Result<(), WireError> {
    let envelope = Envelope::decode(bytes)?;
    if pubsub.subscriber_count(envelope.topic()?) == 0 {
        return Ok(());
    }
    stats::incr(shared.stats.cluster_broadcasts_received());
    pubsub.deliver_remote(envelope.broadcast()?);
    Ok(())
}
