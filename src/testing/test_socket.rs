//! A connected test socket: Phoenix.ChannelTest's socket before a join.

use super::error::JoinError;
use super::received::is_reply;
use super::test_channel::TestChannel;
use super::timeouts::Timeouts;
use super::wire::Wire;
use crate::message::{Message, PHX_JOIN};
use crate::payload::Payload;
use crate::pubsub::PubSub;
use crate::serializer::ServerMessage;
use std::sync::Arc;

/// A client connection in memory, as [`testing::connect`](super::connect) or
/// [`testing::socket`](super::socket) made it: join channels through it.
///
/// Dropping it (and every [`TestChannel`] joined through it) closes the connection:
/// its channels terminate with `{shutdown, closed}`.
///
/// ```
/// use phx_channels::testing::{self, JoinError};
/// use phx_channels::{Channel, Endpoint, JoinResult, Payload, Socket, UserSocket};
/// use serde_json::json;
///
/// struct Private;
///
/// impl Channel for Private {
///     fn join(&mut self, _topic: &str, payload: &Payload, _socket: &mut Socket) -> JoinResult {
///         match payload.get("password").and_then(|p| p.as_str()) {
///             Some("secret") => Ok(Payload::empty()),
///             _ => Err(json!({"reason": "unauthorized"}).into()),
///         }
///     }
/// }
///
/// let endpoint = testing::endpoint(
///     Endpoint::builder().socket("/socket", UserSocket::new().channel("private:*", |_| Private)),
/// )?;
/// let socket = testing::connect(&endpoint, "/socket", json!({}))?;
/// let refused = socket.join("private:1", json!({})).err();
/// assert_eq!(refused, Some(JoinError::Refused(json!({"reason": "unauthorized"}).into())));
/// let (_reply, _channel) = socket.join("private:1", json!({"password": "secret"}))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TestSocket {
    wire: Arc<Wire>,
    pubsub: PubSub,
}

impl std::fmt::Debug for TestSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestSocket").finish_non_exhaustive()
    }
}

impl TestSocket {
    pub(super) fn new(wire: Arc<Wire>, pubsub: PubSub) -> TestSocket {
        TestSocket { wire, pubsub }
    }

    /// Joins `topic` with `payload`, as a client's `phx_join`: the channel runs on its
    /// own thread, as for any client. Returns the join's reply and the joined channel,
    /// or the refusal. Phoenix.ChannelTest's `join/3`.
    pub fn join(&self, topic: &str, payload: impl Into<Payload>) -> Result<(Payload, TestChannel), JoinError> {
        self.start(topic, payload.into(), false)
    }

    /// Subscribes the test to `topic`, then joins it: the topic's broadcasts are then
    /// visible to [`TestChannel::assert_broadcast`]. Phoenix.ChannelTest's
    /// `subscribe_and_join/3`.
    pub fn subscribe_and_join(
        &self,
        topic: &str,
        payload: impl Into<Payload>,
    ) -> Result<(Payload, TestChannel), JoinError> {
        self.start(topic, payload.into(), true)
    }

    fn start(&self, topic: &str, payload: Payload, subscribe: bool) -> Result<(Payload, TestChannel), JoinError> {
        let subscription = subscribe.then(|| self.pubsub.subscribe(topic));
        let join_ref = self.wire.next_ref();
        let msg = Message {
            join_ref: Some(join_ref.clone()),
            msg_ref: Some(join_ref.clone()),
            topic: topic.to_owned(),
            event: PHX_JOIN.to_owned(),
            payload,
        };
        self.wire.send(&msg);
        let reply = self
            .wire
            .wait(self.wire.timeouts().sync, |received| received.take(|msg| is_reply(msg, topic, &join_ref, None)));
        let Some(ServerMessage::Reply(reply)) = reply else {
            return Err(if self.wire.is_closed() { JoinError::Closed } else { JoinError::Timeout });
        };
        if reply.status != "ok" {
            return Err(JoinError::Refused(reply.response));
        }
        let joined = self.wire.joined(&join_ref).ok_or(JoinError::Closed)?;
        let channel = TestChannel::new(self.wire.clone(), self.pubsub.clone(), topic, join_ref, joined, subscription);
        Ok((reply.response, channel))
    }

    /// Closes the connection as a client that goes away: every channel joined through
    /// it terminates with `{shutdown, closed}`. Returns once they have all ended.
    /// Phoenix.ChannelTest's `close/1`.
    ///
    /// # Panics
    ///
    /// When a channel has not ended within [`Timeouts::sync`].
    #[track_caller]
    pub fn close(&self) {
        close(&self.wire);
    }

    /// Whether the connection has ended: closed by the test, by a `disconnect`
    /// broadcast on its socket id, as a slow consumer, or by the endpoint's shutdown.
    pub fn is_closed(&self) -> bool {
        self.wire.is_closed()
    }

    /// How long this connection's assertions and joins wait.
    pub fn timeouts(&self) -> Timeouts {
        self.wire.timeouts()
    }

    /// Sets how long this connection's assertions and joins wait, for the socket and
    /// every channel joined through it.
    pub fn set_timeouts(&self, timeouts: Timeouts) {
        self.wire.set_timeouts(timeouts);
    }
}

/// Closes a test connection and waits for its channels to end.
#[track_caller]
pub(super) fn close(wire: &Wire) {
    let within = wire.timeouts().sync;
    assert!(wire.close(within), "close: the connection's channels did not end within {within:?}");
}
