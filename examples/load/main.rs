//! The load and benchmark tool: event-driven WebSocket clients (mio, non-blocking
//! sockets, a few threads with many connections each) that speak Phoenix V2 JSON,
//! and the floors their figures are compared with. BENCHMARKS.md says how each
//! measurement is run and what it found.
//!
//! ```text
//! cargo run --release --example load -- <subcommand> [options]
//!
//! connect    --url URL -n N -k K [--hold S] [--threads T] [--server-pid PID]
//! scale      --url URL -n N -k K [--cycles C] [--rounds R] [--sources IP,IP] [--server-pid PID]
//! echo       --url URL -c C --duration S [--payload-bytes B] [--inflight K] [--client-poll block|spin] [--server-pid PID]
//! broadcast  --url URL -n N --count M --rate R [--payload-bytes B] [--server-pid PID]
//!            [--sub-urls URL,URL] [--other-pids NAME=PID,NAME=PID]
//! raw-server --port P [--max-seconds S]
//! raw-echo   --url ws://127.0.0.1:P/ -c C --duration S [--payload-bytes B] [--inflight K] [--client-poll block|spin] [--server-pid PID]
//! tcp-floor  --n N --count M [--frame-bytes B] [--batch 8] [--rate R]
//! wake-floor --threads N --rounds M [--rate R]
//! longpoll   --url http://HOST:P/bench/longpoll [--via http://OTHER:P/bench/longpoll] [--count M] [-n N] [--server-pid PID]
//! client-echo     --addr HOST:PORT [--path /bench] [--ca PEM] -c C --duration S [--server-pid PID]
//! client-connect  --addr HOST:PORT [--path /bench] [--ca PEM] -c C --duration S [--server-pid PID]
//! ```
//!
//! Every subcommand prints a human summary, then one JSON line that starts with
//! `{"mode":`. Everything bounds its own duration (`--timeout`, `--max-seconds`).
//!
//! The WebSocket client here is deliberately minimal (RFC 6455 client side: the
//! upgrade request and its `101`, masked frames out, unmasked frames in with 7, 16 and
//! 64-bit lengths, fragments, pings answered, the close handshake) so that the tool
//! costs little per message and never becomes the bottleneck.
//!
//! This file holds the entry point and what every subcommand shares (`Res`,
//! `wait_until`). The subcommands live in `connect`, `scale`, `echo` (also `raw-echo`),
//! `broadcast`, `raw_server`, `tcp_floor`, `wake_floor`, `longpoll` (plain blocking HTTP) and `blocking`
//! (`client-echo` and `client-connect`, with the crate's own client, for `wss://`); under them are `args` (the command
//! line), `ws` and `client` (the WebSocket client), `phoenix` (V2 frames), `probe`
//! (/proc) and `report` (the figures and the printed output).

mod args;
mod blocking;
mod broadcast;
mod client;
mod connect;
mod echo;
mod longpoll;
mod phoenix;
mod probe;
mod raw_server;
mod report;
mod scale;
mod tally;
mod tcp_floor;
mod wake_floor;
mod ws;

use args::{Args, USAGE};
use std::thread;
use std::time::{Duration, Instant};

pub(crate) type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn main() {
    let mut argv = std::env::args().skip(1);
    let Some(command) = argv.next() else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    let result = Args::parse(argv.collect()).and_then(|args| match command.as_str() {
        "connect" => connect::connect(&args),
        "scale" => scale::scale(&args),
        "echo" => echo::echo(&args, false),
        "raw-echo" => echo::echo(&args, true),
        "broadcast" => broadcast::broadcast(&args),
        "raw-server" => raw_server::raw_server(&args),
        "tcp-floor" => tcp_floor::tcp_floor(&args),
        "wake-floor" => wake_floor::wake_floor(&args),
        "longpoll" => longpoll::longpoll(&args),
        "client-echo" => blocking::client_echo(&args),
        "client-connect" => blocking::client_connect(&args),
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

/// Waits until `done()` or `timeout`; returns whether it got done.
pub(crate) fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(2));
    }
    true
}
