//! `ChannelHandle::call` and `Channel::handle_call`: a synchronous request answered
//! on the channel's thread, and each way a call fails (timeout, a channel that has
//! ended or ends before answering, a full mailbox, a wrong answer type, a channel
//! calling itself).

mod common;

use common::*;
use crossbeam_channel::{Receiver, Sender};
use phx_channels::testing::{self, TestChannel};
use phx_channels::{
    CallError, CallReply, Channel, Endpoint, Handled, JoinResult, Payload, Socket, StopReason, UserSocket,
};
use serde_json::json;
use std::any::Any;
use std::time::{Duration, Instant};

const SECOND: Duration = Duration::from_secs(1);

/// What [`Counter`] answers.
enum Ask {
    /// Add one; answers the new count.
    Add,
    /// Answers after sleeping this long.
    Slow(Duration),
    /// Answers, then stops normally.
    Finish,
    /// Stops without answering.
    Quit,
    /// Panics.
    Boom,
}

struct Counter {
    count: u64,
    /// `block` waits here until the test sends something.
    gate: Receiver<()>,
    /// Told when `block` starts waiting.
    blocked: Sender<()>,
}

impl Channel for Counter {
    fn join(&mut self, _topic: &str, _payload: &Payload, _socket: &mut Socket) -> JoinResult {
        Ok(Payload::empty())
    }

    fn handle_in(&mut self, event: &str, _payload: Payload, socket: &mut Socket) -> Handled {
        match event {
            "block" => {
                self.blocked.send(()).unwrap();
                let _ = self.gate.recv_timeout(Duration::from_secs(10));
                Handled::ok()
            }
            "call_self" => match socket.handle().call::<u64>(Ask::Add, SECOND) {
                Err(err) => Handled::reply_error(json!({"error": err.to_string()})),
                Ok(_) => Handled::ok(),
            },
            other => Handled::unhandled(other),
        }
    }

    fn handle_call(&mut self, request: Box<dyn Any + Send>, _socket: &mut Socket) -> CallReply {
        let Ok(ask) = request.downcast::<Ask>() else { return CallReply::unhandled() };
        match *ask {
            Ask::Add => {
                self.count += 1;
                CallReply::reply(self.count)
            }
            Ask::Slow(time) => {
                std::thread::sleep(time);
                CallReply::reply(self.count)
            }
            Ask::Finish => CallReply::stop_with_reply(StopReason::Normal, "bye"),
            Ask::Quit => CallReply::stop(StopReason::Normal),
            Ask::Boom => panic!("handle_call panics on purpose"),
        }
    }
}

/// An in-memory endpoint with `counter:*` (mailboxes of `inbox_limit`), and the
/// ends of the counters' gate.
struct Fixture {
    endpoint: phx_channels::Endpoint,
    open_gate: Sender<()>,
    blocked: Receiver<()>,
}

fn fixture(inbox_limit: usize) -> Fixture {
    let (open_gate, gate) = crossbeam_channel::unbounded();
    let (told, blocked) = crossbeam_channel::unbounded();
    let socket = UserSocket::new().channel("counter:*", move |_| Counter {
        count: 0,
        gate: gate.clone(),
        blocked: told.clone(),
    });
    let builder = Endpoint::builder().channel_inbox_limit(inbox_limit).socket("/socket", socket);
    Fixture { endpoint: testing::endpoint(builder).unwrap(), open_gate, blocked }
}

impl Fixture {
    fn join(&self, topic: &str) -> TestChannel {
        let socket = testing::connect(&self.endpoint, "/socket", json!({})).unwrap();
        socket.set_timeouts(TEST_TIMEOUTS);
        socket.join(topic, json!({})).unwrap().1
    }
}

#[test]
fn a_call_is_answered_by_handle_call_on_the_channels_thread() {
    let fixture = fixture(100);
    let counter = fixture.join("counter:1");
    let handle = counter.handle();
    assert_eq!(handle.call::<u64>(Ask::Add, SECOND), Ok(1));
    // From another thread, as from any.
    let other = handle.clone();
    assert_eq!(std::thread::spawn(move || other.call::<u64>(Ask::Add, SECOND)).join().unwrap(), Ok(2));
    assert!(matches!(handle.call::<String>(Ask::Add, SECOND), Err(CallError::UnexpectedReply { .. })));
    assert_eq!(handle.call::<u64>(Ask::Add, SECOND), Ok(4), "the mistyped call ran all the same");
}

#[test]
fn a_slow_answer_is_a_timeout_and_the_channel_goes_on() {
    let fixture = fixture(100);
    let counter = fixture.join("counter:slow");
    let handle = counter.handle();
    let began = Instant::now();
    assert_eq!(
        handle.call::<u64>(Ask::Slow(Duration::from_millis(300)), Duration::from_millis(50)),
        Err(CallError::Timeout)
    );
    assert!(began.elapsed() < Duration::from_millis(300));
    assert_eq!(handle.call::<u64>(Ask::Add, Duration::from_secs(5)), Ok(1));
}

#[test]
fn a_channel_that_has_ended_or_ends_without_answering_is_channel_ended() {
    let fixture = fixture(100);
    let counter = fixture.join("counter:end");
    let handle = counter.handle();
    assert_eq!(handle.call::<&str>(Ask::Finish, SECOND), Ok("bye"));
    counter.assert_push("phx_close");
    assert!(wait_until(Duration::from_secs(5), || handle.call::<u64>(Ask::Add, SECOND) == Err(CallError::ChannelEnded)));

    let counter = fixture.join("counter:quit");
    assert_eq!(counter.handle().call::<u64>(Ask::Quit, SECOND), Err(CallError::ChannelEnded));
    counter.assert_push("phx_close");

    let counter = fixture.join("counter:left");
    let leave = counter.leave();
    counter.assert_reply(&leave, "ok");
    assert!(wait_until(Duration::from_secs(5), || {
        counter.handle().call::<u64>(Ask::Add, SECOND) == Err(CallError::ChannelEnded)
    }));
}

#[test]
fn a_panic_in_handle_call_is_a_crash_and_the_caller_learns_the_channel_ended() {
    let fixture = fixture(100);
    let counter = fixture.join("counter:boom");
    assert_eq!(counter.handle().call::<u64>(Ask::Boom, SECOND), Err(CallError::ChannelEnded));
    assert_eq!(counter.assert_push("phx_error"), json!({"reason": "channel_crash"}).into());

    // A request the channel does not answer crashes it too (the default handle_call's way).
    let counter = fixture.join("counter:unknown");
    assert_eq!(counter.handle().call::<u64>("what?", SECOND), Err(CallError::ChannelEnded));
    counter.assert_push("phx_error");
}

#[test]
fn a_channel_without_handle_call_crashes_when_called() {
    let server = in_memory();
    let room = server.test_joined("room:nocall");
    assert_eq!(room.handle().call::<u64>(Ask::Add, SECOND), Err(CallError::ChannelEnded));
    room.assert_push("phx_error");
    assert!(server.terminations("room:nocall").is_empty());
}

#[test]
fn a_full_mailbox_is_overloaded() {
    let fixture = fixture(1);
    let counter = fixture.join("counter:full");
    counter.push("block", json!({}));
    fixture.blocked.recv_timeout(Duration::from_secs(5)).unwrap();
    counter.handle().send(()).unwrap(); // the one message the mailbox holds
    assert_eq!(counter.handle().call::<u64>(Ask::Add, SECOND), Err(CallError::Overloaded));
    fixture.open_gate.send(()).unwrap();
}

#[test]
fn a_channel_calling_itself_is_told_so_at_once() {
    let fixture = fixture(100);
    let counter = fixture.join("counter:self");
    let began = Instant::now();
    let call = counter.push("call_self", json!({}));
    assert_eq!(counter.assert_reply(&call, "error"), json!({"error": "a channel cannot call itself"}).into());
    assert!(began.elapsed() < SECOND);
}
