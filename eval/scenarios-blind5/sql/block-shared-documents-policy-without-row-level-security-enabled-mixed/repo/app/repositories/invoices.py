"""Invoice and shared-document queries.

Tenant isolation is enforced by row-level security: `tenant_session()` sets
`app.tenant_id` for the transaction and every tenant table has a policy on it,
so the queries below do not repeat the tenant filter.
"""
from __future__ import annotations

from uuid import UUID

from app.db import tenant_session


async def list_invoices(tenant_id: UUID, *, limit: int = 50, offset: int = 0) -> list[dict]:
    async with tenant_session(tenant_id) as conn:
        rows = await conn.fetch(
            """
            SELECT id, number, customer_name, total_cents, currency, issued_at, status
            FROM invoices
            ORDER BY issued_at DESC, id DESC
            LIMIT $1 OFFSET $2
            """,
            limit,
            offset,
        )
    return [dict(r) for r in rows]


async def get_invoice(tenant_id: UUID, invoice_id: UUID) -> dict | None:
    async with tenant_session(tenant_id) as conn:
        row = await conn.fetchrow(
            "SELECT * FROM invoices WHERE id = $1",
            invoice_id,
        )
    return dict(row) if row else None


async def list_shared_documents(tenant_id: UUID, *, limit: int = 100, offset: int = 0) -> list[dict]:
    """All documents the tenant has shared, newest first (the Documents page)."""
    async with tenant_session(tenant_id) as conn:
        rows = await conn.fetch(
            """
            SELECT id, invoice_id, file_name, content_type, size_bytes, storage_key, uploaded_at
            FROM shared_documents
            ORDER BY uploaded_at DESC, id DESC
            LIMIT $1 OFFSET $2
            """,
            limit,
            offset,
        )
    return [dict(r) for r in rows]


async def add_shared_document(tenant_id: UUID, invoice_id: UUID, *, file_name: str,
                              content_type: str, size_bytes: int, storage_key: str) -> UUID:
    async with tenant_session(tenant_id) as conn:
        return await conn.fetchval(
            """
            INSERT INTO shared_documents
                (tenant_id, invoice_id, file_name, content_type, size_bytes, storage_key)
            VALUES ($1, $2, $3, $4, $5, $6)
            RETURNING id
            """,
            tenant_id, invoice_id, file_name, content_type, size_bytes, storage_key,
        )
