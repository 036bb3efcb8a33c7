"""oidcc-alternate-happy-flow (OIDCCAlternateHappyFlow, an OIDCCScopeEmail):
the scope entries in reverse order (``email openid``) and the query
parameters in another order make no difference (RFC 6749 §3.3)."""

from tests.conformance.oidf import (
    CLIENT_ID,
    REDIRECT_URI,
    authorize_url,
    callback_params,
    check_scopes_in_userinfo,
    check_userinfo,
    finish_code_flow,
    userinfo,
)


def test_reversed_scope_and_parameter_order(oidf, idp, client):
    oidf.last = {"state": "alt-state-1", "nonce": "alt-nonce-1"}
    params = [  # reverse alphabetical, as BuildPlainRedirectToAuthorizationEndpointReorderedParams
        ("state", "alt-state-1"), ("scope", "email openid"), ("response_type", "code"),
        ("redirect_uri", REDIRECT_URI), ("nonce", "alt-nonce-1"), ("client_id", CLIENT_ID),
    ]
    resp = oidf.until_callback(client.get(authorize_url(params)))
    result = finish_code_flow(oidf, idp, callback_params(resp))
    assert set(result.tokens["scope"].split()) == {"openid", "email"}
    info = check_userinfo(userinfo(client, result.tokens["access_token"]), sub=result.claims["sub"])
    check_scopes_in_userinfo(info, "openid email")
    assert "name" not in info  # EnsureUserInfoDoesNotContainName
    assert "email" not in result.claims
