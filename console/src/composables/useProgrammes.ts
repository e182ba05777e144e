// 群心驿站 programmes (API.md §6): the five (or more) programmes with their eligibility rules; every
// member may read them, only an admin of the root org may change one.
import { computed } from "vue";
import { api } from "@/api/client";
import type { Schemas } from "@/api/types";
import { useLoader } from "./useLoader";

export type Programme = Schemas["ProgrammeOut"];
export type ProgrammePut = Schemas["ProgrammePut"];
export type Rules = Schemas["Rules"];

async function everyProgramme(): Promise<Programme[]> {
  const out: Programme[] = [];
  let cursor: string | undefined;
  do {
    const page = await api.get("/api/v1/programmes", { query: { limit: 100, cursor } });
    out.push(...page.items);
    cursor = page.next_cursor ?? undefined;
  } while (cursor);
  return out;
}

export function useProgrammes() {
  const { data, loading, error, reload } = useLoader(everyProgramme);
  const programmes = computed(() => data.value ?? []);
  return {
    programmes,
    loading,
    error,
    reload,
    /** The programme's name for a key (the key itself for one not loaded yet). */
    nameOf(key: string): string {
      return programmes.value.find((p) => p.key === key)?.name ?? key;
    },
    async save(key: string, body: ProgrammePut): Promise<Programme> {
      const saved = await api.put("/api/v1/programmes/{key}", { path: { key }, body });
      data.value = programmes.value.map((p) => (p.key === key ? saved : p));
      return saved;
    },
  };
}
