"""back-channel logout: the delivery queue, and which ended sessions were queued; front-channel logout URIs

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 17:00:00.000000
"""

import time

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('frontchannel_logout_uri', sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column('frontchannel_logout_session_required', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    with op.batch_alter_table('sso_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('logout_queued_at', sa.BigInteger(), nullable=True))
    # sessions that ended before this release are not told now (nobody asked then)
    now = int(time.time())
    sessions = sa.table('sso_sessions', sa.column('logout_queued_at', sa.BigInteger()),
                        sa.column('ended_at', sa.BigInteger()), sa.column('expires_at', sa.BigInteger()))
    op.execute(sessions.update().where(sa.or_(sessions.c.ended_at.is_not(None), sessions.c.expires_at <= now))
               .values(logout_queued_at=now))
    op.create_table(
        'logout_deliveries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('client_id', sa.String(length=128), nullable=False),
        sa.Column('uri', sa.String(length=2000), nullable=False),
        sa.Column('sub', sa.String(length=36), nullable=False),
        sa.Column('sid', sa.String(length=64), nullable=True),
        sa.Column('jti', sa.String(length=64), nullable=False),
        sa.Column('reason', sa.String(length=32), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.BigInteger(), nullable=False),
        sa.Column('next_attempt_at', sa.BigInteger(), nullable=False),
        sa.Column('lease_until', sa.BigInteger(), nullable=True),
        sa.Column('sent_at', sa.BigInteger(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('jti'),
    )
    op.create_index('ix_logout_deliveries_client_id', 'logout_deliveries', ['client_id'])
    op.create_index('ix_logout_deliveries_status', 'logout_deliveries', ['status'])
    op.create_index('ix_logout_deliveries_next_attempt_at', 'logout_deliveries', ['next_attempt_at'])
    # which apps took part in a session: its codes and tokens, by sid
    op.create_index('ix_sso_sessions_logout_queued_at', 'sso_sessions', ['logout_queued_at'])
    op.create_index('ix_tokens_sid', 'tokens', ['sid'])
    op.create_index('ix_authorization_codes_sid', 'authorization_codes', ['sid'])


def downgrade() -> None:
    op.drop_index('ix_authorization_codes_sid', 'authorization_codes')
    op.drop_index('ix_tokens_sid', 'tokens')
    op.drop_index('ix_sso_sessions_logout_queued_at', 'sso_sessions')
    op.drop_table('logout_deliveries')
    with op.batch_alter_table('sso_sessions', schema=None) as batch_op:
        batch_op.drop_column('logout_queued_at')
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('frontchannel_logout_session_required')
        batch_op.drop_column('frontchannel_logout_uri')
