"""upstream providers, their domains, linked identities and national identities

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 09:36:13.151564
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('upstreams',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=100), nullable=False),
    sa.Column('issuer', sa.String(length=500), nullable=False),
    sa.Column('discovery_url', sa.String(length=500), nullable=False),
    sa.Column('client_id', sa.String(length=255), nullable=False),
    sa.Column('auth_method', sa.String(length=32), nullable=False),
    sa.Column('client_secret_enc', sa.Text(), nullable=True),
    sa.Column('private_key_enc', sa.Text(), nullable=True),
    sa.Column('key_id', sa.String(length=64), nullable=True),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('acr_values', sa.JSON(), nullable=False),
    sa.Column('claim_map', sa.JSON(), nullable=False),
    sa.Column('tenants', sa.JSON(), nullable=False),
    sa.Column('id_token_alg', sa.String(length=16), nullable=False),
    sa.Column('acr', sa.String(length=100), nullable=True),
    sa.Column('trust_amr', sa.Boolean(), nullable=False),
    sa.Column('create_accounts', sa.Boolean(), nullable=False),
    sa.Column('link_by_proof', sa.Boolean(), nullable=False),
    sa.Column('trust_email', sa.Boolean(), nullable=False),
    sa.Column('national_id_claim', sa.String(length=64), nullable=True),
    sa.Column('test_environment', sa.Boolean(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('button', sa.Boolean(), nullable=False),
    sa.Column('metadata_doc', sa.JSON(), nullable=True),
    sa.Column('metadata_at', sa.BigInteger(), nullable=True),
    sa.Column('jwks_doc', sa.JSON(), nullable=True),
    sa.Column('jwks_at', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('national_identities',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('number_enc', sa.Text(), nullable=False),
    sa.Column('upstream_id', sa.Integer(), nullable=True),
    sa.Column('linked_at', sa.BigInteger(), nullable=False),
    sa.Column('last_used_at', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['upstream_id'], ['upstreams.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('digest'),
    sa.UniqueConstraint('user_id')
    )
    op.create_table('upstream_domains',
    sa.Column('domain', sa.String(length=253), nullable=False),
    sa.Column('upstream_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['upstream_id'], ['upstreams.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('domain')
    )
    with op.batch_alter_table('upstream_domains', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_upstream_domains_upstream_id'), ['upstream_id'], unique=False)

    op.create_table('upstream_identities',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('upstream_id', sa.Integer(), nullable=False),
    sa.Column('issuer', sa.String(length=500), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('label', sa.String(length=320), nullable=False),
    sa.Column('linked_at', sa.BigInteger(), nullable=False),
    sa.Column('last_used_at', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['upstream_id'], ['upstreams.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('upstream_id', 'issuer', 'subject', name='uq_upstream_identity')
    )
    with op.batch_alter_table('upstream_identities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_upstream_identities_upstream_id'), ['upstream_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_upstream_identities_user_id'), ['user_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('upstream_identities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_upstream_identities_user_id'))
        batch_op.drop_index(batch_op.f('ix_upstream_identities_upstream_id'))

    op.drop_table('upstream_identities')
    with op.batch_alter_table('upstream_domains', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_upstream_domains_upstream_id'))

    op.drop_table('upstream_domains')
    op.drop_table('national_identities')
    op.drop_table('upstreams')

