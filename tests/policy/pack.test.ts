/**
 * The policy pack as `pulumi preview --policy-pack policy` runs it: the CLI starts
 * `@pulumi/pulumi/cmd/run-policy-pack` in the pack's directory (ts-node, type-checked), reads the
 * port the pack prints, and talks gRPC to it. This test plays the CLI's side: it starts the same
 * runner, asks for the pack's policies and sends it resources to analyze.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as grpc from "@grpc/grpc-js";
import { Empty } from "google-protobuf/google/protobuf/empty_pb";
import { Struct } from "google-protobuf/google/protobuf/struct_pb";
import { AnalyzerClient } from "@pulumi/pulumi/proto/analyzer_grpc_pb";
import { AnalyzeRequest, AnalyzerResourceOptions, EnforcementLevel, type AnalyzeDiagnostic, type AnalyzerInfo } from "@pulumi/pulumi/proto/analyzer_pb";
import { policies } from "../../policy/policies";
import policyPackage from "../../policy/package.json";

const packDir = join(process.cwd(), "policy");
let pack: ChildProcess;
let client: AnalyzerClient;
let stderr = "";

beforeAll(async () => {
  const runner = join(process.cwd(), "node_modules/@pulumi/pulumi/cmd/run-policy-pack/index.js");
  // The first argument is the engine's address; the runner drops it. The pack is the directory.
  pack = spawn(process.execPath, [runner, "127.0.0.1:0", packDir], { cwd: packDir, stdio: ["ignore", "pipe", "pipe"] });
  pack.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const lines = createInterface({ input: pack.stdout! });
  const exited = once(pack, "exit").then(([code]) => {
    throw new Error(`the policy pack exited with ${String(code)} before serving:\n${stderr}`);
  });
  const [port] = (await Promise.race([once(lines, "line"), exited])) as [string];
  expect(port).toMatch(/^\d+$/);
  client = new AnalyzerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}, 120_000);

afterAll(async () => {
  client?.close();
  if (pack && pack.exitCode === null) {
    const exited = once(pack, "exit");
    pack.kill("SIGTERM");
    await exited;
  }
});

function analyzerInfo(): Promise<AnalyzerInfo> {
  return new Promise((resolve, reject) => client.getAnalyzerInfo(new Empty(), (error, info) => (error ? reject(error) : resolve(info!))));
}

function analyze(type: string, name: string, props: Record<string, unknown>): Promise<AnalyzeDiagnostic[]> {
  const request = new AnalyzeRequest()
    .setType(type)
    .setName(name)
    .setUrn(`urn:pulumi:dev::azure-serverless-platform::${type}::${name}`)
    // The CLI always sends the resource's options; the pack refuses a request without them.
    .setOptions(new AnalyzerResourceOptions())
    .setProperties(Struct.fromJavaScript(props as Parameters<typeof Struct.fromJavaScript>[0]));
  return new Promise((resolve, reject) => client.analyze(request, (error, response) => (error ? reject(error) : resolve(response!.getDiagnosticsList()))));
}

describe("the policy pack served as the Pulumi CLI runs it", () => {
  it("announces its name, the package version and every rule with its enforcement level", async () => {
    const info = await analyzerInfo();
    expect(info.getName()).toBe("azure-serverless-platform");
    expect(info.getVersion()).toBe(policyPackage.version);
    const served = Object.fromEntries(info.getPoliciesList().map((p) => [p.getName(), p.getEnforcementlevel()]));
    expect(served).toEqual(
      Object.fromEntries(policies.map((p) => [p.name, p.enforcementLevel === "mandatory" ? EnforcementLevel.MANDATORY : EnforcementLevel.ADVISORY])),
    );
  });

  it("stops a storage account that accepts shared keys with a mandatory violation, and passes a keyless one", async () => {
    const keyless = {
      accountName: "platdevdata",
      enableHttpsTrafficOnly: true,
      minimumTlsVersion: "TLS1_2",
      allowBlobPublicAccess: false,
      allowSharedKeyAccess: false,
      defaultToOAuthAuthentication: true,
      allowCrossTenantReplication: false,
    };
    expect(await analyze("azure-native:storage:StorageAccount", "data", keyless)).toEqual([]);
    const diagnostics = await analyze("azure-native:storage:StorageAccount", "data", { ...keyless, allowSharedKeyAccess: true });
    expect(diagnostics.map((d) => [d.getPolicyname(), d.getEnforcementlevel(), d.getMessage()])).toEqual([
      ["storage-no-shared-key", EnforcementLevel.MANDATORY, expect.stringContaining("allowSharedKeyAccess must be false.")],
    ]);
  });
});
