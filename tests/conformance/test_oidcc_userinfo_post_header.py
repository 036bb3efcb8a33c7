"""oidcc-userinfo-post-header (OIDCCUserInfoPostHeader): the userinfo endpoint
answers a POST with the access token in the Authorization header."""

from tests.conformance.oidf import check_userinfo, run_code_flow, userinfo


def test_userinfo_post_header(oidf, idp, client):
    result = run_code_flow(oidf, idp, scope="openid profile")
    info = check_userinfo(userinfo(client, result.tokens["access_token"], "post-header"), sub=result.claims["sub"])
    assert info["name"] == "Kari Nordmann"
