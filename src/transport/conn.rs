//! One connection as its reactor holds it: where it is in its life (reading the HTTP
//! request, waiting for the application's verdict, speaking WebSocket, closing; or,
//! on a long-poll path, reading a body or holding a poll), its socket writer, and its
//! deadline.

use super::handler::{ConnectionHandler, Disconnect, Hangup, Opened, Peers};
use super::inflate::Inflater;
use super::long_poll::LongPollRequest;
use super::outbound::OutItem;
use super::socket_writer::SocketWriter;
use super::stream::Stream;
use super::write_queue::WriteQueue;
use crate::serializer::{Frame, RawFrame};
use crate::stats::{self, Stats};
use bytes::Bytes;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tungstenite::handshake::machine::TryParse;
use tungstenite::handshake::server::Request;
use tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};
use tungstenite::{Error as WsError, Message as WsMessage};

/// How long a closing connection may take to flush its last frames.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// tungstenite's read buffer per connection: its default (128 KiB) would cost more
/// memory per connection than the channel threads do.
const READ_BUFFER: usize = 4096;

/// Close codes the server sends. Closes that should make clients reconnect never use
/// 1000 (normal closure).
pub(super) mod close_code {
    pub(crate) const GOING_AWAY: u16 = 1001;
    pub(crate) const PROTOCOL_ERROR: u16 = 1002;
    pub(crate) const INVALID_DATA: u16 = 1007;
    pub(crate) const POLICY: u16 = 1008;
    pub(crate) const TOO_BIG: u16 = 1009;
    pub(crate) const RESTART: u16 = 1012;
}

pub(super) enum State {
    /// Reading the HTTP request.
    Handshake { buf: Vec<u8> },
    /// Waiting for the application's verdict; what the client sent after its request.
    Deciding { tail: Vec<u8> },
    /// Speaking WebSocket.
    /// `inflater` is there when the connection negotiated permessage-deflate.
    Open {
        ws: Box<WebSocketContext>,
        handler: Box<dyn ConnectionHandler>,
        idle: Duration,
        inflater: Option<Box<Inflater>>,
    },
    /// A long-poll request: reading its body, `length` bytes in all.
    Body { request: Box<LongPollRequest>, length: usize },
    /// A long-poll `GET` held until its session (by serial) has output or its window ends.
    Held { session: u64 },
    /// A long-poll request sent on to the node that holds its session, waiting for the
    /// answer until the deadline; the request is kept (without its body) in case the
    /// session is not there.
    Forwarded { request: Box<LongPollRequest> },
    /// Flushing the last bytes, then closing.
    Closing,
}

/// What reading the HTTP request came to.
pub(super) enum RequestRead {
    /// Not all of it has arrived yet.
    Partial,
    /// The client went away before sending a whole request.
    Gone,
    /// The head is larger than allowed.
    TooLarge,
    /// A `GET` over HTTP/1.1, and whatever the client sent after it.
    Parsed(Box<Request>),
    /// Something else, given whole.
    Unparsed(Vec<u8>),
}

/// What reading a long-poll request's body came to.
pub(super) enum BodyRead {
    /// Not all of it has arrived yet.
    Partial,
    /// The client went away before sending it all.
    Gone,
    /// The request, with its body.
    Complete(Box<LongPollRequest>),
}

/// A close the connection asked for, after reading or applying its outbound queue.
pub(super) struct CloseWith {
    pub(super) code: u16,
    pub(super) reason: String,
}

pub(super) struct Conn {
    pub(super) peer: SocketAddr,
    pub(super) serial: u64,
    pub(super) state: State,
    pub(super) writer: SocketWriter,
    pub(super) deadline: Instant,
    /// When the reactor's deadline heap will look at this connection next, if it will
    /// (`reactor/deadlines.rs`): never later than `deadline`.
    pub(super) scheduled: Option<Instant>,
}

/// tungstenite's view of the socket: reads come from the stream; writes (pongs and
/// close replies) are collected so they can join the connection's write queue in order.
struct WsIo<'a> {
    stream: &'a mut Stream,
    /// Inflates compressed messages on their way in, when the connection compresses.
    inflater: Option<&'a mut Inflater>,
    written: &'a mut Vec<u8>,
    read: usize,
    /// A read returned less than asked: the socket is empty for now. Reading again
    /// would only return `WouldBlock`, and data that arrives later raises a new
    /// (edge-triggered) event, so the next read reports `WouldBlock` without a call.
    drained: bool,
}

impl Read for WsIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(inflater) = self.inflater.as_deref_mut() {
            return inflater.read(self.stream, buf, &mut self.read);
        }
        if self.drained {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.stream.read(buf)?;
        self.drained = n < buf.len() && self.stream.short_read_empties();
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

impl Conn {
    /// A new connection; `head` holds what was already read of its request.
    pub(super) fn new(
        stream: Stream,
        peer: SocketAddr,
        serial: u64,
        handshake_timeout: Duration,
        head: Vec<u8>,
    ) -> Self {
        let deadline = Instant::now() + handshake_timeout;
        Conn {
            peer,
            serial,
            state: State::Handshake { buf: head },
            writer: SocketWriter::new(stream),
            deadline,
            scheduled: None,
        }
    }

    /// The connection's two ends, and whether it is TLS.
    pub(super) fn peers(&mut self) -> Peers {
        let stream = self.writer.stream();
        let local = stream.tcp().local_addr().unwrap_or(self.peer);
        Peers { remote: self.peer, local, secure: stream.is_tls() }
    }

    /// Reads what the socket has of the HTTP request head (at most `max` bytes).
    pub(super) fn read_request(&mut self, max: usize) -> RequestRead {
        let State::Handshake { buf } = &mut self.state else { return RequestRead::Partial };
        let mut chunk = [0u8; 4096];
        let eof = loop {
            match self.writer.stream().read(&mut chunk) {
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
        match Request::try_parse(buf) {
            Ok(Some((len, _))) if len > max => RequestRead::TooLarge,
            Ok(Some((len, request))) => {
                let tail = buf[len..].to_vec();
                self.state = State::Deciding { tail };
                RequestRead::Parsed(Box::new(request))
            }
            Ok(None) if buf.len() > max => RequestRead::TooLarge,
            Ok(None) if eof => RequestRead::Gone,
            Ok(None) => RequestRead::Partial,
            Err(_) => RequestRead::Unparsed(std::mem::take(buf)),
        }
    }

    /// A long-poll request whose body is still to come (`request.body` holds what came
    /// with the head). It must arrive before the handshake deadline.
    pub(super) fn expect_body(&mut self, request: Box<LongPollRequest>, length: usize) {
        self.state = State::Body { request, length };
    }

    /// Reads what the socket has of a long-poll request's body.
    pub(super) fn read_body(&mut self, stats: &Stats) -> BodyRead {
        let State::Body { request, length } = &mut self.state else { return BodyRead::Partial };
        let mut chunk = [0u8; 4096];
        let mut gone = false;
        while request.body.len() < *length {
            let want = (*length - request.body.len()).min(chunk.len());
            match self.writer.stream().read(&mut chunk[..want]) {
                Ok(0) => {
                    gone = true;
                    break;
                }
                Ok(n) => {
                    stats::add(stats.bytes_in(), n as u64);
                    request.body.extend_from_slice(&chunk[..n]);
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    gone = true;
                    break;
                }
            }
        }
        if request.body.len() >= *length {
            request.body.truncate(*length);
            let State::Body { request, .. } = std::mem::replace(&mut self.state, State::Closing) else {
                unreachable!("the state was matched above")
            };
            return BodyRead::Complete(request);
        }
        if gone { BodyRead::Gone } else { BodyRead::Partial }
    }

    /// Waits for the application's verdict on a new long-poll session.
    pub(super) fn await_verdict(&mut self) {
        self.state = State::Deciding { tail: Vec::new() };
    }

    /// Waits for the answer to a forwarded request until `deadline`.
    pub(super) fn await_forwarded(&mut self, request: Box<LongPollRequest>, deadline: Instant) {
        self.state = State::Forwarded { request };
        self.deadline = deadline;
    }

    /// The time the reactor must look at this connection, if its deadline moved earlier
    /// than the look it has scheduled (or it has none); recorded as scheduled.
    pub(super) fn reschedule(&mut self) -> Option<Instant> {
        if self.scheduled.is_some_and(|at| at <= self.deadline) {
            return None;
        }
        self.scheduled = Some(self.deadline);
        self.scheduled
    }

    /// Holds a long-poll `GET` for session `session` until `deadline`.
    pub(super) fn hold(&mut self, session: u64, deadline: Instant) {
        self.state = State::Held { session };
        self.deadline = deadline;
    }

    /// Sends bytes now, before the answer (a `100 Continue`).
    pub(super) fn send_interim(&mut self, bytes: Bytes) {
        self.writer.queue().push(bytes);
    }

    /// The socket, to move the connection to another reactor; `None` if another
    /// thread holds it too.
    pub(super) fn into_stream(self) -> Option<Stream> {
        self.writer.into_stream()
    }

    /// Sends a plain HTTP answer, then closes.
    pub(super) fn respond(&mut self, bytes: Bytes) {
        self.writer.queue().push(bytes);
        self.begin_closing();
    }

    /// The application accepted the upgrade: speak WebSocket from here on.
    pub(super) fn open(&mut self, opened: Opened, stats: &Stats) {
        let State::Deciding { tail } = std::mem::replace(&mut self.state, State::Closing) else { return };
        let Opened { response, handler, outbound, idle_timeout, max_frame_size, deflate } = opened;
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .max_frame_size(Some(max_frame_size))
            .max_message_size(Some(max_frame_size));
        let (tail, inflater) = match deflate {
            Some(agreed) => (Vec::new(), Some(Box::new(Inflater::new(agreed, max_frame_size, tail)))),
            None => (tail, None),
        };
        let ws = WebSocketContext::from_partially_read(tail, Role::Server, Some(config));
        self.writer.queue().push(response);
        self.writer.attach(outbound);
        self.state = State::Open { ws: Box::new(ws), handler, idle: idle_timeout, inflater };
        self.deadline = Instant::now() + idle_timeout;
        stats::incr(stats.connections());
        stats::incr(stats.connections_total());
    }

    /// Reads and handles every frame the socket has. Returns the close the
    /// connection must make, if any; a client that went away ends the session here.
    pub(super) fn read_frames(&mut self, stats: &Stats) -> Option<CloseWith> {
        let State::Open { ws, handler, idle, inflater } = &mut self.state else { return None };
        let mut written = Vec::new();
        let (stream, out) = self.writer.parts();
        let mut io = WsIo { stream, inflater: inflater.as_deref_mut(), written: &mut written, read: 0, drained: false };
        let mut close = None;
        let mut peer_closed = false;
        loop {
            let read = ws.read(&mut io);
            if read.is_err()
                && let Some(why) = io.inflater.as_deref_mut().and_then(Inflater::take_failure)
            {
                close = Some(why);
                break;
            }
            let frame = match read {
                Ok(WsMessage::Text(text)) => receive(handler.as_mut(), RawFrame::Text(text.as_bytes()), out, stats),
                Ok(WsMessage::Binary(bytes)) => receive(handler.as_mut(), RawFrame::Binary(&bytes), out, stats),
                Ok(WsMessage::Close(_)) => {
                    peer_closed = true;
                    Ok(())
                }
                Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_)) => Ok(()),
                Err(WsError::Io(err)) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(WsError::Io(err)) if err.kind() == io::ErrorKind::Interrupted => Ok(()),
                Err(
                    WsError::ConnectionClosed
                    | WsError::AlreadyClosed
                    | WsError::Io(_)
                    | WsError::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake),
                ) => {
                    peer_closed = true;
                    break;
                }
                Err(WsError::Capacity(err)) => Err(CloseWith { code: close_code::TOO_BIG, reason: err.to_string() }),
                Err(WsError::Utf8(_)) => {
                    Err(CloseWith { code: close_code::INVALID_DATA, reason: "invalid UTF-8 in a text frame".into() })
                }
                Err(err) => Err(CloseWith { code: close_code::PROTOCOL_ERROR, reason: err.to_string() }),
            };
            if let Err(why) = frame {
                close = Some(why);
                break;
            }
        }
        let read = io.read;
        if read > 0 {
            stats::add(stats.bytes_in(), read as u64);
            self.deadline = Instant::now() + *idle; // idle time counts from the last data received
        }
        // Pongs and close replies from tungstenite, in order after what was queued so far.
        if !written.is_empty() {
            out.push(written.into());
        }
        if close.is_none() && peer_closed {
            self.end_session(Hangup::Closed, stats);
        }
        close
    }

    /// Applies what other threads queued for the connection. Returns the close it
    /// calls for: a slow consumer's, or a `disconnect`.
    pub(super) fn apply_outbound(&mut self, items: &mut Vec<OutItem>, stats: &Stats) -> Option<CloseWith> {
        let State::Open { handler, .. } = &mut self.state else { return None };
        let overflowed = self.writer.take_outbound(items);
        let mut disconnect = false;
        for item in items.drain(..) {
            if let Err(Disconnect) = handler.apply(item, self.writer.queue()) {
                disconnect = true;
            }
        }
        if overflowed {
            self.writer.discard_unstarted();
            stats::incr(stats.slow_consumer_closes());
            log::warn!("closing the connection from {}: slow consumer, its outbound queue is full", self.peer);
            Some(CloseWith { code: close_code::POLICY, reason: "slow consumer: outbound queue full".into() })
        } else if disconnect {
            Some(CloseWith { code: close_code::GOING_AWAY, reason: "disconnected".into() })
        } else {
            None
        }
    }

    /// Ends the session (`why` tells the handler), queues a close frame, and closes
    /// once it is written.
    pub(super) fn close(&mut self, close: &CloseWith, why: Hangup, stats: &Stats) {
        self.end_session(why, stats);
        self.writer.queue().push(Frame::close(close.code, &close.reason).as_bytes().clone());
    }

    /// Ends the WebSocket session if there is one; the connection is closing from now.
    pub(super) fn end_session(&mut self, why: Hangup, stats: &Stats) {
        if let State::Open { handler, .. } = &mut self.state {
            // Other threads let go of the socket before the channels stop, so nothing
            // a terminating channel pushes can reach it.
            self.writer.detach();
            handler.end(why);
            stats::decr(stats.connections());
        }
        self.begin_closing();
    }

    fn begin_closing(&mut self) {
        self.state = State::Closing;
        self.deadline = Instant::now() + CLOSE_GRACE;
    }

    /// Reads and drops whatever a closing connection's client still sends. Returns
    /// whether the client has gone.
    pub(super) fn discard_input(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        loop {
            match (&**self.writer.stream().tcp()).read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return false,
                Err(_) => return true,
            }
        }
    }

    /// Writes what is queued. Returns whether the connection is done: a closing one
    /// that has written everything, or one whose socket failed.
    pub(super) fn flush(&mut self, stats: &Stats) -> bool {
        match self.writer.flush() {
            Ok(written) => {
                stats::add(stats.bytes_out(), written.bytes as u64);
                stats::add(stats.frames_out(), written.frames as u64);
                if matches!(self.state, State::Closing) && self.writer.is_empty() {
                    self.writer.stream().shutdown();
                    return true;
                }
                false
            }
            Err(_) => true,
        }
    }
}

/// Decodes a data frame and hands it to the connection's handler. A frame that does
/// not decode ends the connection, without a reply.
fn receive(
    handler: &mut dyn ConnectionHandler,
    frame: RawFrame<'_>,
    out: &mut WriteQueue,
    stats: &Stats,
) -> Result<(), CloseWith> {
    match handler.receive(frame, out) {
        Ok(()) => {
            stats::incr(stats.messages_in());
            Ok(())
        }
        Err(reason) => {
            stats::incr(stats.malformed_frames());
            Err(CloseWith { code: close_code::INVALID_DATA, reason })
        }
    }
}
