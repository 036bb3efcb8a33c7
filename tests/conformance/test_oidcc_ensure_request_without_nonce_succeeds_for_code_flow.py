"""oidcc-ensure-request-without-nonce-succeeds-for-code-flow
(OIDCCEnsureRequestWithoutNonceSucceedsForCodeFlow): nonce is optional in the
code flow; the request succeeds and the ID token then has no nonce."""

from tests.conformance.oidf import run_code_flow


def test_request_without_nonce_succeeds(oidf, idp):
    result = run_code_flow(oidf, idp, nonce=None)
    assert "nonce" not in result.claims
    assert result.nonce is None
