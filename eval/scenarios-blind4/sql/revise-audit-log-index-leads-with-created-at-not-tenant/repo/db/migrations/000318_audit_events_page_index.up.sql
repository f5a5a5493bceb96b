-- audit_events holds ~900M rows across ~4k tenants; build the index without blocking writes.
-- golang-migrate runs this file outside a transaction (single statement), as CONCURRENTLY requires.
CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_events_created_at_tenant_idx
    ON audit_events (created_at DESC, id DESC, tenant_id);
