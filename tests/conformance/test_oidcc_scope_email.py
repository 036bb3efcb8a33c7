"""oidcc-scope-email (OIDCCScopeEmail): ``scope=openid email`` returns email and
email_verified from userinfo; the ID token (an access token was issued) has no
email (EnsureIdTokenDoesNotContainEmailForScopeEmail) and no name
(EnsureIdTokenDoesNotContainName), and userinfo has no name
(EnsureUserInfoDoesNotContainName)."""

from tests.conformance.oidf import check_scopes_in_userinfo, check_userinfo, run_code_flow, userinfo


def test_scope_email(oidf, idp, client):
    result = run_code_flow(oidf, idp, scope="openid email")
    info = check_userinfo(userinfo(client, result.tokens["access_token"]), sub=result.claims["sub"])
    check_scopes_in_userinfo(info, "openid email")
    assert info == {"sub": result.claims["sub"], "email": "kari@example.no", "email_verified": True}
    assert "email" not in result.claims and "email_verified" not in result.claims
    assert "name" not in result.claims
