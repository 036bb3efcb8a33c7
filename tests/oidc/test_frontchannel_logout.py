"""Front-channel logout (OIDC Front-Channel Logout 1.0): after an
RP-initiated logout, the page loads each app's front-channel logout URI in a
hidden iframe with iss and sid (the CSP lets exactly those origins be
framed), then goes on to the post-logout redirect URI after a short wait."""

from __future__ import annotations

import base64
import html
import json
import re
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.helpers import Flow

REDIRECT = "https://rp.example.com/callback"
BYE = "https://rp.example.com/bye"
FRONT = "https://rp.example.com/frontchannel-logout?app=expense"


@pytest.fixture
def expense(app, client, make_user, make_client):
    make_user()
    secret = make_client("expense", redirect_uris=[REDIRECT], post_logout_redirect_uris=[BYE], skip_consent=True,
                         frontchannel_logout_uri=FRONT, frontchannel_logout_session_required=True)
    make_client("payroll", redirect_uris=["https://payroll.example.org/cb"], skip_consent=True,
                frontchannel_logout_uri="https://payroll.example.org/fc")
    make_client("quiet", redirect_uris=[REDIRECT], skip_consent=True)
    return Flow(app, client, client_id="expense", client_secret=secret, redirect_uri=REDIRECT)


def sid_of(id_token: str) -> str:
    payload = id_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sid"]


def test_discovery_advertises_front_channel_logout(client):
    metadata = client.get("/.well-known/openid-configuration").get_json()
    assert metadata["frontchannel_logout_supported"] is True
    assert metadata["frontchannel_logout_session_supported"] is True


def test_the_logout_page_frames_each_app_of_the_session_then_goes_on(app, client, expense):
    tokens = expense.tokens()
    Flow(app, client, client_id="quiet", client_secret="expense-secret-0123456789", redirect_uri=REDIRECT).tokens()
    sid = sid_of(tokens["id_token"])
    resp = client.get("/logout?" + urlencode({"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": BYE,
                                              "state": "s1"}))
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    frames = [html.unescape(src) for src in re.findall(r'<iframe[^>]* src="([^"]+)"', page)]
    assert len(frames) == 1  # payroll took no part; quiet registered no URI
    parts = urlsplit(frames[0])
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://rp.example.com/frontchannel-logout"
    assert parse_qs(parts.query) == {"app": ["expense"], "iss": ["http://127.0.0.1:5000"], "sid": [sid]}
    assert "hidden" in re.search(r"<iframe[^>]*>", page).group(0)
    # only that origin may be framed, and nothing may frame us
    csp = resp.headers["Content-Security-Policy"]
    assert "frame-src https://rp.example.com;" in csp and "frame-ancestors 'none'" in csp
    refresh = re.search(r'<meta http-equiv="refresh" content="(\d+);url=([^"]+)">', page)
    assert refresh and int(refresh.group(1)) <= 3
    target = html.unescape(refresh.group(2))
    assert target.startswith(BYE) and parse_qs(urlsplit(target).query)["state"] == ["s1"]
    # the session is over
    assert "/login" in client.get("/account").headers.get("Location", "")


def test_without_front_channel_apps_the_logout_redirects_at_once(app, client, make_user, make_client):
    make_user()
    secret = make_client("quiet", redirect_uris=[REDIRECT], post_logout_redirect_uris=[BYE], skip_consent=True)
    tokens = Flow(app, client, client_id="quiet", client_secret=secret, redirect_uri=REDIRECT).tokens()
    resp = client.get("/logout?" + urlencode({"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": BYE}))
    assert resp.status_code == 302 and resp.headers["Location"].startswith(BYE)
    assert "frame-src" not in resp.headers["Content-Security-Policy"]


def test_a_front_channel_uri_is_checked_at_registration(app, make_client):
    from visma_idp.errors import InvalidInput

    for bad in ("http://rp.example.com/fc", "https://rp.example.com/fc#x", "ftp://rp.example.com/fc",
                "https://user:pw@rp.example.com/fc"):
        with pytest.raises(InvalidInput):
            make_client("bad", frontchannel_logout_uri=bad)
