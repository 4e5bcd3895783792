import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { AccessToken, TokenCredential } from "@azure/identity";

/** One request as the fake server saw it. */
export interface RecordedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage["headers"];
  readonly body: Buffer;
}

/** Answers a request; may also destroy the socket to play a dropped connection. */
export type Route = (request: RecordedRequest, response: ServerResponse) => void;

/**
 * A local HTTP server that plays an Azure endpoint: tests queue per-path answers, the server
 * records every request. Unqueued paths answer 500 with a message that names them.
 */
export class ScriptedServer {
  readonly requests: RecordedRequest[] = [];
  private readonly queues = new Map<string, Route[]>();
  private readonly fallbacks = new Map<string, Route>();
  private constructor(private readonly server: Server, readonly url: string) {}

  static async start(): Promise<ScriptedServer> {
    let self: ScriptedServer | undefined;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => self!.handle({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks) }, res));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    self = new ScriptedServer(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return self;
  }

  /** Queue one-shot answers for METHOD /path (path without the query). */
  on(method: string, path: string, ...routes: Route[]): this {
    const key = `${method} ${path}`;
    this.queues.set(key, [...(this.queues.get(key) ?? []), ...routes]);
    return this;
  }

  /** The answer once the queue for METHOD /path is empty. */
  otherwise(method: string, path: string, route: Route): this {
    this.fallbacks.set(`${method} ${path}`, route);
    return this;
  }

  reset(): void {
    this.requests.length = 0;
    this.queues.clear();
    this.fallbacks.clear();
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve, reject) => this.server.close((e) => (e ? reject(e) : resolve())));
  }

  private handle(request: RecordedRequest, response: ServerResponse): void {
    this.requests.push(request);
    const key = `${request.method} ${request.url.split("?")[0]}`;
    const route = this.queues.get(key)?.shift() ?? this.fallbacks.get(key);
    if (route) route(request, response);
    else json(500, { Message: `no scripted answer for ${key}` })(request, response);
  }
}

export const json =
  (status: number, body: unknown, headers: Record<string, string> = {}): Route =>
  (_req, res) => {
    res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(body));
  };

export const text =
  (status: number, body: string, headers: Record<string, string> = {}): Route =>
  (_req, res) => {
    res.writeHead(status, { "content-type": "text/plain", ...headers }).end(body);
  };

/** Drops the connection without an answer: the client sees ECONNRESET / "other side closed". */
export const dropConnection: Route = (_req, res) => {
  res.socket?.resetAndDestroy();
};

/** A TokenCredential that hands out a fixed token and records the scopes it was asked for. */
export class RecordingCredential implements TokenCredential {
  readonly scopes: string[] = [];
  constructor(readonly token = "test-token") {}
  async getToken(scopes: string | string[]): Promise<AccessToken> {
    this.scopes.push(...(Array.isArray(scopes) ? scopes : [scopes]));
    return { token: this.token, expiresOnTimestamp: Date.now() + 3_600_000 };
  }
}
