"""oidcc-refresh-token (OIDCCRefreshToken): two clients each ask for
``offline_access`` with ``prompt=consent`` (OIDC Core 11), get a refresh token
(RFC 6749 A.17 characters, at least 128 bits) and use it a second later with
their scope and client authentication. The refresh response passes the token
endpoint checks; its access token differs and works at userinfo; its ID
token keeps iss, sub, aud, azp and auth_time and has a new iat (OIDC Core
12.2, CompareIdTokenClaims). Then client 1 presents client 2's refresh token
and gets 400 ``invalid_grant``.

Our own rules on top (grants.py): the refresh token rotates on each use, a
rotated token presented again revokes the family, offline access without
explicit consent is not granted.
"""

from tests.conformance.oidf import (
    REDIRECT_URI,
    check_id_token,
    check_token_error,
    check_token_response,
    check_userinfo,
    half_hash,
    run_code_flow,
    userinfo,
    verify_id_token,
)
from tests.helpers import Flow

SCOPE = "openid offline_access"


def refresh(flow, refresh_token: str, scope: str | None = SCOPE):
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if scope:
        data["scope"] = scope
    return flow.client.post("/token", data=data, headers=flow.basic())


def refresh_and_check(flow, idp, first):
    """RefreshTokenRequestSteps + CompareIdTokenClaims."""
    idp.clock.advance(1)  # the suite waits a second so that iat differs
    resp = refresh(flow, first.tokens["refresh_token"])
    tokens = check_token_response(resp)
    assert tokens["access_token"] != first.tokens["access_token"]  # EnsureAccessTokenValuesAreDifferent
    idt = verify_id_token(flow.client, tokens["id_token"])
    claims = check_id_token(idt, now=idp.clock.now(), client_id=flow.client_id, nonce=None,
                            access_token=tokens["access_token"])
    old = first.claims
    for name in ("iss", "sub", "aud", "azp", "auth_time"):
        assert claims[name] == old[name], name
    assert claims["iat"] > old["iat"]
    assert claims["at_hash"] == half_hash(tokens["access_token"], "RS256")
    check_userinfo(userinfo(flow.client, tokens["access_token"]), sub=old["sub"])
    return tokens


def test_refresh_token_flow_with_two_clients(oidf, idp, make_oidf_client):
    first = run_code_flow(oidf, idp, scope=SCOPE, prompt="consent")
    assert set(first.tokens["scope"].split()) == {"openid", "offline_access"}
    refreshed = refresh_and_check(oidf, idp, first)

    make_oidf_client("oidf-client-2", secret="oidf-client-2-secret-0123456789")
    flow2 = Flow(oidf.app, oidf.client, client_id="oidf-client-2", client_secret="oidf-client-2-secret-0123456789",
                 redirect_uri=REDIRECT_URI)
    second = run_code_flow(flow2, idp, scope=SCOPE, prompt="consent", client_id="oidf-client-2")
    refreshed2 = refresh_and_check(flow2, idp, second)

    # client 1 with client 2's refresh token (RefreshTokenRequestExpectingErrorSteps)
    check_token_error(refresh(oidf, refreshed2["refresh_token"]), "invalid_grant")
    # it did not spend client 2's token, nor client 1's own
    check_token_response(refresh(flow2, refreshed2["refresh_token"]))
    check_token_response(refresh(oidf, refreshed["refresh_token"]))


def test_refresh_token_rotates_and_reuse_revokes_the_family(oidf, idp, client):
    first = run_code_flow(oidf, idp, scope=SCOPE, prompt="consent")
    refreshed = refresh_and_check(oidf, idp, first)
    assert refreshed["refresh_token"] != first.tokens["refresh_token"]

    # the rotated token presented again: refused, and everything of the family revoked
    check_token_error(refresh(oidf, first.tokens["refresh_token"]), "invalid_grant")
    check_token_error(refresh(oidf, refreshed["refresh_token"]), "invalid_grant")
    assert userinfo(client, refreshed["access_token"]).status_code == 401


def test_refresh_without_scope_keeps_the_granted_scope(oidf, idp):
    first = run_code_flow(oidf, idp, scope="openid email offline_access", prompt="consent")
    tokens = check_token_response(refresh(oidf, first.tokens["refresh_token"], scope=None))
    assert set(tokens["scope"].split()) == {"openid", "email", "offline_access"}


def test_refresh_cannot_widen_the_scope(oidf, idp):
    first = run_code_flow(oidf, idp, scope=SCOPE, prompt="consent")
    resp = refresh(oidf, first.tokens["refresh_token"], scope="openid offline_access email")
    check_token_error(resp, "invalid_scope")


def test_offline_access_needs_consent(oidf, idp):
    """OIDC Core 11: without prompt=consent (consent remembered from before) no refresh token."""
    run_code_flow(oidf, idp, scope=SCOPE, prompt="consent")
    again = run_code_flow(oidf, idp, scope=SCOPE)
    assert "refresh_token" not in again.tokens
    assert "offline_access" not in again.tokens["scope"].split()


def test_refresh_token_expires_with_its_absolute_lifetime(oidf, idp):
    first = run_code_flow(oidf, idp, scope=SCOPE, prompt="consent")
    refreshed = refresh_and_check(oidf, idp, first)
    idp.clock.advance(idp.settings["REFRESH_TOKEN_LIFETIME"])
    check_token_error(refresh(oidf, refreshed["refresh_token"]), "invalid_grant")

