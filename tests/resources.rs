//! Threads and file descriptors come back: after many connection cycles and after
//! shutdown, the test process holds what it held before. The tests here take a lock so
//! that they never run at the same time (they count the whole process's threads).

mod common;

use common::*;
use serde_json::json;
use std::sync::Mutex;
use std::time::{Duration, Instant};

static ALONE: Mutex<()> = Mutex::new(());

fn cycle(server: &Server, topic: &str) {
    let mut client = server.client();
    assert_eq!(client.join(topic, json!({})).unwrap().status, "ok");
    assert_eq!(client.push(topic, "echo", json!({"x": 1})).unwrap().status, "ok");
    assert_eq!(client.leave(topic).unwrap().status, "ok");
    client.close().unwrap();
}

/// Polls for up to `within` until threads and fds are back to `(threads, fds)`.
fn assert_back_to(threads: usize, fds: usize, within: Duration, what: &str) {
    let settled = wait_until(within, || thread_count() == threads && fd_count() == fds);
    assert!(
        settled,
        "{what}: threads {} (expected {threads}), open fds {} (expected {fds})",
        thread_count(),
        fd_count()
    );
}

#[test]
fn a_thousand_connect_join_push_leave_disconnect_cycles_leave_threads_and_fds_as_they_were() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let server = start();
    // Warm up, then count.
    cycle(&server, "room:warmup");
    assert!(wait_until(Duration::from_secs(5), || server.endpoint.stats().connections == 0));
    assert!(wait_until(Duration::from_secs(5), || server.endpoint.stats().channel_threads == 0));
    std::thread::sleep(Duration::from_millis(50));
    let (threads, fds) = (thread_count(), fd_count());
    let began = Instant::now();
    for i in 0..1000 {
        cycle(&server, &format!("room:cycle{}", i % 7));
    }
    let took = began.elapsed();
    assert_back_to(threads, fds, Duration::from_secs(5), "after 1000 cycles");
    let stats = server.endpoint.stats();
    assert_eq!((stats.connections, stats.channels, stats.channel_threads), (0, 0, 0), "{stats:?}");
    assert_eq!(stats.connections_total, 1001);
    assert_eq!(server.events().starting_with("terminate ").len(), 1001);
    eprintln!("1000 cycles took {took:?}");
}

#[test]
fn shutdown_ends_every_thread_and_closes_every_fd_the_endpoint_opened() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    std::thread::sleep(Duration::from_millis(50));
    let (threads, fds) = (thread_count(), fd_count());
    let server = start();
    let mut clients: Vec<_> = (0..20).map(|i| server.joined(&format!("room:s{}", i % 3))).collect();
    assert!(thread_count() > threads + 20);
    server.endpoint.shutdown();
    for client in &mut clients {
        assert_eq!(client.wait_close().unwrap().map(|c| c.0), Some(1012));
    }
    drop(clients);
    drop(server);
    assert_back_to(threads, fds, Duration::from_secs(5), "after shutdown");
}

#[test]
fn the_timers_of_many_channels_share_one_thread() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let server = in_memory();
    std::thread::sleep(Duration::from_millis(50));
    let threads = thread_count();
    let rooms: Vec<_> = (0..20).map(|i| server.test_joined(&format!("room:timers{i}"))).collect();
    for room in &rooms {
        for ms in [60_000, 120_000, 180_000] {
            let set = room.push("send_after", json!({"ms": ms}));
            room.assert_reply(&set, "ok");
        }
    }
    assert_eq!(server.endpoint.stats().channel_threads, 20);
    assert_eq!(thread_count(), threads + 20, "one thread per channel, none per timer");
}
