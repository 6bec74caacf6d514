// Presence on the bench socket, through the official client's Presence class.

import {test} from "node:test"
import assert from "node:assert/strict"
import {Presence} from "phoenix"
import {clients, fixtureUrl, push, sleep, uniqueTopic, waitUntil, withTimeout} from "./fixture.mjs"

await fixtureUrl()

/** {key: [status, ...]} from a Presence, sorted by key. */
function statuses(presence){
  const out = {}
  presence.list((key, {metas}) => { out[key] = metas.map(m => m.status) })
  return Object.fromEntries(Object.entries(out).sort())
}

/**
 * A /bench socket joined to `topic` with a Presence on its channel. `setup(presence)` runs
 * before the join is sent, to register callbacks that must not miss the first state.
 */
async function member(cs, topic, params, opts = {}, setup = () => {}){
  const c = await cs.connect("/bench", {heartbeatIntervalMs: 30000, ...opts})
  let presence
  const {channel} = await c.join(topic, params, {bind: ch => { presence = new Presence(ch); setup(presence) }})
  return {c, channel, presence}
}

const snapshot = value => value === undefined ? null : JSON.parse(JSON.stringify(value))
const statusesOf = presence => presence ? presence.metas.map(m => m.status) : null

/**
 * Records a Presence's callbacks as
 * ["join", key, current statuses or null, joined statuses],
 * ["leave", key, current statuses, left statuses] and ["sync", statuses(presence)].
 */
function recorder(presence){
  const events = []
  presence.onJoin((key, current, joined) => events.push(["join", key, statusesOf(snapshot(current)), statusesOf(joined)]))
  presence.onLeave((key, current, left) => events.push(["leave", key, statusesOf(snapshot(current)), statusesOf(left)]))
  presence.onSync(() => events.push(["sync", statuses(presence)]))
  return events
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

test("presence: onJoin, onLeave, onSync and list() follow two joins, an update, a leave and a crash", {timeout: 20000}, async t => {
  const cs = clients(t)
  const topic = uniqueTopic("presence:")
  let events
  const carol = await member(cs, topic, {user: "carol"}, {}, presence => { events = recorder(presence) })
  await waitUntil(() => statuses(carol.presence).carol, 2000, "carol sees herself")
  assert.deepEqual(events, [
    ["sync", {}],
    ["join", "carol", null, ["online"]],
    ["sync", {carol: ["online"]}],
  ], "the empty state, then carol's own join")

  /** Runs `step`, waits until carol's view is `expected`, returns the callbacks it caused. */
  async function observe(step, expected, label){
    events.length = 0
    await step()
    await waitUntil(() => JSON.stringify(statuses(carol.presence)) === JSON.stringify(expected), 3000,
      () => `${label}: carol's view ${JSON.stringify(statuses(carol.presence))}`)
    // anything else this step caused would come in the same diff (and so the same sync)
    await sleep(100)
    return [...events]
  }

  let alice
  assert.deepEqual(await observe(async () => {
    alice = await member(cs, topic, {user: "alice"})
  }, {alice: ["online"], carol: ["online"]}, "alice joins"), [
    ["join", "alice", null, ["online"]],
    ["sync", {alice: ["online"], carol: ["online"]}],
  ])

  // bob does not rejoin after his crash below
  let bob
  assert.deepEqual(await observe(async () => {
    bob = await member(cs, topic, {user: "bob", status: "away"}, {rejoinAfterMs: () => 60000})
  }, {alice: ["online"], bob: ["away"], carol: ["online"]}, "bob joins"), [
    ["join", "bob", null, ["away"]],
    ["sync", {alice: ["online"], bob: ["away"], carol: ["online"]}],
  ])

  assert.deepEqual(await observe(async () => {
    assert.equal((await push(alice.channel, "update_status", {status: "busy"})).status, "ok")
  }, {alice: ["busy"], bob: ["away"], carol: ["online"]}, "alice updates"), [
    ["join", "alice", ["online"], ["busy"]],
    ["leave", "alice", ["busy"], ["online"]],
    ["sync", {alice: ["busy"], bob: ["away"], carol: ["online"]}],
  ], "one diff: the new meta joins, the old one leaves, one sync")

  assert.deepEqual(await observe(async () => {
    await withTimeout(new Promise(resolve => alice.channel.leave().receive("ok", resolve)), 5000, "alice's leave")
  }, {bob: ["away"], carol: ["online"]}, "alice leaves"), [
    ["leave", "alice", [], ["busy"]],
    ["sync", {bob: ["away"], carol: ["online"]}],
  ])

  assert.deepEqual(await observe(async () => {
    bob.channel.push("boom", {}, 1000)
  }, {carol: ["online"]}, "bob crashes"), [
    ["leave", "bob", [], ["away"]],
    ["sync", {carol: ["online"]}],
  ])

  // list() without a chooser gives the presences themselves
  const [only] = carol.presence.list()
  assert.equal(carol.presence.list().length, 1)
  assert.deepEqual(only.metas.map(m => m.status), ["online"])
  assert.equal(typeof only.metas[0].phx_ref, "string")
})

test("presence: two sockets with the same user are one key with two metas until one leaves", {timeout: 15000}, async t => {
  const cs = clients(t)
  const topic = uniqueTopic("presence:")
  let events
  const carol = await member(cs, topic, {user: "carol"}, {}, presence => { events = recorder(presence) })
  await waitUntil(() => statuses(carol.presence).carol, 2000, "carol sees herself")

  const phone = await member(cs, topic, {user: "alice", status: "phone"})
  const laptop = await member(cs, topic, {user: "alice", status: "laptop"})
  const two = {alice: ["phone", "laptop"], carol: ["online"]}
  for(const [who, presence] of [["carol", carol.presence], ["the laptop", laptop.presence], ["the phone", phone.presence]]){
    await waitUntil(() => JSON.stringify(statuses(presence)) === JSON.stringify(two), 3000,
      () => `${who}'s view ${JSON.stringify(statuses(presence))}`)
  }
  const keys = carol.presence.list(key => key).sort()
  assert.deepEqual(keys, ["alice", "carol"], "one key for alice")
  const [phoneRef, laptopRef] = carol.presence.list((key, {metas}) => key === "alice" ? metas : null)
    .find(Boolean).map(m => m.phx_ref)
  assert.notEqual(phoneRef, laptopRef)

  events.length = 0
  await withTimeout(new Promise(resolve => phone.channel.leave().receive("ok", resolve)), 5000, "the phone's leave")
  await waitUntil(() => statuses(carol.presence).alice?.length === 1, 3000,
    () => `carol's view ${JSON.stringify(statuses(carol.presence))}`)
  assert.deepEqual(statuses(carol.presence), {alice: ["laptop"], carol: ["online"]}, "the key stays, with the laptop")
  assert.deepEqual(carol.presence.list((key, {metas}) => key === "alice" ? metas.map(m => m.phx_ref) : null)
    .find(Boolean), [laptopRef])
  assert.deepEqual(events, [
    ["leave", "alice", ["laptop"], ["phone"]],
    ["sync", {alice: ["laptop"], carol: ["online"]}],
  ], "onLeave gets the remaining metas as current")
})

test("presence: 20 sockets joining in quick succession reach a watcher in fewer than 20 diffs", {timeout: 30000}, async t => {
  const N = 20
  const cs = clients(t)
  const topic = uniqueTopic("presence:")
  const diffs = []
  const watcher = await member(cs, topic, {user: "watcher"}, {},
    presence => presence.channel.on("presence_diff", diff => diffs.push(diff)))
  await waitUntil(() => statuses(watcher.presence).watcher, 2000, "the watcher sees itself")
  diffs.length = 0

  const sockets = await Promise.all(Array.from({length: N}, () => cs.connect("/bench", {heartbeatIntervalMs: 30000})))
  // every join goes out before any reply comes back
  await Promise.all(sockets.map((c, i) => c.join(topic, {user: `user${i}`})))
  const expected = Array.from({length: N}, (_, i) => `user${i}`).sort()
  const joined = () => [...new Set(diffs.flatMap(d => Object.keys(d.joins)))].sort()
  await waitUntil(() => joined().length === N, 5000, () => `all joins at the watcher; got ${joined().length}`)
  await sleep(100)
  assert.deepEqual(joined(), expected)
  assert.deepEqual(diffs.filter(d => Object.keys(d.leaves).length > 0), [], "no leaves")
  t.diagnostic(`${N} joins arrived in ${diffs.length} presence_diff events`)
  assert.ok(diffs.length < N, `${N} joins came as ${diffs.length} diffs; expected one per burst, not one per join`)
  assert.deepEqual(Object.keys(statuses(watcher.presence)).sort(), [...expected, "watcher"].sort())
})
