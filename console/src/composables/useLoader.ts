// Load one thing for a page, with its loading and error state; the pattern each resource composable
// (src/composables/use<Resource>.ts) builds on:
//
//   export function useSessions(orgId: Ref<string | null>) {
//     return useLoader(() => api.get("/api/v1/study/sessions", { query: { org_id: orgId.value! } }),
//                      { watch: [orgId] });
//   }
//
// The page renders <ProblemState :problem="error" @retry="reload" /> when `error` is set: 403 and 404
// become the clear pages of item 9, anything else a message with a retry button.
import { onScopeDispose, ref, shallowRef, watch, type WatchSource } from "vue";
import { ApiProblem } from "@/api/errors";

export interface LoaderOptions {
  /** Load again when any of these change (the selected org, a filter). */
  watch?: WatchSource[];
  /** Load at once (default true). */
  immediate?: boolean;
}

export function useLoader<T>(load: () => Promise<T>, options: LoaderOptions = {}) {
  const data = shallowRef<T | null>(null);
  const loading = ref(false);
  const error = shallowRef<ApiProblem | null>(null);
  let generation = 0;

  async function reload(): Promise<void> {
    const mine = ++generation; // a slower earlier load must not overwrite a later one
    loading.value = true;
    error.value = null;
    try {
      const value = await load();
      if (mine === generation) data.value = value;
    } catch (e) {
      if (mine !== generation) return;
      if (!(e instanceof ApiProblem)) throw e;
      error.value = e;
    } finally {
      if (mine === generation) loading.value = false;
    }
  }

  if (options.watch?.length) {
    const stop = watch(options.watch, () => void reload());
    onScopeDispose(stop);
  }
  if (options.immediate !== false) void reload();
  return { data, loading, error, reload };
}
