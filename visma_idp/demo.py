"""Demo mode: a ready user and relying party for trying the provider locally.

``seed_demo(app)`` makes sure the demo user and client exist, and two demo
agreements (companies) with the demo user a member of both. Their password
and secret are generated once and kept in ``<INSTANCE_PATH>/demo_credentials.json``
(mode 0600), so every later start shows the same credentials. If the file is
lost, new ones are generated and the existing user and client are updated.
The demo agreements and the demo user's memberships of them are likewise
created when absent (roles given to the demo user later stay).
Only allowed when ``MODE`` is ``demo``.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask

from .admin.service import create_user
from .errors import ConfigError
from .oidc.registration import create_client
from .storage import db, queries

DEMO_EMAIL = "demo@example.com"
DEMO_NAME = "Demo User"
DEMO_CLIENT_ID = "demo-client"
DEMO_REDIRECT_URIS = ["http://127.0.0.1:5001/callback", "http://localhost:5001/callback"]
CREDENTIALS_FILE = "demo_credentials.json"
# name, organisation number (check digit from agreements/orgnr.check_digit), the demo user's roles
DEMO_AGREEMENTS = [
    ("Nordlys Regnskap AS", "923456783", ["admin", "approver", "employee"]),  # its members page: My details
    ("Fjord Transport AS", "934567897", ["employee"]),
]


def _new_password() -> str:
    """20 random URL-safe characters that pass the password policy (a random
    draw may, rarely, spell out a part of the demo user's name)."""
    from .password.service import violations

    while True:
        password = secrets.token_urlsafe(15)
        if not violations(password, email=DEMO_EMAIL, given_name="Demo", family_name="User"):
            return password


def _load_or_create(path: Path) -> tuple[dict[str, str], bool]:
    """The saved credentials, or new ones (saved now). Returns (credentials, new?)."""
    if path.exists():
        return json.loads(path.read_text()), False
    credentials = {"password": _new_password(), "client_secret": secrets.token_urlsafe(32)}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(credentials, fh, indent=2)
    return credentials, True


def _seed_agreements() -> None:
    """The demo agreements and the demo user's memberships, each only when absent."""
    from .agreements import service

    user = queries.user_by_email(DEMO_EMAIL)
    assert user is not None  # seeded just before
    for name, org_number, roles in DEMO_AGREEMENTS:
        agreement = service.find(org_number) or service.create(name, org_number)
        if service.membership(user.id, agreement.id) is None:
            service.add_member(agreement, user, roles)


def seed_demo(app: Flask) -> dict[str, Any]:
    """Create (if absent) the demo user, client and agreements; return the credentials.

    Returns:
        ``email``, ``password``, ``client_id``, ``client_secret``, ``redirect_uris``
        and ``file`` (where the credentials are kept).

    Raises:
        ConfigError: when the app is not in demo mode.
    """
    idp = app.extensions["visma_idp"]
    if idp.settings["MODE"] != "demo":
        raise ConfigError("MODE", "the demo user and client are only created in demo mode")
    path = Path(idp.settings["INSTANCE_PATH"]) / CREDENTIALS_FILE
    with app.app_context():  # the password policy reads the settings
        credentials, new = _load_or_create(path)
    with app.app_context():
        user = queries.user_by_email(DEMO_EMAIL)
        if user is None:
            create_user(DEMO_EMAIL, DEMO_NAME, credentials["password"])
        elif new:
            user.password_hash = idp.hasher.hash(credentials["password"])
        client = queries.client_by_id(DEMO_CLIENT_ID)
        if client is None:
            create_client(
                DEMO_CLIENT_ID,
                secret=credentials["client_secret"],
                name="Demo relying party",
                redirect_uris=DEMO_REDIRECT_URIS,
                post_logout_redirect_uris=["http://127.0.0.1:5001/"],
                grant_types=["authorization_code", "refresh_token", "client_credentials"],
                scope="openid profile email phone address offline_access",
                token_endpoint_auth_method="client_secret_basic",
            )
        elif new:
            client.secret_digest = idp.secrets.keyed_digest(credentials["client_secret"])
        _seed_agreements()
        db.session.commit()
    return {
        "email": DEMO_EMAIL,
        "password": credentials["password"],
        "client_id": DEMO_CLIENT_ID,
        "client_secret": credentials["client_secret"],
        "redirect_uris": DEMO_REDIRECT_URIS,
        "file": str(path),
    }
