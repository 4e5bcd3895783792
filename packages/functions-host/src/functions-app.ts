/**
 * The worker side of the `@azure/functions-core` seam: what the Azure Functions Node.js worker does
 * between the host and @azure/functions. It records the registrations an app makes while it loads,
 * keeps its hooks, and runs invocations the way the worker does: invocation model, arguments,
 * preInvocation hooks (which may swap inputs or the handler), the handler, postInvocation hooks
 * (which may replace the result or the error), then the RPC-shaped response.
 */
import Module from "node:module";
import { randomUUID } from "node:crypto";
import type {
  CoreApi,
  CoreInvocationContext,
  Disposable,
  FunctionCallback,
  FunctionMetadata,
  HookCallback,
  HookContext,
  HookName,
  ProgrammingModel,
  RpcInvocationRequest,
  RpcInvocationResponse,
  RpcLogCategory,
  RpcLogLevel,
} from "./core-types.js";

export const CORE_MODULE_NAME = "@azure/functions-core";
/** The worker version the library may read (it only logs it). */
const LOCAL_WORKER_VERSION = "3.10.1-local";
/** The host version the library may read; HTTP streaming is gated on `log`, not on this. */
const LOCAL_HOST_VERSION = "4.1040.0-local";
const HOOK_NAMES: readonly HookName[] = ["appStart", "appTerminate", "preInvocation", "postInvocation", "log"];

export interface RegisteredFunction {
  readonly metadata: FunctionMetadata;
  readonly callback: FunctionCallback;
}

export interface HostLogRecord {
  level: RpcLogLevel;
  category: RpcLogCategory;
  message: string;
  functionName?: string;
  invocationId?: string;
}
export type HostLogSink = (record: HostLogRecord) => void;

class LocalDisposable implements Disposable {
  #callOnDispose: (() => void) | undefined;
  constructor(callOnDispose: () => void) {
    this.#callOnDispose = callOnDispose;
  }
  dispose(): void {
    this.#callOnDispose?.();
    this.#callOnDispose = undefined;
  }
}

/** An invocation as a trigger delivers it: the trigger's input and its metadata, RPC-shaped. */
export type InvocationInput = Omit<RpcInvocationRequest, "invocationId" | "functionId"> & { invocationId?: string };

export class FunctionsApp {
  readonly functions = new Map<string, RegisteredFunction>();
  readonly #hooks = new Map<string, HookCallback[]>();
  #programmingModel: ProgrammingModel | undefined;
  /** Shared by every hook of the app (the worker's appHookData). */
  readonly appHookData: Record<string, unknown> = {};
  /** Shared by appStart and appTerminate only (the worker's appLevelOnlyHookData). */
  readonly #appLevelHookData: Record<string, unknown> = {};

  constructor(private readonly log: HostLogSink) {}

  get programmingModel(): ProgrammingModel | undefined {
    return this.#programmingModel;
  }

  /** The object `require("@azure/functions-core")` returns while this app is installed. */
  readonly coreApi: CoreApi = (() => {
    const app = this;
    return {
      version: LOCAL_WORKER_VERSION,
      hostVersion: LOCAL_HOST_VERSION,
      registerFunction(metadata: FunctionMetadata, callback: FunctionCallback): Disposable {
        return app.#registerFunction(metadata, callback);
      },
      registerHook(name: string, callback: HookCallback): Disposable {
        if (!(HOOK_NAMES as readonly string[]).includes(name)) {
          // The worker throws a RangeError for an unknown hook; the library relies on that for `log`.
          throw new RangeError(`Unrecognized hook "${name}"`);
        }
        const list = app.#hooks.get(name) ?? [];
        list.push(callback);
        app.#hooks.set(name, list);
        return new LocalDisposable(() => {
          const index = list.indexOf(callback);
          if (index >= 0) list.splice(index, 1);
        });
      },
      setProgrammingModel(model: ProgrammingModel): void {
        app.#programmingModel = model;
      },
      getProgrammingModel(): ProgrammingModel | undefined {
        return app.#programmingModel;
      },
      log(level: RpcLogLevel, category: RpcLogCategory, message: string): void {
        app.log({ level, category, message });
      },
      Disposable: LocalDisposable,
    };
  })();

  #registerFunction(metadata: FunctionMetadata, callback: FunctionCallback): Disposable {
    if (typeof metadata?.name !== "string" || metadata.name.length === 0) throw new Error("registerFunction: the function has no name");
    if (typeof callback !== "function") throw new Error(`registerFunction: "${metadata.name}" has no callback`);
    const key = metadata.name.toLowerCase();
    // Function names are case-insensitive in the host; the worker refuses duplicates the same way.
    if (this.functions.has(key)) throw new Error(`A function with the name "${metadata.name}" has already been registered.`);
    this.functions.set(key, { metadata, callback });
    return new LocalDisposable(() => this.functions.delete(key));
  }

  /** Runs appStart or appTerminate hooks, in registration order, as the worker does. */
  async runAppHooks(name: "appStart" | "appTerminate", functionAppDirectory: string): Promise<void> {
    const context = this.#hookContext(this.#appLevelHookData, { functionAppDirectory });
    for (const callback of [...(this.#hooks.get(name) ?? [])]) await callback(context);
  }

  #hookContext(hookData: Record<string, unknown>, fields: Record<string, unknown>): HookContext {
    const appHookData = this.appHookData;
    const context = { ...fields } as HookContext;
    Object.defineProperty(context, "hookData", { get: () => hookData, set: () => readOnly("hookData"), enumerable: true });
    Object.defineProperty(context, "appHookData", { get: () => appHookData, set: () => readOnly("appHookData"), enumerable: true });
    return context;
  }

  /**
   * One invocation of a registered function, as the worker runs it. Resolves with the RPC response
   * (outputs, return value); rejects with the handler's error (after postInvocation hooks saw it).
   */
  async invoke(functionName: string, input: InvocationInput): Promise<RpcInvocationResponse> {
    const registered = this.functions.get(functionName.toLowerCase());
    if (!registered) throw new Error(`Function "${functionName}" is not registered`);
    const model = this.#programmingModel;
    if (!model) throw new Error(`No programming model was set: the app never loaded @azure/functions through ${CORE_MODULE_NAME}`);
    const invocationId = input.invocationId ?? randomUUID();
    const name = registered.metadata.name;
    const log = this.log;
    const coreContext: CoreInvocationContext = {
      invocationId,
      request: { ...input, invocationId, functionId: name },
      metadata: registered.metadata,
      log(level, category, message) {
        log({ level, category, message, functionName: name, invocationId });
      },
    };
    const invocationModel = await model.getInvocationModel(coreContext);
    const { context, inputs } = await invocationModel.getArguments();
    const hookData: Record<string, unknown> = {};
    const readOnlyContext = { get: () => context, set: () => readOnly("invocationContext"), enumerable: true };

    const pre = this.#hookContext(hookData, { functionCallback: registered.callback, inputs });
    Object.defineProperty(pre, "invocationContext", readOnlyContext);
    coreContext.state = "preInvocationHooks";
    try {
      for (const callback of [...(this.#hooks.get("preInvocation") ?? [])]) await callback(pre);
    } finally {
      coreContext.state = undefined;
    }
    const finalInputs = pre.inputs as unknown[];
    const handler = pre.functionCallback as FunctionCallback;

    const post = this.#hookContext(hookData, { inputs: finalInputs, result: null, error: null });
    Object.defineProperty(post, "invocationContext", readOnlyContext);
    coreContext.state = "invocation";
    try {
      post.result = await invocationModel.invokeFunction(context, finalInputs, handler);
    } catch (error) {
      post.error = error;
    } finally {
      coreContext.state = undefined;
    }
    coreContext.state = "postInvocationHooks";
    try {
      for (const callback of [...(this.#hooks.get("postInvocation") ?? [])]) await callback(post);
    } finally {
      coreContext.state = undefined;
    }
    if (post.error instanceof Error) throw post.error;
    if (post.error !== null && post.error !== undefined) throw new Error(`Function "${name}" failed: ${String(post.error)}`);
    return invocationModel.getResponse(context, post.result);
  }
}

function readOnly(field: string): never {
  throw new TypeError(`Cannot assign "${field}": it is read-only`);
}

let installed: FunctionsApp | undefined;

/**
 * Makes `require("@azure/functions-core")` return `app.coreApi` in this process, as the worker does
 * (a proxy on Module.prototype.require, which bundles and tsx-compiled sources both go through).
 * It must run before @azure/functions loads: the library looks the module up once and, if it is
 * missing, stays in "test mode" and silently skips every registration.
 */
export function installCoreApi(app: FunctionsApp): () => void {
  if (installed) throw new Error(`${CORE_MODULE_NAME} is already provided to another local Functions app in this process`);
  const loadedEarly = Object.keys(require.cache).find((file) => /[\\/]@azure[\\/]functions[\\/]dist[\\/]/.test(file));
  if (loadedEarly) {
    throw new Error(
      `@azure/functions was loaded before the local host provided ${CORE_MODULE_NAME} (${loadedEarly}); ` +
        "it would stay in test mode and skip every registration. Load the app in a fresh process.",
    );
  }
  const original = Module.prototype.require;
  const proxy = new Proxy(original, {
    apply(target, thisArg, args: unknown[]) {
      if (args[0] === CORE_MODULE_NAME) return app.coreApi;
      return Reflect.apply(target, thisArg, args) as unknown;
    },
  });
  Module.prototype.require = proxy;
  installed = app;
  return () => {
    if (Module.prototype.require === proxy) Module.prototype.require = original;
    installed = undefined;
  };
}
