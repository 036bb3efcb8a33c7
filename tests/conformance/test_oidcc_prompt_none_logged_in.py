"""oidcc-prompt-none-logged-in (OIDCCPromptNoneLoggedIn): with a live session
and consent given, ``prompt=none`` returns a code without showing any page;
the second ID token has the same sub and auth_time as the first
(CheckIdTokenAuthTimeClaimsSameIfPresent, CheckIdTokenSubConsistentForSecondAuthorization)."""

from tests.conformance.oidf import NO_PKCE, callback_params, check_error_response, finish_code_flow, run_code_flow


def test_prompt_none_with_session(oidf, idp):
    first = run_code_flow(oidf, idp)
    idp.clock.advance(5)
    resp = oidf.start(prompt="none", **NO_PKCE)
    second = finish_code_flow(oidf, idp, callback_params(resp))  # straight to the client: no page
    assert second.claims["sub"] == first.claims["sub"]
    assert second.claims["auth_time"] == first.claims["auth_time"]
    assert second.claims["iat"] > first.claims["iat"]


def test_prompt_none_without_consent_is_consent_required(oidf, idp):
    oidf.authorize(**NO_PKCE)  # consent for openid only
    resp = oidf.start(prompt="none", scope="openid email", **NO_PKCE)
    check_error_response(callback_params(resp), error="consent_required", state=oidf.last["state"])
