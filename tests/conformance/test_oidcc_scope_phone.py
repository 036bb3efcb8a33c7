"""oidcc-scope-phone (OIDCCScopePhone): ``scope=openid phone`` returns
phone_number and phone_number_verified (a boolean) from userinfo."""

from tests.conformance.oidf import check_scopes_in_userinfo, check_userinfo, run_code_flow, userinfo


def test_scope_phone(oidf, idp, client):
    result = run_code_flow(oidf, idp, scope="openid phone")
    info = check_userinfo(userinfo(client, result.tokens["access_token"]), sub=result.claims["sub"])
    check_scopes_in_userinfo(info, "openid phone")
    assert info == {"sub": result.claims["sub"], "phone_number": "+4791234567", "phone_number_verified": True}
    assert "phone_number" not in result.claims
