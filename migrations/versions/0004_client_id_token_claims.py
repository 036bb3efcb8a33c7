"""client id_token_claims: the granted scopes' claims in the ID token, per client

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 03:22:31.000000
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL: the server's ID_TOKEN_SCOPE_CLAIMS decides; true/false: the client's own choice
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('id_token_claims', sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('id_token_claims')
