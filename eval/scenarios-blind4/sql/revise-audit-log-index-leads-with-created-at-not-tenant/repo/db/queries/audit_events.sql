-- name: InsertAuditEvent :one
INSERT INTO audit_events (tenant_id, actor_id, action, target_type, target_id, payload)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id, created_at;

-- name: GetAuditEvent :one
SELECT id, tenant_id, actor_id, action, target_type, target_id, payload, created_at
FROM audit_events
WHERE tenant_id = $1 AND id = $2;

-- name: ListAuditEventsPage :many
-- Keyset pagination for the tenant's audit log page, newest first.
SELECT id, actor_id, action, target_type, target_id, payload, created_at
FROM audit_events
WHERE tenant_id = sqlc.arg(tenant_id)
  AND (created_at, id) < (sqlc.arg(before_created_at)::timestamptz, sqlc.arg(before_id)::bigint)
ORDER BY created_at DESC, id DESC
LIMIT sqlc.arg(page_size);

-- name: CountAuditEventsForTarget :one
SELECT count(*)
FROM audit_events
WHERE tenant_id = $1 AND target_type = $2 AND target_id = $3;
