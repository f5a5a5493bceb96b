"""orders: add the on_hold status and park pending orders waiting for fraud review

Revision ID: 7c1d2e9a4b10
Revises: 52b8f0c3aa41
Create Date: 2024-06-11 09:42:17.311024
"""
from alembic import op

revision = "7c1d2e9a4b10"
down_revision = "52b8f0c3aa41"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Pending orders the fraud service has flagged must not be picked by the fulfilment worker.
    op.execute("ALTER TYPE order_status ADD VALUE IF NOT EXISTS 'on_hold' AFTER 'pending'")
    op.execute(
        "UPDATE orders SET status = 'on_hold', updated_at = now() "
        "WHERE status = 'pending' AND fraud_review_requested_at IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("UPDATE orders SET status = 'pending', updated_at = now() WHERE status = 'on_hold'")
    # PostgreSQL cannot drop a value from an enum type: 'on_hold' stays in order_status, unused.
