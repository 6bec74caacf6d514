//! The server under test, seen from /proc: its CPU time, memory and threads; what
//! else ran on the machine meanwhile; this thread's CPU time; and pinning a thread to
//! a CPU.

use crate::Res;
use crate::report::round;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

pub(crate) struct Probe {
    pid: u32,
    clock_ticks: u64,
}

/// The server's CPU time so far: `utime + stime` from /proc/PID/stat (clock ticks,
/// covers every thread that ever ran), and the sum of the first field of
/// /proc/PID/task/*/schedstat (nanoseconds on CPU, threads alive now). Note that
/// /proc/PID/schedstat itself covers only the main thread.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CpuSample {
    stat_ns: u64,
    sched_ns: Option<u64>,
}

impl Probe {
    pub(crate) fn new(pid: Option<u32>) -> Res<Option<Probe>> {
        let Some(pid) = pid else { return Ok(None) };
        if !std::path::Path::new(&format!("/proc/{pid}/status")).exists() {
            return Err(format!("no process {pid}").into());
        }
        Ok(Some(Probe { pid, clock_ticks: clock_ticks() }))
    }

    fn status_field(&self, name: &str) -> u64 {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    fn rss_kib(&self) -> u64 {
        self.status_field("VmRSS:")
    }

    fn threads(&self) -> u64 {
        self.status_field("Threads:")
    }

    pub(crate) fn alive(&self) -> bool {
        std::path::Path::new(&format!("/proc/{}/status", self.pid)).exists()
    }

    pub(crate) fn memory(&self) -> (u64, u64) {
        (self.rss_kib(), self.threads())
    }

    /// The server's open descriptors.
    pub(crate) fn fds(&self) -> u64 {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid)).map_or(0, |dir| dir.count() as u64)
    }

    fn cpu_stat_only(&self) -> CpuSample {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
        let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
        // After the command name: field 3 (state) is index 0, utime (14) index 11, stime (15) index 12.
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
        CpuSample { stat_ns: (ticks(11) + ticks(12)) * 1_000_000_000 / self.clock_ticks, sched_ns: None }
    }

    /// Waits until the server's CPU time grows by less than `quiet` over a `window`, for
    /// at most `timeout`; returns when that quiet window began, or `None` if it never came.
    pub(crate) fn wait_quiet(&self, window: Duration, quiet: Duration, timeout: Duration) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        let mut start = (Instant::now(), self.cpu_stat_only().stat_ns);
        while Instant::now() < deadline {
            std::thread::sleep(window);
            let end = (Instant::now(), self.cpu_stat_only().stat_ns);
            if end.1.saturating_sub(start.1) < quiet.as_nanos() as u64 {
                return Some(start.0);
            }
            start = end;
        }
        None
    }

    /// The server's threads whose OS name is `name`.
    pub(crate) fn threads_named(&self, name: &str) -> u64 {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.pid)) else { return 0 };
        let comm = |task: std::fs::DirEntry| std::fs::read_to_string(task.path().join("comm")).ok();
        tasks.flatten().filter_map(comm).filter(|comm| comm.trim_end() == name).count() as u64
    }

    pub(crate) fn cpu(&self) -> CpuSample {
        let stat_ns = self.cpu_stat_only().stat_ns;
        let mut sched = None;
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.pid)) {
            for task in tasks.flatten() {
                let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else { continue };
                if let Some(ns) = text.split_whitespace().next().and_then(|f| f.parse::<u64>().ok()) {
                    *sched.get_or_insert(0) += ns;
                }
            }
        }
        CpuSample { stat_ns, sched_ns: sched }
    }
}

/// Server CPU between two samples: schedstat when present (nanosecond precision),
/// else utime+stime. Returns (best ns, which, stat ns). The schedstat sum covers the
/// threads alive at each sample only: when threads that ran before the window ended
/// inside it (the channel threads of an earlier run, still stopping), it can fall, and
/// utime+stime, which keeps the time of ended threads, is taken instead.
pub(crate) fn cpu_between(a: CpuSample, b: CpuSample) -> (u64, &'static str, u64) {
    let stat = b.stat_ns.saturating_sub(a.stat_ns);
    match (a.sched_ns, b.sched_ns) {
        (Some(x), Some(y)) if y >= x => (y - x, "schedstat", stat),
        _ => (stat, "stat", stat),
    }
}

/// What else ran on the machine: per-CPU busy and nice ticks from /proc/stat, and this
/// process's own CPU time, so that a run disturbed by other programs can be told apart.
#[derive(Clone, Debug)]
pub(crate) struct MachineSample {
    /// Per CPU: busy ticks (user, nice, system, irq, softirq, steal), nice ticks, all ticks.
    cpus: Vec<[u64; 3]>,
    own_ns: u64,
    at: Instant,
}

pub(crate) fn machine_sample(clock_ticks: u64) -> MachineSample {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpus = text
        .lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .map(|l| {
            let f: Vec<u64> = l.split_whitespace().skip(1).take(8).map(|x| x.parse().unwrap_or(0)).collect();
            let get = |i: usize| f.get(i).copied().unwrap_or(0);
            let busy = get(0) + get(1) + get(2) + get(5) + get(6) + get(7);
            [busy, get(1), busy + get(3) + get(4)]
        })
        .collect();
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    let own_ns = (ticks(11) + ticks(12)) * 1_000_000_000 / clock_ticks.max(1);
    MachineSample { cpus, own_ns, at: Instant::now() }
}

pub(crate) fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .unwrap_or(100)
}

/// Machine use between two samples: per-CPU busy share, and the CPU time used by
/// processes other than this tool and the server (`server_ns`), which should be ~0.
pub(crate) fn machine_between(
    a: &MachineSample,
    b: &MachineSample,
    server_ns: u64,
    clock_ticks: u64,
) -> (Value, String) {
    let secs = b.at.duration_since(a.at).as_secs_f64().max(1e-9);
    let mut busy_total = 0;
    let mut per_cpu = Vec::new();
    let mut nice_total = 0;
    for (x, y) in a.cpus.iter().zip(&b.cpus) {
        let busy = y[0].saturating_sub(x[0]);
        let all = y[2].saturating_sub(x[2]).max(1);
        busy_total += busy;
        nice_total += y[1].saturating_sub(x[1]);
        per_cpu.push(round(busy as f64 / all as f64, 3));
    }
    let tick_ns = 1e9 / clock_ticks.max(1) as f64;
    let busy_ns = busy_total as f64 * tick_ns;
    let own_ns = b.own_ns.saturating_sub(a.own_ns) as f64;
    let other_s = ((busy_ns - own_ns - server_ns as f64) / 1e9).max(0.0);
    let nice_s = nice_total as f64 * tick_ns / 1e9;
    let line = format!(
        "  machine: CPUs busy {per_cpu:?}; this tool {:.2} s; other processes ~{other_s:.2} s ({:.0}% of one core), of which niced {nice_s:.2} s",
        own_ns / 1e9,
        other_s / secs * 100.0
    );
    let value = json!({
        "cpu_busy": per_cpu,
        "tool_cpu_s": round(own_ns / 1e9, 3),
        "other_cpu_s": round(other_s, 3),
        "other_core_share": round(other_s / secs, 3),
        "niced_cpu_s": round(nice_s, 3),
    });
    (value, line)
}

/// This thread's CPU time in ns (/proc/thread-self/schedstat).
pub(crate) fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|t| t.split_whitespace().next().and_then(|f| f.parse().ok()))
        .unwrap_or(0)
}

/// Pins the calling thread to `cpu` with taskset (no libc needed).
pub(crate) fn pin_thread(cpu: Option<usize>) {
    let Some(cpu) = cpu else { return };
    let tid = std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let status = std::process::Command::new("taskset")
        .args(["-p", "-c", &cpu.to_string(), &tid])
        .stdout(std::process::Stdio::null())
        .status();
    if !status.is_ok_and(|s| s.success()) {
        eprintln!("warning: could not pin thread {tid} to CPU {cpu}");
    }
}
