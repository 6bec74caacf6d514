//! A reactor: one thread, one `mio::Poll`, many connections. It turns socket events,
//! mail from other threads and deadlines into calls on the connections it holds
//! (`conn.rs`), and on the long-poll sessions it holds (`reactor/long_poll.rs`). It
//! never blocks and never runs user code.

mod deadlines;
mod long_poll;
// Only a cluster (feature `redis`) links the reactors to other nodes.
#[cfg_attr(not(feature = "redis"), allow(dead_code, unused_imports))]
mod remote;

#[cfg_attr(not(feature = "redis"), allow(unused_imports))]
pub(crate) use remote::RemoteSessions;

use super::conn::{CloseWith, Conn, RequestRead, State, close_code};
use super::framing::{Framing, FramingError};
use super::handler::{Answer, ConnectionLink, Hangup, RequestHandler, Verdict, VerdictReceiver, Verdicts, WayBack};
use super::http;
use super::long_poll::{End, LongPollSession, SessionForwarder, SessionTokens, parse_head};
use super::mailbox::{Arrival, Command, ConnKey, Mail, Mailbox, Recipient};
use super::outbound::OutItem;
use super::settings::TransportSettings;
use super::stream::Stream;
use crate::logging::log_throttled;
use crate::stats::{self, Stats};
use crate::telemetry::{Event, Telemetry};
use deadlines::Deadlines;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

const WAKER: Token = Token(usize::MAX);

/// What every reactor of an endpoint shares.
pub(crate) struct ReactorContext {
    pub(crate) settings: TransportSettings,
    pub(crate) handler: Arc<dyn RequestHandler>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) telemetry: Telemetry,
    /// TCP connections held by the reactors, in any state (for the connection cap).
    pub(crate) open_sockets: AtomicUsize,
    /// Long-poll sessions open or opening (for the session cap).
    pub(crate) open_sessions: AtomicUsize,
    /// Every reactor's mailbox, by index: where a long-poll request goes when its
    /// session is on another reactor. Set once, before the reactors start.
    pub(crate) reactors: OnceLock<Vec<Arc<Mailbox>>>,
    pub(crate) tokens: SessionTokens,
    /// In a cluster, what carries requests for other nodes' sessions to them (set by
    /// [`RemoteSessions::link`]); without one, such a token names no session here.
    pub(crate) forwarder: OnceLock<Arc<dyn SessionForwarder>>,
}

pub(crate) struct Reactor {
    /// This reactor's index in `context.reactors`.
    index: usize,
    poll: Poll,
    mailbox: Arc<Mailbox>,
    context: Arc<ReactorContext>,
    verdicts: (Verdicts, VerdictReceiver),
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    /// When each connection next needs a look (idle, handshake and closing deadlines).
    deadlines: Deadlines,
    next_serial: u64,
    mail: Mail,
    items: Vec<OutItem>,
    /// Long-poll sessions, by serial.
    sessions: HashMap<u64, LongPollSession>,
    stopping: Option<Instant>,
}

impl Reactor {
    pub(crate) fn new(context: Arc<ReactorContext>, index: usize) -> io::Result<Reactor> {
        let poll = Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), WAKER)?;
        Ok(Reactor {
            index,
            poll,
            mailbox: Arc::new(Mailbox::new(waker)),
            context,
            verdicts: crossbeam_channel::unbounded(),
            conns: Vec::new(),
            free: Vec::new(),
            deadlines: Deadlines::default(),
            next_serial: 0,
            mail: Mail::default(),
            items: Vec::new(),
            sessions: HashMap::new(),
            stopping: None,
        })
    }

    pub(crate) fn mailbox(&self) -> Arc<Mailbox> {
        self.mailbox.clone()
    }

    /// Runs until shut down and every connection is gone.
    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let tick = self.context.settings.tick;
        let mut next_scan = Instant::now() + tick;
        loop {
            let timeout = next_scan.saturating_duration_since(Instant::now());
            if let Err(err) = self.poll.poll(&mut events, Some(timeout))
                && err.kind() != io::ErrorKind::Interrupted
            {
                log::error!("reactor poll failed: {err}");
                return;
            }
            for event in events.iter() {
                match event.token() {
                    WAKER => {}
                    Token(slot) => {
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            self.on_readable(slot);
                        }
                        self.flush(slot);
                    }
                }
            }
            self.read_mail();
            let now = Instant::now();
            if now >= next_scan {
                self.expire(now);
                next_scan = now + tick;
            }
            if let Some(deadline) = self.stopping
                && ((self.live_conns() == 0 && self.sessions.is_empty()) || now >= deadline)
            {
                return;
            }
        }
    }

    fn read_mail(&mut self) {
        let mut mail = std::mem::take(&mut self.mail);
        self.mailbox.take(&mut mail);
        for command in mail.commands.drain(..) {
            match command {
                Command::Adopt(stream, peer, arrival) => self.adopt(stream, peer, arrival),
                Command::Drain(count) => self.drain(count),
                Command::Stop => {
                    self.stopping = Some(Instant::now() + self.context.settings.shutdown_timeout);
                    self.drain(usize::MAX);
                }
                Command::HandOver(hand_over) => self.adopt_hand_over(*hand_over),
                Command::Remote(call) => self.serve_remote(*call),
                Command::Answered(reply_to, answer) => self.forward_answered(reply_to, answer),
            }
        }
        while let Ok((key, verdict)) = self.verdicts.1.try_recv() {
            self.decided(key, verdict);
        }
        for recipient in mail.ready.drain(..) {
            match recipient {
                Recipient::Conn(key) => self.drain_outbound(key),
                Recipient::Session(serial) => self.session_output(serial),
            }
        }
        self.mail = mail;
    }

    fn conn(&mut self, slot: usize) -> Option<&mut Conn> {
        slot_of(&mut self.conns, slot)
    }

    /// Connections held, in any state.
    fn live_conns(&self) -> usize {
        self.conns.len() - self.free.len()
    }

    /// Makes sure the deadline heap looks at connection `slot` by its deadline.
    fn schedule(&mut self, slot: usize) {
        let Some(conn) = slot_of(&mut self.conns, slot) else { return };
        if let Some(at) = conn.reschedule() {
            self.deadlines.schedule(at, ConnKey { slot, serial: conn.serial });
        }
    }

    fn adopt(&mut self, stream: TcpStream, peer: SocketAddr, arrival: Arrival) {
        if self.stopping.is_some() {
            return;
        }
        let max = self.context.settings.max_connections;
        let over = self.context.open_sockets.fetch_add(1, Ordering::Relaxed) >= max;
        let _ = stream.set_nodelay(true);
        let (stream, head) = match arrival {
            Arrival::Listener => (Stream::accepted(stream, &self.context.settings, &self.context.stats), None),
            Arrival::HandedOver(head) => (Ok(Stream::Plain(Arc::new(stream))), Some(head)),
        };
        let stream = match stream {
            Ok(stream) => stream,
            Err(err) => {
                log::error!("cannot start a connection's TLS session: {err}");
                self.context.open_sockets.fetch_sub(1, Ordering::Relaxed);
                return;
            }
        };
        let handed_over = head.is_some();
        let Some(slot) = self.register(stream, peer, head.unwrap_or_default()) else { return };
        if over {
            log_throttled!(log::Level::Warn, "refusing a connection from {peer}: {max} connections already open");
            self.refuse(slot, http::text(503, "Service Unavailable: too many connections"));
        } else if handed_over {
            // Its request may be whole already, and no event would say so.
            self.read_request(slot);
        }
    }

    /// Registers a socket (counted in `open_sockets`) and holds it in a new slot.
    /// Returns the slot, or `None` (the socket dropped and uncounted) if the socket
    /// cannot be registered.
    /// Takes a connection into the poll; `head` holds what was already read of its request.
    fn register(&mut self, mut stream: Stream, peer: SocketAddr, head: Vec<u8>) -> Option<usize> {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        let registered = match stream.sole_tcp() {
            Some(stream) => self.poll.registry().register(stream, Token(slot), Interest::READABLE | Interest::WRITABLE),
            None => Err(io::Error::other("the socket is shared")),
        };
        if let Err(err) = registered {
            log::error!("cannot register a connection: {err}");
            self.context.open_sockets.fetch_sub(1, Ordering::Relaxed);
            self.free.push(slot);
            return None;
        }
        self.next_serial += 1;
        let handshake_timeout = self.context.settings.handshake_timeout;
        self.conns[slot] = Some(Conn::new(stream, peer, self.next_serial, handshake_timeout, head));
        self.schedule(slot);
        Some(slot)
    }

    fn on_readable(&mut self, slot: usize) {
        let Some(conn) = self.conn(slot) else { return };
        match conn.state {
            State::Handshake { .. } => self.read_request(slot),
            State::Open { .. } => self.read_frames(slot),
            // Reading waits for the verdict; the bytes stay in the kernel until then.
            State::Deciding { .. } => {}
            State::Body { .. } => self.read_body(slot),
            State::Held { .. } | State::Forwarded { .. } => {
                if conn.discard_input() {
                    self.drop_conn(slot);
                }
            }
            State::Closing => {
                if conn.discard_input() {
                    self.drop_conn(slot);
                }
            }
        }
    }

    fn read_request(&mut self, slot: usize) {
        let context = self.context.clone();
        let max = context.settings.max_header_bytes;
        let (mailbox, verdicts) = (self.mailbox.clone(), self.verdicts.0.clone());
        let Some(conn) = self.conn(slot) else { return };
        let peer = conn.peer;
        match conn.read_request(max) {
            RequestRead::Partial => {}
            RequestRead::Gone => self.drop_conn(slot),
            RequestRead::TooLarge => {
                log::warn!("refusing a request from {peer}: headers over {max} bytes");
                self.refuse(slot, http::text(431, "Request Header Fields Too Large"));
            }
            RequestRead::Parsed(request) => {
                let peers = conn.peers();
                let framing = match Framing::of(request.headers()) {
                    Ok(framing) => framing,
                    Err(err) => return self.refuse_framing(slot, err),
                };
                if let Some(check) = context.handler.long_poll(&request, peers) {
                    let tail = match &mut conn.state {
                        State::Deciding { tail } => std::mem::take(tail),
                        _ => Vec::new(),
                    };
                    return self.long_poll_request(slot, *request, framing, tail, check, peers);
                }
                // What follows an upgrade's head is WebSocket frames: a body there would
                // be read as frames here and as the body by a proxy.
                if framing.has_body() {
                    log::warn!("refusing a request from {peer}: a GET with a body");
                    return self.refuse(slot, http::text(400, "a GET request here has no body"));
                }
                let key = ConnKey { slot, serial: conn.serial };
                let stream = conn.writer.stream().for_direct_writes();
                let link = ConnectionLink::new(WayBack::new(key, mailbox, verdicts, context.stats.clone()), stream);
                match context.handler.request(&request, peers, link) {
                    Answer::Respond(bytes) => self.respond(slot, bytes),
                    Answer::Deciding => {}
                }
            }
            RequestRead::Unparsed(mut head) => {
                // tungstenite parses only `GET` over HTTP/1.1: a long-poll request may be
                // anything else.
                if let Some((len, request)) = parse_head(&head) {
                    let peers = conn.peers();
                    let framing = match Framing::of(request.headers()) {
                        Ok(framing) => framing,
                        Err(err) => return self.refuse_framing(slot, err),
                    };
                    if let Some(check) = context.handler.long_poll(&request, peers) {
                        let tail = head.split_off(len);
                        return self.long_poll_request(slot, request, framing, tail, check, peers);
                    }
                }
                // Anything else that has a request line still gets the answer its path
                // calls for.
                log::debug!("request from {peer} is not a WebSocket GET");
                let answer = context.handler.unparsed_request(&head);
                self.refuse(slot, answer);
            }
        }
    }

    /// Refuses a request whose body's end two readers could place differently.
    fn refuse_framing(&mut self, slot: usize, err: FramingError) {
        if let Some(conn) = self.conn(slot) {
            // Throttled: a client can send such requests as fast as it can connect.
            log_throttled!(log::Level::Warn, "refusing a request from {}: {err}", conn.peer);
        }
        self.refuse(slot, http::text(400, &err.to_string()));
    }

    fn refuse(&mut self, slot: usize, bytes: bytes::Bytes) {
        stats::incr(self.context.stats.refused_connections());
        self.respond(slot, bytes);
    }

    /// Sends a plain HTTP answer and closes.
    fn respond(&mut self, slot: usize, bytes: bytes::Bytes) {
        let Some(conn) = self.conn(slot) else { return };
        conn.respond(bytes);
        self.flush(slot);
    }

    fn decided(&mut self, key: ConnKey, verdict: Verdict) {
        let verdict = match verdict {
            Verdict::Session(opened) => return self.session_opened(key, *opened),
            Verdict::NoSession => return self.session_refused(key),
            verdict => verdict,
        };
        let Some(conn) = slot_of(&mut self.conns, key.slot).filter(|conn| conn.serial == key.serial) else { return };
        if !matches!(conn.state, State::Deciding { .. }) {
            return;
        }
        match verdict {
            Verdict::Refuse(bytes) => self.refuse(key.slot, bytes),
            Verdict::Open(opened) => {
                conn.open(*opened, &self.context.stats);
                // Frames that arrived while the application decided are waiting in the
                // kernel (or the tail), and other threads may have queued output.
                self.read_frames(key.slot);
                self.drain_outbound(key);
            }
            Verdict::Session(_) | Verdict::NoSession => unreachable!("long-poll verdicts are taken above"),
        }
    }

    fn read_frames(&mut self, slot: usize) {
        let Some(conn) = slot_of(&mut self.conns, slot) else { return };
        let stats = &self.context.stats;
        if let Some(close) = conn.read_frames(stats) {
            log::info!("closing the connection from {}: {} ({})", conn.peer, close.reason, close.code);
            conn.close(&close, Hangup::Closed, stats);
        }
        self.flush(slot);
    }

    /// Applies what other threads queued for a connection, and writes.
    fn drain_outbound(&mut self, key: ConnKey) {
        let stats = &self.context.stats;
        if let Some(conn) = slot_of(&mut self.conns, key.slot).filter(|conn| conn.serial == key.serial)
            && let Some(close) = conn.apply_outbound(&mut self.items, stats)
        {
            if close.code == close_code::POLICY {
                let peer = conn.peer;
                self.context.telemetry.emit(|hook| hook(&Event::SlowConsumerClosed { peer }));
            }
            conn.close(&close, Hangup::Closed, stats);
        }
        self.flush(key.slot);
    }

    fn flush(&mut self, slot: usize) {
        let Some(conn) = slot_of(&mut self.conns, slot) else { return };
        if conn.flush(&self.context.stats) {
            self.drop_conn(slot);
        } else if let Some(at) = conn.reschedule() {
            // Every change of state ends here: a deadline it moved earlier is scheduled.
            self.deadlines.schedule(at, ConnKey { slot, serial: conn.serial });
        }
    }

    fn drop_conn(&mut self, slot: usize) {
        let Some(mut conn) = self.conns.get_mut(slot).and_then(Option::take) else { return };
        if let State::Held { session } = conn.state {
            self.unhold(session, ConnKey { slot, serial: conn.serial });
        }
        conn.end_session(Hangup::Closed, &self.context.stats);
        // The outbound queue let go of the socket when the session ended, so this is
        // the last handle; closing the descriptor would also take it out of the poll.
        if let Some(stream) = conn.writer.stream().sole_tcp() {
            let _ = self.poll.registry().deregister(stream);
        }
        self.context.open_sockets.fetch_sub(1, Ordering::Relaxed);
        self.free.push(slot);
    }

    /// Closes connections past their deadline: idle ones, stalled handshakes, and
    /// closing ones that would not take their last bytes; answers held polls whose
    /// window has ended; and ends long-poll sessions whose client stopped polling.
    /// Only connections whose look the deadline heap has due are visited.
    fn expire(&mut self, now: Instant) {
        self.expire_sessions(now);
        // Taken first: a connection looked at now is scheduled again for later.
        let due: Vec<(Instant, ConnKey)> = std::iter::from_fn(|| self.deadlines.pop_due(now)).collect();
        for (at, key) in due {
            let slot = key.slot;
            let Some(conn) = slot_of(&mut self.conns, slot) else { continue };
            if conn.serial != key.serial || conn.scheduled != Some(at) {
                continue; // superseded by an earlier look, or a closed connection's
            }
            conn.scheduled = None;
            if now < conn.deadline {
                self.schedule(slot); // busy since: its deadline moved on
                continue;
            }
            match conn.state {
                State::Open { .. } => {
                    // Data may have arrived since the last poll: read it before judging.
                    self.read_frames(slot);
                    let Some(conn) = slot_of(&mut self.conns, slot) else { continue };
                    if now < conn.deadline || !matches!(conn.state, State::Open { .. }) {
                        continue;
                    }
                    log::info!("closing the connection from {}: idle timeout", conn.peer);
                    let idle = CloseWith { code: close_code::PROTOCOL_ERROR, reason: "idle timeout".into() };
                    conn.close(&idle, Hangup::Closed, &self.context.stats);
                    self.flush(slot);
                }
                State::Handshake { .. } | State::Body { .. } => {
                    log::info!("closing the connection from {}: handshake timeout", conn.peer);
                    self.refuse(slot, http::text(408, "Request Timeout"));
                }
                State::Held { .. } => self.window_ended(slot),
                State::Forwarded { .. } => self.forward_expired(slot),
                // The verdict schedules it again.
                State::Deciding { .. } => {}
                State::Closing => self.drop_conn(slot),
            }
        }
        let live = self.live_conns();
        let conns = &self.conns;
        self.deadlines.sweep(live, |at, key| {
            conns
                .get(key.slot)
                .and_then(Option::as_ref)
                .is_some_and(|conn| conn.serial == key.serial && conn.scheduled == Some(at))
        });
    }

    /// Server shutdown, one batch: up to `count` connections' channels drain and the
    /// connections close with 1012 so clients reconnect elsewhere; then long-poll
    /// sessions, up to the same count in all. Connections still in their handshake are
    /// dropped.
    fn drain(&mut self, mut count: usize) {
        for slot in 0..self.conns.len() {
            let Some(conn) = slot_of(&mut self.conns, slot) else { continue };
            match conn.state {
                State::Open { .. } if count > 0 => {
                    count -= 1;
                    let restart = CloseWith { code: close_code::RESTART, reason: "server restart".into() };
                    conn.close(&restart, Hangup::Draining, &self.context.stats);
                    self.flush(slot);
                }
                State::Handshake { .. } | State::Deciding { .. } | State::Body { .. } | State::Forwarded { .. } => {
                    self.drop_conn(slot)
                }
                _ => {}
            }
        }
        let draining: Vec<u64> = self.sessions.keys().copied().take(count).collect();
        for serial in draining {
            self.end_session(serial, End::Draining);
        }
    }
}

/// The connection in `slot`, if the slot holds one.
fn slot_of(conns: &mut [Option<Conn>], slot: usize) -> Option<&mut Conn> {
    conns.get_mut(slot).and_then(Option::as_mut)
}
