import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { DEFAULT_MARGIN_MS, type QrAnswer, startQrTimer } from "../src/lib/qrTimer";

const WINDOW = 15000;

/** A fake server: 15 s windows on the fake clock, the token naming its window (as server/qr.py does). */
function server(failAt: Set<number> = new Set()) {
  let calls = 0;
  const fetch = vi.fn(async (): Promise<QrAnswer> => {
    calls += 1;
    if (failAt.has(calls)) throw new TypeError("Failed to fetch");
    const t = Date.now();
    const window = Math.floor(t / 15000);
    return {
      token: `w${window}`,
      expires_at: new Date((window + 2) * 15000).toISOString(),
      refresh_in: Math.max(1, Math.ceil(((window + 1) * 15000 - t) / 1000)),
    };
  });
  return { fetch, calls: () => calls };
}

describe("QR refresh timer", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date("2026-12-01T10:00:07.000Z")); // 7 s into a window
  });
  afterEach(() => vi.useRealTimers());

  it("fetches at once, then just after each window boundary, never showing a token twice", async () => {
    const s = server();
    const shown: string[] = [];
    const timer = startQrTimer({ fetch: s.fetch, onToken: (a) => shown.push(a.token) });
    await vi.advanceTimersByTimeAsync(0);
    expect(shown).toHaveLength(1);
    // the window ends 8 s later: nothing before it, a new token right after (+ the margin)
    await vi.advanceTimersByTimeAsync(8000 - 1);
    expect(s.calls()).toBe(1);
    await vi.advanceTimersByTimeAsync(1 + DEFAULT_MARGIN_MS);
    expect(s.calls()).toBe(2);
    expect(shown).toHaveLength(2);
    expect(shown[1]).not.toBe(shown[0]);
    // an hour on: one fetch per 15 s window, each a new token
    await vi.advanceTimersByTimeAsync(3600_000);
    expect(shown.length).toBeGreaterThanOrEqual(2 + 239);
    expect(new Set(shown).size).toBe(shown.length);
    expect(s.calls()).toBeLessThanOrEqual(shown.length + 1);
    timer.stop();
  });

  it("retries soon after a network error and says when the shown token expired", async () => {
    const s = server(new Set([2, 3, 4, 5, 6, 7, 8])); // calls at 8.3, 9.3, 11.3, 14.3, 19.3, 24.3, 29.3 s fail
    const errors: number[] = [];
    let stale = 0;
    const shown: string[] = [];
    const timer = startQrTimer({
      fetch: s.fetch, onToken: (a) => shown.push(a.token),
      onError: (_e, attempt) => errors.push(attempt), onStale: () => (stale += 1),
    });
    await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(8000 + DEFAULT_MARGIN_MS); // first refresh fails
    expect(errors).toEqual([1]);
    await vi.advanceTimersByTimeAsync(1000); // retried a second later
    expect(errors).toEqual([1, 2]);
    // the token shown since 10:00:07 expires at 10:00:30, while the failures go on
    expect(stale).toBe(0);
    await vi.advanceTimersByTimeAsync(21_000);
    expect(errors).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(stale).toBe(1);
    // the network is back for the next retry (5 s later): a fresh token
    const before = shown.length;
    await vi.advanceTimersByTimeAsync(5000);
    expect(shown.length).toBe(before + 1);
    timer.stop();
  });

  it("stops fetching when stopped, and fetches at once on refreshNow", async () => {
    const s = server();
    const timer = startQrTimer({ fetch: s.fetch, onToken: () => undefined });
    await vi.advanceTimersByTimeAsync(0);
    timer.refreshNow();
    await vi.advanceTimersByTimeAsync(0);
    expect(s.calls()).toBe(2);
    timer.stop();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(s.calls()).toBe(2);
  });
  it("does not announce the same token twice (asked inside the same window)", async () => {
    const answers: QrAnswer[] = [
      { token: "a", refresh_in: 1, expires_at: "" }, { token: "a", refresh_in: 1, expires_at: "" },
      { token: "b", refresh_in: 15, expires_at: "" }];
    const shown: string[] = [];
    const timer = startQrTimer({ fetch: async () => answers.shift()!, onToken: (a) => shown.push(a.token) });
    await vi.advanceTimersByTimeAsync(3000);
    expect(shown).toEqual(["a", "b"]);
    timer.stop();
  });

  it("counts the shown token's life on this browser's clock, not by its expires_at", async () => {
    // The browser's clock is an hour fast: by it, expires_at is long past. The token is still good
    // for refresh_in plus one window after the answer, and only then called stale.
    let first = true;
    const fetch = vi.fn(async (): Promise<QrAnswer> => {
      if (!first) throw new TypeError("Failed to fetch");
      first = false;
      return { token: "a", refresh_in: 5, expires_at: new Date(Date.now() - 3600_000).toISOString() };
    });
    let stale = 0;
    const timer = startQrTimer({ fetch, onToken: () => undefined, onStale: () => (stale += 1) });
    await vi.advanceTimersByTimeAsync(5000 + WINDOW - 1);
    expect(fetch.mock.calls.length).toBeGreaterThan(3); // failing all along
    expect(stale).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(stale).toBe(1);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(stale).toBe(1); // once per token
    timer.stop();
  });

  it("aborts a fetch that hangs, counts it as a failure and retries", async () => {
    const signals: AbortSignal[] = [];
    const fetch = vi.fn((signal: AbortSignal) => {
      signals.push(signal);
      return new Promise<QrAnswer>((_resolve, reject) =>
        signal.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError"))));
    });
    const errors: number[] = [];
    const timer = startQrTimer({ fetch, onToken: () => undefined, onError: (_e, n) => errors.push(n), timeoutMs: 5000 });
    await vi.advanceTimersByTimeAsync(5000 - 1);
    expect(signals[0].aborted).toBe(false);
    expect(errors).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(signals[0].aborted).toBe(true);
    expect(errors).toEqual([1]);
    await vi.advanceTimersByTimeAsync(1000); // the first retry
    expect(fetch).toHaveBeenCalledTimes(2);
    timer.stop();
    expect(signals[1].aborted).toBe(true); // stop aborts the fetch on the way
  });

  it("refreshNow does not start a second fetch while one is on the way", async () => {
    let answer: (a: QrAnswer) => void = () => undefined;
    const fetch = vi.fn(() => new Promise<QrAnswer>((resolve) => { answer = resolve; }));
    const shown: string[] = [];
    const timer = startQrTimer({ fetch, onToken: (a) => shown.push(a.token) });
    await vi.advanceTimersByTimeAsync(0);
    timer.refreshNow();
    timer.refreshNow();
    await vi.advanceTimersByTimeAsync(0);
    expect(fetch).toHaveBeenCalledTimes(1);
    answer({ token: "a", refresh_in: 15, expires_at: "" });
    await vi.advanceTimersByTimeAsync(0);
    expect(shown).toEqual(["a"]);
    timer.stop();
  });
});
