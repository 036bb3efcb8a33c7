"""oidcc-codereuse (OIDCCAuthCodeReuse): a code is redeemed once; the same
token request again is refused with 400 ``invalid_grant``
(RFC 6749 §4.1.2, §5.2)."""

from tests.conformance.oidf import NO_PKCE, check_success_response, check_token_error, run_code_flow
from tests.helpers import Flow


def test_second_redemption_is_invalid_grant(oidf, idp):
    result = run_code_flow(oidf, idp)
    second = oidf.token(result.code, verifier=None)
    body = check_token_error(second, "invalid_grant")
    assert "no-store" in second.headers["Cache-Control"]
    assert set(body) <= {"error", "error_description", "error_uri"}


def test_code_of_another_client_is_invalid_grant(oidf, idp, make_oidf_client):
    """A code is bound to the client it was issued to (RFC 6749 §4.1.3)."""
    make_oidf_client("other-client", secret="other-client-secret-0123456789")
    params = oidf.authorize(**NO_PKCE)
    code = check_success_response(params, state=oidf.last["state"])
    other = Flow(oidf.app, oidf.client, client_id="other-client", client_secret="other-client-secret-0123456789",
                 redirect_uri=oidf.redirect_uri)
    check_token_error(other.token(code, verifier=None), "invalid_grant")
    # and the rightful client can still redeem it
    assert oidf.token(code, verifier=None).status_code == 200
