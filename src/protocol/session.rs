//! One open connection's protocol state: Phoenix's `socket.ex`. It routes decoded
//! messages by topic, answers heartbeats, starts and replaces channels, and turns the
//! channel threads' notices into `phx_close` and `phx_error` frames. It never blocks
//! and never runs user code, and it knows nothing of the transport beneath it but the
//! connection's outbound queue and the frames it hands back to write.

use super::routes::Mount;
use crate::channel_runtime::ChannelRuntime;
use crate::channel_thread::{self, StartError};
use crate::inbox::{ChannelMsg, Inbox, InboxError};
use crate::message::{Message, PHX_CLOSE, PHX_ERROR, PHX_JOIN, PHX_LEAVE, Ref, Reply};
use crate::payload::Payload;
use crate::pubsub::SubscriptionId;
use crate::router;
use crate::serializer::{Decoded, EncodeError, Frame, RawFrame, Serializer, Unroutable};
use crate::socket::{Assigns, ChannelLink};
use crate::stats;
use crate::stop_reason::StopReason;
use crate::subscriber_id::SubscriberId;
use crate::transport::handler::{ConnectionHandler, Disconnect, Hangup};
use crate::transport::outbound::{OutItem, Outbound};
use crate::transport::write_queue::WriteQueue;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// One channel as the connection sees it.
struct Entry {
    instance: SubscriberId,
    /// The join's `join_ref` exactly as sent (possibly null): what later messages must carry.
    stored_join_ref: Option<Ref>,
    inbox: Inbox,
    /// A duplicate join's `phx_close` for the replaced instance, written after this
    /// instance's join reply.
    close_after_join: Option<Frame>,
    /// While the join runs: the topic's later messages, in order. They are routed once
    /// the join's result is back, so that they reach the channel after everything it
    /// sent itself during `join` (as in Phoenix, where the connection reads nothing
    /// more until a join returns). Other topics are not held back.
    held: Option<Vec<Decoded>>,
}

pub(crate) struct Session {
    serializer: Serializer,
    mount: Arc<Mount>,
    assigns: Assigns,
    outbound: Arc<Outbound>,
    channels: HashMap<String, Entry>,
    /// The topic of each channel instance in `channels`.
    topics: HashMap<SubscriberId, String>,
    socket_id: Option<(SubscriptionId, Arc<str>)>,
    runtime: Arc<ChannelRuntime>,
}

impl Session {
    pub(crate) fn new(
        runtime: Arc<ChannelRuntime>,
        mount: Arc<Mount>,
        serializer: Serializer,
        assigns: Assigns,
        socket_id: Option<String>,
        outbound: Arc<Outbound>,
    ) -> Session {
        let socket_id = socket_id.map(|topic| {
            let id = runtime.pubsub.subscribe_connection(&topic, outbound.clone());
            (id, Arc::from(topic))
        });
        Session {
            serializer,
            mount,
            assigns,
            outbound,
            channels: HashMap::new(),
            topics: HashMap::new(),
            socket_id,
            runtime,
        }
    }

    /// Routes one decoded client message.
    fn route(&mut self, decoded: Decoded, out: &mut WriteQueue) {
        match decoded {
            Decoded::Message(msg) => self.route_message(msg, out),
            Decoded::Unroutable(msg) => self.route_unroutable(msg, out),
        }
    }

    /// Keeps `msg` for after the join of its topic, if that join is still running.
    /// Returns it when the topic is not joining.
    fn hold(&mut self, topic: &str, msg: Decoded) -> Option<Decoded> {
        let limit = self.runtime.settings.inbox_limit;
        let Some(held) = self.channels.get_mut(topic).and_then(|entry| entry.held.as_mut()) else { return Some(msg) };
        if held.len() < limit {
            held.push(msg);
        } else {
            log::warn!("a message was dropped: too many messages wait for the join of {topic}");
        }
        None
    }

    fn route_message(&mut self, msg: Message, out: &mut WriteQueue) {
        if msg.is_heartbeat() {
            return self.reply(out, None, msg.msg_ref, msg.topic, "ok", Payload::empty());
        }
        if !self.channels.contains_key(&msg.topic) {
            return match msg.event.as_str() {
                PHX_JOIN => self.join(msg, None, out),
                // A leave of a topic not joined is answered ok, refs echoed.
                PHX_LEAVE => self.reply(out, msg.join_ref, msg.msg_ref, msg.topic, "ok", Payload::empty()),
                _ => self.unmatched(msg, out),
            };
        }
        let topic = msg.topic.clone();
        let Some(Decoded::Message(msg)) = self.hold(&topic, Decoded::Message(msg)) else { return };
        let entry = self.channels.get(&msg.topic).expect("checked above");
        if msg.event == PHX_JOIN {
            return self.replace(msg, out);
        }
        if msg.join_ref.is_some() && msg.join_ref != entry.stored_join_ref {
            return; // stale: for an earlier instance of the topic, dropped silently
        }
        match entry.inbox.try_send(ChannelMsg::In(msg)) {
            Ok(()) => {}
            Err(InboxError::Closed) => {} // the thread is ending; its notice follows
            Err(InboxError::Full) => log::warn!("a message was dropped: the channel's mailbox is full"),
        }
    }

    /// A message whose topic or event is not a string. A topic that is not a string
    /// matches no channel: a leave is answered ok and anything else `unmatched topic`,
    /// the topic echoed as sent. An event that is not a string matches no `handle_in`
    /// clause: on a joined topic the channel crashes.
    fn route_unroutable(&mut self, msg: Unroutable, out: &mut WriteQueue) {
        let Value::String(topic) = &msg.topic else {
            let (join_ref, status, response) = match msg.event.as_str() {
                Some(PHX_LEAVE) => (msg.join_ref.clone(), "ok", json!({})),
                _ => (None, "error", json!({"reason": "unmatched topic"})),
            };
            return self.reply_frame(out, self.serializer.encode_reply_to(&msg, &join_ref, status, &response));
        };
        let topic = topic.clone();
        if !self.channels.contains_key(&topic) {
            let response = json!({"reason": "unmatched topic"});
            return self.reply_frame(out, self.serializer.encode_reply_to(&msg, &None, "error", &response));
        }
        let Some(Decoded::Unroutable(msg)) = self.hold(&topic, Decoded::Unroutable(msg)) else { return };
        let entry = self.channels.get(&topic).expect("checked above");
        if msg.join_ref.is_some() && msg.join_ref != entry.stored_join_ref {
            return; // stale
        }
        let _ = entry.inbox.try_send(ChannelMsg::Unhandled { event: msg.event.to_string() });
    }

    fn insert(&mut self, topic: String, entry: Entry) {
        self.topics.insert(entry.instance, topic.clone());
        self.channels.insert(topic, entry);
    }

    fn remove(&mut self, topic: &str) -> Option<Entry> {
        let entry = self.channels.remove(topic)?;
        self.topics.remove(&entry.instance);
        Some(entry)
    }

    /// The topic and entry of a channel instance still on this connection.
    fn remove_instance(&mut self, instance: SubscriberId) -> Option<(String, Entry)> {
        let topic = self.topics.get(&instance)?.clone();
        self.remove(&topic).map(|entry| (topic, entry))
    }

    /// The mailbox of a channel instance still on this connection: the in-memory test
    /// connection hands it out as the channel's handle.
    pub(crate) fn inbox_of(&self, instance: SubscriberId) -> Option<Inbox> {
        let topic = self.topics.get(&instance)?;
        self.channels.get(topic).map(|entry| entry.inbox.clone())
    }

    /// A join for a topic with a channel: end the old instance without terminate, and
    /// join again; the old `phx_close` follows the new reply.
    fn replace(&mut self, msg: Message, out: &mut WriteQueue) {
        let Some(old) = self.remove(&msg.topic) else { return };
        log::debug!(
            "Duplicate channel join for topic \"{}\" in {}. Closing existing channel for new join.",
            msg.topic,
            self.mount.path
        );
        // Its frames are discarded from now on; the thread ends without terminate.
        self.outbound.kill(old.instance);
        old.inbox.send_control(ChannelMsg::Kill);
        let close = self.close_frame(PHX_CLOSE, &msg.topic, old.stored_join_ref, Payload::empty());
        self.join(msg, close, out);
    }

    fn join(&mut self, msg: Message, close_after_join: Option<Frame>, out: &mut WriteQueue) {
        let quiet = crate::logging::is_quiet_topic(&msg.topic);
        let Some(route) = router::find(&self.mount.socket.routes, &msg.topic) else {
            if !quiet {
                log::warn!("Ignoring unmatched topic \"{}\" in {}", msg.topic, self.mount.path);
            }
            return self.unmatched(msg, out);
        };
        let max = self.mount.socket.settings.max_channels;
        if self.channels.len() >= max {
            log::error!("Reached max channels per transport limit of {max} for socket {}", self.mount.path);
            stats::incr(self.runtime.stats.refused_joins());
            return self.refuse(msg, "too many channels joined", close_after_join, out);
        }
        let instance = self.runtime.pubsub.next_id();
        let link = Arc::new(ChannelLink {
            outbound: self.outbound.clone(),
            serializer: self.serializer,
            instance,
            topic: msg.topic.clone(),
            // The channel's join ref is the join's `join_ref`, or its `ref` when null.
            join_ref: msg.join_ref.clone().or_else(|| msg.msg_ref.clone()),
            socket_id: self.socket_id.as_ref().map(|(_, id)| id.clone()),
            held: Default::default(),
        });
        let mut assigns = self.assigns.clone();
        assigns.extend(route.assigns.iter().map(|(k, v)| (k.clone(), v.clone())));
        // What the join reply or a refusal needs once `msg` has gone to the thread.
        let header = Message {
            join_ref: msg.join_ref.clone(),
            msg_ref: msg.msg_ref.clone(),
            topic: msg.topic.clone(),
            event: PHX_JOIN.to_owned(),
            payload: Payload::empty(),
        };
        match channel_thread::start(&self.runtime, route, msg, link, assigns) {
            Ok(inbox) => {
                let held = Some(Vec::new());
                let entry = Entry { instance, stored_join_ref: header.join_ref, inbox, close_after_join, held };
                self.insert(header.topic, entry);
            }
            Err(err) => {
                stats::incr(self.runtime.stats.refused_joins());
                let reason = match err {
                    StartError::TooManyThreads => "too many channel threads",
                    StartError::Spawn(err) => {
                        log::error!("cannot start a channel thread for {}: {err}", header.topic);
                        "could not start channel"
                    }
                };
                self.refuse(header, reason, close_after_join, out);
            }
        }
    }

    /// Refuses a join with `{"reason": reason}`, join_ref echoed.
    fn refuse(&mut self, msg: Message, reason: &str, close_after_join: Option<Frame>, out: &mut WriteQueue) {
        let response = Payload::Json(json!({"reason": reason}));
        self.reply(out, msg.join_ref, msg.msg_ref, msg.topic, "error", response);
        if let Some(close) = close_after_join {
            out.push(close.as_bytes().clone());
        }
    }

    /// `{"reason":"unmatched topic"}` with a null join_ref.
    fn unmatched(&mut self, msg: Message, out: &mut WriteQueue) {
        let response = Payload::Json(json!({"reason": "unmatched topic"}));
        self.reply(out, None, msg.msg_ref, msg.topic, "error", response);
    }

    fn reply(
        &self,
        out: &mut WriteQueue,
        join_ref: Option<Ref>,
        msg_ref: Option<Ref>,
        topic: String,
        status: &str,
        response: Payload,
    ) {
        let reply = Reply { join_ref, msg_ref, topic, status: status.to_owned(), response };
        self.reply_frame(out, self.serializer.encode_reply(&reply));
    }

    fn reply_frame(&self, out: &mut WriteQueue, frame: Result<Frame, EncodeError>) {
        match frame {
            Ok(frame) => out.push(frame.as_bytes().clone()),
            Err(err) => log::error!("cannot encode a reply: {err}"),
        }
    }

    /// `phx_close` or `phx_error`: join_ref and ref are both the stored join_ref.
    fn close_frame(&self, event: &str, topic: &str, join_ref: Option<Ref>, payload: Payload) -> Option<Frame> {
        let msg = Message {
            join_ref: join_ref.clone(),
            msg_ref: join_ref,
            topic: topic.to_owned(),
            event: event.into(),
            payload,
        };
        self.serializer.encode_push(&msg).inspect_err(|err| log::error!("cannot encode {event}: {err}")).ok()
    }
}

impl Drop for Session {
    /// A session dropped without being ended (its connection went away before the
    /// session reached it, or the endpoint stopped first) ends now, so nothing it
    /// subscribed to outlives it. Ending twice does nothing.
    fn drop(&mut self) {
        self.end(Hangup::Closed);
    }
}

impl ConnectionHandler for Session {
    /// Decodes a frame and routes it. A frame that does not decode ends the
    /// connection without a reply.
    fn receive(&mut self, frame: RawFrame<'_>, out: &mut WriteQueue) -> Result<(), String> {
        let msg = self.serializer.decode_routed(frame).map_err(|err| format!("malformed message: {err}"))?;
        self.route(msg, out);
        Ok(())
    }

    /// Applies one item from the outbound queue; a `disconnect` broadcast is an `Err`.
    fn apply(&mut self, item: OutItem, out: &mut WriteQueue) -> Result<(), Disconnect> {
        match item {
            // Frames of a killed instance never get here: the queue drops them.
            OutItem::Frame { frame, .. } => out.push_counted(frame.as_bytes().clone()),
            // An instance is only ever replaced once its join result is in, so this
            // result is for a channel the connection still has.
            OutItem::JoinResult { instance, frame, joined } => {
                out.push_counted(frame.as_bytes().clone());
                if let Some(topic) = self.topics.get(&instance).cloned() {
                    let entry = self.channels.get_mut(&topic).expect("topics and channels agree");
                    if let Some(close) = entry.close_after_join.take() {
                        out.push(close.as_bytes().clone());
                    }
                    let held = entry.held.take().unwrap_or_default();
                    if !joined {
                        self.remove(&topic);
                    }
                    for msg in held {
                        self.route(msg, out);
                    }
                }
            }
            OutItem::Closing { instance } => {
                if let Some((topic, entry)) = self.remove_instance(instance)
                    && let Some(close) = self.close_frame(PHX_CLOSE, &topic, entry.stored_join_ref, Payload::empty())
                {
                    out.push(close.as_bytes().clone());
                }
            }
            OutItem::Exited { instance, crashed } => {
                self.outbound.forget(instance);
                if let Some((topic, entry)) = self.remove_instance(instance) {
                    let payload = Payload::Json(json!({"reason": "channel_crash"}));
                    if crashed && let Some(error) = self.close_frame(PHX_ERROR, &topic, entry.stored_join_ref, payload)
                    {
                        out.push(error.as_bytes().clone());
                    }
                }
            }
            OutItem::Disconnect => return Err(Disconnect),
        }
        Ok(())
    }

    /// The connection is going away: every channel terminates (`{shutdown, closed}`,
    /// or `{shutdown, draining}` at server shutdown), and the socket id subscription ends.
    fn end(&mut self, why: Hangup) {
        let reason = match why {
            Hangup::Closed => StopReason::closed(),
            Hangup::Draining => StopReason::draining(),
        };
        self.topics.clear();
        for (_, entry) in self.channels.drain() {
            entry.inbox.send_control(ChannelMsg::Stop(reason.clone()));
        }
        if let Some((id, topic)) = self.socket_id.take() {
            self.runtime.pubsub.remove(id, &topic);
        }
    }
}
