//! `connect`: N connections × K channels; how fast they open and join, and what each
//! costs the server in memory and threads.

use crate::args::{Args, DEFAULT_URL, WsUrl, args_url};
use crate::client::Client;
use crate::phoenix::parse_head;
use crate::probe::Probe;
use crate::report::{emit, round};
use crate::tally::JoinTally;
use crate::ws::{Handler, Ws};
use crate::{Res, wait_until};
use serde_json::json;
use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};

#[derive(Default)]
struct ConnectShared {
    tally: JoinTally,
    go_join: AtomicBool,
    go_close: AtomicBool,
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
        self.shared.tally.opened.fetch_add(1, Relaxed);
    }

    fn message(&mut self, ws: &mut Ws, data: &[u8]) {
        let Some(head) = parse_head(data) else { return };
        if head.event != b"phx_reply" || !head.topic.starts_with(b"bench:") {
            return;
        }
        *self.replies.entry(ws.tag).or_default() += 1;
        self.shared.tally.join_reply(&head, data);
    }

    fn closed(&mut self, tag: usize, error: Option<&str>) {
        match self.replies.remove(&tag) {
            None => self.shared.tally.never_opened(tag, error),
            Some(replies) if !self.closing => {
                self.shared.tally.dropped(tag, error);
                if self.joins_sent {
                    // Joins that will never be answered count as failed.
                    self.shared.tally.failed_joins.fetch_add(self.k.saturating_sub(replies), Relaxed);
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
            shared.tally.joins_sent.fetch_add(sent, Relaxed);
            shared.tally.workers_sent.fetch_add(1, Relaxed);
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

pub(crate) fn connect(args: &Args) -> Res<()> {
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

    let all_open =
        wait_until(timeout, || shared.tally.opened.load(Relaxed) + shared.tally.failed_conns.load(Relaxed) >= n);
    let connect_time = started.elapsed();
    thread::sleep(settle);
    let after_connect = probe.as_ref().map(Probe::memory);

    let join_start = Instant::now();
    shared.go_join.store(true, Relaxed);
    let opened = shared.tally.opened.load(Relaxed);
    let all_joined = wait_until(timeout, || {
        shared.tally.workers_sent.load(Relaxed) >= threads
            && shared.tally.joined.load(Relaxed) + shared.tally.failed_joins.load(Relaxed)
                >= shared.tally.joins_sent.load(Relaxed)
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

    let joined = shared.tally.joined.load(Relaxed);
    // Memory per channel counts the channels that joined: past the server's cap, joins are refused.
    let channels = joined.max(1) as f64;
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
            shared.tally.failed_conns.load(Relaxed),
            shared.tally.failed_joins.load(Relaxed),
            shared.tally.dropped.load(Relaxed)
        ),
    ];
    for e in shared.tally.errors.samples() {
        summary.push(format!("  error: {e}"));
    }
    let mut line = json!({
        "mode": "connect",
        "connections": n,
        "channels_per_connection": k,
        "opened": opened,
        "joined": joined,
        "failed_connections": shared.tally.failed_conns.load(Relaxed),
        "failed_joins": shared.tally.failed_joins.load(Relaxed),
        "dropped": shared.tally.dropped.load(Relaxed),
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
        let per_conn = rss1.saturating_sub(rss0) as f64 / opened.max(1) as f64;
        let per_channel_marginal = rss2.saturating_sub(rss1) as f64 / channels;
        let per_channel_all_in = rss2.saturating_sub(rss0) as f64 / channels;
        let per_conn_all_in = rss2.saturating_sub(rss0) as f64 / opened.max(1) as f64;
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
