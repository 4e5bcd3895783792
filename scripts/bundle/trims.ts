/**
 * Modules of third-party packages that the services provably never use and that would otherwise
 * cost every cold start their compile time, replaced in the bundle by an empty module. Each entry
 * says why it is safe; the bundle tests check that every trim still matches a module (a package
 * update that moves it fails the build rather than silently shipping it again).
 */
import type { Plugin } from "esbuild";

export interface Trim {
  /** The package (`zod`). */
  readonly package: string;
  /** The module inside the package, relative to its directory. */
  readonly module: RegExp;
  /** Why no code path of the services reaches it. */
  readonly why: string;
}

export const trims: readonly Trim[] = [
  {
    package: "zod",
    module: /^v4\/locales\/index\.c?js$/,
    why:
      "every translation of zod's messages (about 260 KB, half of zod), re-exported as z.locales; the services never call " +
      "z.config(z.locales.<lang>()), and zod's default English messages come from v4/locales/en.js, imported on its own",
  },
];

/** Replaces each trimmed module with an empty one, and records which trims matched. */
export function trimPlugin(matched: Set<Trim>): Plugin {
  return {
    name: "trims",
    setup(build) {
      build.onLoad({ filter: /[\\/]node_modules[\\/]/ }, (args) => {
        for (const trim of trims) {
          const marker = `/node_modules/${trim.package}/`;
          const at = args.path.split("\\").join("/").lastIndexOf(marker);
          if (at >= 0 && trim.module.test(args.path.split("\\").join("/").slice(at + marker.length))) {
            matched.add(trim);
            return { contents: "export {};", loader: "js" };
          }
        }
        return undefined;
      });
    },
  };
}
