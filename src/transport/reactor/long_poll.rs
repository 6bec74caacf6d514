//! The reactor's long-poll side: requests on long-poll paths, and the sessions this
//! reactor holds.
//!
//! A request's head is read as any other; its body, if it has one, next. Then its token
//! names its session and the reactor that holds it: a request for another reactor's
//! session moves there, connection and all (a [`HandOver`] through that reactor's
//! mailbox). A `GET` without a valid token opens a session, here; a `GET` with one is
//! answered at once if output waits, or held (the connection parks in
//! [`State::Held`]) until output arrives through the session's outbound queue or its
//! window ends; a `POST` hands its frames to the session. Every answer closes its
//! connection.
//!
//! In a cluster, a token may name a session of another node: the request is forwarded
//! there and its connection waits ([`State::Forwarded`]) for the answer. The other
//! way, a request another node forwarded for a session here is served as a local one,
//! and its answer goes back through the forwarder: a forwarded poll is held with its
//! asker as the waiter ([`Waiter::Node`]).

use super::{Reactor, slot_of};
use crate::logging::log_throttled;
use crate::stats;
use crate::transport::conn::{BodyRead, State};
use crate::transport::framing::Framing;
use crate::transport::handler::{Hangup, LongPollCheck, OpenedSession, Peers, SessionLink, WayBack};
use crate::transport::long_poll::{
    BodyError, End, ForwardError, HandOver, LongPollRequest, LongPollSession, Method, NotBase64, Poll, RemoteAnswer,
    RemoteCall, RemoteMethod, RemoteRequest, ReplyTo, SessionAt, SessionId, Waiter, frames, response,
};
use crate::transport::mailbox::{Command, ConnKey};
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tungstenite::handshake::server::Request;

/// How long a node waits for the owner's answer to a forwarded request, past a poll's
/// window (Phoenix's `pubsub_timeout_ms`). No answer by then: the session is taken as
/// unreachable, as a gone one.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

impl Reactor {
    /// A request on a long-poll path whose head has been read, with its body's framing;
    /// `tail` is what came after.
    pub(super) fn long_poll_request(
        &mut self,
        slot: usize,
        head: Request,
        framing: Framing,
        tail: Vec<u8>,
        check: LongPollCheck,
        peers: Peers,
    ) {
        let route = match check {
            LongPollCheck::Forbidden => return self.respond(slot, response::status(403)),
            LongPollCheck::Serve(route) => route,
        };
        let request = Box::new(LongPollRequest { head, route, body: tail });
        match request.method() {
            Method::Options => return self.respond(slot, response::preflight(&request.preflight_headers())),
            Method::Other => return self.respond(slot, response::plain(400, "")),
            Method::Get => return self.serve(slot, request, peers),
            Method::Post => {}
        }
        let length = match request.body_length(framing) {
            Ok(length) => length,
            Err(BodyError::NoLength) => {
                return self.respond(slot, response::plain(411, "a Content-Length is required"));
            }
            Err(BodyError::TooLarge) => {
                let max = route.settings.max_body_bytes;
                log::warn!("refusing a long-poll request from {}: a body over {max} bytes", peers.remote);
                return self.respond(slot, response::plain(413, &format!("the body is larger than {max} bytes")));
            }
        };
        let interim = request.expects_continue() && request.body.len() < length;
        let Some(conn) = self.conn(slot) else { return };
        conn.expect_body(request, length);
        if interim {
            conn.send_interim(Bytes::from_static(response::CONTINUE));
            self.flush(slot);
        }
        self.read_body(slot);
    }

    /// Reads what the socket has of a long-poll request's body; serves it once whole.
    pub(super) fn read_body(&mut self, slot: usize) {
        let Some(conn) = slot_of(&mut self.conns, slot) else { return };
        match conn.read_body(&self.context.stats) {
            BodyRead::Partial => {}
            BodyRead::Gone => self.drop_conn(slot),
            BodyRead::Complete(request) => {
                let peers = conn.peers();
                self.serve(slot, request, peers);
            }
        }
    }

    /// A whole `GET` or `POST`: finds the session its token names, on this reactor,
    /// another, or another node.
    fn serve(&mut self, slot: usize, request: Box<LongPollRequest>, peers: Peers) {
        let route = request.route;
        let token = request.token();
        let at =
            token.as_deref().and_then(|token| self.context.tokens.verify(token, Some(route.settings.token_max_age)));
        match (at, token) {
            (Some(SessionAt::Here(session)), Some(token)) if session.mount == route.mount => {
                if session.reactor == self.index {
                    self.serve_session(slot, request, session.serial, token, peers)
                } else {
                    self.hand_over(slot, request, session, token)
                }
            }
            (Some(SessionAt::Node(node)), Some(token)) => self.forward(slot, request, &node, token, peers),
            _ => self.serve_without_session(slot, request, peers),
        }
    }

    /// A request for a session of node `node`: sent there, and the connection waits for
    /// the answer. Without a cluster, or with the node out of reach, the token names no
    /// session.
    fn forward(&mut self, slot: usize, mut request: Box<LongPollRequest>, node: &str, token: String, peers: Peers) {
        let Some(forwarder) = self.context.forwarder.get().cloned() else {
            return self.serve_without_session(slot, request, peers);
        };
        let Some(serial) = self.conn(slot).map(|conn| conn.serial) else { return };
        let method = match request.method() {
            Method::Get => RemoteMethod::Get,
            _ if request.is_batch() => RemoteMethod::PostBatch,
            _ => RemoteMethod::Post,
        };
        let route = request.route;
        let remote = RemoteRequest { method, mount: route.mount, token, body: std::mem::take(&mut request.body) };
        match forwarder.forward(node, ReplyTo { reactor: self.index, slot, serial }, &remote) {
            Ok(()) => {
                stats::incr(self.context.stats.long_poll_forwarded());
                let wait = match method {
                    RemoteMethod::Get => route.settings.window + ANSWER_TIMEOUT,
                    _ => ANSWER_TIMEOUT,
                };
                if let Some(conn) = self.conn(slot) {
                    conn.await_forwarded(request, Instant::now() + wait);
                    self.schedule(slot);
                }
            }
            Err(ForwardError::Unreachable) => {
                log::debug!("a long-poll token from {} names a session of node {node:?}, out of reach", peers.remote);
                self.serve_without_session(slot, request, peers);
            }
            Err(ForwardError::Busy) => {
                log_throttled!(
                    log::Level::Warn,
                    "refusing a long-poll request from {}: {}",
                    peers.remote,
                    ForwardError::Busy
                );
                self.respond(slot, response::plain(503, "Service Unavailable: the cluster is busy"));
            }
        }
    }

    /// The owner's answer to the request connection `reply_to` forwarded.
    pub(super) fn forward_answered(&mut self, reply_to: ReplyTo, answer: RemoteAnswer) {
        let Some(request) = self.take_forwarded(reply_to.slot, Some(reply_to.serial)) else { return };
        match answer {
            RemoteAnswer::Response(response) => self.respond(reply_to.slot, response),
            RemoteAnswer::NoSession => self.forward_failed(reply_to.slot, request),
        }
    }

    /// No answer came in time for a forwarded request: its session is out of reach.
    pub(super) fn forward_expired(&mut self, slot: usize) {
        if let Some(request) = self.take_forwarded(slot, None) {
            log::info!("no answer from the node of a long-poll session in time; taking the session for gone");
            stats::incr(self.context.stats.long_poll_forward_timeouts());
            self.forward_failed(slot, request);
        }
    }

    /// The forwarded request's session is not there: answered as any request whose token
    /// names no session.
    fn forward_failed(&mut self, slot: usize, request: Box<LongPollRequest>) {
        let Some(conn) = self.conn(slot) else { return };
        let peers = conn.peers();
        self.serve_without_session(slot, request, peers);
    }

    /// The request of the connection in `slot` (of `serial`, if given) if it waits for a
    /// forwarded answer; it waits no more.
    fn take_forwarded(&mut self, slot: usize, serial: Option<u64>) -> Option<Box<LongPollRequest>> {
        let conn = self.conn(slot).filter(|conn| serial.is_none_or(|serial| conn.serial == serial))?;
        match std::mem::replace(&mut conn.state, State::Closing) {
            State::Forwarded { request } => Some(request),
            other => {
                conn.state = other;
                None
            }
        }
    }

    /// A request another node forwarded for a session of this reactor: served as a
    /// local one, its answer sent back.
    pub(super) fn serve_remote(&mut self, call: RemoteCall) {
        let RemoteCall { asker, request, session } = call;
        let Some(forwarder) = self.context.forwarder.get().cloned() else { return };
        let serial = session.serial;
        let Some(held) = self.sessions.get_mut(&serial) else {
            return forwarder.answer(&asker, &RemoteAnswer::NoSession);
        };
        let batch = match request.method {
            RemoteMethod::Get => {
                let now = Instant::now();
                let until = now + held.window();
                let waiter = Waiter::Node { asker: Box::new(asker.clone()), until };
                let Poll { answer, replaced } = held.poll(waiter, request.token, now);
                if let Some((waiter, answer)) = replaced {
                    self.answer_waiter(waiter, answer);
                }
                if let Some(answer) = answer {
                    forwarder.answer(&asker, &RemoteAnswer::Response(answer));
                }
                return;
            }
            RemoteMethod::Post => false,
            RemoteMethod::PostBatch => true,
        };
        let (status, failed) = self.receive_frames(serial, &request.body, batch);
        forwarder.answer(&asker, &RemoteAnswer::Response(response::status(status)));
        self.posted(serial, failed);
    }

    /// Answers a poll's waiter: a connection here, or the node that forwarded it.
    fn answer_waiter(&mut self, waiter: Waiter, answer: Bytes) {
        match waiter {
            Waiter::Conn(conn) => self.respond_to(conn, answer),
            Waiter::Node { asker, .. } => {
                if let Some(forwarder) = self.context.forwarder.get() {
                    forwarder.answer(&asker, &RemoteAnswer::Response(answer));
                }
            }
        }
    }

    /// A request whose token names no session of this process: a `GET` opens one, a
    /// `POST` is told the session is gone.
    fn serve_without_session(&mut self, slot: usize, request: Box<LongPollRequest>, peers: Peers) {
        match request.method() {
            Method::Get => self.open_session(slot, &request, peers),
            _ => self.respond(slot, response::status(410)),
        }
    }

    /// A request for session `serial` of this reactor.
    fn serve_session(&mut self, slot: usize, request: Box<LongPollRequest>, serial: u64, token: String, peers: Peers) {
        if !self.sessions.contains_key(&serial) {
            return self.serve_without_session(slot, request, peers);
        }
        match request.method() {
            Method::Get => self.poll(slot, &request, serial, token),
            _ => self.post(slot, &request, serial),
        }
    }

    /// Moves the connection to the reactor that holds its session.
    fn hand_over(&mut self, slot: usize, request: Box<LongPollRequest>, session: SessionId, token: String) {
        let target = self.context.reactors.get().and_then(|all| all.get(session.reactor)).cloned();
        let Some(target) = target else { return self.respond(slot, response::status(410)) };
        let Some(mut conn) = self.conns.get_mut(slot).and_then(Option::take) else { return };
        if let Some(stream) = conn.writer.stream().sole_tcp() {
            let _ = self.poll.registry().deregister(stream);
        }
        self.free.push(slot);
        let peer = conn.peer;
        match conn.into_stream() {
            Some(stream) => {
                // The socket stays counted in `open_sockets`: it moves, it does not close.
                let hand_over = HandOver { stream, peer, request, session, token };
                target.command(Command::HandOver(Box::new(hand_over)));
            }
            None => {
                // Bytes of an interim answer are still queued: the socket cannot move.
                log::warn!("cannot hand a long-poll request from {peer} over to its session's reactor");
                self.context.open_sockets.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// A request another reactor read for a session of this one.
    pub(super) fn adopt_hand_over(&mut self, hand_over: HandOver) {
        let HandOver { stream, peer, request, session, token } = hand_over;
        let Some(slot) = self.register(stream, peer, Vec::new()) else { return };
        let Some(conn) = self.conn(slot) else { return };
        let peers = conn.peers();
        self.serve_session(slot, request, session.serial, token, peers);
    }

    /// A `GET` without a session: runs `connect`, off the reactor, within the cap on
    /// sessions.
    fn open_session(&mut self, slot: usize, request: &LongPollRequest, peers: Peers) {
        let max = self.context.settings.max_sessions;
        if self.stopping.is_some() || self.context.open_sessions.fetch_add(1, Ordering::Relaxed) >= max {
            if self.stopping.is_none() {
                self.context.open_sessions.fetch_sub(1, Ordering::Relaxed);
                log_throttled!(
                    log::Level::Warn,
                    "refusing a long-poll session to {}: {max} sessions already open",
                    peers.remote
                );
            }
            stats::incr(self.context.stats.refused_connections());
            let answer = response::plain(503, "Service Unavailable: too many long-poll sessions");
            return self.respond(slot, answer);
        }
        let (mailbox, verdicts, stats) = (self.mailbox.clone(), self.verdicts.0.clone(), self.context.stats.clone());
        self.next_serial += 1;
        let serial = self.next_serial;
        let Some(conn) = self.conn(slot) else { return };
        let key = ConnKey { slot, serial: conn.serial };
        conn.await_verdict();
        let link = SessionLink::new(WayBack::new(key, mailbox, verdicts, stats), request.route, serial);
        self.context.handler.open_session(&request.head, peers, link);
    }

    /// The application opened the session a `GET` on `key` asked for: answer 410 with its
    /// token, which means "connected" to the client.
    pub(super) fn session_opened(&mut self, key: ConnKey, opened: OpenedSession) {
        let waiting = self.deciding(key);
        if !waiting {
            // The client went away before it could learn the token.
            let session = LongPollSession::new(opened, Instant::now());
            session.end(Hangup::Closed);
            self.context.open_sessions.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        let (serial, route) = (opened.serial, opened.route);
        let id = SessionId { reactor: self.index, serial, mount: route.mount };
        let token = self.context.tokens.sign(id, route.settings.token_max_age);
        self.sessions.insert(serial, LongPollSession::new(opened, Instant::now()));
        stats::incr(self.context.stats.long_poll_sessions());
        stats::incr(self.context.stats.long_poll_sessions_total());
        self.respond(key.slot, response::messages(410, &token, std::iter::empty()));
        // Output may have been queued before the session was here to take it.
        self.session_output(serial);
    }

    /// The application refused the session a `GET` on `key` asked for.
    pub(super) fn session_refused(&mut self, key: ConnKey) {
        self.context.open_sessions.fetch_sub(1, Ordering::Relaxed);
        if self.deciding(key) {
            self.refuse(key.slot, response::status(403));
        }
    }

    /// Whether connection `key` is still there, waiting for a verdict.
    fn deciding(&mut self, key: ConnKey) -> bool {
        self.conn(key.slot)
            .is_some_and(|conn| conn.serial == key.serial && matches!(conn.state, State::Deciding { .. }))
    }

    /// A poll: answered now if output waits, held otherwise.
    fn poll(&mut self, slot: usize, request: &LongPollRequest, serial: u64, token: String) {
        let now = Instant::now();
        let Some(conn_serial) = self.conn(slot).map(|conn| conn.serial) else { return };
        let Some(session) = self.sessions.get_mut(&serial) else { return };
        let Poll { answer, replaced } = session.poll(Waiter::Conn(ConnKey { slot, serial: conn_serial }), token, now);
        if let Some((waiter, answer)) = replaced {
            self.answer_waiter(waiter, answer);
        }
        match answer {
            Some(answer) => self.respond(slot, answer),
            None => {
                if let Some(conn) = self.conn(slot) {
                    conn.hold(serial, now + request.route.settings.window);
                    self.schedule(slot);
                }
            }
        }
    }

    /// A `POST`: its frames go to the session, in order, until one fails.
    fn post(&mut self, slot: usize, request: &LongPollRequest, serial: u64) {
        let (status, failed) = self.receive_frames(serial, &request.body, request.is_batch());
        self.respond(slot, response::status(status));
        self.posted(serial, failed);
    }

    /// Hands the frames of a `POST`'s body to session `serial`, in order, until one
    /// fails: the status to answer with, and the end the session came to if one failed.
    fn receive_frames(&mut self, serial: u64, body: &[u8], batch: bool) -> (u16, Option<End>) {
        let Some(session) = self.sessions.get_mut(&serial) else { return (410, None) };
        let mut failed = None;
        let mut status = 200;
        for frame in frames(body, batch) {
            let result = match frame {
                Ok(frame) => session.receive(&frame, &self.context.stats),
                Err(NotBase64) => {
                    status = 400;
                    break;
                }
            };
            if let Err(end) = result {
                status = match &end {
                    End::BadFrame { status, .. } => *status,
                    _ => 410,
                };
                failed = Some(end);
                break;
            }
        }
        (status, failed)
    }

    /// After a `POST` was answered: the session ends if a frame failed; otherwise a poll
    /// held may have output now (heartbeat replies).
    fn posted(&mut self, serial: u64, failed: Option<End>) {
        match failed {
            Some(end) => self.end_session(serial, end),
            None => self.answer_held(serial),
        }
    }

    /// Applies what other threads queued for session `serial`.
    pub(super) fn session_output(&mut self, serial: u64) {
        let Some(session) = self.sessions.get_mut(&serial) else { return };
        match session.apply_outbound(&mut self.items) {
            Ok(()) => self.answer_held(serial),
            Err(end) => self.end_session(serial, end),
        }
    }

    /// Answers session `serial`'s held poll if output waits for it.
    fn answer_held(&mut self, serial: u64) {
        let answered = self.sessions.get_mut(&serial).and_then(|session| session.answer_held(Instant::now()));
        if let Some((waiter, answer)) = answered {
            self.answer_waiter(waiter, answer);
        }
    }

    /// A held poll's window has ended: answer 204.
    pub(super) fn window_ended(&mut self, slot: usize) {
        let Some(conn) = self.conn(slot) else { return };
        let State::Held { session } = conn.state else { return };
        let key = ConnKey { slot, serial: conn.serial };
        let answer = self.sessions.get_mut(&session).and_then(|session| session.window_ended(key, Instant::now()));
        self.respond(slot, answer.unwrap_or_else(|| response::status(410)));
    }

    /// A held poll's connection closed.
    pub(super) fn unhold(&mut self, session: u64, conn: ConnKey) {
        if let Some(session) = self.sessions.get_mut(&session) {
            session.forget_held(conn);
        }
    }

    /// Ends the sessions whose client stopped polling, and answers the polls other nodes
    /// forwarded whose window has ended.
    pub(super) fn expire_sessions(&mut self, now: Instant) {
        let ended: Vec<_> = self.sessions.values_mut().filter_map(|session| session.remote_window_ended(now)).collect();
        for (asker, answer) in ended {
            self.answer_waiter(Waiter::Node { asker, until: now }, answer);
        }
        let abandoned: Vec<u64> =
            self.sessions.iter().filter(|(_, session)| session.is_abandoned(now)).map(|(serial, _)| *serial).collect();
        for serial in abandoned {
            self.end_session(serial, End::Abandoned);
        }
    }

    /// Ends session `serial`: its channels terminate; a poll held for it is told the
    /// session is gone (410), so that its client reconnects.
    pub(super) fn end_session(&mut self, serial: u64, end: End) {
        let Some(session) = self.sessions.remove(&serial) else { return };
        let stats = &self.context.stats;
        let why = match end {
            End::Draining => Hangup::Draining,
            End::Abandoned => {
                log::info!("closing a long-poll session: no poll for 1.5 windows");
                stats::incr(stats.long_poll_abandoned());
                Hangup::Closed
            }
            End::SlowConsumer => {
                log::warn!("closing a long-poll session: slow consumer, its output is over the limits");
                stats::incr(stats.slow_consumer_closes());
                Hangup::Closed
            }
            End::Disconnect => Hangup::Closed,
            End::BadFrame { reason, .. } => {
                log::info!("closing a long-poll session: {reason}");
                Hangup::Closed
            }
        };
        let held = session.end(why);
        stats::decr(stats.long_poll_sessions());
        self.context.open_sessions.fetch_sub(1, Ordering::Relaxed);
        if let Some(held) = held {
            self.answer_waiter(held.waiter, response::status(410));
        }
    }

    /// Answers the connection `key` names, if it is still there.
    fn respond_to(&mut self, key: ConnKey, answer: Bytes) {
        if self.conn(key.slot).is_some_and(|conn| conn.serial == key.serial) {
            self.respond(key.slot, answer);
        }
    }
}
