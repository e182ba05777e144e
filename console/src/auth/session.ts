// The console's one signed-in session: the TokenKeeper over localStorage, sign-in, sign-out and who is
// signed in (a reactive member with roles). Refresh and sign-in call fetch directly, not the API
// client, because the client itself depends on the keeper.
import { computed, shallowRef } from "vue";
import { ApiProblem, toProblem } from "@/api/errors";
import { type Member, type SignedIn, STORAGE_KEY, TokenKeeper } from "./tokens";

async function postAuth(path: string, body: unknown): Promise<SignedIn> {
  let response: Response;
  try {
    response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
  } catch (error) {
    throw new ApiProblem(0, "network_error", String(error));
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) throw toProblem(response.status, data, response.headers.get("X-Request-ID"));
  if (!data || (data as { status?: string }).status !== "ok") throw new ApiProblem(response.status, "bad_request");
  return data as SignedIn;
}

export const keeper = new TokenKeeper(
  window.localStorage,
  (refresh_token) => postAuth("/api/v1/auth/refresh", { refresh_token }),
);

const member = shallowRef<Member | null>(keeper.current?.member ?? null);
keeper.onChange((t) => {
  member.value = t?.member ?? null;
});
window.addEventListener("storage", (event) => {
  if (event.key === null || event.key === STORAGE_KEY) keeper.reload(); // another tab signed in, refreshed or out
});

export type Role = "organiser" | "admin";

/** Org ids on which the member holds `role` (admin implies organiser: API.md §3). */
export function rootsWith(m: Member | null, role: Role): string[] {
  if (!m) return [];
  return m.roles.filter((r) => r.role === role || (role === "organiser" && r.role === "admin")).map((r) => r.org_id);
}

export function useSession() {
  return {
    member,
    signedIn: computed(() => member.value !== null),
    /** Whether the console is for them at all: organisers and admins only. */
    hasConsoleAccess: computed(() => rootsWith(member.value, "organiser").length > 0),
    isAdmin: computed(() => rootsWith(member.value, "admin").length > 0),
  };
}

export async function signIn(phone: string, password: string): Promise<Member> {
  const answer = await postAuth("/api/v1/auth/password", { phone, password });
  return keeper.signedIn(answer).member;
}

/** Revoke the refresh token on the server (best effort) and forget both tokens here. */
export async function signOut(): Promise<void> {
  const tokens = keeper.current;
  keeper.clear();
  if (!tokens) return;
  await fetch("/api/v1/auth/logout", {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${tokens.access_token}` },
    body: JSON.stringify({ refresh_token: tokens.refresh_token }),
  }).catch(() => undefined);
}

/** The member as the server knows them now (roles may have changed since sign-in). */
export function updateMember(m: Member): void {
  keeper.updateMember(m);
}
