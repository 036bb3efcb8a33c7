"""Tests of the admin pages and API; the helpers below are shared with
tests/factors/test_admin_codes.py and tests/test_cli_admin.py."""

from __future__ import annotations

import os
import re

from tests.helpers import csrf, path_of

PASSWORD = "correct horse battery"
CODE_RE = re.compile(r"\b([2-9A-HJKMNP-Z]{5}-[2-9A-HJKMNP-Z]{5})\b")


def sign_in(client, email: str, password: str = PASSWORD):
    """Email page, then password page; returns the answer to the password post."""
    page = client.get("/login")
    client.post("/login", data={"email": email, "csrf_token": csrf(page.get_data(as_text=True))})
    page = client.get("/login/password")
    return client.post("/login/password", data={"password": password, "csrf_token": csrf(page.get_data(as_text=True))})


def give_factor(app, user_id: int) -> int:
    """A confirmed authenticator-app factor, straight into the database (its
    secret is random: nobody can answer it, which is the point: it is lost)."""
    from visma_idp.storage import Factor, db

    with app.app_context():
        idp = app.extensions["visma_idp"]
        factor = Factor(user_id=user_id, kind="totp", name="Lost phone", created_at=idp.clock.now(),
                        confirmed_at=idp.clock.now(), secret_enc=idp.secrets.encrypt(os.urandom(20)))
        db.session.add(factor)
        db.session.commit()
        return factor.id


def grant(app, email: str, *domains: str) -> None:
    from visma_idp.admin import rights
    from visma_idp.storage import db, queries

    with app.app_context():
        rights.grant(queries.user_by_email(email), rights.ISSUE_ONE_TIME_CODES, domains)
        db.session.commit()


def issue(app, admin_email: str | None, target_email: str) -> str:
    """Issue a code as ``admin_email`` (None: the operator); returns the raw code."""
    from visma_idp.admin import one_time_codes
    from visma_idp.storage import db, queries

    with app.test_request_context("/"):
        admin = queries.user_by_email(admin_email) if admin_email else None
        try:
            issued = one_time_codes.issue_for_email(admin, target_email, via="test")
        finally:
            db.session.commit()  # a refusal is audited, as the views do
        return issued.code


def events(app, name: str) -> list:
    from visma_idp.storage import AuditEvent, db

    with app.app_context():
        rows = list(db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == name).order_by(AuditEvent.id)))
        db.session.expunge_all()
        return rows


def verify_with_code(client, code: str):
    """On a pending sign-in: open the admin-code method and post the code."""
    page = client.get("/login/verify?method=admin_code")
    assert page.status_code == 200, page.get_data(as_text=True)
    html = page.get_data(as_text=True)
    assert 'name="code"' in html
    return client.post("/login/verify", data={"method": "admin_code", "code": code, "csrf_token": csrf(html)})


def lands_in_enrolment(client, resp) -> bool:
    return resp.status_code == 302 and path_of(resp.headers["Location"]) == "/account/security"
