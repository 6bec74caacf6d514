//! `Socket::send_after`: a timer's message reaches `handle_info` on the channel's
//! thread after its delay, a cancelled one never does, and pending timers die with
//! their channel. (That every timer of an endpoint shares one thread is checked in
//! `resources.rs`, which counts threads.)

mod common;

use common::*;
use phx_channels::testing::{self, Timeouts};
use phx_channels::{Channel, Endpoint, Handled, JoinResult, Payload, Socket, UserSocket};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[test]
fn a_timer_reaches_handle_info_after_its_delay() {
    let server = in_memory();
    let room = server.test_joined("room:timer");
    let began = Instant::now();
    let set = room.push("send_after", json!({"ms": 80, "event": "ding", "payload": {"n": 1}}));
    room.assert_reply(&set, "ok");
    assert_eq!(room.assert_push("ding"), json!({"n": 1}).into());
    assert!(began.elapsed() >= Duration::from_millis(80), "fired after {:?}", began.elapsed());
}

#[test]
fn timers_fire_in_the_order_of_their_deadlines() {
    let server = in_memory();
    let room = server.test_joined("room:order");
    room.push("send_after", json!({"ms": 120, "event": "tick", "payload": {"n": 3}}));
    room.push("send_after", json!({"ms": 10, "event": "tick", "payload": {"n": 1}}));
    room.push("send_after", json!({"ms": 60, "event": "tick", "payload": {"n": 2}}));
    for n in 1..=3 {
        assert_eq!(room.assert_push("tick"), json!({"n": n}).into());
    }
}

#[test]
fn a_cancelled_timer_never_fires() {
    let server = in_memory();
    let socket = server.connect(json!({}));
    socket.set_timeouts(Timeouts { refute: Duration::from_millis(200), ..TEST_TIMEOUTS });
    let (_, room) = socket.join("room:cancel", json!({})).unwrap();
    let set = room.push("send_after_cancel", json!({"ms": 20, "event": "never"}));
    assert_eq!(room.assert_reply(&set, "ok"), json!({"cancelled": true}).into());
    room.refute_push("never");
}

/// Sets its flag when dropped: a timer's message that is dropped undelivered.
struct Dropped(Arc<AtomicBool>);

impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Starts an hour-long timer when it joins; `crash` crashes it.
struct Patient(Arc<AtomicBool>);

impl Channel for Patient {
    fn join(&mut self, _topic: &str, _payload: &Payload, socket: &mut Socket) -> JoinResult {
        socket.send_after(Duration::from_secs(3600), Dropped(self.0.clone()));
        Ok(Payload::empty())
    }

    fn handle_in(&mut self, event: &str, _payload: Payload, _socket: &mut Socket) -> Handled {
        Handled::unhandled(event)
    }
}

#[test]
fn pending_timers_die_with_their_channel_however_it_ends() {
    let flags: Vec<Arc<AtomicBool>> = (0..3).map(|_| Arc::default()).collect();
    let factory_flags = flags.clone();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let socket = UserSocket::new()
        .channel("patient:*", move |_| Patient(factory_flags[next.fetch_add(1, Ordering::SeqCst)].clone()));
    let endpoint = testing::endpoint(Endpoint::builder().socket("/socket", socket)).unwrap();
    let connect = || {
        let socket = testing::connect(&endpoint, "/socket", json!({})).unwrap();
        socket.set_timeouts(TEST_TIMEOUTS);
        socket
    };
    let dropped = |i: usize| wait_until(Duration::from_secs(5), || flags[i].load(Ordering::SeqCst));

    let (_, left) = connect().join("patient:left", json!({})).unwrap();
    assert!(!flags[0].load(Ordering::SeqCst));
    left.leave();
    left.assert_push("phx_close");
    assert!(dropped(0), "leaving dropped the timer");

    let (_, crashed) = connect().join("patient:crashed", json!({})).unwrap();
    crashed.push("anything", json!({}));
    crashed.assert_push("phx_error");
    assert!(dropped(1), "crashing dropped the timer");

    let (_, closed) = connect().join("patient:closed", json!({})).unwrap();
    closed.close();
    assert!(dropped(2), "closing the connection dropped the timer");
    endpoint.shutdown();
}
