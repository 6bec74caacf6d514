//! Spare channel threads. A thread whose channel has ended does not exit at once: it
//! waits, parked, up to a keep-alive for the next join and runs that channel instead.
//!
//! Ending an OS thread is dear: the kernel's exit work and the C library unmapping the
//! stack, serialized on the process's memory map, take 35-80 µs a thread on a 2-CPU
//! machine, so a mass close of 100,000 channels (a deploy, a network blip) would spend
//! seconds there while the reactors wait for CPU to answer the closes. Parking and
//! waking a spare is a few microseconds, and the reconnects that follow such a close run
//! on the spares instead of starting threads. Spares the keep-alive passes by exit;
//! shutdown ends them all.

use crate::stats::{self, Stats};
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Work for a channel thread: one channel, from its join to its end.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// The endpoint's waiting channel threads.
///
/// The locks are the standard library's, which wait on a futex of their own: parking_lot
/// keeps every thread that ever waits in one process-wide table, which it grows under all
/// of its buckets' locks, and 100,000 spares parking at once in a mass close made their
/// first waits contend there for a minute.
pub(crate) struct SpareThreads {
    waiting: Mutex<Waiting>,
    keep_alive: Duration,
    stats: Arc<Stats>,
}

#[derive(Default)]
struct Waiting {
    /// The most recently parked last. A join takes the last (its stack is still warm), so
    /// the ones the keep-alive retires are those a steady load has not needed.
    spares: Vec<Arc<Spare>>,
    /// How many of `spares` have retired: skipped when popped, dropped in bulk when they
    /// are half of the list.
    retired: usize,
    closed: bool,
}

/// One waiting thread, and what it is given.
#[derive(Default)]
struct Spare {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
enum State {
    /// Parked, waiting for a job.
    #[default]
    Waiting,
    Given(Job),
    /// The keep-alive passed: the thread has left, or is leaving.
    Retired,
    /// The endpoint is shutting down: leave.
    Closed,
}

impl SpareThreads {
    /// Spares wait up to `keep_alive` for a job; zero makes every thread end with its
    /// channel.
    pub(crate) fn new(keep_alive: Duration, stats: Arc<Stats>) -> SpareThreads {
        SpareThreads { waiting: Mutex::default(), keep_alive, stats }
    }

    /// Hands `job` to the spare that waited least, or gives it back if none waits.
    pub(crate) fn give(&self, job: Job) -> Result<(), Job> {
        let mut waiting = lock(&self.waiting);
        while let Some(spare) = waiting.spares.pop() {
            let mut state = lock(&spare.state);
            if matches!(*state, State::Waiting) {
                *state = State::Given(job);
                spare.wake.notify_one();
                return Ok(());
            }
            waiting.retired -= 1;
        }
        Err(job)
    }

    /// A channel thread's life: runs `first`, then, as a spare, whatever it is given.
    pub(crate) fn serve(&self, first: Job) {
        let spare = Arc::new(Spare::default());
        let mut job = first;
        loop {
            job();
            match self.wait(&spare) {
                Some(next) => job = next,
                None => return,
            }
        }
    }

    /// Waits as a spare for the next job; `None` when the thread should end.
    fn wait(&self, spare: &Arc<Spare>) -> Option<Job> {
        if self.keep_alive.is_zero() {
            return None;
        }
        // The state is `Waiting` here: a spare that took a job left it so, and one that
        // retired or was closed does not wait again.
        {
            let mut waiting = lock(&self.waiting);
            if waiting.closed {
                return None;
            }
            waiting.spares.push(spare.clone());
        }
        stats::incr(self.stats.spare_channel_threads());
        let next = self.parked(spare);
        stats::decr(self.stats.spare_channel_threads());
        next
    }

    fn parked(&self, spare: &Spare) -> Option<Job> {
        let deadline = Instant::now() + self.keep_alive;
        let mut state = lock(&spare.state);
        loop {
            match std::mem::take(&mut *state) {
                State::Given(job) => return Some(job),
                State::Closed | State::Retired => return None,
                State::Waiting => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            state = spare.wake.wait_timeout(state, left).unwrap_or_else(PoisonError::into_inner).0;
            if Instant::now() >= deadline && matches!(*state, State::Waiting) {
                // Taken again in the list's order, as `give` takes them.
                drop(state);
                if self.retire(spare) {
                    return None;
                }
                state = lock(&spare.state);
            }
        }
    }

    /// Retires a spare that is still waiting; false if it was given a job or closed
    /// meanwhile. Retired spares are dropped from the list once they are half of it, so
    /// it stays as long as the spares that wait, give or take a factor of two.
    fn retire(&self, spare: &Spare) -> bool {
        let mut waiting = lock(&self.waiting);
        let mut state = lock(&spare.state);
        if !matches!(*state, State::Waiting) {
            return false;
        }
        *state = State::Retired;
        drop(state);
        waiting.retired += 1;
        if waiting.retired * 2 > waiting.spares.len() {
            waiting.spares.retain(|spare| !matches!(*lock(&spare.state), State::Retired));
            waiting.retired = 0;
        }
        true
    }

    /// Ends every spare, and makes each channel thread end with its channel from now on.
    pub(crate) fn close(&self) {
        let spares = {
            let mut waiting = lock(&self.waiting);
            waiting.closed = true;
            waiting.retired = 0;
            std::mem::take(&mut waiting.spares)
        };
        for spare in spares {
            let mut state = lock(&spare.state);
            if matches!(*state, State::Waiting) {
                *state = State::Closed;
                spare.wake.notify_one();
            }
        }
    }
}

/// Locks `mutex`. Nothing panics while holding these locks (jobs run outside them), so a
/// poisoned one holds consistent data.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl fmt::Debug for SpareThreads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let waiting = lock(&self.waiting);
        f.debug_struct("SpareThreads")
            .field("waiting", &(waiting.spares.len() - waiting.retired))
            .field("keep_alive", &self.keep_alive)
            .field("closed", &waiting.closed)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn spares(keep_alive: Duration) -> Arc<SpareThreads> {
        Arc::new(SpareThreads::new(keep_alive, Arc::new(Stats::default())))
    }

    /// Starts a thread serving `first`; returns its join handle.
    fn spawn(spares: &Arc<SpareThreads>, first: Job) -> std::thread::JoinHandle<()> {
        let spares = spares.clone();
        std::thread::spawn(move || spares.serve(first))
    }

    fn waiting(spares: &SpareThreads) -> u64 {
        spares.stats.snapshot().spare_channel_threads
    }

    fn wait_for(what: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !what() {
            assert!(Instant::now() < deadline, "timed out");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn a_finished_thread_runs_the_next_job_given() {
        let spares = spares(Duration::from_secs(30));
        let (sent, got) = mpsc::channel();
        let first = sent.clone();
        let thread = spawn(&spares, Box::new(move || first.send(std::thread::current().id()).unwrap()));
        let id = got.recv().unwrap();
        wait_for(|| waiting(&spares) == 1);
        assert!(spares.give(Box::new(move || sent.send(std::thread::current().id()).unwrap())).is_ok());
        assert_eq!(got.recv().unwrap(), id, "the same thread ran both");
        wait_for(|| waiting(&spares) == 1);
        spares.close();
        thread.join().unwrap();
        assert_eq!(waiting(&spares), 0);
    }

    #[test]
    fn no_spare_gives_the_job_back() {
        let spares = spares(Duration::from_secs(30));
        assert!(spares.give(Box::new(|| {})).is_err());
    }

    #[test]
    fn a_spare_retires_after_the_keep_alive_and_is_not_given_work() {
        let spares = spares(Duration::from_millis(50));
        let thread = spawn(&spares, Box::new(|| {}));
        thread.join().unwrap();
        assert_eq!(waiting(&spares), 0);
        assert!(spares.give(Box::new(|| {})).is_err(), "a retired thread is not a spare");
        assert!(lock(&spares.waiting).spares.is_empty(), "the retired one is dropped from the list");
    }

    #[test]
    fn zero_keep_alive_ends_the_thread_with_its_job() {
        let spares = spares(Duration::ZERO);
        spawn(&spares, Box::new(|| {})).join().unwrap();
        assert!(spares.give(Box::new(|| {})).is_err());
    }

    #[test]
    fn after_close_threads_end_with_their_job() {
        let spares = spares(Duration::from_secs(30));
        spares.close();
        spawn(&spares, Box::new(|| {})).join().unwrap();
    }

    #[test]
    fn the_list_stays_short_while_spares_retire_and_others_wait() {
        let spares = spares(Duration::from_millis(20));
        let threads: Vec<_> = (0..40).map(|_| spawn(&spares, Box::new(|| {}))).collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let waiting = lock(&spares.waiting);
        assert_eq!((waiting.spares.len(), waiting.retired), (0, 0), "every retired spare is dropped from the list");
    }
}
