"""oidcc-codereuse-30seconds (OIDCCAuthCodeReuseAfter30Seconds): the code is
presented again 30 seconds after its redemption: refused with
``invalid_grant``, and the tokens issued from it are revoked (RFC 6749 §4.1.2
"SHOULD revoke"): userinfo with the first access token now fails with a 4xx.
The clock is moved instead of waiting."""

from tests.conformance.oidf import check_token_error, check_userinfo, run_code_flow, userinfo


def test_reuse_after_30_seconds_revokes_the_access_token(oidf, idp, client):
    result = run_code_flow(oidf, idp)
    access_token = result.tokens["access_token"]
    check_userinfo(userinfo(client, access_token), sub=result.claims["sub"])
    live = client.post("/introspect", data={"token": access_token}, headers=oidf.basic()).get_json()
    assert live["active"] is True and live["sub"] == result.claims["sub"]

    idp.clock.advance(30)
    check_token_error(oidf.token(result.code, verifier=None), "invalid_grant")

    resp = userinfo(client, access_token)
    assert resp.status_code == 401
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]


def test_reuse_revokes_the_refresh_token_too(oidf, idp, client):
    result = run_code_flow(oidf, idp, scope="openid offline_access", prompt="consent")
    refresh_token = result.tokens["refresh_token"]
    idp.clock.advance(30)
    check_token_error(oidf.token(result.code, verifier=None), "invalid_grant")
    resp = client.post("/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                       headers=oidf.basic())
    check_token_error(resp, "invalid_grant")
    introspected = client.post("/introspect", data={"token": result.tokens["access_token"]}, headers=oidf.basic())
    assert introspected.get_json() == {"active": False}


def test_reuse_does_not_touch_other_logins(oidf, idp, client):
    first = run_code_flow(oidf, idp)
    second = run_code_flow(oidf, idp)
    idp.clock.advance(30)
    check_token_error(oidf.token(first.code, verifier=None), "invalid_grant")
    assert userinfo(client, first.tokens["access_token"]).status_code == 401
    check_userinfo(userinfo(client, second.tokens["access_token"]), sub=second.claims["sub"])
