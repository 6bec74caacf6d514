//! Presence with 10,000 entries on one topic: the time to `list` the topic, and the cost
//! of one more join (and leave): from the `track` call of the 10,001st entry to its
//! `presence_diff` reaching a plain [`Endpoint::subscribe`] subscriber, and that diff's
//! size (it must hold the new entry only).
//!
//! One channel, joined over a real socket, owns all the entries: it tracks 10,000 keys
//! in a single callback (a channel is a thread, so 10,000 owners would be 10,000
//! threads). It intercepts `presence_diff` and drops it, so that its own client is not
//! part of what is measured. Diff delivery is measured twice: with the default 20 ms
//! window, where the window dominates, and with a zero window, which shows the tracker's
//! own cost.
//!
//! Run with `cargo bench --bench presence` (add `-- --quick` for a fast pass). Besides
//! criterion's figures it prints the diff sizes and the cost of the `track` and
//! `untrack` calls themselves.

use criterion::{Criterion, criterion_group, criterion_main};
use crossbeam_channel::{Receiver, Sender};
use phx_channels::client::Client;
use phx_channels::presence::PRESENCE_DIFF;
use phx_channels::{
    Channel, ChannelHandle, Endpoint, Flow, Info, JoinResult, Payload, Socket, Subscription, UserSocket,
};
use serde_json::{Value, json};
use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ENTRIES: usize = 10_000;
const TOPIC: &str = "presence:bench";
const EXTRA: &str = "user-10001";

/// What the bench asks the owning channel to do, in `handle_info`.
enum Cmd {
    /// Track `count` keys in this one callback; answer with how long it took.
    TrackMany { count: usize, done: Sender<Duration> },
    /// Track `key`; answer with the instant just before the call and its duration.
    Track { key: String, done: Sender<(Instant, Duration)> },
    /// Untrack `key`; answer as for `Track`.
    Untrack { key: String, done: Sender<(Instant, Duration)> },
}

/// Owns every entry of the topic.
struct Owner {
    handle: Arc<Mutex<Option<ChannelHandle>>>,
}

fn meta(n: usize) -> Value {
    json!({"online_at": (1_700_000_000 + n).to_string(), "device": "laptop"})
}

impl Channel for Owner {
    fn join(&mut self, _: &str, _: &Payload, socket: &mut Socket) -> JoinResult {
        *self.handle.lock().unwrap() = Some(socket.handle());
        Ok(Payload::empty())
    }

    fn intercept(&self) -> &[&str] {
        &[PRESENCE_DIFF]
    }

    fn handle_out(&mut self, _: &str, _: &Payload, _: &mut Socket) -> Flow {
        Flow::Continue // dropped: the client is not what is measured
    }

    fn handle_info(&mut self, info: Info, socket: &mut Socket) -> Flow {
        match info.downcast::<Cmd>() {
            Ok(Cmd::TrackMany { count, done }) => {
                let began = Instant::now();
                for n in 0..count {
                    socket.track(&format!("user-{n:05}"), meta(n)).expect("a new key");
                }
                let _ = done.send(began.elapsed());
            }
            Ok(Cmd::Track { key, done }) => {
                let began = Instant::now();
                socket.track(&key, meta(ENTRIES)).expect("a new key");
                let _ = done.send((began, began.elapsed()));
            }
            Ok(Cmd::Untrack { key, done }) => {
                let began = Instant::now();
                socket.untrack(&key);
                let _ = done.send((began, began.elapsed()));
            }
            Err(_) => {}
        }
        Flow::Continue
    }
}

/// An endpoint whose one channel tracks `ENTRIES` keys on `TOPIC`, with a subscriber.
struct Setup {
    endpoint: Endpoint,
    owner: ChannelHandle,
    sub: Subscription,
    _client: Client,
}

impl Setup {
    fn start(window: Duration) -> Setup {
        let slot = Arc::new(Mutex::new(None));
        let for_route = slot.clone();
        let endpoint = Endpoint::builder()
            .bind("127.0.0.1:0")
            .presence_window(window)
            .socket(
                "/socket",
                UserSocket::new()
                    .idle_timeout(Duration::from_secs(24 * 3600))
                    .log_connect(None)
                    .channel("presence:*", move |_| Owner { handle: for_route.clone() }),
            )
            .start()
            .expect("the endpoint starts");
        let mut client = Client::builder(endpoint.local_addr().to_string()).connect().expect("connect");
        assert_eq!(client.join(TOPIC, json!({})).expect("join").status, "ok");
        let owner = slot.lock().unwrap().clone().expect("the owner's handle");
        let sub = endpoint.subscribe(TOPIC);

        let (done, took) = crossbeam_channel::bounded(1);
        owner.send(Cmd::TrackMany { count: ENTRIES, done }).unwrap();
        let took = took.recv_timeout(Duration::from_secs(120)).expect("10,000 tracks");
        // The tracks outlast the window, so their joins come in several diffs.
        let (mut joined, mut diffs, mut bytes) = (0, 0, 0);
        while joined < ENTRIES {
            let diff = sub.recv_timeout(Duration::from_secs(10)).expect("the diffs of the 10,000 joins");
            let diff = diff.payload.as_json().expect("JSON");
            joined += diff["joins"].as_object().map_or(0, |j| j.len());
            diffs += 1;
            bytes += serde_json::to_vec(diff).unwrap().len();
        }
        println!(
            "window {window:?}: {ENTRIES} tracks in one callback took {took:?} ({:?} each); \
             their joins came in {diffs} diffs, {bytes} bytes in all",
            took / ENTRIES as u32,
        );
        assert_eq!(endpoint.presence().list(TOPIC).as_object().unwrap().len(), ENTRIES);
        Setup { endpoint, owner, sub, _client: client }
    }

    /// Tracks (or untracks) `EXTRA`: (track call → diff received, the call itself, the diff).
    fn change(&self, track: bool) -> (Duration, Duration, Value) {
        let (done, answer): (Sender<(Instant, Duration)>, Receiver<_>) = crossbeam_channel::bounded(1);
        let key = EXTRA.to_owned();
        let cmd = if track { Cmd::Track { key, done } } else { Cmd::Untrack { key, done } };
        self.owner.send(cmd).unwrap();
        let diff = self.sub.recv_timeout(Duration::from_secs(10)).expect("a presence_diff");
        let received = Instant::now();
        let (began, call) = answer.recv_timeout(Duration::from_secs(10)).expect("the owner answers");
        let payload = diff.payload.as_json().expect("JSON").clone();
        (received - began, call, payload)
    }

    fn shutdown(self) {
        drop(self._client);
        self.endpoint.shutdown();
    }
}

/// Asserts that `diff` holds `EXTRA` alone, in `joins` (`track`) or `leaves`.
fn check_single(diff: &Value, track: bool) {
    let (changed, other) = if track { ("joins", "leaves") } else { ("leaves", "joins") };
    let keys: Vec<&String> = diff[changed].as_object().expect("an object").keys().collect();
    assert!(
        keys == [EXTRA],
        "the diff holds the new entry only; it holds {} keys: {:?}",
        keys.len(),
        &keys[..keys.len().min(5)]
    );
    assert_eq!(diff[changed][EXTRA]["metas"].as_array().map(Vec::len), Some(1));
    assert_eq!(diff[other], json!({}));
}

/// The CPU time of the calling thread so far (Linux: the first field of its schedstat).
fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(Duration::from_nanos(text.split_whitespace().next()?.parse().ok()?))
}

fn summary(label: &str, mut calls: Vec<Duration>) {
    calls.sort();
    if let (Some(min), Some(max)) = (calls.first(), calls.last()) {
        println!("{label}: {} calls, min {min:?}, median {:?}, max {max:?}", calls.len(), calls[calls.len() / 2]);
    }
}

fn bench(c: &mut Criterion) {
    let setup = Setup::start(Duration::from_millis(20));

    let listed = setup.endpoint.presence().list(TOPIC);
    println!("list of {ENTRIES} entries: {} bytes as JSON", serde_json::to_vec(&listed).unwrap().len());
    c.bench_function("presence/list_10000", |b| b.iter(|| black_box(setup.endpoint.presence().list(TOPIC))));
    // Wall time suffers when the machine is busy; this thread's CPU time does less.
    if let Some(before) = thread_cpu() {
        const CALLS: u32 = 20;
        for _ in 0..CALLS {
            black_box(setup.endpoint.presence().list(TOPIC));
        }
        if let Some(after) = thread_cpu() {
            println!("list of {ENTRIES} entries: {:?} of CPU time per call", (after - before) / CALLS);
        }
    }

    // The 10,001st entry: its join diff, then its leave diff (each iteration does both, to
    // come back to 10,000 entries, and times one).
    let (_, _, join) = setup.change(true);
    check_single(&join, true);
    let (_, _, leave) = setup.change(false);
    check_single(&leave, false);
    println!(
        "one join diff at {ENTRIES} entries: {} bytes ({}); one leave diff: {} bytes",
        serde_json::to_vec(&join).unwrap().len(),
        join,
        serde_json::to_vec(&leave).unwrap().len()
    );

    for (name, setup) in [("window_20ms", setup), ("window_0", Setup::start(Duration::ZERO))] {
        let mut track_calls = Vec::new();
        let mut untrack_calls = Vec::new();
        let mut group = c.benchmark_group(format!("presence/{name}"));
        group.sample_size(10);
        group.bench_function("track_to_join_diff_at_10000", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (latency, call, diff) = setup.change(true);
                    check_single(&diff, true);
                    total += latency;
                    track_calls.push(call);
                    let (_, call, _) = setup.change(false);
                    untrack_calls.push(call);
                }
                total
            })
        });
        group.bench_function("untrack_to_leave_diff_at_10000", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (_, call, _) = setup.change(true);
                    track_calls.push(call);
                    let (latency, call, diff) = setup.change(false);
                    check_single(&diff, false);
                    total += latency;
                    untrack_calls.push(call);
                }
                total
            })
        });
        group.finish();
        summary(&format!("{name}: Socket::track of the 10,001st entry"), track_calls);
        summary(&format!("{name}: Socket::untrack of the 10,001st entry"), untrack_calls);
        setup.shutdown();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);
