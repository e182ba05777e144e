// The filters another page may link a list page with, in the query (/activities?status=published&org_id=...):
// read once when the page opens, each kept only when it is one the page offers.
import { computed } from "vue";
import { useRoute } from "vue-router";
import { useOrgScope } from "./useOrgScope";

export function useLinkedFilters() {
  const route = useRoute();
  const scope = useOrgScope();
  /** The orgs the list may be narrowed to: the selected one and its subtree. */
  const orgOptions = computed(() => scope.subtree());

  function fromQuery(name: string): string {
    const v = route.query[name];
    return typeof v === "string" ? v : "";
  }

  return {
    orgOptions,
    fromQuery,
    /** The linked org when it is in the subtree, else the selected org. */
    org(): string {
      const linked = fromQuery("org_id");
      return orgOptions.value.some((o) => o.id === linked) ? linked : scope.selectedId.value ?? "";
    },
    /** The linked value of `name` when it is one of `labels`' keys, else `fallback`. */
    oneOf<K extends string, D>(name: string, labels: Record<K, string>, fallback: D): K | D {
      const linked = fromQuery(name);
      return linked in labels ? linked as K : fallback;
    },
  };
}
