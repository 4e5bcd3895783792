/**
 * Vite's configuration of the web app: two pages (the app, and the redirect bridge page MSAL
 * signs in through), every script and style in content-hashed files under assets/ (no inline code,
 * so the Content-Security-Policy can say script-src 'self'), and a manifest that tells the
 * deployment which files are hashed (cached for a year) and which are not (revalidated).
 *
 * `npm run build:web` builds with it (web/site/build.ts); so does `npm start`, watching.
 */
import { resolve } from "node:path";
import { defineConfig } from "vite";

const root = import.meta.dirname;

export default defineConfig({
  root,
  base: "/",
  // Nothing leaves the bundle unprocessed but web/public (copied as is, not hashed).
  publicDir: resolve(root, "public"),
  build: {
    outDir: resolve(root, "../dist/web"),
    emptyOutDir: true,
    // The browsers of the last years; no legacy polyfills.
    target: "es2022",
    // Every supported browser has <link rel="modulepreload">; the polyfill would only add bytes.
    modulePreload: { polyfill: false },
    // Written to .vite/manifest.json, which the deployment reads and never uploads.
    manifest: true,
    // Small CSS stays a file: an inline style would need 'unsafe-inline' in the policy.
    assetsInlineLimit: 0,
    reportCompressedSize: false,
    rolldownOptions: {
      input: { index: resolve(root, "index.html"), redirect: resolve(root, "redirect.html") },
    },
  },
});
