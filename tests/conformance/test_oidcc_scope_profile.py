"""oidcc-scope-profile (OIDCCScopeProfile): with ``scope=openid profile`` the
userinfo endpoint returns every profile claim of OIDC Core 5.4 (the suite's
VerifyScopesReturnedInUserInfoClaims), with standard types
(ValidateUserInfoStandardClaims, EnsureUserInfoBirthDateValid,
EnsureUserInfoUpdatedAtValid), and nothing of the scopes not asked for. With
an access token issued, the claims are not put in the ID token (5.4)."""

from tests.conformance.oidf import SCOPE_CLAIMS, check_scopes_in_userinfo, check_userinfo, run_code_flow, userinfo


def test_scope_profile(oidf, idp, client):
    result = run_code_flow(oidf, idp, scope="openid profile")
    assert result.tokens["scope"].split() == ["openid", "profile"]
    info = check_userinfo(userinfo(client, result.tokens["access_token"]), sub=result.claims["sub"])
    check_scopes_in_userinfo(info, "openid profile")
    assert info["name"] == "Kari Nordmann"
    assert info["given_name"] == "Kari"
    assert info["family_name"] == "Nordmann"
    assert info["middle_name"] == "Marie"
    assert info["preferred_username"] == "kari"
    assert info["birthdate"] == "1985-04-12"
    assert info["zoneinfo"] == "Europe/Oslo"
    assert isinstance(info["updated_at"], int)
    assert set(info) == {"sub", *SCOPE_CLAIMS["profile"]}
    assert not set(SCOPE_CLAIMS["profile"]) & set(result.claims)
