// The projector's rotating QR (console issue item 5), on the retry loop: fetch the current token, show
// it, fetch the next one a little after the server's next window starts (`refresh_in`, whole seconds),
// and on failure keep showing the last token while it is still accepted. The server accepts a token
// for its own window and the next one (server/qr.py, API.md §5: "the previous token stays valid for one
// more window"), so a token shown at t with refresh_in r stays good until t + r + one window. That is
// measured on this browser's clock from the moment of the answer, never by comparing `expires_at` with
// it, so a browser clock that is off does not matter. (The foundation's src/lib/qrTimer.ts was not on
// this branch yet; this module is the projector's own.)
import { type RetryLoop, startRetryLoop } from "./retryLoop";

export interface QrAnswer {
  token: string;
  expires_at: string;
  /** Seconds until the next token exists. */
  refresh_in: number;
}

export interface QrTimerOptions<T extends QrAnswer> {
  fetch: (signal: AbortSignal) => Promise<T>;
  /** A new token to show (also the first one). */
  onToken: (answer: T) => void;
  onError?: (error: unknown, attempt: number) => void;
  /** The token on screen is no longer accepted and no new one came yet; `onToken` ends it. */
  onStale?: () => void;
  /** Fetch this long after the window boundary, so the server is surely in the next window. */
  marginMs?: number;
  /** How long a window lasts (server/qr.py WINDOW_SECONDS). */
  windowMs?: number;
  retryMs?: number[];
  timeoutMs?: number;
  now?: () => number;
}

export const DEFAULT_MARGIN_MS = 300;
export const DEFAULT_WINDOW_MS = 15_000;
/** While the shown token is still good, retry this often; the loop's backoff takes over after. */
export const QR_RETRY_MS = [1000, 2000, 3000, 5000, 8000];

export interface QrTimer {
  stop(): void;
  refreshNow(): void;
}

export function startQrTimer<T extends QrAnswer>(options: QrTimerOptions<T>): QrTimer {
  const margin = options.marginMs ?? DEFAULT_MARGIN_MS;
  const windowMs = options.windowMs ?? DEFAULT_WINDOW_MS;
  const now = options.now ?? Date.now;
  let shownToken: string | null = null;
  let staleTimer: ReturnType<typeof setTimeout> | null = null;

  function watchExpiry(answer: T): void {
    if (staleTimer) clearTimeout(staleTimer);
    const goodFor = answer.refresh_in * 1000 + windowMs;
    const since = now();
    staleTimer = setTimeout(() => {
      staleTimer = null;
      if (now() - since >= goodFor - 50) options.onStale?.();
    }, goodFor);
  }

  const loop: RetryLoop = startRetryLoop<T>({
    run: options.fetch,
    delayAfter: (answer) => answer.refresh_in * 1000 + margin,
    onAnswer(answer) {
      if (answer.token === shownToken) return; // asked a little early: same window, nothing to change
      shownToken = answer.token;
      watchExpiry(answer);
      options.onToken(answer);
    },
    onError: options.onError,
    retryMs: options.retryMs ?? QR_RETRY_MS,
    timeoutMs: options.timeoutMs,
  });

  return {
    stop() {
      loop.stop();
      if (staleTimer) clearTimeout(staleTimer);
      staleTimer = null;
    },
    refreshNow: () => loop.runNow(),
  };
}
