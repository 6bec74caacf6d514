//! What the channels and `connect` record, for the tests to inspect: the `Events`
//! log, the `Ctx` the channels share with the test, and `wait_until`, the polling
//! wait the tests use for these and anything else.

use phx_channels::ChannelHandle;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Lines recorded by the server's callbacks: `connect {json}`, `join <topic>`,
/// `terminate <topic> <reason>`, `handle_out <topic> <event>`, `info <topic> ...`.
#[derive(Clone, Default)]
pub struct Events(Arc<Mutex<Vec<String>>>);

impl Events {
    pub fn push(&self, line: impl Into<String>) {
        self.0.lock().unwrap().push(line.into());
    }

    pub fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// Lines starting with `prefix`.
    pub fn starting_with(&self, prefix: &str) -> Vec<String> {
        self.all().into_iter().filter(|l| l.starts_with(prefix)).collect()
    }

    pub fn contains(&self, line: &str) -> bool {
        self.0.lock().unwrap().iter().any(|l| l == line)
    }

    /// Waits up to `timeout` for `line` to be recorded.
    pub fn wait_for(&self, line: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.contains(line))
    }

    /// Waits up to `timeout` for a line starting with `prefix`; returns it.
    pub fn wait_prefix(&self, prefix: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.starting_with(prefix).into_iter().next() {
                return Some(line);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The JSON recorded by every `connect` call so far.
    pub fn connects(&self) -> Vec<Value> {
        self.starting_with("connect ").iter().map(|l| serde_json::from_str(&l["connect ".len()..]).unwrap()).collect()
    }
}

/// What the channels share with the test: the event log and each topic's latest handle.
#[derive(Clone, Default)]
pub struct Ctx {
    pub events: Events,
    pub handles: Arc<Mutex<HashMap<String, ChannelHandle>>>,
}

impl Ctx {
    /// The `ChannelHandle` of the latest join of `topic` (recorded in `join`).
    pub fn handle(&self, topic: &str) -> ChannelHandle {
        self.handles.lock().unwrap().get(topic).cloned().unwrap_or_else(|| panic!("no channel handle for {topic}"))
    }
}

/// Polls `check` every 5 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
