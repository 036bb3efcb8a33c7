"""oidcc-login-hint (OIDCCLoginHint): a request with ``login_hint`` must not
fail; the login page uses the hint (the email field comes prefilled)."""

import re

from tests.conformance.oidf import NO_PKCE, callback_params, finish_code_flow
from tests.helpers import path_of


def _email_field(html: str) -> str:
    tag = re.search(r'<input[^>]*name="email"[^>]*>', html, re.S).group(0)
    return re.search(r'value="([^"]*)"', tag).group(1)


def test_login_hint_prefills_the_email_field(oidf, idp):
    resp = oidf.start(login_hint="kari@example.no", **NO_PKCE)
    page = oidf.client.get(path_of(resp.headers["Location"]))
    assert page.status_code == 200
    assert _email_field(page.get_data(as_text=True)) == "kari@example.no"
    finish_code_flow(oidf, idp, callback_params(oidf.until_callback(resp)))


def test_login_hint_is_escaped(oidf):
    resp = oidf.start(login_hint='"><script>alert(1)</script>', **NO_PKCE)
    html = oidf.client.get(path_of(resp.headers["Location"])).get_data(as_text=True)
    assert "<script>alert(1)" not in html
    assert _email_field(html) == "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"
