"""``visma_idp.api``: users, clients and keys from a host app's own code,
each call one committed transaction of its own, bad input an InvalidInput
that writes nothing."""

from __future__ import annotations

import base64

import pytest

import visma_idp
from visma_idp import api
from visma_idp.api import InvalidInput

PASSWORD = "correct horse battery"


@pytest.fixture
def app(make_host):
    return make_host()


def outbox(app) -> list[tuple[str, str]]:
    from visma_idp.storage import MailOutbox, db

    with app.app_context():
        return [(m.to_addr, m.kind) for m in db.session.scalars(db.select(MailOutbox))]


def test_exported_from_the_package():
    namespace: dict = {}
    exec("from visma_idp import *", namespace)
    assert namespace["api"] is api
    assert all(hasattr(visma_idp, name) for name in visma_idp.__all__)
    assert all(hasattr(api, name) for name in api.__all__)
    assert api.InvalidInput is visma_idp.admin.service.InvalidInput


def test_an_active_user_signs_in_at_once(app):
    user = api.create_user(app, email="Kari@Example.no", name="Kari Nordmann", password=PASSWORD, locale="nb")
    assert (user.email, user.status, user.email_verified, user.locale) == ("kari@example.no", "active", True, "nb")
    assert api.find_user(app, "KARI@example.no ") == user
    assert api.find_user(app, "nobody@example.no") is None
    assert outbox(app) == []  # no invitation for an active account


def test_an_invited_user_waits_for_activation(app):
    user = api.create_user(app, email="ola@example.no", name="Ola Nordmann")
    assert (user.status, user.email_verified) == ("pending", False)
    assert outbox(app) == [("ola@example.no", "welcome")]
    quiet = api.create_user(app, email="per@example.no", name="Per", invite=False)
    assert quiet.status == "pending" and len(outbox(app)) == 1
    assert [u.email for u in api.list_users(app)] == ["ola@example.no", "per@example.no"]


@pytest.mark.parametrize("kwargs, message", [
    ({"email": "not-an-address"}, "not a valid email address"),
    ({"password": "short"}, "password does not meet the policy"),
    ({"locale": "de"}, "unknown locale"),
])
def test_bad_users_are_refused_and_nothing_is_written(app, kwargs, message):
    args = {"email": "kari@example.no", "name": "Kari Nordmann", "password": PASSWORD, **kwargs}
    with pytest.raises(InvalidInput, match=message):
        api.create_user(app, **args)
    assert api.list_users(app) == []
    assert outbox(app) == []


def test_a_taken_address_is_refused(app):
    api.create_user(app, email="kari@example.no", name="Kari", password=PASSWORD)
    with pytest.raises(InvalidInput, match="already exists"):
        api.create_user(app, email="KARI@example.no", name="Kari again")


def test_a_client_and_its_secret_shown_once(app):
    created = api.create_client(app, "reports", grant_types=["client_credentials"], scope="openid")
    assert created.secret and len(created.secret) >= 32
    assert created.secret not in repr(created)
    listed = api.list_clients(app)
    assert [c.client_id for c in listed] == ["reports"] and listed[0].secret is None
    basic = base64.b64encode(f"reports:{created.secret}".encode()).decode()
    resp = app.test_client().post("/token", data={"grant_type": "client_credentials"},
                                  headers={"Authorization": "Basic " + basic})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    given = api.create_client(app, "payroll", redirect_uris=["https://payroll.example.com/cb"],
                              secret="a-secret-the-caller-chose-0123456789")
    assert given.secret is None  # never echo a secret we were given
    assert given.redirect_uris == ("https://payroll.example.com/cb",)
    assert given.id_token_claims is None  # the server's ID_TOKEN_SCOPE_CLAIMS decides
    lean = api.create_client(app, "lean", redirect_uris=["https://lean.example.com/cb"], id_token_claims=False)
    assert lean.id_token_claims is False
    assert {c.client_id: c.id_token_claims for c in api.list_clients(app)}["lean"] is False


def test_bad_clients_are_refused(app):
    with pytest.raises(InvalidInput, match="https"):
        api.create_client(app, "bad", redirect_uris=["http://rp.example.com/cb"])
    with pytest.raises(InvalidInput, match="public client cannot use client_credentials"):
        api.create_client(app, "bad", public=True, grant_types=["client_credentials"])
    assert api.list_clients(app) == []


def test_rotating_keys(app):
    before = {k.kid for k in api.list_keys(app)}
    fresh = api.rotate_keys(app)
    assert sorted(k.alg for k in fresh) == ["ES256", "EdDSA", "PS256", "RS256"]
    keys = {k.kid: k for k in api.list_keys(app)}
    assert all(keys[kid].retired_at is not None for kid in before)
    assert all(keys[k.kid].retired_at is None for k in fresh)
    published = {k["kid"] for k in app.test_client().get("/jwks").get_json()["keys"]}
    assert before | {k.kid for k in fresh} <= published  # old keys stay until their tokens expire
    from visma_idp.storage import AuditEvent, db

    with app.app_context():
        events = [e.event for e in db.session.scalars(db.select(AuditEvent))]
    assert "keys_rotated" in events


def test_a_call_is_its_own_transaction(app):
    """A call commits what it did, never what the caller's session holds."""
    from visma_idp.storage import User, db

    with app.app_context():
        db.session.add(User(email="draft@example.no", name="Draft", created_at=0, updated_at=0))  # not flushed
        api.create_user(app, email="kept@example.no", name="Kept", password=PASSWORD)
        assert db.session.new  # the caller's object is still only the caller's
        db.session.rollback()
    assert [u.email for u in api.list_users(app)] == ["kept@example.no"]


def test_an_app_without_the_provider(tmp_path):
    from flask import Flask

    with pytest.raises(RuntimeError, match=r"IdentityProvider\(app\) first"):
        api.list_users(Flask("bare"))
