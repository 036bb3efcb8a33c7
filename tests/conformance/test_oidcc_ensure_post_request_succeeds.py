"""oidcc-ensure-post-request-succeeds (OIDCCEnsurePostRequestSucceeds): the
authorization request sent as a form POST (OIDC Core 3.1.2.1) works like a
GET, through the login pages too."""

from tests.conformance.oidf import NO_PKCE, callback_params, finish_code_flow, run_code_flow


def test_post_authorization_request(oidf, idp):
    result = run_code_flow(oidf, idp, method="POST")
    assert result.claims["nonce"] == result.nonce


def test_post_authorization_request_with_a_session(oidf, idp):
    run_code_flow(oidf, idp)
    resp = oidf.start("POST", **NO_PKCE)
    finish_code_flow(oidf, idp, callback_params(resp))


def test_cross_origin_post_is_accepted(oidf, idp):
    """The RP's page posts the request from its own origin."""
    run_code_flow(oidf, idp)
    params = oidf.auth_params(**NO_PKCE)
    resp = oidf.client.post("/authorize", data=params, headers={"Origin": "https://rp.example.com"})
    finish_code_flow(oidf, idp, callback_params(resp))
