import { describe, expect, it } from "vitest";
import { createdOnFirstUse, managedIdentityOf } from "../../functions/src/shared/azure-clients";

describe("createdOnFirstUse", () => {
  it("creates once and shares the result across concurrent and later calls", async () => {
    let creations = 0;
    const get = createdOnFirstUse(async () => ({ n: ++creations }));
    const [a, b] = await Promise.all([get(), get()]);
    expect(a).toBe(b);
    expect(await get()).toBe(a);
    expect(creations).toBe(1);
  });

  it("does not cache a failure: the next call creates again", async () => {
    let creations = 0;
    const get = createdOnFirstUse(async () => {
      creations += 1;
      if (creations === 1) throw new Error("Cosmos unreachable");
      return "ready";
    });
    await expect(get()).rejects.toThrow("Cosmos unreachable");
    expect(await get()).toBe("ready");
    expect(creations).toBe(2);
  });
});

describe("managedIdentityOf", () => {
  it("is the user-assigned identity of the first identity-based connection, none for connection strings", () => {
    expect(managedIdentityOf([{ mode: "connectionString", connectionString: "x" }])).toBeUndefined();
    expect(managedIdentityOf([{ mode: "connectionString", connectionString: "x" }, { mode: "identity", endpoint: "https://e", clientId: "c" }])).toEqual({ clientId: "c" });
    expect(managedIdentityOf([{ mode: "identity", endpoint: "https://e" }])).toEqual({});
  });
});
