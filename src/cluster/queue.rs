//! A queue of messages bounded both in count and in bytes, between the threads that
//! make cluster messages and the one thread that sends or delivers them.

use crossbeam_channel::{Receiver, RecvTimeoutError, Select, Sender};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The sending side; cheap to clone.
pub(super) struct QueueSender<T> {
    sender: Sender<(T, usize)>,
    bytes: Arc<AtomicUsize>,
    max_items: usize,
    max_bytes: usize,
}

impl<T> Clone for QueueSender<T> {
    fn clone(&self) -> Self {
        QueueSender {
            sender: self.sender.clone(),
            bytes: self.bytes.clone(),
            max_items: self.max_items,
            max_bytes: self.max_bytes,
        }
    }
}

/// The receiving side.
pub(super) struct QueueReceiver<T> {
    receiver: Receiver<(T, usize)>,
    bytes: Arc<AtomicUsize>,
}

/// A queue that holds at most `max_items` messages and `max_bytes` bytes (a message
/// larger than `max_bytes` is taken when the queue is empty, so that one always fits).
pub(super) fn queue<T>(max_items: usize, max_bytes: usize) -> (QueueSender<T>, QueueReceiver<T>) {
    let (sender, receiver) = crossbeam_channel::unbounded();
    let bytes = Arc::new(AtomicUsize::new(0));
    (QueueSender { sender, bytes: bytes.clone(), max_items, max_bytes }, QueueReceiver { receiver, bytes })
}

impl<T> QueueSender<T> {
    /// Queues `item` of `size` bytes, or hands it back when the queue is full or closed.
    pub(super) fn try_send(&self, item: T, size: usize) -> Result<(), T> {
        let queued = self.bytes.load(Ordering::Relaxed);
        if self.sender.len() >= self.max_items || (queued > 0 && queued + size > self.max_bytes) {
            return Err(item);
        }
        self.bytes.fetch_add(size, Ordering::Relaxed);
        self.sender.send((item, size)).map_err(|err| {
            self.bytes.fetch_sub(size, Ordering::Relaxed);
            err.into_inner().0
        })
    }
}

impl<T> QueueReceiver<T> {
    fn took(&self, (item, size): (T, usize)) -> T {
        self.bytes.fetch_sub(size, Ordering::Relaxed);
        item
    }

    /// The next message, waiting at most `timeout`.
    pub(super) fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.receiver.recv_timeout(timeout).map(|entry| self.took(entry))
    }

    /// Adds this queue to `select`, to wait for it and others at once; returns its index.
    pub(super) fn watch<'a>(&'a self, select: &mut Select<'a>) -> usize {
        select.recv(&self.receiver)
    }

    /// The next message if one is waiting.
    pub(super) fn try_recv(&self) -> Option<T> {
        self.receiver.try_recv().ok().map(|entry| self.took(entry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_refuses_past_its_count_or_its_bytes() {
        let (tx, rx) = queue::<u32>(3, 100);
        assert!(tx.try_send(1, 150).is_ok(), "one large message fits an empty queue");
        assert_eq!(tx.try_send(2, 1), Err(2));
        assert_eq!(rx.try_recv(), Some(1));
        for i in 0..3 {
            assert!(tx.try_send(i, 10).is_ok());
        }
        assert_eq!(tx.try_send(9, 10), Err(9), "count");
        assert_eq!(rx.recv_timeout(Duration::from_millis(10)), Ok(0));
        assert!(tx.try_send(3, 10).is_ok());
        assert_eq!(rx.try_iter_for_test(), vec![1, 2, 3]);
    }

    impl<T> QueueReceiver<T> {
        fn try_iter_for_test(&self) -> Vec<T> {
            std::iter::from_fn(|| self.try_recv()).collect()
        }
    }
}
