//! What a channel's callbacks work with: the [`Socket`], plus the two handles that
//! cross threads, [`SocketRef`] (reply later) and [`ChannelHandle`] (send the channel a
//! message).

pub(crate) use crate::assigns::Assigns;
use crate::assigns::{AssignError, TypedAssigns};
use crate::call::{Call, CallError, CallFrom};
use crate::channel_runtime::ChannelRuntime;
use crate::error::Error;
use crate::inbox::{ChannelMsg, Inbox, InboxError};
use crate::info::Info;
use crate::intercepted::Intercepted;
use crate::message::{Broadcast, Ref, Reply};
use crate::payload::Payload;
use crate::presence::{Presence, PresenceError};
use crate::pubsub::{PubSub, Reach, SubscriptionId};
use crate::serializer::{Frame, Serializer};
use crate::stop_reason::StopReason;
use crate::subscriber_id::SubscriberId;
use crate::timer::{TimerRef, Timers};
use crate::transport::outbound::{Delivery, Outbound};
use crossbeam_channel::RecvTimeoutError;
use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// What every handle of one channel instance shares: where its frames go and how
/// they are encoded.
pub(crate) struct ChannelLink {
    pub(crate) outbound: Arc<Outbound>,
    pub(crate) serializer: Serializer,
    /// The channel instance: a rejoin of the same topic is a new one.
    pub(crate) instance: SubscriberId,
    pub(crate) topic: String,
    /// The channel's join ref: the join's `join_ref`, or its `ref` when that was null.
    pub(crate) join_ref: Option<Ref>,
    /// The connection's socket id, from [`UserSocket::id`](crate::UserSocket::id).
    pub(crate) socket_id: Option<Arc<str>>,
    /// `handle_out`'s pushes, held until the channel thread has drained what it was
    /// woken for. Any frame sent through the link goes out after them.
    pub(crate) held: Mutex<Vec<Frame>>,
}

impl ChannelLink {
    /// Sends a frame, after the held ones.
    pub(crate) fn send(&self, frame: Frame) -> Result<(), Error> {
        let mut held = self.held.lock();
        if held.is_empty() {
            return self.write(std::slice::from_ref(&frame));
        }
        held.push(frame);
        let sent = self.write(&held);
        held.clear();
        sent
    }

    /// Holds a frame, to be sent with the next one or by [`flush`](ChannelLink::flush).
    pub(crate) fn hold(&self, frame: Frame) {
        self.held.lock().push(frame);
    }

    /// How many frames are held.
    pub(crate) fn held(&self) -> usize {
        self.held.lock().len()
    }

    /// Sends the held frames, in one write when the connection is idle. A closed
    /// connection drops them, as it drops a push.
    pub(crate) fn flush(&self) {
        let mut held = self.held.lock();
        if !held.is_empty() {
            let _ = self.write(&held);
            held.clear();
        }
    }

    fn write(&self, frames: &[Frame]) -> Result<(), Error> {
        match self.outbound.push_frames(Some(self.instance), frames, Delivery::WriteIfIdle) {
            Ok(_) => Ok(()),
            Err(_) => Err(Error::ConnectionClosed),
        }
    }

    pub(crate) fn reply_frame(&self, msg_ref: Option<Ref>, status: String, response: Payload) -> Result<Frame, Error> {
        let reply = Reply { join_ref: self.join_ref.clone(), msg_ref, topic: self.topic.clone(), status, response };
        Ok(self.serializer.encode_reply(&reply)?)
    }
}

/// The channel's view of its connection and topic, handed to every callback.
///
/// Holds the topic, the join ref, the assigns, and the operations `push`,
/// `broadcast`, `broadcast_from`, `socket_ref` (for replies from elsewhere), and
/// `subscribe`/`unsubscribe` for extra topics.
pub struct Socket {
    pub(crate) link: Arc<ChannelLink>,
    pub(crate) assigns: Assigns,
    pub(crate) joined: bool,
    pub(crate) current_ref: Option<Ref>,
    pub(crate) pubsub: PubSub,
    pub(crate) inbox: Inbox,
    pub(crate) presence: Arc<Presence>,
    timers: Arc<Timers>,
    /// The subscription to the channel's own topic, once joined.
    pub(crate) own_subscription: Option<SubscriptionId>,
    extra: HashMap<String, Vec<SubscriptionId>>,
    /// The broadcast `handle_out` is handling, if it is running.
    pub(crate) intercepted: Option<Arc<Intercepted>>,
    /// The caller of the call `handle_call` is handling, until it takes it.
    pub(crate) caller: Option<CallFrom>,
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("topic", &self.link.topic)
            .field("join_ref", &self.link.join_ref)
            .field("joined", &self.joined)
            .field("assigns", &self.assigns)
            .field("extra_topics", &self.extra.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Socket {
    pub(crate) fn new(link: Arc<ChannelLink>, assigns: Assigns, inbox: Inbox, runtime: &ChannelRuntime) -> Self {
        Socket {
            link,
            assigns,
            joined: false,
            current_ref: None,
            pubsub: runtime.pubsub.clone(),
            inbox,
            presence: runtime.presence.clone(),
            timers: runtime.timers.clone(),
            own_subscription: None,
            extra: HashMap::new(),
            intercepted: None,
            caller: None,
        }
    }

    /// The channel's topic.
    pub fn topic(&self) -> &str {
        &self.link.topic
    }

    /// The channel's join ref.
    pub fn join_ref(&self) -> Option<&str> {
        self.link.join_ref.as_deref()
    }

    /// The connection's wire format.
    pub fn serializer(&self) -> Serializer {
        self.link.serializer
    }

    /// The assigns: from `connect`, the route, and earlier callbacks.
    pub fn assigns(&self) -> &Assigns {
        &self.assigns
    }

    /// The assigns, to change.
    pub fn assigns_mut(&mut self) -> &mut Assigns {
        &mut self.assigns
    }

    /// Sets one assign.
    pub fn assign(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        self.assigns.insert(key.into(), value.into());
    }

    /// The assign `key` as a `T`, through serde (see [`TypedAssigns`]).
    ///
    /// ```
    /// use phx_channels::{AssignError, Channel, JoinResult, Payload, Socket};
    /// use serde_json::json;
    ///
    /// struct Board {
    ///     user_id: u64,
    /// }
    ///
    /// impl Channel for Board {
    ///     fn join(&mut self, _topic: &str, _payload: &Payload, socket: &mut Socket) -> JoinResult {
    ///         // `connect` stored {"user_id": 7}.
    ///         match socket.assign_as::<u64>("user_id") {
    ///             Ok(id) => self.user_id = id,
    ///             Err(err) => return Err(json!({"reason": err.to_string()}).into()),
    ///         }
    ///         Ok(Payload::empty())
    ///     }
    /// }
    /// ```
    pub fn assign_as<T: DeserializeOwned>(&self, key: &str) -> Result<T, AssignError> {
        self.assigns.get_as(key)
    }

    /// Sets the assign `key` to `value`, written as JSON through serde.
    pub fn assign_serialized<T: Serialize + ?Sized>(
        &mut self,
        key: impl Into<String>,
        value: &T,
    ) -> Result<(), AssignError> {
        self.assigns.insert_as(key, value)
    }

    /// Every assign as one `T`, typically a struct with a field per assign.
    pub fn assigns_as<T: DeserializeOwned>(&self) -> Result<T, AssignError> {
        self.assigns.decode()
    }

    /// This channel instance's subscriber id, to skip it with [`PubSub::broadcast_from`].
    /// Not the connection's socket id: that is [`socket_id`](Socket::socket_id).
    pub fn subscriber_id(&self) -> SubscriberId {
        self.link.instance
    }

    /// The connection's socket id, as [`UserSocket::id`](crate::UserSocket::id) made it
    /// from the assigns `connect` returned (Phoenix's `socket.id`); `None` when the
    /// socket has no id. An endpoint broadcast of `disconnect` on it closes the connection.
    ///
    /// ```
    /// use phx_channels::testing;
    /// use phx_channels::{Channel, Endpoint, JoinResult, Payload, Socket, UserSocket};
    /// use serde_json::json;
    ///
    /// struct Whoami;
    ///
    /// impl Channel for Whoami {
    ///     fn join(&mut self, _topic: &str, _payload: &Payload, socket: &mut Socket) -> JoinResult {
    ///         Ok(json!({"socket_id": socket.socket_id()}).into())
    ///     }
    /// }
    ///
    /// let user_socket = UserSocket::new()
    ///     .connect(|params, _info| Ok([("user".to_string(), params["user"].clone())].into_iter().collect()))
    ///     .id(|assigns| assigns["user"].as_str().map(|user| format!("user_socket:{user}")))
    ///     .channel("whoami", |_| Whoami);
    /// let endpoint = testing::endpoint(Endpoint::builder().socket("/socket", user_socket))?;
    /// let socket = testing::connect(&endpoint, "/socket", json!({"user": "7"}))?;
    /// let (reply, _) = socket.join("whoami", json!({}))?;
    /// assert_eq!(reply, json!({"socket_id": "user_socket:7"}).into());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn socket_id(&self) -> Option<&str> {
        self.link.socket_id.as_deref()
    }

    /// The endpoint's broadcast API, for other topics.
    pub fn pubsub(&self) -> &PubSub {
        // What handle_out pushed goes out before anything sent through the PubSub.
        self.link.flush();
        &self.pubsub
    }

    /// Pushes `event` to this channel's client: a JSON object or bytes (V2 only).
    pub fn push(&self, event: &str, payload: impl Into<Payload>) -> Result<(), Error> {
        self.push_payload(event, &payload.into())
    }

    /// [`push`](Socket::push) without taking the payload. A push from `handle_out` shares
    /// its payload's encoding with the broadcast's other subscribers, and is held for
    /// the rest of what the thread drains.
    pub(crate) fn push_payload(&self, event: &str, payload: &Payload) -> Result<(), Error> {
        self.require_joined()?;
        let link = &self.link;
        match &self.intercepted {
            Some(intercepted) => {
                link.hold(intercepted.encode_push(link.serializer, &link.join_ref, &link.topic, event, payload)?);
                Ok(())
            }
            None => link.send(link.serializer.encode_channel_push(&link.join_ref, &link.topic, event, payload)?),
        }
    }

    /// Broadcasts `event` on this channel's topic, to every subscriber including this
    /// channel's own client.
    pub fn broadcast(&self, event: &str, payload: impl Into<Payload>) -> Result<(), Error> {
        self.require_joined()?;
        self.link.flush();
        let broadcast = Broadcast::new(self.link.topic.clone(), event, payload);
        self.pubsub.send(None, broadcast, Reach::Cluster, Some(&self.inbox))
    }

    /// Broadcasts `event` on this channel's topic to every subscriber but this channel.
    pub fn broadcast_from(&self, event: &str, payload: impl Into<Payload>) -> Result<(), Error> {
        self.require_joined()?;
        self.link.flush();
        let broadcast = Broadcast::new(self.link.topic.clone(), event, payload);
        self.pubsub.send(Some(self.subscriber_id()), broadcast, Reach::Cluster, Some(&self.inbox))
    }

    /// A handle for replying to the message being handled, later and from any thread
    ///. Only inside `handle_in`.
    pub fn socket_ref(&self) -> Result<SocketRef, Error> {
        self.require_joined()?;
        let msg_ref = self.current_ref.clone().ok_or(Error::NoRef)?;
        Ok(SocketRef { link: self.link.clone(), msg_ref })
    }

    /// A cloneable handle through which any thread can send this channel a message for
    /// `handle_info`.
    pub fn handle(&self) -> ChannelHandle {
        ChannelHandle::new(self.inbox.clone(), self.subscriber_id(), self.topic().into())
    }

    /// In [`handle_call`](crate::Channel::handle_call), takes the caller to answer
    /// later with [`CallFrom::reply`]; `handle_call` then returns
    /// [`CallReply::noreply`](crate::CallReply::noreply). `None` outside `handle_call`
    /// and once taken. See [`CallFrom`] for an example.
    pub fn take_caller(&mut self) -> Option<CallFrom> {
        self.caller.take()
    }

    /// Delivers `message` to this channel's `handle_info` as [`Info::Message`] after
    /// `delay`, on the channel's thread: Phoenix's `Process.send_after(self(), message,
    /// delay)`. The returned [`TimerRef`] cancels it. Pending timers are dropped when
    /// the channel ends. One thread per endpoint runs every timer, however many there
    /// are. Available in `join` too.
    ///
    /// To push periodically, schedule the next tick when handling the current one:
    ///
    /// ```
    /// use phx_channels::testing;
    /// use phx_channels::{Channel, Endpoint, Flow, Info, JoinResult, Payload, Socket, UserSocket};
    /// use serde_json::json;
    /// use std::time::Duration;
    ///
    /// const EVERY: Duration = Duration::from_millis(10);
    ///
    /// struct Tick;
    ///
    /// struct Clock {
    ///     ticks: u64,
    /// }
    ///
    /// impl Channel for Clock {
    ///     fn join(&mut self, _topic: &str, _payload: &Payload, socket: &mut Socket) -> JoinResult {
    ///         socket.send_after(EVERY, Tick);
    ///         Ok(Payload::empty())
    ///     }
    ///
    ///     fn handle_info(&mut self, info: Info, socket: &mut Socket) -> Flow {
    ///         if info.downcast::<Tick>().is_ok() {
    ///             self.ticks += 1;
    ///             socket.push("tick", json!({"n": self.ticks})).ok();
    ///             socket.send_after(EVERY, Tick);
    ///         }
    ///         Flow::Continue
    ///     }
    /// }
    ///
    /// let endpoint = testing::endpoint(
    ///     Endpoint::builder().socket("/socket", UserSocket::new().channel("clock", |_| Clock { ticks: 0 })),
    /// )?;
    /// let socket = testing::connect(&endpoint, "/socket", json!({}))?;
    /// let (_, clock) = socket.join("clock", json!({}))?;
    /// assert_eq!(clock.assert_push("tick"), json!({"n": 1}).into());
    /// assert_eq!(clock.assert_push("tick"), json!({"n": 2}).into());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_after<T: Any + Send>(&self, delay: Duration, message: T) -> TimerRef {
        self.timers.send_after(self.link.instance, self.inbox.clone(), delay, Box::new(message))
    }

    /// Subscribes this channel to another topic: its broadcasts arrive in
    /// `handle_info` as [`Info::Broadcast`]. Subscribing twice delivers twice.
    pub fn subscribe(&mut self, topic: &str) {
        let id = self.pubsub.subscribe_info(topic, self.link.instance, self.inbox.clone());
        self.extra.entry(topic.to_owned()).or_default().push(id);
    }

    /// Ends this channel's subscriptions to `topic` (all of them).
    pub fn unsubscribe(&mut self, topic: &str) {
        for id in self.extra.remove(topic).unwrap_or_default() {
            self.pubsub.remove(id, topic);
        }
    }

    /// Sends a reply for `handle_in`'s result; a reply that cannot be encoded stops the
    /// channel as a crash would in Phoenix.
    pub(crate) fn reply_now(&self, msg_ref: Option<Ref>, status: String, response: Payload) -> Result<(), StopReason> {
        let frame = self
            .link
            .reply_frame(msg_ref, status, response)
            .map_err(|err| StopReason::Error(format!("cannot encode the reply: {err}")))?;
        // A closed connection drops the reply, as in Phoenix.
        let _ = self.link.send(frame);
        Ok(())
    }

    /// Tracks this channel's presence under `key` on its own topic, with `meta` (a JSON
    /// object). Returns the entry's `phx_ref`. Everyone on the topic gets a
    /// `presence_diff` with the join. The entry goes away when the channel ends.
    pub fn track(&self, key: &str, meta: Value) -> Result<String, PresenceError> {
        self.presence.track(self.link.instance, &self.link.topic, key, meta)
    }

    /// Tracks this channel under `key` on another `topic`.
    pub fn track_topic(&self, topic: &str, key: &str, meta: Value) -> Result<String, PresenceError> {
        self.presence.track(self.link.instance, topic, key, meta)
    }

    /// Replaces the meta of `key` on the channel's topic; returns the new `phx_ref`.
    pub fn update_presence(&self, key: &str, meta: Value) -> Result<String, PresenceError> {
        self.presence.update(self.link.instance, &self.link.topic, key, meta)
    }

    /// Replaces the meta of `key` on another `topic`, tracked with [`track_topic`](Socket::track_topic).
    pub fn update_presence_topic(&self, topic: &str, key: &str, meta: Value) -> Result<String, PresenceError> {
        self.presence.update(self.link.instance, topic, key, meta)
    }

    /// Stops tracking `key` on the channel's topic. Idempotent.
    pub fn untrack(&self, key: &str) {
        self.presence.untrack(self.link.instance, &self.link.topic, key)
    }

    /// Stops tracking `key` on another `topic`. Idempotent.
    pub fn untrack_topic(&self, topic: &str, key: &str) {
        self.presence.untrack(self.link.instance, topic, key)
    }

    /// Everyone on the channel's topic, as `{key: {"metas": [...]}}`: the payload of
    /// the `presence_state` push.
    pub fn presence_list(&self) -> Value {
        self.presence.list(&self.link.topic)
    }

    fn require_joined(&self) -> Result<(), Error> {
        if self.joined { Ok(()) } else { Err(Error::NotJoined) }
    }

    /// Ends every subscription of this channel: its own topic and the extra ones.
    pub(crate) fn unsubscribe_all(&mut self) {
        let topics: Vec<String> = self.extra.keys().cloned().collect();
        for topic in topics {
            self.unsubscribe(&topic);
        }
        if let Some(id) = self.own_subscription.take() {
            self.pubsub.remove(id, &self.link.topic);
        }
    }
}

/// A captured message ref, for replying after `handle_in` has returned, from any
/// thread, as often as needed. Phoenix's `socket_ref/1` and `reply/2`.
///
/// A reply to a connection that is gone is dropped, with [`Error::ConnectionClosed`].
#[derive(Clone)]
pub struct SocketRef {
    link: Arc<ChannelLink>,
    msg_ref: Ref,
}

impl fmt::Debug for SocketRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketRef").field("topic", &self.link.topic).field("msg_ref", &self.msg_ref).finish()
    }
}

impl SocketRef {
    /// Sends `phx_reply` with `status` and `response` for the captured message.
    pub fn reply(&self, status: &str, response: impl Into<Payload>) -> Result<(), Error> {
        let frame = self.link.reply_frame(Some(self.msg_ref.clone()), status.to_owned(), response.into())?;
        self.link.send(frame)
    }

    /// The topic of the channel that captured it.
    pub fn topic(&self) -> &str {
        &self.link.topic
    }
}

/// Reaches one channel from any thread, the role of its pid: [`send`](ChannelHandle::send)
/// a message for `handle_info` (Phoenix's `send` or `GenServer.cast`), or
/// [`call`](ChannelHandle::call) it and wait for the answer of its `handle_call`.
///
/// A channel gets its own with [`Socket::handle`]; the rest of the program finds the
/// channels of a topic with [`Endpoint::channels`](crate::Endpoint::channels).
#[derive(Clone)]
pub struct ChannelHandle {
    inbox: Inbox,
    id: SubscriberId,
    topic: Arc<str>,
}

impl fmt::Debug for ChannelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelHandle").field("topic", &self.topic).field("id", &self.id).finish_non_exhaustive()
    }
}

impl ChannelHandle {
    pub(crate) fn new(inbox: Inbox, id: SubscriberId, topic: Arc<str>) -> Self {
        ChannelHandle { inbox, id, topic }
    }

    /// The channel's topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Delivers `message` to the channel's `handle_info` as [`Info::Message`].
    ///
    /// Fails with [`Error::ChannelEnded`] once the channel has stopped, and with
    /// [`Error::Overloaded`] when its mailbox is full.
    pub fn send<T: Any + Send>(&self, message: T) -> Result<(), Error> {
        match self.inbox.try_send(ChannelMsg::Info(Info::Message(Box::new(message)))) {
            Ok(()) => Ok(()),
            Err(InboxError::Closed) => Err(Error::ChannelEnded),
            Err(InboxError::Full) => Err(Error::Overloaded),
        }
    }

    /// Asks the channel something and waits up to `timeout` for the answer, which its
    /// [`handle_call`](crate::Channel::handle_call) gives on the channel's thread:
    /// Phoenix's `GenServer.call(channel_pid, request, timeout)`. `R` is the type of
    /// the answer.
    ///
    /// ```
    /// use phx_channels::testing;
    /// use phx_channels::{CallError, CallReply, Channel, Endpoint, JoinResult, Payload, Socket, UserSocket};
    /// use std::any::Any;
    /// use std::time::Duration;
    ///
    /// struct Votes {
    ///     yes: u32,
    /// }
    ///
    /// /// What the channel answers calls about.
    /// enum Ask {
    ///     Vote,
    ///     Count,
    /// }
    ///
    /// impl Channel for Votes {
    ///     fn join(&mut self, _topic: &str, _payload: &Payload, _socket: &mut Socket) -> JoinResult {
    ///         Ok(Payload::empty())
    ///     }
    ///
    ///     fn handle_call(&mut self, request: Box<dyn Any + Send>, _socket: &mut Socket) -> CallReply {
    ///         match request.downcast::<Ask>().map(|ask| *ask) {
    ///             Ok(Ask::Vote) => {
    ///                 self.yes += 1;
    ///                 CallReply::reply(())
    ///             }
    ///             Ok(Ask::Count) => CallReply::reply(self.yes),
    ///             Err(_) => CallReply::unhandled(),
    ///         }
    ///     }
    /// }
    ///
    /// let endpoint = testing::endpoint(Endpoint::builder().socket("/socket", UserSocket::new().channel("poll", |_| Votes { yes: 0 })))?;
    /// let (_, poll) = testing::connect(&endpoint, "/socket", serde_json::json!({}))?.join("poll", serde_json::json!({}))?;
    /// let channel = poll.handle();
    /// let second = Duration::from_secs(1);
    /// channel.call::<()>(Ask::Vote, second)?;
    /// assert_eq!(channel.call::<u32>(Ask::Count, second)?, 1);
    /// assert!(matches!(channel.call::<String>(Ask::Count, second), Err(CallError::UnexpectedReply { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// The channel may also keep the caller waiting and answer later, from another
    /// callback or thread ([`CallFrom`]); the timeout applies all the same.
    ///
    /// Fails with [`CallError::Timeout`] when no answer comes in time, with
    /// [`CallError::ChannelEnded`] when the channel has ended or ends (stops without an
    /// answer, or crashes) before answering, or drops the [`CallFrom`] it deferred the
    /// answer with, with [`CallError::Overloaded`] when its
    /// mailbox is full, and with [`CallError::CalledSelf`] from the channel's own thread.
    pub fn call<R: Any>(&self, request: impl Any + Send, timeout: Duration) -> Result<R, CallError> {
        if self.inbox.is_receiver() {
            return Err(CallError::CalledSelf);
        }
        let (reply_to, answer) = crossbeam_channel::bounded(1);
        match self.inbox.try_send(ChannelMsg::Call(Call { request: Box::new(request), from: CallFrom::new(reply_to) }))
        {
            Ok(()) => {}
            Err(InboxError::Closed) => return Err(CallError::ChannelEnded),
            Err(InboxError::Full) => return Err(CallError::Overloaded),
        }
        match answer.recv_timeout(timeout) {
            Ok(answer) => answer
                .downcast::<R>()
                .map(|answer| *answer)
                .map_err(|_| CallError::UnexpectedReply { expected: std::any::type_name::<R>() }),
            Err(RecvTimeoutError::Timeout) => Err(CallError::Timeout),
            Err(RecvTimeoutError::Disconnected) => Err(CallError::ChannelEnded),
        }
    }

    /// The channel instance's subscriber id, for [`PubSub::broadcast_from`].
    pub fn subscriber_id(&self) -> SubscriberId {
        self.id
    }
}
