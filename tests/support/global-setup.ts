/**
 * vitest globalSetup: trusts the loopback certificate of the local Cosmos emulator in every test
 * worker. Node reads NODE_EXTRA_CA_CERTS only when a process starts, so it is set here, in the main
 * process, before the workers are forked (they inherit the environment). Emulators themselves are
 * started per test file by the files that need them (tests/support/emulators.ts), so test runs that
 * need none pay nothing but this certificate (reused across runs while valid).
 */
import { readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { loopbackCertificateIn } from "@platform-tools/local-services";
import { TEST_CERTIFICATE_DIRECTORY } from "./certificate-directory.js";

export default async function setup(): Promise<void> {
  const certificate = await loopbackCertificateIn(TEST_CERTIFICATE_DIRECTORY);
  const existing = process.env.NODE_EXTRA_CA_CERTS;
  if (!existing) {
    process.env.NODE_EXTRA_CA_CERTS = certificate.certFile;
    return;
  }
  if (existing === certificate.certFile) return;
  // Node takes one file: keep the CAs the developer already trusts and add ours.
  const bundle = join(TEST_CERTIFICATE_DIRECTORY, "extra-ca-bundle.pem");
  // Written aside and renamed: concurrent test runs never see a half-written bundle.
  const partial = `${bundle}.${process.pid}`;
  await writeFile(partial, `${await readFile(existing, "utf8")}\n${certificate.cert}`);
  await rename(partial, bundle);
  process.env.NODE_EXTRA_CA_CERTS = bundle;
}
