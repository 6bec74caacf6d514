//! A joined channel as a test drives it: Phoenix.ChannelTest's socket after a join,
//! with its pushes and its assertions.

use super::pattern::PayloadPattern;
use super::received::{describe_broadcast, is_push, is_reply, list, payload};
use super::test_socket::close;
use super::wire::{Joined, Wire};
use crate::error::Error;
use crate::message::{Broadcast, Message, PHX_LEAVE, Ref};
use crate::payload::Payload;
use crate::pubsub::{PubSub, Subscription};
use crate::serializer::ServerMessage;
use crate::socket::ChannelHandle;
use crate::subscriber_id::SubscriberId;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A channel joined by a test, running on its own thread as for any client.
///
/// What the channel sends its client (pushes, replies, `phx_close`, `phx_error`, the
/// broadcasts it gets) is checked with `assert_push` and `assert_reply`; with
/// [`subscribe_and_join`](super::TestSocket::subscribe_and_join), the topic's
/// broadcasts as a subscriber sees them are checked with `assert_broadcast`. Each
/// assertion waits up to [`Timeouts::assert`](super::Timeouts::assert), takes the first
/// match (leaving the rest, in order, for later assertions) and returns its payload, or
/// panics with a list of what did arrive.
///
/// ```
/// use phx_channels::testing;
/// use phx_channels::{Channel, Endpoint, Handled, JoinResult, Payload, Socket, UserSocket};
/// use serde_json::json;
///
/// struct Room;
///
/// impl Channel for Room {
///     fn join(&mut self, _topic: &str, _payload: &Payload, _socket: &mut Socket) -> JoinResult {
///         Ok(Payload::empty())
///     }
///
///     fn handle_in(&mut self, event: &str, payload: Payload, socket: &mut Socket) -> Handled {
///         match event {
///             "shout" => {
///                 socket.broadcast("shout", payload).ok();
///                 Handled::NoReply
///             }
///             _ => Handled::unhandled(event),
///         }
///     }
/// }
///
/// let endpoint = testing::endpoint(Endpoint::builder().socket("/socket", UserSocket::new().channel("room:*", |_| Room)))?;
/// let socket = testing::connect(&endpoint, "/socket", json!({}))?;
/// let (_, room) = socket.subscribe_and_join("room:lobby", json!({}))?;
/// room.push("shout", json!({"body": "hi"}));
/// assert_eq!(room.assert_broadcast("shout"), json!({"body": "hi"}).into());
/// assert_eq!(room.assert_push("shout"), json!({"body": "hi"}).into()); // the fastlane's copy
///
/// // From the test, as another subscriber: the channel gets it, the test does not.
/// room.broadcast_from("shout", json!({"body": "from the test"}))?;
/// room.assert_push("shout");
/// room.refute_broadcast("shout");
///
/// room.push("whisper", json!({})); // no handle_in clause: the channel crashes
/// room.assert_push("phx_error");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TestChannel {
    wire: Arc<Wire>,
    pubsub: PubSub,
    topic: String,
    join_ref: Ref,
    handle: ChannelHandle,
    subscription: Option<Subscription>,
    /// Broadcasts received on the subscription and not yet matched.
    broadcasts: Mutex<VecDeque<Broadcast>>,
    /// Whom [`broadcast_from`](TestChannel::broadcast_from) skips: the test.
    from: SubscriberId,
}

impl fmt::Debug for TestChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestChannel")
            .field("topic", &self.topic)
            .field("join_ref", &self.join_ref)
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

impl TestChannel {
    pub(super) fn new(
        wire: Arc<Wire>,
        pubsub: PubSub,
        topic: &str,
        join_ref: Ref,
        joined: Joined,
        subscription: Option<Subscription>,
    ) -> TestChannel {
        let from = subscription.as_ref().map_or_else(|| pubsub.next_id(), Subscription::id);
        TestChannel {
            wire,
            pubsub,
            topic: topic.to_owned(),
            join_ref,
            handle: ChannelHandle::new(joined.inbox, joined.instance, topic.into()),
            subscription,
            broadcasts: Mutex::new(VecDeque::new()),
            from,
        }
    }

    /// The channel's topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The join's ref: the channel's join ref.
    pub fn join_ref(&self) -> &Ref {
        &self.join_ref
    }

    /// The channel's handle, to send it messages for `handle_info` or call it (what a
    /// Phoenix test does with `socket.channel_pid`).
    pub fn handle(&self) -> ChannelHandle {
        self.handle.clone()
    }

    /// Pushes `event` to the channel, as its client would, for `handle_in`. Returns
    /// the message's ref, for [`assert_reply`](TestChannel::assert_reply).
    pub fn push(&self, event: &str, payload: impl Into<Payload>) -> Ref {
        let msg_ref = self.wire.next_ref();
        self.wire.send(&Message {
            join_ref: Some(self.join_ref.clone()),
            msg_ref: Some(msg_ref.clone()),
            topic: self.topic.clone(),
            event: event.to_owned(),
            payload: payload.into(),
        });
        msg_ref
    }

    /// Leaves the channel as its client would (`phx_leave`): it replies `ok`, sends
    /// `phx_close` and terminates with `{shutdown, left}`. Returns the leave's ref.
    pub fn leave(&self) -> Ref {
        self.push(PHX_LEAVE, serde_json::json!({}))
    }

    /// Closes the connection, as [`TestSocket::close`](super::TestSocket::close).
    ///
    /// # Panics
    ///
    /// When a channel has not ended within [`Timeouts::sync`](super::Timeouts::sync).
    #[track_caller]
    pub fn close(&self) {
        close(&self.wire);
    }

    /// Broadcasts `event` on the channel's topic from the test: every subscriber gets
    /// it (the channel too, through `handle_out` if it intercepts the event) but the
    /// test's own subscription. Phoenix.ChannelTest's `broadcast_from/3`.
    pub fn broadcast_from(&self, event: &str, payload: impl Into<Payload>) -> Result<(), Error> {
        self.pubsub.broadcast_from(self.from, &self.topic, event, payload)
    }

    /// Asserts the channel replied `status` to the message with `msg_ref`; returns the
    /// response.
    ///
    /// # Panics
    ///
    /// When no such reply arrives in time; the message lists what did.
    #[track_caller]
    pub fn assert_reply(&self, msg_ref: &Ref, status: &str) -> Payload {
        self.assert_reply_with(msg_ref, status, PayloadPattern::anything())
    }

    /// Asserts the channel replied `status` to the message with `msg_ref`, with a
    /// response that matches `pattern` (see [`PayloadPattern`]); returns the response.
    ///
    /// ```
    /// # use phx_channels::testing;
    /// # use phx_channels::{Channel, Endpoint, Handled, JoinResult, Payload, Socket, UserSocket};
    /// use phx_channels::testing::matching;
    /// use serde_json::json;
    /// # struct Echo;
    /// # impl Channel for Echo {
    /// #     fn join(&mut self, _: &str, _: &Payload, _: &mut Socket) -> JoinResult { Ok(Payload::empty()) }
    /// #     fn handle_in(&mut self, _: &str, payload: Payload, _: &mut Socket) -> Handled { Handled::reply_ok(payload) }
    /// # }
    /// # let endpoint = testing::endpoint(Endpoint::builder().socket("/socket", UserSocket::new().channel("echo", |_| Echo)))?;
    /// # let (_, echo) = testing::connect(&endpoint, "/socket", json!({}))?.join("echo", json!({}))?;
    /// let sent = echo.push("say", json!({"id": 7, "body": "hi"}));
    /// echo.assert_reply_with(&sent, "ok", json!({"id": 7}));
    /// # let sent = echo.push("say", json!({"n": 3}));
    /// # echo.assert_reply_with(&sent, "ok", matching(|p| p.get("n").and_then(|n| n.as_u64()) == Some(3)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Panics
    ///
    /// When no such reply arrives in time; the message lists what did.
    #[track_caller]
    pub fn assert_reply_with(&self, msg_ref: &Ref, status: &str, pattern: impl Into<PayloadPattern>) -> Payload {
        let pattern = pattern.into();
        let within = self.wire.timeouts().assert;
        let pick = |m: &ServerMessage| is_reply(m, &self.topic, msg_ref, Some(status)) && pattern.matches(payload(m));
        match self.wire.wait(within, |received| received.take(pick)) {
            Some(ServerMessage::Reply(reply)) => reply.response,
            _ => panic!(
                "assert_reply: no {status:?} reply{pattern} to ref {} on {} within {within:?}; received:\n{}",
                &**msg_ref,
                self.topic,
                self.wire.report()
            ),
        }
    }

    /// Asserts the channel pushed `event` to its client (a push, a broadcast it let
    /// through, `phx_close`, `phx_error`); returns the payload.
    ///
    /// # Panics
    ///
    /// When no such push arrives in time; the message lists what did.
    #[track_caller]
    pub fn assert_push(&self, event: &str) -> Payload {
        self.assert_push_with(event, PayloadPattern::anything())
    }

    /// Asserts the channel pushed `event` with a payload that matches `pattern` (see
    /// [`PayloadPattern`]); returns the payload. Pushes of `event` that do not match
    /// are skipped and stay for later assertions, as with Phoenix's
    /// `assert_push "changed", %{"by" => "bob"}`.
    ///
    /// # Panics
    ///
    /// When no such push arrives in time; the message lists what did.
    #[track_caller]
    pub fn assert_push_with(&self, event: &str, pattern: impl Into<PayloadPattern>) -> Payload {
        let pattern = pattern.into();
        let within = self.wire.timeouts().assert;
        let pick = |m: &ServerMessage| is_push(m, &self.topic, &self.join_ref, event) && pattern.matches(payload(m));
        match self.wire.wait(within, |received| received.take(pick)) {
            Some(ServerMessage::Message(msg)) => msg.payload,
            _ => panic!(
                "assert_push: no push of {event:?}{pattern} on {} within {within:?}; received:\n{}",
                self.topic,
                self.wire.report()
            ),
        }
    }

    /// Asserts the topic's subscribers got a broadcast of `event`; returns the payload.
    ///
    /// # Panics
    ///
    /// When no such broadcast arrives in time (the message lists those that did), and
    /// when the channel was joined without [`subscribe_and_join`](super::TestSocket::subscribe_and_join).
    #[track_caller]
    pub fn assert_broadcast(&self, event: &str) -> Payload {
        self.assert_broadcast_with(event, PayloadPattern::anything())
    }

    /// Asserts the topic's subscribers got a broadcast of `event` with a payload that
    /// matches `pattern` (see [`PayloadPattern`]); returns the payload. Phoenix's
    /// `assert_broadcast "changed", %{"by" => "bob"}`: broadcasts that do not match
    /// are skipped and stay for later assertions, so two users on a topic do not make
    /// a test depend on who broadcast first.
    ///
    /// ```
    /// # use phx_channels::testing;
    /// # use phx_channels::{Channel, Endpoint, Handled, JoinResult, Payload, Socket, UserSocket};
    /// use serde_json::json;
    /// # struct Board;
    /// # impl Channel for Board {
    /// #     fn join(&mut self, _: &str, _: &Payload, _: &mut Socket) -> JoinResult { Ok(Payload::empty()) }
    /// #     fn handle_in(&mut self, _: &str, payload: Payload, socket: &mut Socket) -> Handled {
    /// #         socket.broadcast("changed", payload).ok();
    /// #         Handled::NoReply
    /// #     }
    /// # }
    /// # let endpoint = testing::endpoint(Endpoint::builder().socket("/socket", UserSocket::new().channel("board", |_| Board)))?;
    /// # let socket = testing::connect(&endpoint, "/socket", json!({}))?;
    /// let (_, board) = socket.subscribe_and_join("board", json!({}))?;
    /// board.push("change", json!({"by": "ann", "to": 1}));
    /// board.push("change", json!({"by": "bob", "to": 2}));
    /// assert_eq!(board.assert_broadcast_with("changed", json!({"by": "bob"})), json!({"by": "bob", "to": 2}).into());
    /// board.assert_broadcast_with("changed", json!({"by": "ann"}));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Panics
    ///
    /// When no such broadcast arrives in time (the message lists those that did), and
    /// when the channel was joined without [`subscribe_and_join`](super::TestSocket::subscribe_and_join).
    #[track_caller]
    pub fn assert_broadcast_with(&self, event: &str, pattern: impl Into<PayloadPattern>) -> Payload {
        let pattern = pattern.into();
        let within = self.wire.timeouts().assert;
        match self.wait_broadcast(event, &pattern, within, true) {
            Some(broadcast) => broadcast.payload,
            None => panic!(
                "assert_broadcast: no broadcast of {event:?}{pattern} on {} within {within:?}; received:\n{}",
                self.topic,
                self.broadcast_report()
            ),
        }
    }

    /// Asserts the channel does not reply `status` to the message with `msg_ref`
    /// within [`Timeouts::refute`](super::Timeouts::refute).
    ///
    /// # Panics
    ///
    /// When such a reply arrives; the message shows it.
    #[track_caller]
    pub fn refute_reply(&self, msg_ref: &Ref, status: &str) {
        self.refute_reply_with(msg_ref, status, PayloadPattern::anything());
    }

    /// Asserts the channel does not reply `status` to the message with `msg_ref` with a
    /// response that matches `pattern` within [`Timeouts::refute`](super::Timeouts::refute).
    ///
    /// # Panics
    ///
    /// When such a reply arrives; the message shows it.
    #[track_caller]
    pub fn refute_reply_with(&self, msg_ref: &Ref, status: &str, pattern: impl Into<PayloadPattern>) {
        let pattern = pattern.into();
        let within = self.wire.timeouts().refute;
        let pick = |m: &ServerMessage| is_reply(m, &self.topic, msg_ref, Some(status)) && pattern.matches(payload(m));
        if let Some(found) = self.wire.wait(within, |received| received.find(pick)) {
            panic!(
                "refute_reply: the channel replied {status:?}{pattern} to ref {} on {}: {found}",
                &**msg_ref, self.topic
            );
        }
    }

    /// Asserts the channel does not push `event` within
    /// [`Timeouts::refute`](super::Timeouts::refute).
    ///
    /// # Panics
    ///
    /// When such a push arrives; the message shows it.
    #[track_caller]
    pub fn refute_push(&self, event: &str) {
        self.refute_push_with(event, PayloadPattern::anything());
    }

    /// Asserts the channel does not push `event` with a payload that matches `pattern`
    /// within [`Timeouts::refute`](super::Timeouts::refute).
    ///
    /// # Panics
    ///
    /// When such a push arrives; the message shows it.
    #[track_caller]
    pub fn refute_push_with(&self, event: &str, pattern: impl Into<PayloadPattern>) {
        let pattern = pattern.into();
        let within = self.wire.timeouts().refute;
        let pick = |m: &ServerMessage| is_push(m, &self.topic, &self.join_ref, event) && pattern.matches(payload(m));
        if let Some(found) = self.wire.wait(within, |received| received.find(pick)) {
            panic!("refute_push: the channel pushed {event:?}{pattern} on {}: {found}", self.topic);
        }
    }

    /// Asserts no broadcast of `event` reaches the topic's subscribers within
    /// [`Timeouts::refute`](super::Timeouts::refute).
    ///
    /// # Panics
    ///
    /// When such a broadcast arrives (the message shows it), and when the channel was
    /// joined without [`subscribe_and_join`](super::TestSocket::subscribe_and_join).
    #[track_caller]
    pub fn refute_broadcast(&self, event: &str) {
        self.refute_broadcast_with(event, PayloadPattern::anything());
    }

    /// Asserts no broadcast of `event` with a payload that matches `pattern` reaches
    /// the topic's subscribers within [`Timeouts::refute`](super::Timeouts::refute).
    ///
    /// # Panics
    ///
    /// When such a broadcast arrives (the message shows it), and when the channel was
    /// joined without [`subscribe_and_join`](super::TestSocket::subscribe_and_join).
    #[track_caller]
    pub fn refute_broadcast_with(&self, event: &str, pattern: impl Into<PayloadPattern>) {
        let pattern = pattern.into();
        let within = self.wire.timeouts().refute;
        if let Some(found) = self.wait_broadcast(event, &pattern, within, false) {
            panic!("refute_broadcast: {}", describe_broadcast(&found));
        }
    }

    /// Waits for a broadcast of `event` that matches `pattern`, taking it if `take`.
    #[track_caller]
    fn wait_broadcast(&self, event: &str, pattern: &PayloadPattern, within: Duration, take: bool) -> Option<Broadcast> {
        let Some(subscription) = &self.subscription else {
            panic!("{} was joined without subscribe_and_join: the test sees none of its broadcasts", self.topic)
        };
        let deadline = Instant::now() + within;
        let mut kept = self.broadcasts.lock();
        loop {
            if let Some(at) = kept.iter().position(|b| b.event == event && pattern.matches(&b.payload)) {
                return if take { kept.remove(at) } else { Some(kept[at].clone()) };
            }
            match subscription.receiver().recv_deadline(deadline) {
                Ok(broadcast) => kept.push_back(broadcast),
                Err(_) => return None,
            }
        }
    }

    /// The broadcasts received and not matched, for a failure message.
    fn broadcast_report(&self) -> String {
        let mut kept = self.broadcasts.lock();
        if let Some(subscription) = &self.subscription {
            kept.extend(subscription.receiver().try_iter());
        }
        list(kept.iter().map(describe_broadcast).collect::<Vec<_>>().into_iter())
    }
}
