"""oidcc-max-age-10000 (OIDCCMaxAge10000): a first login with max_age=15000,
then a request with ``max_age=10000`` is answered without a new login; both
ID tokens carry auth_time (max_age was sent) with the same value and the same
sub."""

from tests.conformance.oidf import NO_PKCE, callback_params, finish_code_flow, run_code_flow


def test_max_age_10000_reuses_the_session(oidf, idp):
    first = run_code_flow(oidf, idp, max_age="15000")
    assert "auth_time" in first.claims
    idp.clock.advance(60)
    resp = oidf.start(max_age="10000", **NO_PKCE)
    second = finish_code_flow(oidf, idp, callback_params(resp))  # no login page in between
    assert "auth_time" in second.claims
    assert second.claims["auth_time"] == first.claims["auth_time"]
    assert second.claims["sub"] == first.claims["sub"]
