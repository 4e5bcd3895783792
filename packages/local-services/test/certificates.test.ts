/** The loopback certificate the local Cosmos emulator serves (src/certificates.ts). */
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createLoopbackCertificate, isCertificateUsable, loopbackCertificateIn } from "../src/certificates.js";

const directories: string[] = [];
afterAll(async () => {
  await Promise.all(directories.map((directory) => rm(directory, { recursive: true, force: true })));
});

describe("loopback certificate", () => {
  it("is valid for the loopback names only, as a server certificate that is no CA", async () => {
    const { cert, key } = await createLoopbackCertificate({ validDays: 2 });
    const certificate = new X509Certificate(cert);
    expect(certificate.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(certificate.checkHost("localhost")).toBe("localhost");
    expect(certificate.checkHost("example.com")).toBeUndefined();
    expect(certificate.ca).toBe(false);
    expect(isCertificateUsable(cert, key)).toBe(true);
    // Less than a day left counts as unusable, so a stored one is replaced in time.
    expect(isCertificateUsable(cert, key, 24 * 3_600_000, new Date(Date.now() + 36 * 3_600_000))).toBe(false);
  });

  it("is kept in a directory and reused, and replaced when the pair does not match", async () => {
    const directory = await mkdtemp(join(tmpdir(), "loopback-cert-"));
    directories.push(directory);
    const first = await loopbackCertificateIn(directory);
    const again = await loopbackCertificateIn(directory);
    expect(again.cert).toBe(first.cert);
    expect(await readFile(first.certFile, "utf8")).toBe(first.cert);

    const other = await createLoopbackCertificate();
    await writeFile(first.keyFile, other.key); // a half-written pair from a concurrent run
    const replaced = await loopbackCertificateIn(directory);
    expect(replaced.cert).not.toBe(first.cert);
    expect(isCertificateUsable(replaced.cert, replaced.key)).toBe(true);
  });
});
