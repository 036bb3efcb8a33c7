"""POST /password/check (account/password_check.py), the password fields and their script."""

from __future__ import annotations

import json
import re

import pytest
from flask import render_template_string

from tests.helpers import csrf
from visma_idp.account import tokens
from visma_idp.password.policy import Violation
from visma_idp.storage import User, db

GOOD = "zebra kettle tea"
SHORT = "Kq8#vN3x!Lz"  # 11 random characters: too short, and nothing else
TOO_SHORT = {"code": "too_short", "message": "Use at least 12 characters."}
HAS_NAME = {"code": "contains_name", "message": "Do not use your name in the password."}


def token_of(client) -> str:
    """A CSRF token for this browser, from a page of ours."""
    return csrf(client.get("/login").get_data(as_text=True))


def ask(client, body, *, token: str | None = "fetch", headers=None, **kwargs):
    headers = dict(headers or {})
    if token == "fetch":
        token = token_of(client)
    if token:
        headers["X-CSRFToken"] = token
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    kwargs.setdefault("content_type", "application/json")
    return client.post("/password/check", data=data, headers=headers, **kwargs)


def sign_in(client, email="kari@example.no", password="correct horse battery"):
    page = client.get("/login").get_data(as_text=True)
    client.post("/login", data={"email": email, "csrf_token": csrf(page)})
    page = client.get("/login/password").get_data(as_text=True)
    resp = client.post("/login/password", data={"password": password, "csrf_token": csrf(page)})
    assert resp.status_code == 302, resp.get_data(as_text=True)


@pytest.fixture
def link_for(app, make_user):
    """A live link of ``kind`` for a new user called Per Olsen, po@example.no (pending for activation)."""

    def issue(kind=tokens.ACTIVATION, **claims):
        from visma_idp.admin.service import create_user

        with app.app_context():
            password = None if kind == tokens.ACTIVATION else "correct horse battery"
            user = create_user("po@example.no", "Per Olsen", password, given_name="Per", family_name="Olsen",
                               **claims)
            link = tokens.issue(user, kind, lifetime=3600)
            db.session.commit()
            return link.raw

    return issue


# -- anonymous ---------------------------------------------------------------------

def test_every_violation_comes_back_with_its_message(client):
    resp = ask(client, {"password": SHORT})
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.get_json() == {"ok": False, "violations": [TOO_SHORT]}
    # it runs while the user types and may answer after a form post: it must not
    # write the session cookie (its stale copy would undo the post's)
    assert "Set-Cookie" not in resp.headers


def test_a_good_password_is_ok(client):
    resp = ask(client, {"password": GOOD})
    assert resp.get_json() == {"ok": True, "violations": []}


def test_all_violations_at_once(client):
    body = {"password": "kari123", "given_name": "Kari", "email": "kari@example.no"}
    codes = [v["code"] for v in ask(client, body).get_json()["violations"]]
    assert codes == ["too_short", "contains_name", "contains_email", "guessable"]


def test_the_optional_fields_describe_the_person_when_nobody_is_known(client):
    body = {"password": "olsen likes green tea", "given_name": "Per", "family_name": "Olsen", "email": "per@example.no"}
    assert ask(client, body).get_json()["violations"] == [HAS_NAME]
    assert ask(client, {"password": "olsen likes green tea"}).get_json()["ok"] is True


def test_a_password_over_the_maximum_is_a_violation_not_an_error(client):
    resp = ask(client, {"password": "x" * 1025})
    assert resp.status_code == 200
    assert [v["code"] for v in resp.get_json()["violations"]] == ["too_long"]


# -- signed in --------------------------------------------------------------------

def test_the_signed_in_users_details_are_used(client, make_user):
    make_user(given_name="Kari", family_name="Nordmann", company_name="Fjordkraft")
    sign_in(client)
    answer = ask(client, {"password": "nordmann fjordkraft tea"}).get_json()
    assert [v["code"] for v in answer["violations"]] == ["contains_name", "contains_company"]
    # what the page sends cannot replace the signed-in user's details
    answer = ask(client, {"password": "nordmann tea party", "given_name": "Someone", "family_name": "Else"}).get_json()
    assert [v["code"] for v in answer["violations"]] == ["contains_name", "guessable"]


def test_history_is_left_out_of_the_live_check(app, make_app):
    other = make_app(PASSWORD_HISTORY=5)
    with other.app_context():
        from visma_idp.admin.service import create_user

        create_user("kari@example.no", "Kari Nordmann", "correct horse battery")
        db.session.commit()
    client = other.test_client()
    sign_in(client)
    # the current password: the form post refuses it, the live check does not spend Argon2 work on it
    assert ask(client, {"password": "correct horse battery"}).get_json() == {"ok": True, "violations": []}


# -- with a link ------------------------------------------------------------------

@pytest.mark.parametrize("kind", [tokens.ACTIVATION, tokens.RESET, tokens.LOGIN_LINK])
def test_a_live_link_names_the_person(client, link_for, kind):
    raw = link_for(kind)
    answer = ask(client, {"password": "olsen likes green tea", "link": raw}).get_json()
    assert answer["violations"] == [HAS_NAME]
    answer = ask(client, {"password": "PerOlsen is great!", "link": raw}).get_json()
    assert answer["violations"] == [HAS_NAME]


def test_the_link_is_only_looked_at_not_used(app, client, link_for):
    raw = link_for()
    ask(client, {"password": GOOD, "link": raw})
    with app.app_context():
        assert tokens.peek(raw, (tokens.ACTIVATION,)).used_at is None


def _same_as_without_link(client, link):
    body = {"password": "olsen likes green tea"}
    token = token_of(client)
    without = ask(client, body, token=token)
    with_link = ask(client, {**body, "link": link}, token=token)
    assert with_link.status_code == without.status_code == 200
    assert with_link.get_data() == without.get_data()

    def headers(resp):  # every response has an X-Request-Id of its own
        return sorted((k, v) for k, v in resp.headers.items() if k != "X-Request-Id")

    assert headers(with_link) == headers(without)
    assert with_link.get_json()["ok"] is True


def test_an_unknown_link_answers_as_if_there_were_none(client, make_user):
    make_user()
    _same_as_without_link(client, "A" * 43)
    _same_as_without_link(client, "not a link at all")


def test_an_expired_link_answers_as_if_there_were_none(client, idp, link_for):
    raw = link_for()
    idp.clock.advance(3601)
    _same_as_without_link(client, raw)


def test_a_used_link_answers_as_if_there_were_none(app, client, link_for):
    raw = link_for()
    with app.app_context():
        tokens.redeem(raw, (tokens.ACTIVATION,))
        db.session.commit()
    _same_as_without_link(client, raw)


def test_an_email_change_link_does_not_count(app, client, make_user):
    make_user(given_name="Kari", email="kari@example.no")
    with app.app_context():
        user = db.session.scalar(db.select(User))
        raw = tokens.issue(user, tokens.EMAIL_CHANGE, lifetime=3600, data={"email": "new@example.no"}).raw
        db.session.commit()
    answer = ask(client, {"password": "kari likes green tea", "link": raw}).get_json()
    assert answer == {"ok": True, "violations": []}


# -- CSRF and origin ----------------------------------------------------------------------

def test_a_call_without_the_csrf_token_is_refused(client):
    client.get("/login")  # the browser has a session, but the script did not send the token
    resp = ask(client, {"password": GOOD}, token=None)
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "csrf"
    assert resp.get_json()["message"] == "This page has expired. Reload the page and try again."


def test_a_wrong_csrf_token_is_refused(client):
    client.get("/login")
    assert ask(client, {"password": GOOD}, token="forged").get_json()["error"] == "csrf"
    # a token from another browser does not work either
    other = client.application.test_client()
    assert ask(client, {"password": GOOD}, token=token_of(other)).status_code == 400


def test_a_call_from_another_origin_is_refused(client):
    resp = ask(client, {"password": GOOD}, headers={"Origin": "https://evil.example"})
    assert resp.status_code == 403
    assert resp.is_json and resp.get_json()["error"] == "bad_request"


def test_get_is_not_allowed(client):
    assert client.get("/password/check").status_code == 405


# -- bad input ------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "content_type", "error"), [
    ({"password": GOOD}, "application/x-www-form-urlencoded", "not_json"),
    ("password=zebra", "text/plain", "not_json"),
    ("{not json", "application/json", "not_json"),
    (b"\xff\xfe\xfa", "application/json", "not_json"),
    ('["zebra kettle tea"]', "application/json", "not_json"),
    ('"zebra kettle tea"', "application/json", "not_json"),
    ({}, "application/json", "bad_password"),
    ({"password": None}, "application/json", "bad_password"),
    ({"password": 123456789012}, "application/json", "bad_password"),
    ({"password": ["zebra kettle tea"]}, "application/json", "bad_password"),
    ({"password": GOOD, "link": 5}, "application/json", "bad_field"),
    ({"password": GOOD, "email": {"a": 1}}, "application/json", "bad_field"),
    ({"password": GOOD, "given_name": "x" * 321}, "application/json", "bad_field"),
    ({"password": "x" * 20_000}, "application/json", "too_large"),
])
def test_bad_input_is_a_400_with_a_clear_json_error(client, body, content_type, error):
    if isinstance(body, dict) and content_type != "application/json":
        body = "&".join(f"{k}={v}" for k, v in body.items())
    resp = ask(client, body, content_type=content_type)
    assert resp.status_code == 400, resp.get_data(as_text=True)
    answer = resp.get_json()
    assert answer["error"] == error
    assert answer["message"].endswith(".")
    assert resp.headers["Cache-Control"] == "no-store"


def test_a_huge_body_is_refused_before_it_is_read(client):
    resp = ask(client, json.dumps({"password": "x" * 300_000}))
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "too_large"


def test_the_error_messages_are_english_sentences(client):
    assert ask(client, "nope", content_type="text/plain").get_json()["message"] == "Send the password as a JSON object."
    assert ask(client, {"password": 1}).get_json()["message"] == "The password must be a text string."


# -- languages -------------------------------------------------------------------------------

def test_messages_follow_the_page_language(client):
    token = token_of(client)
    english = ask(client, {"password": SHORT}, token=token, headers={"Accept-Language": "en"}).get_json()
    assert english["violations"] == [TOO_SHORT]
    # nb/nn/da/sv catalogues are filled in later: the endpoint answers in them
    for lang in ("nb", "nn", "da", "sv"):
        resp = ask(client, {"password": SHORT}, token=token, headers={"Accept-Language": lang})
        assert resp.status_code == 200
        answer = resp.get_json()
        assert [v["code"] for v in answer["violations"]] == ["too_short"]
        assert "12" in answer["violations"][0]["message"]


# -- the fields and the script ------------------------------------------------------------------

def _render(app, source, **context):
    with app.test_request_context("/activate/x"):
        html = render_template_string('{% from "_password_fields.html" import password_fields %}' + source, **context)
        from visma_idp.context import request_state

        return html, request_state().csp_nonce


def test_the_fields_render_both_inputs_the_rules_and_the_script(app):
    html, nonce = _render(app, "{{ password_fields(link='raw-link-value', autofocus=True) }}")
    assert re.search(r'<input id="password" name="password" type="password" autocomplete="new-password" required autofocus',
                     html)
    assert re.search(r'<input id="password2" name="password2" type="password" autocomplete="new-password" required', html)
    assert '<label for="password">New password</label>' in html
    assert '<label for="password2">Repeat new password</label>' in html
    assert "<li>At least 12 characters</li>" in html
    assert "<li>Not a commonly used password</li>" in html
    assert '<ul class="pw-problems" id="password-problems" aria-live="polite"></ul>' in html
    assert 'aria-describedby="password-rules password-problems"' in html
    assert 'data-link="raw-link-value"' in html
    assert 'data-password-check="http://127.0.0.1:5000/password/check"' in html
    assert nonce and f'<script src="/static/password-check.js" nonce="{nonce}" defer></script>' in html
    assert "aria-invalid" not in html
    assert "<script>" not in html and "style=" not in html


def test_the_fields_show_the_servers_errors(app):
    errors = [Violation("too_short", {"min": 12}), "The two passwords are not the same."]
    html, _ = _render(app, "{{ password_fields(errors=errors, mismatch=True, prefix='new') }}", errors=errors)
    assert '<ul class="error pw-server-errors" id="new-error" role="alert">' in html
    assert "<li>Use at least 12 characters.</li>" in html
    assert "<li>The two passwords are not the same.</li>" in html
    assert 'id="new" name="password"' in html and 'id="new2" name="password2"' in html
    assert 'aria-describedby="new-rules new-error new-problems"' in html
    assert html.count('aria-invalid="true"') == 2
    assert '<p class="error pw-repeat-error" id="new2-error" aria-live="polite">The two passwords are not the same.</p>' in html


def test_the_fields_list_the_optional_rules(app, make_app):
    strict = make_app(PASSWORD_MIN_LENGTH=8, PASSWORD_FORBID_SPACES=True, PASSWORD_HISTORY=3)
    html, _ = _render(strict, "{{ password_fields() }}")
    assert "<li>At least 8 characters</li>" in html
    assert "<li>No spaces</li>" in html
    assert "<li>Not one of your last 3 passwords</li>" in html
    html, _ = _render(strict, "{{ password_fields(history=False) }}")
    assert "last 3 passwords" not in html


def test_the_script_is_served_and_posts_json_with_the_csrf_header(client):
    resp = client.get("/static/password-check.js")
    assert resp.status_code == 200
    script = resp.get_data(as_text=True)
    resp.close()
    assert '"X-CSRFToken"' in script and '"Content-Type": "application/json"' in script
    assert "data-password-check" in script and "innerHTML" not in script


def test_each_client_ip_may_ask_a_limited_number_of_times(app, idp, client):
    """An estimate costs CPU and anyone can get a CSRF token: past PASSWORD_CHECK_PER_IP
    checks in 5 minutes an IP gets 429 with Retry-After (the script then shows nothing;
    posting the form still checks the password). Other IPs are not affected."""
    idp.settings["PASSWORD_CHECK_PER_IP"] = 10
    token = token_of(client)
    for _ in range(10):
        assert ask(client, {"password": SHORT}, token=token).status_code == 200
    resp = ask(client, {"password": SHORT}, token=token)
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "300" and resp.headers["Cache-Control"] == "no-store"
    answer = resp.get_json()
    assert answer["error"] == "too_many_checks" and "still checked when you send the form" in answer["message"]
    other = ask(client, {"password": SHORT}, token=token, environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert other.status_code == 200 and other.get_json()["violations"] == [TOO_SHORT]
    idp.clock.advance(301)
    assert ask(client, {"password": SHORT}, token=token).status_code == 200


def test_the_limit_is_answered_in_the_pages_language(app, idp, client):
    idp.settings["PASSWORD_CHECK_PER_IP"] = 10
    token = token_of(client)
    for _ in range(10):
        ask(client, {"password": SHORT}, token=token)
    resp = ask(client, {"password": SHORT}, token=token, headers={"Accept-Language": "nb"})
    assert resp.status_code == 429
    assert "Too many" not in resp.get_json()["message"]
