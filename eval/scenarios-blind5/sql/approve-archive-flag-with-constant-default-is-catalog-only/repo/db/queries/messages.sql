-- name: ListInbox :many
SELECT m.id, m.thread_id, m.sender_id, m.subject, m.snippet, m.created_at, m.read_at
FROM messages m
WHERE m.recipient_id = $1
  AND m.deleted_at IS NULL
  AND NOT m.is_archived
  AND (sqlc.narg('before_id')::bigint IS NULL OR m.id < sqlc.narg('before_id'))
ORDER BY m.id DESC
LIMIT $2;

-- name: ListArchived :many
SELECT m.id, m.thread_id, m.sender_id, m.subject, m.snippet, m.created_at, m.read_at, m.archived_at
FROM messages m
WHERE m.recipient_id = $1
  AND m.deleted_at IS NULL
  AND m.is_archived
  AND (sqlc.narg('before_id')::bigint IS NULL OR m.id < sqlc.narg('before_id'))
ORDER BY m.id DESC
LIMIT $2;

-- name: CountUnread :one
SELECT count(*)
FROM messages
WHERE recipient_id = $1
  AND read_at IS NULL
  AND deleted_at IS NULL
  AND NOT is_archived;

-- name: MarkThreadRead :exec
UPDATE messages
SET read_at = now()
WHERE thread_id = $1
  AND recipient_id = $2
  AND read_at IS NULL;

-- name: ArchiveThread :exec
UPDATE messages
SET is_archived = true,
    archived_at = now()
WHERE thread_id = $1
  AND recipient_id = $2
  AND NOT is_archived;

-- name: UnarchiveThread :exec
UPDATE messages
SET is_archived = false,
    archived_at = NULL
WHERE thread_id = $1
  AND recipient_id = $2
  AND is_archived;

-- name: SoftDeleteThread :exec
UPDATE messages
SET deleted_at = now()
WHERE thread_id = $1
  AND recipient_id = $2
  AND deleted_at IS NULL;
