"""Response headers and cookies: no framing (clickjacking), no caching of
tokens, a session cookie the page's scripts cannot read and other sites
cannot send, and a new session id at every login (session fixation)."""

from __future__ import annotations

from http.cookies import SimpleCookie
from urllib.parse import urlencode

import pytest

from tests.helpers import Flow, csrf, path_of, query

SID = "visma_idp_sid"


def assert_no_framing(resp, name=""):
    csp = resp.headers.get("Content-Security-Policy", "")
    directives = {d.strip().split(" ", 1)[0]: d.strip() for d in csp.split(";") if d.strip()}
    assert directives.get("frame-ancestors") == "frame-ancestors 'none'", (name, csp)
    assert "unsafe-inline" not in directives.get("script-src", ""), (name, csp)
    assert resp.headers.get("X-Frame-Options") == "DENY", name
    assert resp.headers.get("X-Content-Type-Options") == "nosniff", name


def html(resp) -> str:
    assert resp.mimetype == "text/html", (resp.status_code, resp.mimetype)
    return resp.get_data(as_text=True)


def set_cookies(resp) -> dict[str, dict]:
    """Parsed Set-Cookie headers: name -> {"value", attribute names lower-cased...}."""
    found = {}
    for header in resp.headers.getlist("Set-Cookie"):
        jar = SimpleCookie()
        jar.load(header)
        for name, morsel in jar.items():
            attrs = {k.lower(): v for k, v in morsel.items() if v}
            flags = {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}
            found[name] = {"value": morsel.value, "flags": flags, **attrs}
    return found


def test_every_html_page_refuses_framing(flow, client):
    pages = []
    resp = flow.start()
    pages.append(("authorize redirect", resp))
    email_page = flow.follow(resp)
    pages.append(("email page", email_page))
    tx = query(resp.headers["Location"])["tx"]
    resp = client.post(f"/login?tx={tx}", data={"email": "", "tx": tx, "csrf_token": csrf(html(email_page))})
    pages.append(("email error", resp))
    resp = client.post(f"/login?tx={tx}", data={"email": flow.email, "tx": tx, "csrf_token": csrf(html(email_page))})
    password_page = flow.follow(resp)
    pages.append(("password page", password_page))
    resp = client.post(f"/login/password?tx={tx}",
                       data={"password": "wrong password!", "tx": tx, "csrf_token": csrf(html(password_page))})
    pages.append(("password error", resp))
    resp = client.post(f"/login/password?tx={tx}",
                       data={"password": flow.password, "tx": tx, "csrf_token": csrf(html(password_page))})
    consent = flow.follow(resp)
    assert 'name="decision"' in html(consent)
    pages.append(("consent", consent))
    pages.append(("csrf error", client.post("/authorize/continue", data={"tx": tx, "decision": "allow"})))
    assert flow.consent(consent).status_code == 302
    pages.append(("error page", client.get("/authorize?client_id=nobody")))
    pages.append(("expired tx", client.get("/authorize/continue?tx=nope")))
    pages.append(("home", client.get("/")))
    pages.append(("select account", flow.start(prompt="select_account")))
    form_post = flow.start(response_mode="form_post")
    assert 'id="form_post"' in html(form_post)
    pages.append(("form_post", form_post))
    pages.append(("logout confirm", client.get("/logout")))
    pages.append(("signout confirm", client.get("/signout")))
    logout_form = html(client.get("/logout"))
    pages.append(("logged out", client.post("/logout", data={"confirm": "yes", "csrf_token": csrf(logout_form)})))
    pages.append(("not found", client.get("/no-such-page")))
    for name, resp in pages:
        assert_no_framing(resp, name)
        if resp.mimetype == "text/html":
            assert "no-store" in resp.headers.get("Cache-Control", ""), name


@pytest.mark.parametrize("grant", ["authorization_code", "refresh_token", "client_credentials", "error"])
def test_token_responses_are_not_cached(flow, client, make_client, grant):
    if grant == "client_credentials":
        secret = make_client("batch", grant_types=["client_credentials"], redirect_uris=[], scope="reports")
        resp = client.post("/token", data={"grant_type": "client_credentials"},
                           headers=Flow(None, client, "batch", secret, "").basic())
    elif grant == "error":
        resp = client.post("/token", data={"grant_type": "authorization_code", "code": "nope"}, headers=flow.basic())
        assert resp.status_code == 400
    else:
        params = flow.authorize(scope="openid offline_access")
        resp = flow.token(params["code"])
        if grant == "refresh_token":
            resp = client.post("/token", data={"grant_type": "refresh_token",
                                               "refresh_token": resp.get_json()["refresh_token"]},
                               headers=flow.basic())
    if grant != "error":
        assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers.get("Pragma") == "no-cache"


def test_userinfo_not_cached(flow, client):
    tokens = flow.tokens()
    resp = client.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]})
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"


def _login_response(flow):
    """Go through the forms and return the password POST's response (the one that sets the SSO cookie)."""
    resp = flow.start()
    page = flow.follow(resp)
    tx = query(resp.headers["Location"])["tx"]
    resp = flow.client.post(f"/login?tx={tx}", data={"email": flow.email, "tx": tx, "csrf_token": csrf(html(page))})
    page = flow.follow(resp)
    return flow.client.post(path_of(resp.headers["Location"]),
                            data={"password": flow.password, "tx": tx, "csrf_token": csrf(html(page))})


def test_sso_cookie_flags_on_loopback_issuer(flow):
    resp = _login_response(flow)
    assert resp.status_code == 302
    cookie = set_cookies(resp)[SID]
    assert "httponly" in cookie["flags"]
    assert cookie["samesite"].lower() == "lax"
    assert cookie["path"] == "/"
    assert "domain" not in cookie
    tx_cookie = set_cookies(resp).get("visma_idp_tx")
    if tx_cookie:
        assert "httponly" in tx_cookie["flags"] and tx_cookie["samesite"].lower() == "lax"


class TestHttpsIssuer:
    @pytest.fixture
    def settings(self, settings):
        settings["ISSUER"] = "https://idp.example.com"
        return settings

    @pytest.fixture
    def client(self, app):
        client = app.test_client()
        client.environ_base.update({"wsgi.url_scheme": "https", "HTTP_HOST": "idp.example.com"})
        return client

    def test_host_prefixed_secure_cookie(self, flow):
        resp = _login_response(flow)
        assert resp.status_code == 302, resp.get_data(as_text=True)
        assert resp.headers["Location"].startswith("https://idp.example.com/")
        cookies = set_cookies(resp)
        assert SID not in cookies
        cookie = cookies["__Host-" + SID]
        assert {"secure", "httponly"} <= cookie["flags"]
        assert cookie["samesite"].lower() == "lax"
        assert cookie["path"] == "/"
        assert "domain" not in cookie
        assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
        for name, tx_cookie in cookies.items():
            if name != "__Host-" + SID:
                assert {"secure", "httponly"} <= tx_cookie["flags"], name

    def test_logout_clears_the_prefixed_cookie(self, flow, client):
        _login_response(flow)
        page = client.get("/signout")
        resp = client.post("/signout", data={"csrf_token": csrf(html(page))})
        cleared = set_cookies(resp)["__Host-" + SID]
        assert cleared["value"] == ""
        assert {"secure"} <= cleared["flags"] and cleared["path"] == "/"


def _sid(client) -> str | None:
    cookie = client.get_cookie(SID)
    return cookie.value if cookie else None


def _signed_in(client) -> bool:
    return "Signed in as" in client.get("/").get_data(as_text=True)


def test_session_fixation_planted_cookie_is_replaced(flow, client):
    planted = "attacker-chosen-session-id-0123456789abcdef"
    client.set_cookie(SID, planted)
    assert not _signed_in(client)
    resp = _login_response(flow)
    assert resp.status_code == 302
    after = set_cookies(resp)[SID]["value"]
    assert after and after != planted
    assert _signed_in(client)
    # the planted value does not give the attacker the victim's session
    attacker = flow.client.application.test_client()
    attacker.set_cookie(SID, planted)
    assert not _signed_in(attacker)


def test_new_session_id_at_every_login(flow, client):
    _login_response(flow)
    first = _sid(client)
    assert first
    resp = flow.until_callback(flow.start(prompt="login"))
    assert resp.status_code == 302
    second = _sid(client)
    assert second and second != first
    old = client.application.test_client()
    old.set_cookie(SID, first)
    assert not _signed_in(old)  # the previous session ended
    assert _signed_in(client)


def test_csrf_token_changes_at_login(flow, client):
    flow.follow(flow.start())  # an anonymous page: the session gets a CSRF secret
    with client.session_transaction() as sess:
        before = sess["csrf_token"]
    _login_response(flow)
    client.get("/")
    with client.session_transaction() as sess:
        after = sess["csrf_token"]
    assert before and after and after != before


def test_logout_form_params_are_escaped(flow, client):
    flow.authorize()
    resp = client.get("/logout?" + urlencode({"state": '"><script>alert(1)</script>'}))
    body = html(resp)
    assert "<script>alert(1)</script>" not in body


def test_pending_requests_cannot_bloat_the_session_cookie(flow, client):
    """Login transactions live in the signed session cookie. A cross-site link
    with a huge ``state`` must not push the cookie past what browsers keep
    (about 4 KB; a bigger one is silently dropped and every later sign-in in
    that browser would fail): older pending requests give way to new ones."""
    import secrets as _secrets

    for _ in range(3):
        resp = flow.start(state=_secrets.token_urlsafe(1800))
        assert resp.status_code == 302
        assert len(client.get_cookie("visma_idp_tx").value) < 4000
    # a normal sign-in still works, and the cookie stays small enough all along
    params = flow.authorize()
    assert "code" in params
    assert len(client.get_cookie("visma_idp_tx").value) < 4000


def test_session_ends_server_side_at_its_lifetime(flow, client, idp):
    flow.authorize()
    assert _signed_in(client)
    idp.clock.advance(idp.settings["SESSION_LIFETIME"] + 1)
    assert not _signed_in(client)  # the browser still sends the cookie; the server says no
    assert client.get_cookie(SID) is not None


def test_session_of_a_disabled_user_stops_working(app, flow, client):
    from visma_idp.storage import db, queries

    flow.authorize()
    with app.app_context():
        queries.user_by_email(flow.email).is_active = False
        db.session.commit()
    assert not _signed_in(client)
    resp = flow.start(prompt="none")
    assert query(resp.headers["Location"])["error"] == "login_required"
