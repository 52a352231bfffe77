"""Knowledge bases get a store-side collection name (Milvus collection / pgvector table).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("knowledge_base") as batch:
        batch.add_column(sa.Column("vs_collection", sa.String(64), nullable=False, server_default=""))
    connection = op.get_bind()
    table = sa.table("knowledge_base", sa.column("id", sa.Integer), sa.column("vs_collection", sa.String))
    for (kb_id,) in connection.execute(sa.select(table.c.id)).all():
        name = f"zk_{uuid.uuid4().hex[:16]}"
        connection.execute(table.update().where(table.c.id == kb_id).values(vs_collection=name))


def downgrade() -> None:
    with op.batch_alter_table("knowledge_base") as batch:
        batch.drop_column("vs_collection")
