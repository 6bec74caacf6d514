// Channel lifecycle through the official client: leave, server-side close, crash and the
// client's automatic rejoin.
//
// Crash and terminate: phx-channels does not run `terminate` after a panic (decision D1 in
// shared/PROTOCOL.md), so on `boom` the client sees phx_error only. The reference Phoenix
// app pushes Room's `you_left` before phx_error; set PHX_FIXTURE_TERMINATE_AFTER_CRASH=1
// to run this suite against it.

import {test} from "node:test"
import assert from "node:assert/strict"
import {clients, collect, fixtureUrl, push, sleep, uniqueTopic, waitUntil} from "./fixture.mjs"

await fixtureUrl()

const TERMINATE_AFTER_CRASH = process.env.PHX_FIXTURE_TERMINATE_AFTER_CRASH === "1"

test("leave: receive(ok), onClose fires once, and the wire order is reply, phx_close, you_left", {timeout: 10000}, async t => {
  const c = await clients(t).connect("/ws")
  const topic = uniqueTopic("room:leave-")
  const {channel, joinRef} = await c.join(topic)
  const closes = []
  channel.onClose(reason => closes.push(reason))

  const leavePush = channel.leave()
  const leaveRef = leavePush.ref
  const okPayload = await new Promise((resolve, reject) => {
    leavePush.receive("ok", resolve).receive("timeout", () => reject(new Error("leave timed out")))
  })
  assert.deepEqual(okPayload, {})
  assert.equal(channel.state, "closed")
  assert.ok(!c.socket.channels.includes(channel), "the client removed the channel")

  // The client closes the channel on the leave reply; the server's phx_close and Room's
  // terminate push (you_left) come after it. The client no longer routes them to the channel
  // (it was removed), but socket.onMessage sees every frame.
  const youLeft = await c.message(m => m.topic === topic && m.event === "you_left", 2000, "you_left")
  assert.deepEqual(youLeft.payload, {message: "bye!"})
  const onTopic = c.seen(topic).filter(m => m.event !== "joined" && m.event !== "user_entered")
  const replyIdx = onTopic.findIndex(m => m.event === "phx_reply" && m.ref === leaveRef)
  const closeIdx = onTopic.findIndex(m => m.event === "phx_close")
  const leftIdx = onTopic.indexOf(youLeft)
  assert.ok(replyIdx >= 0, "leave reply seen")
  assert.deepEqual(onTopic[replyIdx].payload, {status: "ok", response: {}})
  assert.equal(onTopic[replyIdx].join_ref, joinRef)
  assert.ok(closeIdx > replyIdx, "phx_close after the leave reply")
  assert.ok(leftIdx > closeIdx, "you_left after phx_close")
  const close = onTopic[closeIdx]
  assert.deepEqual(close.payload, {})
  assert.equal(close.join_ref, joinRef)
  assert.equal(close.ref, joinRef, "phx_close carries ref = join_ref")
  assert.equal(youLeft.join_ref, joinRef)

  await sleep(100)
  assert.equal(closes.length, 1, "onClose fires exactly once")
  assert.equal(c.seen(topic, "phx_close").length, 1)
})

test("after leave, the topic can be joined again on the same socket", {timeout: 10000}, async t => {
  const c = await clients(t).connect("/ws")
  const topic = uniqueTopic("room:rejoin-")
  const {channel} = await c.join(topic)
  await new Promise(resolve => channel.leave().receive("ok", resolve))
  const {channel: again, joinRef} = await c.join(topic)
  assert.equal(again.state, "joined")
  assert.deepEqual(await push(again, "new_msg", {body: "back"}), {status: "ok", response: {}})
  const joined = await c.message(m => m.topic === topic && m.event === "joined" && m.join_ref === joinRef)
  assert.ok(joined)
})

test("custom close: the server stops the channel, the client gets phx_close and does not rejoin", {timeout: 10000}, async t => {
  const c = await clients(t).connect("/ws")
  const topic = uniqueTopic("custom:close-")
  const {channel, joinRef} = await c.join(topic, {action: "ok"})
  const closes = []
  const errors = []
  channel.onClose(p => closes.push(p))
  channel.onError(p => errors.push(p))

  channel.push("close", {}, 1000)
  await waitUntil(() => closes.length >= 1, 2000, "onClose")
  assert.deepEqual(closes, [{}], "onClose gets the phx_close payload")
  assert.equal(channel.state, "closed")
  const [frame] = c.seen(topic, "phx_close")
  assert.equal(frame.join_ref, joinRef)
  assert.equal(frame.ref, joinRef)

  await sleep(300)
  assert.deepEqual(errors, [])
  assert.equal(c.seen(topic, "phx_error").length, 0)
  assert.equal(channel.state, "closed", "phx_close is final: no rejoin")
  assert.equal(channel.joinRef(), joinRef)
})

test("boom: onError fires, the client rejoins by itself, and other channels keep working", {timeout: 15000}, async t => {
  const c = await clients(t).connect("/ws", {params: {user_id: "crash-1"}})
  const topic = uniqueTopic("room:boom-")
  let joinedPushes
  const {channel, joinRef} = await c.join(topic, {}, {bind: ch => { joinedPushes = collect(ch, "joined") }})
  let otherMsgs
  const {channel: other} = await c.join(uniqueTopic("room:bystander-"), {}, {
    bind: ch => { otherMsgs = collect(ch, "new_msg") },
  })
  const {channel: custom} = await c.join(uniqueTopic("custom:bystander-"), {action: "ok"})
  await waitUntil(() => joinedPushes.length === 1, 2000, "first joined push")

  const errors = []
  channel.onError(reason => errors.push(reason))
  channel.push("boom", {}, 1000)
  await waitUntil(() => errors.length >= 1, 3000, "onError")
  assert.deepEqual(errors[0], {reason: "channel_crash"})

  const errFrame = c.seen(topic, "phx_error")[0]
  assert.equal(errFrame.join_ref, joinRef)
  assert.equal(errFrame.ref, joinRef, "phx_error carries ref = join_ref")

  // the other channels on the connection are untouched
  assert.deepEqual(await push(other, "new_msg", {body: "unaffected"}), {status: "ok", response: {}})
  await waitUntil(() => otherMsgs.length === 1, 2000, "bystander new_msg")
  assert.equal(other.state, "joined")
  assert.equal(custom.state, "joined")
  assert.equal(c.closes.length, 0, "the connection stays up")

  // automatic rejoin (rejoinAfterMs): a new join with a new join_ref, joined again
  await waitUntil(() => channel.state === "joined" && channel.joinRef() !== joinRef, 5000, "rejoin")
  await waitUntil(() => joinedPushes.length === 2, 2000, "second joined push")
  assert.deepEqual(joinedPushes[1], {status: "connected", user_id: "crash-1"})
  assert.deepEqual(await push(channel, "new_msg", {body: "alive again"}), {status: "ok", response: {}})

  const youLeft = c.seen(topic, "you_left")
  if(TERMINATE_AFTER_CRASH){
    assert.equal(youLeft.length, 1)
    assert.ok(c.messages.indexOf(youLeft[0]) < c.messages.indexOf(errFrame), "you_left before phx_error")
  } else {
    assert.equal(youLeft.length, 0, "D1: no terminate after a crash, so no you_left")
  }
})

test("an event the channel does not handle crashes it (phx_error), like boom", {timeout: 10000}, async t => {
  const c = await clients(t).connect("/ws")
  const topic = uniqueTopic("room:unknown-")
  const {channel} = await c.join(topic)
  const errors = []
  channel.onError(reason => errors.push(reason))
  channel.push("no_such_event", {}, 1000)
  await waitUntil(() => errors.length >= 1, 3000, "onError")
  assert.deepEqual(errors[0], {reason: "channel_crash"})
  await waitUntil(() => channel.state === "joined", 5000, "rejoin")
})

test("bench boom crashes the bench channel too (unknown event), and it rejoins", {timeout: 10000}, async t => {
  const c = await clients(t).connect("/bench", {heartbeatIntervalMs: 30000})
  const {channel, joinRef} = await c.join(uniqueTopic("bench:boom-"))
  const errors = []
  channel.onError(reason => errors.push(reason))
  channel.push("boom", {}, 1000)
  await waitUntil(() => errors.length >= 1, 3000, "onError")
  await waitUntil(() => channel.state === "joined" && channel.joinRef() !== joinRef, 5000, "rejoin")
  assert.deepEqual(await push(channel, "echo", {after: "crash"}), {status: "ok", response: {after: "crash"}})
})
