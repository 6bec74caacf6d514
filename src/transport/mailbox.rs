//! How other threads reach a reactor: a mailbox of commands and of connections (and
//! long-poll sessions) with queued output, and one `mio::Waker` whose wake-ups are
//! coalesced.

use super::long_poll::{HandOver, RemoteAnswer, RemoteCall, ReplyTo};
use mio::Waker;
use mio::net::TcpStream;
use parking_lot::Mutex;
use std::net::SocketAddr;

/// Names a connection on one reactor: its slot, and a serial so that a slot reused by
/// a newer connection is not confused with the old one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConnKey {
    pub(crate) slot: usize,
    pub(crate) serial: u64,
}

/// Whose output is queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Recipient {
    /// An open WebSocket connection.
    Conn(ConnKey),
    /// A long-poll session, by its serial on the reactor.
    Session(u64),
}

/// What other threads ask of a reactor.
pub(crate) enum Command {
    /// A new TCP connection, from the acceptor or handed over by the application.
    Adopt(TcpStream, SocketAddr, Arrival),
    /// Drain up to this many connections: their channels terminate with
    /// `{shutdown, draining}` and they close with 1012.
    Drain(usize),
    /// Drain what is left, and stop once every connection is gone.
    Stop,
    /// A long-poll request for a session this reactor holds, read by another reactor.
    HandOver(Box<HandOver>),
    /// A long-poll request for a session this reactor holds, forwarded by another node.
    Remote(Box<RemoteCall>),
    /// The answer to a long-poll request this reactor forwarded to another node.
    Answered(ReplyTo, RemoteAnswer),
}

/// Where a new connection comes from.
pub(crate) enum Arrival {
    /// The endpoint's listener: TLS when the endpoint serves TLS.
    Listener,
    /// Another HTTP server accepted it and read these bytes of it (its request head,
    /// maybe more): the connection continues as if the reactor had read them. Plain TCP.
    HandedOver(Vec<u8>),
}

pub(crate) struct Mailbox {
    waker: Waker,
    mail: Mutex<Mail>,
}

#[derive(Default)]
pub(crate) struct Mail {
    pub(crate) ready: Vec<Recipient>,
    pub(crate) commands: Vec<Command>,
    woken: bool,
}

impl Mailbox {
    pub(crate) fn new(waker: Waker) -> Self {
        Mailbox { waker, mail: Mutex::new(Mail::default()) }
    }

    /// The connection or session has output queued.
    pub(crate) fn ready(&self, recipient: Recipient) {
        self.post(|mail| mail.ready.push(recipient));
    }

    pub(crate) fn command(&self, command: Command) {
        self.post(|mail| mail.commands.push(command));
    }

    /// Wakes the reactor to look at what was handed to it another way.
    pub(crate) fn wake(&self) {
        self.post(|_| {});
    }

    /// Adds to the mail and wakes the reactor, once per batch.
    fn post(&self, add: impl FnOnce(&mut Mail)) {
        let mut mail = self.mail.lock();
        add(&mut mail);
        let wake = !std::mem::replace(&mut mail.woken, true);
        drop(mail);
        if wake && let Err(err) = self.waker.wake() {
            log::error!("cannot wake a reactor: {err}");
        }
    }

    /// Reactor side: takes everything posted so far into `into` (swapping buffers).
    pub(crate) fn take(&self, into: &mut Mail) {
        let mut mail = self.mail.lock();
        mail.woken = false;
        std::mem::swap(&mut mail.ready, &mut into.ready);
        std::mem::swap(&mut mail.commands, &mut into.commands);
    }
}
