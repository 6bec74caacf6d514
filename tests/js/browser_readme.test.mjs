// The README's first server (examples/readme.rs) in a real browser: a page served from
// http://127.0.0.1:<another port>/ loads the official client and joins room:lobby over
// ws://127.0.0.1:<port>/socket and ws://localhost:<port>/socket, with the endpoint's
// defaults (host localhost, a loopback listener, the default origin check). Headless
// Chromium (Debian's /usr/bin/chromium) driven by playwright-core.

import {test} from "node:test"
import assert from "node:assert/strict"
import fs from "node:fs"
import http from "node:http"
import path from "node:path"
import {chromium} from "playwright-core"
import {REPO_ROOT, freePort, startFixture} from "./fixture.mjs"

const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium"
const CLIENT_JS = path.join(REPO_ROOT, "tests/js/node_modules/phoenix/priv/static/phoenix.js")
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

/** A static server on 127.0.0.1: the page and the official client. */
async function servePage(){
  const port = await freePort()
  const server = http.createServer((req, res) => {
    if(req.url === "/"){
      res.writeHead(200, {"content-type": "text/html; charset=utf-8"}).end(PAGE)
    } else if(req.url === "/phoenix.js"){
      res.writeHead(200, {"content-type": "text/javascript"}).end(fs.readFileSync(CLIENT_JS))
    } else {
      res.writeHead(404).end()
    }
  })
  await new Promise(resolve => server.listen(port, "127.0.0.1", resolve))
  return {url: `http://127.0.0.1:${port}/`, close: () => new Promise(resolve => server.close(resolve))}
}

test("the README's first server: a page on another loopback port joins with the defaults", {timeout: 60000}, async () => {
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: the test command installs Debian's chromium`)
  const port = await freePort()
  const server = await startFixture({example: "readme", port, env: {PORT: String(port)}})
  const page = await servePage()
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  })
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
