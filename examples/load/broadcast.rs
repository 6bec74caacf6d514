//! `broadcast`: one publisher and N subscribers of one topic; delivery rate, loss,
//! duplicates, order, latency to each and to the last subscriber, and the server's CPU
//! per delivery. With `--sub-urls` the subscribers are spread over several servers (the
//! nodes of a cluster) and `--other-pids` reports their CPU, and Redis's.

use crate::args::{Args, DEFAULT_URL, Deflate, WsUrl, args_url};
use crate::client::Client;
use crate::phoenix::{number_after, parse_head, reply_ok};
use crate::probe::{CpuSample, Probe, clock_ticks, cpu_between, machine_between, machine_sample};
use crate::report::{ErrorLog, emit, histogram, percentile_line, percentiles, round};
use crate::ws::{Handler, Ws};
use crate::{Res, wait_until};
use hdrhistogram::Histogram;
use serde_json::json;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
                // The frame as it came off the wire (compressed, if it was).
                self.shared.frame_bytes.store(ws.last_frame_bytes as u64, Relaxed);
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
    format!(r#"{{"seq":{seq},"t":{t},"pad":"{}"}}"#, prose(seq, bytes.saturating_sub(bare.len())))
}

/// `len` bytes of words drawn from a small vocabulary, different for each `seq`: text
/// that compresses about as chat messages do (a run of one letter would compress to
/// almost nothing and flatter compression).
fn prose(seq: u64, len: usize) -> String {
    const WORDS: [&str; 32] = [
        "the", "room", "user", "joined", "left", "message", "typing", "online", "away", "lobby", "hello", "world",
        "phoenix", "channel", "presence", "update", "status", "today", "meeting", "at", "noon", "see", "you", "there",
        "ok", "thanks", "great", "news", "about", "release", "build", "tests",
    ];
    let mut state = seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut text = String::with_capacity(len + 10);
    while text.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        text.push_str(WORDS[(state % WORDS.len() as u64) as usize]);
        text.push(' ');
    }
    text.truncate(len);
    text
}

pub(crate) fn broadcast(args: &Args) -> Res<()> {
    let deflate = Deflate::from_args(args)?;
    let with_deflate = |mut url: WsUrl| {
        url.deflate = deflate;
        Arc::new(url)
    };
    let url = with_deflate(WsUrl::parse(&args.get("url", DEFAULT_URL.to_owned())?)?);
    // Subscribers are dealt round-robin over these servers (the nodes of a cluster);
    // the publisher uses --url.
    let sub_urls: Vec<Arc<WsUrl>> = match args.opt::<String>("sub-urls")? {
        Some(list) => list.split(',').map(|u| WsUrl::parse(u).map(with_deflate)).collect::<Res<_>>()?,
        None => vec![url.clone()],
    };
    let others = args.opt::<String>("other-pids")?.map_or(Ok(Vec::new()), |list| other_probes(&list))?;
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
    // Subscriber i is on server i % servers, in worker (i / servers) % threads of it.
    let servers = sub_urls.len();
    let stride = servers * threads;
    let workers: Vec<_> = (0..stride)
        .map(|w| {
            let (server, t) = (w % servers, w / servers);
            let tags: Vec<usize> = (server + servers * t..n).step_by(stride).collect();
            let (url, shared, topic) = (sub_urls[server].clone(), shared.clone(), topic.clone());
            thread::spawn(move || subscriber_worker(url, topic, tags, stride, count, max_pending, shared, deadline))
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
    let others0: Vec<CpuSample> = others.iter().map(|(_, p)| p.cpu()).collect();
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
    let others1: Vec<CpuSample> = others.iter().map(|(_, p)| p.cpu()).collect();
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
             (delivered frame {} B), published on {}, subscribers on {}",
            shared.frame_bytes.load(Relaxed),
            args_url(&url),
            sub_urls.iter().map(|u| args_url(u)).collect::<Vec<_>>().join(" ")
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
    let mut others_json = serde_json::Map::new();
    let mut others_ns = 0;
    for (((name, _), a), b) in others.iter().zip(&others0).zip(&others1) {
        let ns = cpu_between(*a, *b).0;
        others_ns += ns;
        let per = ns as f64 / server_deliveries.max(1) as f64;
        summary.push(format!(
            "  {name} CPU: {:.3} s = {:.2} µs per delivery, {:.0}% of a core",
            ns as f64 / 1e9,
            per / 1000.0,
            ns as f64 / 1e9 / window_secs * 100.0
        ));
        others_json.insert(
            name.clone(),
            json!({
                "cpu_s": round(ns as f64 / 1e9, 4),
                "per_delivery_us": round(per / 1000.0, 3),
                "core_share": round(ns as f64 / 1e9 / window_secs, 3),
            }),
        );
    }
    if !others_json.is_empty() {
        line["other_cpu"] = others_json.into();
    }
    let server_ns = cpu0.zip(cpu1).map_or(0, |(a, b)| cpu_between(a, b).0) + others_ns;
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

/// `name=pid,name=pid`: more processes whose CPU the run reports (the other nodes of a
/// cluster, its Redis).
fn other_probes(list: &str) -> Res<Vec<(String, Probe)>> {
    list.split(',')
        .map(|item| {
            let (name, pid) = item.split_once('=').ok_or_else(|| format!("--other-pids: {item:?} is not name=pid"))?;
            let probe = Probe::new(Some(pid.parse()?))?.ok_or("a pid is needed")?;
            Ok((name.to_owned(), probe))
        })
        .collect()
}

fn unix_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}
