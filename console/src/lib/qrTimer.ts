// The projector's rotating QR (console issue item 5): fetch the current token, show it, and fetch the
// next one when the server says the next window starts (`refresh_in`, whole seconds rounded up), a
// little after, so the answer is the new token. The shown token stays valid for one more window
// (server/qr.py: 15 s windows, the previous one accepted), which is the time a network blip may take:
// a failed fetch is retried quickly with backoff, and `onStale` says when the shown token has expired.

export interface QrAnswer {
  token: string;
  /** RFC 3339: when the token stops being accepted. */
  expires_at: string;
  /** Seconds until the next token exists. */
  refresh_in: number;
}

export interface QrTimerOptions<T extends QrAnswer> {
  fetch: () => Promise<T>;
  onToken: (answer: T) => void;
  /** A fetch failed; the timer retries by itself (`attempt` counts from 1). */
  onError?: (error: unknown, attempt: number) => void;
  /** The token on screen has expired and no new one could be fetched yet (show a warning). */
  onStale?: () => void;
  /** Fetch this long after the window boundary, so the server is surely in the new window. */
  marginMs?: number;
  /** Waits before each retry after a failure; the last one repeats. */
  retryMs?: number[];
  now?: () => number;
}

export const DEFAULT_MARGIN_MS = 300;
export const DEFAULT_RETRY_MS = [1000, 2000, 3000, 5000];
/** Never fetch again sooner than this (a server answering refresh_in 0 must not make a busy loop). */
export const MIN_DELAY_MS = 500;

export interface QrTimer {
  /** Stop fetching (the page is left). */
  stop(): void;
  /** Fetch now, out of turn (after the access token was renewed, or the network came back). */
  refreshNow(): void;
}

export function startQrTimer<T extends QrAnswer>(options: QrTimerOptions<T>): QrTimer {
  const margin = options.marginMs ?? DEFAULT_MARGIN_MS;
  const retries = options.retryMs ?? DEFAULT_RETRY_MS;
  const now = options.now ?? Date.now;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let stopped = false;
  let failures = 0;
  let shown: T | null = null;
  let staleSignalled = false;

  function schedule(ms: number): void {
    if (stopped) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(tick, Math.max(MIN_DELAY_MS, ms));
  }

  async function tick(): Promise<void> {
    timer = null;
    if (stopped) return;
    let answer: T;
    try {
      answer = await options.fetch();
    } catch (error) {
      if (stopped) return;
      failures += 1;
      options.onError?.(error, failures);
      if (shown && !staleSignalled && Date.parse(shown.expires_at) <= now()) {
        staleSignalled = true;
        options.onStale?.();
      }
      schedule(retries[Math.min(failures - 1, retries.length - 1)]);
      return;
    }
    if (stopped) return;
    failures = 0;
    staleSignalled = false;
    if (answer.token !== shown?.token) {
      shown = answer;
      options.onToken(answer);
    }
    schedule(answer.refresh_in * 1000 + margin);
  }

  schedule(0);
  // The first fetch should not wait MIN_DELAY_MS.
  if (timer) clearTimeout(timer);
  timer = setTimeout(tick, 0);

  return {
    stop(): void {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
    },
    refreshNow(): void {
      if (stopped) return;
      if (timer) clearTimeout(timer);
      timer = setTimeout(tick, 0);
    },
  };
}
