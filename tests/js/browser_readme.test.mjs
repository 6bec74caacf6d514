// The README's first server (examples/readme.rs) in a real browser: a page served from
// http://127.0.0.1:<another port>/ loads the official client and joins room:lobby over
// ws://127.0.0.1:<port>/socket and ws://localhost:<port>/socket, with the endpoint's
// defaults (host localhost, a loopback listener, the default origin check). Headless
// Chromium (Debian's /usr/bin/chromium) driven by playwright-core.

import {test} from "node:test"
import assert from "node:assert/strict"
import {freePort, startFixture} from "./fixture.mjs"
import {launchChromium, servePage} from "./browser.mjs"

const WAIT_MS = 15000

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>readme</title><script src="/phoenix.js"></script></head>
<body><script>
// Joins room:lobby over the socket at url, says hello, and resolves with what came back.
window.joinAndSay = url => new Promise((resolve, reject) => {
  const socket = new Phoenix.Socket(url, {reconnectAfterMs: () => 60000})
  socket.onError(() => reject(new Error("socket error on " + url)))
  socket.connect()
  const channel = socket.channel("room:lobby", {})
  channel.on("new_msg", payload => { socket.disconnect(); resolve({broadcast: payload}) })
  channel.join()
    .receive("ok", () => channel.push("new_msg", {body: "hello from " + location.origin}))
    .receive("error", reject)
    .receive("timeout", () => reject(new Error("join timeout")))
})
</script></body></html>`

test("the README's first server: a page on another loopback port joins with the defaults", {timeout: 60000}, async () => {
  const port = await freePort()
  const server = await startFixture({example: "readme", port, env: {PORT: String(port)}})
  const page = await servePage(PAGE)
  const browser = await launchChromium()
  try {
    const context = await browser.newContext()
    const tab = await context.newPage()
    const problems = []
    tab.on("pageerror", err => problems.push(err.message))
    await tab.goto(page.url)
    for(const host of ["127.0.0.1", "localhost"]){
      const url = `ws://${host}:${port}/socket`
      const result = await Promise.race([
        tab.evaluate(url => window.joinAndSay(url), url),
        new Promise((_, reject) => setTimeout(() => reject(new Error(`nothing back from ${url}`)), WAIT_MS)),
      ])
      assert.deepEqual(result, {broadcast: {body: `hello from ${page.url.replace(/\/$/, "")}`}}, url)
    }
    assert.deepEqual(problems, [], "no error in the page")
    await context.close()
  } finally {
    await browser.close()
    await page.close()
    server.stop()
  }
})
