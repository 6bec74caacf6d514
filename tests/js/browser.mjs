// What the browser tests share: Debian's Chromium started headless by playwright-core with
// the flags this closed network needs, and a page server on 127.0.0.1 that hands out the
// official client (the fixture serves no pages, and Chromium lets only a page from a
// local address reach a loopback one).

import fs from "node:fs"
import http from "node:http"
import path from "node:path"
import {chromium} from "playwright-core"
import {REPO_ROOT} from "./fixture.mjs"

export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium"
export const CLIENT_JS = path.join(REPO_ROOT, "tests/js/node_modules/phoenix/priv/static/phoenix.js")

// Headless as root, with nothing that reaches for the network on its own.
const ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync"]

/** Starts Chromium, with `extraArgs` after the usual flags. */
export function launchChromium(extraArgs = []){
  if(!fs.existsSync(CHROMIUM)){
    throw new Error(`${CHROMIUM} is missing: the test command installs Debian's chromium`)
  }
  return chromium.launch({executablePath: CHROMIUM, args: [...ARGS, ...extraArgs]})
}

/**
 * Serves `page` (HTML) at `/` and the official client at `/phoenix.js` on 127.0.0.1; other
 * paths get 404. Resolves once it listens, with its `url` and `close()`.
 */
export async function servePage(page){
  const client = fs.readFileSync(CLIENT_JS)
  const server = http.createServer((req, res) => {
    if(req.url === "/"){
      res.writeHead(200, {"content-type": "text/html; charset=utf-8"}).end(page)
    } else if(req.url === "/phoenix.js"){
      res.writeHead(200, {"content-type": "text/javascript"}).end(client)
    } else {
      res.writeHead(404).end()
    }
  })
  await new Promise(resolve => server.listen(0, "127.0.0.1", resolve))
  return {
    url: `http://127.0.0.1:${server.address().port}/`,
    close: () => new Promise(resolve => server.close(resolve)),
  }
}
