"""add invoice due date

Revision ID: e3d81b7f2a90
Revises: 51f0aa8e6c12
Create Date: 2024-05-06 11:02:37
"""
import sqlalchemy as sa
from alembic import op

revision = "e3d81b7f2a90"
down_revision = "51f0aa8e6c12"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("invoice", sa.Column("due_on", sa.Date, nullable=True))
    op.create_index("ix_invoice_due_on", "invoice", ["due_on"])


def downgrade() -> None:
    op.drop_index("ix_invoice_due_on", table_name="invoice")
    op.drop_column("invoice", "due_on")
