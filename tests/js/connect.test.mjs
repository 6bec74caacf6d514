// The WebSocket handshake: origin check, connect refusals and their HTTP status, vsn
// negotiation, plain HTTP answers, connect_info, and the socket-id `disconnect` broadcast.
// Refusals are checked with a raw `ws` client, because a WebSocket client (the phoenix one
// included) never sees the HTTP status of a refused upgrade.

import {test} from "node:test"
import assert from "node:assert/strict"
import {clients, fixtureUrl, httpUrl, rawHandshake, uniqueTopic, waitUntil, push, sleep} from "./fixture.mjs"

await fixtureUrl()

for(const mount of ["/ws", "/ws/admin", "/ws/limited", "/ws/connect_info"]){
  test(`${mount}: Origin http://evil.com is refused with 403`, {timeout: 10000}, async () => {
    const r = await rawHandshake(mount, {query: "vsn=2.0.0", origin: "http://evil.com"})
    assert.deepEqual({opened: r.opened, status: r.status}, {opened: false, status: 403})
  })
}

for(const origin of ["https://example.com:8443", "http://example.com", "https://example.com"]){
  test(`/ws: Origin ${origin} is accepted (host example.com, any scheme and port)`, {timeout: 10000}, async () => {
    const r = await rawHandshake("/ws", {query: "vsn=2.0.0", origin})
    assert.deepEqual(r, {opened: true})
  })
}

for(const origin of ["http://sub.example.com", "http://example.com.evil.com", "null"]){
  test(`/ws: Origin ${origin} is refused with 403 (the host must be exactly example.com)`, {timeout: 10000}, async () => {
    const r = await rawHandshake("/ws", {query: "vsn=2.0.0", origin})
    assert.deepEqual({opened: r.opened, status: r.status}, {opened: false, status: 403})
  })
}

test("/ws: a request without Origin is accepted", {timeout: 10000}, async () => {
  assert.deepEqual(await rawHandshake("/ws", {query: "vsn=2.0.0"}), {opened: true})
})

test("/bench: no origin check, so Origin http://evil.com is accepted", {timeout: 10000}, async () => {
  assert.deepEqual(await rawHandshake("/bench", {query: "vsn=2.0.0", origin: "http://evil.com"}), {opened: true})
})

test("/ws: a well-formed Origin is accepted by the phoenix client too", {timeout: 10000}, async t => {
  const c = await clients(t).connect("/ws", {origin: "https://example.com:8443"})
  assert.deepEqual((await c.join(uniqueTopic("room:origin-"))).response, {})
})

test("connect param reject=true is refused with 403", {timeout: 10000}, async () => {
  const r = await rawHandshake("/ws", {query: "reject=true&vsn=2.0.0"})
  assert.deepEqual({opened: r.opened, status: r.status}, {opened: false, status: 403})
})

test("connect param ratelimit=true is refused with 429 and body Too many requests", {timeout: 10000}, async () => {
  const r = await rawHandshake("/ws", {query: "ratelimit=true&vsn=2.0.0"})
  assert.deepEqual(r, {opened: false, status: 429, body: "Too many requests"})
})

for(const vsn of ["3.0.0", "2.1.0", "2.0", "abc", ""]){
  test(`vsn=${JSON.stringify(vsn)} is refused with 403`, {timeout: 10000}, async () => {
    const r = await rawHandshake("/ws", {query: `vsn=${vsn}`})
    assert.deepEqual({opened: r.opened, status: r.status}, {opened: false, status: 403})
  })
}

for(const query of ["vsn=1.0.0", "vsn=2.0.0", "vsn=2.0.7", ""]){
  test(`/ws accepts ${query || "no vsn"}`, {timeout: 10000}, async () => {
    assert.deepEqual(await rawHandshake("/ws", {query}), {opened: true})
  })
}

test("the phoenix client on a refused connect reports errors, never opens, and keeps retrying", {timeout: 10000}, async t => {
  const c = await clients(t).make("/ws", {params: {reject: "true"}})
  c.socket.connect()
  await c.until(() => c.closes.length >= 2, 5000, "two failed connection attempts")
  assert.equal(c.opens, 0)
  assert.ok(c.errors.length >= 1)
  assert.notEqual(c.closes[0].code, 1000)
})

test("plain HTTP: a GET on a socket path without upgrade headers is 400, another path is 404", {timeout: 10000}, async () => {
  const base = await httpUrl()
  const onSocket = await fetch(`${base}/ws/websocket?vsn=2.0.0`)
  assert.equal(onSocket.status, 400)
  await onSocket.arrayBuffer()
  const elsewhere = await fetch(`${base}/no/such/path`)
  assert.equal(elsewhere.status, 404)
  await elsewhere.arrayBuffer()
})

test("/ws/connect_info: joined push carries connect_info from the request", {timeout: 10000}, async t => {
  const c = await clients(t).connect("/ws/connect_info", {
    params: {user_id: "ci-1"},
    headers: {"User-Agent": "phx-compat/1.0", "X-Trace-Id": "abc123", "x-Other": "B"},
  })
  let joined = null
  await c.join(uniqueTopic("room:ci-"), {}, {bind: ch => ch.on("joined", p => { joined = p })})
  await waitUntil(() => joined, 2000, "joined push")
  assert.deepEqual(joined, {
    status: "connected",
    user_id: "ci-1",
    connect_info: {
      x_headers: {"x-trace-id": "abc123", "x-other": "B"},
      peer_data: {address: "127.0.0.1"},
      uri: {path: "/ws/connect_info/websocket"},
      user_agent: "phx-compat/1.0",
    },
  })
})

test("/ws/connect_info: user_agent is null and x_headers empty when the request has none", {timeout: 10000}, async t => {
  // the `ws` client sends no User-Agent of its own
  const c = await clients(t).connect("/ws/connect_info")
  let joined = null
  await c.join(uniqueTopic("room:ci-"), {}, {bind: ch => ch.on("joined", p => { joined = p })})
  await waitUntil(() => joined, 2000, "joined push")
  assert.equal(joined.user_id, null)
  assert.equal(joined.connect_info.user_agent, null)
  assert.deepEqual(joined.connect_info.x_headers, {})
})

test("/ws: the joined push has no connect_info", {timeout: 10000}, async t => {
  const c = await clients(t).connect("/ws", {headers: {"User-Agent": "phx-compat/1.0", "X-Trace-Id": "abc"}})
  let joined = null
  await c.join(uniqueTopic("room:noci-"), {}, {bind: ch => ch.on("joined", p => { joined = p })})
  await waitUntil(() => joined, 2000, "joined push")
  assert.ok(!("connect_info" in joined), JSON.stringify(joined))
})

test("disconnect_user closes every connection of that user with 1001, and only those", {timeout: 15000}, async t => {
  const cs = clients(t)
  const userId = `42-${process.pid}-${Date.now()}`
  const victim = await cs.connect("/ws", {params: {user_id: userId}})
  const victim2 = await cs.connect("/ws/admin", {params: {user_id: userId}})
  const bystander = await cs.connect("/ws", {params: {user_id: `${userId}-other`}})
  const actor = await cs.connect("/ws")
  const topic = uniqueTopic("room:disc-")
  const {channel: victimChannel} = await victim.join(topic)
  await victim2.join(uniqueTopic("room:disc2-"))
  await bystander.join(topic)
  const {channel} = await actor.join(topic)

  const errorsBefore = victim.seen(topic, "phx_error").length + victim.seen(topic, "phx_close").length
  const reply = await push(channel, "disconnect_user", {user_id: userId})
  assert.deepEqual(reply, {status: "ok", response: {}})

  await victim.until(() => victim.closes.length >= 1, 3000, "victim socket close")
  await victim2.until(() => victim2.closes.length >= 1, 3000, "second victim socket close")
  assert.equal(victim.closes[0].code, 1001)
  assert.equal(victim2.closes[0].code, 1001)
  // no phx_close or phx_error frames: the connection just goes away
  assert.equal(victim.seen(topic, "phx_error").length + victim.seen(topic, "phx_close").length, errorsBefore)
  // the client treats the transport loss as an error of its channels
  assert.notEqual(victimChannel.state, "joined")

  await sleep(200)
  assert.equal(bystander.closes.length, 0, "another user's connection stays")
  assert.equal(actor.closes.length, 0)
  assert.deepEqual(await push(channel, "new_msg", {body: "still here"}), {status: "ok", response: {}})

  // 1001 is not "normal closure": the client reconnects and rejoins
  await victim.until(() => victim.opens >= 2, 5000, "victim reconnect")
  await waitUntil(() => victimChannel.state === "joined", 5000, "victim rejoin")
})
