//! How the endpoint's traffic threads ask the OS scheduler to treat them.

/// How the OS schedules the threads that carry traffic: the reactors, the acceptor, the
/// connect workers and the channel threads. Set it with
/// [`EndpointBuilder::scheduling`](crate::EndpointBuilder::scheduling).
///
/// A message costs the server two thread wake-ups: the reactor's when the bytes arrive,
/// and the channel thread's when the reactor hands the message over. Under the normal
/// policy a woken thread may preempt the thread that woke it, or wake an idle core, so
/// a busy server spends much of its time switching threads. Under [`Batch`](Scheduling::Batch),
/// the default, a woken thread waits until the running one blocks: a reactor hands over
/// everything it has read before the channel threads run, and they then run back to
/// back. On a small machine this cuts the server's CPU per message by about a fifth.
///
/// [`BatchPinned`](Scheduling::BatchPinned) also keeps each reactor and the channel
/// threads of its connections on the same CPU, so that a hand-over never wakes another
/// core. With many busy connections that cut the server's CPU per message by another
/// quarter or so on a 2-core virtual machine; but a lone connection's round trip took
/// 10-20% longer, since its channel thread must wait for the reactor to block instead
/// of starting at once on the idle core, and a large fan-out loads its publisher's CPU
/// beyond the others. BENCHMARKS.md in the repository has the figures.
///
/// The cost of both: when other busy threads share the cores, a woken traffic thread
/// can wait for their time slice to end before it runs, which adds up to a few
/// milliseconds of latency; pinned, a channel thread that computes for long also shares
/// its CPU with the other channels of its reactor while another CPU may be idle. Choose
/// [`Unchanged`](Scheduling::Unchanged) when the process shares its cores with
/// latency-sensitive work of its own.
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
    /// [`Batch`](Scheduling::Batch), and each reactor keeps to its own share of the CPUs
    /// the process may use (one CPU each when there are as many reactors as CPUs, the
    /// default count), with the channel threads of its connections. Threads a channel
    /// callback spawns inherit both the policy and the CPUs; a thread can widen its CPUs
    /// again with `sched_setaffinity`. With a single CPU, or a single reactor for all
    /// of them, nothing is pinned. On other systems, the same as
    /// [`Unchanged`](Scheduling::Unchanged).
    BatchPinned,
    /// Linux's `SCHED_BATCH` policy: a woken thread never preempts a running one. Only
    /// threads under the normal policy move to it: a policy the process was started
    /// with on purpose (a real-time one set with `chrt`, say) is kept. Threads a channel
    /// callback spawns inherit it. The threads run on any CPU the process may use. On
    /// other systems, the same as [`Unchanged`](Scheduling::Unchanged).
    #[default]
    Batch,
    /// The threads keep the policy they are started with (usually the normal one), and
    /// run on any CPU the process may use.
    Unchanged,
}

impl Scheduling {
    /// What the endpoint's start log line says of the traffic threads' policy: it is a
    /// change to the process that an operator should not have to discover.
    pub(crate) fn log_note(self) -> &'static str {
        match self {
            _ if !cfg!(target_os = "linux") => "traffic threads keep the process's scheduling policy",
            Scheduling::Batch => {
                "traffic threads run under SCHED_BATCH (Scheduling::Batch; threads their callbacks spawn inherit it)"
            }
            Scheduling::BatchPinned => {
                "traffic threads run under SCHED_BATCH, each reactor with its channel threads on CPUs of its own \
                 (Scheduling::BatchPinned; threads their callbacks spawn inherit both)"
            }
            Scheduling::Unchanged => "traffic threads keep the process's scheduling policy",
        }
    }

    /// Applies this policy to the calling thread. A refusal is logged, never fatal.
    pub(crate) fn apply_to_current_thread(self) {
        if self != Scheduling::Unchanged {
            set_batch();
        }
    }

    /// The CPUs each of `reactors` reactors keeps to (`None`: wherever the OS puts it),
    /// from those the calling thread may use. A channel thread starts on its reactor's
    /// thread and inherits its CPUs, so it keeps to them too.
    pub(crate) fn reactor_cpus(self, reactors: usize) -> Vec<Option<Vec<usize>>> {
        match self {
            Scheduling::BatchPinned => share_cpus(&allowed_cpus(), reactors),
            Scheduling::Batch | Scheduling::Unchanged => vec![None; reactors],
        }
    }
}

/// Splits `allowed` into `reactors` shares, in order: one CPU each (round robin) when
/// there are at least as many reactors as CPUs, runs of neighbouring CPUs otherwise. A
/// share that is all of `allowed` pins nothing, and is `None`.
fn share_cpus(allowed: &[usize], reactors: usize) -> Vec<Option<Vec<usize>>> {
    let n = allowed.len();
    if n < 2 {
        return vec![None; reactors];
    }
    (0..reactors)
        .map(|i| {
            let share = if reactors >= n {
                vec![allowed[i % n]]
            } else {
                allowed[i * n / reactors..(i + 1) * n / reactors].to_vec()
            };
            (share.len() < n).then_some(share)
        })
        .collect()
}

/// Keeps the calling thread to `cpus`. A refusal is logged, never fatal.
pub(crate) fn pin_current_thread(cpus: &[usize]) {
    if let Err(err) = set_affinity(cpus) {
        log::debug!("cannot keep this thread to CPUs {cpus:?}: {err}");
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

/// The CPUs the calling thread may run on, in order.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: an all-zero `cpu_set_t` is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is valid for writes of the size given; pid 0 names the calling thread.
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) } != 0 {
        return Vec::new();
    }
    // SAFETY: `CPU_ISSET` reads the set, and every index is below `CPU_SETSIZE`.
    (0..libc::CPU_SETSIZE as usize).filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) }).collect()
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn set_affinity(cpus: &[usize]) -> std::io::Result<()> {
    // SAFETY: an all-zero `cpu_set_t` is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        // SAFETY: `CPU_SET` writes inside `set`; the CPUs come from `allowed_cpus`, below
        // `CPU_SETSIZE`.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: `set` is a valid, initialised set that outlives the call, which only reads
    // it; pid 0 names the calling thread (Linux sets affinity per thread).
    match unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

#[cfg(not(target_os = "linux"))]
fn allowed_cpus() -> Vec<usize> {
    Vec::new()
}

#[cfg(not(target_os = "linux"))]
fn set_affinity(_: &[usize]) -> std::io::Result<()> {
    Ok(())
}

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

#[cfg(test)]
mod shares {
    use super::share_cpus;

    #[test]
    fn as_many_reactors_as_cpus_get_one_cpu_each() {
        assert_eq!(share_cpus(&[0, 1], 2), vec![Some(vec![0]), Some(vec![1])]);
        assert_eq!(share_cpus(&[2, 5, 7], 3), vec![Some(vec![2]), Some(vec![5]), Some(vec![7])]);
    }

    #[test]
    fn more_reactors_than_cpus_take_them_in_turn() {
        assert_eq!(share_cpus(&[0, 1], 3), vec![Some(vec![0]), Some(vec![1]), Some(vec![0])]);
    }

    #[test]
    fn fewer_reactors_than_cpus_share_runs_of_neighbours() {
        assert_eq!(share_cpus(&[0, 1, 2, 3], 2), vec![Some(vec![0, 1]), Some(vec![2, 3])]);
        assert_eq!(share_cpus(&[0, 1, 2], 2), vec![Some(vec![0]), Some(vec![1, 2])]);
    }

    #[test]
    fn a_share_of_every_cpu_pins_nothing() {
        assert_eq!(share_cpus(&[0, 1, 2, 3], 1), vec![None]);
        assert_eq!(share_cpus(&[3], 2), vec![None, None]);
        assert_eq!(share_cpus(&[], 2), vec![None, None]);
    }
}
