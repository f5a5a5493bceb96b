-- Files a tenant attaches to an invoice and shares with its customer.
BEGIN;

CREATE TABLE shared_documents (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    uuid        NOT NULL REFERENCES tenants (id),
    invoice_id   uuid        NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
    file_name    text        NOT NULL,
    content_type text        NOT NULL,
    size_bytes   bigint      NOT NULL CHECK (size_bytes >= 0),
    storage_key  text        NOT NULL UNIQUE,
    uploaded_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX shared_documents_invoice_id_idx ON shared_documents (invoice_id);
CREATE INDEX shared_documents_tenant_id_idx ON shared_documents (tenant_id);

CREATE POLICY tenant_isolation ON shared_documents
    USING (tenant_id = current_setting('app.tenant_id')::uuid)
    WITH CHECK (tenant_id = current_setting('app.tenant_id')::uuid);

GRANT SELECT, INSERT, UPDATE, DELETE ON shared_documents TO app_user;

COMMIT;
