// Two parity fixtures on one Redis (--redis URL --node NAME): two users of the official
// client, each on a node of their own, chat in one room and see each other's presence; and
// a client over long-poll whose requests alternate between the two nodes, as behind a
// round-robin load balancer.
//
// Needs PHX_TEST_REDIS_URL (scripts/test.sh starts a Redis). Without it the test is skipped
// with a loud note, unless PHX_REQUIRE_REDIS=1, which makes it fail.

import {test} from "node:test"
import assert from "node:assert/strict"
import {LongPoll, Presence} from "phoenix"
import {Client, collect, push, startFixture, uniqueTopic, waitUntil} from "./fixture.mjs"

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

test("cluster: a long-poll client whose requests alternate between two nodes", {skip: !REDIS, timeout: 60000}, async t => {
  const nodes = await Promise.all(["a", "b"].map(n =>
    startFixture({args: ["--redis", REDIS, "--node", `js-lp-${n}-${process.pid}`]})))
  // The client's LongPoll makes its requests with fetch: each long-poll request goes to
  // the next node in turn, whichever node the client was given.
  const hosts = nodes.map(node => new URL(node.url).host)
  const requests = Object.fromEntries(hosts.map(host => [host, 0]))
  const realFetch = globalThis.fetch
  let next = 0
  globalThis.fetch = (url, options) => {
    const target = new URL(url)
    if(target.pathname.endsWith("/longpoll") && hosts.includes(target.host)){
      target.host = hosts[next++ % hosts.length]
      requests[target.host]++
    }
    return realFetch(target, options)
  }
  const made = []
  t.after(async () => {
    globalThis.fetch = realFetch
    await Promise.all(made.map(c => c.close()))
    for(const node of nodes){ node.stop() }
  })
  const connect = async (node, opts) => {
    const c = new Client(node.url, "/bench", {heartbeatIntervalMs: 30000, ...opts})
    made.push(c)
    return c.connect()
  }
  const lp = await connect(nodes[0], {transport: LongPoll})
  assert.equal(lp.socket.transport, LongPoll)
  const ws = await connect(nodes[1])

  // Join, push and reply, and broadcasts both ways with a WebSocket client on node b.
  const topic = uniqueTopic("bench:lp-cluster-")
  let gotLp, gotWs
  const {channel: lpChannel} = await lp.join(topic, {}, {bind: ch => { gotLp = collect(ch, "broadcast") }})
  const {channel: wsChannel} = await ws.join(topic, {}, {bind: ch => { gotWs = collect(ch, "broadcast") }})
  for(let i = 0; i < 4; i++){
    assert.deepEqual(await push(lpChannel, "echo", {i}), {status: "ok", response: {i}})
  }
  assert.deepEqual(await push(lpChannel, "broadcast", {from: "long-poll"}), {status: "ok", response: {}})
  assert.deepEqual(await push(wsChannel, "broadcast", {from: "websocket"}), {status: "ok", response: {}})
  await waitUntil(() => gotLp.length === 2 && gotWs.length === 2, 5000,
    () => `long-poll ${JSON.stringify(gotLp)} websocket ${JSON.stringify(gotWs)}`)
  const bodies = list => list.map(m => m.from).sort()
  assert.deepEqual(bodies(gotLp), ["long-poll", "websocket"])
  assert.deepEqual(bodies(gotWs), ["long-poll", "websocket"])

  // Presence between the long-poll member and a WebSocket member.
  const presenceTopic = uniqueTopic("presence:lp-cluster-")
  const member = async (client, user) => {
    let presence
    await client.join(presenceTopic, {user}, {bind: ch => { presence = new Presence(ch) }})
    return presence
  }
  const lpPresence = await member(lp, "lp")
  const wsPresence = await member(ws, "ws")
  const names = presence => presence.list(key => key).sort()
  await waitUntil(() => names(lpPresence).length === 2 && names(wsPresence).length === 2, 5000,
    () => `long-poll sees ${names(lpPresence)}, websocket sees ${names(wsPresence)}`)
  assert.deepEqual(names(lpPresence), ["lp", "ws"])
  assert.deepEqual(names(wsPresence), ["lp", "ws"])

  assert.ok(hosts.every(host => requests[host] >= 5), `requests per node ${JSON.stringify(requests)}`)
  assert.deepEqual(lp.closes, [], "the long-poll transport never closed")
  assert.equal(lp.opens, 1, "one session throughout")
})
