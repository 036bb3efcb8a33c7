"""oidcc-display-popup (OIDCCDisplayPopup): ``display=popup`` must not result
in an error."""

from tests.conformance.oidf import callback_params, check_error_response, run_code_flow


def test_display_popup(oidf, idp):
    result = run_code_flow(oidf, idp, display="popup")
    assert result.claims["nonce"] == result.nonce


def test_unknown_display_value_is_invalid_request(oidf):
    oidf.authorize(code_challenge=None, code_challenge_method=None)
    resp = oidf.start(display="hologram", code_challenge=None, code_challenge_method=None)
    check_error_response(callback_params(resp), error="invalid_request", state=oidf.last["state"])
