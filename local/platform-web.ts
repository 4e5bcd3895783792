/**
 * The local stand-in for the storage account's static website: serves web/ over loopback, plus a
 * generated /config.json that tells the page where the api is (in Azure the deployment writes the
 * same file next to the site).
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { extname, join, normalize, sep } from "node:path";

const contentTypes: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".ico": "image/x-icon",
  ".txt": "text/plain; charset=utf-8",
  ".map": "application/json",
  ".woff2": "font/woff2",
};

export interface StaticSite {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export interface StaticSiteOptions {
  directory: string;
  port: number;
  /** Served as /config.json; read per request, so it may be completed after the site starts. */
  config: () => Record<string, string>;
}

export async function startStaticSite(options: StaticSiteOptions): Promise<StaticSite> {
  const root = normalize(options.directory);
  const server: Server = createServer((req, res) => {
    void (async () => {
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { allow: "GET, HEAD" }).end();
        return;
      }
      const pathname = new URL(req.url ?? "/", "http://localhost").pathname;
      if (pathname === "/config.json") {
        res.writeHead(200, { "content-type": "application/json", "cache-control": "no-cache" }).end(req.method === "HEAD" ? undefined : JSON.stringify(options.config(), null, 2));
        return;
      }
      let relative: string;
      try {
        relative = decodeURIComponent(pathname);
      } catch {
        res.writeHead(400).end();
        return;
      }
      const file = normalize(join(root, relative.endsWith("/") ? `${relative}index.html` : relative));
      if (file !== root && !file.startsWith(root + sep)) {
        res.writeHead(404).end();
        return;
      }
      const info = await stat(file).catch(() => undefined);
      if (!info?.isFile()) {
        res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("Not found");
        return;
      }
      res.writeHead(200, {
        "content-type": contentTypes[extname(file).toLowerCase()] ?? "application/octet-stream",
        "content-length": info.size,
        // Edits in web/ show on the next reload, as the deployed site's short HTML caching intends.
        "cache-control": "no-cache",
      });
      if (req.method === "HEAD") res.end();
      else createReadStream(file).pipe(res);
    })().catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    });
  });
  const sockets = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}
