// The chat demo in a real browser: two people join the same room in headless Chromium
// (Debian's /usr/bin/chromium, driven by playwright-core), each sees the other arrive,
// a message typed by one appears for the other, and a person who leaves disappears.
// Screenshots go to target/chat-browser-*.png for a person to look at.

import {test} from "node:test"
import assert from "node:assert/strict"
import fs from "node:fs"
import path from "node:path"
import {launchChromium} from "./browser.mjs"
import {REPO_ROOT, startFixture} from "./fixture.mjs"

const SHOTS = path.join(REPO_ROOT, "target")
const WAIT_MS = 15000

async function joinAs(browser, url, name){
  const context = await browser.newContext({viewport: {width: 1000, height: 700}})
  const page = await context.newPage()
  await page.goto(url)
  await page.fill("#name", name)
  await page.fill("#room", "lobby")
  await page.click("#join")
  await page.waitForSelector("#chat-view:not([hidden])", {timeout: WAIT_MS})
  return {context, page}
}

const present = page => page.$$eval("#presence .presence-user", items => items.map(i => i.textContent))

test("two browser pages chat through the demo and see each other come and go", async () => {
  const server = await startFixture({example: "chat"})
  const browser = await launchChromium()
  try {
    const url = `http://127.0.0.1:${server.port}/`
    const ada = await joinAs(browser, url, "Ada")
    const grace = await joinAs(browser, url, "Grace")

    // Presence: each page lists both people.
    for(const {page} of [ada, grace]){
      await page.waitForFunction(() => {
        const names = [...document.querySelectorAll("#presence .presence-user")].map(i => i.textContent)
        return names.some(n => n.includes("Ada")) && names.some(n => n.includes("Grace"))
      }, null, {timeout: WAIT_MS})
    }

    // A message typed on one page appears on the other.
    await ada.page.fill("#message", "Hello from Ada")
    await ada.page.press("#message", "Enter")
    await grace.page.waitForFunction(() =>
      [...document.querySelectorAll("#messages .message")].some(m =>
        m.textContent.includes("Hello from Ada") && m.textContent.includes("Ada")), null, {timeout: WAIT_MS})
    await grace.page.fill("#message", "Hi Ada, Grace here")
    await grace.page.click("#send")
    await ada.page.waitForFunction(() =>
      [...document.querySelectorAll("#messages .message")].some(m => m.textContent.includes("Grace here")),
    null, {timeout: WAIT_MS})

    fs.mkdirSync(SHOTS, {recursive: true})
    await ada.page.screenshot({path: path.join(SHOTS, "chat-browser-ada.png")})
    await grace.page.screenshot({path: path.join(SHOTS, "chat-browser-grace.png")})

    // Grace closes her tab: she disappears from Ada's list.
    await grace.context.close()
    await ada.page.waitForFunction(() =>
      ![...document.querySelectorAll("#presence .presence-user")].some(i => i.textContent.includes("Grace")),
    null, {timeout: WAIT_MS})
    assert.ok((await present(ada.page)).some(n => n.includes("Ada")))
    await ada.page.screenshot({path: path.join(SHOTS, "chat-browser-after-leave.png")})
    await ada.context.close()
  } finally {
    await browser.close()
    server.stop()
  }
})
