// Files (API.md §8): uploads for the forms (an activity's cover, an announcement's attachments) and
// reading a file back with the bearer token (an <img> or a link cannot send it).
import { api } from "@/api/client";
import type { Schemas } from "@/api/types";
import { saveBlob } from "@/lib/download";

export type StoredFile = Schemas["FileOut"];

/** The server checks the type by content; this is only the declared one. */
function declaredType(file: File): string {
  return file.type || "application/octet-stream";
}

export function uploadFile(file: File): Promise<StoredFile> {
  // X-Filename is a header, so ASCII: the name goes percent-encoded (UTF-8).
  return api.upload("/api/v1/files", file, declaredType(file), {
    headers: { "X-Filename": encodeURIComponent(file.name) },
  });
}

export async function downloadFile(fileId: string, name: string): Promise<void> {
  saveBlob(await api.blob("/api/v1/files/{file_id}", { path: { file_id: fileId } }), name);
}
