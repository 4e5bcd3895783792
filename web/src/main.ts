/**
 * Start-up: read /config.json (where the api is, how to sign in), set up the sign-in of that mode
 * (MSAL only in Entra mode), then hand the page to App. A start-up failure is shown on the page in
 * plain words, never as a blank page.
 */
import "./styles.css";
import { ApiClient } from "./api-client";
import { App } from "./app";
import { createAuth } from "./auth/create-auth";
import { parseRuntimeConfig, type RuntimeConfig } from "./runtime-config";

async function loadConfig(): Promise<RuntimeConfig> {
  const response = await fetch("/config.json", { cache: "no-cache" });
  if (!response.ok) throw new Error(`/config.json answered ${response.status}`);
  return parseRuntimeConfig(await response.json());
}

function showStartupError(text: string): void {
  const slot = document.getElementById("app-error");
  if (!slot) return;
  slot.textContent = text;
  slot.hidden = false;
  for (const fieldset of document.querySelectorAll("fieldset")) fieldset.disabled = true;
}

async function main(): Promise<void> {
  let config: RuntimeConfig;
  try {
    config = await loadConfig();
  } catch (error) {
    showStartupError(`The app cannot start: its configuration could not be read (${error instanceof Error ? error.message : String(error)}).`);
    return;
  }
  try {
    const auth = await createAuth(config.auth);
    new App(new ApiClient(config.apiBaseUrl, () => auth.headers()), auth).start();
  } catch (error) {
    showStartupError(`The app cannot start: sign-in could not be set up (${error instanceof Error ? error.message : String(error)}).`);
  }
}

void main();
