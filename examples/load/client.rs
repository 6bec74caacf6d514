//! Many WebSocket connections on one mio event loop: queued opens (a bounded number
//! at a time), event dispatch, heartbeats for quiet connections, and closing them all.

use crate::args::WsUrl;
use crate::ws::{HEARTBEAT_AFTER, Handler, Phase, Rng, Ws, read_ready, seed, thread_seed};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::FromRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One event loop with many connections. Connections are opened at most `max_pending`
/// at a time, so that a burst of thousands does not overflow the server's backlog.
pub(crate) struct Client {
    poll: Poll,
    events: Events,
    /// Per event: slot, readable, writable, peer closed or error.
    ready: Vec<(usize, bool, bool, bool)>,
    conns: Vec<Option<Ws>>,
    free: Vec<usize>,
    queued: VecDeque<usize>,
    url: Arc<WsUrl>,
    pending: usize,
    max_pending: usize,
    scratch: Vec<u8>,
    rng: Rng,
    live: usize,
    next_tick: Instant,
    /// Local addresses to connect from, in turn (empty: the kernel's choice): each
    /// has its own ephemeral ports, so one client can open more connections.
    sources: Vec<IpAddr>,
}

impl Client {
    pub(crate) fn new(url: Arc<WsUrl>, max_pending: usize) -> io::Result<Client> {
        Ok(Client {
            poll: Poll::new()?,
            events: Events::with_capacity(1024),
            ready: Vec::new(),
            conns: Vec::new(),
            free: Vec::new(),
            queued: VecDeque::new(),
            url,
            pending: 0,
            max_pending: max_pending.max(1),
            scratch: vec![0; 256 * 1024],
            rng: Rng::new(seed() ^ thread_seed()),
            live: 0,
            next_tick: Instant::now() + Duration::from_secs(1),
            sources: Vec::new(),
        })
    }

    /// Connects from these local addresses, connection `tag` from `sources[tag % len]`.
    pub(crate) fn connect_from(&mut self, sources: Vec<IpAddr>) {
        self.sources = sources;
    }

    /// Queues a connection named `tag`.
    pub(crate) fn add(&mut self, tag: usize) {
        self.queued.push_back(tag);
    }

    /// Connections queued, connecting or open.
    pub(crate) fn busy(&self) -> bool {
        self.live > 0 || !self.queued.is_empty()
    }

    pub(crate) fn open_conns(&mut self) -> impl Iterator<Item = &mut Ws> {
        self.conns.iter_mut().flatten().filter(|ws| ws.is_open())
    }

    fn start_queued(&mut self, handler: &mut impl Handler) {
        while self.pending < self.max_pending {
            let Some(tag) = self.queued.pop_front() else { return };
            let source = (!self.sources.is_empty()).then(|| self.sources[tag % self.sources.len()]);
            let connected = match source {
                Some(source) => connect_from(source, self.url.addr),
                None => TcpStream::connect(self.url.addr),
            };
            let mut stream = match connected {
                Ok(stream) => stream,
                Err(err) => {
                    handler.closed(tag, Some(&format!("connect: {err}")));
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let slot = self.free.pop().unwrap_or_else(|| {
                self.conns.push(None);
                self.conns.len() - 1
            });
            if let Err(err) =
                self.poll.registry().register(&mut stream, Token(slot), Interest::READABLE | Interest::WRITABLE)
            {
                self.free.push(slot);
                handler.closed(tag, Some(&format!("register: {err}")));
                continue;
            }
            self.conns[slot] = Some(Ws::connecting(stream, tag, &mut self.rng));
            self.pending += 1;
            self.live += 1;
        }
    }

    /// Waits for events (at most `timeout`) and handles them.
    pub(crate) fn poll(&mut self, timeout: Option<Duration>, handler: &mut impl Handler) -> io::Result<()> {
        self.start_queued(handler);
        if let Err(err) = self.poll.poll(&mut self.events, timeout)
            && err.kind() != io::ErrorKind::Interrupted
        {
            return Err(err);
        }
        let mut ready = std::mem::take(&mut self.ready);
        ready.clear();
        for event in self.events.iter() {
            let readable = event.is_readable() || event.is_read_closed() || event.is_error();
            let closed = event.is_read_closed() || event.is_error();
            ready.push((event.token().0, readable, event.is_writable() || event.is_error(), closed));
        }
        for &(slot, readable, writable, closed) in &ready {
            self.service(slot, readable, writable, closed, handler);
        }
        self.ready = ready;
        self.start_queued(handler);
        let now = Instant::now();
        if now >= self.next_tick {
            self.next_tick = now + Duration::from_secs(1);
            self.tick(now, handler);
        }
        Ok(())
    }

    fn service(&mut self, slot: usize, readable: bool, writable: bool, closed: bool, handler: &mut impl Handler) {
        let Client { conns, scratch, url, .. } = self;
        let Some(ws) = conns.get_mut(slot).and_then(Option::as_mut) else { return };
        let was_pending = ws.pending();
        if ws.phase == Phase::Connecting {
            match ws.stream.take_error() {
                Ok(Some(err)) | Err(err) => ws.fail(format!("connect: {err}")),
                Ok(None) => match ws.stream.peer_addr() {
                    Ok(_) => {
                        let request = ws.upgrade_request(url);
                        ws.wbuf.extend_from_slice(request.as_bytes());
                        ws.phase = Phase::Handshake;
                    }
                    Err(err) if err.kind() == io::ErrorKind::NotConnected => {}
                    Err(err) => ws.fail(format!("connect: {err}")),
                },
            }
        }
        if writable || !ws.wbuf.is_empty() {
            ws.flush();
        }
        if readable {
            read_ready(ws, scratch, handler, closed);
        }
        self.settle(slot, was_pending, handler);
    }

    /// Updates the counts after a connection changed phase; removes it once closed.
    fn settle(&mut self, slot: usize, was_pending: bool, handler: &mut impl Handler) {
        let Some(ws) = self.conns.get_mut(slot).and_then(Option::as_mut) else { return };
        if was_pending && !ws.pending() {
            self.pending -= 1;
        }
        if ws.phase == Phase::Closed {
            let mut ws = self.conns[slot].take().expect("present");
            let _ = self.poll.registry().deregister(&mut ws.stream);
            self.free.push(slot);
            self.live -= 1;
            handler.closed(ws.tag, ws.error.as_deref());
        }
    }

    /// Once a second: heartbeats for quiet connections, and removal of connections
    /// that failed outside an event (a send from the caller).
    fn tick(&mut self, now: Instant, handler: &mut impl Handler) {
        for slot in 0..self.conns.len() {
            let Some(ws) = self.conns[slot].as_mut() else { continue };
            let was_pending = ws.pending();
            if ws.is_open() && now.duration_since(ws.last_send) > HEARTBEAT_AFTER {
                ws.send_text(br#"[null,"hb","phoenix","heartbeat",{}]"#);
            }
            self.settle(slot, was_pending, handler);
        }
    }

    /// Closes every connection (close handshake), waiting at most `grace`.
    pub(crate) fn close_all(&mut self, grace: Duration, handler: &mut impl Handler) {
        self.queued.clear();
        for slot in 0..self.conns.len() {
            let Some(ws) = self.conns[slot].as_mut() else { continue };
            let was_pending = ws.pending();
            ws.close(1000);
            self.settle(slot, was_pending, handler);
        }
        let deadline = Instant::now() + grace;
        while self.live > 0 {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            if self.poll(Some((deadline - now).min(Duration::from_millis(50))), handler).is_err() {
                break;
            }
        }
        // Whatever did not finish its close handshake in time is dropped.
        for slot in 0..self.conns.len() {
            if let Some(ws) = self.conns[slot].as_mut() {
                let was_pending = ws.pending();
                ws.phase = Phase::Closed;
                self.settle(slot, was_pending, handler);
            }
        }
    }
}

/// A non-blocking connect to `to` from `source` (any port).
fn connect_from(source: IpAddr, to: SocketAddr) -> io::Result<TcpStream> {
    let std_addr = |addr: SocketAddr| -> (libc::sockaddr_storage, libc::socklen_t) {
        // SAFETY: an all-zero sockaddr_storage is a valid (unspecified) address.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let len = match addr {
            SocketAddr::V4(v4) => {
                // SAFETY: sockaddr_storage is large and aligned enough for a sockaddr_in.
                let sin = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in) };
                sin.sin_family = libc::AF_INET as libc::sa_family_t;
                sin.sin_port = v4.port().to_be();
                sin.sin_addr = libc::in_addr { s_addr: u32::from(*v4.ip()).to_be() };
                std::mem::size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(v6) => {
                // SAFETY: sockaddr_storage is large and aligned enough for a sockaddr_in6.
                let sin6 = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in6) };
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_port = v6.port().to_be();
                sin6.sin6_addr = libc::in6_addr { s6_addr: v6.ip().octets() };
                std::mem::size_of::<libc::sockaddr_in6>()
            }
        };
        (storage, len as libc::socklen_t)
    };
    let family = if to.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    // SAFETY: plain socket(2) call; the descriptor is owned by the TcpStream below.
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh socket nobody else owns; the stream closes it on drop.
    let stream = unsafe { std::net::TcpStream::from_raw_fd(fd) };
    let (local, local_len) = std_addr(SocketAddr::new(source, 0));
    // SAFETY: `local` is a valid address of `local_len` bytes for the socket's family.
    if unsafe { libc::bind(fd, &local as *const _ as *const libc::sockaddr, local_len) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let (remote, remote_len) = std_addr(to);
    // SAFETY: as for bind.
    if unsafe { libc::connect(fd, &remote as *const _ as *const libc::sockaddr, remote_len) } != 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(err);
        }
    }
    Ok(TcpStream::from_std(stream))
}
