//! One open WebSocket connection's protocol state: Phoenix's `socket.ex`. It routes
//! decoded messages by topic, answers heartbeats, starts and replaces channels, and
//! turns the channel threads' notices into `phx_close` and `phx_error` frames.
//! It never blocks and never runs user code.

use super::outbound::{InstanceId, OutItem, Outbound};
use super::write_queue::WriteQueue;
use crate::channel::StopReason;
use crate::channel_thread::{self, ChannelMsg, ChannelStart, LogSettings};
use crate::endpoint::{Mount, Shared};
use crate::inbox::{Inbox, InboxError};
use crate::message::{Message, PHX_CLOSE, PHX_ERROR, PHX_JOIN, PHX_LEAVE, Reply};
use crate::payload::Payload;
use crate::pubsub::{Subscriber, SubscriptionId};
use crate::router;
use crate::serializer::{Frame, Serializer};
use crate::socket::{Assigns, ChannelLink};
use crate::stats;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// One channel as the connection sees it.
struct Entry {
    instance: InstanceId,
    /// The join's `join_ref` exactly as sent (possibly null): what later messages must carry.
    stored_join_ref: Option<String>,
    inbox: Inbox,
    /// A duplicate join's `phx_close` for the replaced instance, written after this
    /// instance's join reply (P59).
    close_after_join: Option<Frame>,
}

pub(super) struct Session {
    pub(super) serializer: Serializer,
    mount: Arc<Mount>,
    assigns: Assigns,
    pub(super) outbound: Arc<Outbound>,
    channels: HashMap<String, Entry>,
    socket_id: Option<(SubscriptionId, String)>,
    shared: Arc<Shared>,
}

impl Session {
    pub(super) fn new(
        shared: Arc<Shared>,
        mount: Arc<Mount>,
        serializer: Serializer,
        assigns: Assigns,
        socket_id: Option<String>,
        outbound: Arc<Outbound>,
    ) -> Session {
        let socket_id = socket_id.map(|topic| {
            let id = shared.pubsub.next_id();
            shared.pubsub.inner.registry.subscribe(id, &topic, Subscriber::Connection(outbound.clone()));
            (id, topic)
        });
        Session { serializer, mount, assigns, outbound, channels: HashMap::new(), socket_id, shared }
    }

    /// Routes one decoded client message (PROTOCOL.md 5.3).
    pub(super) fn receive(&mut self, msg: Message, out: &mut WriteQueue) {
        if msg.is_heartbeat() {
            return self.reply(out, None, msg.msg_ref, msg.topic, "ok", Payload::empty()); // P27
        }
        let Some(entry) = self.channels.get(&msg.topic) else {
            return match msg.event.as_str() {
                PHX_JOIN => self.join(msg, None, out),
                // P56: a leave of a topic not joined is answered ok, refs echoed.
                PHX_LEAVE => self.reply(out, msg.join_ref, msg.msg_ref, msg.topic, "ok", Payload::empty()),
                _ => self.unmatched(msg, out), // P55
            };
        };
        if msg.event == PHX_JOIN {
            return self.replace(msg, out); // P59
        }
        if msg.join_ref.is_some() && msg.join_ref != entry.stored_join_ref {
            return; // P57: stale, dropped silently
        }
        match entry.inbox.try_send(ChannelMsg::In(msg)) {
            Ok(()) => {}
            Err(InboxError::Closed) => {} // the thread is ending; its notice follows
            Err(InboxError::Full) => log::warn!("a message was dropped: the channel's mailbox is full"),
        }
    }

    /// A join for a topic with a channel: end the old instance without terminate, and
    /// join again; the old `phx_close` follows the new reply.
    fn replace(&mut self, msg: Message, out: &mut WriteQueue) {
        let Some(old) = self.channels.remove(&msg.topic) else { return };
        log::debug!(
            "Duplicate channel join for topic \"{}\" in {}. Closing existing channel for new join.",
            msg.topic,
            self.mount.path
        );
        // Its frames are discarded from now on (5.12); the thread ends without terminate.
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
            return self.unmatched(msg, out); // P46
        };
        let max = self.mount.socket.settings.max_channels;
        if self.channels.len() >= max {
            log::error!("Reached max channels per transport limit of {max} for socket {}", self.mount.path);
            stats::incr(self.shared.stats.refused_joins());
            return self.refuse(msg, "too many channels joined", close_after_join, out); // P47
        }
        let cap = self.shared.config.max_channel_threads;
        if self.shared.tracker.live() >= cap {
            log::error!("Reached the limit of {cap} channel threads; refusing a join of {}", msg.topic);
            stats::incr(self.shared.stats.refused_joins());
            return self.refuse(msg, "too many channel threads", close_after_join, out);
        }
        let instance = self.shared.pubsub.next_id();
        let link = Arc::new(ChannelLink {
            outbound: self.outbound.clone(),
            serializer: self.serializer,
            instance,
            topic: msg.topic.clone(),
            join_ref: msg.join_ref.clone().or_else(|| msg.msg_ref.clone()), // P53
        });
        let mut assigns = self.assigns.clone();
        assigns.extend(route.assigns.iter().map(|(k, v)| (k.clone(), v.clone()))); // P45
        let (inbox, receiver) = Inbox::new(self.shared.config.channel_inbox_limit);
        // What the join reply or a refusal needs once `msg` has gone to the thread.
        let header = Message {
            join_ref: msg.join_ref.clone(),
            msg_ref: msg.msg_ref.clone(),
            topic: msg.topic.clone(),
            event: PHX_JOIN.to_owned(),
            payload: Payload::empty(),
        };
        let start = ChannelStart {
            factory: route.factory.clone(),
            channel_name: route.name,
            join: msg,
            link,
            assigns,
            pubsub: self.shared.pubsub.clone(),
            inbox: inbox.clone(),
            receiver,
            stats: self.shared.stats.clone(),
            tracker: self.shared.tracker.clone(),
            presence: self.shared.presence.clone(),
            log: LogSettings { filter: self.shared.config.filter_parameters.clone() },
        };
        match channel_thread::spawn(start, self.shared.config.channel_stack_size) {
            Ok(()) => {
                let entry = Entry { instance, stored_join_ref: header.join_ref, inbox, close_after_join };
                self.channels.insert(header.topic, entry);
            }
            Err(err) => {
                log::error!("cannot start a channel thread for {}: {err}", header.topic);
                stats::incr(self.shared.stats.refused_joins());
                self.refuse(header, "could not start channel", close_after_join, out);
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

    /// `{"reason":"unmatched topic"}` with a null join_ref (P46, P55).
    fn unmatched(&mut self, msg: Message, out: &mut WriteQueue) {
        let response = Payload::Json(json!({"reason": "unmatched topic"}));
        self.reply(out, None, msg.msg_ref, msg.topic, "error", response);
    }

    fn reply(
        &self,
        out: &mut WriteQueue,
        join_ref: Option<String>,
        msg_ref: Option<String>,
        topic: String,
        status: &str,
        response: Payload,
    ) {
        let reply = Reply { join_ref, msg_ref, topic, status: status.to_owned(), response };
        match self.serializer.encode_reply(&reply) {
            Ok(frame) => out.push(frame.as_bytes().clone()),
            Err(err) => log::error!("cannot encode a reply on {}: {err}", reply.topic),
        }
    }

    /// `phx_close` or `phx_error`: join_ref = ref = the stored join_ref (P68).
    fn close_frame(&self, event: &str, topic: &str, join_ref: Option<String>, payload: Payload) -> Option<Frame> {
        let msg = Message {
            join_ref: join_ref.clone(),
            msg_ref: join_ref,
            topic: topic.to_owned(),
            event: event.into(),
            payload,
        };
        self.serializer.encode_push(&msg).inspect_err(|err| log::error!("cannot encode {event}: {err}")).ok()
    }

    fn topic_of(&self, instance: InstanceId) -> Option<String> {
        self.channels.iter().find(|(_, entry)| entry.instance == instance).map(|(topic, _)| topic.clone())
    }

    /// Applies one item from the outbound queue; a `disconnect` broadcast is an `Err`.
    pub(super) fn apply(&mut self, item: OutItem, out: &mut WriteQueue) -> Result<(), Disconnect> {
        match item {
            // Frames of a killed instance never get here: the queue drops them.
            OutItem::Frame { frame, .. } => out.push_counted(frame.as_bytes().clone()),
            OutItem::JoinResult { instance, frame, joined } => {
                if self.outbound.is_killed(instance) {
                    self.outbound.written(1, frame.len());
                    return Ok(());
                }
                out.push_counted(frame.as_bytes().clone());
                if let Some(topic) = self.topic_of(instance) {
                    let entry = self.channels.get_mut(&topic).expect("found above");
                    if let Some(close) = entry.close_after_join.take() {
                        out.push(close.as_bytes().clone());
                    }
                    if !joined {
                        self.channels.remove(&topic);
                    }
                }
            }
            OutItem::Closing { instance } => {
                if let Some(topic) = self.topic_of(instance) {
                    let entry = self.channels.remove(&topic).expect("found above");
                    if let Some(close) = self.close_frame(PHX_CLOSE, &topic, entry.stored_join_ref, Payload::empty()) {
                        out.push(close.as_bytes().clone());
                    }
                }
            }
            OutItem::Exited { instance, crashed } => {
                self.outbound.forget(instance);
                if let Some(topic) = self.topic_of(instance) {
                    let entry = self.channels.remove(&topic).expect("found above");
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

    /// The connection is going away: every channel terminates with `reason` (P78,
    /// P81), nothing more is written, and the socket id subscription ends.
    pub(super) fn end(&mut self, reason: &StopReason) {
        // Closed first, so nothing a terminating channel pushes can reach the socket.
        self.outbound.close();
        for (_, entry) in self.channels.drain() {
            entry.inbox.send_control(ChannelMsg::Stop(reason.clone()));
        }
        if let Some((id, topic)) = self.socket_id.take() {
            self.shared.pubsub.inner.registry.unsubscribe(id, &topic);
        }
    }
}

/// A `disconnect` broadcast on the socket id: the connection must close with 1001.
#[derive(Debug)]
pub(super) struct Disconnect;
