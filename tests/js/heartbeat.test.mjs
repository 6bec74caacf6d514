// Heartbeats and the idle timeout: the user socket closes a connection that sent nothing for
// 200 ms; the bench socket allows 60 s.

import {test} from "node:test"
import assert from "node:assert/strict"
import {HEARTBEAT_MS, clients, collect, fixtureUrl, push, sleep, uniqueTopic, waitUntil} from "./fixture.mjs"

await fixtureUrl()

test(`/ws: heartbeats every ${HEARTBEAT_MS} ms keep the connection alive well past the 200 ms idle timeout`, {timeout: 10000}, async t => {
  const c = await clients(t).connect("/ws", {heartbeatIntervalMs: HEARTBEAT_MS})
  const topic = uniqueTopic("room:hb-")
  const {channel} = await c.join(topic)
  await sleep(1200)

  assert.equal(c.closes.length, 0, `no close (codes: ${c.closes.map(e => e.code)})`)
  assert.equal(c.opens, 1)
  assert.ok(c.socket.isConnected())
  assert.equal(channel.state, "joined")
  assert.deepEqual(await push(channel, "new_msg", {body: "still here"}), {status: "ok", response: {}})

  // heartbeat replies: topic phoenix, join_ref null, status ok, response {}
  const beats = c.messages.filter(m => m.topic === "phoenix")
  assert.ok(beats.length >= 5, `heartbeat replies: ${beats.length}`)
  for(const m of beats){
    assert.equal(m.event, "phx_reply")
    assert.equal(m.join_ref, null)
    assert.deepEqual(m.payload, {status: "ok", response: {}})
  }
})

test("socket.ping gets its heartbeat reply", {timeout: 10000}, async t => {
  const c = await clients(t).connect("/ws")
  const rtt = await new Promise(resolve => assert.ok(c.socket.ping(resolve)))
  assert.ok(rtt >= 0 && rtt < 2000, `rtt ${rtt}`)
})

test("/ws: without heartbeats the server closes the idle connection, and the client reconnects and rejoins", {timeout: 15000}, async t => {
  // a heartbeat interval far beyond the test: the client only sends its join
  const c = await clients(t).connect("/ws", {heartbeatIntervalMs: 600000})
  const openedAt = Date.now()
  const topic = uniqueTopic("room:idle-")
  let joined
  const {channel, joinRef} = await c.join(topic, {}, {bind: ch => { joined = collect(ch, "joined") }})

  await c.until(() => c.closes.length >= 1, 3000, "server closes the idle connection")
  const after = Date.now() - openedAt
  assert.ok(after >= 150, `closed ${after} ms after open, before the 200 ms idle timeout`)
  // any code but 1000, so that every client version reconnects (PROTOCOL 2.8); Bandit uses 1002
  assert.notEqual(c.closes[0].code, 1000, "idle close code")

  await c.until(() => c.opens >= 2, 3000, "reconnect")
  await waitUntil(() => channel.state === "joined" && channel.joinRef() !== joinRef, 3000, "rejoin after reconnect")
  await waitUntil(() => joined.length >= 2, 2000, "joined push after the rejoin")
})

test("/bench: an idle connection without heartbeats stays open (60 s timeout)", {timeout: 10000}, async t => {
  const c = await clients(t).connect("/bench", {heartbeatIntervalMs: 600000})
  const {channel} = await c.join(uniqueTopic("bench:idle-"))
  await sleep(1000)
  assert.equal(c.closes.length, 0)
  assert.deepEqual(await push(channel, "echo", {a: 1}), {status: "ok", response: {a: 1}})
})

test("/ws/limited has the user socket's 200 ms idle timeout too", {timeout: 10000}, async t => {
  const c = await clients(t).connect("/ws/limited", {heartbeatIntervalMs: 600000})
  await c.until(() => c.closes.length >= 1, 3000, "idle close")
  assert.notEqual(c.closes[0].code, 1000)
})
