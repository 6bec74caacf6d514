//! The load and benchmark tool: event-driven WebSocket clients (mio, non-blocking
//! sockets, a few threads with many connections each) that speak Phoenix V2 JSON,
//! and the floors their figures are compared with. BENCHMARKS.md says how each
//! measurement is run and what it found.
//!
//! ```text
//! cargo run --release --example load -- <subcommand> [options]
//!
//! connect    --url URL -n N -k K [--hold S] [--threads T] [--server-pid PID]
//! echo       --url URL -c C --duration S [--payload-bytes B] [--server-pid PID]
//! broadcast  --url URL -n N --count M --rate R [--payload-bytes B] [--server-pid PID]
//! raw-server --port P [--max-seconds S]
//! raw-echo   --url ws://127.0.0.1:P/ -c C --duration S [--payload-bytes B] [--server-pid PID]
//! tcp-floor  --n N --count M [--frame-bytes B] [--batch 8] [--rate R]
//! ```
//!
//! Every subcommand prints a human summary, then one JSON line that starts with
//! `{"mode":`. Everything bounds its own duration (`--timeout`, `--max-seconds`).
//!
//! The WebSocket client here is deliberately minimal (RFC 6455 client side: the
//! upgrade request and its `101`, masked frames out, unmasked frames in with 7, 16 and
//! 64-bit lengths, fragments, pings answered, the close handshake) so that the tool
//! costs little per message and never becomes the bottleneck.

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use serde_json::{Value, json};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Display;
use std::fmt::Write as _;
use std::io::{self, IoSlice, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const USAGE: &str = "usage: load <connect|echo|broadcast|raw-server|raw-echo|tcp-floor> [options]
  connect    --url URL -n N -k K [--hold S] [--threads T] [--inflight I] [--timeout S] [--server-pid PID]
  echo       --url URL -c C --duration S [--warmup S] [--payload-bytes B] [--threads T] [--server-pid PID]
  broadcast  --url URL -n N --count M --rate R [--payload-bytes B] [--threads T] [--drain S]
             [--event broadcast|broadcast_from] [--topic T] [--server-pid PID]
  raw-server --port P [--max-seconds S]
  raw-echo   --url ws://127.0.0.1:P/ -c C --duration S [--warmup S] [--payload-bytes B] [--server-pid PID]
  tcp-floor  --n N --count M [--frame-bytes B] [--batch K] [--rate R] [--writer-cpu C] [--reader-cpu C]";

const DEFAULT_URL: &str = "ws://127.0.0.1:4807/bench/websocket";

fn main() {
    let mut argv = std::env::args().skip(1);
    let Some(command) = argv.next() else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    let result = Args::parse(argv.collect()).and_then(|args| match command.as_str() {
        "connect" => connect(&args),
        "echo" => echo(&args, false),
        "raw-echo" => echo(&args, true),
        "broadcast" => broadcast(&args),
        "raw-server" => raw_server(&args),
        "tcp-floor" => tcp_floor(&args),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown subcommand {other:?}\n{USAGE}").into()),
    });
    if let Err(err) = result {
        eprintln!("load {command}: {err}");
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------

/// `--name value`, `--name=value` or `-n value`; every option takes a value.
struct Args {
    values: HashMap<String, String>,
    used: RefCell<HashSet<String>>,
}

impl Args {
    fn parse(items: Vec<String>) -> Res<Args> {
        let mut values = HashMap::new();
        let mut items = items.into_iter();
        while let Some(item) = items.next() {
            let name = item
                .strip_prefix("--")
                .or_else(|| item.strip_prefix('-'))
                .ok_or_else(|| format!("unexpected argument {item:?}"))?;
            let (name, value) = match name.split_once('=') {
                Some((name, value)) => (name.to_owned(), value.to_owned()),
                None => (name.to_owned(), items.next().ok_or_else(|| format!("--{name} needs a value"))?),
            };
            values.insert(name, value);
        }
        Ok(Args { values, used: RefCell::new(HashSet::new()) })
    }

    fn opt<T: FromStr>(&self, name: &str) -> Res<Option<T>>
    where
        T::Err: Display,
    {
        self.used.borrow_mut().insert(name.to_owned());
        match self.values.get(name) {
            None => Ok(None),
            Some(value) => value.parse().map(Some).map_err(|err| format!("--{name} {value:?}: {err}").into()),
        }
    }

    fn get<T: FromStr>(&self, name: &str, default: T) -> Res<T>
    where
        T::Err: Display,
    {
        Ok(self.opt(name)?.unwrap_or(default))
    }

    fn secs(&self, name: &str, default: f64) -> Res<Duration> {
        let secs: f64 = self.get(name, default)?;
        Duration::try_from_secs_f64(secs).map_err(|err| format!("--{name}: {err}").into())
    }

    /// Fails on options the subcommand did not read.
    fn finish(&self) -> Res<()> {
        let used = self.used.borrow();
        let mut unknown: Vec<&String> = self.values.keys().filter(|k| !used.contains(*k)).collect();
        unknown.sort();
        match unknown.first() {
            None => Ok(()),
            Some(_) => Err(format!("unknown option(s) {unknown:?}\n{USAGE}").into()),
        }
    }
}

/// A `ws://host:port/path?query` URL. `vsn=2.0.0` is added when absent.
struct WsUrl {
    addr: SocketAddr,
    host: String,
    path: String,
}

impl WsUrl {
    fn parse(url: &str) -> Res<WsUrl> {
        let rest = url.strip_prefix("ws://").ok_or("only ws:// URLs are supported")?;
        let (host, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        let addr = host.to_socket_addrs()?.next().ok_or_else(|| format!("cannot resolve {host}"))?;
        let mut path = path.to_owned();
        if !path.contains("vsn=") {
            path.push(if path.contains('?') { '&' } else { '?' });
            path.push_str("vsn=2.0.0");
        }
        Ok(WsUrl { addr, host: host.to_owned(), path })
    }
}

// ---------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------

/// xorshift64*: masks, handshake keys.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn seed() -> u64 {
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    t.as_nanos() as u64 ^ (u64::from(std::process::id()) << 32)
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The unsigned integer right after `key` (for example `"seq":`).
fn number_after(haystack: &[u8], key: &[u8]) -> Option<u64> {
    let at = find(haystack, key)? + key.len();
    let digits = haystack[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&haystack[at..at + digits]).ok()?.parse().ok()
}

fn unix_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// A latency histogram in nanoseconds, 1 ns to 100 s, 3 significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

fn round(x: f64, places: i32) -> f64 {
    let p = 10f64.powi(places);
    (x * p).round() / p
}

/// p50, p90, p99, p99.9 and max, in microseconds.
fn percentiles(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return json!(null);
    }
    json!({
        "p50_us": round(us(h.value_at_quantile(0.50)), 2),
        "p90_us": round(us(h.value_at_quantile(0.90)), 2),
        "p99_us": round(us(h.value_at_quantile(0.99)), 2),
        "p999_us": round(us(h.value_at_quantile(0.999)), 2),
        "max_us": round(us(h.max()), 2),
        "mean_us": round(h.mean() / 1000.0, 2),
        "count": h.len(),
    })
}

fn percentile_line(name: &str, h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return format!("{name}: no samples");
    }
    format!(
        "{name}: p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs ({} samples)",
        us(h.value_at_quantile(0.50)),
        us(h.value_at_quantile(0.90)),
        us(h.value_at_quantile(0.99)),
        us(h.value_at_quantile(0.999)),
        us(h.max()),
        h.len()
    )
}

/// Waits until `done()` or `timeout`; returns whether it got done.
fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(2));
    }
    true
}

/// First few error messages, for the summary.
#[derive(Default)]
struct ErrorLog {
    count: AtomicU64,
    samples: Mutex<Vec<String>>,
}

impl ErrorLog {
    fn add(&self, what: impl Into<String>) {
        self.count.fetch_add(1, Relaxed);
        let mut samples = self.samples.lock().expect("error log lock");
        if samples.len() < 5 {
            samples.push(what.into());
        }
    }

    fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    fn samples(&self) -> Vec<String> {
        self.samples.lock().expect("error log lock").clone()
    }
}

fn emit(summary: &[String], line: Value) {
    for s in summary {
        println!("{s}");
    }
    println!("{line}");
}

// ---------------------------------------------------------------------------------------
// The server under test, seen from /proc
// ---------------------------------------------------------------------------------------

struct Probe {
    pid: u32,
    clock_ticks: u64,
}

/// The server's CPU time so far: `utime + stime` from /proc/PID/stat (clock ticks,
/// covers every thread that ever ran), and the sum of the first field of
/// /proc/PID/task/*/schedstat (nanoseconds on CPU, threads alive now). Note that
/// /proc/PID/schedstat itself covers only the main thread.
#[derive(Clone, Copy, Debug)]
struct CpuSample {
    stat_ns: u64,
    sched_ns: Option<u64>,
}

impl Probe {
    fn new(pid: Option<u32>) -> Res<Option<Probe>> {
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

    fn alive(&self) -> bool {
        std::path::Path::new(&format!("/proc/{}/status", self.pid)).exists()
    }

    fn memory(&self) -> (u64, u64) {
        (self.rss_kib(), self.threads())
    }

    fn cpu(&self) -> CpuSample {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
        let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
        // After the command name: field 3 (state) is index 0, utime (14) index 11, stime (15) index 12.
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
        let stat_ns = (ticks(11) + ticks(12)) * 1_000_000_000 / self.clock_ticks;
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
/// else utime+stime. Returns (best ns, which, stat ns).
fn cpu_between(a: CpuSample, b: CpuSample) -> (u64, &'static str, u64) {
    let stat = b.stat_ns.saturating_sub(a.stat_ns);
    match (a.sched_ns, b.sched_ns) {
        (Some(x), Some(y)) => (y.saturating_sub(x), "schedstat", stat),
        _ => (stat, "stat", stat),
    }
}

/// What else ran on the machine: per-CPU busy and nice ticks from /proc/stat, and this
/// process's own CPU time, so that a run disturbed by other programs can be told apart.
#[derive(Clone, Debug)]
struct MachineSample {
    /// Per CPU: busy ticks (user, nice, system, irq, softirq, steal), nice ticks, all ticks.
    cpus: Vec<[u64; 3]>,
    own_ns: u64,
    at: Instant,
}

fn machine_sample(clock_ticks: u64) -> MachineSample {
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

fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .unwrap_or(100)
}

/// Machine use between two samples: per-CPU busy share, and the CPU time used by
/// processes other than this tool and the server (`server_ns`), which should be ~0.
fn machine_between(a: &MachineSample, b: &MachineSample, server_ns: u64, clock_ticks: u64) -> (Value, String) {
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
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|t| t.split_whitespace().next().and_then(|f| f.parse().ok()))
        .unwrap_or(0)
}

/// Pins the calling thread to `cpu` with taskset (no libc needed).
fn pin_thread(cpu: Option<usize>) {
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

// ---------------------------------------------------------------------------------------
// A minimal client-side WebSocket over a non-blocking mio socket
// ---------------------------------------------------------------------------------------

const OP_CONT: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;
const MAX_FRAME: u64 = 64 * 1024 * 1024;
const MAX_RESPONSE_HEAD: usize = 16 * 1024;
/// A connection that sent nothing for this long sends a Phoenix heartbeat.
const HEARTBEAT_AFTER: Duration = Duration::from_secs(25);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// TCP connect in progress.
    Connecting,
    /// Upgrade request sent, waiting for `101`.
    Handshake,
    Open,
    /// Our close frame is sent; waiting for the server's.
    Closing,
    Closed,
}

struct Ws {
    stream: TcpStream,
    /// The caller's name for this connection.
    tag: usize,
    phase: Phase,
    /// Bytes read but not yet a whole frame.
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    wpos: usize,
    key: String,
    accept: String,
    fragments: Vec<u8>,
    rng: Rng,
    last_send: Instant,
    error: Option<String>,
}

impl Ws {
    fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    fn pending(&self) -> bool {
        matches!(self.phase, Phase::Connecting | Phase::Handshake)
    }

    fn fail(&mut self, why: impl Into<String>) {
        if self.phase != Phase::Closing && self.phase != Phase::Closed && self.error.is_none() {
            self.error = Some(why.into());
        }
        self.phase = Phase::Closed;
    }

    /// Appends a masked frame to the write buffer.
    fn queue_frame(&mut self, opcode: u8, data: &[u8]) {
        let len = data.len();
        self.wbuf.push(0x80 | opcode);
        if len < 126 {
            self.wbuf.push(0x80 | len as u8);
        } else if len <= 0xffff {
            self.wbuf.push(0x80 | 126);
            self.wbuf.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            self.wbuf.push(0x80 | 127);
            self.wbuf.extend_from_slice(&(len as u64).to_be_bytes());
        }
        let mask = (self.rng.next() as u32).to_ne_bytes();
        self.wbuf.extend_from_slice(&mask);
        let start = self.wbuf.len();
        self.wbuf.extend_from_slice(data);
        for (i, b) in self.wbuf[start..].iter_mut().enumerate() {
            *b ^= mask[i & 3];
        }
    }

    /// Queues a text frame (sent by the next `flush`).
    fn queue_text(&mut self, data: &[u8]) {
        if self.phase == Phase::Open {
            self.queue_frame(OP_TEXT, data);
        }
    }

    /// Sends a text frame now (as far as the socket takes it).
    fn send_text(&mut self, data: &[u8]) {
        self.queue_text(data);
        self.flush();
    }

    fn flush(&mut self) {
        if matches!(self.phase, Phase::Connecting | Phase::Closed) {
            return;
        }
        while self.wpos < self.wbuf.len() {
            match self.stream.write(&self.wbuf[self.wpos..]) {
                Ok(0) => return self.fail("the socket took no bytes"),
                Ok(n) => self.wpos += n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return self.fail(format!("write: {err}")),
            }
        }
        self.wbuf.clear();
        self.wpos = 0;
        self.last_send = Instant::now();
    }

    /// Starts the close handshake (or just drops a connection that is not open yet).
    fn close(&mut self, code: u16) {
        match self.phase {
            Phase::Open => {
                self.queue_frame(OP_CLOSE, &code.to_be_bytes());
                self.phase = Phase::Closing;
                self.flush();
            }
            Phase::Connecting | Phase::Handshake => self.phase = Phase::Closed,
            Phase::Closing | Phase::Closed => {}
        }
    }

    fn upgrade_request(&self, url: &WsUrl) -> String {
        format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\nUser-Agent: phx-channels-load\r\n\r\n",
            url.path, url.host, self.key
        )
    }
}

/// What a connection tells its owner.
trait Handler {
    /// The upgrade succeeded.
    fn open(&mut self, ws: &mut Ws);
    /// A whole text or binary message arrived.
    fn message(&mut self, ws: &mut Ws, data: &[u8]);
    /// The connection is gone (`error` is None for an orderly close we started).
    fn closed(&mut self, tag: usize, error: Option<&str>);
}

fn check_upgrade(head: &str, accept: &str) -> Result<(), String> {
    let status = head.lines().next().unwrap_or("");
    if !status.starts_with("HTTP/1.1 101") {
        return Err(format!("upgrade refused: {status:?}"));
    }
    let got = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim().eq_ignore_ascii_case("sec-websocket-accept").then(|| value.trim())
    });
    match got {
        Some(got) if got == accept => Ok(()),
        other => Err(format!("bad Sec-WebSocket-Accept {other:?}")),
    }
}

/// Parses everything whole in `data`; returns how many bytes were used.
fn process(ws: &mut Ws, data: &mut [u8], handler: &mut impl Handler) -> usize {
    let mut pos = 0;
    if ws.phase == Phase::Handshake {
        let Some(end) = find(data, b"\r\n\r\n") else {
            if data.len() > MAX_RESPONSE_HEAD {
                ws.fail("the upgrade response is too long");
                return data.len();
            }
            return 0;
        };
        if let Err(why) = check_upgrade(&String::from_utf8_lossy(&data[..end]), &ws.accept) {
            ws.fail(why);
            return data.len();
        }
        ws.phase = Phase::Open;
        pos = end + 4;
        handler.open(ws);
    }
    while matches!(ws.phase, Phase::Open | Phase::Closing) {
        let rest = &data[pos..];
        if rest.len() < 2 {
            break;
        }
        let (b0, b1) = (rest[0], rest[1]);
        let (len, mut header) = match b1 & 0x7f {
            126 if rest.len() >= 4 => (u64::from(u16::from_be_bytes([rest[2], rest[3]])), 4),
            127 if rest.len() >= 10 => (u64::from_be_bytes(rest[2..10].try_into().expect("8 bytes")), 10),
            126 | 127 => break,
            short => (u64::from(short), 2),
        };
        if len > MAX_FRAME {
            ws.fail(format!("a {len}-byte frame is too big"));
            return data.len();
        }
        let masked = b1 & 0x80 != 0;
        if masked {
            header += 4;
        }
        let total = header + len as usize;
        if rest.len() < total {
            break;
        }
        let (start, end) = (pos + header, pos + total);
        if masked {
            let mask = [data[start - 4], data[start - 3], data[start - 2], data[start - 1]];
            for (i, b) in data[start..end].iter_mut().enumerate() {
                *b ^= mask[i & 3];
            }
        }
        pos = end;
        let fin = b0 & 0x80 != 0;
        match b0 & 0x0f {
            OP_TEXT | OP_BINARY if fin => {
                if ws.phase == Phase::Open {
                    handler.message(ws, &data[start..end]);
                }
            }
            OP_TEXT | OP_BINARY => {
                ws.fragments.clear();
                ws.fragments.extend_from_slice(&data[start..end]);
            }
            OP_CONT => {
                ws.fragments.extend_from_slice(&data[start..end]);
                if fin {
                    let whole = std::mem::take(&mut ws.fragments);
                    if ws.phase == Phase::Open {
                        handler.message(ws, &whole);
                    }
                    ws.fragments = whole;
                    ws.fragments.clear();
                }
            }
            OP_CLOSE => {
                let body = &data[start..end];
                let code = if body.len() >= 2 { u16::from_be_bytes([body[0], body[1]]) } else { 1005 };
                if ws.phase == Phase::Open {
                    let reason = String::from_utf8_lossy(body.get(2..).unwrap_or(&[])).into_owned();
                    ws.queue_frame(OP_CLOSE, &code.to_be_bytes());
                    ws.flush();
                    ws.error = Some(format!("the server closed the connection: {code} {reason}"));
                }
                ws.phase = Phase::Closed;
            }
            OP_PING => {
                let body = data[start..end].to_vec();
                ws.queue_frame(OP_PONG, &body);
                ws.flush();
            }
            OP_PONG => {}
            other => ws.fail(format!("unknown opcode {other}")),
        }
    }
    if ws.phase == Phase::Closed { data.len() } else { pos }
}

/// Reads until the socket is empty, handing whole messages to `handler`.
/// A read shorter than `scratch` emptied the socket, and any later data raises a new
/// (edge-triggered) event, so reading stops there and saves the system call that
/// would only say `WouldBlock`; unless the peer has closed (`until_blocked`), where
/// the end of stream must still be read.
fn read_ready(ws: &mut Ws, scratch: &mut [u8], handler: &mut impl Handler, until_blocked: bool) {
    while matches!(ws.phase, Phase::Handshake | Phase::Open | Phase::Closing) {
        match ws.stream.read(scratch) {
            Ok(0) => {
                if ws.phase == Phase::Closing {
                    ws.phase = Phase::Closed;
                } else {
                    ws.fail("the server closed the TCP connection");
                }
            }
            Ok(n) => {
                let chunk = &mut scratch[..n];
                if ws.rbuf.is_empty() {
                    let used = process(ws, chunk, handler);
                    if used < n && ws.phase != Phase::Closed {
                        ws.rbuf.extend_from_slice(&chunk[used..]);
                    }
                } else {
                    let mut buf = std::mem::take(&mut ws.rbuf);
                    buf.extend_from_slice(chunk);
                    let used = process(ws, &mut buf, handler);
                    buf.drain(..used.min(buf.len()));
                    if ws.phase != Phase::Closed {
                        ws.rbuf = buf;
                    }
                }
                if n < scratch.len() && !until_blocked {
                    return;
                }
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => {
                if ws.phase == Phase::Closing {
                    ws.phase = Phase::Closed;
                } else {
                    ws.fail(format!("read: {err}"));
                }
            }
        }
    }
}

/// One event loop with many connections. Connections are opened at most `max_pending`
/// at a time, so that a burst of thousands does not overflow the server's backlog.
struct Client {
    poll: Poll,
    events: Events,
    /// Per event: slot, readable, writable, peer closed or error.
    ready: Vec<(usize, bool, bool, bool)>,
    conns: Vec<Option<Ws>>,
    free: Vec<usize>,
    queued: VecDeque<usize>,
    url: Arc<WsUrl>,
    pending: usize,
    max_pending: usize,
    scratch: Vec<u8>,
    rng: Rng,
    live: usize,
    next_tick: Instant,
}

impl Client {
    fn new(url: Arc<WsUrl>, max_pending: usize) -> io::Result<Client> {
        Ok(Client {
            poll: Poll::new()?,
            events: Events::with_capacity(1024),
            ready: Vec::new(),
            conns: Vec::new(),
            free: Vec::new(),
            queued: VecDeque::new(),
            url,
            pending: 0,
            max_pending: max_pending.max(1),
            scratch: vec![0; 256 * 1024],
            rng: Rng::new(seed() ^ thread_seed()),
            live: 0,
            next_tick: Instant::now() + Duration::from_secs(1),
        })
    }

    /// Queues a connection named `tag`.
    fn add(&mut self, tag: usize) {
        self.queued.push_back(tag);
    }

    /// Connections queued, connecting or open.
    fn busy(&self) -> bool {
        self.live > 0 || !self.queued.is_empty()
    }

    fn open_conns(&mut self) -> impl Iterator<Item = &mut Ws> {
        self.conns.iter_mut().flatten().filter(|ws| ws.is_open())
    }

    fn start_queued(&mut self, handler: &mut impl Handler) {
        while self.pending < self.max_pending {
            let Some(tag) = self.queued.pop_front() else { return };
            let mut stream = match TcpStream::connect(self.url.addr) {
                Ok(stream) => stream,
                Err(err) => {
                    handler.closed(tag, Some(&format!("connect: {err}")));
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let slot = self.free.pop().unwrap_or_else(|| {
                self.conns.push(None);
                self.conns.len() - 1
            });
            if let Err(err) =
                self.poll.registry().register(&mut stream, Token(slot), Interest::READABLE | Interest::WRITABLE)
            {
                self.free.push(slot);
                handler.closed(tag, Some(&format!("register: {err}")));
                continue;
            }
            let raw: [u8; 16] = {
                let (a, b) = (self.rng.next(), self.rng.next());
                let mut raw = [0u8; 16];
                raw[..8].copy_from_slice(&a.to_ne_bytes());
                raw[8..].copy_from_slice(&b.to_ne_bytes());
                raw
            };
            let key = base64(&raw);
            let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
            self.conns[slot] = Some(Ws {
                stream,
                tag,
                phase: Phase::Connecting,
                rbuf: Vec::new(),
                wbuf: Vec::new(),
                wpos: 0,
                key,
                accept,
                fragments: Vec::new(),
                rng: Rng::new(self.rng.next()),
                last_send: Instant::now(),
                error: None,
            });
            self.pending += 1;
            self.live += 1;
        }
    }

    /// Waits for events (at most `timeout`) and handles them.
    fn poll(&mut self, timeout: Option<Duration>, handler: &mut impl Handler) -> io::Result<()> {
        self.start_queued(handler);
        if let Err(err) = self.poll.poll(&mut self.events, timeout)
            && err.kind() != io::ErrorKind::Interrupted
        {
            return Err(err);
        }
        let mut ready = std::mem::take(&mut self.ready);
        ready.clear();
        for event in self.events.iter() {
            let readable = event.is_readable() || event.is_read_closed() || event.is_error();
            let closed = event.is_read_closed() || event.is_error();
            ready.push((event.token().0, readable, event.is_writable() || event.is_error(), closed));
        }
        for &(slot, readable, writable, closed) in &ready {
            self.service(slot, readable, writable, closed, handler);
        }
        self.ready = ready;
        self.start_queued(handler);
        let now = Instant::now();
        if now >= self.next_tick {
            self.next_tick = now + Duration::from_secs(1);
            self.tick(now, handler);
        }
        Ok(())
    }

    fn service(&mut self, slot: usize, readable: bool, writable: bool, closed: bool, handler: &mut impl Handler) {
        let Client { conns, scratch, url, .. } = self;
        let Some(ws) = conns.get_mut(slot).and_then(Option::as_mut) else { return };
        let was_pending = ws.pending();
        if ws.phase == Phase::Connecting {
            match ws.stream.take_error() {
                Ok(Some(err)) | Err(err) => ws.fail(format!("connect: {err}")),
                Ok(None) => match ws.stream.peer_addr() {
                    Ok(_) => {
                        let request = ws.upgrade_request(url);
                        ws.wbuf.extend_from_slice(request.as_bytes());
                        ws.phase = Phase::Handshake;
                    }
                    Err(err) if err.kind() == io::ErrorKind::NotConnected => {}
                    Err(err) => ws.fail(format!("connect: {err}")),
                },
            }
        }
        if writable || !ws.wbuf.is_empty() {
            ws.flush();
        }
        if readable {
            read_ready(ws, scratch, handler, closed);
        }
        self.settle(slot, was_pending, handler);
    }

    /// Updates the counts after a connection changed phase; removes it once closed.
    fn settle(&mut self, slot: usize, was_pending: bool, handler: &mut impl Handler) {
        let Some(ws) = self.conns.get_mut(slot).and_then(Option::as_mut) else { return };
        if was_pending && !ws.pending() {
            self.pending -= 1;
        }
        if ws.phase == Phase::Closed {
            let mut ws = self.conns[slot].take().expect("present");
            let _ = self.poll.registry().deregister(&mut ws.stream);
            self.free.push(slot);
            self.live -= 1;
            handler.closed(ws.tag, ws.error.as_deref());
        }
    }

    /// Once a second: heartbeats for quiet connections, and removal of connections
    /// that failed outside an event (a send from the caller).
    fn tick(&mut self, now: Instant, handler: &mut impl Handler) {
        for slot in 0..self.conns.len() {
            let Some(ws) = self.conns[slot].as_mut() else { continue };
            let was_pending = ws.pending();
            if ws.is_open() && now.duration_since(ws.last_send) > HEARTBEAT_AFTER {
                ws.send_text(br#"[null,"hb","phoenix","heartbeat",{}]"#);
            }
            self.settle(slot, was_pending, handler);
        }
    }

    /// Closes every connection (close handshake), waiting at most `grace`.
    fn close_all(&mut self, grace: Duration, handler: &mut impl Handler) {
        self.queued.clear();
        for slot in 0..self.conns.len() {
            let Some(ws) = self.conns[slot].as_mut() else { continue };
            let was_pending = ws.pending();
            ws.close(1000);
            self.settle(slot, was_pending, handler);
        }
        let deadline = Instant::now() + grace;
        while self.live > 0 {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            if self.poll(Some((deadline - now).min(Duration::from_millis(50))), handler).is_err() {
                break;
            }
        }
        // Whatever did not finish its close handshake in time is dropped.
        for slot in 0..self.conns.len() {
            if let Some(ws) = self.conns[slot].as_mut() {
                let was_pending = ws.pending();
                ws.phase = Phase::Closed;
                self.settle(slot, was_pending, handler);
            }
        }
    }
}

fn thread_seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(thread::current().id())
}

// ---------------------------------------------------------------------------------------
// Phoenix V2 frames, read without a JSON parser
// ---------------------------------------------------------------------------------------

/// The first four fields of a V2 array, and the payload's bytes. Strings with escapes
/// are not needed by the load tool and make the parse fail.
struct Head<'a> {
    msg_ref: Option<&'a [u8]>,
    topic: &'a [u8],
    event: &'a [u8],
    payload: &'a [u8],
}

fn parse_head(data: &[u8]) -> Option<Head<'_>> {
    let mut pos = 0;
    let skip_ws = |pos: &mut usize| {
        while data.get(*pos).is_some_and(|b| b.is_ascii_whitespace()) {
            *pos += 1;
        }
    };
    let field = |pos: &mut usize| -> Option<Option<&[u8]>> {
        skip_ws(pos);
        if data[*pos..].starts_with(b"null") {
            *pos += 4;
        } else {
            if data.get(*pos) != Some(&b'"') {
                return None;
            }
            let start = *pos + 1;
            let len = data[start..].iter().position(|&b| b == b'"' || b == b'\\')?;
            if data[start + len] == b'\\' {
                return None;
            }
            *pos = start + len + 1;
            return Some(Some(&data[start..start + len]));
        }
        Some(None)
    };
    let comma = |pos: &mut usize| -> Option<()> {
        skip_ws(pos);
        (data.get(*pos) == Some(&b',')).then(|| *pos += 1)
    };
    skip_ws(&mut pos);
    if data.get(pos) != Some(&b'[') {
        return None;
    }
    pos += 1;
    let _join_ref = field(&mut pos)?;
    comma(&mut pos)?;
    let msg_ref = field(&mut pos)?;
    comma(&mut pos)?;
    let topic = field(&mut pos)??;
    comma(&mut pos)?;
    let event = field(&mut pos)??;
    comma(&mut pos)?;
    let end = data.iter().rposition(|&b| b == b']')?;
    Some(Head { msg_ref, topic, event, payload: data.get(pos..end)? })
}

fn reply_ok(head: &Head<'_>) -> bool {
    head.event == b"phx_reply" && find(head.payload, br#""status":"ok""#).is_some()
}

/// A JSON object of about `bytes` bytes: `{"data":"xxx…"}`.
fn echo_payload(bytes: usize) -> String {
    let overhead = r#"{"data":""}"#.len();
    format!(r#"{{"data":"{}"}}"#, "x".repeat(bytes.saturating_sub(overhead)))
}

// ---------------------------------------------------------------------------------------
// connect: N connections × K channels
// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct ConnectShared {
    opened: AtomicUsize,
    failed_conns: AtomicUsize,
    joins_sent: AtomicUsize,
    /// Workers that have sent their joins.
    workers_sent: AtomicUsize,
    joined: AtomicUsize,
    failed_joins: AtomicUsize,
    dropped: AtomicUsize,
    go_join: AtomicBool,
    go_close: AtomicBool,
    errors: ErrorLog,
}

struct ConnectHandler {
    shared: Arc<ConnectShared>,
    /// Open connections, and how many join replies each has had.
    replies: HashMap<usize, usize>,
    k: usize,
    joins_sent: bool,
    closing: bool,
}

impl Handler for ConnectHandler {
    fn open(&mut self, ws: &mut Ws) {
        self.replies.insert(ws.tag, 0);
        self.shared.opened.fetch_add(1, Relaxed);
    }

    fn message(&mut self, ws: &mut Ws, data: &[u8]) {
        let Some(head) = parse_head(data) else { return };
        if head.event != b"phx_reply" || !head.topic.starts_with(b"bench:") {
            return;
        }
        *self.replies.entry(ws.tag).or_default() += 1;
        if reply_ok(&head) {
            self.shared.joined.fetch_add(1, Relaxed);
        } else {
            self.shared.failed_joins.fetch_add(1, Relaxed);
            self.shared.errors.add(format!("join refused: {}", String::from_utf8_lossy(data)));
        }
    }

    fn closed(&mut self, tag: usize, error: Option<&str>) {
        match self.replies.remove(&tag) {
            None => {
                self.shared.failed_conns.fetch_add(1, Relaxed);
                self.shared.errors.add(format!("connection {tag}: {}", error.unwrap_or("closed")));
            }
            Some(replies) if !self.closing => {
                self.shared.dropped.fetch_add(1, Relaxed);
                self.shared.errors.add(format!("connection {tag} dropped: {}", error.unwrap_or("closed")));
                if self.joins_sent {
                    // Joins that will never be answered count as failed.
                    self.shared.failed_joins.fetch_add(self.k.saturating_sub(replies), Relaxed);
                }
            }
            Some(_) => {}
        }
    }
}

fn connect_worker(
    url: Arc<WsUrl>,
    tags: Vec<usize>,
    k: usize,
    max_pending: usize,
    shared: Arc<ConnectShared>,
    deadline: Instant,
) -> Res<()> {
    let mut client = Client::new(url, max_pending)?;
    for &tag in &tags {
        client.add(tag);
    }
    let mut handler =
        ConnectHandler { shared: shared.clone(), replies: HashMap::new(), k, joins_sent: false, closing: false };
    let mut joins_sent = false;
    let mut frame = Vec::new();
    while Instant::now() < deadline {
        client.poll(Some(Duration::from_millis(5)), &mut handler)?;
        if !joins_sent && shared.go_join.load(Relaxed) {
            joins_sent = true;
            let mut sent = 0;
            for ws in client.open_conns() {
                for j in 0..k {
                    frame.clear();
                    let topic = ws.tag * k + j;
                    write!(frame, r#"["{r}","{r}","bench:{topic}","phx_join",{{}}]"#, r = j + 1)?;
                    ws.queue_text(&frame);
                    sent += 1;
                }
                ws.flush();
            }
            shared.joins_sent.fetch_add(sent, Relaxed);
            shared.workers_sent.fetch_add(1, Relaxed);
            handler.joins_sent = true;
        }
        if shared.go_close.load(Relaxed) {
            break;
        }
    }
    handler.closing = true;
    client.close_all(Duration::from_secs(5), &mut handler);
    Ok(())
}

fn connect(args: &Args) -> Res<()> {
    let url = Arc::new(WsUrl::parse(&args.get("url", DEFAULT_URL.to_owned())?)?);
    let n: usize = args.get("n", 100)?;
    let k: usize = args.get("k", 1)?;
    let threads: usize = args.get::<usize>("threads", 2)?.clamp(1, n.max(1));
    let hold = args.secs("hold", 2.0)?;
    let max_pending: usize = args.get("inflight", 128)?;
    let timeout = args.secs("timeout", 120.0)?;
    let settle = args.secs("settle", 1.0)?;
    let probe = Probe::new(args.opt("server-pid")?)?;
    args.finish()?;

    let shared = Arc::new(ConnectShared::default());
    let before = probe.as_ref().map(Probe::memory);
    let deadline = Instant::now() + timeout + hold + Duration::from_secs(30);
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let tags: Vec<usize> = (t..n).step_by(threads).collect();
            let (url, shared) = (url.clone(), shared.clone());
            thread::spawn(move || connect_worker(url, tags, k, max_pending, shared, deadline))
        })
        .collect();

    let all_open = wait_until(timeout, || shared.opened.load(Relaxed) + shared.failed_conns.load(Relaxed) >= n);
    let connect_time = started.elapsed();
    thread::sleep(settle);
    let after_connect = probe.as_ref().map(Probe::memory);

    let join_start = Instant::now();
    shared.go_join.store(true, Relaxed);
    let opened = shared.opened.load(Relaxed);
    let all_joined = wait_until(timeout, || {
        shared.workers_sent.load(Relaxed) >= threads
            && shared.joined.load(Relaxed) + shared.failed_joins.load(Relaxed) >= shared.joins_sent.load(Relaxed)
    });
    let join_time = join_start.elapsed();
    let total_time = started.elapsed();
    thread::sleep(settle);
    let after_join = probe.as_ref().map(Probe::memory);

    thread::sleep(hold);
    shared.go_close.store(true, Relaxed);
    for worker in workers {
        worker.join().map_err(|_| "a worker panicked")??;
    }
    thread::sleep(settle);
    let after_close = probe.as_ref().map(Probe::memory);

    let joined = shared.joined.load(Relaxed);
    let channels = (n * k).max(1) as f64;
    let mut summary = vec![
        format!("connect: {n} connections x {k} channels on {url}", url = args_url(&url)),
        format!(
            "  opened {opened}/{n} in {:.3} s ({:.0} connections/s){}",
            connect_time.as_secs_f64(),
            opened as f64 / connect_time.as_secs_f64(),
            if all_open { "" } else { " (TIMED OUT)" }
        ),
        format!(
            "  joined {joined}/{} channels in {:.3} s ({:.0} joins/s){}; total {:.3} s",
            n * k,
            join_time.as_secs_f64(),
            joined as f64 / join_time.as_secs_f64(),
            if all_joined { "" } else { " (TIMED OUT)" },
            total_time.as_secs_f64()
        ),
        format!(
            "  failures: {} connections, {} joins, {} dropped while open",
            shared.failed_conns.load(Relaxed),
            shared.failed_joins.load(Relaxed),
            shared.dropped.load(Relaxed)
        ),
    ];
    for e in shared.errors.samples() {
        summary.push(format!("  error: {e}"));
    }
    let mut line = json!({
        "mode": "connect",
        "connections": n,
        "channels_per_connection": k,
        "opened": opened,
        "joined": joined,
        "failed_connections": shared.failed_conns.load(Relaxed),
        "failed_joins": shared.failed_joins.load(Relaxed),
        "dropped": shared.dropped.load(Relaxed),
        "connect_s": round(connect_time.as_secs_f64(), 4),
        "join_s": round(join_time.as_secs_f64(), 4),
        "total_s": round(total_time.as_secs_f64(), 4),
        "connections_per_s": round(opened as f64 / connect_time.as_secs_f64(), 1),
        "joins_per_s": round(joined as f64 / join_time.as_secs_f64(), 1),
    });
    if probe.as_ref().is_some_and(|p| !p.alive()) {
        summary.push("  THE SERVER PROCESS IS GONE (it exited or crashed during the run)".into());
        line["server_gone"] = json!(true);
    }
    if let (Some((rss0, th0)), Some((rss1, th1)), Some((rss2, th2)), Some((rss3, th3))) =
        (before, after_connect, after_join, after_close)
    {
        let per_conn = rss1.saturating_sub(rss0) as f64 / n.max(1) as f64;
        let per_channel_marginal = rss2.saturating_sub(rss1) as f64 / channels;
        let per_channel_all_in = rss2.saturating_sub(rss0) as f64 / channels;
        let per_conn_all_in = rss2.saturating_sub(rss0) as f64 / n.max(1) as f64;
        summary.push(format!(
            "  server RSS: {rss0} KiB before, {rss1} KiB with the connections, {rss2} KiB with the channels, {rss3} KiB after closing"
        ));
        summary.push(format!("  server threads: {th0} before, {th1} connected, {th2} joined, {th3} after closing"));
        summary.push(format!(
            "  per connection (no channel): {per_conn:.2} KiB; per channel: {per_channel_marginal:.2} KiB marginal, \
             {per_channel_all_in:.2} KiB all-in (connection share included); per connection with {k} channels: \
             {per_conn_all_in:.2} KiB"
        ));
        line["server"] = json!({
            "rss_kib": {"before": rss0, "connected": rss1, "joined": rss2, "closed": rss3},
            "threads": {"before": th0, "connected": th1, "joined": th2, "closed": th3},
            "rss_per_connection_kib": round(per_conn, 2),
            "rss_per_channel_marginal_kib": round(per_channel_marginal, 2),
            "rss_per_channel_all_in_kib": round(per_channel_all_in, 2),
            "rss_per_connection_with_channels_kib": round(per_conn_all_in, 2),
            "threads_per_channel": round(th2.saturating_sub(th1) as f64 / channels, 3),
        });
    }
    emit(&summary, line);
    Ok(())
}

fn args_url(url: &WsUrl) -> String {
    format!("ws://{}{}", url.host, url.path)
}

// ---------------------------------------------------------------------------------------
// echo and raw-echo: closed-loop round trips
// ---------------------------------------------------------------------------------------

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
    expected: Vec<u8>,
    sent_at: Instant,
}

struct EchoHandler {
    raw: bool,
    stride: usize,
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
        conn.expected.clear();
        let _ = write!(conn.expected, "{}", conn.next_ref);
        self.frame.clear();
        let _ = write!(self.frame, r#"["1","{}","{}","echo",{}]"#, conn.next_ref, conn.topic, self.payload);
        conn.sent_at = Instant::now();
        ws.send_text(&self.frame);
    }
}

impl Handler for EchoHandler {
    fn open(&mut self, ws: &mut Ws) {
        if self.raw {
            self.conns[ws.tag / self.stride].started = true;
            self.shared.ready.fetch_add(1, Relaxed);
            self.send_next(ws);
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
                conn.started = true;
                self.shared.ready.fetch_add(1, Relaxed);
                self.send_next(ws);
            } else {
                self.shared.errors.add(format!("join failed: {}", String::from_utf8_lossy(data)));
            }
            return;
        }
        if head.msg_ref != Some(&conn.expected[..]) || !(self.raw || reply_ok(&head)) {
            self.mismatched += 1;
            return;
        }
        if self.shared.record.load(Relaxed) {
            self.hist.saturating_record(now.duration_since(conn.sent_at).as_nanos() as u64);
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

fn echo_worker(
    url: Arc<WsUrl>,
    raw: bool,
    tags: Vec<usize>,
    stride: usize,
    payload: String,
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
            expected: Vec::new(),
            sent_at: Instant::now(),
        })
        .collect();
    for &tag in &tags {
        client.add(tag);
    }
    let mut handler = EchoHandler {
        raw,
        stride,
        conns,
        payload,
        frame: Vec::new(),
        hist: histogram(),
        completed: 0,
        mismatched: 0,
        shared: shared.clone(),
    };
    while !shared.stop.load(Relaxed) && Instant::now() < deadline && client.busy() {
        client.poll(Some(Duration::from_millis(10)), &mut handler)?;
    }
    client.close_all(Duration::from_secs(2), &mut handler);
    Ok(EchoResult { hist: handler.hist, completed: handler.completed, mismatched: handler.mismatched })
}

fn echo(args: &Args, raw: bool) -> Res<()> {
    let mode = if raw { "raw-echo" } else { "echo" };
    let default_url = if raw { "ws://127.0.0.1:4900/".to_owned() } else { DEFAULT_URL.to_owned() };
    let url = Arc::new(WsUrl::parse(&args.get("url", default_url)?)?);
    let c: usize = args.get("c", 1)?;
    let duration = args.secs("duration", 10.0)?;
    let warmup = args.secs("warmup", 1.0)?;
    let payload_bytes: usize = args.get("payload-bytes", 32)?;
    let threads: usize = args.get::<usize>("threads", 1)?.clamp(1, c.max(1));
    let timeout = args.secs("timeout", 30.0)?;
    let probe = Probe::new(args.opt("server-pid")?)?;
    args.finish()?;

    let shared = Arc::new(EchoShared::default());
    let payload = echo_payload(payload_bytes);
    let deadline = Instant::now() + timeout + warmup + duration + Duration::from_secs(5);
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let tags: Vec<usize> = (t..c).step_by(threads).collect();
            let (url, shared, payload) = (url.clone(), shared.clone(), payload.clone());
            thread::spawn(move || echo_worker(url, raw, tags, threads, payload, shared, deadline))
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
            "{mode}: {c} connections, closed loop, {}-byte payload, {:.1} s window after {:.1} s warm-up, on {}",
            payload.len(),
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
        "payload_bytes": payload.len(),
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

// ---------------------------------------------------------------------------------------
// raw-server: the floor for echo, plain tungstenite
// ---------------------------------------------------------------------------------------

fn raw_server(args: &Args) -> Res<()> {
    let port: u16 = args.get("port", 4900)?;
    let max = args.secs("max-seconds", 900.0)?;
    args.finish()?;
    let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
    println!(
        "raw echo server listening on {} (pid {}, exits after {:?})",
        listener.local_addr()?,
        std::process::id(),
        max
    );
    thread::spawn(move || {
        thread::sleep(max);
        println!("raw echo server: --max-seconds reached, exiting");
        std::process::exit(0);
    });
    let served = Arc::new(AtomicU64::new(0));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let served = served.clone();
        thread::spawn(move || {
            let _ = stream.set_nodelay(true);
            let Ok(mut ws) = tungstenite::accept(stream) else { return };
            loop {
                match ws.read() {
                    Ok(msg @ (tungstenite::Message::Text(_) | tungstenite::Message::Binary(_))) => {
                        if ws.send(msg).is_err() {
                            return;
                        }
                        served.fetch_add(1, Relaxed);
                    }
                    Ok(_) => {
                        if ws.flush().is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                }
            }
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// broadcast: one publisher, N subscribers of one topic
// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct BroadcastShared {
    opened: AtomicUsize,
    joined: AtomicUsize,
    failed: AtomicUsize,
    delivered: AtomicU64,
    last_delivery_ns: AtomicU64,
    frame_bytes: AtomicU64,
    stop: AtomicBool,
    errors: ErrorLog,
}

struct Subscriber {
    joined: bool,
    distinct: u64,
    duplicates: u64,
    reordered: u64,
    max_seq: Option<u64>,
}

struct SubscriberHandler {
    topic: Vec<u8>,
    join: Vec<u8>,
    count: u64,
    stride: usize,
    subs: Vec<Subscriber>,
    /// Bit `seq` of subscriber `i` at `seen[i * words + seq / 64]`.
    seen: Vec<u64>,
    words: usize,
    hist: Histogram<u64>,
    /// Per broadcast: the largest latency seen here, and how many subscribers got it.
    last: Vec<u64>,
    got: Vec<u32>,
    delivered: u64,
    unexpected: u64,
    last_delivery_ns: u64,
    shared: Arc<BroadcastShared>,
}

impl Handler for SubscriberHandler {
    fn open(&mut self, ws: &mut Ws) {
        self.shared.opened.fetch_add(1, Relaxed);
        ws.send_text(&self.join);
    }

    fn message(&mut self, ws: &mut Ws, data: &[u8]) {
        let now = unix_ns();
        let Some(head) = parse_head(data) else {
            self.unexpected += 1;
            return;
        };
        if *head.topic != self.topic[..] {
            return; // heartbeat replies
        }
        let local = ws.tag / self.stride;
        if head.event == b"broadcast" {
            let (Some(seq), Some(t)) =
                (number_after(head.payload, br#""seq":"#), number_after(head.payload, br#""t":"#))
            else {
                self.unexpected += 1;
                return;
            };
            if seq >= self.count {
                self.unexpected += 1;
                return;
            }
            if self.delivered == 0 {
                // The payload plus the 2 or 4-byte header of a server frame.
                let header = if data.len() < 126 { 2 } else { 4 };
                self.shared.frame_bytes.store((data.len() + header) as u64, Relaxed);
            }
            let latency = now.saturating_sub(t);
            self.hist.saturating_record(latency.max(1));
            self.delivered += 1;
            self.last_delivery_ns = self.last_delivery_ns.max(now);
            let sub = &mut self.subs[local];
            let word = &mut self.seen[local * self.words + (seq / 64) as usize];
            let bit = 1u64 << (seq % 64);
            if *word & bit != 0 {
                sub.duplicates += 1;
                return;
            }
            *word |= bit;
            sub.distinct += 1;
            if sub.max_seq.is_some_and(|m| seq < m) {
                sub.reordered += 1;
            }
            sub.max_seq = Some(sub.max_seq.map_or(seq, |m| m.max(seq)));
            let s = seq as usize;
            self.last[s] = self.last[s].max(latency);
            self.got[s] += 1;
        } else if head.event == b"phx_reply" && !self.subs[local].joined {
            if reply_ok(&head) {
                self.subs[local].joined = true;
                self.shared.joined.fetch_add(1, Relaxed);
            } else {
                self.shared.failed.fetch_add(1, Relaxed);
                self.shared.errors.add(format!("join refused: {}", String::from_utf8_lossy(data)));
            }
        }
    }

    fn closed(&mut self, tag: usize, error: Option<&str>) {
        if !self.subs[tag / self.stride].joined {
            self.shared.failed.fetch_add(1, Relaxed);
        }
        if let Some(error) = error {
            self.shared.errors.add(format!("subscriber {tag}: {error}"));
        }
    }
}

struct SubscriberResult {
    hist: Histogram<u64>,
    last: Vec<u64>,
    got: Vec<u32>,
    subs: Vec<Subscriber>,
    unexpected: u64,
}

#[allow(clippy::too_many_arguments)]
fn subscriber_worker(
    url: Arc<WsUrl>,
    topic: String,
    tags: Vec<usize>,
    stride: usize,
    count: u64,
    max_pending: usize,
    shared: Arc<BroadcastShared>,
    deadline: Instant,
) -> Res<SubscriberResult> {
    let mut client = Client::new(url, max_pending)?;
    for &tag in &tags {
        client.add(tag);
    }
    let words = (count as usize).div_ceil(64).max(1);
    let mut handler = SubscriberHandler {
        join: format!(r#"["1","1","{topic}","phx_join",{{}}]"#).into_bytes(),
        topic: topic.into_bytes(),
        count,
        stride,
        subs: tags
            .iter()
            .map(|_| Subscriber { joined: false, distinct: 0, duplicates: 0, reordered: 0, max_seq: None })
            .collect(),
        seen: vec![0; words * tags.len()],
        words,
        hist: histogram(),
        last: vec![0; count as usize],
        got: vec![0; count as usize],
        delivered: 0,
        unexpected: 0,
        last_delivery_ns: 0,
        shared: shared.clone(),
    };
    let mut reported = 0;
    while !shared.stop.load(Relaxed) && Instant::now() < deadline {
        client.poll(Some(Duration::from_millis(5)), &mut handler)?;
        if handler.delivered != reported {
            shared.delivered.fetch_add(handler.delivered - reported, Relaxed);
            shared.last_delivery_ns.fetch_max(handler.last_delivery_ns, Relaxed);
            reported = handler.delivered;
        }
    }
    client.close_all(Duration::from_secs(5), &mut handler);
    Ok(SubscriberResult {
        hist: handler.hist,
        last: handler.last,
        got: handler.got,
        subs: handler.subs,
        unexpected: handler.unexpected,
    })
}

/// The publisher's connection: joined, replies counted, its own copies counted.
#[derive(Default)]
struct Publisher {
    open: bool,
    joined: bool,
    replies_ok: u64,
    replies_error: u64,
    own_copies: u64,
    error: Option<String>,
}

impl Handler for Publisher {
    fn open(&mut self, _ws: &mut Ws) {
        self.open = true;
    }

    fn message(&mut self, _ws: &mut Ws, data: &[u8]) {
        let Some(head) = parse_head(data) else { return };
        if head.event == b"broadcast" {
            self.own_copies += 1;
        } else if head.event == b"phx_reply" {
            if head.msg_ref == Some(b"1") {
                self.joined = reply_ok(&head);
                if !self.joined {
                    self.error = Some(format!("publisher join refused: {}", String::from_utf8_lossy(data)));
                }
            } else if head.topic == b"phoenix" {
                // a heartbeat reply
            } else if reply_ok(&head) {
                self.replies_ok += 1;
            } else {
                self.replies_error += 1;
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

fn broadcast_payload(seq: u64, t: u64, bytes: usize) -> String {
    let bare = format!(r#"{{"seq":{seq},"t":{t},"pad":""}}"#);
    format!(r#"{{"seq":{seq},"t":{t},"pad":"{}"}}"#, "x".repeat(bytes.saturating_sub(bare.len())))
}

fn broadcast(args: &Args) -> Res<()> {
    let url = Arc::new(WsUrl::parse(&args.get("url", DEFAULT_URL.to_owned())?)?);
    let n: usize = args.get("n", 1000)?;
    let count: u64 = args.get("count", 100)?;
    let rate: f64 = args.get("rate", 10.0)?;
    let payload_bytes: usize = args.get("payload-bytes", 100)?;
    let threads: usize = args.get::<usize>("threads", 2)?.clamp(1, n.max(1));
    let drain = args.secs("drain", 10.0)?;
    let timeout = args.secs("timeout", 120.0)?;
    let idle_sample = args.secs("idle-sample", 1.0)?;
    let event: String = args.get("event", "broadcast".to_owned())?;
    let topic: String = args.get("topic", "bench:bcast".to_owned())?;
    let max_pending: usize = args.get("inflight", 128)?;
    let probe = Probe::new(args.opt("server-pid")?)?;
    args.finish()?;
    if rate <= 0.0 || count == 0 {
        return Err("--rate and --count must be positive".into());
    }
    if event != "broadcast" && event != "broadcast_from" {
        return Err("--event must be broadcast or broadcast_from".into());
    }

    let shared = Arc::new(BroadcastShared::default());
    let send_time = Duration::from_secs_f64(count as f64 / rate);
    let deadline = Instant::now() + timeout * 2 + idle_sample + send_time + drain + Duration::from_secs(10);
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let tags: Vec<usize> = (t..n).step_by(threads).collect();
            let (url, shared, topic) = (url.clone(), shared.clone(), topic.clone());
            thread::spawn(move || subscriber_worker(url, topic, tags, threads, count, max_pending, shared, deadline))
        })
        .collect();
    let started = Instant::now();
    let all_joined = wait_until(timeout, || shared.joined.load(Relaxed) + shared.failed.load(Relaxed) >= n);
    let subscribe_time = started.elapsed();
    let joined = shared.joined.load(Relaxed);

    // The publisher: its own connection, on this thread.
    let mut client = Client::new(url.clone(), 1)?;
    let mut publisher = Publisher::default();
    client.add(0);
    let publisher_deadline = Instant::now() + timeout;
    let mut join_sent = false;
    while !publisher.joined && publisher.error.is_none() && Instant::now() < publisher_deadline {
        client.poll(Some(Duration::from_millis(10)), &mut publisher)?;
        if publisher.open && !join_sent {
            join_sent = true;
            let join = format!(r#"["1","1","{topic}","phx_join",{{}}]"#);
            client.open_conns().for_each(|ws| ws.send_text(join.as_bytes()));
        }
    }
    if !publisher.joined {
        shared.stop.store(true, Relaxed);
        return Err(publisher.error.unwrap_or_else(|| "the publisher could not join".into()).into());
    }

    // Idle server CPU, for reference.
    let poll_for = |client: &mut Client, publisher: &mut Publisher, d: Duration| -> Res<()> {
        let until = Instant::now() + d;
        loop {
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            client.poll(Some(until - now), publisher)?;
        }
    };
    let idle = match &probe {
        Some(probe) if !idle_sample.is_zero() => {
            let a = probe.cpu();
            let t = Instant::now();
            poll_for(&mut client, &mut publisher, idle_sample)?;
            let b = probe.cpu();
            Some(cpu_between(a, b).0 as f64 / t.elapsed().as_secs_f64())
        }
        _ => None,
    };

    let ticks = clock_ticks();
    let cpu0 = probe.as_ref().map(Probe::cpu);
    let m0 = machine_sample(ticks);
    let t0 = Instant::now();
    let first_send_ns = unix_ns();
    let mut frame = String::new();
    for seq in 0..count {
        let due = t0 + Duration::from_secs_f64(seq as f64 / rate);
        loop {
            let now = Instant::now();
            if now >= due {
                break;
            }
            client.poll(Some(due - now), &mut publisher)?;
        }
        let payload = broadcast_payload(seq, unix_ns(), payload_bytes);
        frame.clear();
        let _ = write!(frame, r#"["1","{}","{topic}","{event}",{payload}]"#, seq + 2);
        let mut sent = false;
        for ws in client.open_conns() {
            ws.send_text(frame.as_bytes());
            sent = true;
        }
        if !sent {
            break;
        }
    }
    let send_secs = t0.elapsed().as_secs_f64();
    let expected = joined as u64 * count;
    let drain_deadline = Instant::now() + drain;
    while shared.delivered.load(Relaxed) < expected && Instant::now() < drain_deadline {
        client.poll(Some(Duration::from_millis(1)), &mut publisher)?;
    }
    let m1 = machine_sample(ticks);
    let cpu1 = probe.as_ref().map(Probe::cpu);
    let window_secs = t0.elapsed().as_secs_f64();
    // Let the publisher collect its last replies.
    let until = Instant::now() + Duration::from_millis(200);
    while publisher.replies_ok + publisher.replies_error < count && Instant::now() < until {
        client.poll(Some(Duration::from_millis(5)), &mut publisher)?;
    }
    shared.stop.store(true, Relaxed);
    client.close_all(Duration::from_secs(2), &mut publisher);

    let mut hist = histogram();
    let mut last = vec![0u64; count as usize];
    let mut got = vec![0u64; count as usize];
    let (mut loss, mut duplicates, mut reordered, mut unexpected, mut subs_seen) = (0u64, 0u64, 0u64, 0u64, 0usize);
    for worker in workers {
        let result = worker.join().map_err(|_| "a worker panicked")??;
        hist.add(&result.hist)?;
        for (i, (l, g)) in result.last.iter().zip(&result.got).enumerate() {
            last[i] = last[i].max(*l);
            got[i] += u64::from(*g);
        }
        for sub in result.subs.iter().filter(|s| s.joined) {
            subs_seen += 1;
            loss += count - sub.distinct;
            duplicates += sub.duplicates;
            reordered += sub.reordered;
        }
        unexpected += result.unexpected;
    }
    let mut last_hist = histogram();
    let mut incomplete = 0;
    for (l, g) in last.iter().zip(&got) {
        if *g == subs_seen as u64 && subs_seen > 0 {
            last_hist.saturating_record((*l).max(1));
        } else {
            incomplete += 1;
        }
    }
    let delivered = shared.delivered.load(Relaxed);
    let last_delivery_ns = shared.last_delivery_ns.load(Relaxed);
    let delivery_secs = (last_delivery_ns.saturating_sub(first_send_ns)) as f64 / 1e9;
    let own = if event == "broadcast" { publisher.own_copies } else { 0 };
    // What the server wrote: one frame per subscriber, and the publisher's own copy
    // when it is a subscriber of the topic too (`broadcast`).
    let server_deliveries = delivered + own;
    let mut summary = vec![
        format!(
            "broadcast: {n} subscribers of {topic}, {count} x {event} at {rate}/s, payload ~{payload_bytes} B \
             (delivered frame {} B), on {}",
            shared.frame_bytes.load(Relaxed),
            args_url(&url)
        ),
        format!(
            "  subscribed {joined}/{n} in {:.3} s{}; publisher sent {count} in {send_secs:.3} s, replies ok {} error {}",
            subscribe_time.as_secs_f64(),
            if all_joined { "" } else { " (TIMED OUT)" },
            publisher.replies_ok,
            publisher.replies_error
        ),
        format!(
            "  delivered {delivered}/{expected} ({:.0} deliveries/s over {delivery_secs:.3} s); publisher's own copies {}",
            delivered as f64 / delivery_secs.max(1e-9),
            publisher.own_copies
        ),
        format!(
            "  loss {loss}, duplicates {duplicates}, reordered {reordered}, unexpected frames {unexpected}, \
             broadcasts not seen by every subscriber {incomplete}"
        ),
        format!("  {}", percentile_line("delivery latency", &hist)),
        format!("  {}", percentile_line("last-subscriber latency", &last_hist)),
    ];
    let mut line = json!({
        "mode": "broadcast",
        "subscribers": n,
        "joined": joined,
        "count": count,
        "rate": rate,
        "event": event,
        "payload_bytes": payload_bytes,
        "frame_bytes": shared.frame_bytes.load(Relaxed),
        "subscribe_s": round(subscribe_time.as_secs_f64(), 3),
        "send_s": round(send_secs, 3),
        "delivered": delivered,
        "expected": expected,
        "publisher_own_copies": publisher.own_copies,
        "deliveries_per_s": round(delivered as f64 / delivery_secs.max(1e-9), 1),
        "loss": loss,
        "duplicates": duplicates,
        "reordered": reordered,
        "unexpected": unexpected,
        "incomplete_broadcasts": incomplete,
        "latency": percentiles(&hist),
        "last_subscriber_latency": percentiles(&last_hist),
        "publisher_replies_ok": publisher.replies_ok,
        "errors": shared.errors.count(),
    });
    if let (Some(a), Some(b)) = (cpu0, cpu1) {
        let (ns, source, stat_ns) = cpu_between(a, b);
        let per = ns as f64 / server_deliveries.max(1) as f64;
        summary.push(format!(
            "  server CPU: {:.3} s ({source}; utime+stime says {:.2} s) over {window_secs:.2} s = {:.2} µs per delivery \
             ({server_deliveries} frames written), {:.0}% of a core",
            ns as f64 / 1e9,
            stat_ns as f64 / 1e9,
            per / 1000.0,
            ns as f64 / 1e9 / window_secs * 100.0
        ));
        line["server_cpu"] = json!({
            "cpu_s": round(ns as f64 / 1e9, 4),
            "source": source,
            "stat_cpu_s": round(stat_ns as f64 / 1e9, 3),
            "window_s": round(window_secs, 3),
            "server_deliveries": server_deliveries,
            "per_delivery_us": round(per / 1000.0, 3),
            "core_share": round(ns as f64 / 1e9 / window_secs, 3),
        });
        if let Some(idle) = idle {
            summary.push(format!("  server CPU while idle: {:.2} ms per second", idle / 1e6));
            line["server_cpu"]["idle_ms_per_s"] = json!(round(idle / 1e6, 3));
        }
    }
    let server_ns = cpu0.zip(cpu1).map_or(0, |(a, b)| cpu_between(a, b).0);
    let (value, text) = machine_between(&m0, &m1, server_ns, ticks);
    summary.push(text);
    line["machine"] = value;
    if let Some(error) = &publisher.error {
        summary.push(format!("  publisher error: {error}"));
    }
    for e in shared.errors.samples() {
        summary.push(format!("  error: {e}"));
    }
    emit(&summary, line);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// tcp-floor: the CPU cost of one loopback TCP write of a ready frame
// ---------------------------------------------------------------------------------------

fn tcp_floor(args: &Args) -> Res<()> {
    let n: usize = args.get("n", 1000)?;
    let count: usize = args.get("count", 200)?;
    let frame_bytes: usize = args.get("frame-bytes", 142)?;
    let batch: usize = args.get::<usize>("batch", 8)?.max(1);
    let readers: usize = args.get::<usize>("readers", 1)?.clamp(1, n.max(1));
    let writer_cpu: Option<usize> = args.opt("writer-cpu")?;
    let reader_cpu: Option<usize> = args.opt("reader-cpu")?;
    // Rounds per second; 0 writes them back to back. A paced round is what a broadcast
    // sent alone costs: the readers sleep between rounds and must be woken again.
    let rate: f64 = args.get("rate", 0.0)?;
    let timeout = args.secs("timeout", 120.0)?;
    args.finish()?;
    if !rate.is_finite() || rate < 0.0 {
        return Err("--rate must be a number of rounds per second, 0 for back to back".into());
    }
    if !(2..=65535).contains(&frame_bytes) {
        return Err("--frame-bytes must be between 2 and 65535".into());
    }

    // A server text frame of exactly `frame_bytes` bytes.
    let mut frame = Vec::with_capacity(frame_bytes);
    let payload = if frame_bytes - 2 < 126 { frame_bytes - 2 } else { frame_bytes - 4 };
    frame.push(0x81);
    if payload < 126 {
        frame.push(payload as u8);
    } else {
        frame.push(126);
        frame.extend_from_slice(&(payload as u16).to_be_bytes());
    }
    frame.resize(frame_bytes, b'x');

    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let mut writers = Vec::with_capacity(n);
    let mut reader_sides: Vec<Vec<std::net::TcpStream>> = (0..readers).map(|_| Vec::new()).collect();
    for i in 0..n {
        let client = std::net::TcpStream::connect(addr)?;
        let (server, _) = listener.accept()?;
        server.set_nodelay(true)?;
        client.set_nonblocking(true)?;
        writers.push(server);
        reader_sides[i % readers].push(client);
    }
    let total_bytes = (n * count * frame_bytes) as u64;
    let received = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + timeout;
    let reader_threads: Vec<_> = reader_sides
        .into_iter()
        .map(|socks| {
            let (received, stop) = (received.clone(), stop.clone());
            thread::spawn(move || -> io::Result<()> {
                pin_thread(reader_cpu);
                let mut poll = Poll::new()?;
                let mut socks: Vec<TcpStream> = socks.into_iter().map(TcpStream::from_std).collect();
                for (i, s) in socks.iter_mut().enumerate() {
                    poll.registry().register(s, Token(i), Interest::READABLE)?;
                }
                let mut events = Events::with_capacity(1024);
                let mut buf = vec![0u8; 256 * 1024];
                while !stop.load(Relaxed) && Instant::now() < deadline {
                    poll.poll(&mut events, Some(Duration::from_millis(20)))?;
                    for event in &events {
                        let s = &mut socks[event.token().0];
                        loop {
                            match s.read(&mut buf) {
                                Ok(0) => break,
                                Ok(got) => {
                                    received.fetch_add(got as u64, Relaxed);
                                }
                                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                                Err(e) => return Err(e),
                            }
                        }
                    }
                }
                Ok(())
            })
        })
        .collect();

    // Pass 1: one write per frame. Pass 2: writev with `batch` frames per call.
    let (tx, rx) = std::sync::mpsc::channel();
    let writer = {
        let received = received.clone();
        let frame = frame.clone();
        thread::spawn(move || -> io::Result<()> {
            pin_thread(writer_cpu);
            let mut results = Vec::new();
            for pass in 0..2 {
                let target = total_bytes * (pass + 1);
                let per_call = if pass == 0 { 1 } else { batch };
                let calls = count.div_ceil(per_call);
                let slices: Vec<IoSlice<'_>> = (0..per_call).map(|_| IoSlice::new(&frame)).collect();
                let cpu0 = thread_cpu_ns();
                let t0 = Instant::now();
                let mut frames = 0u64;
                let mut syscalls = 0u64;
                for round in 0..calls {
                    if rate > 0.0 {
                        let due = t0 + Duration::from_secs_f64(round as f64 / rate);
                        thread::sleep(due.saturating_duration_since(Instant::now()));
                    }
                    // The last writev round may carry fewer frames, to write exactly `count`.
                    let k = per_call.min(count - round * per_call);
                    for w in writers.iter_mut() {
                        if per_call == 1 {
                            w.write_all(&frame)?;
                        } else {
                            let mut done = w.write_vectored(&slices[..k])?;
                            syscalls += 1;
                            // A partial writev is finished with plain writes (rare).
                            while done < k * frame.len() {
                                let at = done % frame.len();
                                done += w.write(&frame[at..])?;
                                syscalls += 1;
                            }
                            frames += k as u64;
                            continue;
                        }
                        syscalls += 1;
                        frames += 1;
                    }
                }
                let cpu = thread_cpu_ns() - cpu0;
                let wall = t0.elapsed();
                results.push((per_call, frames, syscalls, cpu, wall));
                // Let the readers catch up before the next pass.
                while received.load(Relaxed) < target && Instant::now() < deadline {
                    thread::sleep(Duration::from_millis(1));
                }
            }
            let _ = tx.send(results);
            Ok(())
        })
    };
    let ticks = clock_ticks();
    let m0 = machine_sample(ticks);
    writer.join().map_err(|_| "the writer panicked")??;
    let m1 = machine_sample(ticks);
    stop.store(true, Relaxed);
    for r in reader_threads {
        r.join().map_err(|_| "a reader panicked")??;
    }
    let results = rx.recv()?;
    let received = received.load(Relaxed);
    let mut summary = vec![format!(
        "tcp-floor: {n} loopback socket pairs, {count} frames of {frame_bytes} B to each ({} frames), {readers} reader thread(s), {}; received {received}/{} bytes",
        n * count,
        if rate > 0.0 { format!("{rate} rounds per second") } else { "rounds back to back".to_owned() },
        total_bytes * 2
    )];
    let mut line = json!({
        "mode": "tcp-floor",
        "pairs": n,
        "count": count,
        "frame_bytes": frame_bytes,
        "rate": rate,
        "received_bytes": received,
        "expected_bytes": total_bytes * 2,
    });
    for (per_call, frames, syscalls, cpu, wall) in results {
        let per_frame = cpu as f64 / frames.max(1) as f64;
        let per_call_ns = cpu as f64 / syscalls.max(1) as f64;
        let name = if per_call == 1 { "write".to_owned() } else { format!("writev x{per_call}") };
        summary.push(format!(
            "  {name}: writer CPU {:.3} s for {frames} frames in {syscalls} calls ({:.3} s wall) = {:.3} µs per frame, {:.3} µs per call",
            cpu as f64 / 1e9,
            wall.as_secs_f64(),
            per_frame / 1000.0,
            per_call_ns / 1000.0
        ));
        let key = if per_call == 1 { "write".to_owned() } else { "writev".to_owned() };
        line[key] = json!({
            "frames_per_call": per_call,
            "frames": frames,
            "calls": syscalls,
            "cpu_s": round(cpu as f64 / 1e9, 4),
            "wall_s": round(wall.as_secs_f64(), 4),
            "per_frame_us": round(per_frame / 1000.0, 4),
            "per_call_us": round(per_call_ns / 1000.0, 4),
        });
    }
    let (value, text) = machine_between(&m0, &m1, 0, ticks);
    summary.push(text);
    line["machine"] = value;
    emit(&summary, line);
    Ok(())
}
