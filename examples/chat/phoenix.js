// phoenix.js: a small Phoenix Channels client, written for the phx-channels chat
// example. It speaks the same wire protocol as the official `phoenix` npm package
// (V2 JSON, `vsn=2.0.0`) and behaves like it where a server can tell the difference,
// but it is written to be read: each class is one piece of the protocol.
//
//   Serializer  turns messages into text frames and back.
//   Socket      one WebSocket connection: refs, heartbeats, reconnects, routing.
//   Channel     one joined topic on that connection: join, push, on, leave, rejoin.
//   Push        one message that expects a reply: receive("ok" | "error" | "timeout").
//   Presence    the list of who is on a topic, kept from presence_state/presence_diff.
//
// Usage:
//
//   import { Socket, Presence } from "./phoenix.js";
//   const socket = new Socket("/socket", { params: { token: "..." } });
//   socket.connect();
//   const channel = socket.channel("room:lobby", { user: "ada" });
//   channel.on("new_msg", (msg) => console.log(msg.user, msg.body));
//   channel.join()
//     .receive("ok", () => channel.push("new_msg", { body: "hi" }))
//     .receive("error", ({ reason }) => console.log("refused:", reason));
//
// Every message on the wire has five fields (join_ref, ref, topic, event, payload):
//   - ref      chosen by the client for each message; the server echoes it in the
//              reply. One counter per socket, sent as a decimal string.
//   - join_ref the ref of the phx_join that created the current channel instance.
//              Every channel message carries it, so the server and the client can
//              tell successive joins of one topic apart and drop stale traffic.

// Reserved events (the server never sends phx_join or phx_leave).
const EVENTS = {
  join: "phx_join",
  leave: "phx_leave",
  reply: "phx_reply", // payload {status, response}; ref = the request's ref
  close: "phx_close", // the channel stopped gracefully: it is gone for good
  error: "phx_error", // the channel crashed: rejoin it
  heartbeat: "heartbeat", // only on the reserved topic "phoenix"
};

const CHANNEL_STATES = {
  closed: "closed", // never joined, or left / closed by the server
  errored: "errored", // join refused or timed out, crashed, or transport lost
  joined: "joined",
  joining: "joining",
  leaving: "leaving",
};

const DEFAULT_TIMEOUT = 10000; // ms, for every push, the join included
const HEARTBEAT_INTERVAL = 30000; // ms between a heartbeat reply and the next one
const WS_CLOSE_NORMAL = 1000; // the only close code after which we do not reconnect

// Delay before reconnecting the socket, by attempt number (1, 2, ...).
const reconnectAfterMs = (tries) =>
  [10, 50, 100, 150, 200, 250, 500, 1000, 2000][tries - 1] || 5000;

// Delay before rejoining an errored channel, by attempt number.
const rejoinAfterMs = (tries) => [1000, 2000, 5000][tries - 1] || 10000;

// ---------------------------------------------------------------------------
// Serializer: V2 JSON. One text frame is one array:
//   [join_ref, ref, topic, event, payload]
// for example ["1","3","room:lobby","new_msg",{"body":"hi"}].
// Server frames leave join_ref and/or ref null where they do not apply:
//   reply to a push        ["1","3","room:lobby","phx_reply",{"status":"ok","response":{}}]
//   push from the channel  ["1",null,"room:lobby","presence_state",{...}]
//   broadcast              [null,null,"room:lobby","new_msg",{...}]
//   heartbeat reply        [null,"7","phoenix","phx_reply",{"status":"ok","response":{}}]
// (Binary frames, for ArrayBuffer payloads, are not supported by this client.)

export const Serializer = {
  encode({ join_ref, ref, topic, event, payload }) {
    return JSON.stringify([join_ref, ref, topic, event, payload]);
  },

  decode(text) {
    const [join_ref, ref, topic, event, payload] = JSON.parse(text);
    return { join_ref, ref, topic, event, payload };
  },
};

// A timer that retries with a growing delay: attempt n waits delayFor(n) ms.
// reset() cancels it and starts counting from 1 again.
class Backoff {
  constructor(callback, delayFor) {
    this.callback = callback;
    this.delayFor = delayFor;
    this.tries = 0;
    this.timer = null;
  }

  reset() {
    this.tries = 0;
    clearTimeout(this.timer);
    this.timer = null;
  }

  schedule() {
    clearTimeout(this.timer);
    this.tries += 1;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.callback();
    }, this.delayFor(this.tries));
  }
}

// ---------------------------------------------------------------------------
// Socket: one WebSocket connection, shared by every channel.
//
//   new Socket(endPoint, options)
//     endPoint   "/socket" (same host as the page) or a full "ws://host/socket".
//                The transport path "/websocket" is appended, then the params and
//                vsn=2.0.0: ws://host/socket/websocket?token=abc&vsn=2.0.0
//     options    params              object of connect params (query string)
//                timeout             default push timeout, ms (10000)
//                heartbeatIntervalMs (30000)
//                reconnectAfterMs    tries => ms
//                rejoinAfterMs       tries => ms, for channels
//                logger              (kind, msg, data) => void, for debugging
//                transport           WebSocket constructor (for tests)

export class Socket {
  constructor(endPoint, options = {}) {
    this.endPoint = endPoint;
    this.params = options.params || {};
    this.timeout = options.timeout || DEFAULT_TIMEOUT;
    this.heartbeatIntervalMs = options.heartbeatIntervalMs || HEARTBEAT_INTERVAL;
    this.reconnectAfterMs = options.reconnectAfterMs || reconnectAfterMs;
    this.rejoinAfterMs = options.rejoinAfterMs || rejoinAfterMs;
    this.logger = options.logger || null;
    this.transport = options.transport || globalThis.WebSocket;

    this.conn = null; // the current WebSocket, if any
    this.channels = [];
    this.ref = 0; // the ref counter, one per socket
    this.pendingHeartbeatRef = null; // ref of the heartbeat awaiting its reply
    this.userClosed = false; // disconnect() was called: do not reconnect
    this.forceReconnect = false; // reconnect even though we close with 1000
    this.heartbeatTimer = null;
    this.callbacks = { open: [], close: [], error: [], message: [] };
    this.reconnectTimer = new Backoff(() => this.reconnect(), (n) => this.reconnectAfterMs(n));
  }

  // The full WebSocket URL. The user's params come first, vsn last.
  endPointURL() {
    let url = this.endPoint + "/websocket";
    if (!/^wss?:\/\//.test(url)) {
      const { protocol, host } = globalThis.location;
      url = (protocol === "https:" ? "wss://" : "ws://") + host + url;
    }
    const query = new URLSearchParams({ ...this.params, vsn: "2.0.0" });
    return url + "?" + query;
  }

  log(kind, msg, data) {
    if (this.logger) this.logger(kind, msg, data);
  }

  // Lifecycle callbacks. onClose gets the CloseEvent, onError the error event,
  // onMessage every decoded message.
  onOpen(callback) { this.callbacks.open.push(callback); }
  onClose(callback) { this.callbacks.close.push(callback); }
  onError(callback) { this.callbacks.error.push(callback); }
  onMessage(callback) { this.callbacks.message.push(callback); }

  isConnected() {
    return this.conn !== null && this.conn.readyState === 1; // WebSocket.OPEN
  }

  // "connecting", "open", "closing" or "closed".
  connectionState() {
    const states = ["connecting", "open", "closing", "closed"];
    return this.conn ? states[this.conn.readyState] : "closed";
  }

  // Refs are opaque to the server; we send decimal strings "1", "2", ...
  makeRef() {
    this.ref += 1;
    return String(this.ref);
  }

  connect() {
    if (this.conn) return;
    this.userClosed = false;
    const conn = new this.transport(this.endPointURL());
    this.conn = conn;
    conn.onopen = () => this.onConnOpen();
    conn.onerror = (event) => this.onConnError(event);
    conn.onmessage = (event) => this.onConnMessage(event.data);
    conn.onclose = (event) => this.onConnClose(event);
  }

  // Close on purpose (code 1000 by default), and do not reconnect. Channels keep
  // their state: after a later connect() they rejoin.
  disconnect(code = WS_CLOSE_NORMAL, reason = "") {
    this.userClosed = true;
    this.reconnectTimer.reset();
    this.teardown(code, reason);
  }

  // Called by the reconnect timer: drop the current connection, if any, and
  // open a new one.
  reconnect() {
    this.teardown(WS_CLOSE_NORMAL, "reconnecting");
    this.connect();
  }

  // Close the WebSocket without waiting for its close event, and run the close
  // handling at once. Used for disconnect(), reconnects and heartbeat timeouts.
  teardown(code, reason) {
    const conn = this.conn;
    if (!conn) return;
    conn.onopen = conn.onerror = conn.onmessage = conn.onclose = null;
    conn.close(code, reason);
    this.onConnClose({ code, reason, wasClean: true });
  }

  onConnOpen() {
    this.log("transport", "connected to " + this.endPointURL());
    this.reconnectTimer.reset();
    this.resetHeartbeat();
    this.callbacks.open.forEach((cb) => cb());
    // Channels listen to open too (Channel.onSocketOpen): errored ones rejoin now.
    this.channels.slice().forEach((channel) => channel.onSocketOpen());
  }

  onConnError(event) {
    this.log("transport", "error", event);
    this.callbacks.error.forEach((cb) => cb(event));
  }

  // The connection is gone. Every channel that was joined or joining is now
  // errored (its server-side process died with the connection). Reconnect with
  // backoff unless the server closed with 1000 or the user called disconnect().
  onConnClose(event) {
    this.log("transport", "close", event);
    this.conn = null;
    clearTimeout(this.heartbeatTimer);
    this.pendingHeartbeatRef = null;
    this.channels.slice().forEach((channel) => channel.onSocketClose());
    const reconnect = this.forceReconnect || (!this.userClosed && event.code !== WS_CLOSE_NORMAL);
    this.forceReconnect = false;
    if (reconnect) this.reconnectTimer.schedule();
    this.callbacks.close.forEach((cb) => cb(event, reconnect));
  }

  // Heartbeats keep the server's idle timeout (60 s by default) from firing, and
  // tell us when a connection has silently died. The first goes out 30 s after the
  // connection opens, each next one 30 s after the previous reply. If no reply
  // comes within 30 s, we close (code 1000, "heartbeat timeout") and reconnect.
  resetHeartbeat() {
    clearTimeout(this.heartbeatTimer);
    this.pendingHeartbeatRef = null;
    this.heartbeatTimer = setTimeout(() => this.sendHeartbeat(), this.heartbeatIntervalMs);
  }

  sendHeartbeat() {
    if (!this.isConnected()) return;
    // Frame: [null, ref, "phoenix", "heartbeat", {}]; the reply has the same ref.
    this.pendingHeartbeatRef = this.makeRef();
    this.push({ join_ref: null, ref: this.pendingHeartbeatRef, topic: "phoenix", event: EVENTS.heartbeat, payload: {} });
    this.heartbeatTimer = setTimeout(() => this.heartbeatTimeout(), this.heartbeatIntervalMs);
  }

  heartbeatTimeout() {
    this.log("transport", "heartbeat timeout, reconnecting");
    this.forceReconnect = true; // code 1000 below, but we do want a new connection
    this.teardown(WS_CLOSE_NORMAL, "heartbeat timeout");
  }

  // Send one message. Returns false (and sends nothing) when not connected:
  // channels only push while connected and hold their own pushes otherwise.
  push(msg) {
    if (!this.isConnected()) return false;
    this.log("push", `${msg.topic} ${msg.event} (${msg.join_ref}, ${msg.ref})`, msg.payload);
    this.conn.send(Serializer.encode(msg));
    return true;
  }

  onConnMessage(text) {
    const msg = Serializer.decode(text);
    const { join_ref, ref, topic, event, payload } = msg;
    this.log("receive", `${topic} ${event} (${join_ref}, ${ref})`, payload);

    // Any message carrying the pending heartbeat's ref is its reply.
    if (ref !== null && ref === this.pendingHeartbeatRef) this.resetHeartbeat();

    // Route to every channel object on this topic; each one drops what is not
    // meant for its current join (see Channel.isMember).
    this.channels.slice().forEach((channel) => {
      if (channel.isMember(topic, join_ref)) channel.trigger(event, payload, ref, join_ref);
    });
    this.callbacks.message.forEach((cb) => cb(msg));
  }

  // A new Channel on this socket. Call join() on it to join.
  channel(topic, params = {}) {
    const channel = new Channel(topic, params, this);
    this.channels.push(channel);
    return channel;
  }

  remove(channel) {
    this.channels = this.channels.filter((c) => c !== channel);
  }
}

// ---------------------------------------------------------------------------
// Push: one message that expects a phx_reply. The reply comes back on the same
// topic with event phx_reply, the push's ref, and payload {status, response}:
//
//   push.receive("ok", (response) => ...)
//       .receive("error", (response) => ...)
//       .receive("timeout", () => ...)
//
// Statuses are whatever string the server sends ("ok" and "error" in practice).
// "timeout" fires if no reply comes within the timeout; a late reply is ignored.

export class Push {
  constructor(channel, event, payload, timeout) {
    this.channel = channel;
    this.event = event;
    this.payload = payload; // an object, or a function returning one (for rejoins)
    this.timeout = timeout;
    this.hooks = [];
    this.reset();
  }

  // Forget any previous send: a resend gets a new ref and waits afresh.
  reset() {
    this.cancelTimeout();
    this.ref = null;
    this.received = null; // {status, response} once replied or timed out
  }

  receive(status, callback) {
    if (this.received && this.received.status === status) callback(this.received.response);
    this.hooks.push({ status, callback });
    return this;
  }

  // Send with a fresh ref and start the timeout. The channel routes the reply
  // here through a private event named after the ref.
  send() {
    this.reset();
    this.ref = this.channel.socket.makeRef();
    this.replyEvent = "chan_reply_" + this.ref;
    this.channel.onReply(this.replyEvent, (reply) => this.settle(reply));
    this.timer = setTimeout(() => this.settle({ status: "timeout", response: {} }), this.timeout);
    const payload = typeof this.payload === "function" ? this.payload() : this.payload;
    this.channel.socket.push({
      join_ref: this.channel.joinRef(),
      ref: this.ref,
      topic: this.channel.topic,
      event: this.event,
      payload,
    });
  }

  resend(timeout) {
    this.timeout = timeout;
    this.send();
  }

  settle(reply) {
    if (this.received) return;
    this.cancelTimeout();
    this.received = reply;
    this.hooks
      .filter((hook) => hook.status === reply.status)
      .forEach((hook) => hook.callback(reply.response));
  }

  cancelTimeout() {
    clearTimeout(this.timer);
    this.timer = null;
    if (this.replyEvent) this.channel.offReply(this.replyEvent);
    this.replyEvent = null;
  }
}

// ---------------------------------------------------------------------------
// Channel: one topic joined over the socket.
//
//   join(timeout)               -> Push   (once per Channel object)
//   push(event, payload, tmo)   -> Push   (held until joined)
//   on(event, cb) -> id,  off(event, id)  cb(payload, ref, joinRef)
//   onClose(cb), onError(cb)
//   leave(timeout)              -> Push
//   joinRef(), state
//
// Life of a channel, as the server sees it:
//   -> ["1","1","room:lobby","phx_join",{"user":"ada"}]
//   <- ["1","1","room:lobby","phx_reply",{"status":"ok","response":{}}]
//   <- ["1",null,"room:lobby","presence_state",{...}]      (a push: join_ref set)
//   -> ["1","2","room:lobby","new_msg",{"body":"hi"}]
//   <- ["1","2","room:lobby","phx_reply",{"status":"ok","response":{}}]
//   <- [null,null,"room:lobby","new_msg",{"user":"ada","body":"hi","at":1700000000000}]
//   -> ["1","3","room:lobby","phx_leave",{}]
//   <- ["1","3","room:lobby","phx_reply",{"status":"ok","response":{}}]
//   <- ["1","1","room:lobby","phx_close",{}]

export class Channel {
  constructor(topic, params, socket) {
    this.topic = topic;
    this.params = params;
    this.socket = socket;
    this.state = CHANNEL_STATES.closed;
    this.timeout = socket.timeout;
    this.joinedOnce = false;
    this.bindings = []; // {event, id, callback}
    this.bindingId = 0;
    this.replyHandlers = new Map(); // "chan_reply_<ref>" -> callback
    this.pushBuffer = []; // pushes made while not joined, sent once joined
    this.closeCallbacks = [];
    this.errorCallbacks = [];
    this.rejoinTimer = new Backoff(() => {
      if (this.socket.isConnected()) this.rejoin();
    }, (n) => socket.rejoinAfterMs(n));

    // The join is a Push whose ref becomes the channel's join_ref. Each rejoin
    // resends it with a new ref, so each channel instance has its own join_ref.
    this.joinPush = new Push(this, EVENTS.join, () => this.params, this.timeout);
    this.joinPush.receive("ok", () => {
      this.state = CHANNEL_STATES.joined;
      this.rejoinTimer.reset();
      this.pushBuffer.forEach((push) => push.send());
      this.pushBuffer = [];
    });
    this.joinPush.receive("error", () => {
      // Refused (for example {"reason":"unauthorized"}). Like the official client
      // we retry with backoff; call leave() in your "error" hook to stop that.
      if (this.state !== CHANNEL_STATES.joining) return;
      this.state = CHANNEL_STATES.errored;
      this.rejoinTimer.schedule();
    });
    this.joinPush.receive("timeout", () => {
      if (this.state !== CHANNEL_STATES.joining) return;
      // The server may still be running the join: leave that instance (by its
      // join_ref) so it does not linger, then try again later.
      this.socket.push({ join_ref: this.joinRef(), ref: this.socket.makeRef(), topic: this.topic, event: EVENTS.leave, payload: {} });
      // Forget that join_ref, so the reply and phx_close it may cause are dropped.
      this.joinPush.reset();
      this.state = CHANNEL_STATES.errored;
      this.rejoinTimer.schedule();
    });
  }

  joinRef() {
    return this.joinPush.ref;
  }

  // Join the topic. Works before the socket is connected: the join is sent as
  // soon as it is. Returns the join Push, for receive("ok" | "error" | "timeout").
  // Its hooks run again on every rejoin (after a crash or a reconnect), so an
  // "ok" hook may run more than once.
  join(timeout = this.timeout) {
    if (this.joinedOnce) throw new Error("tried to join multiple times; 'join' may only be called once per channel");
    this.joinedOnce = true;
    this.timeout = timeout;
    this.rejoin();
    return this.joinPush;
  }

  // Send phx_join (again) with a new ref. The reply settles joinPush.
  rejoin() {
    if (this.state === CHANNEL_STATES.leaving) return;
    // Only one channel object per topic may be joined: leave any other.
    this.socket.channels
      .filter((c) => c !== this && c.topic === this.topic && (c.state === CHANNEL_STATES.joined || c.state === CHANNEL_STATES.joining))
      .forEach((c) => c.leave());
    this.state = CHANNEL_STATES.joining;
    this.rejoinTimer.reset();
    if (this.socket.isConnected()) {
      this.joinPush.resend(this.timeout);
    } else {
      this.joinPush.reset(); // sent from onSocketOpen
    }
  }

  // Push an event. Before the join succeeds (or while rejoining) the push is held
  // and sent once joined. It times out if it is still held after `timeout` ms,
  // and again if no reply comes within `timeout` ms of being sent.
  push(event, payload, timeout = this.timeout) {
    if (!this.joinedOnce) throw new Error(`tried to push '${event}' to '${this.topic}' before joining`);
    const push = new Push(this, event, payload, timeout);
    if (this.canPush()) {
      push.send();
    } else {
      this.pushBuffer.push(push);
      push.timer = setTimeout(() => {
        this.pushBuffer = this.pushBuffer.filter((p) => p !== push);
        push.settle({ status: "timeout", response: {} });
      }, timeout);
    }
    return push;
  }

  canPush() {
    return this.socket.isConnected() && this.state === CHANNEL_STATES.joined;
  }

  // Leave the topic. The channel is closed on the ok reply, or on timeout, or at
  // once if it cannot push (not connected, or not joined). The server's phx_close
  // that follows the reply is then dropped: this channel is no longer routed to.
  leave(timeout = this.timeout) {
    this.rejoinTimer.reset();
    this.joinPush.cancelTimeout();
    const wasJoined = this.canPush();
    this.state = CHANNEL_STATES.leaving;
    const leavePush = new Push(this, EVENTS.leave, {}, timeout);
    leavePush.receive("ok", () => this.close("leave")).receive("timeout", () => this.close("leave"));
    if (wasJoined) {
      leavePush.send();
    } else {
      leavePush.settle({ status: "ok", response: {} });
    }
    return leavePush;
  }

  // Subscribe to an event pushed or broadcast on this topic. Returns an id for off().
  on(event, callback) {
    this.bindingId += 1;
    this.bindings.push({ event, id: this.bindingId, callback });
    return this.bindingId;
  }

  off(event, id) {
    this.bindings = this.bindings.filter((b) => !(b.event === event && (id === undefined || b.id === id)));
  }

  onClose(callback) { this.closeCallbacks.push(callback); }
  onError(callback) { this.errorCallbacks.push(callback); }

  onReply(replyEvent, callback) { this.replyHandlers.set(replyEvent, callback); }
  offReply(replyEvent) { this.replyHandlers.delete(replyEvent); }

  // Is a message with this topic and join_ref for this channel instance? A frame
  // whose join_ref is set and differs from our current join belongs to an earlier
  // instance of the topic (before a rejoin) and is dropped. Broadcasts carry a null
  // join_ref and always pass.
  isMember(topic, joinRef) {
    if (topic !== this.topic) return false;
    if (joinRef != null && joinRef !== "" && joinRef !== this.joinRef()) {
      this.socket.log("channel", "dropping outdated message", { topic, joinRef });
      return false;
    }
    return true;
  }

  // Dispatch one incoming message.
  trigger(event, payload, ref, joinRef) {
    if (this.state === CHANNEL_STATES.closed) return;
    if (event === EVENTS.reply) {
      // {status, response} goes to the Push waiting on this ref, if any.
      const handler = this.replyHandlers.get("chan_reply_" + ref);
      if (handler) handler(payload);
      return;
    }
    if (event === EVENTS.close) {
      // The server stopped the channel gracefully. It will not come back.
      this.close("server");
      return;
    }
    if (event === EVENTS.error) {
      this.error(payload);
      return;
    }
    this.bindings
      .filter((b) => b.event === event)
      .forEach((b) => b.callback(payload, ref, joinRef));
  }

  // The channel crashed (phx_error from the server) or the transport went away.
  // A leaving or closed channel ignores this; any other becomes errored, and
  // rejoins with backoff if the socket is connected, or as soon as it reconnects.
  error(reason) {
    if (this.state === CHANNEL_STATES.leaving || this.state === CHANNEL_STATES.closed) return;
    this.socket.log("channel", "error " + this.topic, reason);
    this.joinPush.cancelTimeout();
    this.state = CHANNEL_STATES.errored;
    this.errorCallbacks.forEach((cb) => cb(reason));
    if (this.socket.isConnected()) this.rejoinTimer.schedule();
  }

  // Closed for good: stop all timers and stop receiving.
  close(reason) {
    if (this.state === CHANNEL_STATES.closed) return;
    this.rejoinTimer.reset();
    this.joinPush.cancelTimeout();
    this.state = CHANNEL_STATES.closed;
    this.socket.remove(this);
    this.closeCallbacks.forEach((cb) => cb(reason));
  }

  // Called by the socket.
  onSocketOpen() {
    this.rejoinTimer.reset();
    if (this.state === CHANNEL_STATES.errored || this.state === CHANNEL_STATES.joining) this.rejoin();
  }

  onSocketClose() {
    this.rejoinTimer.reset();
    if (this.state === CHANNEL_STATES.joined || this.state === CHANNEL_STATES.joining) {
      this.error({ reason: "connection_closed" });
    } else if (this.state === CHANNEL_STATES.leaving) {
      this.close("leave"); // the server-side channel is gone with the connection
    }
  }
}

// ---------------------------------------------------------------------------
// Presence: who is on a topic, as a map
//
//   { "<key>": { metas: [ { phx_ref: "...", ...meta }, ... ] }, ... }
//
// One key (a user name here) may have several metas: one per tracked process,
// for example one per browser tab. Metas are told apart only by phx_ref.
//
// The server pushes presence_state (the whole map) after each join, then
// broadcasts presence_diff {joins: {...}, leaves: {...}} on every change. Diffs
// can arrive before the state of the current join: they are held until it comes.
//
//   const presence = new Presence(channel);
//   presence.onJoin((key, current, joined) => ...)  // current is undefined for a new key
//   presence.onLeave((key, current, left) => ...)   // current.metas is [] when the key is gone
//   presence.onSync(() => render(presence.list()))
//   presence.list((key, { metas }) => ...)          // default: [{metas}, ...]

export class Presence {
  constructor(channel, options = {}) {
    const events = options.events || { state: "presence_state", diff: "presence_diff" };
    this.channel = channel;
    this.state = {};
    this.pendingDiffs = [];
    this.joinRef = null; // the channel join_ref our state belongs to
    this.callbacks = { join: () => {}, leave: () => {}, sync: () => {} };

    channel.on(events.state, (newState) => {
      this.joinRef = channel.joinRef();
      this.state = Presence.syncState(this.state, newState, this.callbacks.join, this.callbacks.leave);
      this.pendingDiffs.forEach((diff) => {
        this.state = Presence.syncDiff(this.state, diff, this.callbacks.join, this.callbacks.leave);
      });
      this.pendingDiffs = [];
      this.callbacks.sync();
    });

    channel.on(events.diff, (diff) => {
      if (this.inPendingSyncState()) {
        this.pendingDiffs.push(diff);
      } else {
        this.state = Presence.syncDiff(this.state, diff, this.callbacks.join, this.callbacks.leave);
        this.callbacks.sync();
      }
    });
  }

  onJoin(callback) { this.callbacks.join = callback; }
  onLeave(callback) { this.callbacks.leave = callback; }
  onSync(callback) { this.callbacks.sync = callback; }

  list(chooser = (key, presence) => presence) {
    return Presence.list(this.state, chooser);
  }

  // True until the presence_state for the channel's current join has arrived.
  inPendingSyncState() {
    return this.joinRef === null || this.joinRef !== this.channel.joinRef();
  }

  // The functions below are pure: they take a state and return a new one.

  // Replace the state by newState, calling onJoin/onLeave for the differences
  // (by phx_ref), as if it were one diff.
  static syncState(currentState, newState, onJoin, onLeave) {
    const joins = {};
    const leaves = {};
    for (const [key, presence] of Object.entries(currentState)) {
      if (!(key in newState)) leaves[key] = presence;
    }
    for (const [key, presence] of Object.entries(newState)) {
      const current = currentState[key];
      if (!current) {
        joins[key] = presence;
        continue;
      }
      const newRefs = new Set(presence.metas.map((m) => m.phx_ref));
      const curRefs = new Set(current.metas.map((m) => m.phx_ref));
      const joined = presence.metas.filter((m) => !curRefs.has(m.phx_ref));
      const left = current.metas.filter((m) => !newRefs.has(m.phx_ref));
      if (joined.length > 0) joins[key] = { ...presence, metas: joined };
      if (left.length > 0) leaves[key] = { ...current, metas: left };
    }
    return Presence.syncDiff(currentState, { joins, leaves }, onJoin, onLeave);
  }

  // Apply one diff: joins first, then leaves (so an update, which leaves the old
  // meta and joins the new one, never makes the key disappear). A joined meta whose
  // phx_ref is already known changes nothing and calls no callback.
  static syncDiff(state, { joins, leaves }, onJoin = () => {}, onLeave = () => {}) {
    state = clone(state);
    for (const [key, presence] of Object.entries(joins || {})) {
      const current = state[key];
      const known = new Set(current ? current.metas.map((m) => m.phx_ref) : []);
      const added = presence.metas.filter((m) => !known.has(m.phx_ref));
      if (added.length === 0) continue;
      // Fields next to metas (from a server-side fetch hook) come from the join.
      state[key] = { ...clone(presence), metas: [...(current ? current.metas : []), ...clone(added)] };
      onJoin(key, current, { ...presence, metas: added });
    }
    for (const [key, presence] of Object.entries(leaves || {})) {
      const current = state[key];
      if (!current) continue;
      const gone = new Set(presence.metas.map((m) => m.phx_ref));
      const left = current.metas.filter((m) => gone.has(m.phx_ref));
      if (left.length === 0) continue;
      current.metas = current.metas.filter((m) => !gone.has(m.phx_ref));
      onLeave(key, current, { ...presence, metas: left });
      if (current.metas.length === 0) delete state[key];
    }
    return state;
  }

  static list(state, chooser = (key, presence) => presence) {
    return Object.keys(state).map((key) => chooser(key, state[key]));
  }
}

function clone(value) {
  return JSON.parse(JSON.stringify(value));
}
