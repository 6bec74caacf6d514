//! The reactor's side of writing to one socket.
//!
//! A socket has one writer at a time. Other threads may write a frame straight to it
//! while the reactor has nothing of its own to write for the connection (see
//! `outbound.rs`); the reactor claims the socket before it writes and releases it once
//! its queue is empty. A frame another thread wrote only in part must be finished
//! before any other byte, so every claim puts that rest at the front of the queue.
//! This type is the only place the reactor claims and releases a socket.

use super::outbound::{OutItem, Outbound};
use super::stream::Stream;
use super::write_queue::{WriteQueue, Written};
use bytes::Bytes;
use std::io;
use std::sync::Arc;

pub(super) struct SocketWriter {
    /// Its socket is shared with the connection's outbound queue while the
    /// connection is open (plain connections only).
    stream: Stream,
    queue: WriteQueue,
    /// The queue other threads hand frames to, once the connection is open.
    outbound: Option<Arc<Outbound>>,
}

impl SocketWriter {
    pub(super) fn new(stream: Stream) -> Self {
        SocketWriter { stream, queue: WriteQueue::default(), outbound: None }
    }

    pub(super) fn stream(&mut self) -> &mut Stream {
        &mut self.stream
    }

    /// The stream, if nothing is queued to write to it and no other thread holds it.
    pub(super) fn into_stream(self) -> Option<Stream> {
        (self.queue.is_empty() && !self.stream.has_pending() && self.outbound.is_none()).then_some(self.stream)
    }

    /// The stream to read from, and the queue for what reading calls for.
    pub(super) fn parts(&mut self) -> (&mut Stream, &mut WriteQueue) {
        (&mut self.stream, &mut self.queue)
    }

    /// The queue where the connection's own frames go, in order.
    pub(super) fn queue(&mut self) -> &mut WriteQueue {
        &mut self.queue
    }

    /// The connection is open: other threads write through `outbound` from now on.
    pub(super) fn attach(&mut self, outbound: Arc<Outbound>) {
        self.outbound = Some(outbound);
    }

    /// The rest of a frame another thread wrote in part goes first.
    fn put_first(&mut self, rest: Option<Bytes>) {
        if let Some(rest) = rest {
            self.queue.push_front_rest(rest);
        }
    }

    /// Moves what other threads queued into `items`; returns whether the outbound
    /// queue overflowed (a slow consumer).
    pub(super) fn take_outbound(&mut self, items: &mut Vec<OutItem>) -> bool {
        let Some(outbound) = &self.outbound else { return false };
        let taken = outbound.take(items);
        self.put_first(taken.unfinished);
        taken.overflowed
    }

    /// Writes as much as the socket takes. While the connection is open the write holds
    /// the outbound queue's lock until the counters have dropped by what the socket
    /// took (see `Outbound::flush`), so no producer finds bytes the client has read
    /// still counted; producers may write directly again once both queues are empty.
    pub(super) fn flush(&mut self) -> io::Result<Written> {
        let SocketWriter { stream, queue, outbound } = self;
        match outbound {
            Some(outbound) => outbound.flush(queue, |queue| stream.write_queue(queue)),
            None => stream.write_queue(queue),
        }
    }

    /// Drops every queued frame not yet begun (a slow consumer's backlog).
    pub(super) fn discard_unstarted(&mut self) {
        let (frames, bytes) = self.queue.discard_unstarted();
        if let Some(outbound) = &self.outbound {
            outbound.written(frames, bytes);
        }
    }

    /// The connection is ending: the socket becomes the reactor's for good. Other
    /// threads let go of it, and their queued frames are dropped; a frame one of them
    /// began is still finished.
    pub(super) fn detach(&mut self) {
        if let Some(outbound) = self.outbound.take() {
            let rest = outbound.claim();
            self.put_first(rest);
            outbound.close();
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.queue.is_empty() && !self.stream.has_pending()
    }
}
