"""oidcc-ensure-request-with-valid-pkce-succeeds
(OIDCCEnsureRequestWithValidPkceSucceeds): a request with an S256
code_challenge and a token request with the matching code_verifier
(RFC 7636 §4.5) succeed. Around it, our PKCE policy (checks/pkce.py)."""

from tests.conformance.oidf import (
    CLIENT_ID,
    NO_PKCE,
    REDIRECT_URI,
    callback_params,
    check_error_response,
    check_success_response,
    check_token_error,
    finish_code_flow,
    run_code_flow,
)
from tests.helpers import Flow, pkce_pair


def test_valid_pkce_succeeds(oidf, idp):
    verifier, challenge = pkce_pair()
    result = run_code_flow(oidf, idp, code_challenge=challenge, code_challenge_method="S256", verifier=verifier)
    assert result.claims["aud"] == CLIENT_ID


def test_wrong_verifier_is_invalid_grant(oidf, idp):
    _verifier, challenge = pkce_pair()
    params = oidf.authorize(code_challenge=challenge, code_challenge_method="S256")
    code = check_success_response(params, state=oidf.last["state"])
    other_verifier, _ = pkce_pair()
    check_token_error(oidf.token(code, verifier=other_verifier), "invalid_grant")


def test_missing_verifier_is_refused(oidf, idp):
    _verifier, challenge = pkce_pair()
    params = oidf.authorize(code_challenge=challenge, code_challenge_method="S256")
    code = check_success_response(params, state=oidf.last["state"])
    resp = oidf.token(code, verifier=None)
    assert resp.status_code == 400 and resp.get_json()["error"] in {"invalid_request", "invalid_grant"}


def test_plain_method_is_refused(oidf):
    verifier, _ = pkce_pair()
    resp = oidf.start(code_challenge=verifier, code_challenge_method="plain")
    check_error_response(callback_params(resp), error="invalid_request", state=oidf.last["state"])


def test_client_that_requires_pkce_is_refused_without_it(app, client, idp, make_user, make_client):
    make_user()
    make_client("pkce-client", secret="pkce-client-secret-0123456789", redirect_uris=[REDIRECT_URI])
    flow = Flow(app, client, client_id="pkce-client", client_secret="pkce-client-secret-0123456789",
                redirect_uri=REDIRECT_URI)
    resp = flow.start(**NO_PKCE)
    check_error_response(callback_params(resp), error="invalid_request", state=flow.last["state"])
    # and with PKCE it works (Flow sends S256 by default)
    params = flow.authorize()
    finish_code_flow(flow, idp, params, client_id="pkce-client", verifier=flow.last["verifier"])


def test_verifier_without_challenge_is_refused(oidf, idp):
    params = oidf.authorize(**NO_PKCE)
    code = check_success_response(params, state=oidf.last["state"])
    verifier, _ = pkce_pair()
    resp = oidf.token(code, verifier=verifier)
    assert resp.status_code == 400 and resp.get_json()["error"] in {"invalid_request", "invalid_grant"}
