//! A channel's mailbox: a crossbeam queue, bounded by a count so one slow channel cannot
//! eat memory, whose receiving thread sleeps with `park` and is woken with `unpark`.
//!
//! crossbeam's blocking `recv` spins and calls `sched_yield` a few times before it
//! sleeps. With many idle channel threads that spinning was the largest cost in the
//! server's profile under echo load (context switches out of `sched_yield`), so the
//! channel thread polls with `try_recv` and parks instead, and senders unpark it.

pub(crate) use crate::bounded::QueueError as InboxError;

use crate::bounded::BoundedSender;
use crate::call::Call;
use crate::info::Info;
use crate::intercepted::Intercepted;
use crate::message::Message;
use crate::stop_reason::StopReason;
use crossbeam_channel::{Receiver, TryRecvError};
use std::sync::atomic::{Ordering, fence};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;

/// What a channel thread receives.
pub(crate) enum ChannelMsg {
    /// A client message for `handle_in` (or a `phx_leave`).
    In(Message),
    /// A client message whose event is not a string: no `handle_in` can take it, so
    /// the channel crashes. `event` is its JSON text.
    Unhandled { event: String },
    /// An intercepted broadcast, for `handle_out`.
    Out(Arc<Intercepted>),
    /// Anything for `handle_info`.
    Info(Info),
    /// A request for `handle_call`.
    Call(Call),
    /// The connection closed or the server is draining: terminate with this reason.
    Stop(StopReason),
    /// Replaced by a duplicate join: end without `terminate`.
    Kill,
}

/// The sending side, cloned wherever the channel can be reached.
#[derive(Clone)]
pub(crate) struct Inbox {
    sender: BoundedSender<ChannelMsg>,
    thread: Arc<OnceLock<Thread>>,
}

/// The receiving side, owned by the channel thread.
pub(crate) struct InboxReceiver {
    receiver: Receiver<ChannelMsg>,
    thread: Arc<OnceLock<Thread>>,
}

impl Inbox {
    pub(crate) fn new(limit: usize) -> (Inbox, InboxReceiver) {
        let (sender, receiver) = BoundedSender::new(limit);
        let thread = Arc::new(OnceLock::new());
        (Inbox { sender, thread: thread.clone() }, InboxReceiver { receiver, thread })
    }

    /// Sends unless the mailbox holds `limit` messages already.
    pub(crate) fn try_send(&self, msg: ChannelMsg) -> Result<(), InboxError> {
        self.sender.try_send(msg)?;
        self.wake();
        Ok(())
    }

    /// Whether messages are waiting to be received.
    pub(crate) fn has_mail(&self) -> bool {
        !self.sender.is_empty()
    }

    /// Sends a control message, which is never refused for being over the limit.
    pub(crate) fn send_control(&self, msg: ChannelMsg) {
        if self.sender.send_over_limit(msg).is_ok() {
            self.wake();
        }
    }

    /// Whether the calling thread is the one that receives (the channel's own).
    pub(crate) fn is_receiver(&self) -> bool {
        self.thread.get().is_some_and(|thread| thread.id() == std::thread::current().id())
    }

    /// Wakes the receiving thread after a send.
    fn wake(&self) {
        // Pairs with the fence in `bind`: either the receiver is known here, or it
        // will see this message in its first `try_recv` after binding.
        fence(Ordering::SeqCst);
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
    }
}

impl InboxReceiver {
    /// Makes the calling thread the one senders wake. Call it on the channel thread
    /// before anything else.
    pub(crate) fn bind(&self) {
        let _ = self.thread.set(std::thread::current());
        fence(Ordering::SeqCst);
    }

    /// Whether no message is waiting.
    pub(crate) fn is_empty(&self) -> bool {
        self.receiver.is_empty()
    }

    /// The next message, sleeping until one comes; `None` once every sender is gone.
    ///
    /// A stray `unpark` (or a wake-up taken by user code calling `park`) costs one more
    /// look at the queue, never a lost message: the queue is always checked before
    /// sleeping, and a sender unparks after it has queued.
    pub(crate) fn recv(&self) -> Option<ChannelMsg> {
        loop {
            match self.receiver.try_recv() {
                Ok(msg) => return Some(msg),
                Err(TryRecvError::Empty) => std::thread::park(),
                Err(TryRecvError::Disconnected) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_parked_receiver_is_woken_by_a_send() {
        let (inbox, receiver) = Inbox::new(10);
        let got = std::thread::spawn(move || {
            receiver.bind();
            (0..100).all(|_| matches!(receiver.recv(), Some(ChannelMsg::Kill)))
        });
        for i in 0..100 {
            if i % 10 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
            inbox.send_control(ChannelMsg::Kill);
        }
        assert!(got.join().unwrap());
    }

    #[test]
    fn messages_sent_before_the_receiver_binds_are_not_lost() {
        let (inbox, receiver) = Inbox::new(10);
        inbox.send_control(ChannelMsg::Kill);
        let got = std::thread::spawn(move || {
            receiver.bind();
            receiver.recv().is_some()
        });
        assert!(got.join().unwrap());
    }
}
