// The projector's QR timer and retry loop (src/views/projector/): when they fetch, what they show, how
// they back off after failures and when they call the shown QR stale. Fake timers, no network.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type QrAnswer, startQrTimer } from "@/views/projector/qrTimer";
import { startRetryLoop } from "@/views/projector/retryLoop";

function answer(token: string, refresh_in: number): QrAnswer {
  return { token, refresh_in, expires_at: "2026-12-01T00:00:30Z" };
}

/** A fetch whose answers the test scripts: a QrAnswer, or an Error to throw. */
function scripted(steps: (QrAnswer | Error)[]) {
  const calls: number[] = [];
  const fn = vi.fn(async () => {
    calls.push(Date.now());
    const next = steps.shift();
    if (!next) throw new Error("no more answers scripted");
    if (next instanceof Error) throw next;
    return next;
  });
  return { fn, calls };
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(new Date("2026-12-01T08:00:00Z"));
});
afterEach(() => vi.useRealTimers());

describe("startQrTimer", () => {
  it("shows the first token at once and fetches the next just after refresh_in", async () => {
    const { fn, calls } = scripted([answer("a", 4), answer("b", 15), answer("c", 15)]);
    const shown: string[] = [];
    const timer = startQrTimer({ fetch: fn, onToken: (a) => shown.push(a.token) });
    await vi.advanceTimersByTimeAsync(0);
    expect(shown).toEqual(["a"]);
    await vi.advanceTimersByTimeAsync(4000); // refresh_in, not yet the margin
    expect(shown).toEqual(["a"]);
    await vi.advanceTimersByTimeAsync(300);
    expect(shown).toEqual(["a", "b"]);
    await vi.advanceTimersByTimeAsync(15_300);
    expect(shown).toEqual(["a", "b", "c"]);
    expect(calls[1] - calls[0]).toBe(4300);
    timer.stop();
  });

  it("does not announce the same token twice (asked inside the same window)", async () => {
    const { fn } = scripted([answer("a", 1), answer("a", 1), answer("b", 15)]);
    const shown: string[] = [];
    const timer = startQrTimer({ fetch: fn, onToken: (a) => shown.push(a.token) });
    await vi.advanceTimersByTimeAsync(3000);
    expect(shown).toEqual(["a", "b"]);
    timer.stop();
  });

  it("keeps the last token through a blip, retries with backoff, and heals without a stale signal", async () => {
    const down = new Error("network");
    const { fn, calls } = scripted([answer("a", 2), down, down, answer("b", 15)]);
    const shown: string[] = [];
    const errors: number[] = [];
    const onStale = vi.fn();
    const timer = startQrTimer({ fetch: fn, onToken: (a) => shown.push(a.token), onStale,
      onError: (_e, attempt) => errors.push(attempt) });
    await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(2300); // first failure
    expect(errors).toEqual([1]);
    await vi.advanceTimersByTimeAsync(1000); // retry after 1 s: fails again
    expect(errors).toEqual([1, 2]);
    await vi.advanceTimersByTimeAsync(2000); // then after 2 s: answers
    expect(shown).toEqual(["a", "b"]);
    expect(calls.slice(1).map((t) => t - calls[0])).toEqual([2300, 3300, 5300]);
    expect(onStale).not.toHaveBeenCalled();
    timer.stop();
  });

  it("calls the shown token stale once it is past its window and the next, not before", async () => {
    const down = new Error("network");
    const { fn } = scripted([answer("a", 5), ...Array(30).fill(down)]);
    const onStale = vi.fn();
    const timer = startQrTimer({ fetch: fn, onToken: () => undefined, onStale });
    await vi.advanceTimersByTimeAsync(5000 + 15_000 - 1);
    expect(onStale).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(onStale).toHaveBeenCalledTimes(1);
    timer.stop();
  });

  it("aborts a fetch that hangs and counts it as a failure", async () => {
    let signal: AbortSignal | null = null;
    const fetch = vi.fn((s: AbortSignal) => {
      signal = s;
      return new Promise<QrAnswer>((_resolve, reject) => s.addEventListener("abort", () => reject(new Error("aborted"))));
    });
    const onError = vi.fn();
    const timer = startQrTimer({ fetch, onToken: () => undefined, onError, timeoutMs: 5000 });
    await vi.advanceTimersByTimeAsync(5000);
    expect(signal!.aborted).toBe(true);
    expect(onError).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1000);
    expect(fetch).toHaveBeenCalledTimes(2);
    timer.stop();
  });

  it("stops: no fetch after stop, even one that was scheduled", async () => {
    const { fn } = scripted([answer("a", 1), answer("b", 15)]);
    const timer = startQrTimer({ fetch: fn, onToken: () => undefined });
    await vi.advanceTimersByTimeAsync(0);
    timer.stop();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(fn).toHaveBeenCalledTimes(1);
  });
});

describe("startRetryLoop", () => {
  it("backs off through the steps, repeating the last, and resets after a success", async () => {
    let fail = 5;
    const calls: number[] = [];
    const loop = startRetryLoop({
      run: async () => {
        calls.push(Date.now());
        if (fail-- > 0) throw new Error("down");
        return 1;
      },
      delayAfter: () => 2000, onAnswer: () => undefined, retryMs: [1000, 2000, 4000],
    });
    await vi.advanceTimersByTimeAsync(1000 + 2000 + 4000 + 4000 + 4000);
    const gaps = calls.slice(1).map((t, i) => t - calls[i]);
    expect(gaps).toEqual([1000, 2000, 4000, 4000, 4000]);
    expect(loop.failures).toBe(0);
    await vi.advanceTimersByTimeAsync(2000);
    expect(calls.length).toBe(7);
    loop.stop();
  });

  it("runNow runs at once instead of waiting for the backoff", async () => {
    const run = vi.fn().mockRejectedValueOnce(new Error("down")).mockResolvedValue(1);
    const onAnswer = vi.fn();
    const loop = startRetryLoop({ run, delayAfter: () => 60_000, onAnswer, retryMs: [30_000] });
    await vi.advanceTimersByTimeAsync(0);
    expect(onAnswer).not.toHaveBeenCalled();
    loop.runNow();
    await vi.advanceTimersByTimeAsync(0);
    expect(onAnswer).toHaveBeenCalledWith(1);
    loop.stop();
  });
});
