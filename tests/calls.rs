//! `ChannelHandle::call` and `Channel::handle_call`: a synchronous request answered
//! on the channel's thread, and each way a call fails (timeout, a channel that has
//! ended or ends before answering, a full mailbox, a wrong answer type, a channel
//! calling itself), and answers deferred with `CallReply::noreply` and `CallFrom`.

mod common;

use common::*;
use crossbeam_channel::{Receiver, Sender};
use phx_channels::testing::{self, TestChannel};
use phx_channels::{
    CallError, CallFrom, CallReply, Channel, Endpoint, Flow, Handled, Info, JoinResult, Payload, Socket, StopReason,
    UserSocket,
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
    /// Answers later, from `handle_info`, when a timer fires.
    AfterTimer,
    /// Answers later, from a thread of its own.
    FromThread,
    /// Keeps the caller until the client pushes `release` (or the channel ends).
    Hold,
    /// Takes the caller, then drops it unanswered.
    DropCaller,
    /// Returns `noreply` without taking the caller.
    NoReplyUntaken,
}

/// The timer's message for [`Ask::AfterTimer`].
struct AnswerWaiting;

struct Counter {
    count: u64,
    /// `block` waits here until the test sends something.
    gate: Receiver<()>,
    /// Told when `block` starts waiting.
    blocked: Sender<()>,
    /// Callers kept for later.
    waiting: Vec<CallFrom>,
    /// Told when [`Ask::Hold`] has kept its caller.
    held: Sender<()>,
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
            "release" => {
                let delivered: Vec<bool> = self.waiting.drain(..).map(|caller| caller.reply(self.count)).collect();
                Handled::reply_ok(json!({"delivered": delivered}))
            }
            other => Handled::unhandled(other),
        }
    }

    fn handle_info(&mut self, info: Info, _socket: &mut Socket) -> Flow {
        assert!(info.downcast::<AnswerWaiting>().is_ok());
        for caller in self.waiting.drain(..) {
            caller.reply(String::from("answered from handle_info"));
        }
        Flow::Continue
    }

    fn handle_call(&mut self, request: Box<dyn Any + Send>, socket: &mut Socket) -> CallReply {
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
            Ask::AfterTimer => {
                self.waiting.extend(socket.take_caller());
                socket.send_after(Duration::from_millis(20), AnswerWaiting);
                CallReply::noreply()
            }
            Ask::FromThread => {
                let caller = socket.take_caller().unwrap();
                let channel_thread = std::thread::current().id();
                std::thread::spawn(move || {
                    assert_ne!(std::thread::current().id(), channel_thread);
                    caller.reply(String::from("answered from another thread"))
                });
                CallReply::noreply()
            }
            Ask::Hold => {
                self.waiting.extend(socket.take_caller());
                assert!(socket.take_caller().is_none(), "a caller is taken once");
                self.held.send(()).unwrap();
                CallReply::noreply()
            }
            Ask::DropCaller => {
                drop(socket.take_caller());
                CallReply::noreply()
            }
            Ask::NoReplyUntaken => CallReply::noreply(),
        }
    }
}

/// An in-memory endpoint with `counter:*` (mailboxes of `inbox_limit`), and the
/// ends of the counters' gate.
struct Fixture {
    endpoint: phx_channels::Endpoint,
    open_gate: Sender<()>,
    blocked: Receiver<()>,
    /// A notice each time [`Ask::Hold`] has kept its caller.
    held: Receiver<()>,
}

fn fixture(inbox_limit: usize) -> Fixture {
    let (open_gate, gate) = crossbeam_channel::unbounded();
    let (told, blocked) = crossbeam_channel::unbounded();
    let (kept, held) = crossbeam_channel::unbounded();
    let socket = UserSocket::new().channel("counter:*", move |_| Counter {
        count: 0,
        gate: gate.clone(),
        blocked: told.clone(),
        waiting: Vec::new(),
        held: kept.clone(),
    });
    let builder = Endpoint::builder().channel_inbox_limit(inbox_limit).socket("/socket", socket);
    Fixture { endpoint: testing::endpoint(builder).unwrap(), open_gate, blocked, held }
}

impl Fixture {
    /// Calls [`Ask::Hold`] on a thread of its own with `timeout`, and returns once the
    /// channel has kept the caller.
    fn hold(&self, counter: &TestChannel, timeout: Duration) -> std::thread::JoinHandle<Result<u64, CallError>> {
        let handle = counter.handle();
        let caller = std::thread::spawn(move || handle.call::<u64>(Ask::Hold, timeout));
        self.held.recv_timeout(Duration::from_secs(5)).expect("handle_call kept the caller");
        caller
    }

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

#[test]
fn a_deferred_call_is_answered_from_handle_info_after_a_timer() {
    let fixture = fixture(100);
    let counter = fixture.join("counter:timer");
    assert_eq!(
        counter.handle().call::<String>(Ask::AfterTimer, Duration::from_secs(5)),
        Ok("answered from handle_info".to_owned())
    );
}

#[test]
fn a_deferred_call_is_answered_from_another_thread() {
    let fixture = fixture(100);
    let counter = fixture.join("counter:thread");
    assert_eq!(
        counter.handle().call::<String>(Ask::FromThread, Duration::from_secs(5)),
        Ok("answered from another thread".to_owned())
    );
    assert_eq!(counter.handle().call::<u64>(Ask::Add, SECOND), Ok(1), "the channel goes on");
}

#[test]
fn a_channel_answers_other_calls_while_one_waits_and_answers_it_from_handle_in() {
    let fixture = fixture(100);
    let counter = fixture.join("counter:hold");
    let held = fixture.hold(&counter, Duration::from_secs(10));
    assert_eq!(counter.handle().call::<u64>(Ask::Add, SECOND), Ok(1));
    assert_eq!(counter.handle().call::<u64>(Ask::Add, SECOND), Ok(2));
    let release = counter.push("release", json!({}));
    assert_eq!(counter.assert_reply(&release, "ok"), json!({"delivered": [true]}).into());
    assert_eq!(held.join().unwrap(), Ok(2));
}

#[test]
fn a_deferred_call_times_out_and_a_late_answer_is_harmless() {
    let fixture = fixture(100);
    let counter = fixture.join("counter:late");
    let held = fixture.hold(&counter, Duration::from_millis(50));
    assert_eq!(held.join().unwrap(), Err(CallError::Timeout));
    let release = counter.push("release", json!({}));
    assert_eq!(counter.assert_reply(&release, "ok"), json!({"delivered": [false]}).into());
    assert_eq!(counter.handle().call::<u64>(Ask::Add, SECOND), Ok(1), "the channel goes on");
}

#[test]
fn a_channel_that_ends_with_a_deferred_call_is_channel_ended_at_once() {
    // The callers would wait a minute; they hear at once, so the test ends long before.
    const MINUTE: Duration = Duration::from_secs(60);
    let fixture = fixture(100);

    let counter = fixture.join("counter:leaves");
    let held = fixture.hold(&counter, MINUTE);
    let leave = counter.leave();
    counter.assert_reply(&leave, "ok");
    assert_eq!(held.join().unwrap(), Err(CallError::ChannelEnded));

    let counter = fixture.join("counter:finishes");
    let held = fixture.hold(&counter, MINUTE);
    assert_eq!(counter.handle().call::<&str>(Ask::Finish, SECOND), Ok("bye"));
    assert_eq!(held.join().unwrap(), Err(CallError::ChannelEnded));

    let counter = fixture.join("counter:crashes");
    let held = fixture.hold(&counter, MINUTE);
    assert_eq!(counter.handle().call::<u64>(Ask::Boom, SECOND), Err(CallError::ChannelEnded));
    assert_eq!(held.join().unwrap(), Err(CallError::ChannelEnded));
    counter.assert_push("phx_error");
}

#[test]
fn a_deferred_caller_dropped_unanswered_is_channel_ended_at_once() {
    let fixture = fixture(100);
    let counter = fixture.join("counter:drops");
    let handle = counter.handle();
    let minute = Duration::from_secs(60);
    assert_eq!(handle.call::<u64>(Ask::DropCaller, minute), Err(CallError::ChannelEnded));
    assert_eq!(handle.call::<u64>(Ask::NoReplyUntaken, minute), Err(CallError::ChannelEnded));
    assert_eq!(handle.call::<u64>(Ask::Add, SECOND), Ok(1), "the channel goes on");
}
