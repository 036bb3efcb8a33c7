"""oidcc-claims-locales (OIDCCClaimsLocales): ``claims_locales=se`` must not
result in an error; claims come back in the language they are held in."""

from tests.conformance.oidf import check_userinfo, run_code_flow, userinfo


def test_claims_locales(oidf, idp, client):
    result = run_code_flow(oidf, idp, claims_locales="se", scope="openid profile")
    info = check_userinfo(userinfo(client, result.tokens["access_token"]), sub=result.claims["sub"])
    assert info["name"] == "Kari Nordmann"
    assert not any("#" in k for k in info), "no language-tagged claim names for a locale we do not hold"
