//! `Endpoint::shutdown_on_signals` in a real process: the chat demo, sent SIGTERM or
//! SIGINT with a client joined, drains (the client is closed with 1012) and exits 0.
//! Needs the demo's binary, which `cargo test --all-targets` builds
//! (`cargo build --example chat` otherwise).
#![cfg(target_os = "linux")]

use phx_channels::client::Client;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The chat demo next to this test's build directory.
fn chat_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let bin = profile_dir.join("examples").join("chat");
    assert!(bin.exists(), "{} is missing: build it with `cargo build --example chat`", bin.display());
    bin
}

/// Starts the demo on a free port; returns it and its address, read from what it prints.
fn start_chat() -> (Child, String) {
    let mut child = Command::new(chat_bin())
        .args(["--port", "0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the chat demo starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.split("http://").nth(1).and_then(|rest| rest.split('/').next()).map(str::to_owned);
    let addr = addr.unwrap_or_else(|| panic!("no address in {line:?}"));
    (child, addr)
}

/// Waits up to `within` for `child` to exit; kills it and fails if it does not.
fn exit_status(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the demo did not exit within {within:?} of the signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_and_sigint_drain_the_demo_and_it_exits_cleanly() {
    for signal in ["TERM", "INT"] {
        let (mut child, addr) = start_chat();
        let mut client = Client::builder(addr).timeout(Duration::from_secs(10)).connect().unwrap();
        assert_eq!(client.join("room:lobby", json!({"user": "Ada"})).unwrap().status, "ok");
        let killed = Command::new("kill").arg(format!("-{signal}")).arg(child.id().to_string()).status().unwrap();
        assert!(killed.success());
        let close = client.wait_close().unwrap();
        assert_eq!(close.map(|(code, _)| code), Some(1012), "SIG{signal}: the drain closes clients with 1012");
        let status = exit_status(&mut child, Duration::from_secs(20));
        assert!(status.success(), "SIG{signal}: the demo exits 0 after draining, not {status}");
    }
}
