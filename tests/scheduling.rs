//! The traffic threads' scheduling policy, read back from the kernel over a real
//! socket: a channel reports its own thread's policy, and the test reads the reactors'.
#![cfg(target_os = "linux")]

mod common;

use common::*;
use phx_channels::{Channel, Handled, JoinResult, Payload, Scheduling, Socket};
use serde_json::json;

/// Linux's policy numbers (sched.h).
const SCHED_OTHER: u64 = 0;
const SCHED_BATCH: u64 = 3;

/// The policy of one thread of this process: field 41 of its `stat`.
fn policy_of(stat_path: &str) -> u64 {
    let stat = std::fs::read_to_string(stat_path).unwrap();
    // The name, in parentheses, may hold spaces: count the fields after it (field 3 on).
    let after_name = &stat[stat.rfind(')').unwrap() + 1..];
    after_name.split_whitespace().nth(41 - 3).unwrap().parse().unwrap()
}

/// Every reactor thread's policy.
fn reactor_policies() -> Vec<u64> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| {
            let dir = task.unwrap().path();
            let name = std::fs::read_to_string(dir.join("comm")).ok()?;
            name.starts_with("phx-reactor").then(|| policy_of(&dir.join("stat").to_string_lossy()))
        })
        .collect()
}

/// Replies to `policy` with its own thread's policy.
struct Policy;

impl Channel for Policy {
    fn join(&mut self, _topic: &str, _payload: &Payload, _socket: &mut Socket) -> JoinResult {
        Ok(Payload::empty())
    }

    fn handle_in(&mut self, _event: &str, _payload: Payload, _socket: &mut Socket) -> Handled {
        Handled::reply_ok(json!({"policy": policy_of("/proc/thread-self/stat")}))
    }
}

fn channel_policy(server: &Server) -> u64 {
    let mut client = server.client();
    assert_eq!(client.join("policy:1", json!({})).unwrap().status, "ok");
    let reply = client.push("policy:1", "policy", json!({})).unwrap();
    json_of(&reply.response)["policy"].as_u64().unwrap()
}

/// One test, so that no other endpoint's reactors are alive while it reads them.
#[test]
fn traffic_threads_run_under_sched_batch_unless_told_otherwise() {
    let batch = server().socket(|s| s.channel("policy:*", |_| Policy)).start();
    assert_eq!(channel_policy(&batch), SCHED_BATCH);
    let reactors = reactor_policies();
    assert!(!reactors.is_empty());
    assert!(reactors.iter().all(|p| *p == SCHED_BATCH), "reactor policies {reactors:?}");
    drop(batch);

    let unchanged = server()
        .socket(|s| s.channel("policy:*", |_| Policy))
        .endpoint(|e| e.scheduling(Scheduling::Unchanged))
        .start();
    assert_eq!(channel_policy(&unchanged), SCHED_OTHER);
    let reactors = reactor_policies();
    assert!(!reactors.is_empty());
    assert!(reactors.iter().all(|p| *p == SCHED_OTHER), "reactor policies {reactors:?}");
}
