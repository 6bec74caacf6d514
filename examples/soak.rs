//! Soak: churns connections for a bounded time (connect, join, broadcast, leave,
//! disconnect) against an in-process endpoint, and prints the process's threads,
//! file descriptors and RSS at the start and at the end. Nothing should grow.
//!
//! ```text
//! cargo run --release --example soak -- --duration 600 --clients 8
//! ```

use phx_channels::client::Client;
use phx_channels::{Channel, CheckOrigin, Endpoint, Handled, JoinResult, Payload, Socket, UserSocket};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Room;

impl Channel for Room {
    fn join(&mut self, _: &str, _: &Payload, _: &mut Socket) -> JoinResult {
        Ok(Payload::empty())
    }

    fn handle_in(&mut self, event: &str, payload: Payload, socket: &mut Socket) -> Handled {
        match event {
            "shout" => match socket.broadcast("shout", payload) {
                Ok(()) => Handled::ok(),
                Err(err) => Handled::reply_error(json!({"reason": err.to_string()})),
            },
            _ => Handled::NoReply,
        }
    }
}

/// Threads, open fds and RSS (KiB) of this process.
fn usage() -> (usize, usize, usize) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> usize {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
    (field("Threads:"), fds, field("VmRSS:"))
}

/// One churn cycle: connect, join, shout and hear it back, leave, disconnect.
fn cycle(addr: &str, room: u64) -> Result<(), Box<dyn std::error::Error>> {
    let mut client = Client::builder(addr).timeout(Duration::from_secs(10)).connect()?;
    let topic = format!("room:{room}");
    client.join(&topic, json!({}))?;
    client.push(&topic, "shout", json!({"n": room}))?;
    client.recv_event(&topic, "shout")?;
    client.leave(&topic)?;
    client.close()?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let mut duration = Duration::from_secs(60);
    let mut clients = 8u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--duration" => duration = Duration::from_secs(args.next().ok_or("--duration needs seconds")?.parse()?),
            "--clients" => clients = args.next().ok_or("--clients needs a count")?.parse()?,
            other => return Err(format!("unknown argument {other:?}; usage: soak [--duration S] [--clients N]").into()),
        }
    }
    let endpoint = Endpoint::builder()
        .bind("127.0.0.1:0")
        .socket(
            "/socket",
            UserSocket::new().check_origin(CheckOrigin::Off).log_connect(None).channel("room:*", |_| Room),
        )
        .start()?;
    let addr = endpoint.local_addr().to_string();
    // Warm up once so lazily created buffers are counted in the baseline.
    cycle(&addr, 0)?;
    std::thread::sleep(Duration::from_millis(500));
    let (threads0, fds0, rss0) = usage();
    println!("start: threads {threads0}, fds {fds0}, rss {rss0} KiB");
    let cycles = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + duration;
    let workers: Vec<_> = (0..clients)
        .map(|worker| {
            let (addr, cycles, failures) = (addr.clone(), cycles.clone(), failures.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while Instant::now() < deadline {
                    n += 1;
                    match cycle(&addr, worker * 1_000_000 + n % 50) {
                        Ok(()) => cycles.fetch_add(1, Ordering::Relaxed),
                        Err(err) => {
                            eprintln!("cycle failed: {err}");
                            failures.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            })
        })
        .collect();
    let mut last_report = Instant::now();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        if last_report.elapsed() >= Duration::from_secs(60) {
            let (threads, fds, rss) = usage();
            println!("{} cycles: threads {threads}, fds {fds}, rss {rss} KiB", cycles.load(Ordering::Relaxed));
            last_report = Instant::now();
        }
    }
    for worker in workers {
        worker.join().map_err(|_| "a worker panicked")?;
    }
    std::thread::sleep(Duration::from_millis(500));
    let (threads1, fds1, rss1) = usage();
    let stats = endpoint.stats();
    println!("end:   threads {threads1}, fds {fds1}, rss {rss1} KiB");
    println!(
        "cycles {}, failures {}, connections now {}, channels now {}, joins {}",
        cycles.load(Ordering::Relaxed),
        failures.load(Ordering::Relaxed),
        stats.connections,
        stats.channels,
        stats.joins_total
    );
    println!(
        "growth: threads {:+}, fds {:+}, rss {:+} KiB",
        threads1 as i64 - threads0 as i64,
        fds1 as i64 - fds0 as i64,
        rss1 as i64 - rss0 as i64
    );
    endpoint.shutdown();
    Ok(())
}
