//! A running endpoint's threads, and how they stop: the acceptor first, then the
//! connections in batches, then the channels, the reactors and the workers, and in a
//! cluster the link to the other nodes.

use super::config::EndpointConfig;
#[cfg(feature = "redis")]
use crate::cluster::Cluster;
use crate::protocol::sockets::Sockets;
use crate::transport::acceptor::AcceptorStop;
use crate::transport::mailbox::{Command, Mailbox};
use parking_lot::{Condvar, Mutex};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub(super) struct Running {
    pub(super) sockets: Arc<Sockets>,
    config: EndpointConfig,
    pub(super) local_addr: SocketAddr,
    acceptor: Mutex<Option<(JoinHandle<()>, AcceptorStop)>>,
    reactors: Mutex<Vec<JoinHandle<()>>>,
    /// Emptied at shutdown, so that no file descriptor outlives the server.
    mailboxes: Mutex<Vec<Arc<Mailbox>>>,
    stopped: Mutex<bool>,
    stopped_signal: Condvar,
    #[cfg(feature = "redis")]
    cluster: Mutex<Option<Cluster>>,
}

impl Running {
    pub(super) fn new(
        sockets: Arc<Sockets>,
        config: EndpointConfig,
        local_addr: SocketAddr,
        acceptor: (JoinHandle<()>, AcceptorStop),
        reactors: Vec<JoinHandle<()>>,
        mailboxes: Vec<Arc<Mailbox>>,
        #[cfg(feature = "redis")] cluster: Option<Cluster>,
    ) -> Self {
        Running {
            sockets,
            config,
            local_addr,
            acceptor: Mutex::new(Some(acceptor)),
            reactors: Mutex::new(reactors),
            mailboxes: Mutex::new(mailboxes),
            stopped: Mutex::new(false),
            stopped_signal: Condvar::new(),
            #[cfg(feature = "redis")]
            cluster: Mutex::new(cluster),
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
        let mailboxes = std::mem::take(&mut *self.mailboxes.lock());
        self.drain(&mailboxes, deadline);
        for mailbox in &mailboxes {
            mailbox.command(Command::Stop);
        }
        let runtime = &self.sockets.runtime;
        let left = runtime.tracker.wait_until_none(deadline);
        if left > 0 {
            log::error!("shutdown: {left} channel threads did not finish terminate in time; leaving them behind");
        }
        for reactor in self.reactors.lock().drain(..) {
            let _ = reactor.join();
        }
        self.sockets.connect_pool.stop();
        runtime.presence.stop();
        // Last, so that the presences of the channels that ended leave the other nodes too.
        #[cfg(feature = "redis")]
        if let Some(cluster) = self.cluster.lock().take() {
            cluster.stop();
        }
        *stopped = true;
        self.stopped_signal.notify_all();
        log::info!("phx-channels endpoint on {} shut down", self.local_addr);
    }

    /// Closes open connections in batches until none is left or `deadline` passes.
    fn drain(&self, mailboxes: &[Arc<Mailbox>], deadline: Instant) {
        let per_reactor = self.config.drain_batch_size.div_ceil(mailboxes.len());
        let connections = self.sockets.runtime.stats.connections();
        while connections.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
            for mailbox in mailboxes {
                mailbox.command(Command::Drain(per_reactor));
            }
            let next = (Instant::now() + self.config.drain_batch_interval).min(deadline);
            while Instant::now() < next && connections.load(Ordering::Relaxed) > 0 {
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
