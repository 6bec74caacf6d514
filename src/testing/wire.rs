//! A connection in memory: the real [`Session`] driven through the transport's seam
//! (`ConnectionHandler`) with no socket. What a reactor does for a TCP connection is
//! done here on the test's thread, inside each call: apply what channel threads
//! queued on the connection's outbound queue, then decode the frames the session
//! wrote, with the connection's serializer, into what a client would receive.
//!
//! The outbound queue needs a reactor mailbox to post to; here it is a `mio::Waker`
//! on a `Poll` of the connection's own, which the test waits on for new output.

use super::received::Received;
use super::timeouts::{Timeouts, default_timeouts};
use crate::endpoint::in_memory::SessionSlot;
use crate::inbox::Inbox;
use crate::message::{Message, Ref};
use crate::protocol::session::Session;
use crate::serializer::{ClientFrame, DecodeError, RawFrame, Serializer, ServerMessage};
use crate::subscriber_id::SubscriberId;
use crate::transport::handler::{ConnectionHandler, Disconnect, Hangup};
use crate::transport::mailbox::{Mail, Mailbox};
use crate::transport::outbound::{OutItem, Outbound};
use crate::transport::write_queue::WriteQueue;
use mio::{Events, Poll};
use parking_lot::Mutex;
use std::collections::HashSet;
use std::io::Cursor;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Data, OpCode};

/// The wire format of test connections: the official client's.
pub(super) const SERIALIZER: Serializer = Serializer::V2;

/// A channel instance whose join succeeded: its id and mailbox.
pub(super) struct Joined {
    pub(super) instance: SubscriberId,
    pub(super) inbox: Inbox,
}

/// The test's side of an in-memory connection.
pub(super) struct Wire {
    session: SessionSlot,
    outbound: Arc<Outbound>,
    mailbox: Arc<Mailbox>,
    /// Woken by the mailbox whenever output is queued.
    poll: Mutex<Poll>,
    state: Mutex<State>,
    refs: AtomicU64,
    timeouts: Mutex<Timeouts>,
}

#[derive(Default)]
struct State {
    out: WriteQueue,
    bytes: Vec<u8>,
    items: Vec<OutItem>,
    received: Received,
    /// Successful joins not yet claimed, with the join's ref.
    joins: Vec<(Ref, Joined)>,
    /// Channel instances that have not exited.
    live: HashSet<SubscriberId>,
    /// Why the connection closed, when it was closed for cause.
    closed: Option<&'static str>,
}

impl Wire {
    pub(super) fn new(session: SessionSlot, outbound: Arc<Outbound>, mailbox: Arc<Mailbox>, poll: Poll) -> Wire {
        Wire {
            session,
            outbound,
            mailbox,
            poll: Mutex::new(poll),
            state: Mutex::new(State::default()),
            refs: AtomicU64::new(0),
            timeouts: Mutex::new(default_timeouts()),
        }
    }

    pub(super) fn timeouts(&self) -> Timeouts {
        *self.timeouts.lock()
    }

    pub(super) fn set_timeouts(&self, timeouts: Timeouts) {
        *self.timeouts.lock() = timeouts;
    }

    /// A fresh ref, as a client makes them.
    pub(super) fn next_ref(&self) -> Ref {
        Ref::from((self.refs.fetch_add(1, Ordering::Relaxed) + 1).to_string())
    }

    /// Sends `msg` as the client would: encoded, then handed to the session.
    pub(super) fn send(&self, msg: &Message) {
        let frame = SERIALIZER.encode_client(msg).expect("a test message encodes");
        let mut state = self.state.lock();
        let received = {
            let mut slot = self.session.lock();
            let Some(session) = slot.as_mut() else { return };
            let raw = match &frame {
                ClientFrame::Text(text) => RawFrame::Text(text.as_bytes()),
                ClientFrame::Binary(bytes) => RawFrame::Binary(bytes),
            };
            session.receive(raw, &mut state.out)
        };
        if let Err(why) = received {
            log::error!("the session refused a test message: {why}");
        }
        self.pump(&mut state);
    }

    /// Waits up to `within` for `take` to find what it looks for in what arrived (not
    /// past the connection's end).
    pub(super) fn wait<T>(&self, within: Duration, mut take: impl FnMut(&mut Received) -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + within;
        let mut events = Events::with_capacity(4);
        loop {
            {
                let mut state = self.state.lock();
                self.pump(&mut state);
                if let Some(found) = take(&mut state.received) {
                    return Some(found);
                }
            }
            let now = Instant::now();
            // Nothing more arrives on a connection that has ended.
            if now >= deadline || self.session.lock().is_none() {
                return None;
            }
            // An interrupted wait only means one more look.
            let _ = self.poll.lock().poll(&mut events, Some(deadline - now));
        }
    }

    /// The channel the join with ref `join_ref` started, once its reply is in.
    pub(super) fn joined(&self, join_ref: &Ref) -> Option<Joined> {
        let mut state = self.state.lock();
        let at = state.joins.iter().position(|(r, _)| r == join_ref)?;
        Some(state.joins.swap_remove(at).1)
    }

    /// What arrived and was not matched, for a failure message, with the connection's end.
    pub(super) fn report(&self) -> String {
        let mut state = self.state.lock();
        self.pump(&mut state);
        let mut report = state.received.list();
        if self.session.lock().is_none() {
            let why = state.closed.unwrap_or("closed");
            report.push_str(&format!("\n  (the connection has ended: {why})"));
        }
        report
    }

    /// Whether the connection has ended, after applying what is queued for it.
    pub(super) fn is_closed(&self) -> bool {
        self.pump(&mut self.state.lock());
        self.session.lock().is_none()
    }

    /// Closes the connection as a client going away does: every channel terminates with
    /// `{shutdown, closed}`. Returns whether they all ended within `within`.
    pub(super) fn close(&self, within: Duration) -> bool {
        self.end_session();
        let deadline = Instant::now() + within;
        let mut events = Events::with_capacity(4);
        loop {
            {
                let mut state = self.state.lock();
                self.pump(&mut state);
                if state.live.is_empty() {
                    return true;
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let _ = self.poll.lock().poll(&mut events, Some(deadline - now));
        }
    }

    /// Ends the session, if it has not ended: its channels terminate.
    fn end_session(&self) {
        let session = self.session.lock().take();
        if let Some(mut session) = session {
            session.end(Hangup::Closed);
        }
    }

    /// What a reactor does when the outbound queue has items: apply them to the
    /// session, then write (here: decode) what it queued.
    fn pump(&self, state: &mut State) {
        let mut mail = Mail::default();
        self.mailbox.take(&mut mail); // re-arms the waker
        let taken = self.outbound.take(&mut state.items);
        let mut close = None;
        {
            let mut slot = self.session.lock();
            for item in state.items.drain(..) {
                match &item {
                    OutItem::JoinResult { instance, joined: true, frame } => {
                        let instance = *instance;
                        let join_ref = frames(frame.as_bytes()).next().and_then(|msg| match msg {
                            Ok(ServerMessage::Reply(reply)) => reply.msg_ref,
                            _ => None,
                        });
                        state.live.insert(instance);
                        if let Some(session) = slot.as_mut() {
                            apply(session, item, &mut state.out, &mut close);
                            if let (Some(join_ref), Some(inbox)) = (join_ref, session.inbox_of(instance)) {
                                state.joins.push((join_ref, Joined { instance, inbox }));
                            }
                        }
                        continue;
                    }
                    OutItem::Exited { instance, .. } => {
                        state.live.remove(instance);
                    }
                    _ => {}
                }
                if let Some(session) = slot.as_mut() {
                    apply(session, item, &mut state.out, &mut close);
                }
            }
        }
        if taken.overflowed {
            close = Some("slow consumer: outbound queue full (1008)");
        }
        if close.is_some() {
            self.end_session();
            state.closed = close;
        }
        self.write(state);
    }

    /// Decodes what the session queued, as the client would read it.
    fn write(&self, state: &mut State) {
        let State { out, bytes, received, .. } = state;
        match out.flush(bytes) {
            Ok(written) => self.outbound.written(written.counted_frames, written.counted_bytes),
            Err(err) => log::error!("cannot collect a test connection's frames: {err}"),
        }
        for msg in frames(bytes) {
            match msg {
                Ok(msg) => received.push(msg),
                Err(err) => log::error!("a test connection got a frame it cannot decode: {err}"),
            }
        }
        bytes.clear();
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        self.end_session();
    }
}

/// Applies one item; a `disconnect` closes the connection, as a reactor does.
fn apply(session: &mut Session, item: OutItem, out: &mut WriteQueue, close: &mut Option<&'static str>) {
    if let Err(Disconnect) = session.apply(item, out) {
        *close = Some("disconnected (1001)");
    }
}

/// The data frames in `bytes` (whole server frames, back to back), decoded.
fn frames(bytes: &[u8]) -> impl Iterator<Item = Result<ServerMessage, DecodeError>> + '_ {
    let mut cursor = Cursor::new(bytes);
    std::iter::from_fn(move || {
        loop {
            let (header, len) = FrameHeader::parse(&mut cursor).ok()??;
            let start = cursor.position() as usize;
            let payload = bytes.get(start..start + len as usize)?;
            cursor.set_position((start + payload.len()) as u64);
            let raw = match header.opcode {
                OpCode::Data(Data::Text) => RawFrame::Text(payload),
                OpCode::Data(Data::Binary) => RawFrame::Binary(payload),
                _ => continue,
            };
            return Some(SERIALIZER.decode_server(raw));
        }
    })
}
