// The thin typed client over fetch (API.md §1). Paths, query, bodies and answers are typed from
// openapi.json (src/api/schema.d.ts, `npm run types`), so an API change that breaks a page fails
// `vue-tsc`. Every refusal is thrown as an ApiProblem (src/api/errors.ts). A 401 refreshes the
// tokens once and repeats the request; if that does not help, `onSignedOut` sends the user to sign-in.
import type { paths } from "./schema";
import { ApiProblem, toProblem } from "./errors";
import type { TokenKeeper } from "@/auth/tokens";

export type Method = "get" | "post" | "put" | "patch" | "delete";

/** The paths that have an operation for `M`. */
export type PathsFor<M extends Method> = {
  [P in keyof paths]: paths[P][M] extends undefined ? never : P;
}[keyof paths];

export type Operation<P extends keyof paths, M extends Method> = NonNullable<paths[P][M]>;

type ParametersOf<O> = O extends { parameters: infer Q } ? Q : never;
type PathParams<O> = ParametersOf<O> extends { path: infer X } ? X : never;
type QueryParams<O> = ParametersOf<O> extends { query?: infer X } ? X : never;
type RequestBody<O> = O extends { requestBody?: infer R } ? NonNullable<R> : never;
type JsonBody<O> = [RequestBody<O>] extends [never] ? never
  : RequestBody<O> extends { content: { "application/json": infer B } }
    ? O extends { requestBody: object } ? B : B | undefined
    : never;

type JsonOf<R> = R extends { content: { "application/json": infer T } } ? T : never;
/** The JSON a successful answer carries (200 or 201), or void for 202/204 answers without one. */
export type Answer<O> = O extends { responses: infer R }
  ? 200 extends keyof R ? JsonOf<R[200]> extends never ? Blob : JsonOf<R[200]>
    : 201 extends keyof R ? JsonOf<R[201]>
    : 202 extends keyof R ? JsonOf<R[202]> extends never ? void : JsonOf<R[202]>
    : void
  : never;

type Optional<K extends string, T> = [T] extends [never] ? { [_ in K]?: never }
  : undefined extends T ? { [_ in K]?: T } : { [_ in K]: T };

/** What a call takes: `path` and `body` when the operation needs them, `query` when it has one. */
export type Options<O> = Optional<"path", PathParams<O>> & Optional<"query", QueryParams<O>> &
  Optional<"body", JsonBody<O>> & {
    /** Sent as Idempotency-Key; a creating POST gets a fresh one per call unless given. */
    idempotencyKey?: string;
    headers?: Record<string, string>;
    signal?: AbortSignal;
  };

/** The call's arguments: the options are required when the operation has path parameters or a required body. */
export type Args<O> = [PathParams<O>] extends [never]
  ? O extends { requestBody: object } ? [opts: Options<O>] : [opts?: Options<O>]
  : [opts: Options<O>];

export interface RawOptions {
  path?: Record<string, string>;
  query?: Record<string, unknown>;
  body?: unknown;
  /** A body sent as it is (a file, a CSV upload) with its own Content-Type header. */
  rawBody?: BodyInit;
  idempotencyKey?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Answer the response body as a Blob (exports, QR images) instead of parsing JSON. */
  blob?: boolean;
}

export interface ClientDeps {
  keeper: TokenKeeper;
  fetch?: typeof fetch;
  /** Called when the server no longer accepts this browser's tokens (after one refresh). */
  onSignedOut?: () => void;
  newKey?: () => string;
}

export function fillPath(template: string, params: Record<string, string> = {}): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = params[name];
    if (value === undefined) throw new Error(`missing path parameter ${name} for ${template}`);
    return encodeURIComponent(value);
  });
}

export function queryString(query: Record<string, unknown> = {}): string {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null || v === "") continue;
    search.set(k, String(v));
  }
  const s = search.toString();
  return s ? `?${s}` : "";
}

function randomKey(): string {
  return globalThis.crypto?.randomUUID?.() ?? `${Date.now()}-${Math.random().toString(36).slice(2)}`;
}

export function createClient(deps: ClientDeps) {
  const doFetch = deps.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => fetch(input, init));
  const newKey = deps.newKey ?? randomKey;

  async function send(method: Method, template: string, opts: RawOptions, token: string | null): Promise<Response> {
    const headers: Record<string, string> = { Accept: "application/json", ...opts.headers };
    if (token) headers.Authorization = `Bearer ${token}`;
    let body: BodyInit | undefined;
    if (opts.rawBody !== undefined) body = opts.rawBody;
    else if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers["Content-Type"] = "application/json";
    }
    if (opts.idempotencyKey) headers["Idempotency-Key"] = opts.idempotencyKey;
    const url = fillPath(template, opts.path) + queryString(opts.query);
    try {
      return await doFetch(url, { method: method.toUpperCase(), headers, body, signal: opts.signal });
    } catch (error) {
      if ((error as Error)?.name === "AbortError") throw error;
      throw new ApiProblem(0, "network_error", String((error as Error)?.message ?? error));
    }
  }

  async function request(method: Method, template: string, opts: RawOptions = {}): Promise<unknown> {
    // One key for the first try and the retry after a refresh: the server answers the retry as a replay.
    if (method === "post" && !opts.idempotencyKey) opts = { ...opts, idempotencyKey: newKey() };
    const token = await deps.keeper.accessToken().catch(() => deps.keeper.current?.access_token ?? null);
    let response = await send(method, template, opts, token);
    if (response.status === 401 && token) {
      // A refresh that fails on the network throws (still signed in, try again later); one the server
      // refuses answers null: the session is over, as it is when even the new token is refused.
      const renewed = await deps.keeper.refresh();
      if (renewed) response = await send(method, template, opts, renewed.access_token);
      if (!renewed || response.status === 401) {
        deps.keeper.clear();
        deps.onSignedOut?.();
      }
    }
    return read(response, opts.blob ?? false);
  }

  async function read(response: Response, blob: boolean): Promise<unknown> {
    const requestId = response.headers.get("X-Request-ID");
    if (!response.ok) {
      let body: unknown = null;
      try {
        body = await response.json();
      } catch {
        body = null;
      }
      throw toProblem(response.status, body, requestId);
    }
    if (response.status === 204) return undefined;
    if (blob) return response.blob();
    if ((response.headers.get("Content-Type") ?? "").includes("json")) return response.json();
    const file = await response.blob();
    return file.size ? file : undefined;
  }

  return {
    request,
    get<P extends PathsFor<"get">>(path: P, ...[opts]: Args<Operation<P, "get">>) {
      return request("get", path, opts as RawOptions) as Promise<Answer<Operation<P, "get">>>;
    },
    post<P extends PathsFor<"post">>(path: P, ...[opts]: Args<Operation<P, "post">>) {
      return request("post", path, opts as RawOptions) as Promise<Answer<Operation<P, "post">>>;
    },
    put<P extends PathsFor<"put">>(path: P, ...[opts]: Args<Operation<P, "put">>) {
      return request("put", path, opts as RawOptions) as Promise<Answer<Operation<P, "put">>>;
    },
    patch<P extends PathsFor<"patch">>(path: P, ...[opts]: Args<Operation<P, "patch">>) {
      return request("patch", path, opts as RawOptions) as Promise<Answer<Operation<P, "patch">>>;
    },
    delete<P extends PathsFor<"delete">>(path: P, ...[opts]: Args<Operation<P, "delete">>) {
      return request("delete", path, opts as RawOptions) as Promise<Answer<Operation<P, "delete">>>;
    },
    /** A file answer (an export, a QR image) as a Blob. */
    blob<P extends PathsFor<"get">>(path: P, ...[opts]: Args<Operation<P, "get">>) {
      return request("get", path, { ...(opts as RawOptions), blob: true }) as Promise<Blob>;
    },
    /** A POST whose body is sent as it is (a file upload, a CSV import), typed by its answer. */
    upload<P extends PathsFor<"post">>(path: P, body: BodyInit, contentType: string,
      opts?: Omit<Options<Operation<P, "post">>, "body"> & { headers?: Record<string, string> }) {
      const raw = opts as RawOptions | undefined;
      return request("post", path, {
        ...raw, rawBody: body, headers: { "Content-Type": contentType, ...raw?.headers },
      }) as Promise<Answer<Operation<P, "post">>>;
    },
  };
}

export type Client = ReturnType<typeof createClient>;
