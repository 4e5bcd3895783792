/**
 * The local platform's development identity: a name typed into the page, sent in the header the
 * local api accepts (config.json names it; the api honours it only with ALLOW_DEVELOPMENT_IDENTITY,
 * which Azure never sets). Kept in localStorage so a reload keeps the same user and jobs.
 */
import type { AuthConfig } from "../runtime-config";
import { NotSignedIn, type Auth } from "./auth";

const STORAGE_KEY = "development-user";
/** What the api accepts as a user id: 1 to 128 visible ASCII characters. */
const USER_NAME = /^[\x21-\x7e]{1,128}$/;

/** Why `name` cannot be a development identity, or undefined when it can. */
export function developmentUserProblem(name: string): string | undefined {
  if (name.trim() === "") return "Enter a name.";
  return USER_NAME.test(name.trim()) ? undefined : "Use 1 to 128 letters, digits or symbols, without spaces or accents.";
}

export function developmentAuth(config: Extract<AuthConfig, { mode: "development" }>, storage: Pick<Storage, "getItem" | "setItem" | "removeItem">): Auth {
  const stored = storage.getItem(STORAGE_KEY);
  let user = stored !== null && developmentUserProblem(stored) === undefined ? stored : undefined;
  return {
    mode: "development",
    currentUser: () => user,
    headers: async () => {
      if (user === undefined) throw new NotSignedIn();
      return { [config.header]: user };
    },
    signIn: async (name = "") => {
      const problem = developmentUserProblem(name);
      if (problem) throw new Error(problem);
      user = name.trim();
      storage.setItem(STORAGE_KEY, user);
    },
    signOut: async () => {
      user = undefined;
      storage.removeItem(STORAGE_KEY);
    },
  };
}
