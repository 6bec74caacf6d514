//! The traffic threads' scheduling policy and CPUs, read back from the kernel over a
//! real socket: a channel reports its own thread's, and the test reads the reactors'.
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

/// The CPUs a thread may run on: `Cpus_allowed_list` of its `status`, as `0-1` or `0,2`.
fn cpus_of(status_path: &str) -> String {
    let status = std::fs::read_to_string(status_path).unwrap();
    let line = status.lines().find(|line| line.starts_with("Cpus_allowed_list:")).unwrap();
    line["Cpus_allowed_list:".len()..].trim().to_owned()
}

/// Every reactor thread's policy and CPUs.
fn reactor_threads() -> Vec<(u64, String)> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| {
            let dir = task.unwrap().path();
            let name = std::fs::read_to_string(dir.join("comm")).ok()?;
            name.starts_with("phx-reactor").then(|| {
                (policy_of(&dir.join("stat").to_string_lossy()), cpus_of(&dir.join("status").to_string_lossy()))
            })
        })
        .collect()
}

/// Replies to `policy` with its own thread's policy and CPUs.
struct Policy;

impl Channel for Policy {
    fn join(&mut self, _topic: &str, _payload: &Payload, _socket: &mut Socket) -> JoinResult {
        Ok(Payload::empty())
    }

    fn handle_in(&mut self, _event: &str, _payload: Payload, _socket: &mut Socket) -> Handled {
        let cpus = cpus_of("/proc/thread-self/status");
        Handled::reply_ok(json!({"policy": policy_of("/proc/thread-self/stat"), "cpus": cpus}))
    }
}

/// A channel thread's policy and CPUs.
fn channel_thread(server: &Server) -> (u64, String) {
    let mut client = server.client();
    assert_eq!(client.join("policy:1", json!({})).unwrap().status, "ok");
    let reply = json_of(&client.push("policy:1", "policy", json!({})).unwrap().response);
    (reply["policy"].as_u64().unwrap(), reply["cpus"].as_str().unwrap().to_owned())
}

fn start(scheduling: Option<Scheduling>) -> Server {
    let builder = server().socket(|s| s.channel("policy:*", |_| Policy));
    match scheduling {
        Some(scheduling) => builder.endpoint(move |e| e.scheduling(scheduling).reactors(2)),
        None => builder.endpoint(|e| e.reactors(2)),
    }
    .start()
}

/// One test, so that no other endpoint's reactors are alive while it reads them.
#[test]
fn traffic_threads_run_under_sched_batch_unless_told_otherwise_and_pinned_when_told() {
    let all = cpus_of("/proc/thread-self/status");
    let several_cpus = all.contains(['-', ',']);

    // The default, Batch, and Unchanged: the policy only, on every CPU the test may use.
    for (scheduling, expected) in
        [(None, SCHED_BATCH), (Some(Scheduling::Batch), SCHED_BATCH), (Some(Scheduling::Unchanged), SCHED_OTHER)]
    {
        let server = start(scheduling);
        assert_eq!(channel_thread(&server), (expected, all.clone()), "{scheduling:?}");
        let reactors = reactor_threads();
        assert_eq!(reactors.len(), 2);
        assert!(reactors.iter().all(|r| *r == (expected, all.clone())), "{scheduling:?}: reactors {reactors:?}");
        drop(server);
    }

    // BatchPinned: each of the two reactors on a CPU of its own (when the test may use
    // several), and the channel thread on its reactor's.
    let pinned = start(Some(Scheduling::BatchPinned));
    let (policy, channel_cpus) = channel_thread(&pinned);
    assert_eq!(policy, SCHED_BATCH);
    let reactors = reactor_threads();
    assert_eq!(reactors.len(), 2);
    assert!(reactors.iter().all(|(p, _)| *p == SCHED_BATCH), "reactors {reactors:?}");
    if several_cpus {
        assert_ne!(reactors[0].1, reactors[1].1, "reactors {reactors:?}");
        assert!(reactors.iter().all(|(_, cpus)| !cpus.contains(['-', ','])), "reactors {reactors:?}");
        assert!(reactors.iter().any(|(_, cpus)| *cpus == channel_cpus), "{channel_cpus} among {reactors:?}");
    } else {
        assert!(reactors.iter().all(|(_, cpus)| *cpus == all), "reactors {reactors:?}");
    }
}
