// The parity fixture over TLS (`--tls-cert PEM --tls-key PEM`, feature `tls`), with a
// self-signed certificate made here by `openssl`: the official client in node (the `ws`
// transport given the certificate as its only CA) and in headless Chromium (told to trust
// the certificate's public key with --ignore-certificate-errors-spki-list, which accepts
// that key alone, not any certificate). A Chromium that is not told refuses to connect,
// and plain HTTP on the port gets a 400. The fixture also has `--compress`, so both
// clients compress over TLS (node checks the server's answer and sends a long message).

import {test, before, after} from "node:test"
import assert from "node:assert/strict"
import {execFileSync} from "node:child_process"
import crypto from "node:crypto"
import fs from "node:fs"
import http from "node:http"
import os from "node:os"
import path from "node:path"
import {Socket} from "phoenix"
import WebSocket from "ws"
import {startFixture, uniqueTopic, withTimeout} from "./fixture.mjs"
import {launchChromium, servePage} from "./browser.mjs"

const WAIT_MS = 10000

let dir, certPem, server, pages

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "phx-tls-"))
  const cert = path.join(dir, "cert.pem")
  const key = path.join(dir, "key.pem")
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost",
    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-addext", "basicConstraints=critical,CA:FALSE"], {stdio: "ignore"})
  certPem = fs.readFileSync(cert, "utf8")
  // Over plain http, so that the certificate matters only to the wss connection.
  pages = await servePage('<!doctype html><title>phx tls</title><script src="/phoenix.js"></script>')
  server = await startFixture({args: ["--tls-cert", cert, "--tls-key", key, "--compress"]})
})

after(() => {
  if(server){ server.stop() }
  if(pages){ pages.close() }
  fs.rmSync(dir, {recursive: true, force: true})
})

/** The base64 SHA-256 of the certificate's public key, as Chromium's SPKI list wants it. */
function spkiHash(pem){
  const spki = new crypto.X509Certificate(pem).publicKey.export({type: "spki", format: "der"})
  return crypto.createHash("sha256").update(spki).digest("base64")
}

test("the official client in node joins, pushes and gets broadcasts over wss", async () => {
  const ca = certPem
  const extensions = []
  class TrustingWebSocket extends WebSocket {
    constructor(url, protocols){
      super(url, protocols, {ca, handshakeTimeout: 5000, closeTimeout: 2000})
      this.on("upgrade", response => extensions.push(response.headers["sec-websocket-extensions"]))
    }
  }
  const topic = uniqueTopic("bench:tls-node-")
  const sockets = [0, 1].map(() => new Socket(`wss://127.0.0.1:${server.port}/bench`, {transport: TrustingWebSocket}))
  try {
    const channels = await Promise.all(sockets.map(socket => withTimeout(new Promise((resolve, reject) => {
      socket.onError(error => reject(new Error(`socket error: ${error?.message || error}`)))
      socket.connect()
      const channel = socket.channel(topic, {})
      channel.join().receive("ok", () => resolve(channel)).receive("error", reject)
    }), WAIT_MS, "wss join")))
    const got = new Promise(resolve => channels[1].on("broadcast", resolve))
    assert.deepEqual(extensions, Array(2).fill("permessage-deflate; server_no_context_takeover"))
    // Long enough for both sides to compress it.
    const body = "over tls, compressed; ".repeat(100)
    const reply = await withTimeout(new Promise(resolve => {
      channels[0].push("echo", {body}).receive("ok", resolve)
    }), WAIT_MS, "echo reply")
    assert.deepEqual(reply, {body})
    channels[0].push("broadcast", {n: 1})
    assert.deepEqual(await withTimeout(got, WAIT_MS, "broadcast"), {n: 1})
  } finally {
    for(const socket of sockets){ socket.disconnect() }
  }
})

/**
 * Opens the page, and runs a join, a push and the broadcast it causes over wss to the
 * fixture. On the bench socket, which checks no origin (the user socket allows only
 * example.com).
 */
async function chatInBrowser(browser, port){
  const page = await browser.newPage()
  try {
    await page.goto(pages.url)
    return await page.evaluate(({port, topic, waitMs}) => new Promise(resolve => {
      const socket = new Phoenix.Socket(`wss://127.0.0.1:${port}/bench`)
      const done = result => { socket.disconnect(); resolve(result) }
      setTimeout(() => done({ok: false, why: "timeout"}), waitMs)
      socket.onError(() => done({ok: false, why: "socket error"}))
      socket.connect()
      const channel = socket.channel(topic, {})
      channel.on("broadcast", payload => done({ok: true, payload}))
      channel.join().receive("ok", () => channel.push("broadcast", {body: "hello over wss"}))
    }), {port, topic: uniqueTopic("bench:tls-browser-"), waitMs: WAIT_MS})
  } finally {
    await page.close()
  }
}

test("the official client in Chromium, trusting the certificate's key, chats over wss", async () => {
  const trusting = await launchChromium([`--ignore-certificate-errors-spki-list=${spkiHash(certPem)}`])
  try {
    const result = await chatInBrowser(trusting, server.port)
    assert.deepEqual(result, {ok: true, payload: {body: "hello over wss"}})
  } finally {
    await trusting.close()
  }
  // The same page in a Chromium not told to trust it cannot connect.
  const wary = await launchChromium()
  try {
    const result = await chatInBrowser(wary, server.port)
    assert.equal(result.ok, false, "an untrusted certificate must not be accepted")
  } finally {
    await wary.close()
  }
})

test("plain HTTP on the TLS port gets a 400 that says so", async () => {
  const {status, body} = await withTimeout(new Promise((resolve, reject) => {
    http.get(`http://127.0.0.1:${server.port}/ws/websocket`, res => {
      let body = ""
      res.setEncoding("utf8")
      res.on("data", chunk => { body += chunk })
      res.on("end", () => resolve({status: res.statusCode, body}))
    }).on("error", reject)
  }), WAIT_MS, "plain HTTP request")
  assert.equal(status, 400)
  assert.match(body, /TLS only/)
})
