// A loop that runs a fetch again and again, for a page that stays open for hours (the projector):
// after a success it waits what the answer says (`delayAfter`), after a failure it backs off through
// `retryMs` (the last step repeats), and a fetch that hangs is aborted after `timeoutMs` and counts
// as a failure, so a dead connection cannot stall the loop. Pure: timers and the clock are injectable.

export interface RetryLoopOptions<T> {
  run: (signal: AbortSignal) => Promise<T>;
  /** Milliseconds to wait after a successful answer. */
  delayAfter: (answer: T) => number;
  onAnswer: (answer: T) => void;
  /** A run failed (`attempt` counts consecutive failures from 1); the loop retries by itself. */
  onError?: (error: unknown, attempt: number) => void;
  retryMs?: number[];
  timeoutMs?: number;
}

export const DEFAULT_RETRY_MS = [1000, 2000, 4000, 8000, 15000];
export const DEFAULT_TIMEOUT_MS = 10_000;
/** Never run again sooner than this: an answer asking for 0 ms must not make a busy loop. */
export const MIN_DELAY_MS = 250;

export interface RetryLoop {
  stop(): void;
  /** Run now, out of turn (the network came back, the page became visible); no-op while a run is on. */
  runNow(): void;
  /** Consecutive failures so far (0 when the last run succeeded). */
  readonly failures: number;
}

export function startRetryLoop<T>(options: RetryLoopOptions<T>): RetryLoop {
  const retries = options.retryMs ?? DEFAULT_RETRY_MS;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let running = false;
  let stopped = false;
  let failures = 0;
  let controller: AbortController | null = null;

  function schedule(ms: number): void {
    if (stopped) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => void tick(), Math.max(MIN_DELAY_MS, ms));
  }

  async function tick(): Promise<void> {
    timer = null;
    if (stopped || running) return;
    running = true;
    controller = new AbortController();
    const abort = controller;
    const watchdog = setTimeout(() => abort.abort(), timeoutMs);
    let answer: T;
    try {
      answer = await options.run(abort.signal);
    } catch (error) {
      clearTimeout(watchdog);
      running = false;
      if (stopped) return;
      failures += 1;
      options.onError?.(error, failures);
      schedule(retries[Math.min(failures - 1, retries.length - 1)]);
      return;
    }
    clearTimeout(watchdog);
    running = false;
    if (stopped) return;
    failures = 0;
    options.onAnswer(answer);
    schedule(options.delayAfter(answer));
  }

  void tick();
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
      controller?.abort();
    },
    runNow() {
      if (stopped || running) return;
      if (timer) clearTimeout(timer);
      void tick();
    },
    get failures() {
      return failures;
    },
  };
}
