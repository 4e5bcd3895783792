/**
 * The redirect bridge page's script (MSAL 5): Entra sends every sign-in response here; this hands
 * it to the page that asked (or, after a full-page redirect, back to the app). It must be served
 * from the app's own origin without Cross-Origin-Opener-Policy, and never cached (no-store).
 */
import { broadcastResponseToMainFrame } from "@azure/msal-browser/redirect-bridge";

broadcastResponseToMainFrame().catch((error: unknown) => {
  const status = document.getElementById("status");
  if (status) status.textContent = `Sign-in could not be completed (${error instanceof Error ? error.message : String(error)}). Go back to the app and sign in again.`;
});
