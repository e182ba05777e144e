// The projector's retry loop (src/views/projector/retryLoop.ts, the title and the live counts): how it
// backs off after failures, resets after a success, and runs at once when asked. Fake timers, no network.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { startRetryLoop } from "@/views/projector/retryLoop";

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(new Date("2026-12-01T08:00:00Z"));
});
afterEach(() => vi.useRealTimers());

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

  it("aborts a run that hangs and counts it as a failure", async () => {
    let signal: AbortSignal | null = null;
    const run = vi.fn((s: AbortSignal) => {
      signal = s;
      return new Promise<number>((_resolve, reject) => s.addEventListener("abort", () => reject(new Error("aborted"))));
    });
    const onError = vi.fn();
    const loop = startRetryLoop({ run, delayAfter: () => 2000, onAnswer: () => undefined, onError, timeoutMs: 5000 });
    await vi.advanceTimersByTimeAsync(5000);
    expect(signal!.aborted).toBe(true);
    expect(onError).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1000);
    expect(run).toHaveBeenCalledTimes(2);
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
