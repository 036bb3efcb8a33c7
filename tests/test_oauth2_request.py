"""Our Flask request wrapper for Authlib: its URI is built on the issuer, and
it sets every attribute Authlib's own constructor sets (it skips only the
per-request transport check, made once per issuer origin instead)."""

from __future__ import annotations

import pytest
from authlib.oauth2.rfc6749 import InsecureTransportError, OAuth2Request

from visma_idp.oidc.server import IssuerOAuth2Request


def test_sets_every_attribute_authlib_sets(app):
    reference = set(vars(OAuth2Request("POST", "https://idp.example/token")))
    with app.test_request_context("/token?x=1", method="POST", base_url="http://evil.example"):
        from flask import request

        ours = IssuerOAuth2Request(request, "https://idp.example")
    assert reference <= set(vars(ours)), f"Authlib added {reference - set(vars(ours))}: set them too"
    assert ours.uri == "https://idp.example/token?x=1"  # the issuer's origin, not the Host header


def test_plain_http_origin_is_still_refused(app):
    with app.test_request_context("/token", method="POST"):
        from flask import request

        with pytest.raises(InsecureTransportError):
            IssuerOAuth2Request(request, "http://idp.example")
