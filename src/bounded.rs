//! A queue bounded by a count checked when sending.
//!
//! A bounded crossbeam channel allocates its whole capacity up front, which costs too
//! much per channel and per subscription when most of them stay nearly empty. So the
//! queue is an unbounded crossbeam channel, and the sender refuses a message when the
//! count of waiting ones has reached the limit.

use crossbeam_channel::{Receiver, Sender};

/// Why a message was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum QueueError {
    /// The queue holds its limit of messages already.
    Full,
    /// The receiver is gone.
    Closed,
}

/// The sending side of a queue that holds at most `limit` messages.
pub(crate) struct BoundedSender<T> {
    sender: Sender<T>,
    limit: usize,
}

// Derived `Clone` would ask for `T: Clone`.
impl<T> Clone for BoundedSender<T> {
    fn clone(&self) -> Self {
        BoundedSender { sender: self.sender.clone(), limit: self.limit }
    }
}

impl<T> BoundedSender<T> {
    /// A queue that holds at most `limit` messages (at least one).
    pub(crate) fn new(limit: usize) -> (BoundedSender<T>, Receiver<T>) {
        let (sender, receiver) = crossbeam_channel::unbounded();
        (BoundedSender { sender, limit: limit.max(1) }, receiver)
    }

    /// Queues `msg` unless the queue is full.
    pub(crate) fn try_send(&self, msg: T) -> Result<(), QueueError> {
        if self.sender.len() >= self.limit {
            return Err(QueueError::Full);
        }
        self.send_over_limit(msg)
    }

    /// Queues `msg` even when the queue is full: for the few control messages that
    /// must never be lost.
    pub(crate) fn send_over_limit(&self, msg: T) -> Result<(), QueueError> {
        self.sender.send(msg).map_err(|_| QueueError::Closed)
    }

    /// Whether no message is waiting.
    pub(crate) fn is_empty(&self) -> bool {
        self.sender.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_refuses_ordinary_messages_but_not_control_ones() {
        let (sender, receiver) = BoundedSender::new(1);
        sender.try_send(1).unwrap();
        assert_eq!(sender.try_send(2), Err(QueueError::Full));
        sender.send_over_limit(3).unwrap();
        assert_eq!(receiver.try_iter().collect::<Vec<_>>(), [1, 3]);
    }

    #[test]
    fn sending_after_the_receiver_is_gone_fails() {
        let (sender, receiver) = BoundedSender::new(1);
        drop(receiver);
        assert_eq!(sender.try_send(1), Err(QueueError::Closed));
    }
}
