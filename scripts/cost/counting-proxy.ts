/**
 * An HTTP(S) proxy that reports every exchange passing through it (method, path, headers, status,
 * body sizes each way), for `npm run bench:ops`: the local platform puts it between the services
 * and an emulator (local/platform.ts `interpose`). With `tls` it terminates HTTPS with the loopback
 * certificate the services already trust and speaks HTTPS to the emulator (Cosmos). WebSocket
 * upgrades (Web PubSub clients that negotiated through it) pass through as bytes, uncounted.
 */
import { request as httpRequest, createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { request as httpsRequest, createServer as createHttpsServer } from "node:https";
import { connect, type AddressInfo, type Socket } from "node:net";
import type { Exchange } from "./operations.js";

export interface CountingProxy {
  readonly port: number;
  close(): Promise<void>;
}

export async function startCountingProxy(options: {
  targetPort: number;
  /** HTTPS both ways: the proxy's certificate, and the CA the emulator's certificate chains to. */
  tls?: { cert: string; key: string };
  onExchange: (exchange: Exchange) => void;
}): Promise<CountingProxy> {
  const { targetPort, tls, onExchange } = options;
  const sockets = new Set<Socket>();
  const handle = (incoming: IncomingMessage, outgoing: ServerResponse) => {
    let requestBytes = 0;
    let responseBytes = 0;
    const forward = (tls ? httpsRequest : httpRequest)(
      {
        host: "127.0.0.1",
        port: targetPort,
        method: incoming.method,
        path: incoming.url,
        // The Host header goes through unchanged: the Cosmos emulator names the address the client reached (the proxy) in its account answer.
        headers: incoming.headers,
        ...(tls ? { ca: tls.cert } : {}),
      },
      (answer) => {
        outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.on("data", (chunk: Buffer) => (responseBytes += chunk.length));
        answer.pipe(outgoing);
        answer.on("end", () =>
          onExchange({ method: incoming.method ?? "GET", url: incoming.url ?? "/", headers: incoming.headers, status: answer.statusCode ?? 0, requestBytes, responseBytes }),
        );
      },
    );
    forward.on("error", () => {
      if (!outgoing.headersSent) outgoing.writeHead(502).end();
      else outgoing.destroy();
    });
    incoming.on("data", (chunk: Buffer) => (requestBytes += chunk.length));
    incoming.pipe(forward);
  };
  const server = tls ? createHttpsServer({ cert: tls.cert, key: tls.key }, handle) : createHttpServer(handle);
  server.keepAliveTimeout = 60_000;
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  server.on("upgrade", (incoming: IncomingMessage, client: Socket, head: Buffer) => {
    const upstream = connect({ host: "127.0.0.1", port: targetPort }, () => {
      const lines = [`${incoming.method} ${incoming.url} HTTP/1.1`];
      for (let i = 0; i < incoming.rawHeaders.length; i += 2) lines.push(`${incoming.rawHeaders[i]}: ${incoming.rawHeaders[i + 1]}`);
      upstream.write(`${lines.join("\r\n")}\r\n\r\n`);
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.once("close", () => sockets.delete(socket));
      socket.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
