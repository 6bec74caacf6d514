//! Delivering the other nodes' broadcasts here: one thread per node takes them from
//! the subscriber's queue, in the order they arrived, and fans each out locally
//! (`PubSub::deliver_remote`: the fastlane encodes it once per wire format here too).

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

/// Delivers one broadcast (a whole wire message) here.
fn deliver(pubsub: &PubSub, shared: &Shared, bytes: &[u8]) -> Result<(), WireError> {
    let broadcast = Envelope::decode(bytes)?.broadcast()?;
    stats::incr(shared.stats.cluster_broadcasts_received());
    pubsub.deliver_remote(broadcast);
    Ok(())
}
