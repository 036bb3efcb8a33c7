"""Cross-site request forgery on the HTML forms: without the right
csrf_token nothing happens (400), and a post from another origin is
refused outright (403) even with a valid token."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.helpers import csrf, path_of, query

BAD_TOKENS = [None, "", "forged-token", "IjAxMjM0NTY3ODkwMTIzNDU2Nzg5MDEyMzQ1Njc4OSI.ZzZzZw.bad"]
EVIL_ORIGIN = "https://evil.example"


def count(app, model, **where) -> int:
    from visma_idp.storage import db

    with app.app_context():
        stmt = select(func.count()).select_from(model)
        for key, value in where.items():
            stmt = stmt.where(getattr(model, key) == value)
        return db.session.scalar(stmt)


def form(data: dict, token) -> dict:
    data = dict(data)
    if token is not None:
        data["csrf_token"] = token
    return data


def signed_in(client) -> bool:
    return "Signed in as" in client.get("/").get_data(as_text=True)


def to_email_page(flow):
    resp = flow.start()
    tx = query(resp.headers["Location"])["tx"]
    page = flow.follow(resp)
    return tx, page.get_data(as_text=True)


def to_password_page(flow):
    tx, page = to_email_page(flow)
    resp = flow.client.post(f"/login?tx={tx}", data={"email": flow.email, "tx": tx, "csrf_token": csrf(page)})
    assert resp.status_code == 302
    return tx, flow.follow(resp).get_data(as_text=True)


def to_consent_page(flow):
    resp = flow.login(flow.start())
    assert resp.status_code == 302
    page = flow.follow(resp)
    html = page.get_data(as_text=True)
    assert 'name="decision"' in html
    tx = query(resp.headers["Location"])["tx"]
    return tx, html


@pytest.mark.parametrize("token", BAD_TOKENS)
def test_email_form(flow, client, token):
    tx, _page = to_email_page(flow)
    resp = client.post(f"/login?tx={tx}", data=form({"email": flow.email, "tx": tx}, token))
    assert resp.status_code == 400
    assert "Location" not in resp.headers
    # the address was not taken: the password step sends us back to the email step
    nxt = client.get(f"/login/password?tx={tx}")
    assert nxt.status_code == 302 and path_of(nxt.headers["Location"]).startswith("/login?")


@pytest.mark.parametrize("token", BAD_TOKENS)
def test_password_form(app, flow, client, token):
    from visma_idp.storage import AuditEvent, SsoSession

    tx, _page = to_password_page(flow)
    resp = client.post(f"/login/password?tx={tx}", data=form({"password": flow.password, "tx": tx}, token))
    assert resp.status_code == 400
    assert "Location" not in resp.headers
    assert not any("visma_idp_sid" in h for h in resp.headers.getlist("Set-Cookie"))
    assert count(app, SsoSession) == 0
    assert count(app, AuditEvent, event="login_succeeded") == 0
    assert count(app, AuditEvent, event="login_failed") == 0  # not even counted as an attempt
    assert not signed_in(client)


@pytest.mark.parametrize("token", BAD_TOKENS)
@pytest.mark.parametrize("decision", ["allow", "deny"])
def test_consent_form(app, flow, client, token, decision):
    from visma_idp.storage import AuthorizationCode, Consent

    tx, _html = to_consent_page(flow)
    resp = client.post("/authorize/continue", data=form({"tx": tx, "decision": decision}, token))
    assert resp.status_code == 400
    assert "Location" not in resp.headers
    assert count(app, Consent) == 0
    assert count(app, AuthorizationCode) == 0
    # the real page still works afterwards (the transaction was not consumed)
    resp = client.get(f"/authorize/continue?tx={tx}")
    assert 'name="decision"' in resp.get_data(as_text=True)


def test_consent_token_from_another_browser_is_refused(app, flow, client):
    """A token the attacker got from their own session is no good in the victim's."""
    from visma_idp.storage import AuthorizationCode, Consent

    attacker = app.test_client()
    page = attacker.get("/login").get_data(as_text=True)
    attacker_token = csrf(page)
    tx, _html = to_consent_page(flow)
    resp = client.post("/authorize/continue", data={"tx": tx, "decision": "allow", "csrf_token": attacker_token})
    assert resp.status_code == 400
    assert count(app, Consent) == 0 and count(app, AuthorizationCode) == 0


@pytest.mark.parametrize("token", BAD_TOKENS)
@pytest.mark.parametrize("path", ["/logout", "/signout"])
def test_logout_confirm_form(app, flow, client, token, path):
    from visma_idp.storage import AuditEvent

    flow.authorize()
    assert signed_in(client)
    data = {"confirm": "yes"} if path == "/logout" else {}
    resp = client.post(path, data=form(data, token))
    assert resp.status_code == 400
    assert "Location" not in resp.headers
    assert signed_in(client)
    assert count(app, AuditEvent, event="logout") == 0


def test_valid_tokens_work(app, flow, client):
    """Control: the same forms with their own token do what they should."""
    from visma_idp.storage import AuditEvent, Consent

    tx, html = to_consent_page(flow)
    resp = client.post("/authorize/continue", data={"tx": tx, "decision": "allow", "csrf_token": csrf(html)})
    assert resp.status_code == 302 and "code" in query(resp.headers["Location"])
    assert count(app, Consent) == 1
    page = client.get("/logout").get_data(as_text=True)
    resp = client.post("/logout", data={"confirm": "yes", "csrf_token": csrf(page)})
    assert resp.status_code == 200
    assert not signed_in(client)
    assert count(app, AuditEvent, event="logout") == 1


# -- Origin ----------------------------------------------------------------------

def test_cross_origin_email_post(flow, client):
    tx, page = to_email_page(flow)
    resp = client.post(f"/login?tx={tx}", data={"email": flow.email, "tx": tx, "csrf_token": csrf(page)},
                       headers={"Origin": EVIL_ORIGIN})
    assert resp.status_code == 403


def test_cross_origin_password_post(app, flow, client):
    from visma_idp.storage import SsoSession

    tx, page = to_password_page(flow)
    resp = client.post(f"/login/password?tx={tx}",
                       data={"password": flow.password, "tx": tx, "csrf_token": csrf(page)},
                       headers={"Origin": EVIL_ORIGIN})
    assert resp.status_code == 403
    assert count(app, SsoSession) == 0


def test_cross_origin_consent_post(app, flow, client):
    from visma_idp.storage import Consent

    tx, html = to_consent_page(flow)
    for origin in (EVIL_ORIGIN, "http://127.0.0.1:5000.evil.example", "http://127.0.0.1:5001",
                   "https://127.0.0.1:5000"):
        resp = client.post("/authorize/continue", data={"tx": tx, "decision": "allow", "csrf_token": csrf(html)},
                           headers={"Origin": origin})
        assert resp.status_code == 403, origin
    assert count(app, Consent) == 0


def test_cross_origin_signout_post(flow, client):
    flow.authorize()
    page = client.get("/signout").get_data(as_text=True)
    resp = client.post("/signout", data={"csrf_token": csrf(page)}, headers={"Origin": EVIL_ORIGIN})
    assert resp.status_code == 403
    assert signed_in(client)


def test_same_origin_and_null_origin_posts_pass(flow, client):
    """Our pages send ``Referrer-Policy: no-referrer``, so browsers send ``Origin: null`` on our own posts."""
    tx, page = to_email_page(flow)
    for origin in ("http://127.0.0.1:5000", "null"):
        resp = client.post(f"/login?tx={tx}", data={"email": flow.email, "tx": tx, "csrf_token": csrf(page)},
                           headers={"Origin": origin})
        assert resp.status_code == 302, origin
