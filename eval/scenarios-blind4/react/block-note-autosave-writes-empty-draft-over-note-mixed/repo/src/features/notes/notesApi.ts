import { apiFetch } from "@/lib/apiFetch";

export type Note = {
  id: number;
  title: string;
  body: string;
  updatedAt: string;
  autosavedAt: string | null;
};

export function getNote(noteId: number): Promise<Note> {
  return apiFetch<Note>(`/api/notes/${noteId}`);
}

export function saveNote(noteId: number, changes: { body: string; autosave?: boolean }): Promise<Note> {
  return apiFetch<Note>(`/api/notes/${noteId}`, {
    method: "PUT",
    body: JSON.stringify(changes),
  });
}
