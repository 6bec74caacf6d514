// Pushes and their replies through the official client (Push.receive ok / error / timeout),
// broadcasts with and without intercept, and binary payloads.

import {test} from "node:test"
import assert from "node:assert/strict"
import {
  arrayBuffer, bytes, clients, collect, fixtureUrl, push, sleep, uniqueTopic, waitUntil,
} from "./fixture.mjs"

await fixtureUrl()

test("room new_msg: receive(ok) gets {} and every member gets the broadcast with transport added", {timeout: 10000}, async t => {
  const cs = clients(t)
  const a = await cs.connect("/ws")
  const b = await cs.connect("/ws")
  const topic = uniqueTopic("room:msg-")
  let gotA, gotB
  const {channel: chA, joinRef: joinRefA} = await a.join(topic, {}, {bind: ch => { gotA = collect(ch, "new_msg") }})
  const {joinRef: joinRefB} = await b.join(topic, {}, {bind: ch => { gotB = collect(ch, "new_msg") }})

  const okPayload = await new Promise((resolve, reject) => {
    chA.push("new_msg", {body: "hello", n: 1})
      .receive("ok", resolve)
      .receive("error", e => reject(new Error(`error ${JSON.stringify(e)}`)))
      .receive("timeout", () => reject(new Error("timeout")))
  })
  assert.deepEqual(okPayload, {})

  await waitUntil(() => gotA.length >= 1 && gotB.length >= 1, 2000, "new_msg on both members")
  const expected = {body: "hello", n: 1, transport: ":websocket"}
  assert.deepEqual(gotA, [expected], "the sender gets it too")
  assert.deepEqual(gotB, [expected])
  // Room intercepts new_msg, so each member gets a push (its own join_ref), not a fastlane broadcast
  assert.equal(a.seen(topic, "new_msg")[0].join_ref, joinRefA)
  assert.equal(b.seen(topic, "new_msg")[0].join_ref, joinRefB)
})

test("receive(error): the fixture has no push answered with error, so a refused join's Push stands in", {timeout: 10000}, async t => {
  // No handle_in in the fixture replies {:error, _}: Room/Bench/Presence reply ok, and
  // boom/close/unknown events produce no reply at all. The join is a Push like any other
  // (channel.join() returns it), and Custom refuses it with status error.
  const c = await clients(t).connect("/ws")
  const channel = c.socket.channel(uniqueTopic("custom:err-"), {action: "ignore"})
  const seen = []
  const joinPush = channel.join()
  await new Promise(resolve => {
    joinPush
      .receive("ok", r => { seen.push(["ok", r]); resolve() })
      .receive("error", r => { seen.push(["error", r]); resolve() })
      .receive("timeout", () => { seen.push(["timeout"]); resolve() })
  })
  channel.leave()
  assert.deepEqual(seen, [["error", {action: "ignore"}]])
})

test("receive(timeout): a push the server never answers (boom) times out", {timeout: 10000}, async t => {
  // The fixture has no handle_in that returns noreply and stays alive. `boom` crashes the
  // channel, so its push never gets a phx_reply: the client reports timeout once the push's
  // own timeout passes. (A tiny timeout on `echo` would race the reply on loopback.)
  const c = await clients(t).connect("/ws")
  const {channel} = await c.join(uniqueTopic("room:timeout-"))
  const started = Date.now()
  const result = await push(channel, "boom", {}, 300)
  assert.equal(result.status, "timeout")
  assert.ok(Date.now() - started >= 290, "not before the push's timeout")
  assert.ok(!c.messages.some(m => m.event === "phx_reply" && m.topic === channel.topic && m.payload.status !== "ok"),
    "no error reply for the crashed push")
})

test("receive(timeout): a push made while the socket is disconnected is buffered and times out", {timeout: 10000}, async t => {
  // Client-side only: the push is held in the channel's buffer (not joined) and never sent.
  const c = await clients(t).connect("/ws")
  const {channel} = await c.join(uniqueTopic("room:buffered-"))
  await c.close()
  const result = await push(channel, "new_msg", {body: "lost"}, 100)
  assert.equal(result.status, "timeout")
})

test("binary push: reply ok with the sent bytes plus 03 04, and a binary_event push with 00 01", {timeout: 10000}, async t => {
  const c = await clients(t).connect("/ws")
  const topic = uniqueTopic("room:bin-")
  let pushes
  const {channel, joinRef} = await c.join(topic, {}, {bind: ch => { pushes = collect(ch, "binary_event") }})

  const sent = [0xde, 0xad, 0x00, 0xff, 0x10]
  const reply = await push(channel, "binary_event", arrayBuffer(sent))
  assert.equal(reply.status, "ok")
  assert.ok(reply.response instanceof ArrayBuffer, "binary reply decodes to an ArrayBuffer")
  assert.deepEqual(bytes(reply.response), [...sent, 0x03, 0x04])

  await waitUntil(() => pushes.length >= 1, 2000, "binary_event push")
  assert.equal(pushes.length, 1)
  assert.ok(pushes[0] instanceof ArrayBuffer, "binary push decodes to an ArrayBuffer")
  assert.deepEqual(bytes(pushes[0]), [0x00, 0x01])
  // the binary push frame carries the channel's join_ref
  assert.equal(c.seen(topic, "binary_event")[0].join_ref, joinRef)

  // an empty binary payload works too
  const empty = await push(channel, "binary_event", new ArrayBuffer(0))
  assert.deepEqual(bytes(empty.response), [0x03, 0x04])
})

test("bench echo replies ok with the payload it received", {timeout: 10000}, async t => {
  const c = await clients(t).connect("/bench", {heartbeatIntervalMs: 30000})
  const {channel} = await c.join(uniqueTopic("bench:echo-"))
  const payload = {s: "héllo ✓ \u0000 \"q\"", n: 1.5, neg: -3, big: 1e20, t: true, f: false, z: null,
    list: [1, "two", {three: 3}], nested: {a: {b: {c: []}}}, empty: {}}
  assert.deepEqual(await push(channel, "echo", payload), {status: "ok", response: payload})
  assert.deepEqual(await push(channel, "echo", {}), {status: "ok", response: {}})
})

test("bench echo: replies to pipelined pushes arrive in order", {timeout: 10000}, async t => {
  const c = await clients(t).connect("/bench", {heartbeatIntervalMs: 30000})
  const topic = uniqueTopic("bench:order-")
  const {channel} = await c.join(topic)
  const results = await Promise.all(Array.from({length: 50}, (_, i) => push(channel, "echo", {i})))
  assert.deepEqual(results.map(r => r.response.i), Array.from({length: 50}, (_, i) => i))
  const replies = c.seen(topic, "phx_reply").filter(m => m.payload.response && "i" in m.payload.response)
  assert.deepEqual(replies.map(m => m.payload.response.i), Array.from({length: 50}, (_, i) => i))
})

test("bench broadcast reaches every subscriber, the sender included, as a broadcast frame", {timeout: 10000}, async t => {
  const cs = clients(t)
  const a = await cs.connect("/bench", {heartbeatIntervalMs: 30000})
  const b = await cs.connect("/bench", {heartbeatIntervalMs: 30000})
  const topic = uniqueTopic("bench:bc-")
  let gotA, gotB
  const {channel} = await a.join(topic, {}, {bind: ch => { gotA = collect(ch, "broadcast") }})
  await b.join(topic, {}, {bind: ch => { gotB = collect(ch, "broadcast") }})

  assert.deepEqual(await push(channel, "broadcast", {x: 1}), {status: "ok", response: {}})
  await waitUntil(() => gotA.length && gotB.length, 2000, "broadcast on both")
  assert.deepEqual(gotA, [{x: 1}])
  assert.deepEqual(gotB, [{x: 1}])
  // not intercepted: fastlane, null join_ref and ref
  for(const cl of [a, b]){
    const [frame] = cl.seen(topic, "broadcast")
    assert.equal(frame.join_ref, null)
    assert.equal(frame.ref, null)
  }
})

test("bench broadcast_from reaches every subscriber except the sender", {timeout: 10000}, async t => {
  const cs = clients(t)
  const a = await cs.connect("/bench", {heartbeatIntervalMs: 30000})
  const b = await cs.connect("/bench", {heartbeatIntervalMs: 30000})
  const topic = uniqueTopic("bench:bcf-")
  let gotA, gotB
  const {channel} = await a.join(topic, {}, {bind: ch => { gotA = collect(ch, "broadcast") }})
  await b.join(topic, {}, {bind: ch => { gotB = collect(ch, "broadcast") }})

  assert.deepEqual(await push(channel, "broadcast_from", {y: 2}), {status: "ok", response: {}})
  await waitUntil(() => gotB.length, 2000, "broadcast on the other subscriber")
  assert.deepEqual(gotB, [{y: 2}])
  await sleep(200)
  assert.deepEqual(gotA, [], "the sender does not get its own broadcast_from")
})

test("bench_icpt broadcast is intercepted: it arrives unchanged, as a push with the channel's join_ref", {timeout: 10000}, async t => {
  const cs = clients(t)
  const a = await cs.connect("/bench", {heartbeatIntervalMs: 30000})
  const b = await cs.connect("/bench", {heartbeatIntervalMs: 30000})
  const topic = uniqueTopic("bench_icpt:")
  let gotA, gotB
  const {channel, joinRef: refA} = await a.join(topic, {}, {bind: ch => { gotA = collect(ch, "broadcast") }})
  const {joinRef: refB} = await b.join(topic, {}, {bind: ch => { gotB = collect(ch, "broadcast") }})

  assert.deepEqual(await push(channel, "broadcast", {z: [1, 2]}), {status: "ok", response: {}})
  await waitUntil(() => gotA.length && gotB.length, 2000, "broadcast on both")
  assert.deepEqual(gotA, [{z: [1, 2]}])
  assert.deepEqual(gotB, [{z: [1, 2]}])
  assert.equal(a.seen(topic, "broadcast")[0].join_ref, refA)
  assert.equal(b.seen(topic, "broadcast")[0].join_ref, refB)
})

test("broadcasts from one sender arrive in order at every subscriber", {timeout: 15000}, async t => {
  const cs = clients(t)
  const subscribers = []
  const topic = uniqueTopic("bench:seq-")
  for(let i = 0; i < 3; i++){
    const c = await cs.connect("/bench", {heartbeatIntervalMs: 30000})
    let got
    const {channel} = await c.join(topic, {}, {bind: ch => { got = collect(ch, "broadcast") }})
    subscribers.push({channel, got})
  }
  const sender = subscribers[0].channel
  const N = 200
  const replies = await Promise.all(Array.from({length: N}, (_, seq) => push(sender, "broadcast", {seq})))
  assert.ok(replies.every(r => r.status === "ok"))
  for(const {got} of subscribers){
    await waitUntil(() => got.length >= N, 5000, `${N} broadcasts`)
    assert.deepEqual(got.map(p => p.seq), Array.from({length: N}, (_, i) => i))
  }
})
