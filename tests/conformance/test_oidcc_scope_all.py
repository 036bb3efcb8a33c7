"""oidcc-scope-all (OIDCCScopeAll): ``scope=openid email phone address profile``
returns the claims of every one of those scopes from userinfo."""

from tests.conformance.oidf import SCOPE_CLAIMS, check_scopes_in_userinfo, check_userinfo, run_code_flow, userinfo

SCOPE = "openid email phone address profile"


def test_scope_all(oidf, idp, client):
    result = run_code_flow(oidf, idp, scope=SCOPE)
    assert set(result.tokens["scope"].split()) == set(SCOPE.split())
    info = check_userinfo(userinfo(client, result.tokens["access_token"]), sub=result.claims["sub"])
    check_scopes_in_userinfo(info, SCOPE)
    assert set(info) == {c for s in SCOPE.split() for c in SCOPE_CLAIMS[s]}
    assert not (set(info) - {"sub"}) & set(result.claims), "claims of scopes belong in userinfo, not the ID token"
