"""The admin API's world: two agreements, their admins and members, a
system admin, the admin tool client, and tokens for each of them."""

from __future__ import annotations

import base64

import pytest

from tests.admin.test_admin_api import REDIRECT, tokens_for

API = "/admin/api/agreements"
ORG_A, ORG_B, ORG_NEW = "974760673", "923609016", "914994780"
SYS = "sys@ops.example.org"
ADMIN_A = "ola@acme.no"
MEMBER_A = "kari@acme.no"
ADMIN_B = "per@beta.no"
MEMBER_B = "siri@acme.no"  # the same domain as A's people, but only in B
PLAIN = "nils@acme.no"  # a member of A without the admin role
SERVICE_SECRET = "service-secret-0123456789abcdef"


@pytest.fixture
def world(app, make_user, make_client):
    """Two agreements, their admins and members, a system admin, and the admin tool client."""
    from visma_idp.admin import rights
    from visma_idp.agreements import service
    from visma_idp.storage import db, queries

    for email in (SYS, ADMIN_A, MEMBER_A, ADMIN_B, MEMBER_B, PLAIN):
        make_user(email=email, name=email.split("@")[0].title())
    make_client("admin-tool", redirect_uris=[REDIRECT], scope="openid idp:admin",
                secret="admin-tool-secret-0123456789", skip_consent=True)
    with app.app_context():
        a = service.create("Acme AS", ORG_A, domains=["acme.no"])
        b = service.create("Beta AS", ORG_B)
        user = queries.user_by_email
        service.add_member(a, user(ADMIN_A), ["admin"])
        service.add_member(a, user(MEMBER_A), ["approver"])
        service.add_member(a, user(PLAIN), ["employee"])
        service.add_member(b, user(ADMIN_B), ["admin"])
        service.add_member(b, user(MEMBER_B), ["employee"])
        rights.grant(user(SYS), rights.SYSTEM_ADMIN, [])
        db.session.commit()
        ids = {"a": a.public_id, "b": b.public_id,
               **{email: user(email).sub for email in (ADMIN_A, MEMBER_A, ADMIN_B, MEMBER_B, PLAIN)}}
    return ids


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def token(app, world):
    cache: dict[str, str] = {}

    def get(email: str) -> str:
        if email not in cache:
            cache[email] = tokens_for(app, email)["access_token"]
        return cache[email]

    return get


@pytest.fixture
def service_token(app, client, make_client):
    def get(scope: str = "idp:admin:agreements") -> str:
        make_client("provisioner", grant_types=["client_credentials"], scope=scope, secret=SERVICE_SECRET,
                    redirect_uris=[])
        basic = base64.b64encode(f"provisioner:{SERVICE_SECRET}".encode()).decode()
        resp = client.post("/token", data={"grant_type": "client_credentials", "scope": scope},
                           headers={"Authorization": f"Basic {basic}"})
        assert resp.status_code == 200, resp.get_data(as_text=True)
        return resp.get_json()["access_token"]

    return get
