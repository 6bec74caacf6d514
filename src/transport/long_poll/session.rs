//! One long-poll session: a protocol session (the same [`ConnectionHandler`] a
//! WebSocket connection drives) that lives across many HTTP requests, its outbound
//! queue, the messages waiting for a poll, and the poll held until there are some.
//!
//! A session lives on one reactor, which does everything to it: no lock guards it.

use super::batch::BodyFrame;
use super::forward::Asker;
use super::messages::{Messages, Overflow};
use super::response;
use crate::stats::{self, Stats};
use crate::transport::handler::{ConnectionHandler, Disconnect, Hangup, OpenedSession};
use crate::transport::mailbox::ConnKey;
use crate::transport::outbound::{OutItem, Outbound};
use crate::transport::write_queue::WriteQueue;
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why a session must end.
#[derive(Debug)]
pub(crate) enum End {
    /// A `disconnect` was broadcast on its socket id.
    Disconnect,
    /// Its output outgrew the limits: the client does not poll fast enough.
    SlowConsumer,
    /// The client sent a frame that does not decode, or is larger than allowed; the
    /// answer to the request that carried it has this status.
    BadFrame { status: u16, reason: String },
    /// The client stopped polling.
    Abandoned,
    /// The server is shutting down.
    Draining,
}

/// Who waits for a poll's answer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Waiter {
    /// A connection of this reactor.
    Conn(ConnKey),
    /// Another node of the cluster, which forwarded the poll; its window ends at `until`
    /// (no connection here has that deadline).
    Node { asker: Box<Asker>, until: Instant },
}

/// A poll held for output: who waits for it, and the token to answer with.
pub(crate) struct Held {
    pub(crate) waiter: Waiter,
    pub(crate) token: String,
}

/// What becomes of a poll.
pub(crate) struct Poll {
    /// Its answer now, or `None`: it is held until there is output or its window ends.
    pub(crate) answer: Option<Bytes>,
    /// The poll held before it, to be answered now (204): its client gave up on it.
    pub(crate) replaced: Option<(Waiter, Bytes)>,
}

pub(crate) struct LongPollSession {
    handler: Box<dyn ConnectionHandler>,
    outbound: Arc<Outbound>,
    messages: Messages,
    /// Where the handler writes its frames; moved to `messages` after every call.
    out: WriteQueue,
    window: Duration,
    max_frame_size: usize,
    last_poll: Instant,
    held: Option<Held>,
}

impl LongPollSession {
    pub(crate) fn new(opened: OpenedSession, now: Instant) -> Self {
        let OpenedSession { handler, outbound, route, .. } = opened;
        LongPollSession {
            handler,
            outbound,
            messages: Messages::new(route.limits),
            out: WriteQueue::default(),
            window: route.settings.window,
            max_frame_size: route.max_frame_size,
            last_poll: now,
            held: None,
        }
    }

    /// The session's window: how long a poll is held.
    pub(crate) fn window(&self) -> Duration {
        self.window
    }

    /// A poll for `waiter`, with `token`: answered at once when output waits, held
    /// otherwise.
    pub(crate) fn poll(&mut self, waiter: Waiter, token: String, now: Instant) -> Poll {
        self.last_poll = now;
        let replaced =
            self.held.take().map(|old| (old.waiter, response::messages(204, &old.token, std::iter::empty())));
        let answer = if self.messages.is_empty() {
            self.held = Some(Held { waiter, token });
            None
        } else {
            Some(self.messages.deliver(&token, &self.outbound))
        };
        Poll { answer, replaced }
    }

    /// The held poll and its answer, if there is one and output waits for it.
    pub(crate) fn answer_held(&mut self, now: Instant) -> Option<(Waiter, Bytes)> {
        if self.messages.is_empty() {
            return None;
        }
        let held = self.held.take()?;
        self.last_poll = now;
        Some((held.waiter, self.messages.deliver(&held.token, &self.outbound)))
    }

    /// The held poll's window has ended with no output: its answer (204), if `conn` is
    /// still the poll held.
    pub(crate) fn window_ended(&mut self, conn: ConnKey, now: Instant) -> Option<Bytes> {
        let held = self.held.take_if(|held| held.waiter == Waiter::Conn(conn))?;
        self.last_poll = now;
        Some(response::messages(204, &held.token, std::iter::empty()))
    }

    /// The held poll of another node, with its answer (204), if its window has ended
    /// by `now`.
    pub(crate) fn remote_window_ended(&mut self, now: Instant) -> Option<(Box<Asker>, Bytes)> {
        let held = self.held.take_if(|held| matches!(held.waiter, Waiter::Node { until, .. } if until <= now))?;
        let Waiter::Node { asker, .. } = held.waiter else { return None };
        self.last_poll = now;
        Some((asker, response::messages(204, &held.token, std::iter::empty())))
    }

    /// The held poll's client went away.
    pub(crate) fn forget_held(&mut self, conn: ConnKey) {
        self.held.take_if(|held| held.waiter == Waiter::Conn(conn));
    }

    /// Whether the client has stopped polling: no poll is held, and none came for 1.5
    /// times the window (Phoenix's rule).
    pub(crate) fn is_abandoned(&self, now: Instant) -> bool {
        self.held.is_none() && now.saturating_duration_since(self.last_poll) > self.window * 3 / 2
    }

    /// Hands one frame of a `POST` to the protocol session.
    pub(crate) fn receive(&mut self, frame: &BodyFrame<'_>, stats: &Stats) -> Result<(), End> {
        if frame.len() > self.max_frame_size {
            let reason = format!("a frame of {} bytes, over the limit of {}", frame.len(), self.max_frame_size);
            return Err(End::BadFrame { status: 413, reason });
        }
        match self.handler.receive(frame.raw(), &mut self.out) {
            Ok(()) => stats::incr(stats.messages_in()),
            Err(reason) => {
                stats::incr(stats.malformed_frames());
                return Err(End::BadFrame { status: 400, reason });
            }
        }
        self.collect()
    }

    /// Applies what other threads queued for the session.
    pub(crate) fn apply_outbound(&mut self, items: &mut Vec<OutItem>) -> Result<(), End> {
        let taken = self.outbound.take(items);
        let mut disconnect = false;
        for item in items.drain(..) {
            if let Err(Disconnect) = self.handler.apply(item, &mut self.out) {
                disconnect = true;
            }
        }
        if taken.overflowed {
            return Err(End::SlowConsumer);
        }
        if disconnect {
            return Err(End::Disconnect);
        }
        self.collect()
    }

    /// Moves what the handler wrote to the messages waiting for a poll.
    fn collect(&mut self) -> Result<(), End> {
        self.messages.take_from(&mut self.out, &self.outbound).map_err(|Overflow| End::SlowConsumer)
    }

    /// Ends the session: its channels terminate (`why` says how), nothing more is
    /// queued. Returns the poll held, which the caller answers.
    pub(crate) fn end(mut self, why: Hangup) -> Option<Held> {
        self.outbound.close();
        self.handler.end(why);
        self.held.take()
    }
}
