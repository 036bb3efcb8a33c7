"""oidcc-userinfo-get (OIDCCUserInfoGet): the userinfo endpoint answers a GET
with the access token in the Authorization header: 200, JSON, the same sub
as the ID token, standard claims with their standard types."""

from tests.conformance.oidf import check_userinfo, run_code_flow, userinfo


def test_userinfo_get(oidf, idp, client):
    result = run_code_flow(oidf, idp, scope="openid email")
    resp = userinfo(client, result.tokens["access_token"], "get")
    info = check_userinfo(resp, sub=result.claims["sub"])
    assert info["email"] == "kari@example.no"
    assert info["email_verified"] is True
    assert "no-store" in resp.headers["Cache-Control"]


def test_userinfo_without_token_is_a_bearer_challenge(client):
    resp = client.get("/userinfo")
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert "error=" not in resp.headers["WWW-Authenticate"]  # RFC 6750 §3.1: no error code without a token


def test_userinfo_with_a_bad_token_is_invalid_token(client):
    resp = client.get("/userinfo", headers={"Authorization": "Bearer not-a-token"})
    assert resp.status_code == 401
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]
