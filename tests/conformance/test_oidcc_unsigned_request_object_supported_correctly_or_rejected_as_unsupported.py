"""oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported
(OIDCCUnsignedRequestObjectSupportedCorrectlyOrRejectedAsUnsupported): an
unsigned (``alg: none``) request object passed by value. We do not support
request objects (discovery: ``request_parameter_supported: false``), so the
request is refused with ``request_not_supported`` (OIDC Core 6.1, 3.1.2.6),
redirected to the validated redirect URI with iss, and with the state when
the state was also sent outside the object (the object itself is not read).

The query carries what BuildRequestObjectByValueRedirectToAuthorizationEndpoint
puts there: response_type, client_id, scope and redirect_uri next to
``request``; state, nonce (and PKCE) are inside the object only.
"""

import base64
import json
from urllib.parse import urlencode

from tests.conformance.oidf import (
    CLIENT_ID,
    REDIRECT_URI,
    callback_params,
    check_error_response,
)
from tests.helpers import pkce_pair


def unsigned_jwt(claims: dict) -> str:
    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part(claims)}."


def request_object_query(client_id=CLIENT_ID, redirect_uri=REDIRECT_URI, inner_redirect_uri=REDIRECT_URI, **outer):
    claims = {
        "iss": client_id, "aud": "http://127.0.0.1:5000", "response_type": "code", "client_id": client_id,
        "redirect_uri": inner_redirect_uri, "scope": "openid", "state": "ro-state", "nonce": "ro-nonce",
    }
    params = {"response_type": "code", "client_id": client_id, "scope": "openid", "redirect_uri": redirect_uri,
              "request": unsigned_jwt(claims), **outer}
    return "/authorize?" + urlencode(params)


def test_request_object_is_rejected_as_unsupported(oidf):
    resp = oidf.client.get(request_object_query())
    params = callback_params(resp)
    check_error_response(params, error="request_not_supported", state=None)


def test_state_outside_the_object_comes_back(oidf):
    resp = oidf.client.get(request_object_query(state="outer-state"))
    check_error_response(callback_params(resp), error="request_not_supported", state="outer-state")


def test_rejected_even_for_a_logged_in_user(oidf):
    oidf.authorize(code_challenge=None, code_challenge_method=None)
    resp = oidf.client.get(request_object_query(state="s2"))
    check_error_response(callback_params(resp), error="request_not_supported", state="s2")


def test_rejected_as_unsupported_before_pkce_is_looked_for(app, client, make_user, make_client):
    """A client that must use PKCE may have put its code_challenge in the object:
    the answer is still that request objects are not supported."""
    make_user()
    make_client("pkce-client", secret="pkce-client-secret-0123456789", redirect_uris=[REDIRECT_URI])
    resp = client.get(request_object_query(client_id="pkce-client", state="s3"))
    check_error_response(callback_params(resp), error="request_not_supported", state="s3")
    # with PKCE outside the object too, the same answer
    _verifier, challenge = pkce_pair()
    resp = client.get(request_object_query(client_id="pkce-client", state="s4", code_challenge=challenge,
                                           code_challenge_method="S256"))
    check_error_response(callback_params(resp), error="request_not_supported", state="s4")


def test_discovery_says_request_objects_are_not_supported(client):
    metadata = client.get("/.well-known/openid-configuration").get_json()
    assert metadata["request_parameter_supported"] is False
