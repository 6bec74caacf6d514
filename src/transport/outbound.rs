//! A connection's outbound queue: the one FIFO through which channel threads, async
//! replies and the broadcast fan-out hand frames to the connection's reactor.
//!
//! Everything one channel thread sends goes through here in order, control notices
//! included, so the reactor sees a channel's frames, its close notice
//! and its exit in the order they happened. The queue is bounded in frames and bytes; a
//! producer that finds it full marks the connection as a slow consumer and the reactor
//! closes it. Control notices are never refused: they are few (one or two per channel).
//!
//! A frame can skip the reactor when it has nothing to do for the connection: the
//! queue is empty and the reactor has no bytes of its own waiting, so the producing
//! thread writes the frame to the socket itself, under the queue's lock. This saves a
//! reactor wake-up per frame. Every socket write, the reactor's included, happens while
//! this lock says the writer owns the socket, so frames never interleave and keep their
//! order. A channel's own pushes and replies always may; a broadcast may when its
//! topic's pacer says so (`pubsub/pacer.rs`), since under load the reactor's batched
//! writes cost less.

use super::mailbox::{ConnKey, Mailbox, Recipient};
use super::permessage_deflate::PerMessageDeflate;
use super::write_queue::{WriteQueue, Written};
use crate::serializer::Frame;
use crate::stats::{self, Stats};
use crate::subscriber_id::SubscriberId;
use bytes::Bytes;
use mio::net::TcpStream;
use parking_lot::Mutex;
use std::collections::HashSet;
use std::io::{self, Write};
use std::sync::Arc;

/// One item for the reactor.
pub(crate) enum OutItem {
    /// A frame to write. `from` names the channel instance that sent it, so the frames of
    /// a channel replaced by a duplicate join can be discarded; fastlane frames have none.
    Frame { from: Option<SubscriberId>, frame: Frame },
    /// The join reply: the channel is joined (or, if not `joined`, gone).
    JoinResult { instance: SubscriberId, frame: Frame, joined: bool },
    /// The channel is stopping gracefully: write `phx_close` and forget the topic.
    Closing { instance: SubscriberId },
    /// The channel thread's last word. If the topic still names this instance, the stop
    /// was abnormal (`crashed`: write `phx_error`) or the connection is going away.
    Exited { instance: SubscriberId, crashed: bool },
    /// A `disconnect` broadcast on the socket id: close with 1001.
    Disconnect,
}

/// Bounds of one connection's queue of unwritten frames.
///
/// Start from the defaults and change what you need:
///
/// ```
/// use phx_channels::{OutboundLimits, UserSocket};
///
/// let limits = OutboundLimits::default().max_frames(1_000).max_bytes(256 * 1024);
/// assert_eq!((limits.max_frames, limits.max_bytes), (1_000, 256 * 1024));
/// let socket = UserSocket::new().outbound_limits(limits);
/// # drop(socket);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutboundLimits {
    /// Most frames waiting to be written.
    pub max_frames: usize,
    /// Most bytes waiting to be written.
    pub max_bytes: usize,
}

impl Default for OutboundLimits {
    /// 10,000 frames, 4 MiB.
    fn default() -> Self {
        OutboundLimits { max_frames: 10_000, max_bytes: 4 * 1024 * 1024 }
    }
}

impl OutboundLimits {
    /// Sets the most frames waiting to be written.
    #[must_use]
    pub fn max_frames(mut self, frames: usize) -> Self {
        self.max_frames = frames;
        self
    }

    /// Sets the most bytes waiting to be written.
    #[must_use]
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes;
        self
    }
}

/// Whether the producing thread may write a frame to the socket itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// Write it now if the reactor is idle for the connection; queue it otherwise.
    WriteIfIdle,
    /// Queue it for the reactor.
    Queue,
}

/// What became of a frame that was accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// The producing thread wrote all of it to the socket.
    Written,
    /// It waits for the reactor (or was dropped for a killed instance).
    Queued,
}

/// Why a frame was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The connection is closed or closing.
    Closed,
    /// The queue was full: the connection is now closing as a slow consumer.
    Full,
}

pub(crate) struct Outbound {
    recipient: Recipient,
    mailbox: Arc<Mailbox>,
    limits: OutboundLimits,
    stats: Arc<Stats>,
    /// permessage-deflate, if the connection negotiated it: frames worth compressing
    /// are compressed here, by the producer, before they are queued.
    deflate: Option<PerMessageDeflate>,
    state: Mutex<State>,
}

struct State {
    items: Vec<OutItem>,
    /// Frames and bytes queued here or taken by the reactor but not yet written.
    frames: usize,
    bytes: usize,
    scheduled: bool,
    closed: bool,
    overflowed: bool,
    /// The socket, for direct writes; gone once the connection closes.
    stream: Option<Arc<TcpStream>>,
    /// The reactor has nothing queued or taken for this connection, so a producer may
    /// write to the socket directly.
    reactor_idle: bool,
    /// The rest of a frame a producer wrote only in part. It goes to the front of the
    /// reactor's write queue, ahead of everything, and is never dropped.
    unfinished: Option<Bytes>,
    /// Channel instances replaced by a duplicate join: their frames are dropped (5.12).
    killed: HashSet<SubscriberId>,
}

/// What the reactor takes from the queue in one go.
pub(crate) struct Taken {
    pub(crate) overflowed: bool,
    /// The rest of a frame a producer wrote in part: to be written before anything else.
    pub(crate) unfinished: Option<Bytes>,
}

impl Outbound {
    pub(crate) fn new(
        key: ConnKey,
        mailbox: Arc<Mailbox>,
        limits: OutboundLimits,
        stats: Arc<Stats>,
        stream: Option<Arc<TcpStream>>,
        deflate: Option<PerMessageDeflate>,
    ) -> Self {
        Outbound::with_recipient(Recipient::Conn(key), mailbox, limits, stats, stream, deflate)
    }

    /// The queue of long-poll session `serial`: there is no socket to write to, so
    /// every item waits for the reactor.
    pub(crate) fn for_session(serial: u64, mailbox: Arc<Mailbox>, limits: OutboundLimits, stats: Arc<Stats>) -> Self {
        Outbound::with_recipient(Recipient::Session(serial), mailbox, limits, stats, None, None)
    }

    fn with_recipient(
        recipient: Recipient,
        mailbox: Arc<Mailbox>,
        limits: OutboundLimits,
        stats: Arc<Stats>,
        stream: Option<Arc<TcpStream>>,
        deflate: Option<PerMessageDeflate>,
    ) -> Self {
        let state = State {
            items: Vec::new(),
            frames: 0,
            bytes: 0,
            scheduled: false,
            closed: false,
            overflowed: false,
            stream,
            reactor_idle: false,
            unfinished: None,
            killed: HashSet::new(),
        };
        Outbound { recipient, mailbox, limits, stats, deflate, state: Mutex::new(state) }
    }

    /// permessage-deflate, if the connection negotiated it.
    pub(crate) fn deflate(&self) -> Option<&PerMessageDeflate> {
        self.deflate.as_ref()
    }

    /// `frame` as it goes to this connection: compressed when the connection negotiated
    /// it and the frame is worth it. Every push does this; a frame already through it is
    /// left as it is.
    pub(crate) fn for_wire(&self, frame: &Frame) -> Frame {
        match &self.deflate {
            Some(deflate) if deflate.wants(frame) => {
                stats::incr(self.stats.frames_deflated());
                frame.deflated()
            }
            _ => frame.clone(),
        }
    }

    /// Writes a frame directly when `delivery` allows it and the reactor is idle for this
    /// connection, and queues it (within the limits) otherwise. Frames of a killed
    /// instance are dropped.
    pub(crate) fn push_frame(
        &self,
        from: Option<SubscriberId>,
        frame: Frame,
        delivery: Delivery,
    ) -> Result<Pushed, Refused> {
        self.push_frames(from, std::slice::from_ref(&frame), delivery)
    }

    /// [`push_frame`](Outbound::push_frame) for several frames of one sender, in order:
    /// one look at the queue, and at most one write for all of them.
    pub(crate) fn push_frames(
        &self,
        from: Option<SubscriberId>,
        frames: &[Frame],
        delivery: Delivery,
    ) -> Result<Pushed, Refused> {
        let deflated: Vec<Frame>;
        let frames = match &self.deflate {
            Some(deflate) if frames.iter().any(|frame| deflate.wants(frame)) => {
                deflated = frames.iter().map(|frame| self.for_wire(frame)).collect();
                &deflated[..]
            }
            _ => frames,
        };
        let mut state = self.state.lock();
        if state.closed {
            return Err(Refused::Closed);
        }
        if from.is_some_and(|instance| state.killed.contains(&instance)) {
            return Ok(Pushed::Queued);
        }
        if let (Some(stream), Delivery::WriteIfIdle) = (&state.stream, delivery)
            && state.reactor_idle
            && state.items.is_empty()
        {
            let bytes = joined(frames);
            match (&**stream).write(&bytes) {
                Ok(n) if n == bytes.len() => {
                    stats::add(self.stats.bytes_out(), n as u64);
                    stats::add(self.stats.frames_out(), frames.len() as u64);
                    return Ok(Pushed::Written);
                }
                Ok(n) => {
                    // The frames are on the wire in part: their rest must follow before
                    // any other byte, whatever the limits or the fate of their channel.
                    stats::add(self.stats.bytes_out(), n as u64);
                    state.unfinished = Some(bytes.slice(n..));
                    state.reactor_idle = false;
                    self.schedule(state);
                    return Ok(Pushed::Queued);
                }
                // WouldBlock, or an error the reactor meets again and handles on its flush.
                Err(_) => {}
            }
        }
        state.reactor_idle = false;
        let bytes: usize = frames.iter().map(Frame::len).sum();
        if state.frames + frames.len() > self.limits.max_frames || state.bytes + bytes > self.limits.max_bytes {
            state.closed = true;
            state.overflowed = true;
            self.schedule(state);
            return Err(Refused::Full);
        }
        state.frames += frames.len();
        state.bytes += bytes;
        state.items.extend(frames.iter().map(|frame| OutItem::Frame { from, frame: frame.clone() }));
        self.schedule(state);
        Ok(Pushed::Queued)
    }

    /// Queues a control notice (or a join reply); refused only once the connection is closed.
    pub(crate) fn push_control(&self, mut item: OutItem) -> Result<(), Refused> {
        if let OutItem::JoinResult { frame, .. } = &mut item {
            *frame = self.for_wire(frame);
        }
        let mut state = self.state.lock();
        if state.closed {
            return Err(Refused::Closed);
        }
        if let OutItem::JoinResult { frame, .. } = &item {
            state.frames += 1;
            state.bytes += frame.len();
        }
        state.items.push(item);
        self.schedule(state);
        Ok(())
    }

    /// Wakes the reactor unless it is already due to look at this connection.
    fn schedule(&self, mut state: parking_lot::MutexGuard<'_, State>) {
        if !state.scheduled {
            state.scheduled = true;
            drop(state);
            self.mailbox.ready(self.recipient);
        }
    }

    /// Reactor side: moves the queued items into `into`. The reactor now has work for
    /// the connection, so producers queue until it is idle again.
    pub(crate) fn take(&self, into: &mut Vec<OutItem>) -> Taken {
        let mut state = self.state.lock();
        state.scheduled = false;
        if !state.items.is_empty() {
            state.reactor_idle = false;
        }
        into.append(&mut state.items);
        Taken { overflowed: state.overflowed, unfinished: state.unfinished.take() }
    }

    /// Reactor side: it takes the socket to write; producers must queue until it
    /// releases it. Returns the rest of a frame a producer wrote in part, which must be
    /// written first.
    pub(super) fn claim(&self) -> Option<Bytes> {
        let mut state = self.state.lock();
        state.reactor_idle = false;
        state.unfinished.take()
    }

    /// Reactor side: writes its write queue for the connection to the socket, the rest
    /// of a frame a producer wrote in part first. The lock is held from before the write
    /// until the counters have dropped by what the socket took: the client may read those
    /// bytes as soon as the socket has them, and a producer that comes next must not find
    /// them still counted, or a client that keeps up could be closed as a slow consumer.
    /// Once the write queue is empty, producers may write directly again.
    pub(super) fn flush(
        &self,
        writes: &mut WriteQueue,
        write: impl FnOnce(&mut WriteQueue) -> io::Result<Written>,
    ) -> io::Result<Written> {
        let mut state = self.state.lock();
        if let Some(rest) = state.unfinished.take() {
            writes.push_front_rest(rest);
        }
        let result = write(writes);
        if let Ok(written) = &result {
            state.frames = state.frames.saturating_sub(written.counted_frames);
            state.bytes = state.bytes.saturating_sub(written.counted_bytes);
        }
        state.reactor_idle = writes.is_empty() && state.items.is_empty();
        result
    }

    /// A duplicate join replaced `instance`: drop its frames from now on.
    /// Frames it already queued are dropped here too, so the reactor never has to ask.
    pub(crate) fn kill(&self, instance: SubscriberId) {
        let mut state = self.state.lock();
        state.killed.insert(instance);
        let (mut frames, mut bytes) = (0, 0);
        state.items.retain(|item| match item {
            OutItem::Frame { from: Some(from), frame } if *from == instance => {
                frames += 1;
                bytes += frame.len();
                false
            }
            _ => true,
        });
        state.frames -= frames;
        state.bytes -= bytes;
    }

    /// `instance` has exited: forget it.
    pub(crate) fn forget(&self, instance: SubscriberId) {
        self.state.lock().killed.remove(&instance);
    }

    /// Reactor side: `frames` frames of `bytes` bytes were written (or dropped).
    pub(crate) fn written(&self, frames: usize, bytes: usize) {
        let mut state = self.state.lock();
        state.frames = state.frames.saturating_sub(frames);
        state.bytes = state.bytes.saturating_sub(bytes);
    }

    /// Reactor side: no more items are accepted; queued ones are dropped, and producers
    /// let go of the socket.
    pub(super) fn close(&self) {
        let mut state = self.state.lock();
        state.closed = true;
        state.items.clear();
        state.stream = None;
    }
}

/// The frames' bytes as one buffer, for one write (a lone frame is not copied).
fn joined(frames: &[Frame]) -> Bytes {
    match frames {
        [frame] => frame.as_bytes().clone(),
        frames => frames.iter().flat_map(|frame| frame.as_bytes().iter().copied()).collect::<Vec<u8>>().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;
    use crate::serializer::Serializer;

    fn frame() -> Frame {
        Serializer::V2.encode_push(&Message::new("t", "e", serde_json::json!({}))).unwrap()
    }

    /// A socket that takes everything and checks, at the moment it takes bytes, that no
    /// producer could look at the counters: they must not be seen before they drop.
    struct Socket<'a> {
        outbound: &'a Outbound,
        data: Vec<u8>,
    }

    impl Write for Socket<'_> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[io::IoSlice::new(buf)])
        }

        fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
            assert!(self.outbound.state.try_lock().is_none(), "a producer could see bytes on the wire still counted");
            let before = self.data.len();
            bufs.iter().for_each(|buf| self.data.extend_from_slice(buf));
            Ok(self.data.len() - before)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// An outbound queue without a socket, and the poll its reactor would wait on.
    fn outbound(limits: OutboundLimits) -> (Outbound, mio::Poll) {
        let poll = mio::Poll::new().unwrap();
        let mailbox = Arc::new(Mailbox::new(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap()));
        let key = ConnKey { slot: 0, serial: 0 };
        (Outbound::new(key, mailbox, limits, Arc::new(Stats::default()), None, None), poll)
    }

    #[test]
    fn a_client_that_read_a_full_queue_can_be_sent_a_full_queue_again() {
        let len = frame().len();
        let (outbound, _poll) = outbound(OutboundLimits { max_frames: 2, max_bytes: 2 * len });
        let mut writes = WriteQueue::default();
        let mut items = Vec::new();
        for round in 0..3 {
            for _ in 0..2 {
                assert_eq!(
                    outbound.push_frame(Some(SubscriberId(1)), frame(), Delivery::Queue),
                    Ok(Pushed::Queued),
                    "round {round}"
                );
            }
            outbound.take(&mut items);
            for item in items.drain(..) {
                let OutItem::Frame { frame, .. } = item else { panic!("only frames were queued") };
                writes.push_counted(frame.as_bytes().clone());
            }
            let mut socket = Socket { outbound: &outbound, data: Vec::new() };
            let written = outbound.flush(&mut writes, |writes| writes.flush(&mut socket)).unwrap();
            assert_eq!((written.counted_frames, socket.data.len()), (2, 2 * len));
            let state = outbound.state.lock();
            assert_eq!((state.frames, state.bytes), (0, 0), "nothing waits once the socket took it all");
        }
    }

    #[test]
    fn several_frames_are_queued_and_counted_against_the_limits_together() {
        let len = frame().len();
        let (outbound, _poll) = outbound(OutboundLimits { max_frames: 4, max_bytes: usize::MAX });
        let frames = [frame(), frame(), frame()];
        assert_eq!(outbound.push_frames(Some(SubscriberId(1)), &frames, Delivery::WriteIfIdle), Ok(Pushed::Queued));
        let counted = |outbound: &Outbound| {
            let state = outbound.state.lock();
            (state.frames, state.bytes)
        };
        assert_eq!(counted(&outbound), (3, 3 * len));
        // Two more would make five: the whole batch is refused and the connection closes.
        let two = [frame(), frame()];
        assert_eq!(outbound.push_frames(Some(SubscriberId(1)), &two, Delivery::Queue), Err(Refused::Full));
        let mut items = Vec::new();
        assert!(outbound.take(&mut items).overflowed);
        assert_eq!(items.len(), 3);
        assert_eq!(joined(&frames).len(), 3 * len, "one buffer for one write");
    }

    #[test]
    fn killing_an_instance_drops_its_queued_frames_and_their_count() {
        let (outbound, _poll) = outbound(OutboundLimits { max_frames: 3, max_bytes: usize::MAX });
        let queue = |from| outbound.push_frame(from, frame(), Delivery::Queue).unwrap();
        queue(Some(SubscriberId(1)));
        queue(Some(SubscriberId(2)));
        queue(None);
        outbound.kill(SubscriberId(1));
        // The dropped frame no longer counts against the limit, and later ones are dropped.
        queue(Some(SubscriberId(2)));
        queue(Some(SubscriberId(1)));
        let mut items = Vec::new();
        outbound.take(&mut items);
        let senders: Vec<Option<SubscriberId>> = items
            .iter()
            .map(|item| match item {
                OutItem::Frame { from, .. } => *from,
                _ => panic!("only frames were queued"),
            })
            .collect();
        assert_eq!(senders, [Some(SubscriberId(2)), None, Some(SubscriberId(2))]);
    }
}
