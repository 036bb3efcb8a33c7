"""oidcc-ensure-request-with-unknown-parameter-succeeds
(OIDCCEnsureRequestWithUnknownParameterSucceeds): an unknown parameter
(``extra=foobar``) is ignored (RFC 6749 §3.1), also across the login pages."""

from tests.conformance.oidf import run_code_flow


def test_unknown_parameter_is_ignored(oidf, idp):
    result = run_code_flow(oidf, idp, extra="foobar")
    assert "extra" not in result.callback
    assert "extra" not in result.claims
