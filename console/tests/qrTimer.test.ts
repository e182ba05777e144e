import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { DEFAULT_MARGIN_MS, type QrAnswer, startQrTimer } from "../src/lib/qrTimer";

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
});
