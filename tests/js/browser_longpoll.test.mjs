// The official client over long-poll in a real browser (headless Chromium, driven by
// playwright-core), against the parity fixture's /bench mount:
// - forced with `transport: LongPoll`, from a page of another origin (so every POST goes
//   through a CORS preflight): join, push and reply, broadcasts to and from a WebSocket
//   client in node, and presence;
// - falling back on its own (`longPollFallbackMs`) when the WebSocket upgrade is refused,
//   through a proxy that refuses upgrades (proxy.mjs), from a page of the proxy's origin.

import {test} from "node:test"
import assert from "node:assert/strict"
import fs from "node:fs"
import {Presence} from "phoenix"
import {clients, collect, httpUrl, push, uniqueTopic, waitUntil} from "./fixture.mjs"
import {startProxy} from "./proxy.mjs"
import {CLIENT_JS, launchChromium} from "./browser.mjs"

const WAIT_MS = 15000

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>long-poll</title><script src="/phoenix.js"></script></head>
<body><script>
// What the tests drive, through page.evaluate.
window.lp = {
  connect(url, opts){
    this.socket = new Phoenix.Socket(url, {timeout: 5000, reconnectAfterMs: () => 100, ...opts})
    this.opened = new Promise(resolve => this.socket.onOpen(resolve))
    this.socket.connect()
    return this.opened.then(() => this.socket.transport === Phoenix.LongPoll ? "LongPoll" : "other")
  },
  join(topic, params){
    const channel = this.socket.channel(topic, params)
    channel.seen = []
    channel.onMessage = (event, payload) => { channel.seen.push({event, payload}); return payload }
    this[topic] = channel
    return new Promise((resolve, reject) => channel.join()
      .receive("ok", resolve).receive("error", reject).receive("timeout", () => reject(new Error("join timeout"))))
  },
  push(topic, event, payload){
    return new Promise((resolve, reject) => this[topic].push(event, payload)
      .receive("ok", resolve).receive("error", reject).receive("timeout", () => reject(new Error(event + " timeout"))))
  },
  seen(topic, event){
    return this[topic].seen.filter(m => m.event === event).map(m => m.payload)
  },
  presence(topic){
    this.presences = this.presences || {}
    this.presences[topic] = new Phoenix.Presence(this[topic])
  },
  present(topic){
    return this.presences[topic].list(key => key).sort()
  },
}
</script></body></html>`

async function withBrowser(run){
  const fixture = await httpUrl()
  const proxy = await startProxy(fixture, {pages: {
    "/": {type: "text/html; charset=utf-8", body: PAGE},
    "/phoenix.js": {type: "text/javascript", body: fs.readFileSync(CLIENT_JS)},
  }})
  const browser = await launchChromium()
  try {
    const context = await browser.newContext()
    const page = await context.newPage()
    const problems = []
    page.on("pageerror", err => problems.push(err.message))
    await page.goto(`${proxy.url}/`)
    await run({page, fixture, proxy})
    assert.deepEqual(problems, [], "no error in the page")
    await context.close()
  } finally {
    await browser.close()
    await proxy.close()
  }
}

test("browser: forced long-poll from another origin: join, push, reply, broadcasts and presence", {timeout: 60000}, async t => {
  const cs = clients(t)
  await withBrowser(async ({page, fixture}) => {
    const transport = await page.evaluate(url => window.lp.connect(url, {transport: Phoenix.LongPoll}), `${fixture}/bench`)
    assert.equal(transport, "LongPoll")

    // Join, push and reply.
    const topic = uniqueTopic("bench:browser-")
    assert.deepEqual(await page.evaluate(topic => window.lp.join(topic, {}), topic), {})
    assert.deepEqual(await page.evaluate(topic => window.lp.push(topic, "echo", {hello: "browser"}), topic), {hello: "browser"})

    // Broadcasts both ways with a WebSocket client in node.
    const ws = await cs.connect("/bench", {heartbeatIntervalMs: 30000})
    let fromBrowser
    const {channel} = await ws.join(topic, {}, {bind: ch => { fromBrowser = collect(ch, "broadcast") }})
    assert.deepEqual(await page.evaluate(topic => window.lp.push(topic, "broadcast", {from: "browser"}), topic), {})
    await waitUntil(() => fromBrowser.length === 1, 5000, "the browser's broadcast in node")
    assert.deepEqual(fromBrowser, [{from: "browser"}])
    assert.equal((await push(channel, "broadcast", {from: "node"})).status, "ok")
    await page.waitForFunction(topic => window.lp.seen(topic, "broadcast").length === 2, topic, {timeout: WAIT_MS})
    assert.deepEqual(await page.evaluate(topic => window.lp.seen(topic, "broadcast"), topic), [{from: "browser"}, {from: "node"}])

    // Presence: the page and node see each other.
    const presenceTopic = uniqueTopic("presence:browser-")
    await page.evaluate(async topic => {
      const joined = window.lp.join(topic, {user: "browser"})
      window.lp.presence(topic)
      await joined
    }, presenceTopic)
    let nodePresence
    await ws.join(presenceTopic, {user: "node"}, {bind: ch => { nodePresence = new Presence(ch) }})
    await page.waitForFunction(topic => window.lp.present(topic).length === 2, presenceTopic, {timeout: WAIT_MS})
    assert.deepEqual(await page.evaluate(topic => window.lp.present(topic), presenceTopic), ["browser", "node"])
    await waitUntil(() => nodePresence.list(key => key).length === 2, 5000, "node sees the browser")
    assert.deepEqual(nodePresence.list(key => key).sort(), ["browser", "node"])
  })
})

test("browser: a refused WebSocket upgrade falls back to long-poll", {timeout: 60000}, async () => {
  await withBrowser(async ({page, proxy}) => {
    const transport = await page.evaluate(() => window.lp.connect("/bench", {longPollFallbackMs: 3000}))
    assert.equal(transport, "LongPoll")
    assert.ok(proxy.refusedUpgrades >= 1, "the WebSocket was tried first")
    assert.equal(await page.evaluate(() => sessionStorage.getItem("phx:fallback:LongPoll")), "true",
      "the client remembers the fallback")
    const topic = uniqueTopic("bench:fallback-")
    await page.evaluate(topic => window.lp.join(topic, {}), topic)
    assert.deepEqual(await page.evaluate(topic => window.lp.push(topic, "echo", {n: 1}), topic), {n: 1})
  })
})
