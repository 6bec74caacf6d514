// The core flows over the V1 JSON serializer (vsn=1.0.0, one JSON object per frame).
//
// phoenix 1.8 ships only the V2 serializer, but its Socket takes `vsn` (sent as the vsn query
// param) and `encode`/`decode` options, so the V1 format is supplied here (fixture.mjs `V1`).
// V1 has no binary frames, so binary payloads are not tested here.

import {test} from "node:test"
import assert from "node:assert/strict"
import WebSocket from "ws"
import {V1, clients, collect, fixtureUrl, push, sleep, uniqueTopic, waitUntil, withTimeout} from "./fixture.mjs"

await fixtureUrl()

/** Socket options for V1, recording every raw decoded frame into `frames`. */
function v1(frames){
  return {
    vsn: "1.0.0",
    encode: V1.encode,
    decode: (raw, callback) => {
      frames.push(JSON.parse(raw))
      return V1.decode(raw, callback)
    },
  }
}

const V1_KEYS = ["event", "payload", "ref", "topic"]

test("V1: join, joined push, and every frame is an object with exactly topic, event, payload, ref", {timeout: 10000}, async t => {
  const frames = []
  const c = await clients(t).connect("/ws", {...v1(frames), params: {user_id: "v1-user"}})
  const topic = uniqueTopic("room:v1-")
  let joined
  const {channel, response, joinRef} = await c.join(topic, {}, {bind: ch => { joined = collect(ch, "joined") }})
  assert.deepEqual(response, {})
  assert.equal(channel.state, "joined")
  await waitUntil(() => joined.length, 2000, "joined push")
  assert.deepEqual(joined, [{status: "connected", user_id: "v1-user"}])

  await sleep(300) // a few heartbeats too
  assert.ok(frames.length >= 3)
  for(const f of frames){
    assert.equal(typeof f, "object")
    assert.ok(!Array.isArray(f), "V1 frames are objects")
    assert.deepEqual(Object.keys(f).sort(), V1_KEYS, `no join_ref in V1 output: ${JSON.stringify(f)}`)
  }
  const reply = frames.find(f => f.event === "phx_reply" && f.ref === joinRef)
  assert.deepEqual(reply, {event: "phx_reply", payload: {status: "ok", response: {}}, ref: joinRef, topic})
  const joinedFrame = frames.find(f => f.event === "joined")
  assert.equal(joinedFrame.ref, null)
  assert.ok(frames.some(f => f.topic === "phoenix" && f.event === "phx_reply" && f.payload.status === "ok"),
    "V1 heartbeat replies")
  assert.equal(c.closes.length, 0)
})

test("V1: push new_msg gets ok {}, and V1 and V2 members both get the broadcast", {timeout: 10000}, async t => {
  const cs = clients(t)
  const a = await cs.connect("/ws", v1([]))
  const b = await cs.connect("/ws", v1([]))
  const v2 = await cs.connect("/ws")
  const topic = uniqueTopic("room:v1mix-")
  let gotA, gotB, gotV2
  const {channel} = await a.join(topic, {}, {bind: ch => { gotA = collect(ch, "new_msg") }})
  await b.join(topic, {}, {bind: ch => { gotB = collect(ch, "new_msg") }})
  const {channel: v2Channel} = await v2.join(topic, {}, {bind: ch => { gotV2 = collect(ch, "new_msg") }})

  assert.deepEqual(await push(channel, "new_msg", {body: "from v1"}), {status: "ok", response: {}})
  assert.deepEqual(await push(v2Channel, "new_msg", {body: "from v2"}), {status: "ok", response: {}})
  await waitUntil(() => gotA.length >= 2 && gotB.length >= 2 && gotV2.length >= 2, 2000, "both messages everywhere")
  const expected = [{body: "from v1", transport: ":websocket"}, {body: "from v2", transport: ":websocket"}]
  for(const got of [gotA, gotB, gotV2]){
    assert.deepEqual(got, expected)
  }
})

test("V1: a non-intercepted broadcast (user_entered) reaches V1 members", {timeout: 10000}, async t => {
  const cs = clients(t)
  const a = await cs.connect("/ws", v1([]))
  const v2 = await cs.connect("/ws")
  const topic = uniqueTopic("room:v1bc-")
  let got
  await a.join(topic, {}, {bind: ch => { got = collect(ch, "user_entered") }})
  await v2.join(topic, {user: "v2-user"})
  await waitUntil(() => got.length >= 2, 2000, "user_entered twice")
  assert.deepEqual(got, [{user: null}, {user: "v2-user"}])
})

test("V1: leave gets ok, onClose fires, then phx_close and you_left", {timeout: 10000}, async t => {
  const frames = []
  const c = await clients(t).connect("/ws", v1(frames))
  const topic = uniqueTopic("room:v1leave-")
  const {channel, joinRef} = await c.join(topic)
  const closes = []
  channel.onClose(r => closes.push(r))
  await new Promise((resolve, reject) => channel.leave().receive("ok", resolve).receive("timeout", reject))
  assert.equal(closes.length, 1)
  const youLeft = await c.message(m => m.topic === topic && m.event === "you_left", 2000, "you_left")
  assert.deepEqual(youLeft.payload, {message: "bye!"})
  const close = frames.find(f => f.topic === topic && f.event === "phx_close")
  // V1 phx_close puts the stored join_ref in `ref` (our V1 encoder sends join_ref with the join)
  assert.deepEqual(close, {event: "phx_close", payload: {}, ref: joinRef, topic})
  assert.ok(frames.indexOf(close) < frames.findIndex(f => f.topic === topic && f.event === "you_left"))
})

test("V1: boom gives phx_error, the client rejoins, and unmatched topics are refused", {timeout: 10000}, async t => {
  const frames = []
  const c = await clients(t).connect("/ws", v1(frames))
  const topic = uniqueTopic("room:v1boom-")
  const {channel, joinRef} = await c.join(topic)
  const errors = []
  channel.onError(r => errors.push(r))
  channel.push("boom", {}, 1000)
  await waitUntil(() => errors.length, 3000, "onError")
  assert.deepEqual(errors[0], {reason: "channel_crash"})
  assert.deepEqual(frames.find(f => f.topic === topic && f.event === "phx_error"),
    {event: "phx_error", payload: {reason: "channel_crash"}, ref: joinRef, topic})
  await waitUntil(() => channel.state === "joined" && channel.joinRef() !== joinRef, 5000, "rejoin")
  assert.deepEqual(await push(channel, "new_msg", {body: "x"}), {status: "ok", response: {}})

  const {response} = await c.joinRefused(uniqueTopic("nope:v1-"))
  assert.deepEqual(response, {reason: "unmatched topic"})
})

test("V1: bench echo", {timeout: 10000}, async t => {
  const c = await clients(t).connect("/bench", {...v1([]), heartbeatIntervalMs: 30000})
  const {channel} = await c.join(uniqueTopic("bench:v1-"))
  const payload = {list: [1, {two: 2}], s: "ü"}
  assert.deepEqual(await push(channel, "echo", payload), {status: "ok", response: payload})
})

test("no vsn param means V1: a raw client speaking V1 objects is understood and answered in V1", {timeout: 10000}, async () => {
  const base = await fixtureUrl()
  const ws = new WebSocket(`${base}/ws/websocket`, {closeTimeout: 1000})
  const frames = []
  ws.on("message", data => frames.push(JSON.parse(data.toString())))
  try {
    await withTimeout(new Promise((resolve, reject) => { ws.on("open", resolve); ws.on("error", reject) }), 5000, "open")
    const topic = uniqueTopic("room:novsn-")
    ws.send(JSON.stringify({topic, event: "phx_join", payload: {}, ref: "1"}))
    ws.send(JSON.stringify({topic: "phoenix", event: "heartbeat", payload: {}, ref: "2"}))
    const deadline = Date.now() + 3000
    while(frames.filter(f => f.event === "phx_reply").length < 2 && Date.now() < deadline){ await sleep(10) }
    assert.deepEqual(frames.find(f => f.ref === "1"),
      {event: "phx_reply", payload: {response: {}, status: "ok"}, ref: "1", topic})
    assert.deepEqual(frames.find(f => f.ref === "2"),
      {event: "phx_reply", payload: {response: {}, status: "ok"}, ref: "2", topic: "phoenix"})
  } finally {
    ws.terminate()
  }
})
