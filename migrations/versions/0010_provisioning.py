"""SCIM provisioning: provisioning clients, their resources, attribute sources and conflicts

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 16:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('disabled_by_agreement', sa.Integer(), nullable=True))
    op.create_table(
        'provisioning_clients',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('agreement_id', sa.Integer(), nullable=False),
        sa.Column('token_digest', sa.String(length=64), nullable=False),
        sa.Column('authoritative_for', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.BigInteger(), nullable=False),
        sa.Column('rotated_at', sa.BigInteger(), nullable=True),
        sa.Column('last_used_at', sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(['agreement_id'], ['agreements.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name'),
        sa.UniqueConstraint('token_digest'),
    )
    op.create_index('ix_provisioning_clients_agreement_id', 'provisioning_clients', ['agreement_id'])
    op.create_table(
        'scim_resources',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('scim_id', sa.String(length=36), nullable=False),
        sa.Column('client_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('external_id', sa.String(length=255), nullable=True),
        sa.Column('email', sa.String(length=320), nullable=True),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('role', sa.String(length=64), nullable=True),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('data', sa.JSON(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('granted_roles', sa.JSON(), nullable=False),
        sa.Column('kept_roles', sa.JSON(), nullable=True),
        sa.Column('requested_email', sa.String(length=320), nullable=True),
        sa.Column('created_at', sa.BigInteger(), nullable=False),
        sa.Column('updated_at', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['client_id'], ['provisioning_clients.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('scim_id'),
        sa.UniqueConstraint('client_id', 'kind', 'key', name='uq_scim_resource_key'),
    )
    op.create_index('ix_scim_resources_user_id', 'scim_resources', ['user_id'])
    op.create_index('ix_scim_resources_external_id', 'scim_resources', ['client_id', 'external_id'])
    op.create_table(
        'attribute_sources',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('attribute', sa.String(length=32), nullable=False),
        sa.Column('source', sa.String(length=64), nullable=False),
        sa.Column('set_at', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('user_id', 'attribute'),
    )
    op.create_table(
        'provisioning_conflicts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('agreement_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('attribute', sa.String(length=32), nullable=False),
        sa.Column('current_source', sa.String(length=64), nullable=False),
        sa.Column('current_value', sa.String(length=320), nullable=True),
        sa.Column('other_source', sa.String(length=64), nullable=False),
        sa.Column('other_value', sa.String(length=320), nullable=True),
        sa.Column('first_seen', sa.BigInteger(), nullable=False),
        sa.Column('last_seen', sa.BigInteger(), nullable=False),
        sa.Column('notified_at', sa.BigInteger(), nullable=True),
        sa.Column('resolved_at', sa.BigInteger(), nullable=True),
        sa.Column('resolved_by', sa.Integer(), nullable=True),
        sa.Column('chosen', sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(['agreement_id'], ['agreements.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['resolved_by'], ['users.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_provisioning_conflicts_agreement_id', 'provisioning_conflicts', ['agreement_id'])
    op.create_index('ix_provisioning_conflicts_user_id', 'provisioning_conflicts', ['user_id'])


def downgrade() -> None:
    op.drop_table('provisioning_conflicts')
    op.drop_table('attribute_sources')
    op.drop_table('scim_resources')
    op.drop_table('provisioning_clients')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('disabled_by_agreement')
