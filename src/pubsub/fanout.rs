//! The fastlane's second step, after the registry's lock is released: the same frame
//! to every subscriber connection, written by the publisher or queued for the
//! reactors, as the topic's pacer decides.

use super::pacer::Pacer;
use crate::inbox::Inbox;
use crate::serializer::Frame;
use crate::stats::{self, Stats};
use crate::transport::outbound::{Delivery, Outbound, Pushed, Refused};
use std::sync::Arc;

/// How many direct writes a publisher makes between looks at its own mailbox: once it
/// has messages waiting, it hands the rest of the fan-out to the reactors.
const MAILBOX_CHECK_EVERY: usize = 64;

/// A direct fan-out to more subscribers than this is shared with the reactors when the
/// process has more than one core: they write their part in parallel.
const SHARE_ABOVE: usize = 256;

/// One broadcast's fastlane deliveries, collected under the registry's lock.
pub(super) struct FanOut {
    pacer: Arc<Pacer>,
    deliveries: Vec<(Arc<Outbound>, Frame)>,
}

impl FanOut {
    pub(super) fn new(pacer: Arc<Pacer>) -> Self {
        FanOut { pacer, deliveries: Vec::new() }
    }

    pub(super) fn add(&mut self, outbound: Arc<Outbound>, frame: Frame) {
        self.deliveries.push((outbound, frame));
    }

    /// Delivers every frame. `started` is when the broadcast began, on the clock `now`
    /// reads; `writers` is how many threads can write in parallel.
    pub(super) fn run(
        self,
        started: u64,
        now: impl Fn() -> u64,
        writers: usize,
        publisher: Option<&Inbox>,
        stats: &Stats,
    ) {
        let FanOut { pacer, mut deliveries } = self;
        let mut fastlane = 0;
        if deliveries.is_empty() || !pacer.try_direct(started) {
            for (outbound, frame) in deliveries {
                fastlane += deliver(&outbound, frame, Delivery::Queue, stats);
            }
            pacer.end_queued(now());
        } else {
            // The reactors' share is queued first, so that they write while we do.
            let planned = match deliveries.len() {
                total if total > SHARE_ABOVE => total.div_ceil(writers),
                total => total,
            };
            for (outbound, frame) in deliveries.drain(planned..) {
                fastlane += deliver(&outbound, frame, Delivery::Queue, stats);
            }
            let mut written = planned;
            for (i, (outbound, frame)) in deliveries.into_iter().enumerate() {
                if written == planned
                    && i % MAILBOX_CHECK_EVERY == MAILBOX_CHECK_EVERY - 1
                    && publisher.is_some_and(Inbox::has_mail)
                {
                    written = i;
                }
                let delivery = if i < written { Delivery::WriteIfIdle } else { Delivery::Queue };
                fastlane += deliver(&outbound, frame, delivery, stats);
            }
            pacer.end_direct(started, now(), written, planned);
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
