//! Timers: `Process.send_after` for channels. One thread per endpoint keeps every
//! pending timer in a heap of deadlines and sleeps until the earliest; a timer that
//! fires delivers its message to the channel's mailbox, for `handle_info`. A channel's
//! pending timers are dropped when it ends.

use crate::inbox::{ChannelMsg, Inbox};
use crate::info::Info;
use crate::subscriber_id::SubscriberId;
use parking_lot::{Condvar, Mutex, MutexGuard};
use std::any::Any;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Past this many heap entries per pending timer (cancelled timers leave theirs behind
/// until their deadline), the heap is rebuilt from the pending timers.
const STALE_FACTOR: usize = 2;

/// The endpoint's timers and the thread that fires them.
pub(crate) struct Timers {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when the earliest deadline moves up, or at stop.
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// Deadlines, earliest first; an entry whose timer is no longer pending is skipped.
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    pending: HashMap<u64, Pending>,
    /// The pending timers of each channel, so its end drops them.
    by_owner: HashMap<SubscriberId, HashSet<u64>>,
    next_id: u64,
    stopped: bool,
}

struct Pending {
    at: Instant,
    owner: SubscriberId,
    inbox: Inbox,
    message: Box<dyn Any + Send>,
}

impl State {
    fn remove(&mut self, id: u64) -> Option<Pending> {
        let pending = self.pending.remove(&id)?;
        if let Some(ids) = self.by_owner.get_mut(&pending.owner) {
            ids.remove(&id);
            if ids.is_empty() {
                self.by_owner.remove(&pending.owner);
            }
        }
        Some(pending)
    }

    /// Drops the heap entries of timers that are no longer pending, once they are many.
    fn compact(&mut self) {
        if self.heap.len() > STALE_FACTOR * self.pending.len() + 64 {
            self.heap = self.pending.iter().map(|(id, pending)| Reverse((pending.at, *id))).collect();
        }
    }
}

impl Timers {
    /// Starts the timer thread.
    pub(crate) fn start() -> std::io::Result<Timers> {
        let shared = Arc::new(Shared { state: Mutex::new(State::default()), changed: Condvar::new() });
        let fired = shared.clone();
        let thread = std::thread::Builder::new().name("phx-timers".into()).spawn(move || run(&fired))?;
        Ok(Timers { shared, thread: Mutex::new(Some(thread)) })
    }

    /// Delivers `message` to `owner`'s mailbox after `delay`.
    pub(crate) fn send_after(
        &self,
        owner: SubscriberId,
        inbox: Inbox,
        delay: Duration,
        message: Box<dyn Any + Send>,
    ) -> TimerRef {
        let at = Instant::now() + delay;
        let mut state = self.shared.state.lock();
        let id = state.next_id;
        state.next_id += 1;
        let earliest = state.heap.peek().is_none_or(|Reverse((first, _))| at < *first);
        state.heap.push(Reverse((at, id)));
        state.pending.insert(id, Pending { at, owner, inbox, message });
        state.by_owner.entry(owner).or_default().insert(id);
        drop(state);
        if earliest {
            self.shared.changed.notify_one();
        }
        TimerRef { id, shared: Arc::downgrade(&self.shared) }
    }

    /// Drops every pending timer of `owner` (the channel has ended).
    pub(crate) fn cancel_all(&self, owner: SubscriberId) {
        let mut state = self.shared.state.lock();
        for id in state.by_owner.remove(&owner).unwrap_or_default() {
            state.pending.remove(&id);
        }
        state.compact();
    }

    /// Stops the thread; pending timers are dropped.
    pub(crate) fn stop(&self) {
        let mut state = self.shared.state.lock();
        state.stopped = true;
        state.pending.clear();
        state.by_owner.clear();
        state.heap.clear();
        drop(state);
        self.shared.changed.notify_one();
        if let Some(thread) = self.thread.lock().take() {
            let _ = thread.join();
        }
    }
}

/// Fires timers as their deadlines pass, until stopped.
fn run(shared: &Shared) {
    let mut state = shared.state.lock();
    let mut due = Vec::new();
    while !state.stopped {
        let now = Instant::now();
        while let Some(&Reverse((at, id))) = state.heap.peek() {
            if at > now {
                break;
            }
            state.heap.pop();
            due.extend(state.remove(id));
        }
        if !due.is_empty() {
            MutexGuard::unlocked(&mut state, || deliver(&mut due));
            continue;
        }
        match state.heap.peek() {
            Some(&Reverse((at, _))) => {
                shared.changed.wait_until(&mut state, at);
            }
            None => shared.changed.wait(&mut state),
        }
    }
}

/// Hands fired messages to their channels. The mailbox's limit does not apply: the
/// channel asked for these, and a timer never fires twice.
fn deliver(due: &mut Vec<Pending>) {
    for pending in due.drain(..) {
        pending.inbox.send_control(ChannelMsg::Info(Info::Message(pending.message)));
    }
}

/// A timer started with [`Socket::send_after`](crate::Socket::send_after), to cancel
/// it. Dropping it does not cancel the timer.
///
/// A channel that restarts a timeout on every event keeps the current one:
///
/// ```
/// use phx_channels::{Socket, TimerRef};
/// use std::time::Duration;
///
/// struct Idle;
///
/// /// Called for each event: the idle timeout starts over.
/// fn touched(timeout: &mut Option<TimerRef>, socket: &Socket) {
///     if let Some(previous) = timeout.take() {
///         previous.cancel();
///     }
///     *timeout = Some(socket.send_after(Duration::from_secs(30), Idle));
/// }
/// ```
pub struct TimerRef {
    id: u64,
    shared: Weak<Shared>,
}

impl TimerRef {
    /// Cancels the timer: its message will not be delivered. Returns whether it was
    /// still pending (`false` once it has fired, was cancelled, or its channel ended).
    ///
    /// ```
    /// use phx_channels::testing;
    /// use phx_channels::{Channel, Endpoint, Flow, Info, JoinResult, Payload, Socket, UserSocket};
    /// use std::time::Duration;
    ///
    /// struct Expire;
    ///
    /// struct Door;
    ///
    /// impl Channel for Door {
    ///     fn join(&mut self, _topic: &str, _payload: &Payload, socket: &mut Socket) -> JoinResult {
    ///         let timer = socket.send_after(Duration::from_secs(60), Expire);
    ///         assert!(timer.cancel(), "it was pending");
    ///         assert!(!timer.cancel(), "it is not any more");
    ///         Ok(Payload::empty())
    ///     }
    /// }
    ///
    /// let endpoint = testing::endpoint(Endpoint::builder().socket("/socket", UserSocket::new().channel("door", |_| Door)))?;
    /// testing::connect(&endpoint, "/socket", serde_json::json!({}))?.join("door", serde_json::json!({}))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cancel(&self) -> bool {
        let Some(shared) = self.shared.upgrade() else { return false };
        let mut state = shared.state.lock();
        let cancelled = state.remove(self.id).is_some();
        state.compact();
        cancelled
    }
}

impl fmt::Debug for TimerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TimerRef").field(&self.id).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbox::InboxReceiver;

    /// The `&str` messages `receiver` gets, read on a thread of their own.
    fn messages(receiver: InboxReceiver) -> crossbeam_channel::Receiver<&'static str> {
        let (sender, messages) = crossbeam_channel::unbounded();
        std::thread::spawn(move || {
            receiver.bind();
            while let Some(ChannelMsg::Info(info)) = receiver.recv() {
                let _ = sender.send(info.downcast::<&'static str>().unwrap_or("?"));
            }
        });
        messages
    }

    #[test]
    fn timers_fire_in_deadline_order_whatever_the_order_they_were_started_in() {
        let timers = Timers::start().unwrap();
        let (inbox, receiver) = Inbox::new(10);
        let received = messages(receiver);
        let owner = SubscriberId(1);
        timers.send_after(owner, inbox.clone(), Duration::from_millis(60), Box::new("late"));
        timers.send_after(owner, inbox.clone(), Duration::from_millis(20), Box::new("early"));
        let began = Instant::now();
        assert_eq!(received.recv_timeout(Duration::from_secs(5)), Ok("early"));
        assert!(began.elapsed() >= Duration::from_millis(15));
        assert_eq!(received.recv_timeout(Duration::from_secs(5)), Ok("late"));
        timers.stop();
    }

    #[test]
    fn a_cancelled_timer_does_not_fire_and_an_owners_end_cancels_its_timers() {
        let timers = Timers::start().unwrap();
        let (inbox, receiver) = Inbox::new(10);
        let received = messages(receiver);
        let cancelled = timers.send_after(SubscriberId(1), inbox.clone(), Duration::from_millis(10), Box::new("no"));
        timers.send_after(SubscriberId(2), inbox.clone(), Duration::from_millis(10), Box::new("gone"));
        timers.send_after(SubscriberId(3), inbox.clone(), Duration::from_millis(30), Box::new("yes"));
        assert!(cancelled.cancel());
        timers.cancel_all(SubscriberId(2));
        assert_eq!(received.recv_timeout(Duration::from_secs(5)), Ok("yes"));
        assert!(received.try_recv().is_err(), "only the timer that was not cancelled fired");
        assert!(!cancelled.cancel());
        assert!(timers.shared.state.lock().by_owner.is_empty());
        timers.stop();
    }

    #[test]
    fn cancelled_timers_do_not_pile_up_in_the_heap() {
        let timers = Timers::start().unwrap();
        let (inbox, _receiver) = Inbox::new(10);
        for _ in 0..1000 {
            timers.send_after(SubscriberId(1), inbox.clone(), Duration::from_secs(3600), Box::new(())).cancel();
        }
        let state = timers.shared.state.lock();
        assert!(state.heap.len() <= 64 + 1, "{} entries", state.heap.len());
        drop(state);
        timers.stop();
    }
}
