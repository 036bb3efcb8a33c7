"""Demo mode: ready users and a relying party for trying the provider locally.

``seed_demo(app)`` makes sure the demo user, a colleague and the demo client
exist, and two demo agreements (companies): the demo user is a member of
both (and an approver in Nordlys), the colleague an employee of Nordlys. The
demo client is the Expense example app's registration
(``examples/relying_party/``, which ``./dev serve`` starts on
127.0.0.1:5001): its redirect, post-logout and back-channel logout URIs are
where Expense listens, with the scope ``agreements``. Passwords and secrets
are generated once and kept in ``<INSTANCE_PATH>/demo_credentials.json``
(mode 0600), so every later start shows the same credentials. If the file is
lost, new ones are generated and the existing users and client are updated;
a file from an older release gets the keys it lacks. The demo agreements and
memberships are likewise created when absent (roles given later stay).
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
DEMO_COLLEAGUE = ("kari@example.com", "Kari Nordmann")
EXPENSE = "http://127.0.0.1:5001"  # where ./dev serve starts the Expense example app
DEMO_REDIRECT_URIS = [f"{EXPENSE}/callback", "http://localhost:5001/callback"]
DEMO_POST_LOGOUT_URIS = [f"{EXPENSE}/logged-out", f"{EXPENSE}/"]
DEMO_SCOPE = "openid profile email phone address offline_access agreements"
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
    """The saved credentials, or new ones (saved now). Returns (credentials, new?).
    A file from an older release gets the keys it lacks (and is saved again)."""
    wanted = {"colleague_password": _new_password, "expense_secret_key": lambda: secrets.token_urlsafe(32)}
    if path.exists():
        credentials = json.loads(path.read_text())
        missing = {key: make() for key, make in wanted.items() if key not in credentials}
        if missing:
            credentials.update(missing)
            path.write_text(json.dumps(credentials, indent=2))
        return credentials, False
    credentials = {"password": _new_password(), "client_secret": secrets.token_urlsafe(32),
                   **{key: make() for key, make in wanted.items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(credentials, fh, indent=2)
    return credentials, True


def _seed_agreements() -> None:
    """The demo agreements and the demo users' memberships, each only when absent."""
    from .agreements import service

    user = queries.user_by_email(DEMO_EMAIL)
    colleague = queries.user_by_email(DEMO_COLLEAGUE[0])
    assert user is not None and colleague is not None  # seeded just before
    for name, org_number, roles in DEMO_AGREEMENTS:
        agreement = service.find(org_number) or service.create(name, org_number)
        if service.membership(user.id, agreement.id) is None:
            service.add_member(agreement, user, roles)
    nordlys = service.find(DEMO_AGREEMENTS[0][1])
    if nordlys is not None and service.membership(colleague.id, nordlys.id) is None:
        service.add_member(nordlys, colleague, ["employee"])


def _expense_registration(client) -> None:
    """An older demo client gets what the Expense app needs (scope, URIs)."""
    client.scope = " ".join(dict.fromkeys([*client.scope.split(), *DEMO_SCOPE.split()]))
    client.post_logout_redirect_uris = list(dict.fromkeys([*client.post_logout_redirect_uris,
                                                            *DEMO_POST_LOGOUT_URIS]))
    if not client.backchannel_logout_uri:
        client.backchannel_logout_uri = f"{EXPENSE}/backchannel-logout"
        client.backchannel_logout_session_required = True
    client.requires_agreement = True


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
        for email, name, key in ((DEMO_EMAIL, DEMO_NAME, "password"), (*DEMO_COLLEAGUE, "colleague_password")):
            user = queries.user_by_email(email)
            if user is None:
                create_user(email, name, credentials[key])
            elif new:
                user.password_hash = idp.hasher.hash(credentials[key])
        client = queries.client_by_id(DEMO_CLIENT_ID)
        if client is None:
            create_client(
                DEMO_CLIENT_ID,
                secret=credentials["client_secret"],
                name="Expense (demo)",
                redirect_uris=DEMO_REDIRECT_URIS,
                post_logout_redirect_uris=DEMO_POST_LOGOUT_URIS,
                grant_types=["authorization_code", "refresh_token", "client_credentials"],
                scope=DEMO_SCOPE,
                token_endpoint_auth_method="client_secret_basic",
                backchannel_logout_uri=f"{EXPENSE}/backchannel-logout",
                backchannel_logout_session_required=True,
                requires_agreement=True,  # a person of no company gets the provider's page, not an empty app
            )
        else:
            _expense_registration(client)
            if new:
                client.secret_digest = idp.secrets.keyed_digest(credentials["client_secret"])
        _seed_agreements()
        db.session.commit()
    return {
        "email": DEMO_EMAIL,
        "password": credentials["password"],
        "colleague": DEMO_COLLEAGUE[0],
        "colleague_password": credentials["colleague_password"],
        "expense": EXPENSE,
        "client_id": DEMO_CLIENT_ID,
        "client_secret": credentials["client_secret"],
        "redirect_uris": DEMO_REDIRECT_URIS,
        "file": str(path),
    }
