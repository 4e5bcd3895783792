/**
 * The sign-in of the mode config.json names. Only the Entra mode loads MSAL (its own chunk, about
 * 80 kB gzip), so the local app never downloads it.
 */
import type { AuthConfig } from "../runtime-config";
import { NotSignedIn, type Auth } from "./auth";
import { developmentAuth } from "./development";

/** The mode's implementation; `await`s the MSAL chunk in Entra mode only. */
export async function createAuth(config: AuthConfig): Promise<Auth> {
  switch (config.mode) {
    case "development":
      return developmentAuth(config, window.localStorage);
    case "entra": {
      const { entraAuth } = await import("./entra");
      return entraAuth(config);
    }
    case "none":
      return {
        mode: "none",
        currentUser: () => undefined,
        headers: () => Promise.reject(new NotSignedIn()),
        signIn: () => Promise.resolve(),
        signOut: () => Promise.resolve(),
      };
  }
}
