/**
 * The routes the API gateway serves, taken from the service's own OpenAPI document (the one its
 * /api/openapi.json serves), so the gateway's routes cannot drift from the code. Pure: the
 * component imports what this returns, and the tests check it directly.
 *
 * API Management imports an OpenAPI document into one API (api-management-api-import-restrictions:
 * 3.1 is supported for import; each operation's resource name is its `operationId`, normalized; a
 * re-import deletes operations the document no longer has). The document is adapted in three ways:
 * - paths lose the Functions route prefix (`/api`): the gateway API has its own path, and its
 *   backend URL ends with the prefix;
 * - every operation gets a stable `operationId` (`get-jobs-id`), so policies can name operations
 *   and a re-import updates them in place (the article's advice);
 * - the anonymous routes the document does not describe (openapi.json, docs) are added as GET
 *   operations: the gateway answers only what its API declares.
 */

/** The slice of an OpenAPI 3.x document this module reads and writes. */
export interface OpenApiDocument {
  readonly openapi: string;
  /** Path -> path item (an object whose method members are operations). */
  readonly paths?: Readonly<Record<string, object>>;
}

interface Operation {
  operationId?: string;
  summary?: string;
  security?: readonly unknown[];
  parameters?: unknown[];
  responses?: Record<string, unknown>;
  [member: string]: unknown;
}

const HTTP_METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;

export interface GatewayRouteOptions {
  /**
   * The prefix every path of the document starts with and the backend URL ends with: the
   * Functions host's route prefix.
   * @example "/api"
   */
  readonly pathPrefix: string;
  /**
   * Routes below the prefix that need no token (the service registry's `anonymousRoutes`): `health`,
   * or `docs/*` for one path segment below `docs/`.
   */
  readonly anonymousRoutes: readonly string[];
}

export interface GatewayRoutes {
  /** The document to import: paths relative to the gateway API, an operationId everywhere, no servers. */
  readonly document: OpenApiDocument;
  /** The operationIds that pass without a token (rate-limited per client IP instead). */
  readonly anonymousOperationIds: readonly string[];
  /** Every HTTP method the API answers, upper case: what browsers may send (CORS). */
  readonly methods: readonly string[];
}

/**
 * An operation's resource name as API Management makes it from an operationId: lower case, each
 * run of other characters one dash, no dash at either end, at most 76 characters.
 */
export function normalizedOperationId(raw: string): string {
  return raw
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 76)
    .replace(/-+$/, "");
}

/** `docs/*` -> `/docs/{path}`; `health` -> `/health`. */
function anonymousRoutePath(route: string): string {
  if (route.endsWith("/*")) return `/${route.slice(0, -2)}/{path}`;
  if (route.includes("*")) throw new Error(`anonymous route "${route}": only a trailing /* is supported`);
  return `/${route}`;
}

const isAnonymousInDocument = (operation: Operation) => operation.security === undefined || operation.security.length === 0;

export function gatewayRoutes(source: OpenApiDocument, options: GatewayRouteOptions): GatewayRoutes {
  const prefix = options.pathPrefix.replace(/\/+$/, "");
  const anonymousPaths = new Map(options.anonymousRoutes.map((route) => [anonymousRoutePath(route), route]));
  const paths: Record<string, Record<string, Operation>> = {};
  const anonymousOperationIds: string[] = [];
  const methods = new Set<string>();
  const seenIds = new Map<string, string>();

  const add = (path: string, method: string, operation: Operation) => {
    const operationId = normalizedOperationId(operation.operationId ?? `${method}-${path}`);
    const other = seenIds.get(operationId);
    if (other) throw new Error(`operations ${other} and ${method.toUpperCase()} ${path} both get the operationId "${operationId}"`);
    seenIds.set(operationId, `${method.toUpperCase()} ${path}`);
    (paths[path] ??= {})[method] = { ...operation, operationId };
    methods.add(method.toUpperCase());
    return operationId;
  };

  for (const [fullPath, item] of Object.entries(source.paths ?? {})) {
    if (fullPath !== prefix && !fullPath.startsWith(`${prefix}/`)) {
      throw new Error(`path ${fullPath} of the OpenAPI document does not start with the route prefix ${prefix}`);
    }
    const path = fullPath.slice(prefix.length) || "/";
    for (const method of HTTP_METHODS) {
      // A path item is JSON: its method members are operation objects.
      const operation = (item as Readonly<Record<string, Operation | undefined>>)[method];
      if (!operation) continue;
      const declaredAnonymous = anonymousPaths.has(path);
      // The registry (what App Service Authentication lets through) and the document must agree.
      if (declaredAnonymous !== isAnonymousInDocument(operation)) {
        throw new Error(
          declaredAnonymous
            ? `${method.toUpperCase()} ${fullPath} is an anonymous route in the service registry but its OpenAPI operation requires security`
            : `${method.toUpperCase()} ${fullPath} has no security requirement in the OpenAPI document but is not an anonymous route of the service registry`,
        );
      }
      const operationId = add(path, method, operation);
      if (declaredAnonymous) anonymousOperationIds.push(operationId);
    }
  }

  for (const [path, route] of anonymousPaths) {
    if (paths[path]?.["get"]) continue;
    const parameters = path.endsWith("/{path}") ? [{ name: "path", in: "path", required: true, schema: { type: "string" }, description: "One path segment" }] : undefined;
    anonymousOperationIds.push(
      add(path, "get", {
        summary: `${route}: served by the api without a token (not part of its own document)`,
        ...(parameters ? { parameters } : {}),
        responses: { "200": { description: "Served as the api serves it" } },
      }),
    );
  }

  // servers: the gateway API's backend URL says where the api is; webhooks: calls the api would
  // make, nothing the gateway serves.
  const { servers: _servers, webhooks: _webhooks, ...rest } = source as OpenApiDocument & { readonly servers?: unknown; readonly webhooks?: unknown };
  const document: OpenApiDocument = { ...rest, paths };
  return { document, anonymousOperationIds, methods: [...methods].sort() };
}
