/**
 * Sign-in with Microsoft Entra ID through MSAL (authorization code flow with PKCE; no secret in the
 * page). Loaded only in Entra mode. Tokens for the api's scope go out as `Authorization: Bearer`,
 * which App Service Authentication validates in front of the api. MSAL 5 returns every sign-in
 * through the redirect bridge page (redirect.html), which must be registered as a redirect URI of
 * the single-page application's app registration, exactly as the page's own origin spells it.
 */
import { createStandardPublicClientApplication, InteractionRequiredAuthError, type AccountInfo } from "@azure/msal-browser";
import type { AuthConfig } from "../runtime-config";
import { NotSignedIn, type Auth } from "./auth";

/** The bridge page, next to index.html (web/redirect.html). */
export const REDIRECT_BRIDGE_PATH = "/redirect.html";

export async function entraAuth(config: Extract<AuthConfig, { mode: "entra" }>): Promise<Auth> {
  const msal = await createStandardPublicClientApplication({
    auth: {
      clientId: config.clientId,
      authority: config.authority,
      redirectUri: new URL(REDIRECT_BRIDGE_PATH, window.location.origin).href,
      postLogoutRedirectUri: new URL("/", window.location.origin).href,
    },
    // Per tab, gone when it closes: a shared computer keeps no tokens.
    cache: { cacheLocation: "sessionStorage" },
  });
  // Back from the sign-in page: MSAL turns the response into an account.
  const returned = await msal.handleRedirectPromise();
  if (returned?.account) msal.setActiveAccount(returned.account);
  const account = (): AccountInfo | undefined => msal.getActiveAccount() ?? msal.getAllAccounts()[0] ?? undefined;
  const request = { scopes: [...config.scopes] };

  return {
    mode: "entra",
    currentUser: () => {
      const signedIn = account();
      return signedIn ? signedIn.name || signedIn.username : undefined;
    },
    headers: async () => {
      const signedIn = account();
      if (!signedIn) throw new NotSignedIn();
      try {
        const token = await msal.acquireTokenSilent({ ...request, account: signedIn });
        return { authorization: `Bearer ${token.accessToken}` };
      } catch (error) {
        if (!(error instanceof InteractionRequiredAuthError)) throw error;
        // Consent or a new sign-in is needed (a SPA's refresh token lives 24 hours): the page
        // leaves for Entra and comes back through the bridge page.
        await msal.acquireTokenRedirect({ ...request, account: signedIn });
        return new Promise<never>(() => {});
      }
    },
    signIn: () => msal.loginRedirect(request),
    signOut: () => msal.logoutRedirect({ account: account() }),
  };
}
