"""oidcc-prompt-none-not-logged-in (OIDCCPromptNoneNotLoggedIn): without a
session, ``prompt=none`` is answered at once with a redirect carrying an error
that needs a user interface (login_required, interaction_required,
account_selection_required or consent_required), the long state unchanged,
iss, and no code (CheckErrorFromAuthorizationEndpointIsOneThatRequiredAUserInterface)."""

import secrets

from tests.conformance.oidf import NO_PKCE, USER_INTERFACE_ERRORS, callback_params, check_error_response


def test_prompt_none_without_session(oidf):
    state = secrets.token_urlsafe(96)[:128]  # the suite uses a 128-character state
    resp = oidf.start(prompt="none", state=state, **NO_PKCE)
    params = callback_params(resp)
    check_error_response(params, error=USER_INTERFACE_ERRORS, state=state)
    assert params["error"] == "login_required"


def test_prompt_none_with_another_value_is_invalid_request(oidf):
    resp = oidf.start(prompt="none login", **NO_PKCE)
    check_error_response(callback_params(resp), error="invalid_request", state=oidf.last["state"])
