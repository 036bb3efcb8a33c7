"""oidcc-scope-address (OIDCCScopeAddress): ``scope=openid address`` returns
the address claim, a JSON object of the OIDC Core 5.1.1 members, from
userinfo."""

from tests.conformance.oidf import check_scopes_in_userinfo, check_userinfo, run_code_flow, userinfo


def test_scope_address(oidf, idp, client):
    result = run_code_flow(oidf, idp, scope="openid address")
    info = check_userinfo(userinfo(client, result.tokens["access_token"]), sub=result.claims["sub"])
    check_scopes_in_userinfo(info, "openid address")
    assert set(info) == {"sub", "address"}
    assert info["address"]["street_address"] == "Storgata 1"
    assert info["address"]["country"] == "NO"
    assert info["address"]["formatted"] == "Storgata 1\n0155 Oslo\nNorway"
    assert "address" not in result.claims
