/**
 * HTTP route templates as the Functions host reads them (ASP.NET routing, the subset function apps
 * use): literal segments (case-insensitive), `{name}`, `{name?}`, `{name:int}` and friends, and a
 * trailing catch-all `{*name}`. Pure, so matching and precedence are tested directly.
 */

type Constraint = "int" | "long" | "double" | "bool" | "guid" | "alpha";
const constraintTests: Record<Constraint, (value: string) => boolean> = {
  int: (v) => /^-?\d+$/.test(v) && Number.isSafeInteger(Number(v)) && Math.abs(Number(v)) <= 2 ** 31,
  long: (v) => /^-?\d+$/.test(v),
  double: (v) => v.trim() !== "" && Number.isFinite(Number(v)),
  bool: (v) => /^(true|false)$/i.test(v),
  guid: (v) => /^\{?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\}?$/i.test(v),
  alpha: (v) => /^[a-z]+$/i.test(v),
};

type Segment =
  | { kind: "literal"; text: string }
  | { kind: "parameter"; name: string; optional: boolean; constraints: Constraint[] }
  | { kind: "catchAll"; name: string };

export interface CompiledRoute<T> {
  /** The template as registered, prefix included (`api/jobs/{id}`). */
  readonly template: string;
  /** Upper-case methods; empty means every method. */
  readonly methods: readonly string[];
  readonly target: T;
  readonly segments: readonly Segment[];
}

export type RouteMatch<T> =
  | { kind: "matched"; route: CompiledRoute<T>; params: Record<string, string> }
  | { kind: "methodNotAllowed"; allow: string[] }
  | { kind: "notFound" };

function parseSegment(raw: string, template: string, isLast: boolean): Segment {
  const parameter = /^\{(\*{1,2})?([A-Za-z_][A-Za-z0-9_]*)(\?)?((?::[A-Za-z]+(?:\([^)]*\))?)*)\}$/.exec(raw);
  if (!parameter) {
    if (/[{}]/.test(raw)) throw new Error(`route "${template}": segment "${raw}" mixes text and parameters, which the local host does not support`);
    return { kind: "literal", text: decodeURIComponent(raw).toLowerCase() };
  }
  const [, star, name = "", optional, constraintText = ""] = parameter;
  if (star) {
    if (!isLast) throw new Error(`route "${template}": the catch-all {${star}${name}} must be the last segment`);
    return { kind: "catchAll", name };
  }
  const constraints = constraintText
    .split(":")
    .filter(Boolean)
    .map((c) => {
      if (!(c in constraintTests)) throw new Error(`route "${template}": constraint "${c}" is not supported by the local host (supported: ${Object.keys(constraintTests).join(", ")})`);
      return c as Constraint;
    });
  return { kind: "parameter", name, optional: Boolean(optional), constraints };
}

/** Compiles `route` under `prefix` (host.json routePrefix). Throws on templates it cannot serve. */
export function compileRoute<T>(prefix: string, route: string, methods: readonly string[], target: T): CompiledRoute<T> {
  const template = [prefix, route.replace(/^\/+|\/+$/g, "")].filter(Boolean).join("/");
  const parts = template === "" ? [] : template.split("/");
  const segments = parts.map((part, index) => parseSegment(part, template, index === parts.length - 1));
  const firstOptional = segments.findIndex((s) => s.kind === "parameter" && s.optional);
  if (firstOptional >= 0 && segments.slice(firstOptional).some((s) => s.kind === "literal" || (s.kind === "parameter" && !s.optional))) {
    throw new Error(`route "${template}": only trailing parameters may be optional`);
  }
  const names = segments.flatMap((s) => (s.kind === "literal" ? [] : [s.name.toLowerCase()]));
  if (new Set(names).size !== names.length) throw new Error(`route "${template}" uses a parameter name twice`);
  return { template, methods: methods.map((m) => m.toUpperCase()), target, segments };
}

function matchSegments(segments: readonly Segment[], path: string[]): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    const value = path[i];
    if (segment.kind === "catchAll") {
      const rest = path.slice(i).join("/");
      if (rest !== "") params[segment.name] = rest;
      return params;
    }
    if (value === undefined) {
      if (segment.kind === "parameter" && segment.optional) continue;
      return undefined;
    }
    if (segment.kind === "literal") {
      if (value.toLowerCase() !== segment.text) return undefined;
      continue;
    }
    if (!segment.constraints.every((c) => constraintTests[c](value))) return undefined;
    params[segment.name] = value;
  }
  return path.length <= segments.length ? params : undefined;
}

/** Literal before constrained parameter before parameter before optional before catch-all. */
function segmentRank(segment: Segment | undefined): number {
  if (!segment) return 5;
  if (segment.kind === "literal") return 0;
  if (segment.kind === "catchAll") return 4;
  if (segment.optional) return 3;
  return segment.constraints.length > 0 ? 1 : 2;
}

export class RouteTable<T> {
  readonly #routes: CompiledRoute<T>[] = [];

  add(route: CompiledRoute<T>): void {
    const clash = this.#routes.find(
      (r) =>
        r.segments.map(describe).join("/") === route.segments.map(describe).join("/") &&
        (r.methods.length === 0 || route.methods.length === 0 || r.methods.some((m) => route.methods.includes(m))),
    );
    if (clash) throw new Error(`route "${route.template}" (${route.methods.join(", ") || "any method"}) is already served by "${clash.template}"`);
    this.#routes.push(route);
    this.#routes.sort((a, b) => {
      const length = Math.max(a.segments.length, b.segments.length);
      for (let i = 0; i < length; i++) {
        const difference = segmentRank(a.segments[i]) - segmentRank(b.segments[i]);
        if (difference !== 0) return difference;
      }
      return 0;
    });
  }

  get routes(): readonly CompiledRoute<T>[] {
    return this.#routes;
  }

  /** `pathname` is the raw URL path (percent-encoded); parameters come back decoded. */
  match(method: string, pathname: string): RouteMatch<T> {
    let path: string[];
    try {
      path = pathname.replace(/^\/+|\/+$/g, "").split("/").filter((p, i, all) => p !== "" || all.length > 1).map(decodeURIComponent);
    } catch {
      return { kind: "notFound" };
    }
    if (path.length === 1 && path[0] === "") path = [];
    const allow = new Set<string>();
    for (const route of this.#routes) {
      const params = matchSegments(route.segments, path);
      if (!params) continue;
      if (route.methods.length === 0 || route.methods.includes(method.toUpperCase())) return { kind: "matched", route, params };
      for (const m of route.methods) allow.add(m);
    }
    return allow.size > 0 ? { kind: "methodNotAllowed", allow: [...allow] } : { kind: "notFound" };
  }
}

function describe(segment: Segment): string {
  if (segment.kind === "literal") return segment.text;
  if (segment.kind === "catchAll") return "*";
  return `{}${segment.optional ? "?" : ""}${segment.constraints.join(":")}`;
}
