"""oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported
(OIDCCRequestUriUnsignedSupportedCorrectlyOrRejectedAsUnsupported): an
unsigned request object passed by reference. We do not fetch request URIs
(discovery: ``request_uri_parameter_supported: false``): the request is
refused with ``request_uri_not_supported``, redirected with iss (and the
state when it was sent outside the object), and the URI is never fetched."""

from urllib.parse import urlencode

from tests.conformance.oidf import CLIENT_ID, REDIRECT_URI, callback_params, check_error_response

REQUEST_URI = "https://rp.example.com/requests/Xy7Q.jwt#8f2a"


def _query(**extra):
    params = {"response_type": "code", "client_id": CLIENT_ID, "scope": "openid", "redirect_uri": REDIRECT_URI,
              "request_uri": REQUEST_URI, **extra}
    return "/authorize?" + urlencode(params)


def test_request_uri_is_rejected_as_unsupported(oidf, monkeypatch):
    import socket

    def no_network(*args, **kwargs):  # the OP must not try to fetch the object
        raise AssertionError("the request_uri was fetched")

    monkeypatch.setattr(socket, "create_connection", no_network)
    check_error_response(callback_params(oidf.client.get(_query())), error="request_uri_not_supported", state=None)


def test_state_outside_the_object_comes_back(oidf):
    resp = oidf.client.get(_query(state="outer"))
    check_error_response(callback_params(resp), error="request_uri_not_supported", state="outer")


def test_discovery_says_request_uri_is_not_supported(client):
    metadata = client.get("/.well-known/openid-configuration").get_json()
    assert metadata["request_uri_parameter_supported"] is False
