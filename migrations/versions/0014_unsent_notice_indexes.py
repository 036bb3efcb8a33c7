"""index only the notices still to send (the mail worker's flush read every sent one)

The mail worker (and the flush after requests) asks each round for the due
notices: ``sent_at IS NULL AND due_at <= now ORDER BY id LIMIT n``. The
index on ``due_at`` matched every notice ever sent too (they stay until the
purge, RETENTION_DAYS after sending), so PostgreSQL read the whole table:
61 ms a round with 300,000 sent notices (docs/scale.md). A partial index of
the unsent ones takes its place: it holds only what is waiting (0.1 ms).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 19:10:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

TABLES = ('profile_change_notices', 'role_change_notices')


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f'ix_{table}_due_at')
            batch_op.create_index(f'ix_{table}_unsent', ['due_at'], unique=False,
                                  postgresql_where=sa.text('sent_at IS NULL'),
                                  sqlite_where=sa.text('sent_at IS NULL'))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f'ix_{table}_unsent')
            batch_op.create_index(f'ix_{table}_due_at', ['due_at'], unique=False)
