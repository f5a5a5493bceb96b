import { useEffect, useState } from "react";

import { getNote, saveNote } from "./notesApi";
import styles from "./NoteEditor.module.css";

const AUTOSAVE_DELAY_MS = 1000;

type Props = {
  noteId: number;
};

type SaveStatus = "idle" | "saving" | "saved" | "failed";

export function NoteEditor({ noteId }: Props) {
  const [title, setTitle] = useState("");
  const [draft, setDraft] = useState("");
  const [loadError, setLoadError] = useState(false);
  const [saveStatus, setSaveStatus] = useState<SaveStatus>("idle");

  useEffect(() => {
    let cancelled = false;
    setLoadError(false);
    getNote(noteId)
      .then((note) => {
        if (cancelled) return;
        setTitle(note.title);
        setDraft(note.body);
      })
      .catch(() => {
        if (!cancelled) setLoadError(true);
      });
    return () => {
      cancelled = true;
    };
  }, [noteId]);

  // Autosave: persist the draft once the user has stopped typing for a second.
  useEffect(() => {
    const timer = window.setTimeout(() => {
      setSaveStatus("saving");
      saveNote(noteId, { body: draft, autosave: true })
        .then(() => setSaveStatus("saved"))
        .catch(() => setSaveStatus("failed"));
    }, AUTOSAVE_DELAY_MS);
    return () => window.clearTimeout(timer);
  }, [noteId, draft]);

  if (loadError) {
    return <p role="alert">This note could not be loaded.</p>;
  }

  return (
    <section className={styles.editor}>
      <header className={styles.header}>
        <h1>{title}</h1>
        <span className={styles.status} aria-live="polite">
          {saveStatus === "saving" && "Saving…"}
          {saveStatus === "saved" && "All changes saved"}
          {saveStatus === "failed" && "Could not save. Retrying when you type again."}
        </span>
      </header>
      <textarea
        className={styles.body}
        aria-label="Note"
        value={draft}
        onChange={(event) => setDraft(event.target.value)}
      />
    </section>
  );
}
