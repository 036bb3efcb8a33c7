"""The claims of the granted scopes in the ID token (``ID_TOKEN_SCOPE_CLAIMS``
and the per-client ``id_token_claims`` override).

Many client libraries (Auth0's express-openid-connect, for one) read the
profile from the ID token and never call UserInfo. By default the ID token
carries the user claims of the granted scopes (profile, email, phone,
address), as UserInfo releases them; a client may opt out (or in, when the
server's default is off). The ``claims`` parameter's ``id_token`` requests
work either way.
"""

from __future__ import annotations

import json

import pytest

from tests.security.forge import jwt_parts
from tests.test_cli import env, migrated, run  # noqa: F401 - the CLI fixtures

PROFILE = {"given_name": "Kari", "family_name": "Nordmann", "phone_number": "+4791234567",
           "phone_number_verified": True, "address": {"locality": "Oslo", "country": "NO"}}
SCOPE = "openid profile email phone address offline_access"


def claims_of(token: str) -> dict:
    return jwt_parts(token)[1]


@pytest.fixture
def login(app, client, make_user, make_client):
    """``login(id_token_claims=..., scope=...)`` -> the token response for Kari."""
    from tests.helpers import Flow

    make_user(**PROFILE)

    def run_login(*, id_token_claims=None, scope=SCOPE, app_=None, **extra):
        target = app_ or app
        with target.app_context():
            from visma_idp.oidc.registration import create_client
            from visma_idp.storage import db

            create_client("rp", secret="rp-secret-0123456789abcdef", redirect_uris=["https://rp.example.com/cb"],
                          scope=SCOPE, id_token_claims=id_token_claims)
            db.session.commit()
        flow = Flow(target, target.test_client(), client_id="rp", client_secret="rp-secret-0123456789abcdef",
                    redirect_uri="https://rp.example.com/cb")
        return flow, flow.tokens(scope=scope, **extra)

    return run_login


def test_by_default_the_id_token_carries_the_scopes_claims(login):
    flow, tokens = login()
    claims = claims_of(tokens["id_token"])
    assert claims["email"] == "kari@example.no"
    assert claims["email_verified"] is True
    assert claims["name"] == "Kari Nordmann"
    assert claims["given_name"] == "Kari" and claims["family_name"] == "Nordmann"
    assert claims["phone_number"] == "+4791234567" and claims["phone_number_verified"] is True
    assert claims["address"] == {"locality": "Oslo", "country": "NO"}
    info = flow.client.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}).get_json()
    assert {k: v for k, v in claims.items() if k in info} == info, "the same values as UserInfo"


def test_only_the_granted_scopes(login):
    _flow, tokens = login(scope="openid email")
    claims = claims_of(tokens["id_token"])
    assert claims["email"] == "kari@example.no"
    assert not {"name", "given_name", "phone_number", "address"} & set(claims)


def test_openid_alone_adds_no_user_claims(login):
    _flow, tokens = login(scope="openid")
    assert not {"email", "name", "phone_number", "address"} & set(claims_of(tokens["id_token"]))


def test_a_client_may_opt_out(login):
    flow, tokens = login(id_token_claims=False)
    claims = claims_of(tokens["id_token"])
    assert not {"email", "email_verified", "name", "phone_number", "address"} & set(claims)
    info = flow.client.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}).get_json()
    assert info["email"] == "kari@example.no", "UserInfo still has them"


def test_the_refreshed_id_token_follows_the_same_rule(login):
    flow, tokens = login()
    resp = flow.client.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                            headers=flow.basic())
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert claims_of(resp.get_json()["id_token"])["email"] == "kari@example.no"


def test_the_server_default_can_be_off(make_app, login):
    app = make_app(keys=True, ID_TOKEN_SCOPE_CLAIMS=False)
    _flow, tokens = login(app_=app)
    assert "email" not in claims_of(tokens["id_token"])


def test_a_client_may_opt_in_when_the_server_default_is_off(make_app, login):
    app = make_app(keys=True, ID_TOKEN_SCOPE_CLAIMS=False)
    _flow, tokens = login(app_=app, id_token_claims=True)
    assert claims_of(tokens["id_token"])["email"] == "kari@example.no"


def test_the_claims_parameter_still_works_when_opted_out(login):
    request = json.dumps({"id_token": {"given_name": None, "email": {"essential": True}}})
    _flow, tokens = login(id_token_claims=False, scope="openid", claims=request)
    claims = claims_of(tokens["id_token"])
    assert claims["given_name"] == "Kari" and claims["email"] == "kari@example.no"
    assert "family_name" not in claims


def test_a_changed_client_setting_reaches_the_next_token(app, login):
    """The setting is read from the client registration when the ID token is minted."""
    from sqlalchemy import update

    from visma_idp.storage import Client, db

    flow, tokens = login()
    with app.app_context():
        db.session.execute(update(Client).where(Client.client_id == "rp").values(id_token_claims=False))
        db.session.commit()
        app.extensions["visma_idp"].clients.invalidate("rp")
    resp = flow.client.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                            headers=flow.basic())
    assert "email" not in claims_of(resp.get_json()["id_token"])


# -- administration -------------------------------------------------------------------


def test_create_client_stores_the_choice(app):
    from visma_idp.oidc.registration import client_as_dict, create_client

    with app.app_context():
        for client_id, choice in (("a", None), ("b", True), ("c", False)):
            created = create_client(client_id, redirect_uris=["https://rp.example.com/cb"], id_token_claims=choice)
            assert created.client.id_token_claims is choice
            assert client_as_dict(created.client)["id_token_claims"] is choice


def test_cli_create_and_list(migrated):  # noqa: F811
    created = {}
    for client_id, flag in (("plain", None), ("with", "--id-token-claims"), ("without", "--no-id-token-claims")):
        args = ["clients", "create", "--client-id", client_id, "--redirect-uri", "https://rp.example.com/cb"]
        if flag:
            args.append(flag)
        created[client_id] = json.loads(migrated(*args).stdout)
    assert created["plain"]["id_token_claims"] is None
    assert created["with"]["id_token_claims"] is True
    assert created["without"]["id_token_claims"] is False
    listed = {json.loads(line)["client_id"]: json.loads(line)
              for line in migrated("clients", "list", "--json").stdout.splitlines()}
    assert {k: v["id_token_claims"] for k, v in listed.items()} == {"plain": None, "with": True, "without": False}
    table = migrated("clients", "list").stdout.splitlines()
    header = table[0].split()
    assert "id_token_claims" in header
    column = header.index("id_token_claims")
    rows = {line.split()[0]: line.split()[column] for line in table[1:] if line.strip() and not line.startswith("-")}
    assert rows == {"plain": "default", "with": "yes", "without": "no"}


def test_cli_help_names_the_flag(migrated):  # noqa: F811
    out = migrated("clients", "create", "--help").stdout
    assert "--id-token-claims / --no-id-token-claims" in out
