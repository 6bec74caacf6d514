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

use super::{Reactor, slot_of};
use crate::logging::log_throttled;
use crate::stats;
use crate::transport::conn::{BodyRead, State};
use crate::transport::framing::Framing;
use crate::transport::handler::{Hangup, LongPollCheck, OpenedSession, Peers, SessionLink, WayBack};
use crate::transport::long_poll::{
    BodyError, End, HandOver, LongPollRequest, LongPollSession, Method, NotBase64, Poll, SessionId, frames, response,
};
use crate::transport::mailbox::{Command, ConnKey};
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::time::Instant;
use tungstenite::handshake::server::Request;

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

    /// A whole `GET` or `POST`: finds the session its token names, on this reactor or
    /// another.
    fn serve(&mut self, slot: usize, request: Box<LongPollRequest>, peers: Peers) {
        let route = request.route;
        let token = request.token();
        let session = token
            .as_deref()
            .and_then(|token| self.context.tokens.verify(token, route.settings.token_max_age))
            .filter(|session| session.mount == route.mount);
        match (session, token) {
            (Some(session), Some(token)) if session.reactor != self.index => {
                self.hand_over(slot, request, session, token)
            }
            (Some(session), Some(token)) => self.serve_session(slot, request, session.serial, token, peers),
            _ => self.serve_without_session(slot, request, peers),
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
        let Poll { answer, replaced } = session.poll(ConnKey { slot, serial: conn_serial }, token, now);
        if let Some((conn, answer)) = replaced {
            self.respond_to(conn, answer);
        }
        match answer {
            Some(answer) => self.respond(slot, answer),
            None => {
                if let Some(conn) = self.conn(slot) {
                    conn.hold(serial, now + request.route.settings.window);
                }
            }
        }
    }

    /// A `POST`: its frames go to the session, in order, until one fails.
    fn post(&mut self, slot: usize, request: &LongPollRequest, serial: u64) {
        let Some(session) = self.sessions.get_mut(&serial) else { return };
        let mut failed = None;
        let mut status = 200;
        for frame in frames(&request.body, request.is_batch()) {
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
        self.respond(slot, response::status(status));
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
        if let Some((conn, answer)) = answered {
            self.respond_to(conn, answer);
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

    /// Ends the sessions whose client stopped polling.
    pub(super) fn expire_sessions(&mut self, now: Instant) {
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
            self.respond_to(held.conn, response::status(410));
        }
    }

    /// Answers the connection `key` names, if it is still there.
    fn respond_to(&mut self, key: ConnKey, answer: Bytes) {
        if self.conn(key.slot).is_some_and(|conn| conn.serial == key.serial) {
            self.respond(key.slot, answer);
        }
    }
}
