// 意见建议 of the selected org's subtree (API.md §11): the list by status, and the organiser's reply.
// The API filters by org subtree, status and category; up to MAX_PAGES pages of the newest are loaded.
import { api } from "@/api/client";
import type { Schemas } from "@/api/types";
import { allPages } from "@/lib/pages";

export type Suggestion = Schemas["SuggestionOut"];
export type SuggestionStatus = Suggestion["status"];
export type SuggestionCategory = Suggestion["category"];

export const STATUS_LABELS: Record<SuggestionStatus, string> = { open: "待回复", answered: "已回复" };
export const CATEGORY_LABELS: Record<SuggestionCategory, string> = { app: "关于小程序", work: "关于工作" };

const PAGE = 100;
export const MAX_PAGES = 5;

export interface SuggestionQuery {
  orgId: string;
  status?: SuggestionStatus;
  category?: SuggestionCategory;
}

/** The newest suggestions of the org's subtree (of one status), up to MAX_PAGES × 100; `more` when there are older. */
export async function loadSuggestions(q: SuggestionQuery): Promise<{ items: Suggestion[]; more: boolean }> {
  let more = false;
  const items = await allPages(async (cursor) => {
    const page = await api.get("/api/v1/suggestions", {
      query: { org_id: q.orgId, status: q.status, category: q.category, limit: PAGE, cursor },
    });
    more = page.next_cursor !== null;
    return page;
  }, MAX_PAGES);
  return { items, more };
}

export function replySuggestion(id: string, text: string): Promise<Schemas["ReplyOut"]> {
  return api.post("/api/v1/suggestions/{suggestion_id}/reply", { path: { suggestion_id: id }, body: { text } });
}
