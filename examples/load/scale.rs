//! `scale`: N connections × K channels, every connection joined to the same K topics
//! (`bench:scale-0` …), for as many cycles as asked. Per cycle: how fast the
//! connections open and the channels join, the server's memory per channel, its CPU
//! while every channel is idle, the time from a round of broadcasts (one on each topic)
//! to the last of the N×K fastlane subscribers, and the teardown: how long until the
//! server has closed every connection and is back to its threads from before; then its
//! threads, descriptors and RSS, which must not grow from cycle to cycle.

use crate::args::{Args, DEFAULT_URL, WsUrl, args_url};
use crate::client::Client;
use crate::phoenix::{number_after, parse_head, reply_ok};
use crate::probe::{Probe, cpu_between};
use crate::report::{emit, round};
use crate::tally::JoinTally;
use crate::ws::{Handler, Ws};
use crate::{Res, wait_until};
use serde_json::{Value, json};
use std::io::Write;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const TOPIC_PREFIX: &str = "bench:scale-";
/// What phx-channels names a channel thread waiting for its next channel.
const SPARE_THREAD_NAME: &str = "phx-spare";

/// What the workers of one cycle share with the conductor.
struct Shared {
    k: usize,
    tally: JoinTally,
    /// Per round: deliveries, duplicates, and the latest arrival (Unix ns).
    got: Vec<AtomicU64>,
    duplicates: AtomicU64,
    last_ns: Vec<AtomicU64>,
    go_join: AtomicBool,
    go_close: AtomicBool,
    /// Workers whose connections are all closed.
    workers_closed: AtomicUsize,
}

struct Subscribers {
    shared: Arc<Shared>,
    threads: usize,
    /// Per connection (by tag / threads) and topic: the rounds seen, one bit each.
    seen: Vec<u64>,
    joins_sent: bool,
    closing: bool,
    open: Vec<bool>,
}

impl Handler for Subscribers {
    fn open(&mut self, ws: &mut Ws) {
        self.open[ws.tag / self.threads] = true;
        self.shared.tally.opened.fetch_add(1, Relaxed);
    }

    fn message(&mut self, ws: &mut Ws, data: &[u8]) {
        let Some(head) = parse_head(data) else { return };
        let Some(topic) = head.topic.strip_prefix(TOPIC_PREFIX.as_bytes()) else { return };
        let Some(j) = std::str::from_utf8(topic).ok().and_then(|t| t.parse::<usize>().ok()) else { return };
        if head.event == b"broadcast" {
            let now = unix_ns();
            let Some(round) = number_after(head.payload, br#""seq":"#).map(|r| r as usize) else { return };
            let (Some(got), Some(last)) = (self.shared.got.get(round), self.shared.last_ns.get(round)) else { return };
            let bits = &mut self.seen[ws.tag / self.threads * self.shared.k + j];
            if *bits & (1 << round) != 0 {
                self.shared.duplicates.fetch_add(1, Relaxed);
                return;
            }
            *bits |= 1 << round;
            got.fetch_add(1, Relaxed);
            last.fetch_max(now, Relaxed);
        } else if head.event == b"phx_reply" {
            self.shared.tally.join_reply(&head, data);
        }
    }

    fn closed(&mut self, tag: usize, error: Option<&str>) {
        let was_open = std::mem::replace(&mut self.open[tag / self.threads], false);
        if !was_open {
            self.shared.tally.never_opened(tag, error);
        } else if !self.closing {
            self.shared.tally.dropped(tag, error);
        }
    }
}

fn worker(
    url: Arc<WsUrl>,
    sources: Vec<IpAddr>,
    tags: Vec<usize>,
    threads: usize,
    inflight: usize,
    shared: Arc<Shared>,
) -> Res<()> {
    let k = shared.k;
    let mut client = Client::new(url, inflight)?;
    client.connect_from(sources);
    let count = tags.len();
    for &tag in &tags {
        client.add(tag);
    }
    let mut handler = Subscribers {
        shared: shared.clone(),
        threads,
        seen: vec![0; count * k],
        joins_sent: false,
        closing: false,
        open: vec![false; count],
    };
    let mut frame = Vec::new();
    while !shared.go_close.load(Relaxed) {
        client.poll(Some(Duration::from_millis(5)), &mut handler)?;
        if !handler.joins_sent && shared.go_join.load(Relaxed) {
            handler.joins_sent = true;
            let mut sent = 0;
            for ws in client.open_conns() {
                for j in 0..k {
                    frame.clear();
                    write!(frame, r#"["{r}","{r}","{TOPIC_PREFIX}{j}","phx_join",{{}}]"#, r = j + 1)?;
                    ws.queue_text(&frame);
                    sent += 1;
                }
                ws.flush();
            }
            shared.tally.joins_sent.fetch_add(sent, Relaxed);
            shared.tally.workers_sent.fetch_add(1, Relaxed);
        }
    }
    handler.closing = true;
    client.close_all(Duration::from_secs(60), &mut handler);
    shared.workers_closed.fetch_add(1, Relaxed);
    Ok(())
}

/// The publisher's connection: joined to every topic.
#[derive(Default)]
struct Publisher {
    open: bool,
    joined: usize,
    error: Option<String>,
}

impl Handler for Publisher {
    fn open(&mut self, _ws: &mut Ws) {
        self.open = true;
    }

    fn message(&mut self, _ws: &mut Ws, data: &[u8]) {
        let Some(head) = parse_head(data) else { return };
        if head.event == b"phx_reply" && head.topic.starts_with(TOPIC_PREFIX.as_bytes()) {
            if head.msg_ref.is_some_and(|r| r.starts_with(b"j")) {
                if reply_ok(&head) {
                    self.joined += 1;
                } else {
                    self.error = Some(format!("publisher join refused: {}", String::from_utf8_lossy(data)));
                }
            } else if !reply_ok(&head) {
                self.error.get_or_insert_with(|| format!("publish refused: {}", String::from_utf8_lossy(data)));
            }
        }
    }

    fn closed(&mut self, _tag: usize, error: Option<&str>) {
        self.open = false;
        if let Some(error) = error {
            self.error.get_or_insert_with(|| format!("publisher: {error}"));
        }
    }
}

/// Polls `client` for `d`.
fn poll_for(client: &mut Client, publisher: &mut Publisher, d: Duration) -> Res<()> {
    let until = Instant::now() + d;
    loop {
        let now = Instant::now();
        if now >= until {
            return Ok(());
        }
        client.poll(Some((until - now).min(Duration::from_millis(5))), publisher)?;
    }
}

/// Options of a run.
struct Plan {
    url: Arc<WsUrl>,
    /// Local addresses the connections come from, in turn.
    sources: Vec<IpAddr>,
    n: usize,
    k: usize,
    threads: usize,
    inflight: usize,
    rounds: usize,
    gap: Duration,
    drain: Duration,
    timeout: Duration,
    settle: Duration,
    idle_sample: Duration,
}

/// The server's resources at one moment.
fn resources(probe: Option<&Probe>) -> Value {
    match probe {
        Some(p) => {
            let (rss, threads) = p.memory();
            json!({"rss_kib": rss, "threads": threads, "fds": p.fds()})
        }
        None => Value::Null,
    }
}

fn field(v: &Value, name: &str) -> u64 {
    v[name].as_u64().unwrap_or(0)
}

fn cycle(plan: &Plan, probe: Option<&Probe>, summary: &mut Vec<String>) -> Res<Value> {
    let Plan { n, k, threads, .. } = *plan;
    let shared = Arc::new(Shared {
        k,
        tally: JoinTally::default(),
        got: (0..plan.rounds).map(|_| AtomicU64::new(0)).collect(),
        duplicates: AtomicU64::new(0),
        last_ns: (0..plan.rounds).map(|_| AtomicU64::new(0)).collect(),
        go_join: AtomicBool::new(false),
        go_close: AtomicBool::new(false),
        workers_closed: AtomicUsize::new(0),
    });
    let before = resources(probe);
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let tags: Vec<usize> = (t..n).step_by(threads).collect();
            let (url, sources, shared, inflight) =
                (plan.url.clone(), plan.sources.clone(), shared.clone(), plan.inflight);
            thread::spawn(move || worker(url, sources, tags, threads, inflight, shared))
        })
        .collect();
    let all_open =
        wait_until(plan.timeout, || shared.tally.opened.load(Relaxed) + shared.tally.failed_conns.load(Relaxed) >= n);
    let connect_s = started.elapsed().as_secs_f64();
    let opened = shared.tally.opened.load(Relaxed);
    thread::sleep(plan.settle);
    let connected = resources(probe);

    let join_start = Instant::now();
    shared.go_join.store(true, Relaxed);
    let all_joined = wait_until(plan.timeout, || {
        shared.tally.workers_sent.load(Relaxed) >= threads
            && shared.tally.joined.load(Relaxed) + shared.tally.failed_joins.load(Relaxed)
                >= shared.tally.joins_sent.load(Relaxed)
    });
    let join_s = join_start.elapsed().as_secs_f64();
    let joined = shared.tally.joined.load(Relaxed);
    thread::sleep(plan.settle);
    let with_channels = resources(probe);

    // Idle: every channel joined, nothing sent (the clients' heartbeats aside).
    let idle_ms_per_s = probe.map(|p| {
        let (a, t) = (p.cpu(), Instant::now());
        thread::sleep(plan.idle_sample);
        let (b, elapsed) = (p.cpu(), t.elapsed());
        cpu_between(a, b).0 as f64 / 1e6 / elapsed.as_secs_f64()
    });

    // The publisher: one more connection, joined to every topic.
    let mut client = Client::new(plan.url.clone(), 1)?;
    let mut publisher = Publisher::default();
    client.add(0);
    let until = Instant::now() + plan.timeout;
    let mut join_sent = false;
    while publisher.joined < k && publisher.error.is_none() && Instant::now() < until {
        client.poll(Some(Duration::from_millis(5)), &mut publisher)?;
        if publisher.open && !join_sent {
            join_sent = true;
            for ws in client.open_conns() {
                for j in 0..k {
                    ws.queue_text(format!(r#"["j{j}","j{j}","{TOPIC_PREFIX}{j}","phx_join",{{}}]"#).as_bytes());
                }
                ws.flush();
            }
        }
    }
    let mut last_s = Vec::new();
    let mut lost = 0u64;
    if publisher.joined == k {
        for round in 0..plan.rounds {
            let start_ns = unix_ns();
            for ws in client.open_conns() {
                for j in 0..k {
                    let frame = format!(
                        r#"["j{j}","b{round}-{j}","{TOPIC_PREFIX}{j}","broadcast",{{"seq":{round},"t":{start_ns}}}]"#
                    );
                    ws.queue_text(frame.as_bytes());
                }
                ws.flush();
            }
            let until = Instant::now() + plan.drain;
            while shared.got[round].load(Relaxed) < joined as u64 && Instant::now() < until {
                client.poll(Some(Duration::from_millis(1)), &mut publisher)?;
            }
            let got = shared.got[round].load(Relaxed);
            lost += (joined as u64).saturating_sub(got);
            last_s.push(shared.last_ns[round].load(Relaxed).saturating_sub(start_ns) as f64 / 1e9);
            poll_for(&mut client, &mut publisher, plan.gap)?;
        }
    }
    client.close_all(Duration::from_secs(5), &mut publisher);

    // Teardown: every connection closes at once.
    let (threads_before, threads_joined) = (field(&before, "threads"), field(&with_channels, "threads"));
    let thread_per_channel = threads_joined >= threads_before + joined as u64 / 2;
    let close_start = Instant::now();
    shared.go_close.store(true, Relaxed);
    let all_closed = wait_until(plan.timeout, || shared.workers_closed.load(Relaxed) >= threads);
    let closed_s = close_start.elapsed().as_secs_f64();
    // The close's work (each channel's terminate and unsubscribe, its thread ended or
    // parked as a spare) is done when the server's CPU falls quiet: under 10 ms of CPU
    // time in 200 ms.
    // (Only for a thread per channel: the BEAM's schedulers spin when idle.)
    let quiet = probe
        .filter(|_| thread_per_channel)
        .and_then(|p| p.wait_quiet(Duration::from_millis(200), Duration::from_millis(10), plan.timeout));
    let quiet_s = quiet.map(|at| at.saturating_duration_since(close_start).as_secs_f64());
    let spares = probe.map_or(0, |p| p.threads_named(SPARE_THREAD_NAME));
    let threads_back =
        thread_per_channel && wait_until(plan.timeout, || probe.is_some_and(|p| p.memory().1 <= threads_before));
    let teardown_s = close_start.elapsed().as_secs_f64();
    for worker in workers {
        worker.join().map_err(|_| "a worker panicked")??;
    }
    thread::sleep(plan.settle);
    let after = resources(probe);

    let channels = joined.max(1) as f64;
    let rss_per_channel = |at: &Value| field(at, "rss_kib").saturating_sub(field(&before, "rss_kib")) as f64 / channels;
    let mut sorted = last_s.clone();
    sorted.sort_by(f64::total_cmp);
    let p50 = sorted.get(sorted.len() / 2).copied();
    summary.push(format!(
        "  opened {opened}/{n} in {connect_s:.3} s ({:.0}/s){}; joined {joined}/{} in {join_s:.3} s ({:.0} joins/s){}",
        opened as f64 / connect_s,
        if all_open { "" } else { " (TIMED OUT)" },
        n * k,
        joined as f64 / join_s,
        if all_joined { "" } else { " (TIMED OUT)" },
    ));
    summary.push(format!(
        "  failures: {} connections, {} joins, {} dropped while open",
        shared.tally.failed_conns.load(Relaxed),
        shared.tally.failed_joins.load(Relaxed),
        shared.tally.dropped.load(Relaxed)
    ));
    if probe.is_some() {
        summary.push(format!(
            "  server: {:.2} KiB per channel all-in ({:.2} marginal over the connections); idle CPU {:.1} ms/s",
            rss_per_channel(&with_channels),
            field(&with_channels, "rss_kib").saturating_sub(field(&connected, "rss_kib")) as f64 / channels,
            idle_ms_per_s.unwrap_or(0.0)
        ));
    }
    summary.push(format!(
        "  broadcast to {joined} subscribers ({k} topics, one broadcast each), time to the last: {} ; p50 {}; lost {lost}, duplicates {}{}",
        last_s.iter().map(|s| format!("{:.3} s", s)).collect::<Vec<_>>().join(", "),
        p50.map_or("-".into(), |p| format!("{p:.3} s")),
        shared.duplicates.load(Relaxed),
        publisher.error.as_ref().map_or(String::new(), |e| format!(" ({e})")),
    ));
    summary.push(format!(
        "  teardown: connections closed in {closed_s:.3} s{}; server quiet after {}, with {spares} spare threads parked; {}",
        if all_closed { "" } else { " (TIMED OUT)" },
        quiet_s.map_or("- (never)".to_owned(), |s| format!("{s:.3} s")),
        if !thread_per_channel {
            "no thread per channel to count".to_owned()
        } else if threads_back {
            format!("threads back to {threads_before} in {teardown_s:.3} s")
        } else {
            format!("threads NOT back to {threads_before} after {teardown_s:.3} s")
        }
    ));
    summary.push(format!("  server before {before}, with the channels {with_channels}, after {after}"));
    for e in shared.tally.errors.samples() {
        summary.push(format!("  error: {e}"));
    }
    Ok(json!({
        "opened": opened,
        "joined": joined,
        "failed_connections": shared.tally.failed_conns.load(Relaxed),
        "failed_joins": shared.tally.failed_joins.load(Relaxed),
        "dropped": shared.tally.dropped.load(Relaxed),
        "connect_s": round(connect_s, 3),
        "connections_per_s": round(opened as f64 / connect_s, 0),
        "join_s": round(join_s, 3),
        "joins_per_s": round(joined as f64 / join_s, 0),
        "rss_per_channel_all_in_kib": probe.map(|_| round(rss_per_channel(&with_channels), 2)),
        "idle_cpu_ms_per_s": idle_ms_per_s.map(|v| round(v, 2)),
        "broadcast_last_s": last_s.iter().map(|s| round(*s, 4)).collect::<Vec<_>>(),
        "broadcast_last_p50_s": p50.map(|p| round(p, 4)),
        "broadcast_lost": lost,
        "broadcast_duplicates": shared.duplicates.load(Relaxed),
        "publisher_error": publisher.error,
        "closed_s": round(closed_s, 3),
        "quiet_s": quiet_s.map(|s| round(s, 3)),
        "spare_threads": spares,
        "teardown_s": (thread_per_channel && threads_back).then(|| round(teardown_s, 3)),
        "server": {"before": before, "connected": connected, "joined": with_channels, "after": after},
    }))
}

pub(crate) fn scale(args: &Args) -> Res<()> {
    let url = Arc::new(WsUrl::parse(&args.get("url", DEFAULT_URL.to_owned())?)?);
    let n: usize = args.get("n", 1000)?;
    let sources = match args.opt::<String>("sources")? {
        Some(list) => list.split(',').map(|a| a.parse::<IpAddr>()).collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let plan = Plan {
        url,
        sources,
        n,
        k: args.get::<usize>("k", 10)?.max(1),
        threads: args.get::<usize>("threads", 2)?.clamp(1, n.max(1)),
        inflight: args.get("inflight", 128)?,
        rounds: args.get::<usize>("rounds", 5)?.min(64),
        gap: args.secs("gap", 1.0)?,
        drain: args.secs("drain", 10.0)?,
        timeout: args.secs("timeout", 120.0)?,
        settle: args.secs("settle", 1.0)?,
        idle_sample: args.secs("idle-sample", 5.0)?,
    };
    let cycles: usize = args.get("cycles", 1)?;
    let probe = Probe::new(args.opt("server-pid")?)?;
    args.finish()?;
    let mut summary = vec![format!(
        "scale: {n} connections x {} channels (topics {TOPIC_PREFIX}0..{}) on {}, {cycles} cycle(s)",
        plan.k,
        plan.k - 1,
        args_url(&plan.url)
    )];
    let mut results = Vec::new();
    for c in 0..cycles {
        summary.push(format!("cycle {}:", c + 1));
        results.push(cycle(&plan, probe.as_ref(), &mut summary)?);
        if probe.as_ref().is_some_and(|p| !p.alive()) {
            summary.push("  THE SERVER PROCESS IS GONE".into());
            break;
        }
    }
    let line = json!({
        "mode": "scale",
        "connections": n,
        "channels_per_connection": plan.k,
        "rounds": plan.rounds,
        "cycles": results,
    });
    emit(&summary, line);
    Ok(())
}

fn unix_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}
