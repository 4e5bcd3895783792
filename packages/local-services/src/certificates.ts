/**
 * A loopback TLS certificate for the local emulators that must speak HTTPS (the Cosmos emulator:
 * the Cosmos SDK expects https, and a trusted certificate lets app code use a plain connection
 * string with no "skip verification" switch anywhere).
 *
 * Trust is given to this one certificate only, through NODE_EXTRA_CA_CERTS (read by Node at process
 * start, so it must be in the environment of the process that talks to the emulator, not set
 * later). It is valid only for 127.0.0.1, ::1 and localhost.
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { join } from "node:path";

export interface LoopbackCertificate {
  /** PEM certificate. */
  readonly cert: string;
  /** PEM private key. */
  readonly key: string;
}

export interface StoredLoopbackCertificate extends LoopbackCertificate {
  /** The certificate file: the value for NODE_EXTRA_CA_CERTS. */
  readonly certFile: string;
  readonly keyFile: string;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** A new self-signed certificate for the loopback addresses (EC P-256: fast to generate). */
export async function createLoopbackCertificate(options: { validDays?: number; now?: Date } = {}): Promise<LoopbackCertificate> {
  const { generate } = await import("selfsigned");
  const notBeforeDate = new Date((options.now ?? new Date()).getTime() - 60_000); // tolerate small clock skew
  const notAfterDate = new Date(notBeforeDate.getTime() + (options.validDays ?? 30) * DAY_MS);
  const pems = await generate([{ name: "commonName", value: "localhost" }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    notBeforeDate,
    notAfterDate,
    extensions: [
      { name: "basicConstraints", cA: false },
      { name: "keyUsage", digitalSignature: true, critical: true },
      { name: "extKeyUsage", serverAuth: true },
      {
        name: "subjectAltName",
        altNames: [
          { type: 7, ip: "127.0.0.1" },
          { type: 7, ip: "::1" },
          { type: 2, value: "localhost" },
        ],
      },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}

/**
 * True when the PEM certificate is valid for at least `marginMs` more and matches the key (a pair
 * half-written by a concurrent run does not).
 */
export function isCertificateUsable(certPem: string, keyPem: string, marginMs = DAY_MS, now: Date = new Date()): boolean {
  try {
    const certificate = new X509Certificate(certPem);
    const fresh = new Date(certificate.validTo).getTime() - now.getTime() > marginMs && new Date(certificate.validFrom) <= now;
    return fresh && certificate.checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

async function writeAtomically(file: string, content: string, mode?: number): Promise<void> {
  const partial = `${file}.${process.pid}.partial`;
  await writeFile(partial, content, mode === undefined ? {} : { mode });
  await rename(partial, file);
}

/**
 * The loopback certificate kept in `directory` (cert.pem, key.pem): reused while it stays valid
 * for more than a day, regenerated otherwise, so NODE_EXTRA_CA_CERTS can point at a stable file.
 */
export async function loopbackCertificateIn(directory: string): Promise<StoredLoopbackCertificate> {
  const certFile = join(directory, "loopback-cert.pem");
  const keyFile = join(directory, "loopback-key.pem");
  try {
    const [cert, key] = await Promise.all([readFile(certFile, "utf8"), readFile(keyFile, "utf8")]);
    if (isCertificateUsable(cert, key)) return { cert, key, certFile, keyFile };
  } catch {
    // missing or unreadable: make a new one
  }
  const created = await createLoopbackCertificate();
  await mkdir(directory, { recursive: true });
  await writeAtomically(keyFile, created.key, 0o600);
  await writeAtomically(certFile, created.cert);
  return { ...created, certFile, keyFile };
}
