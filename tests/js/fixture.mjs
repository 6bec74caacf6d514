// Helpers for the compatibility suite: start (or find) the parity fixture server, and
// drive the official `phoenix` JS client against it from node.
//
// The fixture is described in shared/FIXTURE.md. It listens on 127.0.0.1:PORT and mounts
// /ws, /ws/admin, /ws/limited, /ws/connect_info (user and limited sockets, 200 ms idle
// timeout) and /bench (60 s idle timeout).
//
// Node 20 has no global WebSocket, so every Socket gets the `ws` package as its transport
// (phoenix 1.8 takes it through the `transport` option; it only falls back to
// globalThis.WebSocket when that option is absent).

import {spawn} from "node:child_process"
import fs from "node:fs"
import net from "node:net"
import os from "node:os"
import path from "node:path"
import {fileURLToPath} from "node:url"
import {Socket} from "phoenix"
import WebSocket from "ws"

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..")

// The user socket closes a connection that sent nothing for 200 ms, so every client of it
// sends a heartbeat every HEARTBEAT_MS (see Client for how).
export const HEARTBEAT_MS = Number(process.env.PHX_HEARTBEAT_MS || 50)
// The default timeout of pushes (joins included) in this suite.
export const PUSH_TIMEOUT_MS = 5000
// Channel rejoin and socket reconnect delays, kept small so that recovery tests are quick.
export const REJOIN_MS = 50
export const RECONNECT_MS = 50

const STARTUP_MS = Number(process.env.PHX_FIXTURE_STARTUP_MS || 5 * 60 * 1000)

// ---------------------------------------------------------------------------------------
// The fixture server

/** A TCP port that is free on 127.0.0.1 right now. */
export function freePort(){
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.on("error", reject)
    srv.listen(0, "127.0.0.1", () => {
      const {port} = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

function canConnect(host, port){
  return new Promise(resolve => {
    const sock = net.connect({host, port})
    const done = ok => { sock.destroy(); resolve(ok) }
    sock.setTimeout(1000, () => done(false))
    sock.once("connect", () => done(true))
    sock.once("error", () => done(false))
  })
}

function logTail(file, lines = 40){
  try {
    return fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n")
  } catch {
    return "(no log)"
  }
}

/**
 * Starts `cargo run --release --all-features --example <example> -- --port PORT [args...]`
 * (with `env` added to the environment)
 * (the parity fixture unless told otherwise; every feature, so that it has every flag) from
 * the repository root and
 * waits until the port accepts TCP connections (at most PHX_FIXTURE_STARTUP_MS, 5 minutes by
 * default, to leave room for the first release build). Rejects at once if the process exits
 * before that. The server's output goes to a log file in the temp directory.
 *
 * Returns {url, port, logFile, stop}. The process is also killed when this node process exits.
 */
export async function startFixture({port, example = "parity", args = [], env = {}} = {}){
  port = port || await freePort()
  const logFile = path.join(os.tmpdir(), `phx-${example}-${process.pid}-${port}.log`)
  const logFd = fs.openSync(logFile, "w")
  // detached: the server gets its own process group, so stop() ends cargo and whatever it
  // started (cargo replaces itself with the example on Unix, but do not rely on that)
  // With every feature, the build scripts/test.sh makes, so that no test waits for a
  // rebuild.
  const cargoArgs = ["run", "--release", "--all-features", "--example", example, "--", "--port", String(port), ...args]
  const child = spawn("cargo", cargoArgs, {
    cwd: REPO_ROOT,
    stdio: ["ignore", logFd, logFd],
    detached: true,
    env: {...process.env, ...env},
  })
  fs.closeSync(logFd)
  child.unref()

  let exited = null
  child.on("exit", (code, signal) => { exited = {code, signal} })
  const spawnError = new Promise(resolve => child.once("error", resolve))

  const stop = () => {
    if(exited || child.pid === undefined){ return }
    try { process.kill(-child.pid, "SIGTERM") } catch { /* already gone */ }
  }
  process.once("exit", stop)

  const deadline = Date.now() + STARTUP_MS
  for(;;){
    const err = await Promise.race([spawnError, new Promise(r => setTimeout(r, 0, null))])
    if(err){
      throw new Error(`could not run cargo to start the parity fixture: ${err.message}`)
    }
    if(exited){
      throw new Error(`the ${example} example exited before listening on port ${port} ` +
        `(code ${exited.code}, signal ${exited.signal}); log ${logFile}:\n${logTail(logFile)}`)
    }
    if(await canConnect("127.0.0.1", port)){ break }
    if(Date.now() > deadline){
      stop()
      throw new Error(`the ${example} example did not listen on port ${port} within ${STARTUP_MS} ms; ` +
        `log ${logFile}:\n${logTail(logFile)}`)
    }
    await new Promise(r => setTimeout(r, 250))
  }
  return {url: `ws://127.0.0.1:${port}`, port, logFile, stop}
}

let fixturePromise = null

/**
 * The fixture's base URL, `ws://127.0.0.1:PORT`: PHX_FIXTURE_URL when set (ws:// or http://),
 * otherwise a fixture this process starts once (see startFixture).
 */
export function fixtureUrl(){
  if(!fixturePromise){
    const env = process.env.PHX_FIXTURE_URL
    fixturePromise = env
      ? Promise.resolve(env.replace(/^http/, "ws").replace(/\/+$/, ""))
      : startFixture().then(f => f.url)
  }
  return fixturePromise
}

/** The fixture's base URL over plain http (for raw requests). */
export async function httpUrl(){
  return (await fixtureUrl()).replace(/^ws/, "http")
}

// ---------------------------------------------------------------------------------------
// Small async helpers

/** Resolves or rejects like `promise`, but rejects with a labelled error after `ms`. */
export function withTimeout(promise, ms, label){
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${label}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

export const sleep = ms => new Promise(r => setTimeout(r, ms))

/**
 * Polls `fn` until it returns a truthy value, at most `ms`. `label` may be a function, called
 * on timeout, to describe the state reached.
 */
export async function waitUntil(fn, ms, label, every = 10){
  const deadline = Date.now() + ms
  for(;;){
    const value = fn()
    if(value){ return value }
    if(Date.now() > deadline){
      throw new Error(`timed out after ${ms} ms waiting for ${typeof label === "function" ? label() : label}`)
    }
    await sleep(every)
  }
}

let counter = 0
/** A topic no other test (or earlier run against a long-lived fixture) uses. */
export function uniqueTopic(prefix){
  counter += 1
  return `${prefix}${process.pid}-${Date.now().toString(36)}-${counter}`
}

/** The bytes of an ArrayBuffer (or view) as a plain array, for deepEqual. */
export function bytes(buf){
  return Array.from(buf instanceof ArrayBuffer ? new Uint8Array(buf) : buf)
}

/** A fresh ArrayBuffer holding `list` (a JS client sends a binary frame only for ArrayBuffers). */
export function arrayBuffer(list){
  return new Uint8Array(list).buffer
}

// ---------------------------------------------------------------------------------------
// Transports and serializers

/**
 * A `ws` WebSocket class for the `transport` option. The phoenix client constructs it as
 * `new transport(url, protocols)`, so request headers (Origin, User-Agent, x-*) are bound
 * here. A short closeTimeout keeps a misbehaving server from holding the process 30 s.
 */
export function wsTransport({headers = {}, origin} = {}){
  return class PhoenixTestWebSocket extends WebSocket {
    constructor(url, protocols){
      super(url, protocols, {headers, origin, closeTimeout: 2000, handshakeTimeout: 5000})
    }
  }
}

/**
 * V1 JSON (shared/PROTOCOL.md 3.3) for the `encode`/`decode` options. phoenix 1.8 only ships
 * the V2 serializer, but accepts any encode/decode together with `vsn`. The client sends
 * `join_ref` as an extra key (the V1 decoder on the server takes it as optional); the server
 * never sends one in V1, so decoded messages have join_ref null, which the client accepts
 * for any channel instance.
 */
export const V1 = {
  encode(msg, callback){
    const {topic, event, payload, ref, join_ref} = msg
    return callback(JSON.stringify({topic, event, payload, ref, join_ref}))
  },
  decode(raw, callback){
    const {topic, event, payload, ref} = JSON.parse(raw)
    return callback({join_ref: null, ref, topic, event, payload})
  },
}

// ---------------------------------------------------------------------------------------
// Clients

/**
 * One phoenix `Socket` plus a record of what it saw:
 * - `messages`: every decoded frame, in arrival order (through `socket.onMessage`, which
 *   also sees frames the client drops for its channels, such as pushes after `phx_close`)
 * - `opens`, `closes` (the transport close events, with `.code`), `errors`
 */
export class Client {
  /**
   * @param {string} base - the fixture URL, ws://host:port
   * @param {string} mount - e.g. "/ws" or "/bench"; the client appends /websocket
   * @param {object} opts - Socket options; plus `headers` / `origin` for the transport
   *
   * Keeping the connection alive: phoenix 1.8 waits only one heartbeat interval for each
   * heartbeat reply before it closes the connection and reconnects, and the user socket's
   * 200 ms idle timeout forces an interval well under 200 ms. A test process that stalls for
   * longer than that (GC, a busy machine) would then reconnect mid-test. So unless the test
   * sets `heartbeatIntervalMs` itself (heartbeat.test.mjs does, to test the client's heartbeat),
   * the client's heartbeat timer is pushed out of the way and the connection is kept alive with
   * `socket.ping` (the same heartbeat frame, without the reply deadline) every HEARTBEAT_MS.
   */
  constructor(base, mount, opts = {}){
    const {headers, origin, ...socketOpts} = opts
    if(socketOpts.heartbeatIntervalMs === undefined){
      socketOpts.heartbeatIntervalMs = 3600 * 1000
      this.keepalive = setInterval(() => { if(this.socket.isConnected()){ this.socket.ping(() => {}) } }, HEARTBEAT_MS)
      this.keepalive.unref()
    }
    this.mount = mount
    this.messages = []
    this.opens = 0
    this.closes = []
    this.errors = []
    this.waiters = []
    this.socket = new Socket(`${base}${mount}`, {
      transport: wsTransport({headers, origin}),
      timeout: PUSH_TIMEOUT_MS,
      rejoinAfterMs: () => REJOIN_MS,
      reconnectAfterMs: () => RECONNECT_MS,
      ...socketOpts,
    })
    this.socket.onOpen(() => { this.opens += 1; this.wake() })
    this.socket.onClose(event => { this.closes.push(event); this.wake() })
    this.socket.onError(error => { this.errors.push(error); this.wake() })
    this.socket.onMessage(msg => { this.messages.push(msg); this.wake() })
  }

  wake(){
    for(const w of [...this.waiters]){ w() }
  }

  /**
   * Resolves once `check()` returns a truthy value (checked now and after every socket
   * event), rejects after `ms`.
   */
  until(check, ms, label){
    let waiter
    return withTimeout(new Promise((resolve, reject) => {
      waiter = () => {
        try {
          const value = check()
          if(value){ resolve(value) }
        } catch(e){
          reject(e)
        }
      }
      this.waiters.push(waiter)
      waiter()
    }), ms, label).finally(() => { this.waiters = this.waiters.filter(x => x !== waiter) })
  }

  /** Resolves with the first recorded message that matches `pred`, waiting at most `ms`. */
  message(pred, ms = 2000, label = "a message"){
    return this.until(() => this.messages.find(pred), ms, label)
  }

  /** Connects and resolves on the first open. */
  async connect(ms = 5000){
    this.socket.connect()
    await this.until(() => this.opens > 0, ms, "socket open")
    return this
  }

  /**
   * Joins `topic` and resolves with {channel, response, joinRef} on ok; rejects with the
   * error or timeout (the rejection carries `.status`, `.response`, `.channel`, `.joinRef`). `bind(channel)`
   * runs before the join is sent, to register `channel.on` callbacks that must not miss
   * anything.
   */
  join(topic, params = {}, {timeout = PUSH_TIMEOUT_MS, bind} = {}){
    const channel = this.socket.channel(topic, params)
    if(bind){ bind(channel) }
    return new Promise((resolve, reject) => {
      const joinPush = channel.join(timeout)
      const joinRef = channel.joinRef()
      const fail = status => response => {
        const err = new Error(`join ${topic}: ${status} ${JSON.stringify(response)}`)
        Object.assign(err, {status, response, channel, joinRef})
        reject(err)
      }
      joinPush
        .receive("ok", response => resolve({channel, response, joinRef}))
        .receive("error", fail("error"))
        .receive("timeout", fail("timeout"))
    })
  }

  /**
   * Joins `topic` expecting a refusal; resolves with {status, response, joinRef}. The
   * channel is then left, which stops the client from retrying the join.
   */
  joinRefused(topic, params = {}, opts = {}){
    return this.join(topic, params, opts).then(
      ({response}) => { throw new Error(`join ${topic} succeeded (${JSON.stringify(response)})`) },
      err => {
        if(!err.channel){ throw err }
        err.channel.leave()
        return {status: err.status, response: err.response, joinRef: err.joinRef}
      })
  }

  /** The recorded reply to the message whose ref is `ref`, if it arrived. */
  replyTo(ref, topic){
    return this.messages.find(m => m.event === "phx_reply" && m.ref === ref && m.topic === topic)
  }

  /** Recorded messages on `topic` (optionally only `event`), in arrival order. */
  seen(topic, event){
    return this.messages.filter(m => m.topic === topic && (event === undefined || m.event === event))
  }

  /**
   * Disconnects (the client's orderly close) and waits for the transport to be torn down.
   * Then stops the channels' timers that disconnect leaves running (a rejoin scheduled by an
   * earlier error, join and buffered push timeouts), which would keep node's event loop, and
   * so the test file, alive.
   */
  async close(){
    clearInterval(this.keepalive)
    await withTimeout(new Promise(resolve => this.socket.disconnect(resolve)), 5000, "socket disconnect")
      .catch(() => {})
    for(const channel of this.socket.channels){
      channel.rejoinTimer.reset()
      channel.joinPush.cancelTimeout()
      channel.pushBuffer.forEach(p => p.cancelTimeout())
    }
  }
}

/**
 * Makes clients for one test and disconnects them all when the test ends (pass the
 * node:test context). Usage: `const c = await clients(t).connect("/ws", {params})`.
 */
export function clients(t){
  const made = []
  t.after(async () => {
    for(const c of made){
      if(c.closes.length){
        t.diagnostic(`${c.mount}: the connection closed ${c.closes.length} time(s) before the test ` +
          `ended, codes ${c.closes.map(e => e.code).join(", ")}`)
      }
    }
    await Promise.all(made.map(c => c.close()))
  })
  return {
    async make(mount, opts = {}){
      const c = new Client(await fixtureUrl(), mount, opts)
      made.push(c)
      return c
    },
    async connect(mount, opts = {}){
      const c = await this.make(mount, opts)
      return c.connect()
    },
  }
}

/**
 * Pushes and resolves with {status, response} for ok, error or timeout (whichever the
 * client reports first).
 */
export function push(channel, event, payload, timeout = PUSH_TIMEOUT_MS){
  return new Promise(resolve => {
    const p = channel.push(event, payload, timeout)
    for(const status of ["ok", "error", "timeout"]){
      p.receive(status, response => resolve({status, response}))
    }
  })
}

/** Collects every payload of `event` on `channel` into an array (via channel.on). */
export function collect(channel, event){
  const list = []
  channel.on(event, payload => list.push(payload))
  return list
}

// ---------------------------------------------------------------------------------------
// Raw handshakes (to see the HTTP status of a refused upgrade)

/**
 * Opens a plain `ws` connection to `${mount}/websocket?${query}` and resolves with
 * {opened: true} when the upgrade succeeds (then closes it), or
 * {opened: false, status, body} when the server answers the upgrade with an HTTP response.
 */
export async function rawHandshake(mount, {query = "", headers = {}, origin} = {}){
  const url = `${await fixtureUrl()}${mount}/websocket${query ? "?" + query : ""}`
  return withTimeout(new Promise((resolve, reject) => {
    const ws = new WebSocket(url, {headers, origin, handshakeTimeout: 5000, closeTimeout: 1000})
    ws.on("open", () => {
      ws.terminate()
      resolve({opened: true})
    })
    ws.on("unexpected-response", (req, res) => {
      let body = ""
      res.setEncoding("utf8")
      res.on("data", chunk => { body += chunk })
      res.on("end", () => resolve({opened: false, status: res.statusCode, body}))
      res.on("error", reject)
      req.on("error", () => {})
      // once the body is in, drop the connection
      res.on("end", () => req.destroy())
    })
    ws.on("error", reject)
  }), 6000, `handshake ${url}`)
}
