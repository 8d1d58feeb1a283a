// A tiny static file server for examples/spa (Node's http module, nothing else): enough to give
// the SPA a real origin of its own, e.g. http://localhost:5173, with the right Content-Type for
// JS modules. Not for production.

import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import http from "node:http";
import path from "node:path";

const CONTENT_TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
};

/** Serves `root` on `host:port`; resolves to an object with `close()` once listening. */
export async function serveStatic({ root, host, port }) {
  const rootDir = path.resolve(root);
  const server = http.createServer(async (req, res) => {
    const send = (status, text) => {
      res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8" });
      res.end(text);
    };
    if (req.method !== "GET" && req.method !== "HEAD") {
      return send(405, "method not allowed\n");
    }
    let pathname;
    try {
      pathname = decodeURIComponent(new URL(req.url, "http://static").pathname);
    } catch {
      return send(400, "bad path\n");
    }
    if (pathname.endsWith("/")) pathname += "index.html";
    const file = path.join(rootDir, pathname);
    if (file !== rootDir && !file.startsWith(rootDir + path.sep)) {
      return send(403, "forbidden\n");
    }
    let info;
    try {
      info = await stat(file);
    } catch {
      return send(404, "not found\n");
    }
    if (!info.isFile()) return send(404, "not found\n");
    res.writeHead(200, {
      "Content-Type": CONTENT_TYPES[path.extname(file)] ?? "application/octet-stream",
      "Content-Length": info.size,
      "Cache-Control": "no-store",
    });
    if (req.method === "HEAD") return res.end();
    createReadStream(file).pipe(res);
  });
  // Keep-alive sockets would hold close() open until they time out.
  server.keepAliveTimeout = 1000;
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
