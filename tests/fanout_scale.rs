//! The fastlane at scale: one broadcast to 1,000 subscribers of one topic, split across
//! V1 and V2 connections, costs exactly two encodes (P74).

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
