"""agreement invitations

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 10:28:15.909072
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('agreement_invitations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agreement_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('roles', sa.JSON(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('invited_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.Column('accepted_at', sa.BigInteger(), nullable=True),
    sa.Column('accepted_by', sa.Integer(), nullable=True),
    sa.Column('revoked_at', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['accepted_by'], ['users.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['agreement_id'], ['agreements.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['invited_by'], ['users.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('digest')
    )
    with op.batch_alter_table('agreement_invitations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agreement_invitations_agreement_id'), ['agreement_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_agreement_invitations_email'), ['email'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('agreement_invitations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agreement_invitations_email'))
        batch_op.drop_index(batch_op.f('ix_agreement_invitations_agreement_id'))

    op.drop_table('agreement_invitations')

