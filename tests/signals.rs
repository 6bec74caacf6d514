//! `Endpoint::shutdown_on_signals` in a real process: a server sent SIGTERM or SIGINT
//! with a client joined drains (the client is closed with 1012, `terminate` runs) and
//! exits 0. The server process is this test binary run again with `SERVER_ENV` set, so
//! the test needs nothing built beside it.
#![cfg(target_os = "linux")]

use phx_channels::client::Client;
use phx_channels::{Channel, Endpoint, JoinResult, Payload, Socket, StopReason, UserSocket};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// Set in the child process: its `serve_until_a_signal` runs the server.
const SERVER_ENV: &str = "PHX_SIGNALS_TEST_SERVER";

struct Room;

impl Channel for Room {
    fn join(&mut self, _topic: &str, _payload: &Payload, _socket: &mut Socket) -> JoinResult {
        Ok(Payload::empty())
    }

    fn terminate(&mut self, reason: &StopReason, _socket: &mut Socket) {
        // The parent reads this line from the child's output.
        println!("terminated: {reason:?}");
    }
}

/// The server of the child process; does nothing in an ordinary test run.
#[test]
fn serve_until_a_signal() {
    if std::env::var_os(SERVER_ENV).is_none() {
        return;
    }
    let endpoint = Endpoint::builder()
        .bind("127.0.0.1:0")
        .socket("/socket", UserSocket::new().channel("room:*", |_| Room))
        .start()
        .unwrap();
    endpoint.shutdown_on_signals().unwrap();
    println!("listening on {}", endpoint.local_addr());
    endpoint.wait();
    println!("drained");
}

/// The server process, killed if a failing test leaves it running.
struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the server process; returns it, its address and the rest of its output.
fn start_server() -> (ServerProcess, String, BufReader<ChildStdout>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["serve_until_a_signal", "--exact", "--nocapture", "--test-threads=1"])
        .env(SERVER_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server process starts");
    let mut output = BufReader::new(child.stdout.take().unwrap());
    let child = ServerProcess(child);
    let mut line = String::new();
    loop {
        line.clear();
        assert!(output.read_line(&mut line).unwrap() > 0, "the server process ended before it listened");
        // The test harness may print its own words before ours on the same line.
        if let Some(addr) = line.split("listening on ").nth(1) {
            return (child, addr.trim().to_owned(), output);
        }
    }
}

/// Waits up to `within` for the server to exit; fails (and so kills it) if it does not.
fn exit_status(ServerProcess(child): &mut ServerProcess, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            panic!("the server did not exit within {within:?} of the signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_and_sigint_drain_the_server_and_it_exits_cleanly() {
    for signal in ["TERM", "INT"] {
        let (mut child, addr, output) = start_server();
        let mut client = Client::builder(addr).timeout(Duration::from_secs(10)).connect().unwrap();
        assert_eq!(client.join("room:lobby", json!({})).unwrap().status, "ok");
        let killed = Command::new("kill").arg(format!("-{signal}")).arg(child.0.id().to_string()).status().unwrap();
        assert!(killed.success());
        let close = client.wait_close().unwrap();
        assert_eq!(close.map(|(code, _)| code), Some(1012), "SIG{signal}: the drain closes clients with 1012");
        let status = exit_status(&mut child, Duration::from_secs(20));
        assert!(status.success(), "SIG{signal}: the server exits 0 after draining, not {status}");
        let lines: Vec<String> = output.lines().map(Result::unwrap).collect();
        let terminated = lines.iter().position(|line| line.contains("terminated: ") && line.contains("draining"));
        let drained = lines.iter().position(|line| line.contains("drained"));
        assert!(
            matches!((terminated, drained), (Some(t), Some(d)) if t < d),
            "SIG{signal}: terminate ran with the drain's reason before `wait` returned: {lines:?}"
        );
    }
}
