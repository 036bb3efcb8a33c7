"""My details: the page needs a session; the profile form validates,
saves, audits; the language setting shows at once; notification settings."""

from __future__ import annotations

import re

from sqlalchemy import select

from tests.helpers import csrf

ISSUER = "http://127.0.0.1:5000"
PASSWORD = "correct horse battery"
FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI_IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
                 "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")


# -- helpers the other account tests import ---------------------------------------

def browser(app, user_agent: str = FIREFOX_WINDOWS, ip: str = "127.0.0.1"):
    """A test client that acts as one browser (its own cookies, UA and IP)."""
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = user_agent
    client.environ_base["REMOTE_ADDR"] = ip
    return client


def sign_in(client, email: str = "kari@example.no", password: str = PASSWORD):
    """Sign in through the login forms; returns the answer to the password post."""
    page = client.get("/login")
    resp = client.post("/login", data={"email": email, "csrf_token": csrf(page.text)})
    assert resp.status_code == 302, resp.status_code
    page = client.get("/login/password")
    return client.post("/login/password", data={"password": password, "csrf_token": csrf(page.text)})


def signed_in_browser(app, email: str = "kari@example.no", password: str = PASSWORD, **kwargs):
    client = browser(app, **kwargs)
    resp = sign_in(client, email, password)
    assert resp.status_code == 302 and resp.headers["Location"] == ISSUER + "/", resp.status_code
    return client


def signed_in_with_the_longest_password(app, idp, make_user):
    """A new user whose password is MAX_LENGTH characters long, signed in:
    (the browser, the password)."""
    from visma_idp.password.policy import MAX_LENGTH
    from visma_idp.storage import User, db

    uid = make_user()
    longest = ("Tre små kinesere på Høyblokken spiller kontrabass " * 30)[:MAX_LENGTH]
    with app.app_context():
        db.session.get(User, uid).password_hash = idp.hasher.hash(longest)
        db.session.commit()
    return signed_in_browser(app, password=longest), longest


def page(client) -> str:
    resp = client.get("/account")
    assert resp.status_code == 200, resp.status_code
    return resp.text


def post(client, url: str, **data):
    """Post a My details form the way the page does (CSRF token from the page)."""
    return client.post(url, data={"csrf_token": csrf(page(client)), **data})


def user_row(app, email: str = "kari@example.no"):
    from visma_idp.storage import User, db

    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        if user is not None:
            db.session.expunge(user)
        return user


def audit_events(app, event: str, user_id: int | None = None):
    from visma_idp.storage import AuditEvent, db

    with app.app_context():
        stmt = select(AuditEvent).where(AuditEvent.event == event)
        if user_id is not None:
            stmt = stmt.where(AuditEvent.user_id == user_id)
        rows = list(db.session.scalars(stmt.order_by(AuditEvent.id)))
        for row in rows:
            db.session.expunge(row)
        return rows


PROFILE = {"given_name": "Kari", "family_name": "Nordmann", "name": "Kari N.", "phone_number": "", "locale": "en"}


# -- the page -------------------------------------------------------------------------

def test_my_details_needs_a_session_and_home_links_to_it(app, make_user):
    make_user()
    client = browser(app)
    resp = client.get("/account")
    assert resp.status_code == 302 and resp.headers["Location"] == ISSUER + "/login"
    resp = sign_in(client)
    assert resp.headers["Location"] == ISSUER + "/"
    home = client.get("/").text
    assert 'href="http://127.0.0.1:5000/account"' in home
    html = page(client)
    for heading in ("Personal details", "Notifications", "Security", "Change password", "Change email address",
                    "Where you are signed in", "Recent security activity"):
        assert heading in html
    assert "Signed in as kari@example.no" in html


def test_every_form_post_needs_a_session(app, make_user):
    make_user()
    client = browser(app)
    client.get("/login")  # a CSRF token for an anonymous browser
    token = csrf(client.get("/login").text)
    for url in ("/account/profile", "/account/notifications", "/account/password", "/account/email",
                "/account/sessions/others/end", "/account/sessions/x/end"):
        resp = client.post(url, data={"csrf_token": token})
        assert resp.status_code == 303 and resp.headers["Location"] == ISSUER + "/login", url


def test_a_form_url_opened_with_get_goes_to_the_page(app, make_user):
    make_user()
    client = signed_in_browser(app)
    resp = client.get("/account/profile?lang=nb")
    assert resp.status_code == 302 and resp.headers["Location"] == ISSUER + "/account?lang=nb"


def test_forms_need_the_csrf_token(app, make_user):
    uid = make_user()
    client = signed_in_browser(app)
    page(client)
    resp = client.post("/account/profile", data={**PROFILE, "given_name": "Eve"})
    assert resp.status_code == 400
    assert user_row(app).given_name is None
    resp = client.post("/account/profile", data={**PROFILE, "given_name": "Eve", "csrf_token": "forged"})
    assert resp.status_code == 400
    assert not audit_events(app, "profile_updated", uid)


def test_a_post_from_another_origin_is_refused(app, make_user):
    make_user()
    client = signed_in_browser(app)
    token = csrf(page(client))
    resp = client.post("/account/profile", data={**PROFILE, "csrf_token": token},
                       headers={"Origin": "https://evil.example"})
    assert resp.status_code == 403
    assert user_row(app).given_name is None


# -- profile ---------------------------------------------------------------------------

def test_saving_details_stores_audits_and_confirms(app, idp, make_user):
    uid = make_user()
    before = user_row(app).updated_at
    idp.clock.advance(5)
    client = signed_in_browser(app)
    resp = post(client, "/account/profile", given_name="  Kari  ", family_name="Nordmann-Ås",
                name="", phone_number="+47 912 34 567", locale="en")
    assert resp.status_code == 303 and resp.headers["Location"] == ISSUER + "/account#details"
    user = user_row(app)
    assert (user.given_name, user.family_name, user.name) == ("Kari", "Nordmann-Ås", "Kari Nordmann-Ås")
    assert user.phone_number == "+4791234567" and user.phone_number_verified is False
    assert user.locale == "en" and user.updated_at > before
    [event] = audit_events(app, "profile_updated", uid)
    assert set(event.details["fields"]) == {"given_name", "family_name", "name", "phone_number", "locale"}
    html = page(client)
    assert 'role="status">Your details are saved.' in html
    assert 'value="Nordmann-Ås"' in html
    assert "Your details are saved." not in page(client)  # shown once


def test_saving_the_same_details_changes_nothing(app, make_user):
    uid = make_user(given_name="Kari", family_name="Nordmann", locale="en")
    client = signed_in_browser(app)
    resp = post(client, "/account/profile", given_name="Kari", family_name="Nordmann", name="Kari Nordmann",
                phone_number="", locale="en")
    assert resp.status_code == 303
    assert "Nothing to save" in page(client)
    assert not audit_events(app, "profile_updated", uid)


def test_a_new_phone_number_is_no_longer_verified(app, make_user):
    make_user(phone_number="+4790000000", phone_number_verified=True)
    client = signed_in_browser(app)
    post(client, "/account/profile", **{**PROFILE, "phone_number": "+4790000000"})
    assert user_row(app).phone_number_verified is True  # the same number stays verified
    post(client, "/account/profile", **{**PROFILE, "phone_number": "0046 70 123 45 67"})
    user = user_row(app)
    assert user.phone_number == "+46701234567" and user.phone_number_verified is False


def _field_error(html: str, field_id: str) -> str:
    match = re.search(rf'<input id="{field_id}"[^>]*>', html) or re.search(rf'<select id="{field_id}"[^>]*>', html)
    assert match, field_id
    tag = match.group(0)
    assert 'aria-invalid="true"' in tag and f"{field_id}-error" in tag, tag
    error = re.search(rf'id="{field_id}-error" role="alert">(.*?)</', html, re.S)
    assert error, html
    return error.group(1)


def test_bad_details_are_refused_next_to_the_field(app, make_user):
    make_user()
    client = signed_in_browser(app)
    cases = [
        ({"given_name": "K" * 101}, "profile-given_name", "at most 100 characters"),
        ({"family_name": "Nord<b>mann"}, "profile-family_name", "Use only letters"),
        ({"name": "x" * 101}, "profile-name", "at most 100 characters"),
        ({"name": "Kari <script>"}, "profile-name", "cannot contain"),
        ({"name": "Kari\x00"}, "profile-name", "cannot contain"),
        ({"phone_number": "912 34 567"}, "profile-phone_number", "country code"),
        ({"phone_number": "+47 abc"}, "profile-phone_number", "country code"),
        ({"phone_number": "+0123456789"}, "profile-phone_number", "country code"),
        ({"locale": "de"}, "profile-locale", "Choose one of the languages"),
    ]
    for change, field_id, text in cases:
        resp = post(client, "/account/profile", **{**PROFILE, **change})
        assert resp.status_code == 400, change
        assert text in _field_error(resp.text, field_id), change
        assert 'value="' + PROFILE["given_name"] + '"' in resp.text or "given_name" in change  # typed values kept
    user = user_row(app)
    assert user.given_name is None and user.name == "Kari Nordmann"


def test_names_in_other_scripts_and_apostrophes_are_fine(app, make_user):
    make_user()
    client = signed_in_browser(app)
    resp = post(client, "/account/profile", **{**PROFILE, "given_name": "Ævar Þór", "family_name": "O’Brien-Ŝ"})
    assert resp.status_code == 303
    assert user_row(app).family_name == "O’Brien-Ŝ"


def test_the_saved_language_shows_at_once(app, make_user):
    make_user()
    client = signed_in_browser(app)
    assert '<html lang="sv">' in client.get("/account?lang=sv").text  # the switcher's choice in this browser
    resp = post(client, "/account/profile", **{**PROFILE, "locale": "nb"})
    assert resp.status_code == 303
    assert user_row(app).locale == "nb"
    html = page(client)
    assert '<html lang="nb">' in html
    assert re.search(r'<option value="nb" lang="nb" selected>', html)
    other = signed_in_browser(app)  # the setting follows the user to another browser
    assert '<html lang="nb">' in page(other)


def test_relying_apps_see_the_new_name(flow, app):
    tokens = flow.tokens(scope="openid profile")
    from tests.account.test_details import post as post_form

    resp = post_form(flow.client, "/account/profile", **{**PROFILE, "given_name": "Karianne", "name": ""})
    assert resp.status_code == 303
    info = flow.client.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}).get_json()
    assert info["given_name"] == "Karianne" and info["name"] == "Karianne Nordmann"


# -- notification settings ------------------------------------------------------------------

def test_notification_setting_can_be_switched_off_and_on(app, make_user):
    uid = make_user()
    client = signed_in_browser(app)
    html = page(client)
    assert re.search(r'<input id="notify-profile"[^>]* checked>', html)
    assert "always tell you by email about security changes" in html
    resp = post(client, "/account/notifications")  # the box unticked: no field sent
    assert resp.status_code == 303 and resp.headers["Location"] == ISSUER + "/account#notifications"
    assert user_row(app).notify_profile_changes is False
    html = page(client)
    assert "Your notification settings are saved." in html
    assert not re.search(r'<input id="notify-profile"[^>]* checked>', html)
    post(client, "/account/notifications", notify_profile_changes="on")
    assert user_row(app).notify_profile_changes is True
    events = audit_events(app, "notification_settings_changed", uid)
    assert [e.details["notify_profile_changes"] for e in events] == [False, True]


# -- security activity ----------------------------------------------------------------------

def test_recent_security_activity_lists_the_users_own_events(app, make_user):
    make_user()
    make_user(email="ola@example.no")
    other = browser(app, ip="203.0.113.9")
    assert sign_in(other, "ola@example.no", "wrong password here").status_code == 401
    sign_in(other, "kari@example.no", "wrong password here")
    client = signed_in_browser(app, ip="198.51.100.7")
    html = page(client)
    section = html.split('id="activity"')[1]
    items = re.findall(r"<li( class=\"failed\")?>\s*<strong>(.*?)</strong>", section)
    labels = [label for _, label in items]
    assert labels[0] == "Signed in"  # newest first
    assert "Failed sign-in attempt" in labels and "Account created" in labels
    assert labels.count("Failed sign-in attempt") == 1  # ola's failure is not on kari's page
    assert ' class="failed"' in section
    assert "IP address 198.51.100.7" in section and "IP address 203.0.113.9" in section
    assert "Firefox on Windows" in section


def test_the_page_renders_in_every_language_and_the_users_time_zone(app, make_user):
    make_user(zoneinfo="Europe/Oslo")
    client = signed_in_browser(app)
    for lang in ("en", "nb", "nn", "da", "sv"):
        resp = client.get(f"/account?lang={lang}")
        assert resp.status_code == 200 and f'<html lang="{lang}">' in resp.text
    html = client.get("/account?lang=en").text
    assert "Times are shown in Central European Time." in html or "Times are shown in Norway Time." in html, \
        re.search(r"Times are shown in [^<]*", html).group(0)
    assert re.search(r'<time datetime="[^"]+\+00:00">', html)  # machine-readable time stays UTC


def test_a_bad_time_zone_setting_falls_back_to_utc(app, make_user):
    make_user(zoneinfo="Mars/Olympus_Mons")
    client = signed_in_browser(app)
    assert "Times are shown in UTC." in page(client)
