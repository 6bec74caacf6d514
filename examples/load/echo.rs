//! `echo` and `raw-echo`: closed-loop round trips, `--inflight` requests in flight per
//! connection (one by default); their rate and latency, and the server's CPU per round
//! trip. `--client-poll spin` makes the client's event loops poll without ever sleeping,
//! as a client on a runtime whose schedulers busy-wait does: the machine's cores then
//! never go idle, and a wake-up never has to rouse an idle core.

use crate::args::{Args, DEFAULT_URL, Deflate, WsUrl, args_url};
use crate::client::Client;
use crate::phoenix::{parse_head, reply_ok};
use crate::probe::{Probe, clock_ticks, cpu_between, machine_between, machine_sample};
use crate::report::{ErrorLog, emit, histogram, percentile_line, percentiles, round};
use crate::ws::{Handler, Ws};
use crate::{Res, wait_until};
use hdrhistogram::Histogram;
use serde_json::json;
use std::collections::VecDeque;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};

#[derive(Default)]
struct EchoShared {
    ready: AtomicUsize,
    record: AtomicBool,
    stop: AtomicBool,
    errors: ErrorLog,
}

struct EchoConn {
    topic: String,
    started: bool,
    next_ref: u64,
    /// The requests in flight, oldest first: their ref (as text) and when each was sent.
    in_flight: VecDeque<(Vec<u8>, Instant)>,
}

struct EchoHandler {
    raw: bool,
    stride: usize,
    inflight: usize,
    conns: Vec<EchoConn>,
    payload: String,
    frame: Vec<u8>,
    hist: Histogram<u64>,
    completed: u64,
    mismatched: u64,
    shared: Arc<EchoShared>,
}

impl EchoHandler {
    fn send_next(&mut self, ws: &mut Ws) {
        if self.shared.stop.load(Relaxed) {
            return;
        }
        let conn = &mut self.conns[ws.tag / self.stride];
        conn.next_ref += 1;
        let mut expected = Vec::new();
        let _ = write!(expected, "{}", conn.next_ref);
        self.frame.clear();
        let _ = write!(self.frame, r#"["1","{}","{}","echo",{}]"#, conn.next_ref, conn.topic, self.payload);
        conn.in_flight.push_back((expected, Instant::now()));
        ws.send_text(&self.frame);
    }

    /// Fills the connection's window: `inflight` requests, each sent on its own.
    fn start(&mut self, ws: &mut Ws) {
        self.conns[ws.tag / self.stride].started = true;
        self.shared.ready.fetch_add(1, Relaxed);
        for _ in 0..self.inflight {
            self.send_next(ws);
        }
    }
}

impl Handler for EchoHandler {
    fn open(&mut self, ws: &mut Ws) {
        if self.raw {
            self.start(ws);
        } else {
            let topic = &self.conns[ws.tag / self.stride].topic;
            self.frame.clear();
            let _ = write!(self.frame, r#"["1","1","{topic}","phx_join",{{}}]"#);
            ws.send_text(&self.frame);
        }
    }

    fn message(&mut self, ws: &mut Ws, data: &[u8]) {
        let now = Instant::now();
        let Some(head) = parse_head(data) else {
            self.mismatched += 1;
            return;
        };
        let conn = &mut self.conns[ws.tag / self.stride];
        if !conn.started {
            if head.msg_ref == Some(b"1") && reply_ok(&head) {
                self.start(ws);
            } else {
                self.shared.errors.add(format!("join failed: {}", String::from_utf8_lossy(data)));
            }
            return;
        }
        let oldest = conn.in_flight.front().map(|(expected, _)| &expected[..]);
        if oldest.is_none() || head.msg_ref != oldest || !(self.raw || reply_ok(&head)) {
            self.mismatched += 1;
            return;
        }
        let (_, sent_at) = conn.in_flight.pop_front().expect("checked above");
        if self.shared.record.load(Relaxed) {
            self.hist.saturating_record(now.duration_since(sent_at).as_nanos() as u64);
            self.completed += 1;
        }
        self.send_next(ws);
    }

    fn closed(&mut self, tag: usize, error: Option<&str>) {
        if let Some(error) = error {
            self.shared.errors.add(format!("connection {tag}: {error}"));
        }
    }
}

struct EchoResult {
    hist: Histogram<u64>,
    completed: u64,
    mismatched: u64,
}

/// How a worker's event loop waits for its sockets.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ClientPoll {
    /// In `epoll_wait`, asleep until something happens.
    Block,
    /// Polling again at once, never asleep: a core stays busy for every worker.
    Spin,
}

impl std::str::FromStr for ClientPoll {
    type Err = String;

    fn from_str(text: &str) -> Result<ClientPoll, String> {
        match text {
            "block" => Ok(ClientPoll::Block),
            "spin" => Ok(ClientPoll::Spin),
            other => Err(format!("{other:?} is neither block nor spin")),
        }
    }
}

struct EchoPlan {
    raw: bool,
    stride: usize,
    inflight: usize,
    client_poll: ClientPoll,
    payload: String,
}

fn echo_worker(
    url: Arc<WsUrl>,
    tags: Vec<usize>,
    plan: Arc<EchoPlan>,
    shared: Arc<EchoShared>,
    deadline: Instant,
) -> Res<EchoResult> {
    let mut client = Client::new(url, 64)?;
    let conns = tags
        .iter()
        .map(|&tag| EchoConn {
            topic: format!("bench:echo{tag}"),
            started: false,
            next_ref: 1,
            in_flight: VecDeque::new(),
        })
        .collect();
    for &tag in &tags {
        client.add(tag);
    }
    let mut handler = EchoHandler {
        raw: plan.raw,
        stride: plan.stride,
        inflight: plan.inflight,
        conns,
        payload: plan.payload.clone(),
        frame: Vec::new(),
        hist: histogram(),
        completed: 0,
        mismatched: 0,
        shared: shared.clone(),
    };
    while !shared.stop.load(Relaxed) && Instant::now() < deadline && client.busy() {
        let wait = match plan.client_poll {
            ClientPoll::Block => Duration::from_millis(10),
            ClientPoll::Spin => Duration::ZERO,
        };
        client.poll(Some(wait), &mut handler)?;
    }
    client.close_all(Duration::from_secs(2), &mut handler);
    Ok(EchoResult { hist: handler.hist, completed: handler.completed, mismatched: handler.mismatched })
}

pub(crate) fn echo(args: &Args, raw: bool) -> Res<()> {
    let mode = if raw { "raw-echo" } else { "echo" };
    let default_url = if raw { "ws://127.0.0.1:4900/".to_owned() } else { DEFAULT_URL.to_owned() };
    let mut url = WsUrl::parse(&args.get("url", default_url)?)?;
    url.deflate = Deflate::from_args(args)?;
    let url = Arc::new(url);
    let c: usize = args.get("c", 1)?;
    let duration = args.secs("duration", 10.0)?;
    let warmup = args.secs("warmup", 1.0)?;
    let payload_bytes: usize = args.get("payload-bytes", 32)?;
    let threads: usize = args.get::<usize>("threads", 1)?.clamp(1, c.max(1));
    let inflight: usize = args.get::<usize>("inflight", 1)?.max(1);
    let client_poll: ClientPoll = args.get("client-poll", ClientPoll::Block)?;
    let timeout = args.secs("timeout", 30.0)?;
    let probe = Probe::new(args.opt("server-pid")?)?;
    args.finish()?;

    let shared = Arc::new(EchoShared::default());
    let payload = echo_payload(payload_bytes);
    let payload_len = payload.len();
    let plan = Arc::new(EchoPlan { raw, stride: threads, inflight, client_poll, payload });
    let deadline = Instant::now() + timeout + warmup + duration + Duration::from_secs(5);
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let tags: Vec<usize> = (t..c).step_by(threads).collect();
            let (url, plan, shared) = (url.clone(), plan.clone(), shared.clone());
            thread::spawn(move || echo_worker(url, tags, plan, shared, deadline))
        })
        .collect();
    let all_ready = wait_until(timeout, || shared.ready.load(Relaxed) >= c);
    let ready = shared.ready.load(Relaxed);
    let mut window = Duration::ZERO;
    let mut cpu = None;
    let ticks = clock_ticks();
    let mut machine = None;
    if ready > 0 {
        thread::sleep(warmup);
        let cpu0 = probe.as_ref().map(Probe::cpu);
        let m0 = machine_sample(ticks);
        let t0 = Instant::now();
        shared.record.store(true, Relaxed);
        thread::sleep(duration);
        shared.record.store(false, Relaxed);
        window = t0.elapsed();
        let m1 = machine_sample(ticks);
        let cpu1 = probe.as_ref().map(Probe::cpu);
        cpu = cpu0.zip(cpu1).map(|(a, b)| cpu_between(a, b));
        machine = Some(machine_between(&m0, &m1, cpu.map_or(0, |c| c.0), ticks));
    }
    shared.stop.store(true, Relaxed);
    let mut hist = histogram();
    let (mut completed, mut mismatched) = (0, 0);
    for worker in workers {
        let result = worker.join().map_err(|_| "a worker panicked")??;
        hist.add(&result.hist)?;
        completed += result.completed;
        mismatched += result.mismatched;
    }
    let secs = window.as_secs_f64().max(1e-9);
    let mut summary = vec![
        format!(
            "{mode}: {c} connections, closed loop with {inflight} in flight each, {}-byte payload, client {}, \
             {:.1} s window after {:.1} s warm-up, on {}",
            payload_len,
            if client_poll == ClientPoll::Spin { "spinning" } else { "blocking" },
            secs,
            warmup.as_secs_f64(),
            args_url(&url)
        ),
        format!("  ready {ready}/{c}{}", if all_ready { "" } else { " (TIMED OUT)" }),
        format!("  {completed} round trips, {:.0} requests/s", completed as f64 / secs),
        format!("  {}", percentile_line("round trip", &hist)),
    ];
    let mut line = json!({
        "mode": mode,
        "connections": c,
        "inflight": inflight,
        "client_poll": if client_poll == ClientPoll::Spin { "spin" } else { "block" },
        "payload_bytes": payload_len,
        "window_s": round(secs, 3),
        "round_trips": completed,
        "requests_per_s": round(completed as f64 / secs, 1),
        "latency": percentiles(&hist),
        "mismatched": mismatched,
        "errors": shared.errors.count(),
    });
    if let Some((ns, source, stat_ns)) = cpu {
        let per = ns as f64 / completed.max(1) as f64;
        summary.push(format!(
            "  server CPU: {:.3} s ({source}; utime+stime says {:.2} s) = {:.2} µs per round trip, {:.0}% of a core",
            ns as f64 / 1e9,
            stat_ns as f64 / 1e9,
            per / 1000.0,
            ns as f64 / 1e9 / secs * 100.0
        ));
        line["server_cpu"] = json!({
            "cpu_s": round(ns as f64 / 1e9, 4),
            "source": source,
            "stat_cpu_s": round(stat_ns as f64 / 1e9, 3),
            "per_round_trip_us": round(per / 1000.0, 3),
            "core_share": round(ns as f64 / 1e9 / secs, 3),
        });
    }
    if let Some((value, text)) = machine {
        summary.push(text);
        line["machine"] = value;
    }
    if mismatched > 0 {
        summary.push(format!("  {mismatched} unexpected frames"));
    }
    for e in shared.errors.samples() {
        summary.push(format!("  error: {e}"));
    }
    emit(&summary, line);
    Ok(())
}

/// A JSON object of about `bytes` bytes: `{"data":"xxx…"}`.
pub(crate) fn echo_payload(bytes: usize) -> String {
    let overhead = r#"{"data":""}"#.len();
    format!(r#"{{"data":"{}"}}"#, "x".repeat(bytes.saturating_sub(overhead)))
}
