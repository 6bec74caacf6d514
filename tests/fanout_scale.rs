//! The fastlane at scale: one broadcast to 1,000 subscribers of one topic, split across
//! V1 and V2 connections, costs exactly two encodes (P74); a large broadcast sent alone
//! is written partly by its publisher and partly, in parallel, by the reactors.

mod common;

use common::*;
use phx_channels::client::Client;
use serde_json::json;
use std::time::{Duration, Instant};

#[test]
fn a_broadcast_to_a_thousand_v1_and_v2_subscribers_is_encoded_exactly_twice() {
    // P74
    let server = start();
    let began = Instant::now();
    let mut clients: Vec<Client> = (0..1000)
        .map(|i| {
            let vsn = if i % 2 == 0 { "1.0.0" } else { "2.0.0" };
            let mut client = server.builder().vsn(Some(vsn)).timeout(Duration::from_secs(20)).connect().unwrap();
            assert_eq!(client.join("room:crowd", json!({})).unwrap().status, "ok");
            client
        })
        .collect();
    assert_eq!(server.endpoint.pubsub().subscriber_count("room:crowd"), 1000);
    let before = server.endpoint.stats();
    server.endpoint.broadcast("room:crowd", "news", json!({"headline": "fastlane"})).unwrap();
    let after = server.endpoint.stats();
    assert_eq!(after.broadcast_encodes - before.broadcast_encodes, 2, "one encode per wire format");
    assert_eq!(after.fastlane_deliveries - before.fastlane_deliveries, 1000);
    for client in &mut clients {
        let msg = as_message(client.recv().unwrap());
        assert_eq!((msg.event.as_str(), json_of(&msg.payload)), ("news", json!({"headline": "fastlane"})));
        assert_eq!((msg.join_ref, msg.msg_ref), (None, None));
    }
    assert!(server.events().starting_with("handle_out").is_empty());
    drop(clients);
    assert!(wait_until(Duration::from_secs(20), || server.endpoint.stats().channel_threads == 0));
    eprintln!("1000 subscribers: {:?}", began.elapsed());
}

#[test]
fn a_large_lone_broadcast_is_shared_between_its_publisher_and_the_reactors() {
    let server = start();
    let mut clients: Vec<Client> = (0..600).map(|_| server.joined("room:share")).collect();
    // Let every reactor finish with the join replies, so each connection is idle.
    std::thread::sleep(Duration::from_millis(100));
    let before = server.endpoint.stats();
    server.endpoint.broadcast("room:share", "news", json!({"n": 1})).unwrap();
    for client in &mut clients {
        let msg = as_message(client.recv().unwrap());
        assert_eq!((msg.event.as_str(), json_of(&msg.payload)), ("news", json!({"n": 1})));
    }
    let after = server.endpoint.stats();
    assert_eq!(after.fastlane_deliveries - before.fastlane_deliveries, 600);
    // The publisher writes its part (one per core, the reactors taking the rest) itself.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let direct = after.fastlane_direct - before.fastlane_direct;
    assert!(direct > 0, "nothing was written directly");
    assert!(direct <= 600u64.div_ceil(cores), "the publisher wrote {direct} of 600 itself on {cores} cores");
}
