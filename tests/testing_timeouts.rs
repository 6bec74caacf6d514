//! `testing::set_default_timeouts`: every test connection opened after it starts with
//! those timeouts. A binary of its own, since the default is the whole process's.

mod common;

use common::*;
use phx_channels::testing::{self, Timeouts};
use serde_json::json;
use std::time::{Duration, Instant};

#[test]
fn new_test_connections_start_with_the_process_default() {
    let server = in_memory();
    let connect = || testing::connect(&server.endpoint, "/socket", json!({})).unwrap();
    let before = connect();
    assert_eq!(before.timeouts(), Timeouts::default());
    let slow = Timeouts { assert: Duration::from_secs(3), refute: Duration::from_millis(300), ..Timeouts::default() };
    testing::set_default_timeouts(slow);
    assert_eq!(testing::default_timeouts(), slow);
    let after = connect();
    assert_eq!(after.timeouts(), slow);
    assert_eq!(before.timeouts(), Timeouts::default(), "open connections keep theirs");
    // A refute watches for the default's whole time.
    let (_, room) = after.join("room:t", json!({})).unwrap();
    let began = Instant::now();
    room.refute_push("nothing");
    assert!(began.elapsed() >= Duration::from_millis(300));
}
