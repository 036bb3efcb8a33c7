"""RFC 9207: every authorization response the provider sends to the client
carries ``iss`` (the issuer identifier), the successful ones and every error
that is redirected, in the query or in a form_post. An error that cannot be
redirected (unknown client, unregistered redirect URI) is an error page.

form_post (OAuth 2.0 Form Post Response Mode): an HTML page whose form posts
code, state and iss (or the error) to the redirect URI, submitted by a script
that carries the CSP nonce of the response.
"""

import json
import re
from html import unescape

import pytest

from tests.conformance.oidf import (
    CLIENT_ID,
    ISSUER,
    NO_PKCE,
    REDIRECT_URI,
    assert_error_page,
    callback_params,
    check_error_response,
    check_success_response,
    finish_code_flow,
)
from tests.conformance.test_oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported import (
    unsigned_jwt,
)
from tests.helpers import Flow, pkce_pair

LOGGED_IN_ERRORS = {
    # name: (request parameters, expected error)
    "bad prompt": ({"prompt": "sometimes"}, "invalid_request"),
    "prompt none with login": ({"prompt": "none login"}, "invalid_request"),
    "bad max_age": ({"max_age": "-1"}, "invalid_request"),
    "bad display": ({"display": "hologram"}, "invalid_request"),
    "bad response_mode": ({"response_mode": "fragment.jwt"}, "invalid_request"),
    "bad claims": ({"claims": "[1]"}, "invalid_request"),
    "bad id_token_hint": ({"id_token_hint": "a.b.c"}, "invalid_request"),
    "unsupported response_type": ({"response_type": "token"}, "unsupported_response_type"),
    "pkce plain": ({"code_challenge": "x" * 43, "code_challenge_method": "plain"}, "invalid_request"),
    "request object": ({"request": unsigned_jwt({"client_id": CLIENT_ID})}, "request_not_supported"),
    "request_uri": ({"request_uri": "https://rp.example.com/r.jwt"}, "request_uri_not_supported"),
    "consent needed with prompt none": ({"prompt": "none", "scope": "openid email"}, "consent_required"),
    "essential acr not met": (
        {"claims": json.dumps({"id_token": {"acr": {"essential": True, "values": ["urn:example:loa:4"]}}})},
        "unmet_authentication_requirements",
    ),
}


def _form_post(resp) -> tuple[str, dict[str, str]]:
    """Parse a form_post page: (action, fields); checks the auto-submit script's CSP nonce."""
    assert resp.status_code == 200, resp.status_code
    assert resp.mimetype == "text/html"
    assert "no-store" in resp.headers["Cache-Control"]
    html = resp.get_data(as_text=True)
    form = re.search(r'<form method="post" action="([^"]+)" id="([^"]+)">', html)
    assert form, html
    action, form_id = unescape(form.group(1)), form.group(2)
    fields = {unescape(n): unescape(v) for n, v in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">',
                                                              html)}
    script = re.search(r'<script nonce="([^"]+)">(.*?)</script>', html, re.S)
    assert script, "the form is submitted by a script"
    nonce, body = script.groups()
    assert f'getElementById("{form_id}").submit()' in body
    csp = resp.headers["Content-Security-Policy"]
    assert f"script-src 'nonce-{nonce}'" in csp, csp
    assert "'unsafe-inline'" not in csp
    assert "form-action 'self' https://rp.example.com" in csp, csp
    assert len(re.findall(r"<script", html)) == 1
    return action, fields


def _logged_in(oidf):
    oidf.authorize(**NO_PKCE)


# -- query -------------------------------------------------------------------------

def test_success_carries_iss(oidf, idp):
    params = oidf.authorize(**NO_PKCE)
    check_success_response(params, state=oidf.last["state"])
    assert params["iss"] == ISSUER


@pytest.mark.parametrize("case", sorted(LOGGED_IN_ERRORS))
def test_every_redirected_error_carries_iss(oidf, case):
    _logged_in(oidf)
    params, error = LOGGED_IN_ERRORS[case]
    resp = oidf.start(**{**NO_PKCE, **params})
    check_error_response(callback_params(resp), error=error, state=oidf.last["state"])


def test_login_required_carries_iss(oidf):
    resp = oidf.start(prompt="none", **NO_PKCE)
    check_error_response(callback_params(resp), error="login_required", state=oidf.last["state"])


def test_access_denied_after_the_login_pages_carries_iss(oidf):
    resp = oidf.until_callback(oidf.start(**NO_PKCE), decision="deny")
    check_error_response(callback_params(resp), error="access_denied", state=oidf.last["state"])


def test_unauthorized_client_carries_iss(app, client, make_user, make_client):
    make_user()
    make_client("m2m", secret="m2m-secret-0123456789abcdef", grant_types=["client_credentials"],
                redirect_uris=[REDIRECT_URI])
    flow = Flow(app, client, client_id="m2m", client_secret=None, redirect_uri=REDIRECT_URI)
    check_error_response(callback_params(flow.start(**NO_PKCE)), error="unauthorized_client",
                         state=flow.last["state"])


def test_error_without_state_has_no_state(oidf):
    resp = oidf.start(prompt="none", state=None, **NO_PKCE)
    check_error_response(callback_params(resp), error="login_required", state=None)


def test_state_is_returned_exactly(oidf):
    state = "a b+c/d=e&f?g%h\u00e6"
    resp = oidf.start(prompt="none", state=state, **NO_PKCE)
    assert callback_params(resp)["state"] == state


def test_error_description_is_never_outside_the_rfc_6749_characters(oidf):
    """Attacker-chosen values must not bring quotes, backslashes or non-ASCII
    into error_description (RFC 6749 §4.1.2.1)."""
    _logged_in(oidf)
    for params in ({"prompt": 'x"y\\z'}, {"prompt": "l\u00f8gin"}, {"response_mode": 'q"'}):
        resp = oidf.start(**{**NO_PKCE, **params})
        check_error_response(callback_params(resp), error="invalid_request", state=oidf.last["state"])


@pytest.mark.parametrize("params", [
    {"client_id": "no-such-client"},
    {"client_id": None},
    {"redirect_uri": "https://evil.example.com/cb"},
    {"redirect_uri": "https://evil.example.com/cb", "response_type": "token"},
    {"redirect_uri": "https://evil.example.com/cb", "request": "x.y."},
])
def test_errors_without_a_checked_redirect_uri_are_pages(oidf, params):
    assert_error_page(oidf.start(**{**NO_PKCE, **params}))


# -- form_post ------------------------------------------------------------------------

def test_form_post_success(oidf, idp):
    resp = oidf.start(response_mode="form_post", **NO_PKCE)
    resp = oidf.login(resp)
    resp = oidf.follow(resp)  # the continue step
    if 'name="decision"' in resp.get_data(as_text=True):
        resp = oidf.consent(resp)
    action, fields = _form_post(resp)
    assert action == REDIRECT_URI
    assert set(fields) == {"code", "state", "iss"}
    assert fields["state"] == oidf.last["state"] and fields["iss"] == ISSUER
    finish_code_flow(oidf, idp, fields)


def test_form_post_with_a_session(oidf, idp):
    _logged_in(oidf)
    resp = oidf.start(response_mode="form_post", **NO_PKCE)
    action, fields = _form_post(resp)
    assert action == REDIRECT_URI
    check_success_response(fields, state=oidf.last["state"])


def test_form_post_keeps_the_redirect_uri_query(app, client, idp, make_user, make_oidf_client):
    uri = REDIRECT_URI + "?tenant=acme"
    make_user()
    make_oidf_client(redirect_uris=[uri])
    flow = Flow(app, client, client_id=CLIENT_ID, client_secret="x", redirect_uri=uri)
    flow.authorize(**NO_PKCE)
    action, fields = _form_post(flow.start(response_mode="form_post", **NO_PKCE))
    assert action == uri
    assert set(fields) == {"code", "state", "iss"}


@pytest.mark.parametrize("case", ["bad prompt", "consent needed with prompt none", "request object",
                                  "unsupported response_type", "essential acr not met"])
def test_form_post_errors_carry_iss(oidf, case):
    _logged_in(oidf)
    params, error = LOGGED_IN_ERRORS[case]
    action, fields = _form_post(oidf.start(response_mode="form_post", **{**NO_PKCE, **params}))
    assert action == REDIRECT_URI
    check_error_response(fields, error=error, state=oidf.last["state"])


def test_form_post_login_required(oidf):
    action, fields = _form_post(oidf.start(response_mode="form_post", prompt="none", **NO_PKCE))
    check_error_response(fields, error="login_required", state=oidf.last["state"])


def test_form_post_access_denied(oidf):
    resp = oidf.login(oidf.start(response_mode="form_post", **NO_PKCE))
    resp = oidf.consent(oidf.follow(resp), decision="deny")
    action, fields = _form_post(resp)
    check_error_response(fields, error="access_denied", state=oidf.last["state"])


def test_form_post_escapes_values(oidf):
    _logged_in(oidf)
    state = '"><script>alert(1)</script>'
    resp = oidf.start(response_mode="form_post", state=state, **NO_PKCE)
    html = resp.get_data(as_text=True)
    assert "<script>alert(1)" not in html
    _action, fields = _form_post(resp)
    assert fields["state"] == state


def test_pkce_client_form_post(app, client, idp, make_user, make_client):
    """The default (PKCE-requiring) client gets the same form_post."""
    make_user()
    make_client("pkce-client", secret="pkce-client-secret-0123456789", redirect_uris=[REDIRECT_URI])
    flow = Flow(app, client, client_id="pkce-client", client_secret="pkce-client-secret-0123456789",
                redirect_uri=REDIRECT_URI)
    flow.authorize()
    verifier, challenge = pkce_pair()
    _action, fields = _form_post(flow.start(response_mode="form_post", code_challenge=challenge))
    finish_code_flow(flow, idp, fields, client_id="pkce-client", verifier=verifier)
