"""oidcc-claims-essential (OIDCCClaimsEssential): ``claims`` asks for ``name``
as an essential userinfo claim with scope ``openid`` only; userinfo returns
it (EnsureUserInfoContainsName) and the ID token does not
(EnsureIdTokenDoesNotContainName). Claims asked for in the ID token come in
the ID token (OIDC Core 5.5)."""

import json

from tests.conformance.oidf import NO_PKCE, callback_params, check_error_response, check_userinfo, run_code_flow
from tests.conformance.oidf import userinfo as call_userinfo


def test_essential_userinfo_claim(oidf, idp, client):
    claims = {"userinfo": {"name": {"essential": True}}}
    result = run_code_flow(oidf, idp, claims=json.dumps(claims))
    info = check_userinfo(call_userinfo(client, result.tokens["access_token"]), sub=result.claims["sub"])
    assert info["name"] == "Kari Nordmann"
    assert "email" not in info, "only what was asked for"
    assert "name" not in result.claims


def test_claims_asked_for_in_the_id_token(oidf, idp, client):
    claims = {"id_token": {"email": {"essential": True}, "given_name": None}}
    result = run_code_flow(oidf, idp, claims=json.dumps(claims))
    assert result.claims["email"] == "kari@example.no"
    assert result.claims["given_name"] == "Kari"
    info = call_userinfo(client, result.tokens["access_token"]).get_json()
    assert set(info) == {"sub"}, "id_token claims are not userinfo claims"


def test_malformed_claims_parameter_is_invalid_request(oidf):
    resp = oidf.start(claims="{not json", **NO_PKCE)
    check_error_response(callback_params(resp), error="invalid_request", state=oidf.last["state"])
