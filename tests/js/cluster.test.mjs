// Two parity fixtures on one Redis (--redis URL --node NAME): two users of the official
// client, each on a node of their own, chat in one room and see each other's presence.
//
// Needs PHX_TEST_REDIS_URL (scripts/test.sh starts a Redis). Without it the test is skipped
// with a loud note, unless PHX_REQUIRE_REDIS=1, which makes it fail.

import {test} from "node:test"
import assert from "node:assert/strict"
import {Presence} from "phoenix"
import {Client, push, startFixture, uniqueTopic, waitUntil} from "./fixture.mjs"

const REDIS = process.env.PHX_TEST_REDIS_URL
if(!REDIS){
  if(process.env.PHX_REQUIRE_REDIS === "1"){
    throw new Error("PHX_REQUIRE_REDIS=1 but PHX_TEST_REDIS_URL is unset: the cluster test needs a Redis")
  }
  console.log("\n!!!!! SKIPPED cluster.test.mjs: no Redis. Set PHX_TEST_REDIS_URL=redis://127.0.0.1:PORT/ " +
    "(scripts/test.sh starts one) to run it. !!!!!\n")
}

/** {key: [status, ...]} from a Presence, sorted by key. */
function statuses(presence){
  const out = {}
  presence.list((key, {metas}) => { out[key] = metas.map(m => m.status) })
  return Object.fromEntries(Object.entries(out).sort())
}

test("cluster: two users on two nodes chat and see each other's presence", {skip: !REDIS, timeout: 60000}, async t => {
  const nodes = await Promise.all(["a", "b"].map(n =>
    startFixture({args: ["--redis", REDIS, "--node", `js-${n}-${process.pid}`]})))
  const made = []
  t.after(async () => {
    await Promise.all(made.map(c => c.close()))
    for(const node of nodes){ node.stop() }
  })
  const connect = async (node, mount, opts) => {
    const c = new Client(node.url, mount, opts)
    made.push(c)
    return c.connect()
  }

  // Chat: room:* on the user socket. new_msg is intercepted, so each node's handle_out
  // adds "transport" for its own subscribers.
  const room = uniqueTopic("room:cluster-")
  const alice = await connect(nodes[0], "/ws", {params: {user_id: `alice-${process.pid}`}})
  const bob = await connect(nodes[1], "/ws", {params: {user_id: `bob-${process.pid}`}})
  const heard = {alice: [], bob: []}
  const aliceRoom = await alice.join(room, {user: "alice"}, {bind: ch => ch.on("new_msg", m => heard.alice.push(m))})
  const bobRoom = await bob.join(room, {user: "bob"}, {bind: ch => ch.on("new_msg", m => heard.bob.push(m))})
  assert.deepEqual(await push(aliceRoom.channel, "new_msg", {body: "hi bob"}), {status: "ok", response: {}})
  await waitUntil(() => heard.bob.length === 1, 5000, "bob hears alice")
  assert.deepEqual(heard.bob[0], {body: "hi bob", transport: ":websocket"})
  assert.deepEqual(await push(bobRoom.channel, "new_msg", {body: "hi alice"}), {status: "ok", response: {}})
  await waitUntil(() => heard.alice.length === 2, 5000, "alice hears bob")
  assert.deepEqual(heard.alice.map(m => m.body), ["hi bob", "hi alice"])
  assert.deepEqual(heard.bob.map(m => m.body), ["hi bob", "hi alice"])
  // user_entered is an ordinary broadcast: alice, on the other node, sees bob arrive.
  await waitUntil(() => alice.seen(room, "user_entered").some(m => m.payload.user === "bob"), 5000,
    "bob's user_entered at alice")

  // Presence: the client's Presence class on each node shows both users.
  const topic = uniqueTopic("presence:cluster-")
  const member = async (node, user, status) => {
    const c = await connect(node, "/bench", {heartbeatIntervalMs: 30000})
    let presence
    const {channel} = await c.join(topic, {user, status}, {bind: ch => { presence = new Presence(ch) }})
    return {channel, presence}
  }
  const alicePresence = await member(nodes[0], "alice", "away")
  const bobPresence = await member(nodes[1], "bob", "online")
  const both = JSON.stringify({alice: ["away"], bob: ["online"]})
  for(const [who, p] of [["alice", alicePresence], ["bob", bobPresence]]){
    await waitUntil(() => JSON.stringify(statuses(p.presence)) === both, 3000,
      () => `${who}'s view ${JSON.stringify(statuses(p.presence))}`)
  }
  // A change on one node reaches the other.
  assert.deepEqual(await push(bobPresence.channel, "update_status", {status: "busy"}), {status: "ok", response: {}})
  await waitUntil(() => statuses(alicePresence.presence).bob?.[0] === "busy", 3000, "bob's new status at alice")
  await push(alicePresence.channel, "update_status", {status: "typing"})
  await waitUntil(() => statuses(bobPresence.presence).alice?.[0] === "typing", 3000, "alice's new status at bob")
  // And a leave.
  await new Promise(resolve => alicePresence.channel.leave().receive("ok", resolve))
  await waitUntil(() => JSON.stringify(statuses(bobPresence.presence)) === JSON.stringify({bob: ["busy"]}), 3000,
    () => `bob's view after alice left: ${JSON.stringify(statuses(bobPresence.presence))}`)
})
