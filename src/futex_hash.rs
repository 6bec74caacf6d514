//! Sizing the process's futex hash table for the channel threads it may hold.
//!
//! Every parked thread waits on a futex, and the kernel finds a futex's waiters through
//! a hash table: by default one shared by the machine with 256 buckets a CPU (512 on a
//! 2-CPU machine), or a process's own of at most that size. With 100,000 parked channel
//! threads each bucket chains about 200 of them, and every wake-up (a message handed
//! over, a thread ending) walks its chain under the bucket's spinlock: profiles of a
//! mass close at that scale spent half their time there. Linux 6.16 lets a process give
//! itself a larger table (`PR_FUTEX_HASH`), which the endpoint does at start, with a
//! bucket for each channel thread it may run (64 bytes each: 1 MiB for 16,384).

/// Gives the process a futex hash of at least `threads` buckets (a power of two), unless
/// it has one as large. Returns the buckets it has afterwards, or `None` where the
/// kernel keeps one table for the machine (before Linux 6.16, or other systems).
pub(crate) fn reserve_for_threads(threads: usize) -> Option<usize> {
    let wanted = threads.clamp(16, 1 << 20).next_power_of_two();
    let current = slots()?;
    if current >= wanted {
        return Some(current);
    }
    match set_slots(wanted) {
        Ok(()) => {
            log::debug!("futex hash: {wanted} buckets for up to {threads} channel threads (was {current})");
            Some(wanted)
        }
        Err(err) => {
            log::debug!("futex hash: could not size it to {wanted} buckets ({err}); keeping {current}");
            Some(current)
        }
    }
}

// The `prctl` option and its commands (linux/prctl.h, Linux 6.16).
#[cfg(target_os = "linux")]
const PR_FUTEX_HASH: libc::c_int = 78;
#[cfg(target_os = "linux")]
const PR_FUTEX_HASH_SET_SLOTS: libc::c_ulong = 1;
#[cfg(target_os = "linux")]
const PR_FUTEX_HASH_GET_SLOTS: libc::c_ulong = 2;

/// The process's own futex buckets (0 while it uses the machine's table), or `None` where
/// the kernel does not know the option.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn slots() -> Option<usize> {
    // SAFETY: prctl with PR_FUTEX_HASH_GET_SLOTS reads a number the kernel keeps for the
    // process; its other arguments are plain integers (zero), no memory is passed.
    let slots = unsafe { libc::prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_GET_SLOTS, 0 as libc::c_ulong, 0 as libc::c_ulong) };
    usize::try_from(slots).ok()
}

#[cfg(not(target_os = "linux"))]
fn slots() -> Option<usize> {
    None
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn set_slots(slots: usize) -> std::io::Result<()> {
    // SAFETY: prctl with PR_FUTEX_HASH_SET_SLOTS takes the bucket count and a flags word
    // (0: the table may be resized later) as integers; no memory is passed. The kernel
    // moves waiting futexes to the new table itself.
    let result =
        unsafe { libc::prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_SET_SLOTS, slots as libc::c_ulong, 0 as libc::c_ulong) };
    if result == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

#[cfg(not(target_os = "linux"))]
fn set_slots(_: usize) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_gets_a_bucket_a_thread_and_never_fewer_than_it_had() {
        let Some(before) = slots() else { return assert_eq!(reserve_for_threads(1000), None) };
        let after = reserve_for_threads(1000).expect("a kernel that reports slots keeps reporting them");
        assert!(after >= before, "never shrinks: {before} -> {after}");
        assert!(after >= 1024 || after == before, "1,000 threads want 1,024 buckets, got {after}");
        assert_eq!(slots(), Some(after), "the kernel reports what was set");
        // Asking for fewer keeps the larger table.
        assert_eq!(reserve_for_threads(10), Some(after));
    }
}
