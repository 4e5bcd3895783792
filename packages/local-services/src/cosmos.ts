/**
 * The Cosmos DB emulator for the local platform and tests: @vercel/cosmosdb-server in-process over
 * HTTPS with a loopback certificate (see certificates.ts). Any account key is accepted; the real
 * @azure/cosmos SDK talks to it unchanged.
 *
 * The SDK reads the account first and sends every later request to the endpoint the account names
 * (its region's). cosmosdb-server names its own listening port there; this emulator names the
 * loopback address the client reached it through instead (the Host header), so a client that
 * connects through a proxy (the fault suite's) keeps going through it.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { LoopbackCertificate } from "./certificates.js";

/** Cosmos's well-known emulator key; the server accepts any key, the SDK needs a base64 one. */
export const COSMOS_EMULATOR_KEY = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==";

export interface CosmosEmulator {
  readonly endpoint: string;
  /** `AccountEndpoint=https://127.0.0.1:PORT/;AccountKey=...;` */
  readonly connectionString: string;
  readonly port: number;
  stop(): Promise<void>;
}

export async function startCosmosEmulator(options: { certificate: LoopbackCertificate; port?: number }): Promise<CosmosEmulator> {
  const { createHttpsServer } = await import("@vercel/cosmosdb-server");
  // keepAlive: cosmosdb-server otherwise answers every request with `connection: close`, so each SDK
  // call opened a new TLS connection (a handshake on both sides: about half of the services' CPU
  // per job on the local platform). Cosmos DB itself keeps connections open, and the SDK's agent
  // keeps them alive. (Node reads the same option as TCP keep-alive for the accepted sockets.)
  const server = createHttpsServer({ cert: options.certificate.cert, key: options.certificate.key, keepAlive: true });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const endpoint = `https://127.0.0.1:${port}/`;
  server.prependListener("request", (request: IncomingMessage, response: ServerResponse) => {
    const host = request.headers.host ?? "";
    if (request.method !== "GET" || request.url !== "/" || !/^127\.0\.0\.1:\d{1,5}$/.test(host) || host === `127.0.0.1:${port}`) return;
    // The account read: cosmosdb-server answers it with one res.end(JSON) (no content-length set).
    const end = response.end.bind(response) as (chunk?: unknown, ...rest: unknown[]) => ServerResponse;
    response.end = ((chunk?: unknown, ...rest: unknown[]) =>
      end(typeof chunk === "string" ? chunk.replaceAll(endpoint, `https://${host}/`) : chunk, ...rest)) as typeof response.end;
  });
  return {
    endpoint,
    port,
    connectionString: `AccountEndpoint=${endpoint};AccountKey=${COSMOS_EMULATOR_KEY};`,
    stop: () =>
      new Promise<void>((resolve) => {
        // Keep-alive sockets from SDK clients would hold close() open.
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
