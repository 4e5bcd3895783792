/**
 * The local stand-in for the storage account's static website: builds the web app with Vite and
 * serves exactly the files a deployment would put in `$web` for this environment (the build, each
 * page with the local Content-Security-Policy, a config.json for the local api and the development
 * identity), with the same Content-Type and Cache-Control, and index.html for `/` and unknown
 * paths (the website's index and 404 documents).
 *
 * Watching (`npm start`), every edit under web/ rebuilds the app and reloads open pages: the pages
 * get one extra script, /__local/reload.js, that listens for rebuilds on /__local/events.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { DEVELOPMENT_IDENTITY_HEADER } from "../functions/src/api/identity.js";
import { environmentSiteFiles, readSiteFiles, siteEnvironment, type SiteEnvironment, type SiteFile } from "../infrastructure/deploy/site-files.js";
import { buildWebApp, buildWebAppSnapshot, defaultWebOutDir, watchWebApp, type WebAppWatcher } from "../web/site/build.js";

/** What the local platform knows once its api and emulators listen. */
export interface LocalSiteEndpoints {
  /** The api's origin, `http://127.0.0.1:<port>`. */
  readonly apiUrl: string;
  readonly blobEndpoint: string;
  readonly webPubSubEndpoint: string;
}

/** The local environment of the site: the development identity, and the emulators' origins. */
export function localSiteEnvironment(endpoints: LocalSiteEndpoints): SiteEnvironment {
  return siteEnvironment({ ...endpoints, auth: { mode: "development", header: DEVELOPMENT_IDENTITY_HEADER } });
}

export interface WebAppServerOptions {
  port: number;
  /** Keep rebuilding on edits under web/ and reload open pages. @default false */
  watch?: boolean;
  /**
   * Where the build goes. @default dist/web when watching; otherwise a directory named after the
   * content under dist/site (so a one-off platform, a bench say, never rewrites files a running
   * `npm start` serves)
   */
  outDir?: string;
  /** The app's sources. @default web/ */
  root?: string;
  /** One line per rebuild (or failed rebuild). @default none */
  log?: (line: string) => void;
}

export interface WebAppServer {
  readonly url: string;
  readonly port: number;
  /** Settles when the first build is served; rejects if it failed. */
  readonly built: Promise<{ ms: number }>;
  /** Sets the environment (known once the api and emulators listen); until then pages answer 503. */
  configure(environment: SiteEnvironment): void;
  close(): Promise<void>;
}

const RELOAD_SCRIPT_PATH = "/__local/reload.js";
const RELOAD_EVENTS_PATH = "/__local/events";
/** Reloads the page on every rebuild the platform announces (watch mode only; never deployed). */
const reloadScript = `new EventSource(${JSON.stringify(RELOAD_EVENTS_PATH)}).addEventListener("reload", () => location.reload());\n`;

/** A file's bytes as served locally: HTML gets the reload script while watching. */
function served(file: SiteFile, watch: boolean): Buffer {
  if (!watch || !file.contentType.startsWith("text/html")) return file.bytes;
  return Buffer.from(file.bytes.toString("utf8").replace("</head>", `  <script type="module" src="${RELOAD_SCRIPT_PATH}"></script>\n  </head>`));
}

export async function startWebApp(options: WebAppServerOptions): Promise<WebAppServer> {
  const watch = options.watch ?? false;
  let outDir = options.outDir ?? defaultWebOutDir;
  let environment: SiteEnvironment | undefined;
  let built: readonly SiteFile[] | undefined;
  /** The site as `$web` would hold it for this environment, by blob name. */
  let site: ReadonlyMap<string, SiteFile> | undefined;
  let siteError: string | undefined;
  const reloadClients = new Set<ServerResponse>();

  const publish = () => {
    if (!built || !environment) return;
    try {
      site = new Map(environmentSiteFiles(built, environment).map((file) => [file.name, file]));
      siteError = undefined;
    } catch (error) {
      siteError = error instanceof Error ? error.message : String(error);
    }
  };
  const reloadPages = () => {
    for (const client of reloadClients) client.write("event: reload\ndata: {}\n\n");
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    });
  });
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    const pathname = new URL(req.url ?? "/", "http://localhost").pathname;
    if (watch && pathname === RELOAD_SCRIPT_PATH) {
      res.writeHead(200, { "content-type": "text/javascript; charset=utf-8", "cache-control": "no-store" }).end(req.method === "HEAD" ? undefined : reloadScript);
      return;
    }
    if (watch && pathname === RELOAD_EVENTS_PATH) {
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store", connection: "keep-alive" });
      res.write(": rebuilds of the web app arrive here\n\n");
      reloadClients.add(res);
      res.once("close", () => reloadClients.delete(res));
      return;
    }
    if (!site) {
      const reason = siteError ?? (built ? "the local platform is still starting" : "the web app is still building");
      res.writeHead(503, { "content-type": "text/plain; charset=utf-8", "retry-after": "1", "cache-control": "no-store" }).end(`Not ready: ${reason}.\n`);
      return;
    }
    let name: string;
    try {
      name = decodeURIComponent(pathname).replace(/^\/+/, "");
    } catch {
      res.writeHead(400).end();
      return;
    }
    if (name === "" || name.endsWith("/")) name = `${name}index.html`;
    const file = site.get(name);
    // The static website's 404 document is index.html (infrastructure/components/storage.ts).
    const answer = file ?? site.get("index.html");
    if (!answer) {
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("Not found\n");
      return;
    }
    const body = served(answer, watch);
    res.writeHead(file ? 200 : 404, { "content-type": answer.contentType, "content-length": body.length, "cache-control": answer.cacheControl });
    res.end(req.method === "HEAD" ? undefined : body);
  }

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

  let watcher: WebAppWatcher | undefined;
  let closed = false;
  const load = async () => {
    built = await readSiteFiles(outDir);
    publish();
  };
  const firstBuild = (async () => {
    if (!watch) {
      const build = options.outDir ? await buildWebApp({ outDir, root: options.root }) : await buildWebAppSnapshot({ root: options.root });
      outDir = build.outDir;
      const { ms } = build;
      await load();
      return { ms };
    }
    const started = await watchWebApp({
      outDir,
      root: options.root,
      onRebuilt: (ms) => {
        void load().then(
          () => {
            options.log?.(`web app rebuilt in ${ms} ms; reloading ${reloadClients.size} open page${reloadClients.size === 1 ? "" : "s"}`);
            reloadPages();
          },
          (error: unknown) => options.log?.(`web app rebuilt, but cannot be served: ${error instanceof Error ? error.message : String(error)}`),
        );
      },
      onError: (message) => options.log?.(`web app rebuild failed (the previous build is still served): ${message}`),
    });
    if (closed) await started.close();
    watcher = started;
    await load();
    return { ms: started.firstBuildMs };
  })();
  // The platform awaits `built`; a failure before that must not be an unhandled rejection.
  firstBuild.catch(() => {});

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    built: firstBuild,
    configure(next) {
      environment = next;
      publish();
      if (siteError) throw new Error(siteError);
    },
    close: async () => {
      closed = true;
      await watcher?.close();
      await firstBuild.catch(() => {});
      for (const client of reloadClients) client.end();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
    },
  };
}
