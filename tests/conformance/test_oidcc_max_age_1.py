"""oidcc-max-age-1 (OIDCCMaxAge1): a first login, then (the suite waits two
seconds) a request with ``max_age=1`` must show the login page again; the
second ID token has auth_time (CheckIdTokenAuthTimeClaimPresentDueToMaxAge),
later than the first and recent (CheckIdTokenAuthTimeIsRecentIfPresent)."""

from tests.conformance.oidf import NO_PKCE, callback_params, check_error_response, finish_code_flow, run_code_flow


def test_max_age_1_forces_a_new_login(oidf, idp):
    first = run_code_flow(oidf, idp)
    idp.clock.advance(2)
    resp = oidf.start(max_age="1", **NO_PKCE)
    assert resp.status_code == 302 and "/login" in resp.headers["Location"], "max_age=1 must show the login page"
    second = finish_code_flow(oidf, idp, callback_params(oidf.until_callback(resp)))
    assert "auth_time" in second.claims
    assert second.claims["auth_time"] > first.claims["auth_time"]
    assert idp.clock.now() - second.claims["auth_time"] <= 1


def test_max_age_exceeded_with_prompt_none_is_login_required(oidf, idp):
    oidf.authorize(**NO_PKCE)
    idp.clock.advance(2)
    resp = oidf.start(max_age="1", prompt="none", **NO_PKCE)
    check_error_response(callback_params(resp), error="login_required", state=oidf.last["state"])


def test_max_age_not_a_number_is_invalid_request(oidf):
    resp = oidf.start(max_age="soon", **NO_PKCE)
    check_error_response(callback_params(resp), error="invalid_request", state=oidf.last["state"])
