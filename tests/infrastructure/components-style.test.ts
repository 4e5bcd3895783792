/**
 * House style of the components, checked on their source: type token `platform:azure:<Class>`,
 * an exported `<Class>Args` whose every property has TSDoc (and `@default` when optional), and
 * `registerOutputs` at the end of the constructor.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const directory = "infrastructure/components";
const sources = readdirSync(directory)
  .filter((f) => f.endsWith(".ts"))
  .map((file) => ({ file, text: readFileSync(join(directory, file), "utf8") }))
  .filter(({ text }) => /extends pulumi\.ComponentResource/.test(text));

describe("components", () => {
  it("are the expected ones", () => {
    expect(sources.map((s) => s.file).sort()).toEqual(["alerts.ts", "app-registrations.ts", "database.ts", "function-app.ts", "gateway.ts", "messaging.ts", "monitoring.ts", "network.ts", "realtime.ts", "storage.ts"]);
  });

  for (const { file, text } of sources) {
    const className = /export class (\w+)/.exec(text)?.[1] ?? "";

    it(`${file}: type token platform:azure:${className} and registerOutputs`, () => {
      expect(text).toContain(`super("platform:azure:${className}", name, {}, opts)`);
      expect(text).toMatch(/this\.registerOutputs\(/);
    });

    it(`${file}: every ${className}Args property has TSDoc, optional ones a @default`, () => {
      const body = new RegExp(`export interface ${className}Args(?:<[^>]+>)? \\{([\\s\\S]*?)\\n\\}`).exec(text)?.[1];
      expect(body, `${className}Args not found`).toBeDefined();
      const properties = [...body!.matchAll(/(\/\*\*[\s\S]*?\*\/)?\s*readonly (\w+)(\??):/g)];
      expect(properties.length).toBeGreaterThan(2);
      for (const [, doc, name, optional] of properties) {
        expect(doc, `${className}Args.${name} has no TSDoc`).toBeDefined();
        if (optional) expect(doc, `${className}Args.${name} has no @default`).toContain("@default");
      }
    });
  }
});
