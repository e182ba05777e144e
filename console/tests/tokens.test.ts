import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiProblem } from "../src/api/errors";
import { createClient } from "../src/api/http";
import { type KeyValueStore, REFRESH_MARGIN_MS, RETRY_MS, type SignedIn, STORAGE_KEY, TokenKeeper }
  from "../src/auth/tokens";

class MemoryStore implements KeyValueStore {
  data = new Map<string, string>();
  getItem(k: string) { return this.data.get(k) ?? null; }
  setItem(k: string, v: string) { this.data.set(k, v); }
  removeItem(k: string) { this.data.delete(k); }
}

const member = { id: "m1", name: "张书记", phone_masked: "138****0000", org_id: "o1", gender: "male",
  birth_date: "1980-01-01", party_status: "full", tags: [], roles: [{ role: "organiser", org_id: "o1" }],
  active: true, anonymised: false } as unknown as SignedIn["member"];

function pair(n: number, expiresIn = 900): SignedIn {
  return { status: "ok", access_token: `a${n}`, refresh_token: `r${n}`, expires_in: expiresIn, token_type: "Bearer",
    member };
}

describe("TokenKeeper", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("keeps the pair across a reload and refreshes it in the background before expiry", async () => {
    const store = new MemoryStore();
    let n = 1;
    const refresh = vi.fn(async (token: string) => {
      expect(token).toBe(`r${n}`);
      n += 1;
      return pair(n);
    });
    const first = new TokenKeeper(store, refresh);
    first.signedIn(pair(1));
    first.stop();
    const reloaded = new TokenKeeper(store, refresh); // a reload: the same storage, a new keeper
    expect(reloaded.current?.access_token).toBe("a1");
    await vi.advanceTimersByTimeAsync(900_000 - REFRESH_MARGIN_MS - 1);
    expect(refresh).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(refresh).toHaveBeenCalledTimes(1);
    expect(reloaded.current?.access_token).toBe("a2");
    expect(JSON.parse(store.getItem(STORAGE_KEY)!).refresh_token).toBe("r2");
    // and again for the new pair
    await vi.advanceTimersByTimeAsync(900_000);
    expect(refresh).toHaveBeenCalledTimes(2);
    expect(reloaded.current?.refresh_token).toBe("r3");
    reloaded.stop();
  });

  it("spends a refresh token once however many callers ask at the same time", async () => {
    let release!: (p: SignedIn) => void;
    const refresh = vi.fn(() => new Promise<SignedIn>((resolve) => { release = resolve; }));
    const keeper = new TokenKeeper(new MemoryStore(), refresh);
    keeper.signedIn(pair(1));
    const calls = [keeper.refresh(), keeper.refresh(), keeper.refresh()];
    await vi.advanceTimersByTimeAsync(0);
    release(pair(2));
    const answers = await Promise.all(calls);
    expect(refresh).toHaveBeenCalledTimes(1);
    expect(answers.map((t) => t?.access_token)).toEqual(["a2", "a2", "a2"]);
    keeper.stop();
  });

  it("forgets the tokens when the server refuses the refresh token", async () => {
    const refresh = vi.fn(async () => { throw new ApiProblem(401, "refresh_token_reused"); });
    const keeper = new TokenKeeper(new MemoryStore(), refresh);
    const seen: (string | null)[] = [];
    keeper.onChange((t) => seen.push(t?.access_token ?? null));
    keeper.signedIn(pair(1));
    expect(await keeper.refresh()).toBeNull();
    expect(keeper.current).toBeNull();
    expect(seen).toEqual(["a1", null]);
  });

  it("keeps the tokens after a network failure and tries again later", async () => {
    let fail = true;
    const refresh = vi.fn(async () => {
      if (fail) throw new ApiProblem(0, "network_error");
      return pair(2);
    });
    const keeper = new TokenKeeper(new MemoryStore(), refresh);
    keeper.signedIn(pair(1));
    await expect(keeper.refresh()).rejects.toBeInstanceOf(ApiProblem);
    expect(keeper.current?.access_token).toBe("a1");
    fail = false;
    await vi.advanceTimersByTimeAsync(RETRY_MS);
    expect(refresh).toHaveBeenCalledTimes(2);
    expect(keeper.current?.access_token).toBe("a2");
    keeper.stop();
  });

  it("takes the pair another tab already rotated instead of spending the old refresh token", async () => {
    const store = new MemoryStore();
    const refresh = vi.fn(async () => pair(99));
    const thisTab = new TokenKeeper(store, refresh);
    thisTab.signedIn(pair(1));
    const otherTab = new TokenKeeper(store, async () => pair(2));
    await otherTab.refresh();
    otherTab.stop();
    const answer = await thisTab.refresh();
    expect(refresh).not.toHaveBeenCalled();
    expect(answer?.refresh_token).toBe("r2");
    thisTab.stop();
  });

  it("refreshes first when the access token is about to expire", async () => {
    const refresh = vi.fn(async () => pair(2));
    const keeper = new TokenKeeper(new MemoryStore(), refresh);
    keeper.signedIn(pair(1, 3)); // 3 s left
    expect(await keeper.accessToken()).toBe("a2");
    keeper.stop();
  });
});

describe("API client and 401", () => {
  function json(status: number, body: unknown) {
    return new Response(JSON.stringify(body), {
      status, headers: { "Content-Type": status >= 400 ? "application/problem+json" : "application/json" },
    });
  }
  const problem = (status: number, code: string) => ({ type: "about:blank", title: "", status, detail: "", code });

  it("refreshes once on a 401 and repeats the request with the new token and the same Idempotency-Key", async () => {
    const keeper = new TokenKeeper(new MemoryStore(), async () => pair(2));
    keeper.signedIn(pair(1));
    const seen: { auth: string | null; key: string | null }[] = [];
    const fetch = vi.fn(async (_url: RequestInfo | URL, init?: RequestInit) => {
      const h = new Headers(init?.headers);
      seen.push({ auth: h.get("Authorization"), key: h.get("Idempotency-Key") });
      return seen.length === 1 ? json(401, problem(401, "unauthenticated")) : json(201, { id: "x" });
    });
    const signedOut = vi.fn();
    const client = createClient({ keeper, fetch, onSignedOut: signedOut, newKey: () => "k-1" });
    const made = await client.request("post", "/api/v1/orgs", { body: { name: "支部" } });
    expect(made).toEqual({ id: "x" });
    expect(seen).toEqual([{ auth: "Bearer a1", key: "k-1" }, { auth: "Bearer a2", key: "k-1" }]);
    expect(signedOut).not.toHaveBeenCalled();
    keeper.stop();
  });

  it("signs out when the server still answers 401 after the refresh", async () => {
    const keeper = new TokenKeeper(new MemoryStore(), async () => pair(2));
    keeper.signedIn(pair(1));
    const fetch = vi.fn(async () => json(401, problem(401, "unauthenticated")));
    const signedOut = vi.fn();
    const client = createClient({ keeper, fetch, onSignedOut: signedOut });
    await expect(client.request("get", "/api/v1/me")).rejects.toMatchObject({ status: 401, code: "unauthenticated" });
    expect(fetch).toHaveBeenCalledTimes(2);
    expect(signedOut).toHaveBeenCalledTimes(1);
    expect(keeper.current).toBeNull();
  });

  it("stays signed in when the refresh after a 401 fails on the network", async () => {
    const keeper = new TokenKeeper(new MemoryStore(), async () => { throw new ApiProblem(0, "network_error"); });
    keeper.signedIn(pair(1));
    const signedOut = vi.fn();
    const client = createClient({ keeper, fetch: async () => json(401, problem(401, "unauthenticated")),
      onSignedOut: signedOut });
    await expect(client.request("get", "/api/v1/me")).rejects.toMatchObject({ code: "network_error" });
    expect(signedOut).not.toHaveBeenCalled();
    expect(keeper.current?.refresh_token).toBe("r1");
    keeper.stop();
  });

  it("throws problems as ApiProblem and a failed fetch as network_error", async () => {
    const keeper = new TokenKeeper(new MemoryStore(), async () => pair(2));
    keeper.signedIn(pair(1));
    const refused = createClient({ keeper, fetch: async () => json(409, problem(409, "activity_full")) });
    await expect(refused.request("post", "/api/v1/activities/{activity_id}/signups",
      { path: { activity_id: "a b" } })).rejects.toMatchObject({ status: 409, code: "activity_full" });
    const offline = createClient({ keeper, fetch: async () => { throw new TypeError("Failed to fetch"); } });
    await expect(offline.request("get", "/api/v1/me")).rejects.toMatchObject({ status: 0, code: "network_error" });
    keeper.stop();
  });
});
