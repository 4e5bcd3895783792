/**
 * Reads and edits the app's two declaration files as source text: functions/src/services.ts (the
 * `defineServices({...})` object) and functions/src/resources.ts (the `queues` object of
 * `defineResources({...})`). The TypeScript compiler finds the objects and their entries; an edit
 * inserts text after the last entry, indented as that entry is, so the file reads as if written by
 * hand and everything else in it (comments included) stays as it was.
 */
import ts from "typescript";

/** A declaration file that is not in the shape the generator edits; says what it looked for. */
export class SourceShapeError extends Error {
  override readonly name = "SourceShapeError";
}

function parse(fileName: string, text: string): ts.SourceFile {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const problems = (source as ts.SourceFile & { parseDiagnostics?: readonly ts.Diagnostic[] }).parseDiagnostics ?? [];
  if (problems.length > 0) {
    const first = problems[0]!;
    const { line } = source.getLineAndCharacterOfPosition(first.start ?? 0);
    throw new SourceShapeError(`${fileName}:${line + 1}: ${ts.flattenDiagnosticMessageText(first.messageText, "\n")}`);
  }
  return source;
}

/** The object literal passed to `<callee>(...)`, the first such call in the file. */
function objectArgumentOf(source: ts.SourceFile, callee: string): ts.ObjectLiteralExpression {
  let found: ts.ObjectLiteralExpression | undefined;
  const visit = (node: ts.Node): void => {
    if (found) return;
    if (ts.isCallExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === callee) {
      const [argument] = node.arguments;
      if (argument && ts.isObjectLiteralExpression(argument)) found = argument;
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  if (!found) throw new SourceShapeError(`${source.fileName}: no ${callee}({ ... }) call with an object literal`);
  return found;
}

function propertyName(property: ts.ObjectLiteralElementLike): string | undefined {
  const name = property.name;
  if (!name) return undefined;
  if (ts.isIdentifier(name) || ts.isStringLiteral(name) || ts.isNumericLiteral(name)) return name.text;
  return undefined;
}

function property(object: ts.ObjectLiteralExpression, name: string): ts.PropertyAssignment | undefined {
  return object.properties.find((p): p is ts.PropertyAssignment => ts.isPropertyAssignment(p) && propertyName(p) === name);
}

function objectProperty(object: ts.ObjectLiteralExpression, name: string, where: string): ts.ObjectLiteralExpression {
  const found = property(object, name);
  if (!found || !ts.isObjectLiteralExpression(found.initializer)) throw new SourceShapeError(`${where}: no \`${name}: { ... }\` object`);
  return found.initializer;
}

function names(object: ts.ObjectLiteralExpression): string[] {
  return object.properties.map(propertyName).filter((name): name is string => name !== undefined);
}

/** The whitespace that starts the line `position` is on. */
function indentAt(text: string, position: number): string {
  const lineStart = text.lastIndexOf("\n", position - 1) + 1;
  return /^[ \t]*/.exec(text.slice(lineStart))![0];
}

/** `lines` indented by `indent`, empty lines left empty. */
function indented(lines: readonly string[], indent: string): string {
  return lines.map((line) => (line === "" ? "" : `${indent}${line}`)).join("\n");
}

/**
 * Inserts `lines` as the last entries of a multi-line object or array literal (`elements` are its
 * entries, `close` the position of its closing bracket). After the last entry's comma (and a comment
 * on its line); on a line of their own, indented as the last entry is.
 */
function insertLast(text: string, elements: ts.NodeArray<ts.Node>, open: number, close: number, lines: readonly string[]): string {
  const last = elements[elements.length - 1];
  if (!last) {
    // An empty literal: `{}` becomes one entry per line inside, one level deeper than its line.
    const indent = indentAt(text, open);
    return `${text.slice(0, open + 1)}\n${indented(lines, `${indent}  `)}\n${indent}${text.slice(close)}`;
  }
  const indent = indentAt(text, last.getStart());
  let position = last.end;
  let prefix = "";
  const comma = text.slice(position, close).search(/\S/);
  if (comma >= 0 && text[position + comma] === ",") position += comma + 1;
  else prefix = ",";
  // Keep a trailing `// comment` on the last entry's line with that entry.
  const restOfLine = /^[^\n]*/.exec(text.slice(position))![0];
  if (/^\s*(\/\/.*)?$/.test(restOfLine) && position + restOfLine.length < close) position += restOfLine.length;
  return `${text.slice(0, position)}${prefix}\n${indented(lines, indent)}${text.slice(position)}`;
}

function isMultiLine(text: string, node: ts.Node): boolean {
  return text.slice(node.getStart(), node.end).includes("\n");
}

/** What the generator reads from functions/src/services.ts. */
export interface RegistryFacts {
  /** Service names, in declaration order. */
  readonly services: readonly string[];
  /** Each HTTP service's local port (`http: { localPort }`). */
  readonly localPorts: readonly number[];
}

export function readServices(text: string, fileName = "functions/src/services.ts"): RegistryFacts {
  const registry = objectArgumentOf(parse(fileName, text), "defineServices");
  const localPorts: number[] = [];
  for (const service of registry.properties) {
    if (!ts.isPropertyAssignment(service) || !ts.isObjectLiteralExpression(service.initializer)) continue;
    const http = property(service.initializer, "http");
    if (!http || !ts.isObjectLiteralExpression(http.initializer)) continue;
    const port = property(http.initializer, "localPort");
    if (port && ts.isNumericLiteral(port.initializer)) localPorts.push(Number(port.initializer.text));
  }
  return { services: names(registry), localPorts };
}

/** Queue names declared in functions/src/resources.ts. */
export function readQueues(text: string, fileName = "functions/src/resources.ts"): string[] {
  const declared = objectArgumentOf(parse(fileName, text), "defineResources");
  return names(objectProperty(declared, "queues", fileName));
}

/** services.ts with `entry` (the lines of `<name>: { ... },`, unindented) as the last service. */
export function addService(text: string, entry: readonly string[], fileName = "functions/src/services.ts"): string {
  const registry = objectArgumentOf(parse(fileName, text), "defineServices");
  return parse(fileName, insertLast(text, registry.properties, registry.getStart(), registry.end - 1, entry)).text;
}

/** resources.ts with `entry` (the lines of one queue, unindented, comments included) as the last queue. */
export function addQueue(text: string, entry: readonly string[], fileName = "functions/src/resources.ts"): string {
  const queues = objectProperty(objectArgumentOf(parse(fileName, text), "defineResources"), "queues", fileName);
  return parse(fileName, insertLast(text, queues.properties, queues.getStart(), queues.end - 1, entry)).text;
}

/** Lines longer than this get one array element per line. */
const MAX_LINE = 140;

/** services.ts with `link` (an expression, e.g. `link.queue("x", "send")`) as the last link of `service`. */
export function addLink(text: string, service: string, link: string, fileName = "functions/src/services.ts"): string {
  const registry = objectArgumentOf(parse(fileName, text), "defineServices");
  const declaration = property(registry, service);
  if (!declaration || !ts.isObjectLiteralExpression(declaration.initializer)) throw new SourceShapeError(`${fileName}: no service "${service}" declared as an object`);
  const links = property(declaration.initializer, "links");
  if (!links || !ts.isArrayLiteralExpression(links.initializer)) throw new SourceShapeError(`${fileName}: service "${service}" has no \`links: [ ... ]\` array`);
  const array = links.initializer;
  const open = array.getStart();
  const close = array.end - 1;
  let edited: string;
  if (isMultiLine(text, array) && array.elements.length > 0) {
    edited = insertLast(text, array.elements, open, close, [`${link},`]);
  } else {
    const elements = [...array.elements.map((element) => element.getText()), link];
    const lineStart = text.lastIndexOf("\n", open - 1) + 1;
    const lineEnd = text.indexOf("\n", close);
    const oneLine = `[${elements.join(", ")}]`;
    const lineLength = open - lineStart + oneLine.length + (lineEnd < 0 ? text.length : lineEnd) - (close + 1);
    const indent = indentAt(text, open);
    const replacement = lineLength <= MAX_LINE ? oneLine : `[\n${indented(elements.map((e) => `${e},`), `${indent}  `)}\n${indent}]`;
    edited = `${text.slice(0, open)}${replacement}${text.slice(close + 1)}`;
  }
  return parse(fileName, edited).text;
}

/** Whether `service` already links `link` (compared as written, spaces aside). */
export function hasLink(text: string, service: string, link: string, fileName = "functions/src/services.ts"): boolean {
  const registry = objectArgumentOf(parse(fileName, text), "defineServices");
  const declaration = property(registry, service);
  if (!declaration || !ts.isObjectLiteralExpression(declaration.initializer)) return false;
  const links = property(declaration.initializer, "links");
  if (!links || !ts.isArrayLiteralExpression(links.initializer)) return false;
  const normal = (code: string) => code.replace(/\s+/g, "").replace(/'/g, '"');
  return links.initializer.elements.some((element) => normal(element.getText()) === normal(link));
}
