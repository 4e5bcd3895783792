/**
 * The whole program (infrastructure/index.ts, as `pulumi up` loads it) under mocks, once per
 * checked-in stack file (Pulumi.<stack>.yaml), against every rule of the policy pack: whatever the
 * program creates (any number of apps, queues, containers) is judged by resource type.
 *
 * Mocks resolve every value, so this is what `pulumi up` would show; `pulumi preview` may report a
 * rule as "can't run during preview" where a value is still unknown. Mocks also skip provider Check
 * and resource transforms, so a property the program strips in a transform still shows here.
 */
import { readdirSync, readFileSync } from "node:fs";
import { beforeAll, describe, expect, it, vi } from "vitest";
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { policies } from "../../policy/policies";
import { projectName } from "../../infrastructure/config";
import { installMocks, settled, valueOf } from "../infrastructure/support/mocks";
import { evaluateResource, evaluateStack, isResourcePolicy, isStackPolicy, type ResourceUnderTest } from "./support/evaluate";

// The policies judge resources, not package bytes: the service bundles are stood in for, which keeps
// this test from rebuilding them into dist/ while other program tests do the same.
vi.mock("../../scripts/bundle/build", async (importOriginal) => ({
  ...(await importOriginal<typeof import("../../scripts/bundle/build")>()),
  buildService: async (service: string) => ({ zipPath: `dist/${service}.zip`, sha256: "0".repeat(64) }),
}));

/** Every checked-in stack: `Pulumi.<stack>.yaml` beside Pulumi.yaml. */
const stackFiles = readdirSync(".").filter((file) => /^Pulumi\.[^.]+\.yaml$/.test(file));
const stackNames = stackFiles.map((file) => file.slice("Pulumi.".length, -".yaml".length));

/**
 * Mandatory violations the current program is known to have, each with the reason it is accepted
 * for now. The test fails when one disappears too, so this list only ever shrinks to empty.
 */
const knownViolations: readonly { readonly policy: string; readonly resource: string; readonly message: RegExp }[] = [];

interface Finding {
  readonly policy: string;
  readonly level: string;
  readonly resource: string;
  readonly message: string;
}

/** Builds the program for one stack under mocks and judges everything it registered. */
async function judgeStack(stack: string): Promise<{ findings: Finding[]; types: Set<string>; resources: number }> {
  const file = (parse(readFileSync(`Pulumi.${stack}.yaml`, "utf8")) as { config?: Record<string, unknown> } | null)?.config ?? {};
  const config = Object.fromEntries(
    Object.entries(file)
      .filter(([key]) => key.startsWith(`${projectName}:`))
      .map(([key, value]) => [key.slice(projectName.length + 1), String(value)]),
  );
  vi.resetModules();
  const recorded = await installMocks(stack, config);
  const program = (await import("../../infrastructure/index.js")) as Record<string, pulumi.Input<unknown>>;
  const outputs = (await valueOf(pulumi.output(program))) as Record<string, unknown>;
  await settled(recorded);

  const nameOf = (urn: string) => urn.slice(urn.lastIndexOf("::") + 2);
  const resources: ResourceUnderTest[] = [
    ...recorded.resources.map((r) => ({ type: r.type, name: r.name, props: r.inputs, dependsOn: (recorded.dependencies.get(r.name) ?? []).map(nameOf) })),
    { type: "pulumi:pulumi:Stack", name: `${projectName}-${stack}`, props: outputs },
  ];
  const findings: Finding[] = [];
  for (const policy of policies) {
    const level = policy.enforcementLevel ?? "advisory";
    if (isResourcePolicy(policy)) {
      for (const resource of resources) {
        const outcome = await evaluateResource(policy, resource);
        if (outcome.kind === "violated") findings.push({ policy: policy.name, level, resource: resource.name, message: outcome.messages.join(" ") });
        if (outcome.kind === "unknown during preview") throw new Error(`${policy.name} on ${resource.name}: mocks resolve every value, yet ${outcome.message}`);
      }
    } else if (isStackPolicy(policy)) {
      const outcome = await evaluateStack(policy, resources);
      if (outcome.kind === "violated") findings.push({ policy: policy.name, level, resource: "(stack)", message: outcome.messages.join(" ") });
    }
  }
  return { findings, types: new Set(resources.map((r) => r.type)), resources: resources.length };
}

describe.each(stackNames)("the program with stack %s, against the policy pack", (stack) => {
  let result: Awaited<ReturnType<typeof judgeStack>>;

  beforeAll(async () => {
    result = await judgeStack(stack);
  }, 120_000);

  it("registers the platform's resource families (the rules have something to judge)", () => {
    for (const type of [
      "azure-native:storage:StorageAccount",
      "azure-native:cosmosdb:DatabaseAccount",
      "azure-native:servicebus:Namespace",
      "azure-native:webpubsub:WebPubSub",
      "azure-native:web:WebApp",
      "azure-native:authorization:RoleAssignment",
      "pulumi:pulumi:Stack",
    ]) {
      expect(result.types, type).toContain(type);
    }
  });

  it("passes every mandatory rule, apart from the known violations listed above", () => {
    const mandatory = result.findings.filter((f) => f.level === "mandatory");
    const unexpected = mandatory.filter((f) => !knownViolations.some((k) => k.policy === f.policy && k.resource === f.resource && k.message.test(f.message)));
    expect(unexpected, "mandatory violations").toEqual([]);
    const resolved = knownViolations.filter((k) => !mandatory.some((f) => f.policy === k.policy && f.resource === k.resource));
    expect(resolved, "known violations that no longer occur: remove them from knownViolations").toEqual([]);
  });
});
