/**
 * The OData filter language Web PubSub accepts on sends and on :addToGroups/:removeFromGroups, as
 * its reference documents it ("OData filter syntax in Azure Web PubSub service"): the identifiers
 * `userId`, `connectionId` (strings) and `groups` (a collection); `eq ne gt ge lt le`; `in` with a
 * list `('a', 'b')` or `groups`; `and or not` (`not` binds tightest) and parentheses; string,
 * integer, boolean and null literals; the functions tolower, toupper, trim, substring, concat,
 * indexof, length (of a string or of `groups`), startswith, endswith and contains. Identifiers,
 * keywords and function names are case-insensitive; string comparisons are ordinal.
 *
 * A filter that does not parse, or does not type, is a {@link FilterSyntaxError}, never a silent
 * match-all. Its messages follow the service: OData's own for syntax ("Syntax error at position 14
 * in 'invalid filter'."), and "Type 'null', expect 'bool'." for an operand of the wrong type, where
 * a value that can be null (userId, and what is computed from it) is typed 'null'.
 */

/** What a filter sees of a connection. */
export interface FilterSubject {
  connectionId: string;
  userId: string | undefined;
  groups: ReadonlySet<string>;
}

export type ConnectionFilter = (subject: FilterSubject) => boolean;

export class FilterSyntaxError extends Error {
  constructor(
    message: string,
    /** The text the service names as invalid: the whole filter, or the expression whose type is wrong. */
    readonly subject: string,
  ) {
    super(message);
    this.name = "FilterSyntaxError";
  }
}

type TokenKind = "identifier" | "string" | "integer" | "(" | ")" | "," | "end";
interface Token {
  kind: TokenKind;
  text: string;
  /** Offset of the token and of the first character after it. */
  start: number;
  end: number;
  value?: string | number;
}

function tokenize(input: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const fail = (message: string) => {
    throw new FilterSyntaxError(message, input);
  };
  while (i < input.length) {
    const ch = input[i] as string;
    if (/\s/.test(ch)) {
      i++;
      continue;
    }
    const start = i;
    if (ch === "(" || ch === ")" || ch === ",") {
      tokens.push({ kind: ch, text: ch, start, end: ++i });
    } else if (ch === "'") {
      let value = "";
      i++;
      for (;;) {
        if (i >= input.length) fail(`There is an unterminated string literal at position ${input.length} in '${input}'.`);
        if (input[i] === "'") {
          if (input[i + 1] === "'") {
            value += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += input[i];
        i++;
      }
      tokens.push({ kind: "string", text: input.slice(start, i), start, end: i, value });
    } else if (/[0-9+-]/.test(ch) && /^[+-]?[0-9]+/.test(input.slice(i))) {
      const digits = /^[+-]?[0-9]+/.exec(input.slice(i))?.[0] as string;
      i += digits.length;
      tokens.push({ kind: "integer", text: digits, start, end: i, value: Number(digits) });
    } else if (/[A-Za-z_]/.test(ch)) {
      const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(input.slice(i))?.[0] as string;
      i += word.length;
      tokens.push({ kind: "identifier", text: word, start, end: i });
    } else {
      fail(`Syntax error: character '${ch}' is not valid at position ${i} in '${input}'.`);
    }
  }
  tokens.push({ kind: "end", text: "", start: input.length, end: input.length });
  return tokens;
}

/** "unknown": an identifier the service does not know, reported once the whole filter has parsed. */
type BaseType = "string" | "int" | "bool" | "collection" | "null" | "unknown";
type Value = string | number | boolean | null | ReadonlySet<string>;
interface Expression {
  base: BaseType;
  /** Whether it can evaluate to null (userId, and functions of it). */
  nullable: boolean;
  start: number;
  end: number;
  evaluate(subject: FilterSubject): Value;
}

/** Types that fit anywhere: null, and what is already reported as wrong. */
const fitsAnything = (e: Expression) => e.base === "null" || e.base === "unknown";

/** How the service names a type in an error: a value that can be null is typed 'null'. */
const typeName = (e: Expression): string => (e.nullable || e.base === "null" ? "null" : e.base);

const comparisons = ["eq", "ne", "gt", "ge", "lt", "le"] as const;
type Comparison = (typeof comparisons)[number];

interface FunctionSignature {
  params: Array<BaseType | "string|collection">;
  optional?: number;
  result: BaseType;
  apply(args: Value[]): Value;
}

// Arguments are typed before a function runs and nulls never reach it: these only narrow.
const str = (v: Value | undefined): string => (typeof v === "string" ? v : "");
const int = (v: Value | undefined): number => (typeof v === "number" ? v : 0);
const functions: Record<string, FunctionSignature> = {
  tolower: { params: ["string"], result: "string", apply: ([s]) => str(s).toLowerCase() },
  toupper: { params: ["string"], result: "string", apply: ([s]) => str(s).toUpperCase() },
  trim: { params: ["string"], result: "string", apply: ([s]) => str(s).trim() },
  concat: { params: ["string", "string"], result: "string", apply: ([a, b]) => str(a) + str(b) },
  indexof: { params: ["string", "string"], result: "int", apply: ([a, b]) => str(a).indexOf(str(b)) },
  startswith: { params: ["string", "string"], result: "bool", apply: ([a, b]) => str(a).startsWith(str(b)) },
  endswith: { params: ["string", "string"], result: "bool", apply: ([a, b]) => str(a).endsWith(str(b)) },
  contains: { params: ["string", "string"], result: "bool", apply: ([a, b]) => str(a).includes(str(b)) },
  substring: {
    params: ["string", "int", "int"],
    optional: 1,
    result: "string",
    apply: ([s, from, length]) => (length === undefined ? str(s).slice(int(from)) : str(s).slice(int(from), int(from) + int(length))),
  },
  length: {
    params: ["string|collection"],
    result: "int",
    apply: ([v]) => (typeof v === "string" ? v.length : v instanceof Set ? v.size : 0),
  },
};

/** Parses a filter expression into a predicate over connections. */
export function parseFilter(input: string): ConnectionFilter {
  const tokens = tokenize(input);
  let index = 0;
  const current = () => tokens[index] as Token;
  const advance = () => tokens[index++] as Token;
  const keyword = (token: Token, word: string) => token.kind === "identifier" && token.text.toLowerCase() === word;
  /** Like OData, the filter is parsed whole before it is typed: the first type error is raised after parsing. */
  let semanticError: FilterSyntaxError | undefined;
  const syntaxError = (): never => {
    throw new FilterSyntaxError(`Syntax error at position ${current().end} in '${input}'.`, input);
  };
  const expected = (what: string): never => {
    throw new FilterSyntaxError(`${what} expected at position ${current().start} in '${input}'.`, input);
  };
  const typeError = (node: { start: number; end: number }, actual: Expression, wanted: string): void => {
    semanticError ??= new FilterSyntaxError(`Type '${typeName(actual)}', expect '${wanted}'.`, input.slice(node.start, node.end));
  };
  const requireBool = (node: { start: number; end: number }, operand: Expression) => {
    if (operand.base !== "bool" && !fitsAnything(operand)) typeError(node, operand, "bool");
  };

  function parseOr(): Expression {
    let left = parseAnd();
    while (keyword(current(), "or")) {
      advance();
      left = logical(left, parseAnd(), "or");
    }
    return left;
  }
  function parseAnd(): Expression {
    let left = parseComparison();
    while (keyword(current(), "and")) {
      advance();
      left = logical(left, parseComparison(), "and");
    }
    return left;
  }
  function logical(left: Expression, right: Expression, operator: "and" | "or"): Expression {
    const node = { start: left.start, end: right.end };
    requireBool(node, left);
    requireBool(node, right);
    return {
      base: "bool",
      nullable: left.nullable || right.nullable,
      ...node,
      // Three-valued, as in OData: null is neither true nor false.
      evaluate: (s) => {
        const a = left.evaluate(s) as boolean | null;
        const b = right.evaluate(s) as boolean | null;
        if (operator === "and") return a === false || b === false ? false : a === null || b === null ? null : true;
        return a === true || b === true ? true : a === null || b === null ? null : false;
      },
    };
  }
  function parseComparison(): Expression {
    const left = parseUnary();
    const token = current();
    const operator = comparisons.find((c) => keyword(token, c));
    if (operator) {
      advance();
      return comparison(left, parseUnary(), operator);
    }
    if (keyword(token, "in")) {
      advance();
      return membership(left);
    }
    return left;
  }
  function comparison(left: Expression, right: Expression, operator: Comparison): Expression {
    const node = { start: left.start, end: right.end };
    for (const operand of [left, right]) {
      if (operand.base === "collection" || (operator !== "eq" && operator !== "ne" && operand.base === "bool")) {
        typeError(node, operand, operand === left ? typeName(right) : typeName(left));
      }
    }
    if (!fitsAnything(left) && !fitsAnything(right) && left.base !== right.base) typeError(node, right, left.base);
    return {
      base: "bool",
      nullable: false,
      ...node,
      evaluate: (s) => compare(left.evaluate(s), operator, right.evaluate(s)),
    };
  }
  function membership(left: Expression): Expression {
    if (keyword(current(), "groups")) {
      const groups = advance();
      const node = { start: left.start, end: groups.end };
      if (left.base !== "string" && !fitsAnything(left)) typeError(node, left, "string");
      return {
        base: "bool",
        nullable: false,
        ...node,
        evaluate: (s) => {
          const value = left.evaluate(s);
          return typeof value === "string" && s.groups.has(value);
        },
      };
    }
    if (current().kind !== "(") expected("'(' or 'groups'");
    advance();
    const items: Expression[] = [parseOr()];
    while (current().kind === ",") {
      advance();
      items.push(parseOr());
    }
    if (current().kind !== ")") expected("')' or ','");
    const node = { start: left.start, end: advance().end };
    for (const item of items) if (!fitsAnything(item) && !fitsAnything(left) && item.base !== left.base) typeError(node, item, left.base);
    return {
      base: "bool",
      nullable: false,
      ...node,
      evaluate: (s) => {
        const value = left.evaluate(s);
        return items.some((item) => compare(value, "eq", item.evaluate(s)) === true);
      },
    };
  }
  function parseUnary(): Expression {
    const token = current();
    if (keyword(token, "not")) {
      advance();
      const operand = parseUnary();
      const node = { start: token.start, end: operand.end };
      requireBool(node, operand);
      return {
        base: "bool",
        nullable: operand.nullable,
        ...node,
        evaluate: (s) => {
          const value = operand.evaluate(s);
          return value === null ? null : !value;
        },
      };
    }
    return parsePrimary();
  }
  function parsePrimary(): Expression {
    const token = current();
    switch (token.kind) {
      case "(": {
        advance();
        const inner = parseOr();
        if (current().kind !== ")") expected("')' or operator");
        const close = advance();
        return { ...inner, start: token.start, end: close.end };
      }
      case "string":
        advance();
        return constant("string", token.value as string, token);
      case "integer":
        advance();
        return constant("int", token.value as number, token);
      case "identifier":
        return parseIdentifier();
      default:
        return expected("Expression");
    }
  }
  function parseIdentifier(): Expression {
    const token = advance();
    const name = token.text.toLowerCase();
    if (current().kind === "(") {
      const signature = functions[name];
      if (signature) return call(token, signature);
      semanticError ??= new FilterSyntaxError(`Unknown function '${token.text}'.`, input);
      return call(token, { params: [], optional: 0, result: "unknown", apply: () => null }, true);
    }
    switch (name) {
      case "null":
        return constant("null", null, token);
      case "true":
      case "false":
        return constant("bool", name === "true", token);
      case "userid":
        return { base: "string", nullable: true, start: token.start, end: token.end, evaluate: (s) => s.userId ?? null };
      case "connectionid":
        return { base: "string", nullable: false, start: token.start, end: token.end, evaluate: (s) => s.connectionId };
      case "groups":
        return { base: "collection", nullable: false, start: token.start, end: token.end, evaluate: (s) => s.groups };
      default:
        if (comparisons.includes(name as Comparison) || ["and", "or", "in", "not"].includes(name)) return expected("Expression");
        semanticError ??= new FilterSyntaxError(`Identifier '${token.text}' is not supported: use userId, connectionId or groups.`, input);
        return { base: "unknown", nullable: false, start: token.start, end: token.end, evaluate: () => null };
    }
  }
  function call(name: Token, signature: FunctionSignature, unknown = false): Expression {
    advance(); // (
    const args: Expression[] = [];
    if (current().kind !== ")") {
      args.push(parseOr());
      while (current().kind === ",") {
        advance();
        args.push(parseOr());
      }
    }
    if (current().kind !== ")") expected("')' or ','");
    const node = { start: name.start, end: advance().end };
    const required = signature.params.length - (signature.optional ?? 0);
    if (unknown) {
      // already reported
    } else if (args.length < required || args.length > signature.params.length) {
      const takes = required === signature.params.length ? `${required}` : `${required} to ${signature.params.length}`;
      semanticError ??= new FilterSyntaxError(`The function '${name.text}' takes ${takes} arguments, got ${args.length}.`, input.slice(node.start, node.end));
    } else {
      args.forEach((arg, i) => {
        const wanted = signature.params[i] as FunctionSignature["params"][number];
        const fits = fitsAnything(arg) || wanted === arg.base || (wanted === "string|collection" && (arg.base === "string" || arg.base === "collection"));
        if (!fits) typeError(node, arg, wanted === "string|collection" ? "string" : wanted);
      });
    }
    return {
      base: signature.result,
      nullable: args.some((arg) => arg.nullable || arg.base === "null"),
      ...node,
      evaluate: (s) => {
        const values = args.map((arg) => arg.evaluate(s));
        return values.some((v) => v === null) ? null : signature.apply(values);
      },
    };
  }
  function constant(base: BaseType, value: Value, token: Token): Expression {
    return { base, nullable: false, start: token.start, end: token.end, evaluate: () => value };
  }

  if (current().kind === "end") expected("Expression");
  const filter = parseOr();
  if (current().kind !== "end") syntaxError();
  requireBool(filter, filter);
  if (semanticError) throw semanticError;
  return (subject) => filter.evaluate(subject) === true;
}

/** OData comparison: eq/ne hold null equal to null only; ordering against null is never true. */
function compare(a: Value, operator: Comparison, b: Value): boolean {
  if (operator === "eq") return a === b;
  if (operator === "ne") return a !== b;
  if (a === null || b === null || typeof a !== typeof b || typeof a === "object") return false;
  const order = a < b ? -1 : a > b ? 1 : 0;
  if (operator === "gt") return order > 0;
  if (operator === "ge") return order >= 0;
  if (operator === "lt") return order < 0;
  return order <= 0;
}
