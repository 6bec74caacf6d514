//! How the endpoint's traffic threads ask the OS scheduler to treat them.

/// How the OS schedules the threads that carry traffic: the reactors, the acceptor, the
/// connect workers and the channel threads. Set it with
/// [`EndpointBuilder::scheduling`](crate::EndpointBuilder::scheduling).
///
/// A message costs the server two thread wake-ups: the reactor's when the bytes arrive,
/// and the channel thread's when the reactor hands the message over. Under the normal
/// policy a woken thread may preempt the thread that woke it, or wake an idle core, so
/// a busy server spends much of its time switching threads. Under [`Batch`](Scheduling::Batch)
/// a woken thread waits until the running one blocks: a reactor hands over everything
/// it has read before the channel threads run, and they then run back to back. On a
/// small machine this cuts the server's CPU per message by about a fifth (BENCHMARKS.md
/// in the repository has the figures).
///
/// The cost: when other busy threads share the cores, a woken traffic thread can wait
/// for their time slice to end before it runs, which adds up to a few milliseconds of
/// latency. Choose [`Unchanged`](Scheduling::Unchanged) when the process shares its
/// cores with latency-sensitive work of its own.
///
/// The policy is a property of OS threads, so `Batch` changes the program's process: the
/// endpoint's threads, and every thread that one of them spawns (a thread started in a
/// channel callback inherits `SCHED_BATCH`). That matters most for a program that embeds
/// the endpoint ([`Endpoint::adopt`](crate::Endpoint::adopt),
/// [`EndpointBuilder::no_listener`](crate::EndpointBuilder::no_listener)); the threads
/// the program started itself keep their policy. The endpoint's start log line (info)
/// says which policy its traffic threads run under.
///
/// ```
/// use phx_channels::{Endpoint, Scheduling};
///
/// let endpoint = Endpoint::builder().bind("127.0.0.1:0").scheduling(Scheduling::Unchanged).start()?;
/// endpoint.shutdown();
/// # Ok::<(), phx_channels::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scheduling {
    /// Linux's `SCHED_BATCH` policy: a woken thread never preempts a running one. Only
    /// threads under the normal policy move to it: a policy the process was started
    /// with on purpose (a real-time one set with `chrt`, say) is kept. Threads a channel
    /// callback spawns inherit it. On other systems, the same as
    /// [`Unchanged`](Scheduling::Unchanged).
    #[default]
    Batch,
    /// The threads keep the policy they are started with (usually the normal one).
    Unchanged,
}

impl Scheduling {
    /// What the endpoint's start log line says of the traffic threads' policy: it is a
    /// change to the process that an operator should not have to discover.
    pub(crate) fn log_note(self) -> &'static str {
        if self == Scheduling::Batch && cfg!(target_os = "linux") {
            "traffic threads run under SCHED_BATCH (Scheduling::Batch; threads their callbacks spawn inherit it)"
        } else {
            "traffic threads keep the process's scheduling policy"
        }
    }

    /// Applies this policy to the calling thread. A refusal is logged, never fatal.
    pub(crate) fn apply_to_current_thread(self) {
        if self == Scheduling::Batch {
            set_batch();
        }
    }
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn set_batch() {
    // SAFETY: takes no pointers; pid 0 names the calling thread.
    if unsafe { libc::sched_getscheduler(0) } != libc::SCHED_OTHER {
        return;
    }
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid, initialised `sched_param` that outlives the call, which
    // only reads it. Pid 0 names the calling thread (Linux sets the policy per thread).
    let result = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
    if result != 0 {
        log::debug!("SCHED_BATCH refused for this thread: {}", std::io::Error::last_os_error());
    }
}

#[cfg(not(target_os = "linux"))]
fn set_batch() {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The calling thread's policy, read back from the kernel.
    #[allow(unsafe_code)]
    fn policy() -> i32 {
        // SAFETY: takes no pointers; pid 0 names the calling thread.
        unsafe { libc::sched_getscheduler(0) }
    }

    #[test]
    fn batch_sets_the_policy_of_the_calling_thread_only() {
        let before = policy();
        let inside = std::thread::spawn(|| {
            Scheduling::Batch.apply_to_current_thread();
            policy()
        })
        .join()
        .unwrap();
        assert_eq!(inside, libc::SCHED_BATCH);
        assert_eq!(policy(), before);
    }

    #[test]
    #[allow(unsafe_code)]
    fn batch_keeps_a_policy_other_than_the_normal_one() {
        let inside = std::thread::spawn(|| {
            let param = libc::sched_param { sched_priority: 0 };
            // SAFETY: as in `set_batch`; SCHED_IDLE needs no privilege.
            assert_eq!(unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) }, 0);
            Scheduling::Batch.apply_to_current_thread();
            policy()
        })
        .join()
        .unwrap();
        assert_eq!(inside, libc::SCHED_IDLE);
    }

    #[test]
    fn unchanged_keeps_the_inherited_policy() {
        let inside = std::thread::spawn(|| {
            Scheduling::Unchanged.apply_to_current_thread();
            policy()
        })
        .join()
        .unwrap();
        assert_eq!(inside, policy());
    }
}
