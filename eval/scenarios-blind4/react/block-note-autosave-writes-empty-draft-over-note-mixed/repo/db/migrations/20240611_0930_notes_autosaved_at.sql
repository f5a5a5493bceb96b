-- When the current body was written by the editor's autosave (NULL: an explicit save).
ALTER TABLE notes ADD COLUMN autosaved_at timestamptz;
