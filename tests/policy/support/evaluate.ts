/**
 * Runs policies the way @pulumi/policy's analyzer server does (server.ts makeAnalyzeRpcFun /
 * makeAnalyzeStackRpcFun), without the Pulumi CLI: props wrapped in the unknown-checking proxy, one
 * call per validation function, `notApplicable` thrown and caught, an unknown value during preview
 * turned into "can't run during preview". The pack's own gRPC path is exercised in pack.test.ts.
 */
import type { Policy, PolicyResource, ResourceValidationArgs, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import { unknownCheckingProxy, UnknownValueError } from "@pulumi/policy";

/** A resource as the policies see it: a type token, a logical name, its properties, and what it depends on. */
export interface ResourceUnderTest {
  readonly type: string;
  readonly name: string;
  readonly props: Record<string, unknown>;
  /** Logical names of the resources it depends on (stack policies only). */
  readonly dependsOn?: readonly string[];
}

/** What one policy made of one resource (or of the whole stack). */
export type Outcome =
  | { readonly kind: "passed" }
  | { readonly kind: "violated"; readonly messages: string[] }
  | { readonly kind: "not applicable" }
  | { readonly kind: "unknown during preview"; readonly message: string };

class NotApplicable extends Error {}

function urnOf(resource: Pick<ResourceUnderTest, "type" | "name">): string {
  return `urn:pulumi:test::azure-serverless-platform::${resource.type}::${resource.name}`;
}

// @pulumi/policy matches a class to a type token through the class's static __pulumiType, which the
// SDK's typings keep internal.
function pulumiTypeOf(resourceClass: Function): unknown {
  return Reflect.get(resourceClass, "__pulumiType");
}

const noOptions = { protect: false, ignoreChanges: [], aliases: [], customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 }, additionalSecretOutputs: [] };

function noConfig(): never {
  throw new Error("the platform's policies take no configuration");
}

export function isResourcePolicy(policy: Policy): policy is ResourceValidationPolicy {
  return "validateResource" in policy;
}

export function isStackPolicy(policy: Policy): policy is StackValidationPolicy {
  return "validateStack" in policy;
}

export async function evaluateResource(policy: ResourceValidationPolicy, resource: ResourceUnderTest): Promise<Outcome> {
  const validations = policy.validateResource === undefined ? [] : Array.isArray(policy.validateResource) ? policy.validateResource : [policy.validateResource];
  const messages: string[] = [];
  let applicable = false;
  for (const validate of validations) {
    const props = unknownCheckingProxy(structuredClone(resource.props));
    const args: ResourceValidationArgs = {
      type: resource.type,
      props,
      urn: urnOf(resource),
      name: resource.name,
      opts: noOptions,
      stackTags: new Map(),
      isType: (resourceClass) => pulumiTypeOf(resourceClass) === resource.type,
      asType: (resourceClass) => (pulumiTypeOf(resourceClass) === resource.type ? props : undefined),
      getConfig: noConfig,
      notApplicable: (reason) => {
        throw new NotApplicable(reason);
      },
    };
    try {
      await validate(args, (message) => messages.push(message));
      applicable = true;
    } catch (error) {
      if (error instanceof NotApplicable) continue;
      if (error instanceof UnknownValueError && error instanceof Error) return { kind: "unknown during preview", message: error.message };
      throw error;
    }
  }
  if (!applicable) return { kind: "not applicable" };
  return messages.length > 0 ? { kind: "violated", messages } : { kind: "passed" };
}

/** The stack as stack policies see it: every resource with its dependencies resolved to resources. */
export function policyResources(resources: readonly ResourceUnderTest[]): PolicyResource[] {
  const byName = new Map<string, PolicyResource>();
  const built = resources.map((resource) => {
    const policyResource: PolicyResource = {
      type: resource.type,
      name: resource.name,
      urn: urnOf(resource),
      props: unknownCheckingProxy(structuredClone(resource.props)),
      opts: noOptions,
      dependencies: [],
      propertyDependencies: {},
      isType: (resourceClass) => pulumiTypeOf(resourceClass) === resource.type,
      asType: () => undefined,
    };
    byName.set(resource.name, policyResource);
    return policyResource;
  });
  resources.forEach((resource, index) => {
    for (const name of resource.dependsOn ?? []) {
      const dependency = byName.get(name);
      if (dependency) built[index]!.dependencies.push(dependency);
    }
  });
  return built;
}

export async function evaluateStack(policy: StackValidationPolicy, resources: readonly ResourceUnderTest[]): Promise<Outcome> {
  const messages: string[] = [];
  try {
    await policy.validateStack(
      {
        resources: policyResources(resources),
        stackTags: new Map(),
        getConfig: noConfig,
        notApplicable: (reason) => {
          throw new NotApplicable(reason);
        },
      },
      (message) => messages.push(message),
    );
  } catch (error) {
    if (error instanceof NotApplicable) return { kind: "not applicable" };
    if (error instanceof UnknownValueError && error instanceof Error) return { kind: "unknown during preview", message: error.message };
    throw error;
  }
  return messages.length > 0 ? { kind: "violated", messages } : { kind: "passed" };
}
