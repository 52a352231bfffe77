"""Background ingestion jobs and their files (server/jobs); knowledge bases that follow their content folder.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_job",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kb_name", sa.String(64), nullable=False, index=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("options", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "ingest_job_file",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "job_id", sa.String(32), sa.ForeignKey("ingest_job.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        sa.Column("file_name", sa.String(1024), nullable=False),
        sa.Column("staged", sa.String(1024), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("chunk_count", sa.Integer, nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("job_id", "file_name", name="uq_job_file_name"),
    )
    with op.batch_alter_table("knowledge_base") as batch:
        batch.add_column(sa.Column("sync_folder", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("knowledge_base") as batch:
        batch.drop_column("sync_folder")
    op.drop_table("ingest_job_file")
    op.drop_table("ingest_job")
