//! `wake-floor`: the CPU cost of waking a parked thread that then parks again, the
//! least an intercepted broadcast costs per subscriber on top of its write (each
//! intercepting channel's thread must wake to run `handle_out`).
//!
//! N threads park; each round, one thread unparks them all and waits until every one
//! has run, as a publisher wakes the intercepting subscribers of a topic. Rounds are
//! paced so the threads sleep between them, as subscribers do between broadcasts. Run it
//! under `chrt -b 0` to match the server's traffic threads (SCHED_BATCH).

use crate::Res;
use crate::args::Args;
use crate::probe::Probe;
use crate::report::{emit, round};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

pub(crate) fn wake_floor(args: &Args) -> Res<()> {
    let n: usize = args.get::<usize>("threads", 1000)?.max(1);
    let rounds: u64 = args.get::<u64>("rounds", 100)?.max(1);
    let rate: f64 = args.get("rate", 50.0)?;
    args.finish()?;
    if !rate.is_finite() || rate <= 0.0 {
        return Err("--rate must be a positive number of rounds per second".into());
    }
    let round_now = Arc::new(AtomicU64::new(0));
    let woken = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (round_now, woken, stop) = (round_now.clone(), woken.clone(), stop.clone());
            thread::Builder::new().stack_size(128 * 1024).spawn(move || {
                let mut seen = 0;
                while !stop.load(Ordering::Acquire) {
                    let current = round_now.load(Ordering::Acquire);
                    if current == seen {
                        thread::park();
                    } else {
                        seen = current;
                        woken.fetch_add(1, Ordering::AcqRel);
                    }
                }
            })
        })
        .collect::<Result<_, _>>()?;
    let handles: Vec<thread::Thread> = threads.iter().map(|t| t.thread().clone()).collect();
    thread::sleep(Duration::from_millis(200));
    let probe = Probe::new(Some(std::process::id()))?.ok_or("no probe")?;
    let period = Duration::from_secs_f64(1.0 / rate);
    let (cpu0, started) = (probe.cpu(), Instant::now());
    for r in 1..=rounds {
        let due = started + period.mul_f64(r as f64 - 1.0);
        thread::sleep(due.saturating_duration_since(Instant::now()));
        round_now.store(r, Ordering::Release);
        handles.iter().for_each(thread::Thread::unpark);
        while woken.load(Ordering::Acquire) < r * n as u64 {
            thread::sleep(Duration::from_micros(100));
        }
    }
    let (cpu_ns, source, _) = crate::probe::cpu_between(cpu0, probe.cpu());
    stop.store(true, Ordering::Release);
    handles.iter().for_each(thread::Thread::unpark);
    for thread in threads {
        let _ = thread.join();
    }
    let per_wake_us = cpu_ns as f64 / 1000.0 / (rounds as f64 * n as f64);
    emit(
        &[format!(
            "wake-floor: {n} threads x {rounds} rounds at {rate}/s: {:.2} µs of CPU per wake and park ({source})",
            per_wake_us
        )],
        json!({"mode": "wake-floor", "threads": n, "rounds": rounds, "rate": rate,
               "per_wake_us": round(per_wake_us, 3), "source": source}),
    );
    Ok(())
}
