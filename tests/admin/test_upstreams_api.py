"""/admin/api/upstreams: the admin mirror of `visma-idp upstreams add|list|remove`,
for admins holding manage_upstreams for every domain of the upstream.

A real upstream (npm oidc-provider, tests/federation/upstream.py) answers the
discovery requests; without node the tests skip, except under CI=true.
"""

from __future__ import annotations

import os
import socket

import pytest

from tests.admin import events
from tests.admin.test_admin_api import REDIRECT, tokens_for
from tests.conftest import ISSUER
from tests.federation.upstream import Upstream, node_available

ADMIN = "ola@admins.example.org"  # not a domain the upstreams serve: signs in with a password
API = "/admin/api/upstreams"
SECRET = "upstream-client-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def upstream_idp():
    reason = node_available()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (required in CI)")
        pytest.skip(reason)
    config = {"accounts": {"kari": {"sub": "acme-0001", "email": "kari@acme.no"}},
              "clients": [{"client_id": "visma-idp", "client_secret": SECRET,
                           "redirect_uris": [ISSUER + "/upstreams/callback"],
                           "grant_types": ["authorization_code"], "response_types": ["code"]}]}
    with Upstream.start(config) as running:
        yield running


@pytest.fixture
def token_for(app, make_user, make_client):
    """token_for(*domains, right=MANAGE_UPSTREAMS, scope=...): an access token of ADMIN holding ``right``
    for ``domains`` (none: no right at all)."""
    from visma_idp.admin import rights
    from visma_idp.storage import db, queries

    make_user(email=ADMIN, name="Ola Admin")
    make_client("admin-tool", redirect_uris=[REDIRECT], scope="openid idp:admin",
                secret="admin-tool-secret-0123456789", skip_consent=True)

    def make(*domains: str, right: str = rights.MANAGE_UPSTREAMS, scope: str = "openid idp:admin") -> str:
        if domains:
            with app.app_context():
                rights.grant(queries.user_by_email(ADMIN), right, domains)
                db.session.commit()
        return tokens_for(app, ADMIN, scope)["access_token"]

    return make


@pytest.fixture
def service_add(app, upstream_idp):
    """Add an upstream as the operator's command does."""
    from visma_idp.federation.upstreams import UpstreamSpec, add
    from visma_idp.storage import db

    def make(name: str, **kwargs) -> None:
        with app.app_context():
            add(UpstreamSpec(name=name, issuer=upstream_idp.issuer, client_id="visma-idp", client_secret=SECRET,
                             **kwargs))
            db.session.commit()

    return make


def body_for(upstream_idp, **extra) -> dict:
    return {"name": "acme", "issuer": upstream_idp.issuer, "client_id": "visma-idp", "client_secret": SECRET,
            "domains": ["example.no"], **extra}


def auth(token: str | None) -> dict:
    return {"Authorization": f"Bearer {token}"} if token else {}


def post(client, token, body, **kwargs):
    return client.post(API, json=body, headers=auth(token), **kwargs)


def names(app) -> list[str]:
    from visma_idp.federation.upstreams import all_upstreams

    with app.app_context():
        return [row.name for row in all_upstreams()]


def refusals(app) -> list[dict]:
    return [event.details for event in events(app, "upstream_api_refused")]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- tokens and rights -------------------------------------------------------------------


def test_without_a_token_every_call_is_401(client):
    for resp in (client.get(API), client.post(API, json={"name": "acme"}), client.delete(API + "/acme")):
        assert resp.status_code == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer realm=")


def test_a_token_without_the_admin_scope_is_403(client, token_for):
    token = token_for("example.no", scope="openid")
    resp = client.get(API, headers=auth(token))
    assert resp.status_code == 403 and resp.get_json()["error"] == "insufficient_scope"


def test_without_the_right_every_call_is_403_and_audited(app, client, token_for, upstream_idp):
    from visma_idp.admin import rights

    token = token_for("example.no", right=rights.INVITE_USERS)  # another right for the same domain
    assert client.get(API, headers=auth(token)).status_code == 403
    resp = post(client, token, body_for(upstream_idp))
    assert resp.status_code == 403 and resp.get_json()["error"] == "forbidden"
    assert client.delete(API + "/acme", headers=auth(token)).status_code == 403
    assert [(r["action"], r["reason"]) for r in refusals(app)] == [
        ("list", "no_right"), ("add", "no_right"), ("remove", "no_right")]
    assert names(app) == []


@pytest.mark.parametrize("domains", [["acme.no"], ["example.no", "acme.no"], ["sub.example.no"],
                                     ["evil-example.no"]])
def test_a_domain_outside_the_grant_is_403(app, client, token_for, upstream_idp, domains):
    token = token_for("example.no")
    resp = post(client, token, body_for(upstream_idp, domains=domains))
    assert resp.status_code == 403 and resp.get_json()["error"] == "forbidden"
    assert resp.get_json()["message"]
    (refusal,) = refusals(app)
    assert refusal["reason"] == "outside_domains" and refusal["action"] == "add"
    assert names(app) == []


@pytest.mark.parametrize("extra", [{"domains": []}, {"domains": [], "national_id_claim": "pid"},
                                   {"national_id_claim": "pid"}])
def test_national_and_domainless_upstreams_are_the_operators(app, client, token_for, upstream_idp, extra):
    token = token_for("example.no")
    body = body_for(upstream_idp, **extra)
    resp = post(client, token, body)
    assert resp.status_code == 403 and resp.get_json()["error"] == "forbidden"
    assert "visma-idp upstreams" in resp.get_json()["message"]
    (refusal,) = refusals(app)
    assert refusal["reason"] in ("national", "no_domains")
    assert names(app) == []


# -- adding ------------------------------------------------------------------------------


def test_an_admin_adds_an_upstream_for_their_domain(app, client, token_for, upstream_idp):
    token = token_for("example.no")
    resp = post(client, token, body_for(upstream_idp, domains=["@Example.NO"], display_name="Example ID"))
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert resp.headers["Cache-Control"] == "no-store"
    answer = resp.get_json()
    assert answer["name"] == "acme" and answer["domains"] == ["example.no"] and answer["display_name"] == "Example ID"
    assert answer["issuer"] == upstream_idp.issuer and answer["token_endpoint_auth_method"] == "client_secret_basic"
    assert answer["jwks_uri"] is None and answer["redirect_uri"] == ISSUER + "/upstreams/callback"
    assert SECRET not in resp.get_data(as_text=True)
    assert names(app) == ["acme"]
    from visma_idp.federation.upstreams import by_name

    with app.app_context():
        assert by_name("acme").client_secret == SECRET
    (added,) = events(app, "upstream_added")
    assert added.details["domains"] == ["example.no"]
    assert refusals(app) == []


def test_every_cli_option_has_its_field(app, client, token_for, upstream_idp):
    token = token_for("example.no", "example.com")
    body = body_for(upstream_idp, name="Full", display_name="Full", domains=["example.no", "example.com"],
                    client_secret_post=True, scopes=["openid", "email"], acr_values=["loa-high"],
                    claim_map={"email": "upn", "sub": "oid"}, tenants=["9188040d-6c67-4c5b-b112-36a304b66dad"],
                    id_token_alg="ES256", acr="urn:example:acr:mfa", trust_amr=True, create_accounts=True,
                    link_by_proof=False, trust_email=True, test_environment=True, discovery_url=None)
    resp = post(client, token, body)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    answer = resp.get_json()
    assert answer["name"] == "full" and answer["token_endpoint_auth_method"] == "client_secret_post"
    assert answer["scopes"] == ["openid", "email"] and answer["acr_values"] == ["loa-high"]
    assert answer["claim_map"] == {"email": "upn", "sub": "oid"} and answer["id_token_alg"] == "ES256"
    assert answer["domains"] == ["example.com", "example.no"] and answer["acr"] == "urn:example:acr:mfa"
    assert answer["tenants"] == ["9188040d-6c67-4c5b-b112-36a304b66dad"]
    assert (answer["trust_amr"], answer["create_accounts"], answer["link_by_proof"], answer["trust_email"],
            answer["test_environment"]) == (True, True, False, True, True)


def test_a_private_key_jwt_upstream_shows_the_jwks_uri_to_register(app, client, token_for, upstream_idp):
    token = token_for("example.no")
    body = body_for(upstream_idp, private_key_jwt=True)
    del body["client_secret"]
    resp = post(client, token, body)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    answer = resp.get_json()
    assert answer["token_endpoint_auth_method"] == "private_key_jwt"
    assert answer["jwks_uri"] == ISSUER + "/upstreams/jwks.json" and answer["kid"]
    assert "private_key" not in answer and '"d"' not in resp.get_data(as_text=True)  # no private key
    assert client.get("/upstreams/jwks.json").get_json()["keys"][0]["kid"] == answer["kid"]


@pytest.mark.parametrize(("field", "value"), [
    ("name", 5), ("name", ""), ("name", "a\nb"), ("client_id", None), ("client_secret", 12),
    ("issuer", ["https://x.example"]), ("display_name", "x" * 101), ("private_key_jwt", "yes"),
    ("link_by_proof", None), ("create_accounts", 1), ("scopes", "openid email"), ("scopes", ["openid email"]),
    ("scopes", [1]), ("domains", "example.no"), ("domains", ["not a domain"]), ("domains", ["*.example.no"]),
    ("tenants", [None]), ("claim_map", {"phone": "mobile"}), ("claim_map", {"email": 5}), ("claim_map", []),
    ("acr_values", ["x"] * 51), ("id_token_alg", False),
])
def test_a_wrong_type_is_400_naming_the_field(app, client, token_for, upstream_idp, field, value):
    token = token_for("example.no")
    resp = post(client, token, body_for(upstream_idp, **{field: value}))
    assert resp.status_code == 400, resp.get_data(as_text=True)
    answer = resp.get_json()
    assert answer["error"] == "invalid_request" and answer["field"] == field and field in answer["message"]
    assert refusals(app)[0]["reason"] == "bad_field"
    assert names(app) == []


def test_both_secret_post_and_private_key_jwt_is_400(client, token_for, upstream_idp):
    token = token_for("example.no")
    resp = post(client, token, body_for(upstream_idp, private_key_jwt=True, client_secret_post=True))
    assert resp.status_code == 400 and resp.get_json()["field"] == "client_secret_post"


def test_an_unknown_field_is_400(client, token_for, upstream_idp):
    token = token_for("example.no")
    resp = post(client, token, body_for(upstream_idp, secret="x"))
    assert resp.status_code == 400 and resp.get_json()["field"] == "secret"


@pytest.mark.parametrize("body", [None, [], "acme"])
def test_a_body_that_is_not_an_object_is_400(client, token_for, body):
    token = token_for("example.no")
    if body is None:
        resp = client.post(API, data="not json", headers={**auth(token), "Content-Type": "text/plain"})
    else:
        resp = post(client, token, body)
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_request"


def test_the_services_refusal_is_400_with_its_reason(app, client, token_for, upstream_idp):
    token = token_for("example.no")
    resp = post(client, token, body_for(upstream_idp, id_token_alg="none"))
    assert resp.status_code == 400
    answer = resp.get_json()
    assert answer["error"] == "invalid_request" and "never none" in answer["detail"] and answer["message"]
    (refusal,) = refusals(app)
    assert refusal["reason"] == "invalid" and "never none" in refusal["detail"]


def test_a_wrong_issuer_is_400(client, token_for, upstream_idp):
    token = token_for("example.no")
    resp = post(client, token, body_for(upstream_idp, issuer=upstream_idp.issuer + "/other",
                                        discovery_url=upstream_idp.discovery_url))
    assert resp.status_code == 400 and "issuer" in resp.get_json()["detail"]


def test_a_taken_name_is_409(app, client, token_for, upstream_idp, service_add):
    service_add("acme", domains=("acme.no",))
    token = token_for("example.no")
    resp = post(client, token, body_for(upstream_idp, name="ACME"))
    assert resp.status_code == 409 and resp.get_json()["error"] == "conflict"
    assert refusals(app)[0]["reason"] == "name_taken"
    with app.app_context():
        from visma_idp.federation.upstreams import by_name

        assert by_name("acme").domains == ["acme.no"]


def test_a_domain_served_by_another_upstream_is_400(client, token_for, upstream_idp, service_add):
    service_add("first", domains=("example.no",))
    token = token_for("example.no")
    resp = post(client, token, body_for(upstream_idp))
    assert resp.status_code == 400 and "first" in resp.get_json()["detail"]


def test_an_upstream_that_does_not_answer_is_400(app, client, token_for, upstream_idp):
    token = token_for("example.no")
    url = f"http://127.0.0.1:{closed_port()}"
    resp = post(client, token, body_for(upstream_idp, issuer=url))
    assert resp.status_code == 400, resp.get_data(as_text=True)
    answer = resp.get_json()
    assert answer["error"] == "invalid_request" and "did not answer" in answer["detail"]
    assert refusals(app)[0]["reason"] in ("invalid", "unavailable")  # the service's InvalidInput, or its own error
    assert names(app) == [] and events(app, "upstream_added") == []


def test_outside_development_our_own_network_is_refused(app, client, token_for, upstream_idp, monkeypatch):
    from visma_idp.admin import api

    token = token_for("example.no")
    monkeypatch.setattr(api, "is_loopback_issuer", lambda issuer: False)  # as with an https issuer
    resp = post(client, token, body_for(upstream_idp))
    assert resp.status_code == 400 and resp.get_json()["field"] == "issuer"
    with app.test_request_context("/"):
        for url in ("http://idp.example.com", "https://127.0.0.1", "https://10.1.2.3/x", "https://169.254.169.254",
                    "https://localhost", "https://intranet", "https://[::1]/"):
            assert not api._public_url(url), url
        assert api._public_url("https://login.microsoftonline.com/tenant/v2.0")
        assert api._public_url("https://8.8.8.8/")


# -- listing and removing ---------------------------------------------------------------


@pytest.fixture
def several(service_add):
    service_add("ours", domains=("example.no",))
    service_add("ours-too", domains=("example.com", "example.net"))
    service_add("partly", domains=("example.org", "other.no"))
    service_add("theirs", domains=("other.com",))
    service_add("national", national_id_claim="pid")
    service_add("button")  # no domains


def test_the_list_shows_only_upstreams_of_granted_domains(client, token_for, several):
    token = token_for("example.no", "example.com", "example.net", "example.org")
    resp = client.get(API, headers=auth(token))
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    listed = resp.get_json()["upstreams"]
    assert [u["name"] for u in listed] == ["ours", "ours-too"]
    assert all("client_secret" not in u and SECRET not in str(u) for u in listed)


def test_an_admin_removes_an_upstream_of_their_domain(app, client, token_for, several):
    token = token_for("example.no")
    resp = client.delete(API + "/ours", headers=auth(token))
    assert resp.status_code == 204 and resp.get_data() == b""
    assert "ours" not in names(app)
    (removed,) = events(app, "upstream_removed")
    assert removed.details["upstream"] == "ours"
    resp = client.delete(API + "/ours", headers=auth(token))
    assert resp.status_code == 404 and resp.get_json()["error"] == "not_found"
    assert refusals(app)[-1]["reason"] == "not_found"


@pytest.mark.parametrize(("name", "reason"), [("theirs", "outside_domains"), ("partly", "outside_domains"),
                                              ("ours-too", "outside_domains"), ("national", "national"),
                                              ("button", "no_domains")])
def test_others_upstreams_are_not_removed(app, client, token_for, several, name, reason):
    token = token_for("example.no", "example.com", "example.org")
    resp = client.delete(f"{API}/{name}", headers=auth(token))
    assert resp.status_code == 403 and resp.get_json()["error"] == "forbidden"
    assert name in names(app)
    assert refusals(app)[-1]["reason"] == reason and refusals(app)[-1]["action"] == "remove"
    assert events(app, "upstream_removed") == []

