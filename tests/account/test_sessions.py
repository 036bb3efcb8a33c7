"""Where you are signed in: the list of live sessions with device, IP and
times; ending one other session, or all others; nobody can end a session
that is not theirs. Also the device names from User-Agent headers."""

from __future__ import annotations

import re

import pytest

from tests.account.test_details import (
    FIREFOX_WINDOWS,
    SAFARI_IPHONE,
    audit_events,
    browser,
    page,
    post,
    sign_in,
    signed_in_browser,
)
from tests.helpers import Flow, csrf

SESSION_LINK = re.compile(r"/account/sessions/([0-9a-f-]{36})/end")
CHROME_ANDROID = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/126.0.0.0 Mobile Safari/537.36")


def sessions_section(html: str) -> str:
    return html.split('id="sessions"')[1].split('id="activity"')[0]


def entries(html: str) -> list[str]:
    return re.findall(r"<li>(.*?)</li>", sessions_section(html), re.S)


def other_ids(html: str) -> list[str]:
    return SESSION_LINK.findall(sessions_section(html))


def rp_for(app, client) -> Flow:
    return Flow(app, client, client_id="expense", client_secret="expense-secret-0123456789",
                redirect_uri="https://rp.example.com/callback")


def token_alive(flow: Flow, tokens: dict) -> bool:
    resp = flow.client.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]})
    return resp.status_code == 200


def test_the_list_shows_this_device_and_the_others(app, idp, make_user):
    make_user()
    phone = signed_in_browser(app, user_agent=SAFARI_IPHONE, ip="198.51.100.20")
    ended = signed_in_browser(app, user_agent=CHROME_ANDROID, ip="198.51.100.30")
    ended.post("/signout", data={"csrf_token": csrf(ended.get("/signout").text)})
    idp.clock.advance(120)
    laptop = signed_in_browser(app, user_agent=FIREFOX_WINDOWS, ip="198.51.100.10")
    html = page(laptop)
    listed = entries(html)
    assert len(listed) == 2  # the signed-out one is gone
    this, other = listed
    assert "Firefox on Windows" in this and "This device" in this and "198.51.100.10" in this
    assert "/end" not in this  # no button to end this one (sign out does that)
    assert "Safari on iPhone" in other and "This device" not in other and "198.51.100.20" in other
    assert re.search(r'<time datetime="[0-9T:+-]+">', other)
    assert 'aria-label="Sign out: Safari on iPhone"' in other
    assert "Sign out of all other sessions" in html
    assert "Times are shown in UTC." in html
    assert len(entries(page(phone))) == 2


def test_expired_sessions_are_not_listed(app, idp, make_user):
    make_user()
    signed_in_browser(app, user_agent=SAFARI_IPHONE)
    idp.clock.advance(idp.settings["SESSION_LIFETIME"] - 10)
    laptop = signed_in_browser(app)
    idp.clock.advance(20)
    html = page(laptop)
    assert len(entries(html)) == 1 and "You are not signed in anywhere else." in html


def test_last_active_follows_use(app, idp, make_user):
    from visma_idp.storage import SsoSession, db

    make_user()
    laptop = signed_in_browser(app)
    idp.clock.advance(300)
    page(laptop)
    with app.app_context():
        [row] = db.session.scalars(db.select(SsoSession)).all()
        assert 300 <= row.last_seen_at - row.created_at < 330  # the clock also runs


def test_ending_another_session_signs_it_out_and_revokes_its_tokens(flow, app):
    laptop_tokens = flow.tokens(scope="openid offline_access")
    phone = browser(app, user_agent=SAFARI_IPHONE)
    phone_flow = rp_for(app, phone)
    phone_tokens = phone_flow.tokens(scope="openid offline_access", prompt="consent")
    [phone_id] = other_ids(page(flow.client))

    resp = post(flow.client, f"/account/sessions/{phone_id}/end")
    assert resp.status_code == 303 and resp.headers["Location"] == "http://127.0.0.1:5000/account#sessions"
    html = page(flow.client)
    assert "The session is ended." in html and len(entries(html)) == 1
    assert phone.get("/account").status_code == 302
    assert not token_alive(phone_flow, phone_tokens)
    resp = phone.post("/token", data={"grant_type": "refresh_token", "refresh_token": phone_tokens["refresh_token"]},
                      headers=phone_flow.basic())
    assert resp.status_code == 400
    assert token_alive(flow, laptop_tokens)  # this browser's apps keep working
    [ended] = audit_events(app, "session_ended")
    assert ended.details == {"session": phone_id, "tokens": 2}


def test_nobody_can_end_a_session_that_is_not_theirs(app, make_user):
    make_user()
    make_user(email="ola@example.no")
    kari = signed_in_browser(app)
    kari_phone = signed_in_browser(app, user_agent=SAFARI_IPHONE)
    ola = signed_in_browser(app, email="ola@example.no")
    [kari_phone_id] = other_ids(page(kari))
    # Ola posts the id of one of Kari's sessions
    resp = post(ola, f"/account/sessions/{kari_phone_id}/end")
    assert resp.status_code == 404 and "no such session" in resp.text
    assert kari_phone.get("/account").status_code == 200
    # nor can anyone end their own current session this way, or a made-up one
    from visma_idp.storage import SsoSession, db

    with app.app_context():
        ids = [s.public_id for s in db.session.scalars(db.select(SsoSession))]
    own = [i for i in ids if i not in (kari_phone_id,) and i not in other_ids(page(kari))]
    for target in [*own, "00000000-0000-0000-0000-000000000000", "x" * 100]:
        assert post(kari, f"/account/sessions/{target}/end").status_code == 404, target
    assert kari.get("/account").status_code == 200 and ola.get("/account").status_code == 200
    assert audit_events(app, "session_ended") == []


def test_ending_a_session_needs_the_csrf_token(app, make_user):
    make_user()
    laptop = signed_in_browser(app)
    phone = signed_in_browser(app, user_agent=SAFARI_IPHONE)
    [phone_id] = other_ids(page(laptop))
    assert laptop.post(f"/account/sessions/{phone_id}/end").status_code == 400
    assert laptop.post("/account/sessions/others/end").status_code == 400
    assert phone.get("/account").status_code == 200


def test_sign_out_of_all_other_sessions(flow, app, make_user):
    laptop_tokens = flow.tokens(scope="openid offline_access")
    phone = browser(app, user_agent=SAFARI_IPHONE)
    phone_flow = rp_for(app, phone)
    phone_tokens = phone_flow.tokens(scope="openid offline_access", prompt="consent")
    tablet = signed_in_browser(app, user_agent=CHROME_ANDROID)
    make_user(email="ola@example.no")
    ola = signed_in_browser(app, email="ola@example.no")

    resp = post(flow.client, "/account/sessions/others/end")
    assert resp.status_code == 303
    html = page(flow.client)
    assert "signed out everywhere except on this device" in html
    assert len(entries(html)) == 1 and "You are not signed in anywhere else." in html
    assert phone.get("/account").status_code == 302 and tablet.get("/account").status_code == 302
    assert not token_alive(phone_flow, phone_tokens)
    assert token_alive(flow, laptop_tokens)
    assert ola.get("/account").status_code == 200  # someone else's session is untouched
    revoked = audit_events(app, "sessions_revoked")[-1]
    assert revoked.details["reason"] == "sign_out_others" and revoked.details["sessions"] == 2


def test_a_session_ended_elsewhere_cannot_use_the_page(app, make_user):
    make_user()
    laptop = signed_in_browser(app)
    phone = signed_in_browser(app, user_agent=SAFARI_IPHONE)
    token = csrf(page(phone))
    post(laptop, "/account/sessions/others/end")
    resp = phone.post("/account/profile", data={"given_name": "Eve", "csrf_token": token})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/login")
    assert sign_in(phone).status_code == 302  # signing in again works


@pytest.mark.parametrize("user_agent, label", [
    (FIREFOX_WINDOWS, "Firefox on Windows"),
    (SAFARI_IPHONE, "Safari on iPhone"),
    (CHROME_ANDROID, "Chrome on Android"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 "
     "Safari/605.1.15", "Safari on macOS"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 "
     "Safari/537.36 Edg/126.0.2592.87", "Edge on Windows"),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 "
     "OPR/111.0.0.0", "Opera on Linux"),
    ("Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0 "
     "Mobile/15E148 Safari/604.1", "Chrome on iPad"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "FxiOS/127.0 Mobile/15E148 Safari/605.1.15", "Firefox on iPhone"),
    ("Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 "
     "Chrome/121.0.0.0 Mobile Safari/537.36", "Samsung Internet on Android"),
    ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 "
     "Safari/537.36", "Chrome on ChromeOS"),
    ("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0", "Firefox on Linux"),
    ("Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko", "Internet Explorer on Windows"),
    ("curl/8.5.0", "curl"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64)", "A browser on Windows"),
    ("", "Unknown device"),
    (None, "Unknown device"),
    ("\x00\x01 garbage <script>", "Unknown device"),
])
def test_device_names_from_user_agents(app, user_agent, label):
    from visma_idp.account.activity import device_label

    with app.test_request_context("/"):
        assert device_label(user_agent) == label


def test_the_parser_is_pure_and_bounded():
    from visma_idp.account.activity import Device, parse_user_agent

    assert parse_user_agent(FIREFOX_WINDOWS) == Device("Firefox", "Windows")
    assert parse_user_agent("Firefox/1 " + "x" * 100_000 + " Windows") == Device("Firefox", None)
