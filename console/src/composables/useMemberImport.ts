// Bulk import of members into one org from CSV or xlsx (POST /orgs/{id}/members/import).
import { api } from "@/api/client";
import type { Schemas } from "@/api/types";

export type ImportResult = Schemas["ImportResult"];
export { importType, rowMessage, TEMPLATE_HEADERS, templateCsv, XLSX_TYPE } from "@/views/members/importRows";

export function importMembers(orgId: string, file: File, type: string): Promise<ImportResult> {
  return api.upload("/api/v1/orgs/{org_id}/members/import", file, type, { path: { org_id: orgId } });
}
