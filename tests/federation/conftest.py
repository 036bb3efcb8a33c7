"""Fixtures of the federation tests: real upstream providers (npm
``oidc-provider``, ``upstream.mjs``) on loopback, playing a company IdP,
ID-porten and a multi-tenant Entra ID, and helpers that walk a browser (the
Flask test client for our side, ``requests`` for the upstream's) through a
round trip.

Each upstream knows our client ``visma-idp`` with the callback of the test
issuer (``tests/conftest.py``: http://127.0.0.1:5000). Without node or
oidc-provider the tests skip, except under CI=true where they fail.
"""

from __future__ import annotations

import os
from datetime import date

import pytest
import requests

from tests.conftest import ISSUER
from tests.federation.upstream import Upstream, login_via_http, node_available
from tests.helpers import csrf, path_of, query
from tests.test_cli import env, migrated, run  # noqa: F401 - the CLI's fixtures, for test_cli.py here

CALLBACK = ISSUER + "/upstreams/callback"
SECRET = "upstream-client-secret-0123456789abcdef-0123456789"
TENANT_A = "9188040d-6c67-4c5b-b112-36a304b66dad"
TENANT_B = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def national_number(day: int = 1, individual: int = 123) -> str:
    from visma_idp.federation.national_id_number import make_number

    for candidate in range(individual, individual + 20):  # some nine digits have no valid check digits
        try:
            return make_number(date(1990, 1, day), candidate)
        except ValueError:
            continue
    raise AssertionError("no valid number")


KARI_NUMBER = national_number(1, 123)
OLA_NUMBER = national_number(2, 234)


def _client(client_id: str = "visma-idp", redirect_uri: str = CALLBACK, **extra) -> dict:
    meta = {"client_id": client_id, "redirect_uris": [redirect_uri], "grant_types": ["authorization_code"],
            "response_types": ["code"], **extra}
    if extra.get("token_endpoint_auth_method") != "private_key_jwt":
        meta.setdefault("client_secret", SECRET)
    return meta


COMPANY_ACCOUNTS = {
    # the same address as a local account, vouched for: still never linked by it
    "kari": {"sub": "acme-0001", "email": "kari@example.no", "email_verified": True, "name": "Kari Nordmann"},
    "kari-unverified": {"sub": "acme-0002", "email": "kari@example.no", "email_verified": False},
    "kari-noflag": {"sub": "acme-0003", "email": "kari@example.no"},
    "kari-mfa": {"sub": "acme-0001", "email": "kari@example.no", "email_verified": True, "amr": ["pwd", "otp"],
                 "acr": "urn:acme:mfa"},
    "newbie": {"sub": "acme-0004", "email": "nina@acme.no", "email_verified": True, "name": "Nina Ny"},
    "newbie-unverified": {"sub": "acme-0005", "email": "nils@acme.no", "email_verified": False},
}
ENTRA_ACCOUNTS = {
    "anna": {"sub": "pairwise-anna", "tid": TENANT_A, "oid": "00000000-0000-0000-0000-00000000a001",
             "email": "kari@example.no", "preferred_username": "anna@contoso.example", "name": "Anna"},
    # a token of tenant A's issuer that claims tenant B: iss and tid disagree
    "mallory": {"sub": "pairwise-mallory", "tid": TENANT_B, "oid": "00000000-0000-0000-0000-00000000b001",
                "email": "kari@example.no"},
}
IDPORTEN_ACCOUNTS = {
    "kari-high": {"sub": "idp-kari", "pid": KARI_NUMBER, "acr": "idporten-loa-high", "amr": "BankID"},
    "kari-substantial": {"sub": "idp-kari", "pid": KARI_NUMBER, "acr": "idporten-loa-substantial",
                         "amr": ["MinID"]},
    "ola-high": {"sub": "idp-ola", "pid": OLA_NUMBER, "acr": "idporten-loa-high", "amr": ["BankID"]},
    "bad-number": {"sub": "idp-bad", "pid": "01019012345", "acr": "idporten-loa-high", "amr": "BankID"},
}


def missing(what: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} (required in CI)")
    pytest.skip(what)


@pytest.fixture(scope="session")
def node():
    reason = node_available()
    if reason:
        missing(reason)


@pytest.fixture(scope="session")
def company_idp(node):
    config = {"accounts": COMPANY_ACCOUNTS,
              "clients": [_client(), _client("visma-idp-hs256", id_token_signed_response_alg="HS256")]}
    with Upstream.start(config) as running:
        yield running


@pytest.fixture(scope="session")
def entra_idp(node):
    config = {"issuer_path": f"/{TENANT_A}/v2.0", "template_discovery": "/organizations/v2.0",
              "accounts": ENTRA_ACCOUNTS, "clients": [_client()]}
    with Upstream.start(config) as running:
        yield running


@pytest.fixture(scope="session")
def idporten(node):
    config = {"acr_values": ["idporten-loa-substantial", "idporten-loa-high"], "accounts": IDPORTEN_ACCOUNTS,
              "clients": [_client()]}
    with Upstream.start(config) as running:
        yield running


@pytest.fixture
def add_upstream(app):
    """Add an upstream as the operator's command does; returns its name."""
    from visma_idp.federation.upstreams import UpstreamSpec, add
    from visma_idp.storage import db

    def make(name: str, running: Upstream, **kwargs) -> str:
        kwargs.setdefault("issuer", running.issuer)
        kwargs.setdefault("client_id", "visma-idp")
        if not kwargs.get("private_key_jwt"):
            kwargs.setdefault("client_secret", SECRET)
        with app.app_context():
            add(UpstreamSpec(name=name, **kwargs))
            db.session.commit()
        return name

    return make


@pytest.fixture
def company(add_upstream, company_idp):
    return add_upstream("acme", company_idp, display_name="Acme ID", domains=("acme.no",))


@pytest.fixture
def national(add_upstream, idporten):
    return add_upstream("idporten", idporten, display_name="ID-porten", national_id_claim="pid",
                        scopes=("openid", "profile"), acr_values=("idporten-loa-high",))


def button(client, name: str, tx: str | None = None, page: str = "/login"):
    """Press "Sign in with <upstream>" on the email page; returns the redirect to the upstream."""
    html = client.get(page + (f"?tx={tx}" if tx else "")).get_data(as_text=True)
    data = {"csrf_token": csrf(html)}
    if tx:
        data["tx"] = tx
    return client.post(f"/login/upstream/{name}", data=data)


def at_upstream(resp, login: str, session: requests.Session | None = None) -> str:
    """Sign in at the upstream as ``login`` (a fresh upstream browser unless given);
    the URL it sends the browser back to (our callback), not yet followed."""
    assert resp.status_code == 302, resp.get_data(as_text=True)[:400]
    return login_via_http(session or requests.Session(), resp.headers["Location"], login)


def back_home(client, url: str):
    """The browser comes back to our callback with the upstream's answer."""
    assert url.startswith(CALLBACK), url
    return client.get(path_of(url))


def tx_of(resp) -> str | None:
    return query(resp.headers["Location"]).get("tx")
