-- migrate:up
-- messages holds ~210M rows. Both columns are added in one ALTER so the
-- ACCESS EXCLUSIVE lock is taken once; the default is a constant, so on
-- PostgreSQL 11+ (we run 15) it is stored in the catalog and the table is
-- not rewritten. Existing rows read back as is_archived = false.
SET LOCAL lock_timeout = '3s';

ALTER TABLE messages
    ADD COLUMN is_archived boolean NOT NULL DEFAULT false,
    ADD COLUMN archived_at timestamptz;

-- migrate:down
SET LOCAL lock_timeout = '3s';

ALTER TABLE messages
    DROP COLUMN archived_at,
    DROP COLUMN is_archived;
