/**
 * Who the page acts for, behind one interface for the three ways config.json can say: a development
 * identity on the local platform, Microsoft Entra ID in Azure, or no sign-in configured. Only the
 * Entra mode loads MSAL (create-auth.ts).
 */
import type { AuthConfig } from "../runtime-config";

export interface Auth {
  readonly mode: AuthConfig["mode"];
  /** The signed-in user's name as the page shows it; undefined while nobody is signed in. */
  currentUser(): string | undefined;
  /** Headers that identify the caller to the api; throws {@link NotSignedIn} while nobody is. */
  headers(): Promise<Record<string, string>>;
  /** Development: `name` becomes the identity. Entra: leaves for the sign-in page. */
  signIn(name?: string): Promise<void>;
  signOut(): Promise<void>;
}

/** An api call was attempted while nobody is signed in. */
export class NotSignedIn extends Error {
  constructor() {
    super("Sign in first.");
    this.name = "NotSignedIn";
  }
}
