"""Changing how one signs in needs the password entered within five minutes:
the confirmation page, its throttle and its safe return address."""

from __future__ import annotations

from tests.helpers import csrf, path_of


def signed_in(flow):
    flow.tokens()  # a full sign-in through the forms
    return flow.client


def confirm(client, password, next_path="/account/security"):
    page = client.get("/account/confirm-password?next=" + next_path)
    assert page.status_code == 200
    return client.post("/account/confirm-password",
                       data={"password": password, "next": next_path, "csrf_token": csrf(page.get_data(as_text=True))})


def test_recent_after_sign_in_then_stale(flow, app, idp):
    from visma_idp.browser.sso import current_session
    from visma_idp.factors.views import password_is_recent

    client = signed_in(flow)
    cookie = client.get_cookie("visma_idp_sid").value
    with app.test_request_context("/", headers={"Cookie": f"visma_idp_sid={cookie}"}):
        assert password_is_recent(current_session())
    idp.clock.advance(301)
    with app.test_request_context("/", headers={"Cookie": f"visma_idp_sid={cookie}"}):
        assert not password_is_recent(current_session())


def test_wrong_password_refused_right_one_goes_back(flow, idp):
    client = signed_in(flow)
    idp.clock.advance(600)
    wrong = confirm(client, "not the password at all")
    assert wrong.status_code == 401
    assert "That is not your current password." in wrong.get_data(as_text=True)
    right = confirm(client, flow.password)
    assert right.status_code == 302
    assert right.headers["Location"] == "http://127.0.0.1:5000/account/security"


def test_the_return_address_stays_on_this_server(flow):
    client = signed_in(flow)
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        resp = confirm(client, flow.password, evil)
        assert resp.headers["Location"] == "http://127.0.0.1:5000/account/security", evil


def test_needs_a_session(client):
    resp = client.get("/account/confirm-password")
    assert path_of(resp.headers["Location"]).startswith("/login")


def test_guessing_is_throttled(flow, idp):
    client = signed_in(flow)
    statuses = [confirm(client, f"wrong guess number {i}").status_code for i in range(6)]
    assert statuses[:3] == [401, 401, 401] and 429 in statuses


def test_the_return_address_refuses_encoded_and_hidden_tricks(flow):
    """The one rule of ``visma_idp/urls.py``: percent-encoded slashes and
    backslashes, control characters and dot segments go to the overview."""
    client = signed_in(flow)
    page = client.get("/account/confirm-password")
    for evil in ("/%2F%2Fevil.example", "/%5Cevil.example", "/%2f%5cevil.example", "/\t/evil.example",
                 "/account/../../evil", "/%2e%2e/evil", "/" + "a" * 600):
        resp = client.post("/account/confirm-password",
                           data={"password": flow.password, "next": evil, "csrf_token": csrf(page.text)})
        assert resp.headers["Location"] == "http://127.0.0.1:5000/account/security", evil


def test_a_throttled_confirmation_says_when_to_try_again(flow, app, idp):
    from tests.account.test_details import audit_events

    client = signed_in(flow)
    idp.clock.advance(600)
    free = idp.settings["THROTTLE_FREE_ATTEMPTS"]
    for i in range(free + 4):
        resp = confirm(client, f"wrong guess number {i}")
        if resp.status_code == 429:  # the growing delay (1, 2, 4 s): wait it out, then guess
            assert int(resp.headers["Retry-After"]) >= 1
            idp.clock.advance(int(resp.headers["Retry-After"]))
            resp = confirm(client, f"wrong guess number {i}")
        assert resp.status_code == 401
    resp = confirm(client, "one guess too soon")  # the delay is 8 seconds now
    wait = int(resp.headers["Retry-After"])
    assert resp.status_code == 429 and 1 <= wait <= 8
    assert f"Wait {wait} second(s)" in resp.text
    assert confirm(client, flow.password).status_code == 429  # the right one waits as well
    idp.clock.advance(8)
    assert confirm(client, flow.password).status_code == 302
    throttled = audit_events(app, "password_confirm_throttled")
    assert throttled and all(e.outcome == "failure" and e.details["locked"] is False for e in throttled)
    assert 1 <= throttled[-1].details["wait_seconds"] <= 8


def test_the_failure_that_pauses_the_account_answers_429_with_retry_after(flow, app, idp):
    from tests.account.test_details import audit_events

    client = signed_in(flow)
    idp.clock.advance(600)
    most, pause = idp.settings["THROTTLE_MAX_FAILURES"], idp.settings["THROTTLE_LOCK_SECONDS"]
    for i in range(most - 1):
        resp = confirm(client, f"wrong guess number {i}")
        if resp.status_code == 429:  # the growing delay: wait it out, then guess
            idp.clock.advance(int(resp.headers["Retry-After"]))
            resp = confirm(client, f"wrong guess number {i}")
        assert resp.status_code == 401
    idp.clock.advance(300)
    resp = confirm(client, "the guess that locks")
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) == pause
    assert "Try again in 15 minute(s)" in resp.text
    resp = confirm(client, flow.password)
    assert resp.status_code == 429 and 0 < int(resp.headers["Retry-After"]) <= pause
    assert audit_events(app, "account_locked")[0].details == {"seconds": pause}


def test_only_the_password_itself_passes_never_a_longer_text(app, make_user, idp):
    """Nothing is cut off: the policy allows at most MAX_LENGTH characters, and
    a longer text that starts with the password is wrong (as on the sign-in page)."""
    from tests.account.test_details import signed_in_with_the_longest_password

    client, longest = signed_in_with_the_longest_password(app, idp, make_user)
    idp.clock.advance(600)
    assert confirm(client, longest + "and more").status_code == 401
    assert confirm(client, longest).status_code == 302
