"""throttle counts in the database, used while Redis does not answer

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 19:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'throttle_counts',
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('n', sa.Integer(), nullable=False),
        sa.Column('last', sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )
    op.create_index(op.f('ix_throttle_counts_last'), 'throttle_counts', ['last'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_throttle_counts_last'), table_name='throttle_counts')
    op.drop_table('throttle_counts')
