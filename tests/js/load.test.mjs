// Many clients in one room: 100 phoenix sockets (one connection each) join the same topic,
// a few of them push `broadcast`, and every socket must see every message exactly once, in
// order per sender. It runs on the /bench socket (60 s idle timeout): with the user socket's
// 200 ms timeout, a test process that stalls on a busy machine loses connections that have
// done nothing wrong. The Room's intercept path is covered by push.test.mjs.

import {test} from "node:test"
import assert from "node:assert/strict"
import {clients, collect, fixtureUrl, push, sleep, uniqueTopic, waitUntil} from "./fixture.mjs"

await fixtureUrl()

const CLIENTS = 100
const SENDERS = 5
const PER_SENDER = 20
const BATCH = 20

test(`${CLIENTS} clients in one topic each see all ${SENDERS * PER_SENDER} messages exactly once, in order per sender`, {timeout: 60000}, async t => {
  const cs = clients(t)
  const topic = uniqueTopic("bench:load-")

  const member = async i => {
    const c = await cs.connect("/bench", {params: {user_id: `load-${i}`}})
    let got
    const {channel} = await c.join(topic, {}, {timeout: 20000, bind: ch => { got = collect(ch, "broadcast") }})
    return {c, channel, got}
  }
  // connect and join in batches, to keep the burst of handshakes bounded
  const members = []
  for(let start = 0; start < CLIENTS; start += BATCH){
    const batch = Array.from({length: Math.min(BATCH, CLIENTS - start)}, (_, k) => member(start + k))
    members.push(...await Promise.all(batch))
  }
  assert.equal(members.length, CLIENTS)

  // close codes per member, for failure messages: "-" where the connection never closed
  const closeInfo = () => `close codes: ${members.map(m => m.c.closes.map(e => e.code).join("+") || "-")}`

  const senders = members.slice(0, SENDERS)
  const replies = await Promise.all(senders.flatMap(({channel}, from) =>
    Array.from({length: PER_SENDER}, (_, seq) => push(channel, "broadcast", {from, seq}, 20000))))
  assert.ok(replies.every(r => r.status === "ok" && Object.keys(r.response).length === 0),
    `replies: ${JSON.stringify(replies.filter(r => r.status !== "ok").slice(0, 3))}; ${closeInfo()}`)

  const total = SENDERS * PER_SENDER
  await waitUntil(() => members.every(m => m.got.length >= total), 30000,
    () => `every member to get ${total} messages; counts: ${members.map(m => m.got.length)}; ${closeInfo()}`)
  await sleep(300) // duplicates would show up now

  assert.ok(members.every(m => m.c.closes.length === 0),
    `connections closed during the test (a server idle close?); ${closeInfo()}`)

  members.forEach(({got}, i) => {
    assert.equal(got.length, total, `member ${i} got ${got.length} messages`)
    for(let from = 0; from < SENDERS; from++){
      const seqs = got.filter(p => p.from === from).map(p => p.seq)
      assert.deepEqual(seqs, Array.from({length: PER_SENDER}, (_, k) => k), `member ${i}, sender ${from}`)
    }
  })
})
