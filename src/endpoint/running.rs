//! A running endpoint's threads, and how they stop: the acceptor first, then the
//! connections in batches, then the channels, the reactors and the workers, and in a
//! cluster the link to the other nodes.

use super::config::EndpointConfig;
use super::features::StopLast;
use super::in_memory::InMemoryConnections;
use crate::error::Error;
use crate::protocol::sockets::Sockets;
use crate::telemetry::Event;
use crate::transport::acceptor::AcceptorStop;
use crate::transport::mailbox::{Arrival, Command, Mailbox};
use parking_lot::{Condvar, Mutex};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub(super) struct Running {
    pub(super) sockets: Arc<Sockets>,
    config: EndpointConfig,
    /// `None` for an endpoint started without a listener.
    pub(super) local_addr: Option<SocketAddr>,
    acceptor: Mutex<Option<(JoinHandle<()>, AcceptorStop)>>,
    pub(super) in_memory: InMemoryConnections,
    reactors: Mutex<Vec<JoinHandle<()>>>,
    /// Emptied at shutdown, so that no file descriptor outlives the server.
    mailboxes: Mutex<Vec<Arc<Mailbox>>>,
    /// The reactor the next handed-over connection goes to (in turn, as the acceptor's).
    next_reactor: AtomicUsize,
    stopped: Mutex<bool>,
    stopped_signal: Condvar,
    /// The cluster's stop, if the endpoint joined one.
    stop_last: Mutex<Option<StopLast>>,
}

impl Running {
    pub(super) fn new(
        sockets: Arc<Sockets>,
        config: EndpointConfig,
        local_addr: Option<SocketAddr>,
        acceptor: Option<(JoinHandle<()>, AcceptorStop)>,
        reactors: Vec<JoinHandle<()>>,
        mailboxes: Vec<Arc<Mailbox>>,
        stop_last: Option<StopLast>,
    ) -> Self {
        Running {
            sockets,
            config,
            local_addr,
            acceptor: Mutex::new(acceptor),
            in_memory: InMemoryConnections::default(),
            reactors: Mutex::new(reactors),
            mailboxes: Mutex::new(mailboxes),
            next_reactor: AtomicUsize::new(0),
            stopped: Mutex::new(false),
            stopped_signal: Condvar::new(),
            stop_last: Mutex::new(stop_last),
        }
    }

    pub(super) fn shutdown(&self) {
        let mut stopped = self.stopped.lock();
        if *stopped {
            return;
        }
        let deadline = Instant::now() + self.config.shutdown_timeout;
        if let Some((acceptor, stop)) = self.acceptor.lock().take() {
            stop.stop();
            let _ = acceptor.join();
        }
        self.in_memory.drain();
        let mailboxes = std::mem::take(&mut *self.mailboxes.lock());
        self.drain(&mailboxes, deadline);
        for mailbox in &mailboxes {
            mailbox.command(Command::Stop);
        }
        let runtime = &self.sockets.runtime;
        runtime.spares.close();
        let left = runtime.tracker.wait_until_none(deadline);
        if left > 0 {
            log::error!("shutdown: {left} channel threads did not finish terminate in time; leaving them behind");
        }
        for reactor in self.reactors.lock().drain(..) {
            let _ = reactor.join();
        }
        self.sockets.connect_pool.stop();
        runtime.timers.stop();
        runtime.presence.stop();
        runtime.pubsub.close_subscriptions();
        // Last, so that the presences of the channels that ended leave the other nodes too.
        if let Some(stop) = self.stop_last.lock().take() {
            stop();
        }
        *stopped = true;
        self.stopped_signal.notify_all();
        match self.local_addr {
            Some(addr) => log::info!("phx-channels endpoint on {addr} shut down"),
            None => log::debug!("phx-channels endpoint without a listener shut down"),
        }
    }

    /// Hands a connection another server accepted, with the bytes it read of it, to
    /// the next reactor.
    pub(super) fn adopt(&self, stream: std::net::TcpStream, head: &[u8]) -> Result<(), Error> {
        let peer = stream.peer_addr()?;
        stream.set_nonblocking(true)?;
        let stream = mio::net::TcpStream::from_std(stream);
        let mailboxes = self.mailboxes.lock();
        if mailboxes.is_empty() {
            return Err(Error::Shutdown);
        }
        let next = self.next_reactor.fetch_add(1, Ordering::Relaxed) % mailboxes.len();
        mailboxes[next].command(Command::Adopt(stream, peer, Arrival::HandedOver(head.to_vec())));
        Ok(())
    }

    /// Closes open connections and long-poll sessions in batches until none is left or
    /// `deadline` passes.
    fn drain(&self, mailboxes: &[Arc<Mailbox>], deadline: Instant) {
        if mailboxes.is_empty() {
            return;
        }
        let per_reactor = self.config.drain_batch_size.div_ceil(mailboxes.len());
        let stats = &self.sockets.runtime.stats;
        let open = || stats.connections().load(Ordering::Relaxed) + stats.long_poll_sessions().load(Ordering::Relaxed);
        while open() > 0 && Instant::now() < deadline {
            self.sockets.runtime.telemetry.emit(|hook| {
                hook(&Event::SocketDrain {
                    connections: open(),
                    batch_size: self.config.drain_batch_size,
                    interval: self.config.drain_batch_interval,
                })
            });
            for mailbox in mailboxes {
                mailbox.command(Command::Drain(per_reactor));
            }
            let next = (Instant::now() + self.config.drain_batch_interval).min(deadline);
            while Instant::now() < next && open() > 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    /// Blocks until the endpoint has been shut down.
    pub(super) fn wait(&self) {
        let mut stopped = self.stopped.lock();
        while !*stopped {
            self.stopped_signal.wait(&mut stopped);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown();
    }
}
