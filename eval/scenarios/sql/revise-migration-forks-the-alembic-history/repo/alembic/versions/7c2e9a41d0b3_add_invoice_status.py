"""add invoice status

Revision ID: 7c2e9a41d0b3
Revises: 51f0aa8e6c12
Create Date: 2024-05-02 09:14:11
"""
import sqlalchemy as sa
from alembic import op

revision = "7c2e9a41d0b3"
down_revision = "51f0aa8e6c12"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("invoice", sa.Column("status", sa.String(16), nullable=False, server_default="draft"))


def downgrade() -> None:
    op.drop_column("invoice", "status")
