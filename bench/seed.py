"""Create the bench database: drop/create it, migrate, make the signing keys,
the client_credentials client, the login client and the login users.

Run by ``bench/run.py`` in its own process (so no connection of the seeding
stays open while the server runs)::

    .venv/bin/python bench/seed.py --dsn postgresql+psycopg://postgres@127.0.0.1:5432/visma_idp_bench \
        --issuer http://127.0.0.1:7002 --users 16

Prints one JSON line with what it made.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))  # PYTHONPATH (run.py --app-dir) wins

CC_CLIENT = ("bench", "bench-secret")
LOGIN_CLIENT = ("bench-web", "bench-web-secret-0123456789")
LOGIN_REDIRECT = "http://127.0.0.1:9/cb"
# profile_token.py --flavour consent: a third-party app (the consent page is shown)
CONSENT_CLIENT = ("bench-consent", "bench-consent-secret-0123456789")
# profile_token.py --flavour totp: a user with an authenticator app (a known key, base32)
TOTP_EMAIL = "bench-totp@example.com"
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
USER_PASSWORD = "correct horse battery staple 2026"  # must pass the password policy (no name or email part)
SECRET_KEY = "bench-secret-key-not-for-production-0123456789"


def user_email(i: int) -> str:
    return f"bench-user-{i}@example.com"


def recreate_database(dsn: str) -> None:
    """DROP DATABASE / CREATE DATABASE through the server's maintenance db."""
    import psycopg

    parts = urlsplit(dsn.replace("postgresql+psycopg://", "postgresql://", 1))
    name = parts.path.lstrip("/")
    if not name.replace("_", "").isalnum():
        raise SystemExit(f"refusing odd database name {name!r}")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsn", required=True, help="SQLAlchemy URL of the bench database (it is dropped!)")
    ap.add_argument("--issuer", required=True)
    ap.add_argument("--secret-key", default=SECRET_KEY)
    ap.add_argument("--users", type=int, default=16, help="login users to create (one hash each)")
    a = ap.parse_args()

    recreate_database(a.dsn)

    from visma_idp import create_app
    from visma_idp.admin.service import create_user
    from visma_idp.migrate import upgrade
    try:
        from visma_idp.oidc.registration import create_client
    except ImportError:  # code before the sign-in pipeline (issue 9), for A/B runs with --app-dir
        from visma_idp.admin.service import create_client  # type: ignore[attr-defined,no-redef]
    from visma_idp.factors import totp
    from visma_idp.storage import db
    from visma_idp.storage.models import Factor

    app = create_app({"ISSUER": a.issuer, "DATABASE_URL": a.dsn, "SECRET_KEY": a.secret_key})
    upgrade(app)
    with app.app_context():
        idp = app.extensions["visma_idp"]
        kids = idp.keys.ensure_keys()
        create_client(
            CC_CLIENT[0],
            grant_types=["client_credentials"],
            scope="api:read",
            secret=CC_CLIENT[1],
            token_endpoint_auth_method="client_secret_basic",
            name="bench",
        )
        create_client(
            LOGIN_CLIENT[0],
            redirect_uris=[LOGIN_REDIRECT],
            grant_types=["authorization_code", "refresh_token"],
            scope="openid profile email",
            secret=LOGIN_CLIENT[1],
            token_endpoint_auth_method="client_secret_basic",
            name="bench web app",
            skip_consent=True,
        )
        create_client(
            CONSENT_CLIENT[0],
            redirect_uris=[LOGIN_REDIRECT],
            grant_types=["authorization_code", "refresh_token"],
            scope="openid profile email",
            secret=CONSENT_CLIENT[1],
            token_endpoint_auth_method="client_secret_basic",
            name="bench third-party app",
            skip_consent=False,
        )
        emails = []
        for i in range(a.users):
            create_user(user_email(i), f"Bench User {i}", password=USER_PASSWORD)
            emails.append(user_email(i))
        totp_user = create_user(TOTP_EMAIL, "Bench Totp User", password=USER_PASSWORD)
        db.session.flush()
        now = idp.clock.now()
        db.session.add(Factor(user_id=totp_user.id, kind=totp.KIND, name="bench", created_at=now, confirmed_at=now,
                              secret_enc=totp.seal(TOTP_SECRET)))
        db.session.commit()
        db.engine.dispose()
    print(json.dumps({"keys": kids, "cc_client": CC_CLIENT[0], "login_client": LOGIN_CLIENT[0], "users": len(emails)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
