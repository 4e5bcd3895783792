/**
 * The OData filter subset Web PubSub accepts on sends and on :addToGroups/:removeFromGroups
 * (`filter=userId eq 'bob' and 'admins' in groups`). Supported: `userId`, `connectionId`,
 * `groups`; `eq`, `ne`, `gt`, `ge`, `lt`, `le`; `'<g>' in groups`; `and`, `or`, `not`,
 * parentheses; string literals with '' escapes and `null`. Anything else is a
 * {@link FilterSyntaxError} (the REST layer answers 400), never a silent match-all.
 */

/** What a filter sees of a connection. */
export interface FilterSubject {
  connectionId: string;
  userId: string | undefined;
  groups: ReadonlySet<string>;
}

export type ConnectionFilter = (subject: FilterSubject) => boolean;

export class FilterSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FilterSyntaxError";
  }
}

type Token =
  | { kind: "string"; value: string }
  | { kind: "null" }
  | { kind: "word"; value: string }
  | { kind: "lparen" }
  | { kind: "rparen" };

const comparisonOperators = ["eq", "ne", "gt", "ge", "lt", "le"] as const;
type ComparisonOperator = (typeof comparisonOperators)[number];
type Operand = { kind: "field"; name: "userId" | "connectionId" } | { kind: "literal"; value: string | null };

function tokenize(input: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < input.length) {
    const ch = input[i]!;
    if (/\s/.test(ch)) {
      i++;
    } else if (ch === "(") {
      tokens.push({ kind: "lparen" });
      i++;
    } else if (ch === ")") {
      tokens.push({ kind: "rparen" });
      i++;
    } else if (ch === "'") {
      let value = "";
      i++;
      for (;;) {
        if (i >= input.length) throw new FilterSyntaxError("unterminated string literal in filter");
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
      tokens.push({ kind: "string", value });
    } else {
      const match = /^[A-Za-z_][A-Za-z0-9_.]*/.exec(input.slice(i));
      if (!match) throw new FilterSyntaxError(`unexpected character '${ch}' at position ${i} in filter`);
      const word = match[0];
      tokens.push(word === "null" ? { kind: "null" } : { kind: "word", value: word });
      i += word.length;
    }
  }
  return tokens;
}

/** Parses a filter expression into a predicate over connections. */
export function parseFilter(input: string): ConnectionFilter {
  const tokens = tokenize(input);
  let position = 0;
  const peek = () => tokens[position];
  const isWord = (token: Token | undefined, word: string): boolean =>
    token?.kind === "word" && token.value.toLowerCase() === word;

  function parseOr(): ConnectionFilter {
    let left = parseAnd();
    while (isWord(peek(), "or")) {
      position++;
      const l = left;
      const r = parseAnd();
      left = (s) => l(s) || r(s);
    }
    return left;
  }
  function parseAnd(): ConnectionFilter {
    let left = parseUnary();
    while (isWord(peek(), "and")) {
      position++;
      const l = left;
      const r = parseUnary();
      left = (s) => l(s) && r(s);
    }
    return left;
  }
  function parseUnary(): ConnectionFilter {
    if (isWord(peek(), "not")) {
      position++;
      const inner = parseUnary();
      return (s) => !inner(s);
    }
    return parsePrimary();
  }
  function parsePrimary(): ConnectionFilter {
    const token = peek();
    if (token?.kind === "lparen") {
      position++;
      const inner = parseOr();
      if (peek()?.kind !== "rparen") throw new FilterSyntaxError("missing ')' in filter");
      position++;
      return inner;
    }
    const left = parseOperand();
    const operatorToken = peek();
    position++;
    if (isWord(operatorToken, "in")) {
      if (left.kind !== "literal" || left.value === null) throw new FilterSyntaxError("'in' needs a string literal on its left");
      if (!isWord(peek(), "groups")) throw new FilterSyntaxError("'in' is only supported with 'groups'");
      position++;
      const group = left.value;
      return (s) => s.groups.has(group);
    }
    const operator = operatorToken?.kind === "word" ? (operatorToken.value.toLowerCase() as ComparisonOperator) : undefined;
    if (operator === undefined || !comparisonOperators.includes(operator)) {
      throw new FilterSyntaxError(`expected a comparison operator (${comparisonOperators.join(", ")}) or 'in' in filter`);
    }
    const right = parseOperand();
    return (s) => compare(resolve(left, s), operator, resolve(right, s));
  }
  function parseOperand(): Operand {
    const token = peek();
    position++;
    if (token?.kind === "string") return { kind: "literal", value: token.value };
    if (token?.kind === "null") return { kind: "literal", value: null };
    if (token?.kind === "word") {
      const name = token.value.toLowerCase();
      if (name === "userid") return { kind: "field", name: "userId" };
      if (name === "connectionid") return { kind: "field", name: "connectionId" };
      throw new FilterSyntaxError(`unknown field '${token.value}' in filter (supported: userId, connectionId, groups)`);
    }
    throw new FilterSyntaxError("expected a field or a literal in filter");
  }

  if (tokens.length === 0) throw new FilterSyntaxError("filter is empty");
  const filter = parseOr();
  if (position < tokens.length) throw new FilterSyntaxError("unexpected trailing input in filter");
  return filter;
}

function resolve(operand: Operand, subject: FilterSubject): string | null {
  if (operand.kind === "literal") return operand.value;
  return operand.name === "userId" ? (subject.userId ?? null) : subject.connectionId;
}

function compare(a: string | null, operator: ComparisonOperator, b: string | null): boolean {
  switch (operator) {
    case "eq":
      return a === b;
    case "ne":
      return a !== b;
    default: {
      if (a === null || b === null) return false;
      const order = a < b ? -1 : a > b ? 1 : 0;
      if (operator === "gt") return order > 0;
      if (operator === "ge") return order >= 0;
      if (operator === "lt") return order < 0;
      return order <= 0;
    }
  }
}
