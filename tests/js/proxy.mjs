// A plain HTTP server in front of the fixture, for the long-poll tests: it forwards
// every request to the fixture and refuses every WebSocket upgrade with 403, as a network
// that blocks WebSockets would, so that the official client falls back to long-poll. It
// also serves pages of its own (the browser test's page and the client's script).

import http from "node:http"

/**
 * Starts the proxy on a free port of 127.0.0.1 in front of `target` (http://host:port).
 * `pages` maps paths to {type, body}. Resolves with {url (http://...), wsUrl (ws://...),
 * refusedUpgrades (a count, read live), close()}.
 */
export function startProxy(target, {pages = {}} = {}){
  const {hostname, port} = new URL(target)
  const proxy = {refusedUpgrades: 0}
  const server = http.createServer((req, res) => {
    const page = pages[req.url]
    if(page){
      res.writeHead(200, {"content-type": page.type})
      res.end(page.body)
      return
    }
    const forwarded = http.request({host: hostname, port, method: req.method, path: req.url, headers: req.headers, agent: false},
      upstream => {
        res.writeHead(upstream.statusCode, upstream.headers)
        upstream.pipe(res)
      })
    forwarded.on("error", () => { res.destroy() })
    req.pipe(forwarded)
  })
  server.on("upgrade", (_req, socket) => {
    proxy.refusedUpgrades += 1
    socket.end("HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
  })
  return new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const url = `http://127.0.0.1:${server.address().port}`
      Object.assign(proxy, {
        url,
        wsUrl: url.replace(/^http/, "ws"),
        close: () => new Promise(done => { server.closeAllConnections(); server.close(() => done()) }),
      })
      resolve(proxy)
    })
  })
}
