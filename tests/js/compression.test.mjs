// permessage-deflate against a fixture of its own started with `--compress`: the official
// client in node (the `ws` package offers permessage-deflate on every connection and
// compresses messages of 1 KiB and more) and in headless Chromium (which offers it on
// every connection and compresses every message). Each checks the server's answer in
// Sec-WebSocket-Extensions, then a join, a long push and reply, and a long broadcast
// between the two. The shared fixture, started without the flag, answers no extension.

import {test, before, after} from "node:test"
import assert from "node:assert/strict"
import {Socket} from "phoenix"
import WebSocket from "ws"
import {fixtureUrl, startFixture, uniqueTopic, withTimeout} from "./fixture.mjs"
import {launchChromium, servePage} from "./browser.mjs"

const WAIT_MS = 10000
// What the server answers to the offers of ws and of Chromium.
const ANSWER = "permessage-deflate; server_no_context_takeover"
// Long and repetitive, as JSON often is: compressed both ways.
const LONG = Array.from({length: 200}, (_, i) => `line ${i % 10} of a long message`).join("\n")

let server, pages

before(async () => {
  pages = await servePage('<!doctype html><title>phx deflate</title><script src="/phoenix.js"></script>')
  server = await startFixture({args: ["--compress"]})
})

after(() => {
  if(server){ server.stop() }
  if(pages){ pages.close() }
})

/** A `ws` class for the client's `transport` option that keeps the server's answer. */
function recordingTransport(answers){
  return class RecordingWebSocket extends WebSocket {
    constructor(url, protocols){
      super(url, protocols, {handshakeTimeout: 5000, closeTimeout: 2000})
      this.on("upgrade", response => answers.push(response.headers["sec-websocket-extensions"] ?? null))
    }
  }
}

/** Connects `count` clients to `base`/bench and joins `topic` with each. */
async function joined(base, topic, count, answers){
  const sockets = Array.from({length: count}, () => new Socket(`${base}/bench`, {transport: recordingTransport(answers)}))
  const channels = await Promise.all(sockets.map(socket => withTimeout(new Promise((resolve, reject) => {
    socket.onError(error => reject(new Error(`socket error: ${error?.message || error}`)))
    socket.connect()
    const channel = socket.channel(topic, {})
    channel.join().receive("ok", () => resolve(channel)).receive("error", reject)
  }), WAIT_MS, "join")))
  return {sockets, channels}
}

test("the official client in node negotiates compression, and long messages go both ways", async () => {
  const answers = []
  const {sockets, channels} = await joined(server.url, uniqueTopic("bench:deflate-node-"), 2, answers)
  try {
    assert.deepEqual(answers, [ANSWER, ANSWER])
    assert.equal(sockets[0].conn.extensions, "permessage-deflate", "ws agreed to it")
    const reply = await withTimeout(new Promise(resolve => {
      channels[0].push("echo", {body: LONG}).receive("ok", resolve)
    }), WAIT_MS, "echo reply")
    assert.deepEqual(reply, {body: LONG})
    const got = new Promise(resolve => channels[1].on("broadcast", resolve))
    channels[0].push("broadcast", {body: LONG, n: 1})
    assert.deepEqual(await withTimeout(got, WAIT_MS, "broadcast"), {body: LONG, n: 1})
  } finally {
    for(const socket of sockets){ socket.disconnect() }
  }
})

test("a fixture without --compress answers no extension", async () => {
  const answers = []
  const {sockets} = await joined(await fixtureUrl(), uniqueTopic("bench:deflate-off-"), 1, answers)
  try {
    assert.deepEqual(answers, [null])
    assert.equal(sockets[0].conn.extensions, "")
  } finally {
    for(const socket of sockets){ socket.disconnect() }
  }
})

test("the official client in Chromium negotiates compression, and long messages go both ways", async () => {
  const browser = await launchChromium()
  const topic = uniqueTopic("bench:deflate-browser-")
  const answers = []
  const node = await joined(server.url, topic, 1, answers)
  try {
    const page = await browser.newPage()
    await page.goto(pages.url)
    const fromNode = new Promise(resolve => node.channels[0].on("broadcast", resolve))
    const running = page.evaluate(({url, topic, long, waitMs}) => new Promise(resolve => {
      const socket = new Phoenix.Socket(url)
      const done = result => { socket.disconnect(); resolve(result) }
      setTimeout(() => done({why: "timeout"}), waitMs)
      socket.onError(() => done({why: "socket error"}))
      socket.connect()
      const channel = socket.channel(topic, {})
      channel.on("broadcast", payload => {
        if(payload.from === "node"){ done({extensions: socket.conn.extensions, echoed: channel.echoed, payload}) }
      })
      channel.join().receive("ok", () => {
        channel.push("echo", {body: long}).receive("ok", reply => {
          channel.echoed = reply.body === long
          channel.push("broadcast", {from: "browser", body: long})
        })
      })
    }), {url: `${server.url}/bench`, topic, long: LONG, waitMs: WAIT_MS})
    // The browser's broadcast reached node; node's reaches the browser.
    const browserSaid = await withTimeout(fromNode, WAIT_MS, "the browser's broadcast in node")
    assert.deepEqual(browserSaid, {from: "browser", body: LONG})
    node.channels[0].push("broadcast", {from: "node", body: LONG})
    const result = await running
    assert.equal(result.why, undefined, `the page failed: ${result.why}`)
    assert.deepEqual(result, {extensions: ANSWER, echoed: true, payload: {from: "node", body: LONG}})
  } finally {
    node.sockets[0].disconnect()
    await browser.close()
  }
})
