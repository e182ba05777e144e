// The org switcher's state, which every page reads: the subtree the signed-in member organises (as a
// tree), and the org currently selected in the header. Pages watch `selectedId` and load for it.
import { computed, ref, shallowRef, watch } from "vue";
import { api } from "@/api/client";
import type { Schemas } from "@/api/types";
import { rootsWith, useSession } from "@/auth/session";

export type Org = Schemas["OrgOut"];
export interface OrgNode {
  id: string;
  name: string;
  kind: Org["kind"];
  children: OrgNode[];
}

const STORAGE_KEY = "branchline.console.org";

const orgs = shallowRef<Map<string, Org>>(new Map());
const tree = shallowRef<OrgNode[]>([]);
const selectedId = ref<string | null>(null);
const loading = ref(false);
const error = shallowRef<unknown>(null);
let loadedFor: string | null = null;

/** Every org of one parent, over as many pages as it has. */
async function childrenOf(parentId: string): Promise<Org[]> {
  const out: Org[] = [];
  let cursor: string | undefined;
  do {
    const page = await api.get("/api/v1/orgs", { query: { parent_id: parentId, limit: 100, cursor } });
    out.push(...page.items);
    cursor = page.next_cursor ?? undefined;
  } while (cursor);
  return out;
}

/** The orgs the member organises: each role's org and its whole subtree, level by level. */
async function loadScope(rootIds: string[]): Promise<Map<string, Org>> {
  const found = new Map<string, Org>();
  const roots = await Promise.all(rootIds.map((id) => api.get("/api/v1/orgs/{org_id}", { path: { org_id: id } })));
  let level = roots.filter((o) => !found.has(o.id));
  for (const o of level) found.set(o.id, o);
  while (level.length) {
    const next = (await Promise.all(level.map((o) => childrenOf(o.id)))).flat().filter((o) => !found.has(o.id));
    for (const o of next) found.set(o.id, o);
    level = next;
  }
  return found;
}

export function buildTree(all: Map<string, Org>): OrgNode[] {
  const nodes = new Map<string, OrgNode>();
  for (const o of all.values()) nodes.set(o.id, { id: o.id, name: o.name, kind: o.kind, children: [] });
  const top: OrgNode[] = [];
  for (const o of all.values()) {
    const node = nodes.get(o.id)!;
    const parent = o.parent_id ? nodes.get(o.parent_id) : undefined;
    if (parent) parent.children.push(node);
    else top.push(node);
  }
  return top;
}

async function load(memberId: string, rootIds: string[]): Promise<void> {
  loading.value = true;
  error.value = null;
  try {
    const found = await loadScope(rootIds);
    orgs.value = found;
    tree.value = buildTree(found);
    loadedFor = memberId;
    const remembered = localStorage.getItem(`${STORAGE_KEY}.${memberId}`);
    selectedId.value = remembered && found.has(remembered) ? remembered : (tree.value[0]?.id ?? null);
  } catch (e) {
    error.value = e;
  } finally {
    loading.value = false;
  }
}

function findNode(nodes: OrgNode[], id: string): OrgNode | null {
  for (const n of nodes) {
    if (n.id === id) return n;
    const below = findNode(n.children, id);
    if (below) return below;
  }
  return null;
}

export function useOrgScope() {
  const { member } = useSession();
  const selected = computed(() => (selectedId.value ? orgs.value.get(selectedId.value) ?? null : null));

  return {
    tree,
    orgs,
    selectedId,
    selected,
    loading,
    error,
    /** Load the tree for the signed-in member (once per member; `force` after an org was created). */
    async ensureLoaded(force = false): Promise<void> {
      const m = member.value;
      if (!m) return;
      if (!force && loadedFor === m.id) return;
      await load(m.id, rootsWith(m, "organiser"));
    },
    select(id: string): void {
      if (!orgs.value.has(id)) return;
      selectedId.value = id;
      if (member.value) localStorage.setItem(`${STORAGE_KEY}.${member.value.id}`, id);
    },
    /** The selected org and its descendants, for pages that list per branch. */
    subtree(id: string | null = selectedId.value): Org[] {
      if (!id) return [];
      return [...orgs.value.values()].filter((o) => o.id === id || o.path.includes(id));
    },
    /** An org's node in the tree, with everything below it. */
    node(id: string | null): OrgNode | null {
      return id ? findNode(tree.value, id) : null;
    },
    /** An org's name for a table cell, or "—" for one outside the tree. */
    orgName(id: string): string {
      return orgs.value.get(id)?.name ?? "—";
    },
    reset: forget,
  };
}

function forget(): void {
  orgs.value = new Map();
  tree.value = [];
  selectedId.value = null;
  loadedFor = null;
}

// Signing out, or in as someone else, forgets the previous member's tree.
watch(() => useSession().member.value?.id, (id) => {
  if (id !== loadedFor) forget();
});
