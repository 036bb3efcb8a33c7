"""oidcc-ensure-registered-redirect-uri (OIDCCEnsureRegisteredRedirectUri): a
request with a redirect_uri that was never registered gets an error page; the
OP redirects neither to that URI nor to the registered one."""

import pytest

from tests.conformance.oidf import NO_PKCE, REDIRECT_URI, assert_error_page


@pytest.mark.parametrize("redirect_uri", [
    "https://rp.example.com/callback/random-Xy7Q",  # the suite appends a random path
    "https://rp.example.com/callback?x=1",
    "https://rp.example.com/callback#frag",
    "https://RP.example.com/callback",
    "https://rp.example.com.evil.example/callback",
    "http://rp.example.com/callback",
    'https://rp.example.com/callback"><script>alert(1)</script>',  # no 500 on characters RFC 6749
    "https://rp.example.com/call\\back",  # forbids in error_description
    "https://rp.example.com/callb\u00e6ck",
])
def test_unregistered_redirect_uri_shows_error_page(oidf, redirect_uri):
    resp = oidf.start(redirect_uri=redirect_uri, **NO_PKCE)
    assert_error_page(resp)


def test_unregistered_redirect_uri_with_a_session_still_shows_error_page(oidf):
    oidf.authorize(**NO_PKCE)
    resp = oidf.start(redirect_uri=REDIRECT_URI + "/other", prompt="none", **NO_PKCE)
    assert_error_page(resp)


def test_missing_redirect_uri_in_openid_request_shows_error_page(oidf):
    """OIDC Core 3.1.2.1: redirect_uri is required even with one registered URI."""
    resp = oidf.start(redirect_uri=None, **NO_PKCE)
    assert_error_page(resp)
