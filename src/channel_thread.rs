//! The per-channel thread: runs `join`, then the callbacks for every message in the
//! channel's inbox, then `terminate`; reports each step to the connection through its
//! outbound FIFO (PROTOCOL.md 5.12).

use crate::channel::{Channel, Flow, Handled, Info, StopReason};
use crate::inbox::{Inbox, InboxReceiver};
use crate::logging;
use crate::message::{Broadcast, Message, PHX_LEAVE};
use crate::payload::Payload;
use crate::pubsub::{ChannelSubscriber, PubSub, Subscriber};
use crate::socket::{Assigns, ChannelLink, Socket};
use crate::stats::{self, Stats};
use crate::transport::outbound::OutItem;
use parking_lot::{Condvar, Mutex};
use serde_json::json;
use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

/// What a channel thread receives.
pub(crate) enum ChannelMsg {
    /// A client message for `handle_in` (or a `phx_leave`).
    In(Message),
    /// An intercepted broadcast, for `handle_out`.
    Out(Arc<Broadcast>),
    /// Anything for `handle_info`.
    Info(Info),
    /// The connection closed or the server is draining: terminate with this reason.
    Stop(StopReason),
    /// Replaced by a duplicate join: end without `terminate` (P59).
    Kill,
}

/// Counts live channel threads so shutdown can wait for them.
#[derive(Default)]
pub(crate) struct ThreadTracker {
    live: Mutex<usize>,
    ended: Condvar,
}

impl ThreadTracker {
    fn enter(&self) {
        *self.live.lock() += 1;
    }

    fn leave(&self) {
        let mut live = self.live.lock();
        *live -= 1;
        if *live == 0 {
            self.ended.notify_all();
        }
    }

    pub(crate) fn live(&self) -> usize {
        *self.live.lock()
    }

    /// Waits until no channel thread is left, or `deadline`; returns how many are left.
    pub(crate) fn wait_until_none(&self, deadline: Instant) -> usize {
        let mut live = self.live.lock();
        while *live > 0 && !self.ended.wait_until(&mut live, deadline).timed_out() {}
        *live
    }
}

/// Log settings of the socket the channel runs on.
#[derive(Clone)]
pub(crate) struct LogSettings {
    pub(crate) filter: Arc<[String]>,
}

/// Everything a new channel thread needs.
pub(crate) struct ChannelStart {
    pub(crate) factory: crate::router::Factory,
    pub(crate) channel_name: &'static str,
    pub(crate) join: Message,
    pub(crate) link: Arc<ChannelLink>,
    pub(crate) assigns: Assigns,
    pub(crate) pubsub: PubSub,
    pub(crate) inbox: Inbox,
    pub(crate) receiver: InboxReceiver,
    pub(crate) stats: Arc<Stats>,
    pub(crate) tracker: Arc<ThreadTracker>,
    pub(crate) presence: Arc<crate::presence::Presence>,
    pub(crate) log: LogSettings,
}

/// Starts the thread. On failure (the OS refused a thread) nothing has run.
pub(crate) fn spawn(start: ChannelStart, stack_size: usize) -> std::io::Result<()> {
    let tracker = start.tracker.clone();
    let stats = start.stats.clone();
    tracker.enter();
    stats::incr(stats.channel_threads());
    let name = thread_name(&start.link.topic);
    let spawned = std::thread::Builder::new().name(name).stack_size(stack_size).spawn(move || {
        let tracker = start.tracker.clone();
        let stats = start.stats.clone();
        run(start);
        stats::decr(stats.channel_threads());
        tracker.leave();
    });
    spawned.map(|_| ()).inspect_err(|_| {
        stats::decr(stats.channel_threads());
        tracker.leave();
    })
}

/// A thread name from a client-chosen topic: no NUL bytes (they would make the
/// standard library panic), and short (Linux keeps 15 bytes).
fn thread_name(topic: &str) -> String {
    topic.chars().filter(|c| *c != '\0').take(15).collect()
}

/// How a channel thread ends.
enum End {
    /// Stopped by a callback or a leave; terminate has run if it should.
    Stopped { crashed: bool },
    /// Told to stop by the connection; terminate has run.
    Closed,
    /// Panicked or killed: terminate did not run.
    Aborted { crashed: bool },
}

/// What one callback led to.
enum Step {
    Continue,
    Stop(StopReason),
    Panicked,
}

impl From<Flow> for Step {
    fn from(flow: Flow) -> Step {
        match flow {
            Flow::Continue => Step::Continue,
            Flow::Stop(reason) => Step::Stop(reason),
        }
    }
}

/// A joined channel and its socket, running callbacks until the channel ends.
struct Runner {
    channel: Box<dyn Channel>,
    socket: Socket,
    stats: Arc<Stats>,
    channel_name: &'static str,
    log: LogSettings,
}

impl Runner {
    fn run(&mut self, receiver: &InboxReceiver) -> End {
        loop {
            // The socket holds a sender of this inbox, so it never disconnects.
            let Some(msg) = receiver.recv() else { return End::Closed };
            let step = match msg {
                ChannelMsg::In(msg) if msg.event == PHX_LEAVE => {
                    // P60: reply ok, then phx_close (in `stop`), then terminate.
                    self.reply(msg.msg_ref, "ok".into(), Payload::empty());
                    Step::Stop(StopReason::left())
                }
                ChannelMsg::In(msg) => self.handle_in(msg),
                ChannelMsg::Out(broadcast) => {
                    self.guarded("handle_out", |c, s| c.handle_out(&broadcast.event, &broadcast.payload, s).into())
                }
                ChannelMsg::Info(info) => self.guarded("handle_info", |c, s| c.handle_info(info, s).into()),
                ChannelMsg::Stop(reason) => {
                    self.terminate(&reason);
                    return End::Closed;
                }
                ChannelMsg::Kill => return End::Aborted { crashed: false },
            };
            match step {
                Step::Continue => {}
                Step::Stop(reason) => return self.stop(reason),
                Step::Panicked => return End::Aborted { crashed: true },
            }
        }
    }

    fn handle_in(&mut self, msg: Message) -> Step {
        let Message { msg_ref, event, payload, .. } = msg;
        let logged = (log::log_enabled!(log::Level::Debug) && !logging::is_quiet_topic(self.socket.topic()))
            .then(|| params(&payload, &self.log.filter));
        let began = Instant::now();
        self.socket.current_ref = msg_ref.clone();
        let step = self.guarded("handle_in", |c, s| match c.handle_in(&event, payload, s) {
            Handled::NoReply => Step::Continue,
            Handled::Reply { status, response } => {
                s.reply_now(msg_ref.clone(), status, response).map_or_else(Step::Stop, |()| Step::Continue)
            }
            Handled::Stop { reason, reply } => {
                if let Some((status, response)) = reply
                    && let Err(encode) = s.reply_now(msg_ref.clone(), status, response)
                {
                    return Step::Stop(encode);
                }
                Step::Stop(reason)
            }
        });
        self.socket.current_ref = None;
        if let Some(parameters) = logged {
            log::debug!(
                "HANDLED {event} INCOMING ON {} ({}) in {}\n  Parameters: {parameters}",
                self.socket.topic(),
                self.channel_name,
                logging::duration(began.elapsed())
            );
        }
        step
    }

    /// Runs a callback, turning a panic into [`Step::Panicked`] (P67).
    fn guarded(&mut self, callback: &str, f: impl FnOnce(&mut dyn Channel, &mut Socket) -> Step) -> Step {
        let (channel, socket) = (&mut self.channel, &mut self.socket);
        match catch_unwind(AssertUnwindSafe(|| f(channel.as_mut(), socket))) {
            Ok(step) => step,
            Err(panic) => {
                stats::incr(self.stats.panics());
                log::error!(
                    "{} ({}) crashed in {callback}: {}",
                    self.socket.topic(),
                    self.channel_name,
                    panic_message(&panic)
                );
                Step::Panicked
            }
        }
    }

    fn reply(&mut self, msg_ref: Option<String>, status: String, response: Payload) {
        if let Err(StopReason::Error(why)) = self.socket.reply_now(msg_ref, status, response) {
            log::error!("{}: {why}", self.socket.topic());
        }
    }

    /// Stop handling (PROTOCOL.md 5.6): graceful reasons send `phx_close` before
    /// terminate; others are logged, and the exit notice makes it `phx_error`.
    fn stop(&mut self, reason: StopReason) -> End {
        let graceful = reason.is_graceful();
        if graceful {
            let link = &self.socket.link;
            let _ = link.outbound.push_control(OutItem::Closing { instance: link.instance });
        } else {
            log::error!("{} ({}) stopped: {reason}", self.socket.topic(), self.channel_name);
        }
        self.terminate(&reason);
        End::Stopped { crashed: !graceful }
    }

    fn terminate(&mut self, reason: &StopReason) {
        let (channel, socket) = (&mut self.channel, &mut self.socket);
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| channel.terminate(reason, socket))) {
            stats::incr(self.stats.panics());
            log::error!(
                "{} ({}) crashed in terminate: {}",
                self.socket.topic(),
                self.channel_name,
                panic_message(&panic)
            );
        }
    }
}

/// Runs the channel, then removes whatever it tracked in presence, however it ended (P93).
fn run(start: ChannelStart) {
    start.receiver.bind();
    let (presence, instance) = (start.presence.clone(), start.link.instance);
    run_channel(start);
    presence.untrack_all(instance);
}

fn run_channel(start: ChannelStart) {
    let ChannelStart {
        factory, channel_name, join, link, assigns, pubsub, inbox, receiver, stats, log, presence, ..
    } = start;
    let topic = link.topic.clone();
    let began = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut channel = factory(&topic);
        let mut socket = Socket::new(link.clone(), assigns, pubsub.clone(), inbox.clone(), presence);
        let result = channel.join(&topic, &join.payload, &mut socket);
        (channel, socket, result)
    }));
    let reply = |status: &str, response: Payload| {
        link.serializer.encode_reply(&crate::message::Reply {
            join_ref: join.join_ref.clone(),
            msg_ref: join.msg_ref.clone(),
            topic: topic.clone(),
            status: status.to_owned(),
            response,
        })
    };
    let crashed_reply = || reply("error", Payload::Json(json!({"reason": "join crashed"})));
    let log_join = |verb: &str| {
        if !logging::is_quiet_topic(&topic) {
            log::info!(
                "{verb} {topic} in {}\n  Parameters: {}",
                logging::duration(began.elapsed()),
                params(&join.payload, &log.filter)
            );
        }
    };
    let (channel, socket) = match outcome {
        Ok((channel, mut socket, Ok(response))) => match reply("ok", response) {
            Ok(frame) => {
                socket.joined = true;
                let intercepts: Arc<[String]> = channel.intercept().iter().map(|e| e.to_string()).collect();
                let subscriber = Subscriber::Channel(ChannelSubscriber {
                    owner: link.instance,
                    outbound: link.outbound.clone(),
                    serializer: link.serializer,
                    intercepts,
                    inbox: inbox.clone(),
                });
                pubsub.inner.registry.subscribe_then(link.instance, &topic, subscriber, || {
                    let _ = link.outbound.push_control(OutItem::JoinResult {
                        instance: link.instance,
                        frame,
                        joined: true,
                    });
                });
                stats::incr(stats.channels());
                stats::incr(stats.joins_total());
                log_join("JOINED");
                (channel, socket)
            }
            Err(err) => {
                log::error!("join of {topic} returned a reply that cannot be encoded: {err}");
                refuse_join(&link, crashed_reply());
                return;
            }
        },
        Ok((mut channel, mut socket, Err(response))) => {
            log_join("REFUSED JOIN");
            refuse_join(&link, reply("error", response).or_else(|_| crashed_reply()));
            // Phoenix stops a refused channel with reason `shutdown`, running terminate.
            let _ = catch_unwind(AssertUnwindSafe(|| channel.terminate(&StopReason::Shutdown, &mut socket)));
            return;
        }
        Err(panic) => {
            stats::incr(stats.panics());
            log::error!("join of {topic} crashed: {}", panic_message(&panic));
            refuse_join(&link, crashed_reply());
            return;
        }
    };
    let mut runner = Runner { channel, socket, stats: stats.clone(), channel_name, log };
    let end = runner.run(&receiver);
    runner.socket.unsubscribe_all();
    stats::decr(stats.channels());
    let crashed = match end {
        End::Stopped { crashed } | End::Aborted { crashed } => crashed,
        End::Closed => false,
    };
    let _ = link.outbound.push_control(OutItem::Exited { instance: link.instance, crashed });
}

fn refuse_join(link: &ChannelLink, frame: Result<crate::serializer::Frame, crate::serializer::EncodeError>) {
    match frame {
        Ok(frame) => {
            let _ = link.outbound.push_control(OutItem::JoinResult { instance: link.instance, frame, joined: false });
        }
        Err(err) => log::error!("cannot encode the join reply on {}: {err}", link.topic),
    }
}

fn params(payload: &Payload, filter: &[String]) -> String {
    match payload {
        Payload::Json(value) => logging::filter(value, filter).to_string(),
        Payload::Binary(bytes) => format!("<<{} bytes>>", bytes.len()),
    }
}

fn panic_message(panic: &Box<dyn Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_owned()
    }
}
