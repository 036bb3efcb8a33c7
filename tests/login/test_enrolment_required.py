"""A deployment (or one user) that requires two-step verification: a user
without a second factor goes to enrolment right after the password, and no
SSO session exists until a factor is set up."""

from __future__ import annotations

import pytest

from tests.helpers import csrf, path_of


@pytest.fixture
def settings(settings):
    settings["MFA_REQUIRED"] = True
    return settings


def sign_in_with_password(client, email="kari@example.no", password="correct horse battery"):
    page = client.get("/login")
    client.post("/login", data={"email": email, "csrf_token": csrf(page.get_data(as_text=True))})
    page = client.get("/login/password")
    return client.post("/login/password", data={"password": password, "csrf_token": csrf(page.get_data(as_text=True))})


def test_password_alone_leads_to_enrolment_not_to_a_session(client, make_user, app):
    from visma_idp.storage import AuditEvent, SsoSession, db

    make_user()
    resp = sign_in_with_password(client)
    assert resp.status_code == 302
    assert path_of(resp.headers["Location"]) == "/account/security"
    page = client.get("/account/security")
    assert page.status_code == 200
    assert "Set one up below to finish signing in" in page.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(SsoSession)) == 0
        events = [e.event for e in db.session.scalars(db.select(AuditEvent))]
    assert "factor_enrolment_required" in events and "login_succeeded" not in events
    # nothing else of the account opens while the sign-in is pending
    assert path_of(client.get("/account").headers["Location"]).startswith("/login")


def test_an_authorization_request_does_not_get_a_code_before_enrolment(flow):
    resp = flow.login(flow.start())
    assert path_of(resp.headers["Location"]) == "/account/security"
    again = flow.start(prompt="none")
    assert "error=login_required" in again.headers["Location"]


def test_a_pending_sign_in_expires(client, make_user, idp):
    make_user()
    sign_in_with_password(client)
    idp.clock.advance(11 * 60)
    assert path_of(client.get("/account/security").headers["Location"]).startswith("/login")


def test_without_the_requirement_the_password_is_enough(make_app, make_user, settings):
    app = make_app(MFA_REQUIRED=False)
    client = app.test_client()
    make_user()
    resp = sign_in_with_password(client)
    assert path_of(resp.headers["Location"]) == "/"


def test_one_user_can_be_required_alone(make_app, make_user, settings):
    from visma_idp.storage import User, db

    app = make_app(MFA_REQUIRED=False)
    uid = make_user()
    with app.app_context():
        db.session.get(User, uid).mfa_required = True
        db.session.commit()
    resp = sign_in_with_password(app.test_client())
    assert path_of(resp.headers["Location"]) == "/account/security"
