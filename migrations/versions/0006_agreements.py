"""agreements and memberships; the active agreement of sessions, codes and tokens

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 09:58:14.605595
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('agreements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('org_number', sa.String(length=9), nullable=False),
    sa.Column('domains', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('require_acr', sa.String(length=128), nullable=True),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('org_number'),
    sa.UniqueConstraint('public_id')
    )
    op.create_table('memberships',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agreement_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('roles', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('last_used_at', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['agreement_id'], ['agreements.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('agreement_id', 'user_id', name='uq_membership')
    )
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_memberships_agreement_id'), ['agreement_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_memberships_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('agreement_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_codes_agreement', 'agreements', ['agreement_id'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('requires_agreement', sa.Boolean(), nullable=False, server_default=sa.false()))

    with op.batch_alter_table('sso_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('agreement_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_sessions_agreement', 'agreements', ['agreement_id'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('agreement_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_tokens_agreement', 'agreements', ['agreement_id'], ['id'], ondelete='SET NULL')

def downgrade() -> None:
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.drop_constraint('fk_tokens_agreement', type_='foreignkey')
        batch_op.drop_column('agreement_id')

    with op.batch_alter_table('sso_sessions', schema=None) as batch_op:
        batch_op.drop_constraint('fk_sessions_agreement', type_='foreignkey')
        batch_op.drop_column('agreement_id')

    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('requires_agreement')

    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.drop_constraint('fk_codes_agreement', type_='foreignkey')
        batch_op.drop_column('agreement_id')

    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_memberships_user_id'))
        batch_op.drop_index(batch_op.f('ix_memberships_agreement_id'))

    op.drop_table('memberships')
    op.drop_table('agreements')

