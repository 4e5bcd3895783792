/**
 * The random name suffix's provider, run directly (mocks stand in for it in the program tests): a
 * new suffix of the requested shape on every create, kept on unrelated changes, replaced when a
 * keeper changes.
 */
import { describe, expect, it } from "vitest";
import { randomSuffix, uniqueSuffixProvider } from "../../infrastructure/components/unique-suffix";

describe("UniqueSuffix", () => {
  it("creates lowercase letters and digits of the requested length, a different one each time", async () => {
    const created = await Promise.all(Array.from({ length: 20 }, () => uniqueSuffixProvider.create({ length: 6, keepers: {} })));
    for (const { id, outs } of created) {
      expect(id).toMatch(/^[a-z0-9]{6}$/);
      expect(outs["suffix"]).toBe(id);
    }
    // 36^6 values: twenty draws colliding would take a broken source.
    expect(new Set(created.map((c) => c.id)).size).toBe(20);
    expect(randomSuffix(40)).toMatch(/^[a-z0-9]{40}$/);
  });

  it("draws every character of the alphabet (no bias that leaves some out)", () => {
    const seen = new Set(randomSuffix(5000));
    expect(seen.size).toBe(36);
  });

  it("is replaced (a new name) when a keeper or the length changes, and kept otherwise", async () => {
    const diff = uniqueSuffixProvider.diff!;
    const old = { length: 6, keepers: { location: "eastus", resourceGroupName: "rg" }, suffix: "abc123" };
    expect(await diff("abc123", old, { length: 6, keepers: { location: "eastus", resourceGroupName: "rg" } })).toMatchObject({ changes: false, replaces: [] });
    expect(await diff("abc123", old, { length: 6, keepers: { location: "westeurope", resourceGroupName: "rg" } })).toMatchObject({ changes: true, replaces: ["keepers"] });
    expect(await diff("abc123", old, { length: 8, keepers: old.keepers })).toMatchObject({ changes: true, replaces: ["length"] });
  });
});
