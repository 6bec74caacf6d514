//! What the OS lets one process have, read at start, for the endpoint's caps: channel
//! threads (each takes a process id and four memory mappings: its stack and its signal
//! stack, each with a guard page) and connections (each takes a file descriptor); and,
//! when a cap asks for more, which setting to raise and to what.

use std::fmt;

/// Memory mappings per channel thread.
const MAPS_PER_THREAD: usize = 4;
/// Mappings left for everything else: the heap's arenas, libraries, other threads.
const MAPS_RESERVE: usize = 4096;
/// Process ids left for the rest of the system.
const PIDS_RESERVE: usize = 2048;
/// Descriptors left for the listener, the polls and their wakers, log files, Redis.
const FILES_RESERVE: usize = 256;

/// The limits that bound the endpoint's caps; `None` where a limit cannot be read (or
/// does not apply).
#[derive(Clone, Debug, Default)]
pub(crate) struct SystemLimits {
    /// `vm.max_map_count`: memory mappings per process.
    max_map_count: Option<usize>,
    /// `kernel.pid_max`: process ids, threads included, system-wide.
    pid_max: Option<usize>,
    /// `kernel.threads-max`: threads system-wide.
    threads_max: Option<usize>,
    /// `RLIMIT_NPROC` (`ulimit -u`): the user's processes and threads, all of them on the
    /// machine. `None` for a process the kernel does not hold to it (see
    /// [`exempt_from_nproc`]).
    nproc: Option<usize>,
    /// `RLIMIT_NOFILE` (`ulimit -n`): this process's descriptors.
    open_files: Option<usize>,
}

/// A setting to raise, with its value now and the value a cap needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Raise {
    setting: &'static str,
    now: usize,
    needed: usize,
}

impl fmt::Display for Raise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Raise { setting, now, needed } = self;
        match *setting {
            "RLIMIT_NPROC" => write!(f, "`ulimit -u {needed}` (now {now})"),
            "RLIMIT_NOFILE" => write!(f, "`ulimit -n {needed}` (now {now}; LimitNOFILE= under systemd)"),
            sysctl => write!(f, "`sysctl -w {sysctl}={needed}` (now {now})"),
        }
    }
}

/// Raises this process's soft open-file limit (`ulimit -n`) toward its hard limit, as
/// far as `wanted` descriptors, or all the way when `None`: a shell's soft limit (often
/// 1,024) would otherwise hold connections far below what the process may open. Returns
/// the soft limit before and after, when it was raised.
#[allow(unsafe_code)]
pub(crate) fn raise_open_files(wanted: Option<usize>) -> Option<(u64, u64)> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a valid, writable rlimit for the call to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    let target = wanted.map_or(limit.rlim_max, |wanted| (wanted as libc::rlim_t).min(limit.rlim_max));
    // An unlimited hard limit names no number to raise the soft one to.
    if target == libc::RLIM_INFINITY || target <= limit.rlim_cur {
        return None;
    }
    let raised = libc::rlimit { rlim_cur: target, rlim_max: limit.rlim_max };
    // SAFETY: `raised` is a valid rlimit the call only reads; a soft limit at most the
    // hard one needs no privilege.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return None;
    }
    Some((limit.rlim_cur, target))
}

/// Descriptors `connections` connections need, with those kept for the rest.
pub(crate) fn files_for_connections(connections: usize) -> usize {
    connections + FILES_RESERVE
}

/// Raises, as one line: "a, b and c".
pub(crate) fn list(raises: &[Raise]) -> String {
    let items: Vec<String> = raises.iter().map(Raise::to_string).collect();
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// Whether the kernel lets this process start threads past `RLIMIT_NPROC`: it does for
/// root, and for a process with `CAP_SYS_ADMIN` or `CAP_SYS_RESOURCE`, but only in the
/// machine's own user namespace (root in a container's namespace is held to the limit).
fn exempt_from_nproc() -> bool {
    let read = |path| std::fs::read_to_string(path).unwrap_or_default();
    let machine_namespace = read("/proc/self/uid_map").split_whitespace().eq(["0", "0", "4294967295"]);
    machine_namespace && exempt_in_machine_namespace(&read("/proc/self/status"))
}

/// From `/proc/self/status`: the real user is root, or the effective capabilities hold
/// `CAP_SYS_ADMIN` (21) or `CAP_SYS_RESOURCE` (24).
fn exempt_in_machine_namespace(status: &str) -> bool {
    let field = |name: &str| status.lines().find_map(|line| line.strip_prefix(name)).map(str::trim);
    let real_root = field("Uid:").and_then(|uids| uids.split_whitespace().next()) == Some("0");
    let caps = field("CapEff:").and_then(|hex| u64::from_str_radix(hex, 16).ok()).unwrap_or(0);
    real_root || caps & (1 << 21 | 1 << 24) != 0
}

impl SystemLimits {
    /// Reads this system's limits (on Linux; elsewhere only the descriptors are known).
    #[allow(unsafe_code)]
    pub(crate) fn read() -> SystemLimits {
        let sysctl = |path: &str| std::fs::read_to_string(path).ok()?.trim().parse::<usize>().ok();
        // The soft limit of a resource, `None` if unlimited or unknown.
        let rlimit = |resource| {
            let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            // SAFETY: `limit` is a valid, writable rlimit for the call to fill.
            let read = unsafe { libc::getrlimit(resource, &mut limit) } == 0;
            (read && limit.rlim_cur != libc::RLIM_INFINITY)
                .then(|| usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX))
        };
        SystemLimits {
            max_map_count: sysctl("/proc/sys/vm/max_map_count"),
            pid_max: sysctl("/proc/sys/kernel/pid_max"),
            threads_max: sysctl("/proc/sys/kernel/threads-max"),
            nproc: rlimit(libc::RLIMIT_NPROC).filter(|_| !exempt_from_nproc()),
            open_files: rlimit(libc::RLIMIT_NOFILE),
        }
    }

    /// The channel threads this process may run, with room left for everything else,
    /// and the setting that bounds them; `None` if no limit is known.
    pub(crate) fn thread_bound(&self) -> Option<(usize, &'static str)> {
        let by_maps = self.max_map_count.map(|maps| maps.saturating_sub(MAPS_RESERVE) / MAPS_PER_THREAD);
        let by_pids = self.pid_max.map(|pids| pids.saturating_sub(PIDS_RESERVE));
        let by_threads = self.threads_max.map(|threads| threads / 2);
        let by_nproc = self.nproc.map(|nproc| nproc.saturating_sub(PIDS_RESERVE));
        [
            (by_maps, "vm.max_map_count"),
            (by_pids, "kernel.pid_max"),
            (by_threads, "kernel.threads-max"),
            (by_nproc, "ulimit -u"),
        ]
        .into_iter()
        .filter_map(|(threads, setting)| threads.map(|threads| (threads, setting)))
        .min_by_key(|(threads, _)| *threads)
    }

    /// The connections this process may hold, with descriptors left for the rest;
    /// `None` if no limit is known.
    pub(crate) fn connections(&self) -> Option<usize> {
        self.open_files.map(|files| files.saturating_sub(FILES_RESERVE).max(1))
    }

    /// The settings below what `threads` channel threads need, and the values they need.
    pub(crate) fn raise_for_threads(&self, threads: usize) -> Vec<Raise> {
        let needs = [
            ("vm.max_map_count", self.max_map_count, threads * MAPS_PER_THREAD + MAPS_RESERVE),
            ("kernel.pid_max", self.pid_max, threads + PIDS_RESERVE),
            ("kernel.threads-max", self.threads_max, threads * 2),
            ("RLIMIT_NPROC", self.nproc, threads + PIDS_RESERVE),
        ];
        needs
            .into_iter()
            .filter_map(|(setting, now, needed)| {
                now.filter(|now| *now < needed).map(|now| Raise { setting, now, needed })
            })
            .collect()
    }

    /// The setting below what `connections` connections need, if it is.
    pub(crate) fn raise_for_connections(&self, connections: usize) -> Option<Raise> {
        let needed = files_for_connections(connections);
        let now = self.open_files.filter(|now| *now < needed)?;
        Some(Raise { setting: "RLIMIT_NOFILE", now, needed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stock kernel of a small machine, run by a user with 20,000 descriptors.
    fn stock() -> SystemLimits {
        SystemLimits {
            max_map_count: Some(65_530),
            pid_max: Some(32_768),
            threads_max: Some(192_735),
            nproc: None,
            open_files: Some(20_000),
        }
    }

    #[test]
    fn the_thread_cap_is_the_tightest_limit() {
        assert_eq!(stock().thread_bound(), Some(((65_530 - 4096) / 4, "vm.max_map_count")));
        let raised = SystemLimits { max_map_count: Some(1_048_576), pid_max: Some(4_194_304), ..stock() };
        assert_eq!(raised.thread_bound(), Some((192_735 / 2, "kernel.threads-max")));
        assert_eq!(SystemLimits::default().thread_bound(), None);
    }

    #[test]
    fn each_setting_below_a_cap_is_named_with_the_value_it_needs() {
        let raises = stock().raise_for_threads(100_000);
        assert_eq!(
            raises,
            [
                Raise { setting: "vm.max_map_count", now: 65_530, needed: 404_096 },
                Raise { setting: "kernel.pid_max", now: 32_768, needed: 102_048 },
                Raise { setting: "kernel.threads-max", now: 192_735, needed: 200_000 },
            ]
        );
        assert_eq!(
            list(&raises[..2]),
            "`sysctl -w vm.max_map_count=404096` (now 65530) and `sysctl -w kernel.pid_max=102048` (now 32768)"
        );
        assert!(stock().raise_for_threads(10_000).is_empty());
    }

    #[test]
    fn connections_leave_descriptors_for_the_rest() {
        assert_eq!(stock().connections(), Some(20_000 - 256));
        assert_eq!(
            stock().raise_for_connections(50_000).map(|r| r.to_string()),
            Some("`ulimit -n 50256` (now 20000; LimitNOFILE= under systemd)".into())
        );
        assert_eq!(stock().raise_for_connections(10_000), None);
    }

    #[test]
    fn root_and_the_capabilities_the_kernel_exempts_are_told_apart_from_other_users() {
        let status = |uid: &str, caps: &str| format!("Name:\tx\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\nCapEff:\t{caps}\n");
        assert!(exempt_in_machine_namespace(&status("0", "0000000000000000")));
        assert!(exempt_in_machine_namespace(&status("1000", "0000000000200000")), "CAP_SYS_ADMIN");
        assert!(exempt_in_machine_namespace(&status("1000", "0000000001000000")), "CAP_SYS_RESOURCE");
        assert!(!exempt_in_machine_namespace(&status("1000", "00000000000000ff")));
        assert!(!exempt_in_machine_namespace(&status("1000", "")));
    }
}
