/**
 * The web app's Content-Security-Policy, per environment. The storage account's static website
 * cannot send response headers, so the policy travels in a `<meta http-equiv>` of every HTML page:
 * the build carries the strictest policy (same origin only), and whoever serves the site (the local
 * platform, or the deployment to `$web`) puts in the one for its environment.
 *
 * The page may load its own scripts and styles and talk to exactly: its own origin (config.json),
 * the api, the Blob endpoint it PUTs uploads to, the Web PubSub endpoint's WebSocket origin, and in
 * Entra mode the sign-in authority (token calls, and the hidden frame MSAL renews tokens in).
 * A meta policy cannot say `frame-ancestors`, `report-uri` or `sandbox` (browsers ignore them there).
 */
import type { RuntimeConfig } from "../src/runtime-config";

/** Endpoints of the environment the page talks to beyond the api (which config.json names). */
export interface SiteEndpoints {
  /** The Blob endpoint uploads go to: `https://<account>.blob.core.windows.net/`, or Azurite's. */
  readonly blobEndpoint: string;
  /** The Web PubSub endpoint: `https://<name>.webpubsub.azure.com`; the browser connects to its ws(s) twin. */
  readonly webPubSubEndpoint: string;
}

function originOf(url: string, what: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`the ${what} is not a URL: ${JSON.stringify(url)}`);
  }
  if (!["https:", "http:", "wss:", "ws:"].includes(parsed.protocol)) throw new Error(`the ${what} must be an http(s) or ws(s) URL, got ${JSON.stringify(url)}`);
  return parsed.origin;
}

/** The WebSocket origin of a Web PubSub endpoint (https -> wss, http -> ws on the local emulator). */
export function webSocketOrigin(endpoint: string): string {
  const origin = originOf(endpoint, "Web PubSub endpoint");
  return origin.replace(/^https:/, "wss:").replace(/^http:/, "ws:");
}

/** The policy for one environment, as the `content` of the meta element. */
export function contentSecurityPolicy(config: RuntimeConfig, endpoints: SiteEndpoints): string {
  const signIn = config.auth.mode === "entra" ? [originOf(config.auth.authority, "Entra authority")] : [];
  const connect = ["'self'", originOf(config.apiBaseUrl, "api URL"), originOf(endpoints.blobEndpoint, "Blob endpoint"), webSocketOrigin(endpoints.webPubSubEndpoint), ...signIn];
  const directives: [string, ...string[]][] = [
    ["default-src", "'none'"],
    ["script-src", "'self'"],
    ["style-src", "'self'"],
    ["img-src", "'self'"],
    ["connect-src", ...new Set(connect)],
    ["frame-src", ...(signIn.length > 0 ? signIn : ["'none'"])],
    ["base-uri", "'none'"],
    ["form-action", "'none'"],
  ];
  return directives.map((directive) => directive.join(" ")).join("; ");
}

/** The meta element that carries the policy; every HTML page of the build has exactly one. */
const POLICY_META = /<meta\s+http-equiv=(["'])Content-Security-Policy\1\s+content=(?:"[^"]*"|'[^']*')\s*\/?>/gi;

/** The page with its policy meta element set to `policy`; throws when the page has none (or several). */
export function withContentSecurityPolicy(html: string, policy: string, page = "the page"): string {
  const found = html.match(POLICY_META)?.length ?? 0;
  if (found !== 1) {
    throw new Error(
      `${page} must carry exactly one <meta http-equiv="Content-Security-Policy" content="..."> (found ${found}): the static website cannot send the policy as a header`,
    );
  }
  const escaped = policy.replace(/&/g, "&amp;").replace(/"/g, "&quot;");
  return html.replace(POLICY_META, `<meta http-equiv="Content-Security-Policy" content="${escaped}" />`);
}
