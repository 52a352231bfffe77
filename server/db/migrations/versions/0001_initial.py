"""Initial registry: knowledge bases, files, chunks.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "knowledge_base",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("info", sa.Text, nullable=False),
        sa.Column("vs_type", sa.String(32), nullable=False),
        sa.Column("embed_model", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "knowledge_file",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kb_id", sa.Integer, sa.ForeignKey("knowledge_base.id", ondelete="CASCADE"), nullable=False),
        sa.Column("file_name", sa.String(1024), nullable=False),
        sa.Column("ext", sa.String(16), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("mtime", sa.Float, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("loader", sa.String(64), nullable=False),
        sa.Column("splitter", sa.String(64), nullable=False),
        sa.Column("chunk_size", sa.Integer, nullable=False),
        sa.Column("chunk_overlap", sa.Integer, nullable=False),
        sa.Column("zh_title_enhance", sa.Boolean, nullable=False),
        sa.Column("chunk_count", sa.Integer, nullable=False),
        sa.Column("custom_docs", sa.Boolean, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("kb_id", "file_name", name="uq_file_kb_name"),
    )
    op.create_index("ix_knowledge_file_kb_id", "knowledge_file", ["kb_id"])
    op.create_table(
        "chunk",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kb_id", sa.Integer, sa.ForeignKey("knowledge_base.id", ondelete="CASCADE"), nullable=False),
        sa.Column("file_id", sa.Integer, sa.ForeignKey("knowledge_file.id", ondelete="CASCADE"), nullable=False),
        sa.Column("vs_id", sa.String(64), nullable=False),
        sa.Column("meta", sa.JSON, nullable=False),
        sa.UniqueConstraint("kb_id", "vs_id", name="uq_chunk_kb_vs_id"),
    )
    op.create_index("ix_chunk_kb_id", "chunk", ["kb_id"])
    op.create_index("ix_chunk_file_id", "chunk", ["file_id"])


def downgrade() -> None:
    op.drop_table("chunk")
    op.drop_table("knowledge_file")
    op.drop_table("knowledge_base")
