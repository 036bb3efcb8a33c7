"""The one safe-redirect rule (``visma_idp/urls.py``): a table of hostile
``next`` values, every one refused, and the paths of ours that pass, under an
issuer with a path."""

from __future__ import annotations

import pytest

from visma_idp.urls import MAX_NEXT, safe_next, safe_path

HOSTILE = [
    # not a string, or empty
    None, 5, b"/account", ["/account"], {"next": "/account"}, "",
    # a scheme, a host, or no leading slash
    "https://evil.example/", "http:/evil.example", "javascript:alert(1)", "evil.example", "account/security",
    "@evil.example", "?next=/x", "#top",
    # two slashes, backslashes
    "//evil.example", "///evil.example", "/\\evil.example", "\\\\evil.example", "/\\/evil.example",
    "/https://evil.example", "/account//security",
    # the same, percent-encoded (either case), or encoded twice and three times
    "/%2F%2Fevil.example", "/%2f%2fevil.example", "/%2F/evil.example", "%2F%2Fevil.example",
    "/%5Cevil.example", "/%5cevil.example", "/%2f%5cevil.example", "/%252F%252Fevil.example",
    "/%25252F%25252Fevil.example", "/%2525252F%2525252Fevil.example", "/%25%32%46%25%32%46evil.example",
    # characters a browser drops or a header splits on, as sent or encoded
    "/\t/evil.example", "/\n/evil.example", "/\r\nSet-Cookie: a=b", "/%0d%0aSet-Cookie:%20a=b", "/%0A/evil.example",
    "/%09/evil.example", "/%00", "/\x00", "/\x7f", "/%7F", " /account", "/account ", "/ac count",
    "/\u202eevil", "/%E2%80%AEevil", "/\u200b/evil.example", "/%E2%80%8B", "/é", "/account\uff0f\uff0fevil",
    # a bad encoding
    "/%FF%FE",
    # dot segments, which would leave the issuer's path
    "/..", "/../evil", "/account/..", "/account/../../evil", "/./account", "/account/.",
    "/%2e%2e/evil", "/%2E./evil", "/.%2e/evil", "/%252e%252e/evil", "/account/%2e",
    # too long
    "/" + "a" * MAX_NEXT,
]

OURS = [
    "/", "/account/security", "/account/security/totp/3/remove", "/admin/one-time-codes",
    "/authorize/continue?tx=abc_DEF-123", "/account?lang=nb", "/account#email-title", "/caf%C3%A9",
    "/account/security/webauthn", "/@evil.example", "/account/.well-hidden", "/a..b", "/" + "a" * (MAX_NEXT - 1),
]


@pytest.mark.parametrize("value", HOSTILE, ids=repr)
def test_hostile_values_are_refused(value):
    assert safe_path(value) is None


@pytest.mark.parametrize("value", OURS, ids=repr)
def test_our_paths_pass_unchanged(value):
    assert safe_path(value) == value


@pytest.fixture
def under_a_path(make_app):
    return make_app(ISSUER="https://idp.example/idp/")


def test_the_absolute_url_stays_under_the_issuers_path(under_a_path):
    with under_a_path.app_context():
        assert safe_next("/account/security") == "https://idp.example/idp/account/security"
        assert safe_next("/authorize/continue?tx=x") == "https://idp.example/idp/authorize/continue?tx=x"
        # "@host" after a path is a path of ours, never a login to another host
        assert safe_next("/@evil.example") == "https://idp.example/idp/@evil.example"
        for value in HOSTILE:
            assert safe_next(value) is None, value
