-- The UI greys out export links once the file is no longer downloadable.
ALTER TABLE export_jobs ADD COLUMN expires_at timestamptz;

UPDATE export_jobs
SET expires_at = finished_at + interval '24 hours'
WHERE finished_at IS NOT NULL
  AND expires_at IS NULL;
