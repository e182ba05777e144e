// The projector's rotating QR (console issue item 5): fetch the current token, show it, and fetch the
// next one when the server says the next window starts (`refresh_in`, whole seconds rounded up), a
// little after, so the answer is the new token. The shown token stays valid for one more window
// (server/qr.py: 15 s windows, the previous one accepted), which is the time a network blip may take:
// a failed fetch is retried quickly with backoff, a fetch that hangs is aborted and counts as a
// failure, and `onStale` says when the shown token is no longer accepted. That moment is counted on
// this browser's clock from the answer (refresh_in plus one window), never by comparing `expires_at`
// with the browser's clock, so a browser clock that is off does not matter.

export interface QrAnswer {
  token: string;
  /** RFC 3339: when the token stops being accepted. */
  expires_at: string;
  /** Seconds until the next token exists. */
  refresh_in: number;
}

export interface QrTimerOptions<T extends QrAnswer> {
  /** Fetch the current token; `signal` aborts it (it hung past `timeoutMs`, or the timer stopped). */
  fetch: (signal: AbortSignal) => Promise<T>;
  /** A new token to show (also the first one); never called twice for the same token. */
  onToken: (answer: T) => void;
  /** A fetch failed; the timer retries by itself (`attempt` counts from 1). */
  onError?: (error: unknown, attempt: number) => void;
  /** The token on screen is no longer accepted and no new one came yet (show a warning); `onToken` ends it. */
  onStale?: () => void;
  /** Fetch this long after the window boundary, so the server is surely in the new window. */
  marginMs?: number;
  /** Waits before each retry after a failure; the last one repeats. */
  retryMs?: number[];
  /** Abort a fetch that has not answered after this long. */
  timeoutMs?: number;
  /** How long a window lasts (server/qr.py WINDOW_SECONDS): the shown token's grace after refresh_in. */
  windowMs?: number;
}

export const DEFAULT_MARGIN_MS = 300;
export const DEFAULT_RETRY_MS = [1000, 2000, 3000, 5000];
export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_WINDOW_MS = 15_000;
/** Never fetch again sooner than this (a server answering refresh_in 0 must not make a busy loop). */
export const MIN_DELAY_MS = 500;

export interface QrTimer {
  /** Stop fetching (the page is left); a fetch on the way is aborted. */
  stop(): void;
  /** Fetch now, out of turn (the network came back, the screen woke up); no-op while a fetch is on. */
  refreshNow(): void;
}

export function startQrTimer<T extends QrAnswer>(options: QrTimerOptions<T>): QrTimer {
  const margin = options.marginMs ?? DEFAULT_MARGIN_MS;
  const retries = options.retryMs ?? DEFAULT_RETRY_MS;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const windowMs = options.windowMs ?? DEFAULT_WINDOW_MS;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let staleTimer: ReturnType<typeof setTimeout> | null = null;
  let controller: AbortController | null = null;
  let stopped = false;
  let failures = 0;
  let shownToken: string | null = null;

  function schedule(ms: number): void {
    if (stopped) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => void tick(), Math.max(MIN_DELAY_MS, ms));
  }

  function watchExpiry(answer: T): void {
    if (staleTimer) clearTimeout(staleTimer);
    staleTimer = setTimeout(() => {
      staleTimer = null;
      if (!stopped) options.onStale?.();
    }, answer.refresh_in * 1000 + windowMs);
  }

  async function tick(): Promise<void> {
    timer = null;
    if (stopped || controller) return;
    const abort = new AbortController();
    controller = abort;
    const watchdog = setTimeout(() => abort.abort(), timeoutMs);
    let answer: T;
    try {
      answer = await options.fetch(abort.signal);
    } catch (error) {
      if (stopped) return;
      failures += 1;
      options.onError?.(error, failures);
      schedule(retries[Math.min(failures - 1, retries.length - 1)]);
      return;
    } finally {
      clearTimeout(watchdog);
      controller = null;
    }
    if (stopped) return;
    failures = 0;
    if (answer.token !== shownToken) { // else asked a little early: same window, nothing to change
      shownToken = answer.token;
      watchExpiry(answer);
      options.onToken(answer);
    }
    schedule(answer.refresh_in * 1000 + margin);
  }

  // The first fetch does not wait MIN_DELAY_MS.
  timer = setTimeout(() => void tick(), 0);

  return {
    stop(): void {
      stopped = true;
      if (timer) clearTimeout(timer);
      if (staleTimer) clearTimeout(staleTimer);
      timer = staleTimer = null;
      controller?.abort();
    },
    refreshNow(): void {
      if (stopped || controller) return;
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => void tick(), 0);
    },
  };
}
