"""oidcc-response-type-missing (OIDCCResponseTypeMissing): an authorization
request without ``response_type``. The OP either shows an error page or
redirects back with ``invalid_request`` / ``unsupported_response_type``; a
redirect carries the state unchanged (and, RFC 9207, iss) and no code.

We redirect (the client and its redirect URI are valid) with
``invalid_request``: a required parameter is missing (RFC 6749 §4.1.2.1).
"""

from urllib.parse import urlencode

import pytest

from tests.conformance.oidf import REDIRECT_URI, assert_error_page, callback_params, check_error_response

BASE = {"client_id": "oidf-client", "redirect_uri": REDIRECT_URI, "scope": "openid", "nonce": "n-123"}


def test_missing_response_type_is_redirected_as_invalid_request(oidf):
    resp = oidf.client.get("/authorize?" + urlencode({**BASE, "state": "st-123"}))
    params = callback_params(resp)
    check_error_response(params, error="invalid_request", state="st-123")
    assert "response_type" in params["error_description"]


def test_empty_response_type_is_invalid_request(oidf):
    resp = oidf.client.get("/authorize?" + urlencode({**BASE, "response_type": "", "state": "st-0"}))
    check_error_response(callback_params(resp), error="invalid_request", state="st-0")


def test_missing_response_type_after_login_is_still_an_error(oidf):
    oidf.authorize(code_challenge=None, code_challenge_method=None)  # a live session
    resp = oidf.client.get("/authorize?" + urlencode({**BASE, "state": "st-9"}))
    check_error_response(callback_params(resp), error="invalid_request", state="st-9")


@pytest.mark.parametrize("response_type", ["token", "id_token", "code id_token", 'code"', "c\\ode", "c\u00f8de"])
def test_other_response_types_are_unsupported(oidf, response_type):
    resp = oidf.client.get("/authorize?" + urlencode({**BASE, "response_type": response_type, "state": "s"}))
    check_error_response(callback_params(resp), error="unsupported_response_type", state="s")


def test_missing_response_type_with_unregistered_redirect_uri_shows_error_page(oidf):
    params = {**BASE, "redirect_uri": "https://evil.example.com/cb", "state": "st-123"}
    assert_error_page(oidf.client.get("/authorize?" + urlencode(params)))


def test_missing_response_type_and_redirect_uri_shows_error_page(oidf):
    """OIDC Core 3.1.2.1: an OpenID request names its redirect URI; we do not guess one."""
    params = {k: v for k, v in BASE.items() if k != "redirect_uri"}
    assert_error_page(oidf.client.get("/authorize?" + urlencode(params)))


def test_unsupported_response_type_without_redirect_uri_shows_error_page(oidf):
    params = {k: v for k, v in BASE.items() if k != "redirect_uri"}
    assert_error_page(oidf.client.get("/authorize?" + urlencode({**params, "response_type": "token"})))
