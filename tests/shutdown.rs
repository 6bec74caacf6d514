//! Stopping the endpoint: drain, close codes, and what is left afterwards (PROTOCOL.md
//! 5.11, P81).

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

fn close_code(client: &mut phx_channels::client::Client) -> Option<u16> {
    client.wait_close().expect("a close frame").map(|(code, _)| code)
}

#[test]
fn shutdown_terminates_channels_with_shutdown_draining_and_closes_connections_with_1012() {
    // P81, P79
    let server = start();
    let mut v2 = server.joined("room:d1");
    assert_eq!(v2.join("room:d2", json!({})).unwrap().status, "ok");
    let mut v1 = server.client_v1();
    assert_eq!(v1.join("room:d1", json!({})).unwrap().status, "ok");
    let mut idle = server.client();
    server.endpoint.shutdown();
    // shutdown returns once every channel has terminated.
    assert_eq!(server.terminations("room:d1"), ["terminate room:d1 {shutdown, draining}"; 2]);
    assert_eq!(server.terminations("room:d2"), ["terminate room:d2 {shutdown, draining}"]);
    assert_eq!(server.endpoint.stats().channel_threads, 0);
    for client in [&mut v2, &mut v1, &mut idle] {
        assert_eq!(close_code(client), Some(1012));
    }
}

#[test]
fn after_shutdown_no_connection_is_accepted() {
    // P81
    let server = start();
    server.endpoint.shutdown();
    let attempt = server.builder().timeout(Duration::from_secs(2)).connect();
    assert!(attempt.is_err(), "a connection was accepted after shutdown");
}

#[test]
fn shutdown_is_idempotent_and_wait_returns_once_it_is_done() {
    // P81
    let server = start();
    let waiter = {
        let endpoint = server.endpoint.clone();
        std::thread::spawn(move || endpoint.wait())
    };
    let _client = server.joined("room:w");
    server.endpoint.shutdown();
    server.endpoint.shutdown();
    assert!(wait_until(Duration::from_secs(5), || waiter.is_finished()), "wait() did not return");
    waiter.join().unwrap();
}
