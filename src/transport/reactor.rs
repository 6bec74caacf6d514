//! A reactor: one thread, one `mio::Poll`, many connections. It reads and decodes
//! frames, hands them to the connection's [`Session`], and writes queued frames with
//! vectored writes. It never blocks and never runs user code.

pub(crate) use super::mailbox::{ConnKey, Mailbox};

use super::connect_pool::{ConnectJob, ConnectOutcome};
use super::handshake::{self, Decision, Upgrade};
use super::http;
use super::mailbox::{Command, Mail};
use super::outbound::{OutItem, Outbound};
use super::session::Session;
use super::write_queue::WriteQueue;
use crate::channel::StopReason;
use crate::endpoint::Shared;
use crate::serializer::{Frame, RawFrame};
use crate::stats;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tungstenite::handshake::machine::TryParse;
use tungstenite::handshake::server::Request;
use tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};
use tungstenite::{Error as WsError, Message as WsMessage};

const WAKER: Token = Token(usize::MAX);
/// How long a closing connection may take to flush its last frames.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// tungstenite's read buffer per connection: its default (128 KiB) would cost more
/// memory per connection than the channel threads do.
const READ_BUFFER: usize = 4096;

/// Close codes the server sends (PROTOCOL.md 2.8).
pub(crate) mod close_code {
    pub(crate) const GOING_AWAY: u16 = 1001;
    pub(crate) const PROTOCOL_ERROR: u16 = 1002;
    pub(crate) const INVALID_DATA: u16 = 1007;
    pub(crate) const POLICY: u16 = 1008;
    pub(crate) const TOO_BIG: u16 = 1009;
    pub(crate) const RESTART: u16 = 1012;
}

enum State {
    /// Reading the HTTP request.
    Handshake { buf: Vec<u8> },
    /// Waiting for the socket's `connect`.
    Connecting { upgrade: Box<Upgrade>, tail: Vec<u8> },
    /// Speaking WebSocket.
    Open { ws: Box<WebSocketContext>, session: Box<Session>, idle: Duration },
    /// Flushing the last bytes, then closing.
    Closing,
}

struct Conn {
    /// Shared with the connection's outbound queue, whose producers may write to it
    /// directly (see `outbound.rs`); reads stay on the reactor.
    stream: Arc<TcpStream>,
    peer: SocketAddr,
    serial: u64,
    state: State,
    writes: WriteQueue,
    deadline: Instant,
}

/// tungstenite's view of the socket: reads come from the stream; writes (pongs and
/// close replies) are collected so they can join the connection's write queue in order.
struct WsIo<'a> {
    stream: &'a TcpStream,
    written: &'a mut Vec<u8>,
    read: usize,
    /// A read returned less than asked: the socket is empty for now. Reading again
    /// would only return `WouldBlock`, and data that arrives later raises a new
    /// (edge-triggered) event, so the next read reports `WouldBlock` without a call.
    drained: bool,
}

impl Read for WsIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.drained {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut stream = self.stream;
        let n = stream.read(buf)?;
        self.drained = n < buf.len();
        self.read += n;
        Ok(n)
    }
}

impl Write for WsIo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub(crate) struct Reactor {
    poll: Poll,
    mailbox: Arc<Mailbox>,
    shared: Arc<Shared>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    next_serial: u64,
    mail: Mail,
    items: Vec<OutItem>,
    tick: Duration,
    stopping: Option<Instant>,
}

impl Reactor {
    pub(crate) fn new(shared: Arc<Shared>) -> io::Result<Reactor> {
        let poll = Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), WAKER)?;
        let shortest = shared.mounts.iter().map(|m| m.socket.settings.idle_timeout).min();
        let tick =
            shortest.map_or(Duration::from_secs(1), |t| t / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        Ok(Reactor {
            poll,
            mailbox: Arc::new(Mailbox::new(waker)),
            shared,
            conns: Vec::new(),
            free: Vec::new(),
            next_serial: 0,
            mail: Mail::default(),
            items: Vec::new(),
            tick,
            stopping: None,
        })
    }

    pub(crate) fn mailbox(&self) -> Arc<Mailbox> {
        self.mailbox.clone()
    }

    /// Runs until shut down and every connection is gone.
    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let mut next_scan = Instant::now() + self.tick;
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
                next_scan = now + self.tick;
            }
            if let Some(deadline) = self.stopping
                && (self.conns.iter().all(Option::is_none) || now >= deadline)
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
                Command::Adopt(stream, peer) => self.adopt(stream, peer),
                Command::Connected { key, outcome } => self.connected(key, outcome),
                Command::Drain(count) => self.drain(count),
                Command::Stop => {
                    self.stopping = Some(Instant::now() + self.shared.config.shutdown_timeout);
                    self.drain(usize::MAX);
                }
            }
        }
        for key in mail.ready.drain(..) {
            self.drain_outbound(key);
        }
        self.mail = mail;
    }

    fn conn(&mut self, slot: usize) -> Option<&mut Conn> {
        self.conns.get_mut(slot).and_then(Option::as_mut)
    }

    fn adopt(&mut self, mut stream: TcpStream, peer: SocketAddr) {
        if self.stopping.is_some() {
            return;
        }
        let max = self.shared.config.max_connections;
        let over = self.shared.tcp_connections.fetch_add(1, Ordering::Relaxed) >= max;
        let slot = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        if let Err(err) =
            self.poll.registry().register(&mut stream, Token(slot), Interest::READABLE | Interest::WRITABLE)
        {
            log::error!("cannot register a connection: {err}");
            self.shared.tcp_connections.fetch_sub(1, Ordering::Relaxed);
            self.free.push(slot);
            return;
        }
        let _ = stream.set_nodelay(true);
        let stream = Arc::new(stream);
        self.next_serial += 1;
        let deadline = Instant::now() + self.shared.config.handshake_timeout;
        let state = State::Handshake { buf: Vec::new() };
        self.conns[slot] =
            Some(Conn { stream, peer, serial: self.next_serial, state, writes: WriteQueue::default(), deadline });
        if over {
            log::warn!("refusing a connection from {peer}: {max} connections already open");
            self.refuse(slot, http::text(503, "Service Unavailable: too many connections"));
        }
    }

    fn on_readable(&mut self, slot: usize) {
        let Some(conn) = self.conn(slot) else { return };
        match conn.state {
            State::Handshake { .. } => self.read_request(slot),
            State::Open { .. } => self.read_frames(slot),
            // Reading waits for connect; the bytes stay in the kernel until then.
            State::Connecting { .. } => {}
            State::Closing => self.discard_input(slot),
        }
    }

    fn read_request(&mut self, slot: usize) {
        let shared = self.shared.clone();
        let max = shared.config.max_header_bytes;
        let Some(conn) = self.conn(slot) else { return };
        let State::Handshake { buf } = &mut conn.state else { return };
        let mut chunk = [0u8; 4096];
        let eof = loop {
            match (&*conn.stream).read(&mut chunk) {
                Ok(0) => break true,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    if buf.len() > max {
                        break false;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break false,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break true,
            }
        };
        let parsed = Request::try_parse(buf);
        let peer = conn.peer;
        match parsed {
            Ok(Some((len, _))) if len > max => {
                log::warn!("refusing a request from {peer}: headers over {max} bytes");
                self.refuse(slot, http::text(431, "Request Header Fields Too Large"));
            }
            Ok(Some((len, request))) => {
                let tail = buf[len..].to_vec();
                let local = conn.stream.local_addr().unwrap_or(peer);
                match handshake::decide(&request, &shared, peer, local) {
                    Decision::Respond(bytes) => self.respond(slot, bytes),
                    Decision::Connect(upgrade) => self.start_connect(slot, upgrade, tail),
                }
            }
            Ok(None) if buf.len() > max => {
                log::warn!("refusing a request from {peer}: headers over {max} bytes");
                self.refuse(slot, http::text(431, "Request Header Fields Too Large"));
            }
            Ok(None) if eof => self.drop_conn(slot),
            Ok(None) => {}
            Err(err) => {
                // tungstenite parses only `GET` over HTTP/1.1; anything else that has a
                // request line still gets the answer its path calls for.
                log::debug!("request from {peer} is not a WebSocket GET: {err}");
                let answer = handshake::answer_other(buf, &shared);
                self.refuse(slot, answer);
            }
        }
    }

    fn refuse(&mut self, slot: usize, bytes: bytes::Bytes) {
        stats::incr(self.shared.stats.refused_connections());
        self.respond(slot, bytes);
    }

    /// Sends a plain HTTP answer and closes.
    fn respond(&mut self, slot: usize, bytes: bytes::Bytes) {
        let Some(conn) = self.conn(slot) else { return };
        conn.writes.push(bytes);
        conn.state = State::Closing;
        conn.deadline = Instant::now() + CLOSE_GRACE;
        self.flush(slot);
    }

    fn start_connect(&mut self, slot: usize, upgrade: Box<Upgrade>, tail: Vec<u8>) {
        let mailbox = self.mailbox.clone();
        let Some(conn) = self.conn(slot) else { return };
        let job = ConnectJob {
            mailbox,
            key: ConnKey { slot, serial: conn.serial },
            socket: upgrade.mount.socket.clone(),
            params: upgrade.params.clone(),
            info: upgrade.info.clone(),
        };
        conn.state = State::Connecting { upgrade, tail };
        self.shared.connect_pool.submit(job);
    }

    fn connected(&mut self, key: ConnKey, outcome: ConnectOutcome) {
        let shared = self.shared.clone();
        let mailbox = self.mailbox.clone();
        let Some(conn) = self.conn(key.slot).filter(|c| c.serial == key.serial) else { return };
        let State::Connecting { upgrade, tail } = std::mem::replace(&mut conn.state, State::Closing) else { return };
        let Upgrade { mount, params, serializer, response, .. } = *upgrade;
        let settings = &mount.socket.settings;
        let log_line = |verb: &str, took: Duration| {
            if let Some(level) = settings.log_connect {
                let filtered = crate::logging::filter(
                    &serde_json::Value::Object(params.clone()),
                    &shared.config.filter_parameters,
                );
                log::log!(
                    level,
                    "{verb} {} in {}\n  Transport: :websocket\n  Serializer: {}\n  Parameters: {filtered}",
                    mount.path,
                    crate::logging::duration(took),
                    serializer.name()
                );
            }
        };
        match outcome {
            ConnectOutcome::Refused { refusal, took } => {
                log_line("REFUSED CONNECTION TO", took);
                let bytes = http::text(refusal.status, &refusal.body);
                self.refuse(key.slot, bytes);
            }
            ConnectOutcome::Accepted { assigns, id, took } => {
                log_line("CONNECTED TO", took);
                let config = WebSocketConfig::default()
                    .read_buffer_size(READ_BUFFER)
                    .max_frame_size(Some(settings.max_frame_size))
                    .max_message_size(Some(settings.max_frame_size));
                let ws = WebSocketContext::from_partially_read(tail, Role::Server, Some(config));
                let outbound = Arc::new(Outbound::new(
                    key,
                    mailbox,
                    settings.outbound,
                    shared.stats.clone(),
                    Some(conn.stream.clone()),
                ));
                let idle = settings.idle_timeout;
                let session = Session::new(shared.clone(), mount.clone(), serializer, assigns, id, outbound);
                conn.writes.push(response);
                conn.state = State::Open { ws: Box::new(ws), session: Box::new(session), idle };
                conn.deadline = Instant::now() + idle;
                stats::incr(shared.stats.connections());
                stats::incr(shared.stats.connections_total());
                // Frames that arrived while connect ran are waiting in the kernel (or the tail).
                self.read_frames(key.slot);
                self.flush(key.slot);
            }
        }
    }

    fn read_frames(&mut self, slot: usize) {
        let shared = &self.shared;
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else { return };
        let State::Open { ws, session, idle } = &mut conn.state else { return };
        let mut written = Vec::new();
        let mut io = WsIo { stream: &conn.stream, written: &mut written, read: 0, drained: false };
        let mut close: Option<(u16, String)> = None;
        let mut peer_closed = false;
        loop {
            match ws.read(&mut io) {
                Ok(WsMessage::Text(text)) => {
                    if let Err(reason) = receive(session, RawFrame::Text(text.as_bytes()), &mut conn.writes, shared) {
                        close = Some((close_code::INVALID_DATA, reason));
                        break;
                    }
                }
                Ok(WsMessage::Binary(bytes)) => {
                    if let Err(reason) = receive(session, RawFrame::Binary(&bytes), &mut conn.writes, shared) {
                        close = Some((close_code::INVALID_DATA, reason));
                        break;
                    }
                }
                Ok(WsMessage::Close(_)) => {
                    peer_closed = true;
                }
                Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_)) => {}
                Err(WsError::Io(err)) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(WsError::Io(err)) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(WsError::ConnectionClosed | WsError::AlreadyClosed | WsError::Io(_)) => {
                    peer_closed = true;
                    break;
                }
                Err(WsError::Capacity(err)) => {
                    close = Some((close_code::TOO_BIG, err.to_string())); // P24
                    break;
                }
                Err(WsError::Utf8(_)) => {
                    close = Some((close_code::INVALID_DATA, "invalid UTF-8 in a text frame".into())); // P25
                    break;
                }
                Err(WsError::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake)) => {
                    peer_closed = true;
                    break;
                }
                Err(err) => {
                    close = Some((close_code::PROTOCOL_ERROR, err.to_string()));
                    break;
                }
            }
        }
        let read = io.read;
        if read > 0 {
            stats::add(shared.stats.bytes_in(), read as u64);
            conn.deadline = Instant::now() + *idle; // P23: counts from the last data received
        }
        // Pongs and close replies from tungstenite, in order after what was queued so far.
        if !written.is_empty() {
            conn.writes.push(written.into());
        }
        if let Some((code, reason)) = close {
            log::info!("closing the connection from {}: {reason} ({code})", conn.peer);
            self.close(slot, code, &reason, StopReason::closed());
        } else if peer_closed {
            self.end_session(slot, StopReason::closed());
        }
        self.flush(slot);
    }

    /// Moves queued items from the connection's outbound queue into its write queue.
    fn drain_outbound(&mut self, key: ConnKey) {
        let mut items = std::mem::take(&mut self.items);
        let Some(conn) = self.conns.get_mut(key.slot).and_then(Option::as_mut).filter(|c| c.serial == key.serial)
        else {
            return self.items = items;
        };
        let State::Open { session, .. } = &mut conn.state else { return self.items = items };
        let taken = session.outbound.take(&mut items);
        if let Some(rest) = taken.unfinished {
            conn.writes.push_front_rest(rest);
        }
        let mut disconnect = false;
        for item in items.drain(..) {
            if session.apply(item, &mut conn.writes).is_err() {
                disconnect = true;
            }
        }
        self.items = items;
        if taken.overflowed {
            let (frames, bytes) = conn.writes.discard_unstarted();
            session.outbound.written(frames, bytes);
            stats::incr(self.shared.stats.slow_consumer_closes());
            log::warn!("closing the connection from {}: slow consumer, its outbound queue is full", conn.peer);
            self.close(key.slot, close_code::POLICY, "slow consumer: outbound queue full", StopReason::closed());
        } else if disconnect {
            self.close(key.slot, close_code::GOING_AWAY, "disconnected", StopReason::closed()); // P22
        }
        self.flush(key.slot);
    }

    /// Ends the session (channels terminate with `reason`), queues a close frame, and
    /// closes once it is written.
    fn close(&mut self, slot: usize, code: u16, reason: &str, stop: StopReason) {
        self.end_session(slot, stop);
        if let Some(conn) = self.conn(slot) {
            conn.writes.push(Frame::close(code, reason).as_bytes().clone());
        }
    }

    fn end_session(&mut self, slot: usize, stop: StopReason) {
        let stats = self.shared.stats.clone();
        let Some(conn) = self.conn(slot) else { return };
        if let State::Open { session, .. } = &mut conn.state {
            // A frame a producer left half written must still be finished.
            if let Some(rest) = session.outbound.reactor_busy() {
                conn.writes.push_front_rest(rest);
            }
            session.end(&stop);
            stats::decr(stats.connections());
        }
        conn.state = State::Closing;
        conn.deadline = Instant::now() + CLOSE_GRACE;
    }

    fn discard_input(&mut self, slot: usize) {
        let Some(conn) = self.conn(slot) else { return };
        let mut chunk = [0u8; 4096];
        loop {
            match (&*conn.stream).read(&mut chunk) {
                Ok(0) => return self.drop_conn(slot),
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => return self.drop_conn(slot),
            }
        }
    }

    fn flush(&mut self, slot: usize) {
        let stats = &self.shared.stats;
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else { return };
        let outbound = match &conn.state {
            State::Open { session, .. } => Some(&session.outbound),
            _ => None,
        };
        let result = match outbound {
            Some(outbound) => outbound.flush(&mut conn.writes, &mut &*conn.stream),
            None => conn.writes.flush(&mut &*conn.stream),
        };
        match result {
            Ok(written) => {
                stats::add(stats.bytes_out(), written.bytes as u64);
                stats::add(stats.frames_out(), written.frames as u64);
                if matches!(conn.state, State::Closing) && conn.writes.is_empty() {
                    let _ = conn.stream.shutdown(std::net::Shutdown::Write);
                    self.drop_conn(slot);
                }
            }
            Err(_) => self.drop_conn(slot),
        }
    }

    fn drop_conn(&mut self, slot: usize) {
        self.end_session(slot, StopReason::closed());
        if let Some(mut conn) = self.conns.get_mut(slot).and_then(Option::take) {
            // The outbound queue let go of the socket when the session ended, so this is
            // the last handle; closing the descriptor would also take it out of the poll.
            if let Some(stream) = Arc::get_mut(&mut conn.stream) {
                let _ = self.poll.registry().deregister(stream);
            }
            self.shared.tcp_connections.fetch_sub(1, Ordering::Relaxed);
            self.free.push(slot);
        }
    }

    /// Closes connections past their deadline: idle ones (P23), stalled handshakes,
    /// and closing ones that would not take their last bytes.
    fn expire(&mut self, now: Instant) {
        for slot in 0..self.conns.len() {
            let Some(conn) = self.conn(slot) else { continue };
            if now < conn.deadline {
                continue;
            }
            match conn.state {
                State::Open { .. } => {
                    // Data may have arrived since the last poll: read it before judging.
                    self.read_frames(slot);
                    let Some(conn) = self.conn(slot) else { continue };
                    if now < conn.deadline || !matches!(conn.state, State::Open { .. }) {
                        continue;
                    }
                    log::info!("closing the connection from {}: idle timeout", conn.peer);
                    self.close(slot, close_code::PROTOCOL_ERROR, "idle timeout", StopReason::closed());
                    self.flush(slot);
                }
                State::Handshake { .. } => {
                    log::info!("closing the connection from {}: handshake timeout", conn.peer);
                    self.refuse(slot, http::text(408, "Request Timeout"));
                }
                State::Connecting { .. } => {}
                State::Closing => self.drop_conn(slot),
            }
        }
    }

    /// Server shutdown, one batch: up to `count` connections' channels drain with
    /// `{shutdown, draining}` and the connections close with 1012 so clients reconnect
    /// elsewhere (P81). Connections still in their handshake are dropped.
    fn drain(&mut self, mut count: usize) {
        for slot in 0..self.conns.len() {
            let Some(conn) = self.conn(slot) else { continue };
            match conn.state {
                State::Open { .. } if count > 0 => {
                    count -= 1;
                    self.close(slot, close_code::RESTART, "server restart", StopReason::draining());
                    self.flush(slot);
                }
                State::Handshake { .. } | State::Connecting { .. } => self.drop_conn(slot),
                _ => {}
            }
        }
    }
}

/// Decodes a data frame and hands it to the session. A frame that does not decode
/// ends the connection without a reply (P42).
fn receive(session: &mut Session, frame: RawFrame<'_>, out: &mut WriteQueue, shared: &Shared) -> Result<(), String> {
    match session.serializer.decode(frame) {
        Ok(msg) => {
            stats::incr(shared.stats.messages_in());
            session.receive(msg, out);
            Ok(())
        }
        Err(err) => {
            stats::incr(shared.stats.malformed_frames());
            Err(format!("malformed message: {err}"))
        }
    }
}
