// The projector page's data (console issue item 5), for a study session or an activity: what is shown
// (title and time), the rotating QR (token from /qr, picture from /qr/image, both with the bearer
// token), and live counts with the latest arrivals, polled every 2 s. Each runs in its own retry loop,
// so a network blip shows a quiet "reconnecting" and heals by itself; the API client refreshes an
// expired access token on the 401 it gets. A refusal that retrying cannot mend (cancelled, not found,
// no right) stops everything and says why.
import { computed, onBeforeUnmount, ref, shallowRef } from "vue";
import { api } from "@/api/client";
import { ApiProblem } from "@/api/errors";
import type { Schemas } from "@/api/types";
import { type RetryLoop, startRetryLoop } from "@/views/projector/retryLoop";
import { type QrTimer, startQrTimer } from "@/lib/qrTimer";

export type ProjectorKind = "session" | "activity";

export interface Subject {
  title: string;
  startsAt: string;
  endsAt: string;
  place: string | null;
}

export interface Arrival {
  memberId: string;
  name: string;
  at: string;
  late: boolean;
}

export interface LiveCounts {
  checkedIn: number;
  late: number;
  leave: number;
  expected: number;
  latest: Arrival[];
}

export interface ShownQr {
  token: string;
  payload: string;
  expires_at: string;
  refresh_in: number;
  /** An object URL of the SVG the API rendered for this token. */
  url: string;
}

export const COUNTS_EVERY_MS = 2000;
const SUBJECT_EVERY_MS = 5 * 60_000;
const LATEST = 8;

type QrOut = Schemas["QrOut"];

function byArrival(a: Arrival, b: Arrival): number {
  return Date.parse(b.at) - Date.parse(a.at);
}

async function loadSubject(kind: ProjectorKind, id: string, signal: AbortSignal): Promise<Subject> {
  if (kind === "session") {
    const s = await api.get("/api/v1/study/sessions/{session_id}", { path: { session_id: id }, signal });
    return { title: s.title, startsAt: s.starts_at, endsAt: s.ends_at, place: s.location?.name ?? null };
  }
  const a = await api.get("/api/v1/activities/{activity_id}", { path: { activity_id: id }, signal });
  return { title: a.title, startsAt: a.starts_at, endsAt: a.ends_at, place: a.location ?? null };
}

async function loadCounts(kind: ProjectorKind, id: string, signal: AbortSignal): Promise<LiveCounts> {
  if (kind === "session") {
    const r = await api.get("/api/v1/study/sessions/{session_id}/attendance", { path: { session_id: id }, signal });
    const came = [...r.present, ...r.late].filter((e) => e.checked_in_at)
      .map((e) => ({ memberId: e.member_id, name: e.name, at: e.checked_in_at!, late: e.status === "late" }));
    return {
      checkedIn: r.counts.present + r.counts.late, late: r.counts.late, leave: r.counts.leave,
      expected: r.counts.present + r.counts.late + r.counts.leave + r.counts.absent,
      latest: came.sort(byArrival).slice(0, LATEST),
    };
  }
  const r = await api.get("/api/v1/activities/{activity_id}/signups",
    { path: { activity_id: id }, query: { format: "json" }, signal });
  const came = r.confirmed.filter((e) => e.checked_in_at)
    .map((e) => ({ memberId: e.member_id, name: e.name, at: e.checked_in_at!, late: false }));
  return {
    checkedIn: r.counts.present, late: 0, leave: 0, expected: r.counts.confirmed,
    latest: came.sort(byArrival).slice(0, LATEST),
  };
}

function qrToken(kind: ProjectorKind, id: string, signal: AbortSignal): Promise<QrOut> {
  return kind === "session"
    ? api.get("/api/v1/study/sessions/{session_id}/qr", { path: { session_id: id }, signal })
    : api.get("/api/v1/activities/{activity_id}/qr", { path: { activity_id: id }, signal });
}

// The API's default picture, a standalone SVG document: sharp at any size on a projector.
function qrImage(kind: ProjectorKind, id: string, signal: AbortSignal): Promise<Blob> {
  return kind === "session"
    ? api.blob("/api/v1/study/sessions/{session_id}/qr/image", { path: { session_id: id }, query: { format: "svg" }, signal })
    : api.blob("/api/v1/activities/{activity_id}/qr/image", { path: { activity_id: id }, query: { format: "svg" }, signal });
}

/** A refusal that retrying will not mend: the page says why and stops asking. */
function isFinal(error: unknown): error is ApiProblem {
  return error instanceof ApiProblem && [403, 404, 409, 422].includes(error.status);
}

export function useProjector(kind: ProjectorKind, id: string) {
  const subject = shallowRef<Subject | null>(null);
  const qr = shallowRef<ShownQr | null>(null);
  const counts = shallowRef<LiveCounts | null>(null);
  const qrStale = ref(false);
  const fatal = shallowRef<ApiProblem | null>(null);
  const failing = ref<Record<string, boolean>>({});
  const reconnecting = computed(() => Object.values(failing.value).some(Boolean));

  let loops: RetryLoop[] = [];
  let timer: QrTimer | null = null;

  function setFailing(part: string, on: boolean): void {
    if (failing.value[part] !== on) failing.value = { ...failing.value, [part]: on };
  }

  function onError(part: string) {
    return (error: unknown) => {
      if (isFinal(error)) {
        fatal.value = error;
        stop();
        return;
      }
      setFailing(part, true);
    };
  }

  // The token first, then its picture: the picture is then of the same window or a later one, so the
  // validity counted from the token's refresh_in never overstates the picture's.
  async function fetchQr(signal: AbortSignal): Promise<ShownQr> {
    const answer = await qrToken(kind, id, signal);
    const current = qr.value;
    if (current && current.token === answer.token) return { ...current, refresh_in: answer.refresh_in };
    const picture = await qrImage(kind, id, signal);
    return { token: answer.token, payload: answer.payload, expires_at: answer.expires_at,
      refresh_in: answer.refresh_in, url: URL.createObjectURL(picture) };
  }

  function start(): void {
    loops = [
      startRetryLoop({
        run: (signal) => loadSubject(kind, id, signal),
        delayAfter: () => SUBJECT_EVERY_MS,
        onAnswer: (s) => { subject.value = s; setFailing("subject", false); },
        onError: onError("subject"),
      }),
      startRetryLoop({
        run: (signal) => loadCounts(kind, id, signal),
        delayAfter: () => COUNTS_EVERY_MS,
        onAnswer: (c) => { counts.value = c; setFailing("counts", false); },
        onError: onError("counts"),
      }),
    ];
    timer = startQrTimer({
      fetch: async (signal) => {
        const shown = await fetchQr(signal);
        setFailing("qr", false);
        return shown;
      },
      onToken(answer) {
        const previous = qr.value;
        qr.value = answer;
        qrStale.value = false;
        if (previous && previous.url !== answer.url) URL.revokeObjectURL(previous.url);
      },
      onStale: () => { qrStale.value = true; },
      onError: onError("qr"),
    });
  }

  function stop(): void {
    for (const loop of loops) loop.stop();
    loops = [];
    timer?.stop();
    timer = null;
  }

  /** The network came back or the screen woke up: ask everything now rather than at the next retry. */
  function nudge(): void {
    for (const loop of loops) loop.runNow();
    timer?.refreshNow();
  }

  const onVisible = () => { if (document.visibilityState === "visible") nudge(); };
  window.addEventListener("online", nudge);
  document.addEventListener("visibilitychange", onVisible);
  onBeforeUnmount(() => {
    window.removeEventListener("online", nudge);
    document.removeEventListener("visibilitychange", onVisible);
    stop();
    if (qr.value) URL.revokeObjectURL(qr.value.url);
  });

  start();
  return { subject, qr, counts, qrStale, reconnecting, fatal };
}
