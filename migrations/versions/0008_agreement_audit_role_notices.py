"""an agreement's audit log (audit_events.agreement); batched "your roles have changed" notices

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 12:22:32.727427
"""

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('role_change_notices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('agreement', sa.String(length=36), nullable=False),
    sa.Column('agreement_name', sa.String(length=200), nullable=False),
    sa.Column('added', sa.JSON(), nullable=False),
    sa.Column('removed', sa.JSON(), nullable=False),
    sa.Column('first_at', sa.BigInteger(), nullable=False),
    sa.Column('due_at', sa.BigInteger(), nullable=False),
    sa.Column('sent_at', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name='fk_role_change_notices_user', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('role_change_notices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_role_change_notices_due_at'), ['due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_role_change_notices_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('agreement', sa.String(length=36), nullable=True))
        # an agreement's log reads its rows newest first, a page at a time (WHERE agreement = ? AND id < ?)
        batch_op.create_index('ix_audit_events_agreement', ['agreement', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_agreement')
        batch_op.drop_column('agreement')

    with op.batch_alter_table('role_change_notices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_role_change_notices_user_id'))
        batch_op.drop_index(batch_op.f('ix_role_change_notices_due_at'))

    op.drop_table('role_change_notices')
