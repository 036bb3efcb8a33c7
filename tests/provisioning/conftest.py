"""Provisioning's world: two agreements (A with the domain acme.no, B), a
provisioning client of each with its bearer token, and helpers to call the
SCIM endpoints as each."""

from __future__ import annotations

import pytest

BASE = "/scim/v2"
ORG_A, ORG_B = "974760673", "923609016"
SCIM_JSON = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def user_body(user_name: str, email: str | None = None, *, given: str = "Kari", family: str = "Nordmann",
              active: bool = True, external_id: str | None = None, **extra) -> dict:
    body: dict = {"schemas": [USER_SCHEMA], "userName": user_name, "active": active,
                  "name": {"givenName": given, "familyName": family}}
    if email is not None:
        body["emails"] = [{"value": email, "type": "work", "primary": True}]
    if external_id is not None:
        body["externalId"] = external_id
    body.update(extra)
    return body


def patch_body(*operations: dict) -> dict:
    return {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}


class Scim:
    """One provisioning client's calls: ``scim.post("/Users", body)`` and so on."""

    def __init__(self, client, token: str | None):
        self.client, self.token = client, token

    def headers(self, extra: dict | None = None) -> dict:
        out = {"Content-Type": SCIM_JSON, "Accept": SCIM_JSON}
        if self.token is not None:
            out["Authorization"] = f"Bearer {self.token}"
        return {**out, **(extra or {})}

    def get(self, path: str, **kw):
        return self.client.get(BASE + path, headers=self.headers(kw.pop("headers", None)), **kw)

    def post(self, path: str, body, **kw):
        return self.client.post(BASE + path, json=body, headers=self.headers(kw.pop("headers", None)), **kw)

    def put(self, path: str, body, **kw):
        return self.client.put(BASE + path, json=body, headers=self.headers(kw.pop("headers", None)), **kw)

    def patch(self, path: str, body, **kw):
        return self.client.patch(BASE + path, json=body, headers=self.headers(kw.pop("headers", None)), **kw)

    def delete(self, path: str, **kw):
        return self.client.delete(BASE + path, headers=self.headers(kw.pop("headers", None)), **kw)


@pytest.fixture
def agreements(app):
    """Agreement A (domain acme.no) and B; returns their public ids."""
    from visma_idp.agreements import service
    from visma_idp.storage import db

    with app.app_context():
        a = service.create("Acme AS", ORG_A, domains=["acme.no"])
        b = service.create("Beta AS", ORG_B, domains=["beta.no"])
        db.session.commit()
        return {"a": a.public_id, "b": b.public_id}


@pytest.fixture
def make_provisioning(app, agreements):
    """``make_provisioning("payroll-a", "a", authoritative_for=[...])`` → the client's bearer token."""
    from visma_idp.agreements import service
    from visma_idp.provisioning import clients
    from visma_idp.storage import db

    def make(name: str, agreement: str = "a", authoritative_for=()) -> str:
        with app.app_context():
            issued = clients.create(service.find(agreements[agreement]), name, authoritative_for=authoritative_for)
            db.session.commit()
            return issued.token

    return make


@pytest.fixture
def scim_a(client, make_provisioning) -> Scim:
    return Scim(client, make_provisioning("payroll-a", "a"))


@pytest.fixture
def scim_b(client, make_provisioning) -> Scim:
    return Scim(client, make_provisioning("payroll-b", "b"))
