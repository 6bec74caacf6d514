// Joins through the official phoenix client: ok and error replies, unmatched topics, the
// per-connection channel limits, and the `joined` push of the Room channel.

import {test} from "node:test"
import assert from "node:assert/strict"
import {clients, collect, fixtureUrl, uniqueTopic, waitUntil} from "./fixture.mjs"

await fixtureUrl()

test("room join replies ok {} and the reply comes before the channel's joined push", {timeout: 10000}, async t => {
  const c = await clients(t).connect("/ws", {params: {user_id: "u-join"}})
  const topic = uniqueTopic("room:join-")
  let joinedPayload = null
  const {channel, response, joinRef} = await c.join(topic, {user: "alice"}, {
    bind: ch => ch.on("joined", p => { joinedPayload = p }),
  })
  assert.deepEqual(response, {})
  assert.equal(channel.state, "joined")

  await waitUntil(() => joinedPayload, 2000, "joined push through channel.on")
  assert.deepEqual(joinedPayload, {status: "connected", user_id: "u-join"})

  // wire view: the join reply echoes join_ref and ref; the push carries the channel's join_ref
  const reply = c.replyTo(joinRef, topic)
  assert.equal(reply.join_ref, joinRef)
  assert.deepEqual(reply.payload, {status: "ok", response: {}})
  const joined = c.seen(topic, "joined")
  assert.equal(joined.length, 1)
  assert.equal(joined[0].join_ref, joinRef)
  assert.equal(joined[0].ref, null)
  assert.ok(c.messages.indexOf(reply) < c.messages.indexOf(joined[0]), "join reply before joined push")
})

test("room join broadcasts user_entered with the join payload's user", {timeout: 10000}, async t => {
  const cs = clients(t)
  const a = await cs.connect("/ws")
  const b = await cs.connect("/ws")
  const topic = uniqueTopic("room:entered-")
  let seenByA
  const {channel: chA} = await a.join(topic, {}, {bind: ch => { seenByA = collect(ch, "user_entered") }})
  await b.join(topic, {user: "bob"})

  await waitUntil(() => seenByA.length >= 2, 2000, "two user_entered on a")
  assert.deepEqual(seenByA, [{user: null}, {user: "bob"}])
  // not intercepted by Room, so it is a broadcast: null join_ref and ref (V2)
  const frames = a.seen(topic, "user_entered")
  assert.ok(frames.every(m => m.join_ref === null && m.ref === null))
  assert.equal(chA.state, "joined")
})

test("custom join with action ok replies ok {action: ok}", {timeout: 10000}, async t => {
  const c = await clients(t).connect("/ws")
  const {channel, response} = await c.join(uniqueTopic("custom:ok-"), {action: "ok"})
  assert.deepEqual(response, {action: "ok"})
  assert.equal(channel.state, "joined")
})

test("custom join with action ignore replies error {action: ignore}", {timeout: 10000}, async t => {
  const c = await clients(t).connect("/ws")
  const {status, response} = await c.joinRefused(uniqueTopic("custom:ignore-"), {action: "ignore"})
  assert.equal(status, "error")
  assert.deepEqual(response, {action: "ignore"})
})

test("custom join that crashes replies error {reason: join crashed}", {timeout: 10000}, async t => {
  const c = await clients(t).connect("/ws")
  const {status, response} = await c.joinRefused(uniqueTopic("custom:error-"), {action: "error"})
  assert.equal(status, "error")
  assert.deepEqual(response, {reason: "join crashed"})
  // the connection is unharmed
  const {response: ok} = await c.join(uniqueTopic("custom:after-"), {action: "ok"})
  assert.deepEqual(ok, {action: "ok"})
})

test("join of a topic with no route replies error {reason: unmatched topic} with a null join_ref", {timeout: 10000}, async t => {
  const c = await clients(t).connect("/ws")
  const topic = uniqueTopic("nope:")
  const {status, response, joinRef} = await c.joinRefused(topic)
  assert.equal(status, "error")
  assert.deepEqual(response, {reason: "unmatched topic"})
  const reply = c.replyTo(joinRef, topic)
  assert.equal(reply.join_ref, null, "unmatched-topic replies have a null join_ref (PROTOCOL 11.5)")
})

test("bench socket routes bench:*, bench_icpt:* and presence:* but not room:*", {timeout: 10000}, async t => {
  const c = await clients(t).connect("/bench", {heartbeatIntervalMs: 30000})
  assert.deepEqual((await c.join(uniqueTopic("bench:"))).response, {})
  assert.deepEqual((await c.join(uniqueTopic("bench_icpt:"))).response, {})
  assert.deepEqual((await c.joinRefused(uniqueTopic("room:"))).response, {reason: "unmatched topic"})
})

test("joined push carries user_id null when the socket connected without one", {timeout: 10000}, async t => {
  const c = await clients(t).connect("/ws")
  let joined = null
  await c.join(uniqueTopic("room:anon-"), {}, {bind: ch => ch.on("joined", p => { joined = p })})
  await waitUntil(() => joined, 2000, "joined push")
  assert.deepEqual(joined, {status: "connected", user_id: null})
})

test("the user socket mounted at /ws/admin behaves like /ws", {timeout: 10000}, async t => {
  const c = await clients(t).connect("/ws/admin", {params: {user_id: "admin-1"}})
  let joined = null
  await c.join(uniqueTopic("room:admin-"), {}, {bind: ch => ch.on("joined", p => { joined = p })})
  await waitUntil(() => joined, 2000, "joined push")
  assert.deepEqual(joined, {status: "connected", user_id: "admin-1"})
  assert.deepEqual((await c.join(uniqueTopic("custom:admin-"), {action: "ok"})).response, {action: "ok"})
})

test("/ws/limited: the second channel on a connection is refused with too many channels joined", {timeout: 10000}, async t => {
  const c = await clients(t).connect("/ws/limited", {params: {user_id: "ignored"}})
  let joined = null
  await c.join(uniqueTopic("room:lim-a-"), {}, {bind: ch => ch.on("joined", p => { joined = p })})
  await waitUntil(() => joined, 2000, "joined push")
  // the limited socket assigns no user_id whatever the params say
  assert.deepEqual(joined, {status: "connected", user_id: null})

  const topic = uniqueTopic("room:lim-b-")
  const {status, response, joinRef} = await c.joinRefused(topic)
  assert.equal(status, "error")
  assert.deepEqual(response, {reason: "too many channels joined"})
  // unlike unmatched topic, this reply echoes the join's join_ref
  assert.equal(c.replyTo(joinRef, topic).join_ref, joinRef)
})

test("/ws/limited: custom:* has no route there", {timeout: 10000}, async t => {
  const c = await clients(t).connect("/ws/limited")
  const {response} = await c.joinRefused(uniqueTopic("custom:"), {action: "ok"})
  assert.deepEqual(response, {reason: "unmatched topic"})
})

test("/ws/limited: a refused join that the client retries succeeds once the first channel left", {timeout: 15000}, async t => {
  const c = await clients(t).connect("/ws/limited")
  const {channel: first} = await c.join(uniqueTopic("room:lim-first-"))
  const second = c.socket.channel(uniqueTopic("room:lim-second-"))
  const statuses = []
  second.join().receive("error", r => statuses.push(["error", r])).receive("ok", r => statuses.push(["ok", r]))
  await waitUntil(() => statuses.length >= 1, 3000, "first join answer")
  assert.deepEqual(statuses[0], ["error", {reason: "too many channels joined"}])

  await new Promise(resolve => first.leave().receive("ok", resolve))
  // the client rejoins errored channels every REJOIN_MS; one of those joins must get in
  await waitUntil(() => second.state === "joined", 5000, "retried join to succeed")
  assert.deepEqual(statuses.at(-1), ["ok", {}])
})

async function fillToLimit(c, prefix, params){
  const joins = []
  for(let i = 0; i < 100; i++){ joins.push(c.join(uniqueTopic(prefix), params)) }
  const results = await Promise.all(joins)
  assert.equal(results.length, 100)
}

test("/ws: the 101st channel on a connection is refused with too many channels joined", {timeout: 20000}, async t => {
  const c = await clients(t).connect("/ws")
  await fillToLimit(c, "custom:many-", {action: "ok"})
  const {response} = await c.joinRefused(uniqueTopic("custom:many-"), {action: "ok"})
  assert.deepEqual(response, {reason: "too many channels joined"})
  // a topic with no route still gets unmatched topic (the route is checked first)
  assert.deepEqual((await c.joinRefused(uniqueTopic("nope:"))).response, {reason: "unmatched topic"})
})

test("/bench: the 101st channel on a connection is refused with too many channels joined", {timeout: 20000}, async t => {
  const c = await clients(t).connect("/bench", {heartbeatIntervalMs: 30000})
  await fillToLimit(c, "bench:many-", {})
  const {response} = await c.joinRefused(uniqueTopic("bench:many-"))
  assert.deepEqual(response, {reason: "too many channels joined"})
})
