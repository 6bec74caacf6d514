//! The per-channel thread: runs `join`, then the callbacks for every message in the
//! channel's inbox, then `terminate`; reports each step to the connection through its
//! outbound queue, in order.

use crate::call::Call;
use crate::channel::{CallReply, Channel, Flow, Handled};
use crate::channel_runtime::ChannelRuntime;
use crate::inbox::{ChannelMsg, Inbox, InboxReceiver};
use crate::intercepted::Intercepted;
use crate::logging;
use crate::message::{Message, PHX_LEAVE, Ref, Reply};
use crate::payload::Payload;
use crate::pubsub::ChannelSubscriber;
use crate::router::Route;
use crate::serializer::{EncodeError, Frame};
use crate::socket::{Assigns, ChannelLink, Socket};
use crate::spare_threads::Job;
use crate::stats;
use crate::stop_reason::StopReason;
use crate::telemetry::{Event, Outcome};
use crate::thread_name;
use crate::transport::outbound::OutItem;
use serde_json::{Value, json};
use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

/// Most pushes from `handle_out` a draining thread holds before writing them.
const FLUSH_PUSHES: usize = 64;

/// Why a channel's thread did not start.
#[derive(Debug)]
pub(crate) enum StartError {
    /// The endpoint runs as many channel threads as it may.
    TooManyThreads,
    /// The OS refused a thread.
    Spawn(std::io::Error),
}

/// One join, ready to run on a new thread.
struct ChannelStart {
    pub(crate) route: Route,
    pub(crate) join: Message,
    pub(crate) link: Arc<ChannelLink>,
    pub(crate) assigns: Assigns,
    pub(crate) inbox: Inbox,
    pub(crate) runtime: Arc<ChannelRuntime>,
}

/// Starts a channel on a spare thread, or on a new one: it runs `join`, then the
/// channel until it ends. Returns the channel's inbox. On failure nothing has run.
pub(crate) fn start(
    runtime: &Arc<ChannelRuntime>,
    route: &Route,
    join: Message,
    link: Arc<ChannelLink>,
    assigns: Assigns,
) -> Result<Inbox, StartError> {
    let (inbox, receiver) = Inbox::new(runtime.settings.inbox_limit);
    let start = ChannelStart {
        route: route.clone(),
        join,
        link: link.clone(),
        assigns,
        inbox: inbox.clone(),
        runtime: runtime.clone(),
    };
    stats::incr(runtime.stats.channel_threads());
    let job: Job = Box::new(move || {
        let stats = start.runtime.stats.clone();
        thread_name::name_current_thread(&start.link.topic);
        run(start, receiver);
        thread_name::name_current_thread(SPARE_NAME);
        stats::decr(stats.channel_threads());
    });
    let Err(job) = runtime.spares.give(job) else { return Ok(inbox) };
    let cap = runtime.settings.max_threads;
    if runtime.tracker.live() >= cap {
        stats::decr(runtime.stats.channel_threads());
        logging::log_throttled!(
            log::Level::Error,
            "Reached the limit of {cap} channel threads; refusing a join of {}",
            link.topic
        );
        return Err(StartError::TooManyThreads);
    }
    runtime.tracker.enter();
    let thread_runtime = runtime.clone();
    let spawned =
        std::thread::Builder::new().name(THREAD_NAME.into()).stack_size(runtime.settings.stack_size).spawn(move || {
            thread_runtime.settings.scheduling.apply_to_current_thread();
            thread_runtime.spares.serve(job);
            thread_runtime.tracker.leave();
        });
    match spawned {
        Ok(_) => Ok(inbox),
        Err(err) => {
            stats::decr(runtime.stats.channel_threads());
            runtime.tracker.leave();
            Err(StartError::Spawn(err))
        }
    }
}

/// The name the standard library knows a channel thread by (panic messages show it);
/// the OS shows the topic of the channel it runs, or [`SPARE_NAME`] between channels.
const THREAD_NAME: &str = "phx-channel";

/// The OS name of a channel thread waiting for its next channel.
const SPARE_NAME: &str = "phx-spare";

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
    /// The callback panicked or returned [`Handled::Crash`].
    Crash {
        callback: &'static str,
        why: String,
    },
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
    runtime: Arc<ChannelRuntime>,
    channel_name: &'static str,
}

impl Runner {
    fn run(&mut self, receiver: &InboxReceiver) -> End {
        loop {
            // The socket holds a sender of this inbox, so it never disconnects.
            let Some(msg) = receiver.recv() else { return End::Closed };
            // handle_out's pushes wait while intercepted broadcasts come one after
            // another; anything else sees them written first.
            let intercepted = matches!(msg, ChannelMsg::Out(_));
            if !intercepted {
                self.socket.link.flush();
            }
            let step = match msg {
                ChannelMsg::In(msg) if msg.event == PHX_LEAVE => {
                    // reply ok, then phx_close (in `stop`), then terminate.
                    self.reply(msg.msg_ref, "ok".into(), Payload::empty());
                    Step::Stop(StopReason::left())
                }
                ChannelMsg::In(msg) => self.handle_in(msg),
                ChannelMsg::Unhandled { event } => {
                    Step::Crash { callback: "handle_in", why: format!("no handle_in clause for event {event}") }
                }
                ChannelMsg::Out(intercepted) => self.handle_out(intercepted),
                ChannelMsg::Info(info) => self.guarded("handle_info", |c, s| c.handle_info(info, s).into()),
                ChannelMsg::Call(call) => self.handle_call(call),
                ChannelMsg::Stop(reason) => {
                    self.terminate(&reason);
                    return End::Closed;
                }
                ChannelMsg::Kill => return End::Aborted { crashed: false },
            };
            if intercepted
                && (receiver.is_empty() || self.socket.link.held() >= FLUSH_PUSHES || !matches!(step, Step::Continue))
            {
                self.socket.link.flush();
            }
            match step {
                Step::Continue => {}
                Step::Stop(reason) => return self.stop(reason),
                Step::Crash { callback, why } => {
                    self.crashed(callback, &why);
                    return End::Aborted { crashed: true };
                }
            }
        }
    }

    fn handle_in(&mut self, msg: Message) -> Step {
        let Message { msg_ref, event, payload, .. } = msg;
        let filter = &self.runtime.settings.filter_parameters;
        let logged = (log::log_enabled!(log::Level::Debug) && !logging::is_quiet_topic(self.socket.topic()))
            .then(|| params(&payload, filter));
        let observed = self.runtime.telemetry.is_on().then(|| filtered(&payload, filter));
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
            Handled::Crash(why) => Step::Crash { callback: "handle_in", why },
        });
        self.socket.current_ref = None;
        let duration = began.elapsed();
        if let Some(parameters) = logged {
            log::debug!(
                "HANDLED {event} INCOMING ON {} ({}) in {}\n  Parameters: {parameters}",
                self.socket.topic(),
                self.channel_name,
                logging::duration(duration)
            );
        }
        if let Some(params) = observed {
            let (topic, channel) = (self.socket.topic(), self.channel_name);
            self.runtime.telemetry.emit(|hook| {
                hook(&Event::ChannelHandledIn { topic, channel, event: &event, params: &params, duration })
            });
        }
        step
    }

    /// Runs `handle_out` for an intercepted broadcast; its pushes share the broadcast's
    /// encodings and are held in the channel's link until the thread has drained its inbox.
    fn handle_out(&mut self, intercepted: Arc<Intercepted>) -> Step {
        self.socket.intercepted = Some(intercepted.clone());
        let broadcast = &intercepted.broadcast;
        let step = self.guarded("handle_out", |c, s| c.handle_out(&broadcast.event, &broadcast.payload, s).into());
        self.socket.intercepted = None;
        step
    }

    /// Answers a call. The answer goes back before a stop is handled; a call left
    /// unanswered (a stop without an answer, a crash, a panic, no answer yet without
    /// taking the caller) drops its way back, and the caller learns the channel has
    /// ended. A caller `handle_call` took is answered through it, later.
    fn handle_call(&mut self, call: Call) -> Step {
        let Call { request, from } = call;
        self.socket.caller = Some(from);
        let result = self.catching(|c, s| c.handle_call(request, s));
        let caller = self.socket.caller.take();
        let topic = self.socket.topic();
        let (step, answer) = match result {
            Ok(CallReply::Reply(answer)) => (Step::Continue, Some(answer)),
            Ok(CallReply::NoReply) => {
                if caller.is_some() {
                    log::warn!("{topic}: handle_call answered noreply without taking the caller; the call ends");
                }
                (Step::Continue, None)
            }
            Ok(CallReply::Stop { reason, reply }) => (Step::Stop(reason), reply),
            Ok(CallReply::Crash(why)) => (Step::Crash { callback: "handle_call", why }, None),
            Err(why) => (Step::Crash { callback: "handle_call", why }, None),
        };
        match (caller, answer) {
            (Some(caller), Some(answer)) => {
                caller.answer(answer);
            }
            (None, Some(_)) => {
                log::warn!("{topic}: handle_call took the caller and answered too; the answer is dropped")
            }
            _ => {}
        }
        step
    }

    /// Runs a callback, turning a panic into [`Step::Crash`].
    fn guarded(&mut self, callback: &'static str, f: impl FnOnce(&mut dyn Channel, &mut Socket) -> Step) -> Step {
        self.catching(f).unwrap_or_else(|why| Step::Crash { callback, why })
    }

    /// Runs a callback; a panic becomes its message.
    fn catching<T>(&mut self, f: impl FnOnce(&mut dyn Channel, &mut Socket) -> T) -> Result<T, String> {
        let (channel, socket) = (&mut self.channel, &mut self.socket);
        catch_unwind(AssertUnwindSafe(|| f(channel.as_mut(), socket))).map_err(|panic| panic_message(&panic))
    }

    /// Logs, counts and reports a crash in `callback`.
    fn crashed(&self, callback: &str, why: &str) {
        crashed(&self.runtime, self.socket.topic(), self.channel_name, callback, why);
    }

    fn reply(&mut self, msg_ref: Option<Ref>, status: String, response: Payload) {
        if let Err(StopReason::Error(why)) = self.socket.reply_now(msg_ref, status, response) {
            log::error!("{}: {why}", self.socket.topic());
        }
    }

    /// Stop handling: graceful reasons send `phx_close` before
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
        if let Err(why) = self.catching(|channel, socket| channel.terminate(reason, socket)) {
            self.crashed("terminate", &why);
        }
    }
}

/// Runs the channel, then drops its pending timers and removes whatever it tracked in
/// presence, however it ended.
fn run(start: ChannelStart, receiver: InboxReceiver) {
    receiver.bind();
    let (runtime, instance) = (start.runtime.clone(), start.link.instance);
    run_channel(start, &receiver);
    runtime.timers.cancel_all(instance);
    runtime.presence.untrack_all(instance);
}

fn run_channel(start: ChannelStart, receiver: &InboxReceiver) {
    let ChannelStart { route, join, link, assigns, inbox, runtime } = start;
    let topic = link.topic.clone();
    let stats = runtime.stats.clone();
    let began = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut channel = (route.factory)(&topic);
        let mut socket = Socket::new(link.clone(), assigns, inbox.clone(), &runtime);
        let result = channel.join(&topic, &join.payload, &mut socket);
        (channel, socket, result)
    }));
    let reply = |status: &str, response: Payload| {
        link.serializer.encode_reply(&Reply {
            join_ref: join.join_ref.clone(),
            msg_ref: join.msg_ref.clone(),
            topic: topic.clone(),
            status: status.to_owned(),
            response,
        })
    };
    let crashed_reply = || reply("error", Payload::Json(json!({"reason": "join crashed"})));
    let filter = &runtime.settings.filter_parameters;
    let log_join = |verb: &str, outcome: Outcome| {
        let duration = began.elapsed();
        if !logging::is_quiet_topic(&topic) && outcome != Outcome::Crashed {
            log::info!(
                "{verb} {topic} in {}\n  Parameters: {}",
                logging::duration(duration),
                params(&join.payload, filter)
            );
        }
        runtime.telemetry.emit(|hook| {
            let params = filtered(&join.payload, filter);
            hook(&Event::ChannelJoined { topic: &topic, channel: route.name, params: &params, outcome, duration })
        });
    };
    let runner = |channel, socket| Runner { channel, socket, runtime: runtime.clone(), channel_name: route.name };
    let mut runner = match outcome {
        Ok((channel, mut socket, Ok(response))) => match reply("ok", response) {
            Ok(frame) => {
                socket.joined = true;
                let intercepts: Arc<[String]> = channel.intercept().iter().map(|e| e.to_string()).collect();
                let subscriber = ChannelSubscriber {
                    owner: link.instance,
                    outbound: link.outbound.clone(),
                    serializer: link.serializer,
                    intercepts,
                    inbox: inbox.clone(),
                };
                // Counted before the reply goes out, so a client that has its reply sees
                // the join in the endpoint's counters.
                stats::incr(stats.channels());
                stats::incr(stats.joins_total());
                // Compressed (if the connection compresses) before the topic's shard is
                // locked for the subscription, not while it is.
                let frame = link.outbound.for_wire(&frame);
                let joined = OutItem::JoinResult { instance: link.instance, frame, joined: true };
                let id = runtime.pubsub.subscribe_channel(&topic, subscriber, || {
                    let _ = link.outbound.push_control(joined);
                });
                socket.own_subscription = Some(id);
                log_join("JOINED", Outcome::Ok);
                runner(channel, socket)
            }
            Err(err) => {
                let why = format!("join returned a reply that cannot be encoded: {err}");
                crashed(&runtime, &topic, route.name, "join", &why);
                log_join("CRASHED JOIN", Outcome::Crashed);
                refuse_join(&link, crashed_reply());
                return;
            }
        },
        Ok((channel, socket, Err(response))) => {
            log_join("REFUSED JOIN", Outcome::Refused);
            refuse_join(&link, reply("error", response).or_else(|_| crashed_reply()));
            // Phoenix stops a refused channel with reason `shutdown`, running terminate.
            runner(channel, socket).terminate(&StopReason::Shutdown);
            return;
        }
        Err(panic) => {
            crashed(&runtime, &topic, route.name, "join", &panic_message(&panic));
            log_join("CRASHED JOIN", Outcome::Crashed);
            refuse_join(&link, crashed_reply());
            return;
        }
    };
    let end = runner.run(receiver);
    runner.socket.unsubscribe_all();
    stats::decr(stats.channels());
    let crashed = match end {
        End::Stopped { crashed } | End::Aborted { crashed } => crashed,
        End::Closed => false,
    };
    let _ = link.outbound.push_control(OutItem::Exited { instance: link.instance, crashed });
}

/// Logs, counts and reports a crash of a channel in `callback`.
fn crashed(runtime: &ChannelRuntime, topic: &str, channel: &str, callback: &str, reason: &str) {
    stats::incr(runtime.stats.panics());
    log::error!("{topic} ({channel}) crashed in {callback}: {reason}");
    runtime.telemetry.emit(|hook| hook(&Event::ChannelCrashed { topic, channel, callback, reason }));
}

fn refuse_join(link: &ChannelLink, frame: Result<Frame, EncodeError>) {
    match frame {
        Ok(frame) => {
            let _ = link.outbound.push_control(OutItem::JoinResult { instance: link.instance, frame, joined: false });
        }
        Err(err) => log::error!("cannot encode the join reply on {}: {err}", link.topic),
    }
}

/// A payload as telemetry reports it: JSON filtered as in the logs; bytes by their size.
fn filtered(payload: &Payload, filter: &[String]) -> Value {
    match payload {
        Payload::Json(value) => logging::filter(value, filter),
        Payload::Binary(bytes) => Value::String(format!("<<{} bytes>>", bytes.len())),
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
