/**
 * A local stand-in for Application Insights' ingestion endpoint (HTTPS on loopback, the only scheme
 * the Azure Monitor exporter speaks): it accepts every envelope, gzip or not, as a JSON array or one
 * per line, and keeps them. The cold-start bench counts what the services sent through it; the
 * telemetry export test reads the spans it received.
 */
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { gunzipSync } from "node:zlib";
import { loopbackCertificateIn } from "@platform-tools/local-services";

/** A telemetry item as the exporter sends it (the fields the tests read). */
export interface IngestionEnvelope {
  name: string;
  tags?: Record<string, string>;
  data?: { baseType?: string; baseData?: { name?: string; id?: string } };
}

export interface IngestionEndpoint {
  /** An Application Insights connection string that sends here. */
  readonly connectionString: string;
  /** Every envelope received so far, in order. */
  readonly envelopes: readonly IngestionEnvelope[];
  close(): Promise<void>;
}

/**
 * Starts the endpoint with the loopback certificate kept in `certificateDirectory`, which the
 * process that exports must trust (NODE_EXTRA_CA_CERTS).
 */
export async function startIngestionEndpoint(certificateDirectory: string): Promise<IngestionEndpoint> {
  const { cert, key } = await loopbackCertificateIn(certificateDirectory);
  const envelopes: IngestionEnvelope[] = [];
  const server: Server = createServer({ cert, key }, (request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      let body = Buffer.concat(chunks);
      if (request.headers["content-encoding"] === "gzip") body = gunzipSync(body);
      const text = body.toString("utf8").trim();
      const received = (text.startsWith("[") ? JSON.parse(text) : text.split("\n").filter(Boolean).map((line) => JSON.parse(line))) as IngestionEnvelope[];
      envelopes.push(...received);
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ itemsReceived: received.length, itemsAccepted: received.length, errors: [] }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    connectionString: `InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://127.0.0.1:${port}/`,
    envelopes,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
