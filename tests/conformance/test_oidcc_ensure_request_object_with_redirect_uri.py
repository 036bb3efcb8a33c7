"""oidcc-ensure-request-object-with-redirect-uri
(OIDCCEnsureRequestObjectWithRedirectUri): the request object holds the
registered redirect_uri, the query an unregistered one. An OP that does not
read request objects must not fall back to a registered redirect URI
(EnsureOPDoesNotUseDefaultRedirectUriInCaseOfInvalidRedirectUri): it shows an
error page."""

from tests.conformance.oidf import REDIRECT_URI, assert_error_page
from tests.conformance.test_oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported import (
    request_object_query,
)


def test_invalid_outer_redirect_uri_shows_error_page(oidf):
    resp = oidf.client.get(request_object_query(redirect_uri=REDIRECT_URI + "/invalid", state="s"))
    assert_error_page(resp)


def test_invalid_outer_redirect_uri_with_a_session_shows_error_page(oidf):
    oidf.authorize(code_challenge=None, code_challenge_method=None)
    resp = oidf.client.get(request_object_query(redirect_uri="https://evil.example.com/cb"))
    assert_error_page(resp)
