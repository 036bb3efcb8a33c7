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
    from visma_idp.factors.views import password_is_recent
    from visma_idp.browser.sso import current_session

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
