/**
 * HTTPS/WSS and the keyless path the deployed services use: a WebPubSubServiceClient with a
 * TokenCredential (managed identity in Azure) gets client tokens from :generateToken. The
 * TokenCredential here returns a bearer JWT signed with the access key, the emulator's stand-in
 * for an Entra token. The client runs in a child process that trusts the test certificate
 * through NODE_EXTRA_CA_CERTS, the way a developer machine trusts a local certificate.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { AccessToken, TokenCredential } from "@azure/identity";
import { WebPubSubServiceClient } from "@azure/web-pubsub";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLoopbackCertificate } from "@platform-tools/local-services";
import { startWebPubSubEmulator, type WebPubSubEmulator } from "../src/index.js";
import { signHs256 } from "../src/jwt.js";
import { entraAudience } from "../src/rest-api.js";
import { waitFor } from "../src/testing.js";

const accessKey = "tls-test-key";
let emulator: WebPubSubEmulator;
let certDir: string;
let cert: string;

beforeAll(async () => {
  // A certificate of its own (not the suite's shared one), trusted only by this file's clients.
  const loopback = await createLoopbackCertificate({ validDays: 1 });
  cert = loopback.cert;
  certDir = mkdtempSync(join(tmpdir(), "webpubsub-tls-"));
  writeFileSync(join(certDir, "cert.pem"), cert);
  emulator = await startWebPubSubEmulator({ hubs: ["secure"], accessKey, tls: loopback });
});
afterAll(async () => {
  await emulator.stop();
  rmSync(certDir, { recursive: true, force: true });
});

/** Stands in for a managed identity: a token for the Web PubSub audience, signed with `key`. */
function credential(key: string, audience = entraAudience): TokenCredential {
  return {
    async getToken(): Promise<AccessToken> {
      const expiresOnTimestamp = Date.now() + 3_600_000;
      return { token: signHs256({ aud: audience, exp: Math.floor(expiresOnTimestamp / 1000) }, key), expiresOnTimestamp };
    },
  };
}

function serviceWith(tokenCredential: TokenCredential): WebPubSubServiceClient {
  return new WebPubSubServiceClient(emulator.endpoint, tokenCredential, "secure", { tlsOptions: { ca: cert }, retryOptions: { maxRetries: 0 } });
}

/** Runs the real client in a child process trusting the certificate; it prints what it receives. */
const clientScript = `
const { WebPubSubClient } = require("@azure/web-pubsub-client");
const client = new WebPubSubClient(process.argv[1], { autoReconnect: false });
client.on("connected", (e) => console.log(JSON.stringify({ connected: e.userId })));
client.on("group-message", (e) => { console.log(JSON.stringify({ group: e.message.group, data: e.message.data })); client.stop(); });
client.on("stopped", () => process.exit(0));
client.start().catch((error) => { console.error(String(error)); process.exit(3); });
`;

describe("keyless server SDK over https", () => {
  it("issues client tokens through :generateToken, and the client connects over wss", async () => {
    const service = serviceWith(credential(accessKey));
    const { url, token } = await service.getClientAccessToken({ userId: "tls-user", groups: ["room"], roles: ["webpubsub.sendToGroup"] });
    expect(url.startsWith(`wss://127.0.0.1:${emulator.port}/client/hubs/secure?access_token=`)).toBe(true);
    const claims = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()) as Record<string, unknown>;
    expect(claims).toMatchObject({ sub: "tls-user", "webpubsub.group": ["room"], role: ["webpubsub.sendToGroup"] });

    const child = spawn(process.execPath, ["-e", clientScript, url], {
      cwd: resolve(__dirname, ".."),
      env: { ...process.env, NODE_EXTRA_CA_CERTS: join(certDir, "cert.pem") },
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const exited = once(child, "exit");
    try {
      await waitFor(() => output.includes('"connected":"tls-user"'), "the child client to connect", 15_000);
      await service.group("room").sendToAll({ over: "wss" });
      const [code] = await exited;
      expect(code, output).toBe(0);
      expect(output).toContain('{"group":"room","data":{"over":"wss"}}');
    } finally {
      child.kill();
    }
  }, 30_000);

  it("refuses bearer tokens signed with another key or for another audience", async () => {
    await expect(serviceWith(credential("another-key")).getClientAccessToken()).rejects.toMatchObject({ statusCode: 401 });
    await expect(serviceWith(credential(accessKey, "https://management.azure.com")).sendToAll({})).rejects.toMatchObject({ statusCode: 401 });
    expect(await serviceWith(credential(accessKey)).groupExists("nobody-here")).toBe(false);
  });
});
