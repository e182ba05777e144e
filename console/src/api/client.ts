// The API client every page uses: `api.get("/api/v1/orgs/{org_id}", { path: { org_id } })`, typed
// from openapi.json. See http.ts for how it handles tokens, 401 and problems.
import { createClient } from "./http";
import { keeper } from "@/auth/session";

let signedOutHandler: () => void = () => undefined;

/** What to do when the server ends the session (main.ts: go to the sign-in page). */
export function onSignedOut(handler: () => void): void {
  signedOutHandler = handler;
}

export const api = createClient({ keeper, onSignedOut: () => signedOutHandler() });

export type { Schemas } from "./types";
export { ApiProblem, fieldErrors, problemMessage } from "./errors";
