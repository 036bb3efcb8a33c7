"""Storage: the SQLAlchemy models, the shared queries, and :func:`init_app`.

``storage/`` imports nothing of visma_idp above it (only ``clock``,
``config``, ``errors``, ``crypto``; tests/test_layers.py checks it): every
package may use it, it uses none of them. The app's cipher for encrypted
columns is handed to :func:`init_app`, and the protocol's own checks on a
client live with the client Authlib sees (``oidc/clients.py``).

Where SQL lives (tests/test_layers.py checks this list against the code):

- ``models.py``: every table. ``queries.py``: the lookups every part uses
  (a user by email or subject, a client, a code, a token, a session, a
  consent, the lists of users and clients) and every statement on the
  tables of the sign-in and the protocol (sessions, codes, tokens,
  consents, seen client-assertion ids): the atomic claims, the
  revocations, ending sessions.
- A table one package owns is queried only by that package, in the module
  whose header states the rule the statement enforces, because there the
  statement *is* the rule (a conditional UPDATE that spends a link once,
  leases a message, counts a quota or a guess): single-use links in
  `account/tokens.py`, `account/sessions.py` (voiding them) and
  `account/email_change.py` (its hourly quota); profile-change and
  role-change notices in `account/notifications.py`; admin rights in `admin/rights.py`; audit
  events in `audit.py`; factors and their codes in `factors/__init__.py`,
  `factors/totp.py`, `factors/sms.py`, `factors/webauthn.py`,
  `factors/recovery_codes.py` and `factors/admin_codes.py`; the mail and
  text-message outboxes in `notify/outbox.py` and `notify/sms.py`; signing
  keys in `oidc/keys.py` (rotation under a table lock); the throttle's counts while Redis is
  down in `login/throttle.py` (its fallback store); back-channel logout
  deliveries in `oidc/backchannel.py` (claimed with a lease, like mail); password history
  in `password/service.py`; upstream providers in `federation/upstreams.py`,
  their linked identities in `federation/linking.py` and national identity
  numbers in `federation/national_id.py`; agreements and memberships in
  `agreements/service.py` (the memberships the sign-in and the protocol read
  are `queries.py`'s) and the invitations to them in
  `agreements/invitations.py` (revoking the older link, spending a link
  once; the admin console's reads of one agreement's invitations are
  `agreements/service.py`'s); provisioning clients in
  `provisioning/clients.py`, their SCIM resources in `provisioning/store.py`,
  people's attribute sources and conflicts in `provisioning/sources.py`
  and the accounts they link to in `provisioning/people.py`; the queue
  gauges of `/metrics` (read-only counts and ages of the mail outbox and the
  logout deliveries) in `observability/queues.py`; and the purge of every
  table in `maintenance.py`.
- Views, commands, templates and the demo seeding build no statement; they
  call the functions above. The sign-in (``login/``, ``browser/``) and the
  protocol's views (``oidc/views.py``, ``oidc/authorization.py``) build none:
  they use ``queries.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from sqlalchemy import event

from ..crypto import Secrets
from .models import (  # noqa: F401
    SECRETS_KEY,
    AccountToken,
    AdminRight,
    Agreement,
    AgreementInvitation,
    AttributeSource,
    AuditEvent,
    AuthorizationCode,
    Base,
    Client,
    ClientSnapshot,
    Consent,
    Factor,
    LogoutDelivery,
    MailOutbox,
    Membership,
    NationalIdentity,
    OneTimeCode,
    PasswordHistory,
    ProfileChangeNotice,
    ProvisioningClient,
    ProvisioningConflict,
    RecoveryCode,
    RoleChangeNotice,
    ScimResource,
    SeenJti,
    SigningKey,
    SmsCode,
    SmsOutbox,
    SsoSession,
    ThrottleCount,
    Token,
    Upstream,
    UpstreamDomain,
    UpstreamIdentity,
    User,
    db,
)


def init_app(app: Flask, *, settings: Mapping[str, Any], secrets: Secrets) -> None:
    """Connect ``app`` to its database (``DATABASE_URL``) and keep the cipher of its encrypted columns.

    A new SQLite file is created private (0600: it holds digests and
    encrypted keys), with foreign keys, WAL and a busy timeout on every
    connection; a PostgreSQL pool checks connections that sat idle
    (``storage/pool.py``). The engine options come from the Flask config
    (``SQLALCHEMY_ENGINE_OPTIONS``), set before this step.
    """
    url = settings["DATABASE_URL"]
    if url.startswith("sqlite:///"):
        import os
        from pathlib import Path

        path = Path(url[len("sqlite:///"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():  # the database holds digests and encrypted keys: keep it private
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    app.extensions[SECRETS_KEY] = secrets
    db.init_app(app)
    if not url.startswith("sqlite"):
        from .pool import ping_after_idle

        with app.app_context():
            ping_after_idle(db.engine, settings["DATABASE_PING_AFTER_IDLE"])
    if url.startswith("sqlite"):
        with app.app_context():
            engine = db.engine

            @event.listens_for(engine, "connect")
            def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.close()
