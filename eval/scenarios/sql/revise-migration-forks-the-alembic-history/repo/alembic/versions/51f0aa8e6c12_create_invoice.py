"""create invoice

Revision ID: 51f0aa8e6c12
Revises:
Create Date: 2024-04-11 16:40:02
"""
import sqlalchemy as sa
from alembic import op

revision = "51f0aa8e6c12"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "invoice",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("number", sa.String(32), nullable=False, unique=True),
        sa.Column("issued_on", sa.Date, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("invoice")
