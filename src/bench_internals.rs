//! Internals exposed for the fan-out benchmark only (feature `bench-internals`, off by
//! default): the registry with many subscriber connections, without any network.

use crate::inbox::Inbox;
use crate::message::Broadcast;
use crate::pubsub::{ChannelSubscriber, PubSub, Reach};
use crate::serializer::Serializer;
use crate::stats::Stats;
use crate::transport::mailbox::{ConnKey, Mailbox};
use crate::transport::outbound::{OutItem, Outbound, OutboundLimits};
use std::sync::Arc;

/// A topic with `subscribers` channel subscribers, each on a connection of its own (an
/// outbound queue nobody writes to a socket), alternating V1 and V2.
pub struct FanoutFixture {
    pubsub: PubSub,
    outbounds: Vec<Arc<Outbound>>,
    _poll: mio::Poll,
}

impl std::fmt::Debug for FanoutFixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FanoutFixture").field("subscribers", &self.outbounds.len()).finish_non_exhaustive()
    }
}

impl FanoutFixture {
    /// Builds the topic `bench` with its subscribers.
    pub fn new(subscribers: usize) -> std::io::Result<FanoutFixture> {
        let poll = mio::Poll::new()?;
        let mailbox = Arc::new(Mailbox::new(mio::Waker::new(poll.registry(), mio::Token(0))?));
        let stats = Arc::new(Stats::default());
        let pubsub = PubSub::new(64, 1, stats.clone(), None, 16, Arc::from("bench"));
        let limits = OutboundLimits { max_frames: usize::MAX, max_bytes: usize::MAX };
        let outbounds: Vec<Arc<Outbound>> = (0..subscribers)
            .map(|slot| {
                let key = ConnKey { slot, serial: 0 };
                Arc::new(Outbound::new(key, mailbox.clone(), limits, stats.clone(), None, None))
            })
            .collect();
        for (i, outbound) in outbounds.iter().enumerate() {
            let serializer = if i % 2 == 0 { Serializer::V1 } else { Serializer::V2 };
            let subscriber = ChannelSubscriber {
                owner: pubsub.next_id(),
                outbound: outbound.clone(),
                serializer,
                intercepts: Arc::from([]),
                inbox: Inbox::new(16).0,
            };
            pubsub.subscribe_channel("bench", subscriber, || {});
        }
        Ok(FanoutFixture { pubsub, outbounds, _poll: poll })
    }

    /// One broadcast on the topic: registry lookup, encode, enqueue on every connection.
    pub fn broadcast(&self, broadcast: Broadcast) {
        self.pubsub.send(None, broadcast, Reach::Local, None).expect("an object payload");
    }

    /// Empties every connection's queue (what a reactor would do), outside the timing.
    pub fn drain(&self) {
        let mut items: Vec<OutItem> = Vec::new();
        for outbound in &self.outbounds {
            outbound.take(&mut items);
            outbound.written(items.len(), usize::MAX / 2);
            items.clear();
        }
    }

    /// Frames encoded by the fastlane so far.
    pub fn encodes(&self) -> u64 {
        self.pubsub.stats().snapshot().broadcast_encodes
    }
}
