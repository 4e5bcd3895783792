/**
 * The sign-in area, per mode: a name field for the development identity, sign-in and sign-out for
 * Entra, or a note that this deployment has no sign-in configured.
 */
import type { Auth } from "../auth/auth";
import { h } from "./dom";

export interface SessionActions {
  /** The user chose a (development) name or asked to sign in; rejects with a message to show. */
  signIn(name?: string): Promise<void>;
  signOut(): Promise<void>;
}

export function renderSession(container: HTMLElement, auth: Auth, actions: SessionActions): void {
  const user = auth.currentUser();
  switch (auth.mode) {
    case "development": {
      const input = h("input", { id: "dev-user", name: "user", autocomplete: "username", required: true, spellcheck: "false", "aria-describedby": "dev-user-hint dev-user-error", value: user ?? "" });
      const error = h("p", { id: "dev-user-error", class: "field-error", hidden: true });
      const form = h(
        "form",
        { class: "session-form" },
        h("label", { for: "dev-user" }, "Your name"),
        input,
        h("button", { type: "submit" }, user ? "Switch user" : "Start"),
        h("p", { id: "dev-user-hint", class: "hint" }, "Local development identity: the api trusts this name (only on the local platform)."),
        error,
      );
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        actions.signIn(input.value).catch((problem: unknown) => {
          error.textContent = problem instanceof Error ? problem.message : String(problem);
          error.hidden = false;
          input.setAttribute("aria-invalid", "true");
          input.focus();
        });
      });
      container.replaceChildren(form);
      return;
    }
    case "entra": {
      const button = h("button", { type: "button" }, user ? "Sign out" : "Sign in");
      button.addEventListener("click", () => void (user ? actions.signOut() : actions.signIn()));
      container.replaceChildren(h("p", { class: "session-user" }, user ? `Signed in as ${user}` : "Not signed in"), button);
      return;
    }
    case "none":
      container.replaceChildren(
        h("p", { class: "session-user" }, "Sign-in is not configured for this deployment, so the api accepts no caller. Configure Entra sign-in for the stack (see README)."),
      );
      return;
  }
}
