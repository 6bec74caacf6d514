//! Channel threads outlive their channels for the keep-alive, parked, and run the next
//! joins; then they exit, and shutdown ends them at once. The tests count the process's
//! threads, so they take a lock to run one at a time.

mod common;

use common::*;
use phx_channels::client::Client;
use serde_json::json;
use std::sync::Mutex;
use std::time::Duration;

static ALONE: Mutex<()> = Mutex::new(());

const CHANNELS: usize = 20;

fn alone() -> std::sync::MutexGuard<'static, ()> {
    ALONE.lock().unwrap_or_else(|e| e.into_inner())
}

fn server_keeping_spares_for(keep_alive: Duration) -> Server {
    server().endpoint(move |e| e.channel_thread_keep_alive(keep_alive)).start()
}

/// A client joined to `room:<prefix>0` .. `room:<prefix>19`.
fn join_all(server: &Server, prefix: &str) -> Client {
    let mut client = server.client();
    for i in 0..CHANNELS {
        assert_eq!(client.join(&format!("room:{prefix}{i}"), json!({})).unwrap().status, "ok");
    }
    client
}

/// The OS names of this process's threads.
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim_end().to_owned())
        .collect()
}

fn named(prefix: &str) -> usize {
    thread_names().iter().filter(|name| name.starts_with(prefix)).count()
}

/// The process's thread count once it holds still for a moment.
fn settled_thread_count() -> usize {
    let mut last = thread_count();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = thread_count();
        if now == last {
            return now;
        }
        last = now;
    }
}

fn closed_and_parked(server: &Server, client: Client) {
    client.close().unwrap();
    let parked = wait_until(Duration::from_secs(5), || {
        let stats = server.endpoint.stats();
        (stats.channels, stats.channel_threads, stats.spare_channel_threads) == (0, 0, CHANNELS as u64)
    });
    assert!(parked, "{:?}", server.endpoint.stats());
}

#[test]
fn the_threads_of_closed_channels_run_the_next_joins() {
    let _alone = alone();
    let server = server_keeping_spares_for(Duration::from_secs(600));
    let before = settled_thread_count();

    let first = join_all(&server, "a");
    assert_eq!(thread_count(), before + CHANNELS);
    assert_eq!(named("room:a"), CHANNELS, "each thread shows its channel's topic: {:?}", thread_names());
    closed_and_parked(&server, first);
    assert_eq!(server.events().starting_with("terminate room:a").len(), CHANNELS, "terminate ran for each");
    assert_eq!(thread_count(), before + CHANNELS, "the threads wait");
    assert_eq!(named("phx-spare"), CHANNELS, "{:?}", thread_names());

    let mut second = join_all(&server, "b");
    assert_eq!(thread_count(), before + CHANNELS, "no thread was started for the second joins");
    assert_eq!(server.endpoint.stats().spare_channel_threads, 0);
    assert_eq!(named("room:b"), CHANNELS, "{:?}", thread_names());
    for i in 0..CHANNELS {
        let reply = second.push(&format!("room:b{i}"), "echo", json!({"i": i})).unwrap();
        assert_eq!((reply.status.as_str(), json_of(&reply.response)), ("ok", json!({"i": i})));
    }

    // A thread whose channel panicked waits too, and runs the next join as well.
    second.push_async("room:b0", "boom", json!({})).unwrap();
    assert!(wait_until(Duration::from_secs(5), || server.endpoint.stats().spare_channel_threads == 1));
    assert_eq!(server.endpoint.stats().panics, 1);
    let mut third = server.client();
    assert_eq!(third.join("room:c", json!({})).unwrap().status, "ok");
    assert_eq!(json_of(&third.push("room:c", "echo", json!({"c": 1})).unwrap().response), json!({"c": 1}));
    assert_eq!(thread_count(), before + CHANNELS);
}

#[test]
fn spares_exit_once_the_keep_alive_has_passed() {
    let _alone = alone();
    let server = server_keeping_spares_for(Duration::from_millis(300));
    let before = settled_thread_count();
    let client = join_all(&server, "k");
    closed_and_parked(&server, client);
    let gone = wait_until(Duration::from_secs(5), || thread_count() == before);
    assert!(gone, "threads {} (expected {before}): {:?}", thread_count(), thread_names());
    assert_eq!(server.endpoint.stats().spare_channel_threads, 0);
    // Joins after that start threads again.
    let _client = join_all(&server, "l");
    assert_eq!(thread_count(), before + CHANNELS);
}

#[test]
fn shutdown_ends_the_spares_without_waiting_for_the_keep_alive() {
    let _alone = alone();
    let before = settled_thread_count();
    let server = server_keeping_spares_for(Duration::from_secs(600));
    let client = join_all(&server, "s");
    closed_and_parked(&server, client);
    server.endpoint.shutdown();
    assert_eq!(server.endpoint.stats().spare_channel_threads, 0);
    drop(server);
    let gone = wait_until(Duration::from_secs(5), || thread_count() == before);
    assert!(gone, "threads {} (expected {before}): {:?}", thread_count(), thread_names());
}

#[test]
fn a_zero_keep_alive_ends_each_thread_with_its_channel() {
    let _alone = alone();
    let server = server_keeping_spares_for(Duration::ZERO);
    let before = settled_thread_count();
    let client = join_all(&server, "z");
    client.close().unwrap();
    let gone = wait_until(Duration::from_secs(5), || thread_count() == before);
    assert!(gone, "threads {} (expected {before}): {:?}", thread_count(), thread_names());
    assert_eq!(server.endpoint.stats().spare_channel_threads, 0);
}

#[test]
fn spares_count_toward_the_channel_thread_cap() {
    let _alone = alone();
    let server = server()
        .endpoint(|e| e.channel_thread_keep_alive(Duration::from_secs(600)).max_channel_threads(CHANNELS))
        .start();
    let client = join_all(&server, "cap");
    closed_and_parked(&server, client);
    // The cap's threads are all spares: the same number of joins runs on them...
    let mut client = join_all(&server, "again");
    // ...and one more is refused, as with the cap's threads all running channels.
    let refused = client.join("room:one-more", json!({})).unwrap();
    assert_eq!(
        (refused.status.as_str(), json_of(&refused.response)),
        ("error", json!({"reason": "too many channel threads"}))
    );
}
