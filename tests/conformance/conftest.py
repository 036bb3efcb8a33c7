"""Fixtures of the certification-plan tests.

``oidf`` is the conformance suite's relying party as a certification run
registers it: a confidential web client (``client_secret_basic``) whose
requests carry no PKCE (the suite sends PKCE only in
oidcc-ensure-request-with-valid-pkce-succeeds), so it is registered with
``require_pkce=False``. Its user has every standard claim filled in, as the
suite's scope modules expect all claims of a scope back.

It is registered with ``id_token_claims=False`` (``visma-idp clients create
--no-id-token-claims``), as an operator registers the certification client:
the server's default (``ID_TOKEN_SCOPE_CLAIMS``) puts the claims of the
granted scopes in the ID token too, and the suite warns on that
(EnsureIdTokenDoesNotContainEmailForScopeEmail, EnsureIdTokenDoesNotContainName,
EnsureIdTokenDoesNotContainNonRequestedClaims: OIDC Core 5.4 keeps them in
UserInfo when an access token is issued). The default is tested in
``tests/oidc/test_id_token_scope_claims.py``.
"""

from __future__ import annotations

import pytest

from tests.conformance.oidf import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI
from tests.helpers import Flow

FULL_CLAIMS = {
    "given_name": "Kari",
    "family_name": "Nordmann",
    "locale": "en",
    "zoneinfo": "Europe/Oslo",
    "phone_number": "+4791234567",
    "phone_number_verified": True,
    "address": {
        "formatted": "Storgata 1\n0155 Oslo\nNorway",
        "street_address": "Storgata 1",
        "locality": "Oslo",
        "postal_code": "0155",
        "country": "NO",
    },
    "profile": {
        "middle_name": "Marie",
        "nickname": "Kari",
        "preferred_username": "kari",
        "profile": "https://people.example.no/kari",
        "picture": "https://people.example.no/kari.png",
        "website": "https://kari.example.no",
        "gender": "female",
        "birthdate": "1985-04-12",
    },
}


@pytest.fixture
def make_oidf_client(make_client):
    def make(client_id: str = CLIENT_ID, **kwargs):
        kwargs.setdefault("secret", CLIENT_SECRET)
        kwargs.setdefault("require_pkce", False)
        kwargs.setdefault("redirect_uris", [REDIRECT_URI])
        kwargs.setdefault("id_token_claims", False)
        return make_client(client_id, **kwargs)

    return make


@pytest.fixture
def oidf(app, client, make_user, make_oidf_client) -> Flow:
    make_user(**FULL_CLAIMS)
    secret = make_oidf_client()
    return Flow(app, client, client_id=CLIENT_ID, client_secret=secret, redirect_uri=REDIRECT_URI)
