//! `longpoll`: the long-poll transport, measured with plain blocking HTTP (every
//! long-poll request is a connection of its own, which the server closes after its
//! answer):
//!
//! - the server's memory per idle session: N clients, each with a session and a poll
//!   held, re-polling whenever the window ends, as an idle client does;
//! - then the round trip of an echo: with a poll sent (and held by the server), a
//!   `POST` of an `echo` push, until the poll answers with its reply; and the `POST`
//!   alone. With `--via URL` (another node of a cluster), the session is opened at
//!   `--url` and the round trips' requests go to the other node, which forwards them.

use crate::Res;
use crate::probe::Probe;
use crate::report::{emit, histogram, percentile_line, percentiles, round};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};

const DEFAULT_URL: &str = "http://127.0.0.1:4807/bench/longpoll";
/// The stack of each idle client's thread: it only blocks on a socket.
const CLIENT_STACK: usize = 64 * 1024;

/// Where the long-poll path is.
#[derive(Clone)]
struct Target {
    addr: SocketAddr,
    host: String,
    path: String,
}

impl Target {
    fn parse(url: &str) -> Res<Target> {
        let rest = url.strip_prefix("http://").ok_or("only http:// URLs are supported")?;
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let addr = host.to_socket_addrs()?.next().ok_or_else(|| format!("cannot resolve {host}"))?;
        let path = if path.contains("vsn=") { path.to_owned() } else { format!("{path}?vsn=2.0.0") };
        Ok(Target { addr, host: host.to_owned(), path })
    }

    /// Sends a request with the token (if any) and `body` (for a `POST`); returns the
    /// open stream, whose answer is still to read.
    fn send(&self, method: &str, token: Option<&str>, body: &str) -> Res<TcpStream> {
        let mut stream = TcpStream::connect(self.addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut request = format!("{method} {} HTTP/1.1\r\nhost: {}\r\n", self.path, self.host);
        if let Some(token) = token {
            request.push_str(&format!("x-phoenix-longpoll-token: {token}\r\n"));
        }
        if method == "POST" {
            request.push_str(&format!("content-type: application/x-ndjson\r\ncontent-length: {}\r\n", body.len()));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream.write_all(request.as_bytes())?;
        Ok(stream)
    }

    fn exchange(&self, method: &str, token: Option<&str>, body: &str) -> Res<Value> {
        answer(self.send(method, token, body)?)
    }

    /// A new session's token.
    fn connect(&self) -> Res<String> {
        let answer = self.exchange("GET", None, "")?;
        match (answer["status"].as_u64(), answer["token"].as_str()) {
            (Some(410), Some(token)) => Ok(token.to_owned()),
            _ => Err(format!("connecting got {answer}").into()),
        }
    }
}

/// Reads an answer to the end (the server closes after it) and returns its JSON body.
fn answer(mut stream: TcpStream) -> Res<Value> {
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    let body = text.split_once("\r\n\r\n").map(|(_, body)| body).ok_or("no HTTP answer")?;
    Ok(serde_json::from_str(body)?)
}

/// Whether a poll's answer holds the reply to `msg_ref`.
fn has_reply(answer: &Value, msg_ref: &str) -> bool {
    let messages = answer["messages"].as_array().map(Vec::as_slice).unwrap_or_default();
    messages.iter().filter_map(Value::as_str).any(|m| m.contains(&format!("\"{msg_ref}\",")) && m.contains("phx_reply"))
}

/// Polls with `token` until an answer holds the reply to `msg_ref`; `first` is a poll
/// already sent.
fn poll_for_reply(target: &Target, token: &str, msg_ref: &str, first: TcpStream) -> Res<()> {
    let mut poll = first;
    loop {
        let got = answer(poll)?;
        match got["status"].as_u64() {
            Some(200) if has_reply(&got, msg_ref) => return Ok(()),
            Some(200 | 204) => poll = target.send("GET", Some(token), "")?,
            _ => return Err(format!("a poll answered {got}").into()),
        }
    }
}

pub(crate) fn longpoll(args: &crate::args::Args) -> Res<()> {
    let target = Target::parse(&args.get("url", DEFAULT_URL.to_owned())?)?;
    let via = match args.opt::<String>("via")? {
        Some(url) => Target::parse(&url)?,
        None => target.clone(),
    };
    let count: usize = args.get("count", 2000)?;
    let sessions: usize = args.get("n", 1000)?;
    let settle = args.secs("settle", 1.0)?;
    let probe = Probe::new(args.opt("server-pid")?)?;
    args.finish()?;

    // Memory per idle session: each client holds a poll, and polls again at once.
    let baseline = probe.as_ref().map(|p| {
        thread::sleep(settle);
        p.memory()
    });
    let stop = Arc::new(AtomicBool::new(false));
    let (connected, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let clients: Vec<_> = (0..sessions)
        .map(|_| {
            let (target, stop, connected, failed) = (target.clone(), stop.clone(), connected.clone(), failed.clone());
            thread::Builder::new().stack_size(CLIENT_STACK).spawn(move || {
                let Ok(token) = target.connect() else {
                    failed.fetch_add(1, Relaxed);
                    return;
                };
                connected.fetch_add(1, Relaxed);
                while !stop.load(Relaxed) {
                    if target.exchange("GET", Some(&token), "").is_err() {
                        failed.fetch_add(1, Relaxed);
                        return;
                    }
                }
            })
        })
        .collect::<Result<_, _>>()?;
    crate::wait_until(Duration::from_secs(60), || connected.load(Relaxed) + failed.load(Relaxed) >= sessions);
    let held = probe.as_ref().map(|p| {
        thread::sleep(settle);
        p.memory()
    });
    stop.store(true, Relaxed);
    for client in clients {
        let _ = client.join();
    }
    let connected = connected.load(Relaxed);
    let per_session_kib = match (baseline, held) {
        (Some((before, _)), Some((after, _))) if connected > 0 => {
            Some(round((after as f64 - before as f64) / connected as f64, 2))
        }
        _ => None,
    };

    // The round trip of an echo, one session (opened at `target`, used through `via`).
    let token = target.connect()?;
    let topic = format!("bench:lp{}", std::process::id());
    let join = json!(["1", "1", topic, "phx_join", {}]).to_string();
    via.exchange("POST", Some(&token), &join)?;
    poll_for_reply(&via, &token, "1", via.send("GET", Some(&token), "")?)?;
    let (mut round_trips, mut posts) = (histogram(), histogram());
    let payload = "x".repeat(32);
    for i in 0..count + count / 10 {
        let msg_ref = format!("e{i}");
        let poll = via.send("GET", Some(&token), "")?;
        let began = Instant::now();
        let echo = json!(["1", msg_ref, topic, "echo", {"p": payload}]).to_string();
        let posted = via.exchange("POST", Some(&token), &echo)?;
        let post_took = began.elapsed();
        if posted["status"] != 200 {
            return Err(format!("a POST answered {posted}").into());
        }
        poll_for_reply(&via, &token, &msg_ref, poll)?;
        // The first tenth warms up.
        if i >= count / 10 {
            round_trips.record(began.elapsed().as_nanos() as u64)?;
            posts.record(post_took.as_nanos() as u64)?;
        }
    }

    let mut summary = vec![
        percentile_line("echo round trip over long-poll (POST, then the held poll's answer)", &round_trips),
        percentile_line("the POST alone", &posts),
        format!("{connected} idle sessions, each with a poll held; {} failures", failed.load(Relaxed)),
    ];
    if let (Some((before, threads_before)), Some((after, threads_after))) = (baseline, held) {
        summary.push(format!(
            "server RSS {before} KiB -> {after} KiB ({} KiB per session), threads {threads_before} -> {threads_after}",
            per_session_kib.unwrap_or(0.0)
        ));
    }
    emit(
        &summary,
        json!({
            "mode": "longpoll",
            "round_trip": percentiles(&round_trips),
            "post": percentiles(&posts),
            "sessions": connected,
            "failures": failed.load(Relaxed),
            "rss_kib_before": baseline.map(|m| m.0),
            "rss_kib_held": held.map(|m| m.0),
            "rss_kib_per_session": per_session_kib,
        }),
    );
    Ok(())
}
