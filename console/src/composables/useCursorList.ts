// One page of a cursor-paged list at a time (API.md §1: `{items, next_cursor}`), for the tables with
// 上一页 / 下一页: the API pages forward only, so "previous" replays a cursor remembered on the way.
import { computed, ref, shallowRef } from "vue";
import { useLoader } from "./useLoader";

export interface Page<T> {
  items: T[];
  next_cursor?: string | null;
}

export function useCursorList<T, F>(fetchPage: (filters: F, cursor: string | undefined) => Promise<Page<T>>) {
  const filters = shallowRef<F | null>(null);
  const cursors = ref<(string | undefined)[]>([undefined]);
  const index = ref(0);
  const next = ref<string | null>(null);

  const { data, loading, error, reload } = useLoader(async () => {
    if (filters.value === null) return [];
    const page = await fetchPage(filters.value, cursors.value[index.value]);
    next.value = page.next_cursor ?? null;
    return page.items;
  }, { immediate: false });

  return {
    items: computed(() => data.value ?? []),
    loading,
    error,
    page: computed(() => index.value + 1),
    hasPrevious: computed(() => index.value > 0),
    hasNext: computed(() => next.value !== null),
    reload,
    /** Put these rows on screen in place of the page's (a row changed on the server). */
    setItems(items: T[]): void {
      data.value = items;
    },
    /** Start again at the first page with these filters. */
    search(f: F): Promise<void> {
      filters.value = { ...f };
      cursors.value = [undefined];
      index.value = 0;
      return reload();
    },
    nextPage(): Promise<void> {
      if (next.value === null) return Promise.resolve();
      cursors.value = [...cursors.value.slice(0, index.value + 1), next.value];
      index.value += 1;
      return reload();
    },
    previousPage(): Promise<void> {
      if (index.value === 0) return Promise.resolve();
      index.value -= 1;
      return reload();
    },
  };
}
