// The official client over long-poll in node (its LongPoll transport uses node's fetch):
// forced with `transport: LongPoll`, beside WebSocket clients on the same topics, and its
// automatic fallback (`longPollFallbackMs`) when the WebSocket upgrade is refused.

import {test} from "node:test"
import assert from "node:assert/strict"
import {LongPoll, Presence} from "phoenix"
import {Client, clients, collect, fixtureUrl, httpUrl, push, uniqueTopic, waitUntil} from "./fixture.mjs"
import {startProxy} from "./proxy.mjs"

await fixtureUrl()

// Long-poll sends no heartbeats; the clients' keepalive pings are for WebSockets only.
const LONG_POLL = {transport: LongPoll, heartbeatIntervalMs: 30000}

test("long-poll: join, push and reply, and new_msg broadcasts both ways with a WebSocket client", {timeout: 15000}, async t => {
  const cs = clients(t)
  const lp = await cs.connect("/ws", {...LONG_POLL, params: {user_id: "lp-user"}})
  assert.equal(lp.socket.transport, LongPoll)
  const ws = await cs.connect("/ws")
  const topic = uniqueTopic("room:lp-")
  let gotLp, gotWs
  const {channel: lpChannel, response} = await lp.join(topic, {user: "lp"}, {bind: ch => { gotLp = collect(ch, "new_msg") }})
  assert.deepEqual(response, {})
  const {channel: wsChannel} = await ws.join(topic, {}, {bind: ch => { gotWs = collect(ch, "new_msg") }})
  await lp.message(m => m.topic === topic && m.event === "joined", 5000, "the joined push")
  assert.deepEqual(lp.seen(topic, "joined")[0].payload, {status: "connected", user_id: "lp-user"})

  assert.deepEqual(await push(lpChannel, "new_msg", {body: "from long-poll"}), {status: "ok", response: {}})
  assert.deepEqual(await push(wsChannel, "new_msg", {body: "from websocket"}), {status: "ok", response: {}})
  await waitUntil(() => gotLp.length === 2 && gotWs.length === 2, 5000, () => `lp ${JSON.stringify(gotLp)} ws ${JSON.stringify(gotWs)}`)
  const expected = [{body: "from long-poll", transport: ":websocket"}, {body: "from websocket", transport: ":websocket"}]
  assert.deepEqual(gotLp, expected)
  assert.deepEqual(gotWs, expected)
  assert.deepEqual(lp.closes, [], "the long-poll transport never closed")
})

test("long-poll: a refused connect is reported as 403 and never opens", {timeout: 10000}, async t => {
  const cs = clients(t)
  const lp = await cs.make("/ws", {...LONG_POLL, params: {reject: "true"}})
  lp.socket.connect()
  await lp.until(() => lp.closes.length > 0, 5000, "the close")
  assert.ok(lp.errors.length >= 1 && lp.errors.every(e => e === 403), `errors ${JSON.stringify(lp.errors)}`)
  assert.equal(lp.closes[0].code, 1008, "the client's close for a forbidden long-poll")
  assert.equal(lp.opens, 0)
})

test("long-poll: presence between a long-poll and a WebSocket member", {timeout: 15000}, async t => {
  const cs = clients(t)
  const topic = uniqueTopic("presence:lp-")
  const member = async (user, opts) => {
    const c = await cs.connect("/bench", opts)
    let presence
    await c.join(topic, {user}, {bind: ch => { presence = new Presence(ch) }})
    return presence
  }
  const lp = await member("lp", LONG_POLL)
  const ws = await member("ws", {heartbeatIntervalMs: 30000})
  const names = presence => presence.list(key => key).sort()
  await waitUntil(() => names(lp).length === 2 && names(ws).length === 2, 5000,
    () => `lp sees ${names(lp)}, ws sees ${names(ws)}`)
  assert.deepEqual(names(lp), ["lp", "ws"])
  assert.deepEqual(names(ws), ["lp", "ws"])
})

test("fallback: a refused WebSocket upgrade falls back to long-poll", {timeout: 15000}, async t => {
  const proxy = await startProxy(await httpUrl())
  const c = new Client(proxy.wsUrl, "/bench", {longPollFallbackMs: 3000, heartbeatIntervalMs: 30000})
  t.after(async () => { await c.close(); await proxy.close() })
  await c.connect(10000)
  assert.ok(proxy.refusedUpgrades >= 1, "the WebSocket was tried first")
  assert.equal(c.socket.transport, LongPoll)
  const topic = uniqueTopic("bench:fallback-")
  const {channel} = await c.join(topic)
  assert.deepEqual(await push(channel, "echo", {over: "long-poll"}), {status: "ok", response: {over: "long-poll"}})
})
