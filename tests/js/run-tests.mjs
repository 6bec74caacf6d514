// `npm test`: starts the parity fixture once (unless PHX_FIXTURE_URL is set), then runs every
// *.test.mjs file with node's test runner against it, one file at a time, and stops the
// fixture. Extra arguments go to `node --test` (e.g. --test-name-pattern=leave, or file names).

import {spawn} from "node:child_process"
import fs from "node:fs"
import path from "node:path"
import {fileURLToPath} from "node:url"
import {startFixture} from "./fixture.mjs"

const here = path.dirname(fileURLToPath(import.meta.url))
const args = process.argv.slice(2)
const files = args.some(a => a.endsWith(".mjs"))
  ? []
  : fs.readdirSync(here).filter(f => f.endsWith(".test.mjs")).sort()

let fixture = null
if(!process.env.PHX_FIXTURE_URL){
  console.log("# starting the parity fixture (cargo run --release --all-features --example parity)...")
  try {
    fixture = await startFixture()
  } catch(e){
    console.error(`# could not start the parity fixture:\n${e.message}`)
    process.exit(1)
  }
  console.log(`# fixture listening at ${fixture.url} (log: ${fixture.logFile})`)
}

const env = {...process.env, PHX_FIXTURE_URL: process.env.PHX_FIXTURE_URL || fixture.url}
const runner = spawn(process.execPath,
  ["--test", "--test-concurrency=1", "--test-timeout=60000", ...args, ...files],
  {cwd: here, env, stdio: "inherit"})

const forward = signal => () => runner.kill(signal)
process.on("SIGINT", forward("SIGINT"))
process.on("SIGTERM", forward("SIGTERM"))

runner.on("exit", code => {
  if(fixture){ fixture.stop() }
  process.exit(code === null ? 1 : code)
})
