// The signed-in console's tokens (API.md §3): kept in localStorage so that a reload stays signed in,
// refreshed in the background before the access token expires, and refreshed at most once at a time
// across every tab. Refresh tokens rotate and a rotated one presented again revokes the whole family
// (refresh_token_reused), so two tabs must never both spend the same one: a refresh takes a Web Lock,
// then re-reads storage, and if another tab has already rotated the pair it uses that pair instead.
import type { components } from "@/api/schema";

export type SignedIn = components["schemas"]["SignedInOut"];
export type Member = components["schemas"]["MemberOut"];

export interface Tokens {
  access_token: string;
  refresh_token: string;
  /** Milliseconds since the epoch, by this browser's clock, when the access token expires. */
  expires_at: number;
  member: Member;
}

export interface KeyValueStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** What a refresh call answers: a new pair, or the server's refusal (401: the session is over). */
export type RefreshCall = (refreshToken: string) => Promise<SignedIn>;

export const STORAGE_KEY = "branchline.console.tokens";
/** Refresh this long before expiry: a request started just before still carries a valid token. */
export const REFRESH_MARGIN_MS = 60_000;
/** After a refresh that failed on the network, try again this much later (the token may still be valid). */
export const RETRY_MS = 10_000;

export type Lock = <T>(name: string, work: () => Promise<T>) => Promise<T>;

/** navigator.locks where the browser has it (all current ones), else run directly (tests, old browsers). */
export const browserLock: Lock = (name, work) => {
  const locks = typeof navigator !== "undefined" ? navigator.locks : undefined;
  return locks ? (locks.request(name, () => work()) as Promise<Awaited<ReturnType<typeof work>>>) : work();
};

export class TokenKeeper {
  private tokens: Tokens | null;
  private inFlight: Promise<Tokens | null> | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private listeners = new Set<(t: Tokens | null) => void>();

  constructor(
    private readonly store: KeyValueStore,
    private readonly callRefresh: RefreshCall,
    private readonly now: () => number = Date.now,
    private readonly lock: Lock = browserLock,
  ) {
    this.tokens = this.read();
    this.schedule(); // after a reload, the stored pair is refreshed in the background as before
  }

  get current(): Tokens | null {
    return this.tokens;
  }

  /** Subscribe to sign-in, refresh and sign-out; returns the unsubscribe function. */
  onChange(listener: (t: Tokens | null) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Keep the pair a sign-in answered, and schedule its refresh. */
  signedIn(answer: SignedIn): Tokens {
    const tokens = this.fromAnswer(answer);
    this.set(tokens);
    return tokens;
  }

  /** The member as the server describes them now (GET /me: roles may have changed since sign-in). */
  updateMember(member: Member): void {
    if (this.tokens) this.set({ ...this.tokens, member });
  }

  /** Forget the tokens (sign-out, or the server ended the session). */
  clear(): void {
    this.set(null);
  }

  /** An access token valid for a few more seconds, refreshing first if it is about to expire. */
  async accessToken(): Promise<string | null> {
    const t = this.tokens;
    if (!t) return null;
    if (t.expires_at - this.now() > 5_000) return t.access_token;
    return (await this.refresh())?.access_token ?? null;
  }

  /**
   * Rotate the pair once, whoever asks (concurrent callers share one call). Answers the new tokens, or
   * null when the server refused the refresh token (the session is over: the tokens are cleared). A
   * network failure keeps the tokens and rethrows, so the caller can show the problem and retry.
   */
  refresh(): Promise<Tokens | null> {
    if (!this.inFlight) {
      const spent = this.tokens?.refresh_token ?? null;
      this.inFlight = this.lock(STORAGE_KEY, () => this.rotate(spent)).finally(() => {
        this.inFlight = null;
      });
    }
    return this.inFlight;
  }

  /** Another tab wrote the tokens (the `storage` event): take its pair, or its sign-out. */
  reload(): void {
    const stored = this.read();
    if (stored?.refresh_token === this.tokens?.refresh_token) return;
    this.tokens = stored;
    this.schedule();
    this.emit();
  }

  /** Stop the background refresh (the app is being torn down; tests). */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private async rotate(spent: string | null): Promise<Tokens | null> {
    const stored = this.read();
    if (stored && stored.refresh_token !== spent) {
      this.tokens = stored; // another tab rotated it while we waited for the lock
      this.schedule();
      this.emit();
      return stored;
    }
    if (!spent) return null;
    let answer: SignedIn;
    try {
      answer = await this.callRefresh(spent);
    } catch (error) {
      if (isRefusal(error)) {
        this.set(null);
        return null;
      }
      this.scheduleIn(RETRY_MS);
      throw error;
    }
    const tokens = this.fromAnswer(answer);
    this.set(tokens);
    return tokens;
  }

  private fromAnswer(answer: SignedIn): Tokens {
    return {
      access_token: answer.access_token,
      refresh_token: answer.refresh_token,
      expires_at: this.now() + answer.expires_in * 1000,
      member: answer.member,
    };
  }

  private set(tokens: Tokens | null): void {
    this.tokens = tokens;
    if (tokens) this.store.setItem(STORAGE_KEY, JSON.stringify(tokens));
    else this.store.removeItem(STORAGE_KEY);
    this.schedule();
    this.emit();
  }

  private schedule(): void {
    if (!this.tokens) return this.stop();
    // A margin before expiry; half the time left for short tokens, so that they are not refreshed at once.
    const left = this.tokens.expires_at - this.now();
    this.scheduleIn(Math.max(0, left - REFRESH_MARGIN_MS, left / 2));
  }

  private scheduleIn(ms: number): void {
    this.stop();
    this.timer = setTimeout(() => {
      this.timer = null;
      this.refresh().catch(() => undefined); // a network failure has scheduled its own retry
    }, ms);
  }

  private read(): Tokens | null {
    try {
      const raw = this.store.getItem(STORAGE_KEY);
      const t = raw ? (JSON.parse(raw) as Tokens) : null;
      return t && typeof t.access_token === "string" && typeof t.refresh_token === "string" &&
        typeof t.expires_at === "number" && t.member ? t : null;
    } catch {
      return null;
    }
  }

  private emit(): void {
    for (const listener of this.listeners) listener(this.tokens);
  }
}

/** A refusal of the refresh token itself (401/403/422 from the server), as opposed to a network failure. */
function isRefusal(error: unknown): boolean {
  const status = (error as { status?: unknown })?.status;
  return typeof status === "number" && status >= 400 && status < 500 && status !== 429;
}
