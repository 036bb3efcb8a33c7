"""oidcc-userinfo-post-body (OIDCCUserInfoPostBody): the userinfo endpoint
answers a form-encoded POST with ``access_token`` in the body (RFC 6750
§2.2; optional for certification, a warning when refused: we support it)."""

from tests.conformance.oidf import check_userinfo, run_code_flow, userinfo


def test_userinfo_post_body(oidf, idp, client):
    result = run_code_flow(oidf, idp, scope="openid phone")
    info = check_userinfo(userinfo(client, result.tokens["access_token"], "post-body"), sub=result.claims["sub"])
    assert info["phone_number"] == "+4791234567"


def test_token_in_header_and_body_at_once_is_refused(oidf, idp, client):
    result = run_code_flow(oidf, idp)
    token = result.tokens["access_token"]
    resp = client.post("/userinfo", data={"access_token": token}, headers={"Authorization": "Bearer " + token})
    assert resp.status_code == 400  # RFC 6750 §2: one method per request
    assert 'error="invalid_request"' in resp.headers["WWW-Authenticate"]
