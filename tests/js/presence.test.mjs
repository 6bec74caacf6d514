// Presence on the bench socket, through the official client's Presence class.

import {test} from "node:test"
import assert from "node:assert/strict"
import {Presence} from "phoenix"
import {clients, fixtureUrl, push, uniqueTopic, waitUntil} from "./fixture.mjs"

await fixtureUrl()

/** {key: [status, ...]} from a Presence, sorted by key. */
function statuses(presence){
  const out = {}
  presence.list((key, {metas}) => { out[key] = metas.map(m => m.status) })
  return Object.fromEntries(Object.entries(out).sort())
}

async function member(cs, topic, params, opts = {}){
  const c = await cs.connect("/bench", {heartbeatIntervalMs: 30000, ...opts})
  let presence
  const {channel} = await c.join(topic, params, {bind: ch => { presence = new Presence(ch) }})
  return {c, channel, presence}
}

test("presence: joiners see each other; update_status and a crash reach the others", {timeout: 15000}, async t => {
  const cs = clients(t)
  const topic = uniqueTopic("presence:")
  const alice = await member(cs, topic, {user: "alice", status: "away"})
  await waitUntil(() => statuses(alice.presence).alice, 2000, "alice sees herself")
  assert.deepEqual(statuses(alice.presence), {alice: ["away"]})

  // bob does not rejoin after his crash below, so that his leave stays visible
  const bob = await member(cs, topic, {user: "bob"}, {rejoinAfterMs: () => 60000})
  const both = {alice: ["away"], bob: ["online"]}
  await waitUntil(() => JSON.stringify(statuses(bob.presence)) === JSON.stringify(both), 2000,
    () => `bob's view ${JSON.stringify(statuses(bob.presence))}`)
  await waitUntil(() => JSON.stringify(statuses(alice.presence)) === JSON.stringify(both), 2000,
    () => `alice's view ${JSON.stringify(statuses(alice.presence))}`)

  // wire shapes: bob's presence_state holds alice only (pushed before bob is tracked)
  const state = bob.c.seen(topic, "presence_state")
  assert.equal(state.length, 1)
  assert.deepEqual(Object.keys(state[0].payload), ["alice"])
  const [aliceMeta] = state[0].payload.alice.metas
  assert.equal(aliceMeta.status, "away")
  assert.equal(typeof aliceMeta.phx_ref, "string")
  const diff = alice.c.seen(topic, "presence_diff").find(m => m.payload.joins.bob)
  assert.deepEqual(diff.payload.leaves, {})
  assert.equal(diff.join_ref, null, "presence_diff is a plain broadcast")

  let leaves = []
  alice.presence.onLeave((key, current, left) => leaves.push([key, left.metas.map(m => m.status)]))

  const oldRef = alice.c.seen(topic, "presence_diff").find(m => m.payload.joins.bob).payload.joins.bob.metas[0].phx_ref
  assert.deepEqual(await push(bob.channel, "update_status", {status: "busy"}), {status: "ok", response: {}})
  await waitUntil(() => statuses(alice.presence).bob?.[0] === "busy", 2000, "bob's new status at alice")
  const update = alice.c.seen(topic, "presence_diff").find(m => m.payload.joins.bob?.metas[0].status === "busy")
  assert.equal(update.payload.joins.bob.metas[0].phx_ref_prev, oldRef)
  assert.deepEqual(update.payload.leaves.bob.metas.map(m => m.phx_ref), [oldRef], "one diff: new meta joins, old leaves")
  assert.deepEqual(statuses(alice.presence), {alice: ["away"], bob: ["busy"]})

  leaves = []
  bob.channel.push("boom", {}, 1000)
  await waitUntil(() => !statuses(alice.presence).bob, 3000, "bob gone at alice after his crash")
  assert.deepEqual(leaves, [["bob", ["busy"]]])
  assert.deepEqual(statuses(alice.presence), {alice: ["away"]})
})

test("presence: leaving removes the presence for the others", {timeout: 10000}, async t => {
  const cs = clients(t)
  const topic = uniqueTopic("presence:")
  const alice = await member(cs, topic, {user: "alice"})
  const bob = await member(cs, topic, {user: "bob"})
  await waitUntil(() => statuses(alice.presence).bob, 2000, "bob at alice")
  await new Promise(resolve => bob.channel.leave().receive("ok", resolve))
  await waitUntil(() => !statuses(alice.presence).bob, 2000, "bob gone after leave")
  assert.deepEqual(statuses(alice.presence), {alice: ["online"]})
})

for(const params of [{}, {user: ""}, {user: 7}]){
  test(`presence: join with ${JSON.stringify(params)} is refused with user required`, {timeout: 10000}, async t => {
    const c = await clients(t).connect("/bench", {heartbeatIntervalMs: 30000})
    const {response} = await c.joinRefused(uniqueTopic("presence:"), params)
    assert.deepEqual(response, {reason: "user required"})
  })
}
