/**
 * Swagger UI for the OpenAPI document, served from the swagger-ui-dist package (no CDN: the page
 * works offline and loads no third-party script). Only a fixed set of assets is served.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";

import { swaggerUiAssets } from "./docs-assets.js";

const assets: Record<string, string> = swaggerUiAssets;

/** Our own initializer, as a file (not inline) so the page runs under a strict CSP. */
const INITIALIZER = `window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({ url: "/api/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
});
`;

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Text analysis api</title>
<link rel="stylesheet" href="/api/docs/swagger-ui.css">
<link rel="icon" type="image/png" href="/api/docs/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/api/docs/swagger-ui-bundle.js"></script>
<script src="/api/docs/initializer.js"></script>
</body>
</html>
`;

const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; object-src 'none'; frame-ancestors 'none'";

export interface DocsAsset {
  readonly contentType: string;
  readonly body: string | Uint8Array;
  readonly headers: Record<string, string>;
}

/**
 * Where swagger-ui-dist's files are: a `swagger-ui` folder beside the code (the deployed bundle has
 * no node_modules, so the bundler copies the assets there), else the installed package.
 */
export function swaggerUiDirectory(): string {
  const bundled = join(__dirname, "swagger-ui");
  if (existsSync(join(bundled, "swagger-ui-bundle.js"))) return bundled;
  return dirname(require.resolve("swagger-ui-dist/package.json"));
}


const cache = new Map<string, Uint8Array>();

/** The page for `asset` ("" is the page itself), or undefined when there is no such asset. */
export async function docsAsset(asset: string): Promise<DocsAsset | undefined> {
  const securityHeaders = { "content-security-policy": CSP, "x-content-type-options": "nosniff" };
  if (asset === "" || asset === "index.html") return { contentType: "text/html; charset=utf-8", body: PAGE, headers: { ...securityHeaders, "cache-control": "no-cache" } };
  if (asset === "initializer.js") return { contentType: "text/javascript; charset=utf-8", body: INITIALIZER, headers: { ...securityHeaders, "cache-control": "no-cache" } };
  // Own keys only: "__proto__", "constructor" or "toString" name no asset (and must not read as one).
  if (!Object.hasOwn(assets, asset)) return undefined;
  const contentType = assets[asset]!;
  let body = cache.get(asset);
  if (!body) {
    body = new Uint8Array(await readFile(join(swaggerUiDirectory(), asset)));
    cache.set(asset, body);
  }
  return { contentType, body, headers: { ...securityHeaders, "cache-control": "public, max-age=86400" } };
}
