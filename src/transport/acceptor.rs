//! The acceptor: takes new TCP connections and deals them out to the reactors in turn.

use super::mailbox::{Arrival, Command, Mailbox};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

const LISTENER: Token = Token(0);
const STOP: Token = Token(1);

pub(crate) struct Acceptor {
    poll: Poll,
    listener: TcpListener,
    reactors: Vec<Arc<Mailbox>>,
    stop: Arc<AtomicBool>,
}

/// Stops the acceptor from another thread.
pub(crate) struct AcceptorStop {
    waker: Waker,
    stop: Arc<AtomicBool>,
}

impl AcceptorStop {
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
    }
}

impl Acceptor {
    pub(crate) fn new(mut listener: TcpListener, reactors: Vec<Arc<Mailbox>>) -> io::Result<(Acceptor, AcceptorStop)> {
        let poll = Poll::new()?;
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Waker::new(poll.registry(), STOP)?;
        let stop = Arc::new(AtomicBool::new(false));
        Ok((Acceptor { poll, listener, reactors, stop: stop.clone() }, AcceptorStop { waker, stop }))
    }

    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(16);
        let mut next = 0;
        while !self.stop.load(Ordering::SeqCst) {
            if let Err(err) = self.poll.poll(&mut events, None) {
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                log::error!("acceptor poll failed: {err}");
                return;
            }
            loop {
                match self.listener.accept() {
                    Ok((stream, peer)) => {
                        self.reactors[next % self.reactors.len()].command(Command::Adopt(
                            stream,
                            peer,
                            Arrival::Listener,
                        ));
                        next = next.wrapping_add(1);
                    }
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(err) => {
                        // Out of file descriptors, most likely: log, and try again on the next event.
                        log::error!("accept failed: {err}");
                        break;
                    }
                }
            }
        }
    }
}
