// The chat page. All protocol work is in phoenix.js; this file is UI.
//
// Server contract (examples/chat.rs):
//   topic     room:<room>, joined with {"user": "<name>"}
//   join      ok {"user_id": "<id>"} or error {"reason": "..."}
//   pushes    presence_state, then presence_diff broadcasts on every change; presences
//             are keyed by user id and carry the display name: {"metas": [...], "name"}
//   new_msg   we push {"body": "..."}; the server replies ok {} or error {"reason"},
//             and broadcasts {"user_id", "user", "body", "at"} to the room, sender included.
//   typing    we push it (no reply) while the person types, at most every TYPING_EVERY;
//             the others get typing {"user_id", "name"} when someone starts, and
//             stopped_typing {"user_id"} when they send, leave, or go quiet for a while
//             (the server's timer decides).

import { Socket, Presence } from "./phoenix.js";

const $ = (id) => document.getElementById(id);
const el = {
  status: $("status"),
  roomTitle: $("room-title"),
  leave: $("leave"),
  joinView: $("join-view"),
  joinForm: $("join-form"),
  name: $("name"),
  room: $("room"),
  join: $("join"),
  joinError: $("join-error"),
  chatView: $("chat-view"),
  presence: $("presence"),
  peopleCount: $("people-count"),
  messages: $("messages"),
  empty: $("empty"),
  composer: $("composer"),
  message: $("message"),
  send: $("send"),
  sendError: $("send-error"),
  typing: $("typing"),
  announcer: $("announcer"),
};

// How often, at most, we tell the server this person is still typing. The server
// shows them as typing until a while after the last report.
const TYPING_EVERY = 1000;

// The name is remembered for this tab only (survives a reload; a new tab starts
// empty, so two tabs can be two people).
const NAME_KEY = "phx-channels-chat:name";

// One socket for the page, connected at once so the status shows whether the
// server is reachable before anyone joins.
const socket = new Socket("/socket");
let everConnected = false;

socket.onOpen(() => {
  everConnected = true;
  setStatus("connected", "Connected");
});
socket.onClose((_event, willReconnect) => {
  if (willReconnect) {
    setStatus("reconnecting", everConnected ? "Reconnecting…" : "Connecting…");
  } else {
    setStatus("offline", "Offline");
  }
});
socket.connect();

// The room we are in, if any: { channel, presence, name, room, userId, typers, lastTyping }.
let current = null;

// --- Joining and leaving ----------------------------------------------------

el.name.value = sessionStorage.getItem(NAME_KEY) || "";
if (location.hash.length > 1) el.room.value = decodeURIComponent(location.hash.slice(1));
(el.name.value ? el.room : el.name).focus();

el.joinForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const name = el.name.value.trim();
  const room = el.room.value.trim().replace(/^#/, "") || "lobby";
  joinRoom(name, room);
});

el.leave.addEventListener("click", () => leaveRoom());

function joinRoom(name, room) {
  if (current) leaveRoom();
  hide(el.joinError);
  el.join.disabled = true;
  el.join.textContent = "Joining…";

  const channel = socket.channel(`room:${room}`, { user: name });
  const presence = new Presence(channel);
  // typers: who the server says is typing, user id -> display name.
  const session = { channel, presence, name, room, userId: null, typers: new Map(), lastTyping: 0 };
  current = session;

  // Announce arrivals and departures, but not the people already there when
  // the first presence_state comes in (onJoin runs for each of them first).
  let synced = false;
  presence.onSync(() => {
    synced = true;
    renderPresence(session);
  });
  presence.onJoin((userId, existing, joined) => {
    // Only a new key is news; a second tab of someone already here is not.
    if (synced && !existing && userId !== session.userId) announce(`${displayName(userId, joined)} joined`);
  });
  presence.onLeave((userId, remaining) => {
    if (synced && remaining.metas.length === 0) announce(`${displayName(userId, remaining)} left`);
  });

  channel.on("new_msg", (msg) => {
    session.typers.delete(msg.user_id);
    renderTyping(session);
    addMessage(msg, session);
  });
  channel.on("typing", ({ user_id, name: typer }) => {
    session.typers.set(user_id, typer);
    renderTyping(session);
  });
  channel.on("stopped_typing", ({ user_id }) => {
    session.typers.delete(user_id);
    renderTyping(session);
  });

  // phx_close from the server: the room is gone for good (no rejoin).
  channel.onClose((reason) => {
    if (reason !== "server" || current !== session) return;
    current = null;
    showJoin(`The server closed #${room}.`);
  });

  // The hooks run on every successful (re)join: after a reconnect the channel
  // rejoins by itself and we get "ok" again.
  channel
    .join()
    .receive("ok", ({ user_id } = {}) => {
      if (current !== session) return;
      session.userId = user_id;
      // A rejoin starts from what the server says now.
      session.typers.clear();
      renderTyping(session);
      sessionStorage.setItem(NAME_KEY, name);
      history.replaceState(null, "", `#${encodeURIComponent(room)}`);
      showChat(session);
    })
    .receive("error", ({ reason } = {}) => {
      // Refused, e.g. {"reason": "name required"}. The client would retry the
      // join with backoff; we leave instead and let the person fix the form.
      channel.leave();
      if (current !== session) return;
      current = null;
      showJoin(`Could not join #${room}: ${reason || "refused by the server"}.`);
    })
    .receive("timeout", () => {
      if (current !== session) return;
      // The channel retries by itself; say so while still on the join form.
      if (!el.joinView.hidden) {
        showJoinError("The server is not answering. Still trying…");
        el.join.disabled = false;
        el.join.textContent = "Join";
      }
    });
}

function leaveRoom() {
  if (!current) return;
  current.channel.leave();
  current = null;
  showJoin();
}

// --- Views ---------------------------------------------------------------------

function showChat({ name, room }) {
  if (!el.chatView.hidden) return; // a rejoin: nothing to change
  hide(el.joinView);
  show(el.chatView);
  el.roomTitle.textContent = `#${room}`;
  el.roomTitle.title = `You are ${name}`;
  show(el.roomTitle);
  show(el.leave);
  el.messages.replaceChildren();
  el.presence.replaceChildren();
  hide(el.typing);
  el.peopleCount.textContent = "0";
  show(el.empty);
  hide(el.sendError);
  el.message.placeholder = `Message #${room}`;
  el.message.focus();
  document.title = `#${room} · phx-channels chat`;
}

function showJoin(error) {
  show(el.joinView);
  hide(el.chatView);
  hide(el.roomTitle);
  hide(el.leave);
  el.join.disabled = false;
  el.join.textContent = "Join";
  document.title = "phx-channels chat";
  if (error) {
    showJoinError(error);
    el.name.focus();
  } else {
    hide(el.joinError);
  }
}

function showJoinError(text) {
  el.joinError.textContent = text;
  show(el.joinError);
}

// --- Presence ------------------------------------------------------------------

// presence.list() gives one entry per key (user id); metas has one entry per
// connection (tab) of that user, and name is the display name the server's fetch
// hook added.
function renderPresence(session) {
  if (current !== session) return;
  const people = session.presence
    .list((userId, presence) => ({ userId, name: displayName(userId, presence), tabs: presence.metas.length }))
    .sort((a, b) => a.name.localeCompare(b.name));

  el.presence.replaceChildren(
    ...people.map(({ userId, name, tabs }) => {
      const me = userId === session.userId;
      const item = document.createElement("li");
      item.className = "presence-user";
      if (me) item.classList.add("is-me");
      item.append(avatar(name));
      const label = document.createElement("span");
      label.className = "presence-name";
      label.textContent = name;
      item.append(label);
      if (me) item.append(tag("you"));
      if (tabs > 1) item.append(tag(`${tabs} tabs`));
      return item;
    }),
  );
  el.peopleCount.textContent = String(people.length);
}

function displayName(userId, presence) {
  return (presence && presence.name) || userId;
}

// --- Who is typing ---------------------------------------------------------------

function renderTyping(session) {
  if (current !== session) return;
  const names = [...session.typers.values()].sort((a, b) => a.localeCompare(b));
  if (names.length === 0) {
    hide(el.typing);
    el.typing.textContent = "";
    return;
  }
  el.typing.textContent =
    names.length === 1
      ? `${names[0]} is typing…`
      : names.length === 2
        ? `${names[0]} and ${names[1]} are typing…`
        : "Several people are typing…";
  show(el.typing);
}

el.message.addEventListener("input", () => {
  if (!current || el.message.value.trim() === "") return;
  const now = Date.now();
  if (now - current.lastTyping < TYPING_EVERY) return;
  current.lastTyping = now;
  current.channel.push("typing", {});
});

// --- Messages ------------------------------------------------------------------

function addMessage({ user_id, user, body, at }, session) {
  // Stick to the bottom if the reader is already there (or wrote this message).
  const list = el.messages;
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  const mine = user_id === session.userId;

  const item = document.createElement("li");
  item.className = mine ? "message mine" : "message";
  item.append(avatar(user));

  const content = document.createElement("div");
  content.className = "message-content";
  const meta = document.createElement("div");
  meta.className = "message-meta";
  const author = document.createElement("span");
  author.className = "message-author";
  author.textContent = user;
  meta.append(author);
  const when = new Date(typeof at === "number" ? at : Date.now());
  const time = document.createElement("time");
  time.className = "message-time";
  time.dateTime = when.toISOString();
  time.textContent = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  meta.append(time);
  const text = document.createElement("p");
  text.className = "message-body";
  text.textContent = body;
  content.append(meta, text);
  item.append(content);

  list.append(item);
  hide(el.empty);
  if (atBottom || mine) list.scrollTop = list.scrollHeight;
  if (!mine) announce(`${user}: ${body}`);
}

el.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  const body = el.message.value;
  if (!current || body.trim() === "") return;

  // Clear at once so the next message can be typed; put the text back if the
  // server refuses it or does not answer. The next keystroke reports typing again.
  el.message.value = "";
  current.lastTyping = 0;
  hide(el.sendError);
  const restore = (why) => {
    el.sendError.textContent = `Not sent: ${why}.`;
    show(el.sendError);
    if (el.message.value === "") el.message.value = body;
  };
  current.channel
    .push("new_msg", { body })
    .receive("error", ({ reason } = {}) => restore(reason || "refused by the server"))
    .receive("timeout", () => restore("the server did not answer"));
});

// --- Small helpers ---------------------------------------------------------

function setStatus(state, text) {
  el.status.dataset.state = state;
  el.status.textContent = text;
}

function avatar(name) {
  const span = document.createElement("span");
  span.className = "avatar";
  span.setAttribute("aria-hidden", "true");
  // Drawn by CSS (::before), so it stays out of the element's text.
  span.dataset.initial = (Array.from(name)[0] || "?").toUpperCase();
  span.style.setProperty("--hue", String(hue(name)));
  return span;
}

function tag(text) {
  const span = document.createElement("span");
  span.className = "tag";
  span.textContent = text;
  return span;
}

// A stable colour per name.
function hue(name) {
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.codePointAt(0)) % 360;
  return h;
}

function announce(text) {
  el.announcer.textContent = text;
}

function show(node) {
  node.hidden = false;
}

function hide(node) {
  node.hidden = true;
}
