//! `client-echo` and `client-connect`: the same measurements as `echo` and `connect`
//! (the server's CPU per round trip, handshakes per second), made with the crate's
//! own blocking client, one thread per connection, because it speaks `wss://` (with
//! `--ca PEM`, built with the `tls` feature) and this tool's own client does not. So
//! plain and TLS are compared with one client; its figures are not comparable with
//! `echo`'s (the client costs more, and its latency includes a thread wake-up).

use crate::args::Args;
use crate::echo::echo_payload;
use crate::probe::{CpuSample, Probe, cpu_between};
use crate::report::{ErrorLog, emit, histogram, percentile_line, percentiles, round};
use crate::{Res, wait_until};
use hdrhistogram::Histogram;
use phx_channels::client::{Client, ClientBuilder};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// What the subcommands share: where to connect and how.
struct Target {
    addr: String,
    path: String,
    #[cfg(feature = "tls")]
    roots: Option<phx_channels::client::TlsRoots>,
}

impl Target {
    fn parse(args: &Args) -> Res<Target> {
        let addr = args.get("addr", "127.0.0.1:4807".to_owned())?;
        let path = args.get("path", "/bench".to_owned())?;
        let ca: Option<String> = args.opt("ca")?;
        #[cfg(feature = "tls")]
        let target = Target { addr, path, roots: ca.map(phx_channels::client::TlsRoots::from_pem_file).transpose()? };
        #[cfg(not(feature = "tls"))]
        let target = match ca {
            Some(_) => return Err("--ca (wss://) needs the `tls` cargo feature: build with --features tls".into()),
            None => Target { addr, path },
        };
        Ok(target)
    }

    fn builder(&self) -> ClientBuilder {
        let builder = Client::builder(&self.addr).path(&self.path).timeout(Duration::from_secs(10));
        #[cfg(feature = "tls")]
        if let Some(roots) = &self.roots {
            return builder.tls(roots.clone());
        }
        builder
    }

    fn url(&self) -> String {
        #[cfg(feature = "tls")]
        let scheme = if self.roots.is_some() { "wss" } else { "ws" };
        #[cfg(not(feature = "tls"))]
        let scheme = "ws";
        format!("{scheme}://{}{}/websocket", self.addr, self.path)
    }
}

#[derive(Default)]
struct Shared {
    ready: AtomicUsize,
    record: AtomicBool,
    stop: AtomicBool,
    done: AtomicU64,
    errors: ErrorLog,
    hist: Mutex<Option<Histogram<u64>>>,
}

impl Shared {
    fn add_hist(&self, hist: &Histogram<u64>) {
        let mut all = self.hist.lock().unwrap();
        match all.as_mut() {
            Some(all) => all.add(hist).expect("histograms of one shape"),
            None => *all = Some(hist.clone()),
        }
    }
}

/// What one measurement found.
struct Run {
    shared: Arc<Shared>,
    /// The window, in seconds.
    secs: f64,
    /// The server's CPU in the window (see `cpu_between`).
    cpu: Option<(u64, &'static str, u64)>,
    hist: Histogram<u64>,
}

/// Runs `c` threads of `work` (which reports ready once, then loops until `stop`,
/// recording while `record`); measures a window of `duration` after `warmup`.
fn measure(args: &Args, c: usize, work: impl Fn(usize, &Shared) -> Res<()> + Send + Sync + 'static) -> Res<Run> {
    let duration = args.secs("duration", 10.0)?;
    let warmup = args.secs("warmup", 1.0)?;
    let probe = Probe::new(args.opt("server-pid")?)?;
    args.finish()?;
    let shared = Arc::new(Shared::default());
    let work = Arc::new(work);
    let threads: Vec<_> = (0..c)
        .map(|i| {
            let (shared, work) = (shared.clone(), work.clone());
            thread::spawn(move || {
                if let Err(err) = work(i, &shared) {
                    shared.errors.add(format!("connection {i}: {err}"));
                }
            })
        })
        .collect();
    wait_until(Duration::from_secs(30), || shared.ready.load(Relaxed) + shared.errors.count() as usize >= c);
    thread::sleep(warmup);
    let cpu0: Option<CpuSample> = probe.as_ref().map(Probe::cpu);
    let t0 = Instant::now();
    shared.record.store(true, Relaxed);
    thread::sleep(duration);
    shared.record.store(false, Relaxed);
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu0.zip(probe.as_ref().map(Probe::cpu)).map(|(a, b)| cpu_between(a, b));
    shared.stop.store(true, Relaxed);
    for thread in threads {
        let _ = thread.join();
    }
    let hist = shared.hist.lock().unwrap().take().unwrap_or_else(histogram);
    Ok(Run { shared, secs, cpu, hist })
}

/// Prints the summary and the JSON line of a run that did `unit`s.
fn report(mode: &str, unit: &str, mut summary: Vec<String>, mut line: Value, run: &Run) {
    let Run { shared, secs, cpu, hist } = run;
    let secs = *secs;
    let done = shared.done.load(Relaxed);
    summary.push(format!("  {done} {unit}s, {:.0}/s", done as f64 / secs));
    summary.push(format!("  {}", percentile_line(unit, hist)));
    line["mode"] = json!(mode);
    line["window_s"] = json!(round(secs, 3));
    line["count"] = json!(done);
    line["per_s"] = json!(round(done as f64 / secs, 1));
    line["latency"] = percentiles(hist);
    line["errors"] = json!(shared.errors.count());
    if let Some((ns, source, _)) = *cpu {
        let per_us = ns as f64 / done.max(1) as f64 / 1000.0;
        summary.push(format!(
            "  server CPU: {:.3} s ({source}) = {per_us:.2} µs per {unit}, {:.0}% of a core",
            ns as f64 / 1e9,
            ns as f64 / 1e9 / secs * 100.0
        ));
        line["server_cpu"] = json!({"cpu_s": round(ns as f64 / 1e9, 4), "source": source,
            "per_unit_us": round(per_us, 3), "core_share": round(ns as f64 / 1e9 / secs, 3)});
    }
    for e in shared.errors.samples() {
        summary.push(format!("  error: {e}"));
    }
    emit(&summary, line);
}

/// `client-echo`: `c` connections, each on its thread, each pushing `echo` and
/// waiting for the reply, closed loop.
pub(crate) fn client_echo(args: &Args) -> Res<()> {
    let target = Arc::new(Target::parse(args)?);
    let c: usize = args.get("c", 1)?;
    let payload: Value = serde_json::from_str(&echo_payload(args.get("payload-bytes", 32)?))?;
    let summary = vec![format!("client-echo: {c} connections (crate client, a thread each), on {}", target.url())];
    let line = json!({"connections": c, "url": target.url()});
    let t = target.clone();
    let run = measure(args, c, move |i, shared| {
        let mut client = t.builder().connect()?;
        let topic = format!("bench:echo{i}");
        client.join(&topic, json!({}))?;
        shared.ready.fetch_add(1, Relaxed);
        let mut hist = histogram();
        while !shared.stop.load(Relaxed) {
            let sent = Instant::now();
            client.push(&topic, "echo", payload.clone())?;
            if shared.record.load(Relaxed) {
                hist.saturating_record(sent.elapsed().as_nanos() as u64);
                shared.done.fetch_add(1, Relaxed);
            }
        }
        shared.add_hist(&hist);
        Ok(client.close()?)
    })?;
    report("client-echo", "round trip", summary, line, &run);
    Ok(())
}

/// `client-connect`: `c` threads, each connecting (TCP, TLS if asked, the WebSocket
/// upgrade) and closing again, over and over.
pub(crate) fn client_connect(args: &Args) -> Res<()> {
    let target = Arc::new(Target::parse(args)?);
    let c: usize = args.get("c", 1)?;
    let summary = vec![format!("client-connect: {c} threads connecting and closing, on {}", target.url())];
    let line = json!({"threads": c, "url": target.url()});
    let t = target.clone();
    let run = measure(args, c, move |_, shared| {
        shared.ready.fetch_add(1, Relaxed);
        let mut hist = histogram();
        while !shared.stop.load(Relaxed) {
            let began = Instant::now();
            let client = t.builder().connect()?;
            if shared.record.load(Relaxed) {
                hist.saturating_record(began.elapsed().as_nanos() as u64);
                shared.done.fetch_add(1, Relaxed);
            }
            client.close()?;
        }
        shared.add_hist(&hist);
        Ok(())
    })?;
    report("client-connect", "handshake", summary, line, &run);
    Ok(())
}
