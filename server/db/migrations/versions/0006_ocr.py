"""OCR: a knowledge base's own OCR mode, and whether a file's text was read by OCR.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("knowledge_base") as batch:
        batch.add_column(sa.Column("ocr_mode", sa.String(8), nullable=False, server_default=""))
    with op.batch_alter_table("knowledge_file") as batch:
        batch.add_column(sa.Column("ocr", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("knowledge_file") as batch:
        batch.drop_column("ocr")
    with op.batch_alter_table("knowledge_base") as batch:
        batch.drop_column("ocr_mode")
