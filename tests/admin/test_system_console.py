"""The system admins' console (admin/console.py), over HTTP: who may see and
use it (every page and post by every kind of actor), the level and the
recent password it needs, the CSRF token, and each page's work: agreements
(create, search, settings, close and reopen, add an admin), apps (register,
change, a new secret shown once and working at the token endpoint at once),
upstream providers (list, remove) and signing keys (list, rotate); every
change audited with who made it."""

from __future__ import annotations

import base64
import re

import pytest

from tests.account.test_details import browser, sign_in
from tests.factors.test_totp import add_totp, answer, code_at, mid_step
from tests.helpers import csrf, path_of
from tests.password.recovery import audit

ISSUER = "http://127.0.0.1:5000"
PASSWORD = "correct horse battery"
ROOT = "root@example.no"  # system admin, with an authenticator app
EVA = "eva@example.no"  # system admin without a second factor: her sessions stay at the password level
BERIT = "berit@example.no"  # admin of Nordlys (an agreement admin)
OLA = "ola@example.no"  # issue_one_time_codes for example.no (an admin with rights for email domains)
PER = "per@example.no"  # no rights at all
KARI = "kari@example.no"  # an account the console makes an agreement admin
NORDLYS = "974760673"
SVC_SECRET = "svc-secret-0123456789abcdef"
UPSTREAM_SECRET = "upstream-secret-never-shown-0123"


@pytest.fixture
def world(app, idp, make_user, make_client):
    """The accounts above (each but Eva and Kari with an authenticator app), the
    agreement Nordlys (Berit its admin), the app ``svc`` (client_credentials,
    with a secret), the public app ``spa`` and the upstream provider ``acme``."""
    from visma_idp.admin import rights
    from visma_idp.agreements import service
    from visma_idp.storage import Upstream, db, queries

    ids, totp = {}, {}
    for email, name in ((ROOT, "Root Admin"), (EVA, "Eva Admin"), (BERIT, "Berit Fjeld"), (OLA, "Ola Admin"),
                        (PER, "Per Hansen"), (KARI, "Kari Nordmann")):
        ids[email] = make_user(email, PASSWORD, name)
        if email not in (EVA, KARI):
            totp[email] = add_totp(app, ids[email])
    make_client("svc", grant_types=["client_credentials"], redirect_uris=[], scope="api:read", secret=SVC_SECRET)
    make_client("spa", public=True, redirect_uris=["https://spa.example.com/cb"])
    with app.test_request_context():
        user = queries.user_by_email
        rights.grant(user(ROOT), rights.SYSTEM_ADMIN, [])
        rights.grant(user(EVA), rights.SYSTEM_ADMIN, [])
        rights.grant(user(OLA), rights.ISSUE_ONE_TIME_CODES, ["example.no"])
        nordlys = service.create("Nordlys Regnskap AS", NORDLYS, domains=["nordlys.no"])
        service.add_member(nordlys, user(BERIT), ["admin"])
        upstream = Upstream(name="acme", display_name="Acme Entra ID", issuer="https://login.acme.example/v2.0",
                            discovery_url="https://login.acme.example/v2.0/.well-known/openid-configuration",
                            client_id="visma-idp-at-acme", auth_method="client_secret_basic",
                            scopes=["openid", "email"], domains=["acme.example"], created_at=idp.clock.now())
        upstream.client_secret = UPSTREAM_SECRET
        db.session.add(upstream)
        from visma_idp.storage import LogoutDelivery

        db.session.add(LogoutDelivery(client_id="svc", uri="https://svc.example.com/bc", sub="s", sid="sid-0",
                                      jti="jti-0", reason="ended", status="failed", attempts=10, created_at=1,
                                      next_attempt_at=1, last_error="HTTP 502"))
        db.session.commit()
        return {"ids": ids, "totp": totp, "A": nordlys.public_id}


def mfa_browser(app, idp, world, email):
    """A browser signed in with password and authenticator app (the mfa level)."""
    client = browser(app)
    resp = sign_in(client, email)
    assert resp.status_code == 302 and path_of(resp.headers["Location"]) == "/login/verify", resp.headers["Location"]
    page = client.get("/login/verify").text
    idp.clock.advance(30)  # a new time step: a code is never taken twice
    mid_step(idp)
    resp = answer(client, page, code_at(world["totp"][email], idp))
    assert resp.status_code == 302, resp.text[:500]
    return client


def password_browser(app, email):
    client = browser(app)
    assert sign_in(client, email).status_code == 302
    return client


@pytest.fixture
def root(app, idp, world):
    return mfa_browser(app, idp, world, ROOT)


def _token(client) -> str:
    """A CSRF token of this browser (from a page anyone may open)."""
    return csrf(client.get("/login").text)


def _snapshot(app) -> dict:
    """Everything a post of the console could change."""
    from visma_idp.storage import Agreement, AuditEvent, Client, LogoutDelivery, Membership, SigningKey, Upstream, db

    with app.app_context():
        return {
            "agreements": sorted((a.public_id, a.name, a.status, a.require_acr, tuple(a.domains))
                                 for a in db.session.scalars(db.select(Agreement))),
            "memberships": sorted((m.agreement_id, m.user_id, repr(m.roles))
                                  for m in db.session.scalars(db.select(Membership))),
            "clients": sorted((c.client_id, c.name, c.secret_digest, tuple(c.redirect_uris), c.backchannel_logout_uri)
                              for c in db.session.scalars(db.select(Client))),
            "upstreams": sorted(db.session.scalars(db.select(Upstream.name))),
            "keys": sorted(db.session.scalars(db.select(SigningKey.kid))),
            "logout": sorted((d.jti, d.status, d.attempts) for d in db.session.scalars(db.select(LogoutDelivery))),
            "audit": db.session.scalar(db.select(db.func.count()).select_from(AuditEvent)
                                       .where(~AuditEvent.event.in_(["first_factor_passed", "login_succeeded",
                                                                     "second_step_passed"]))),
        }


def _user_id(app, email):
    from visma_idp.storage import queries

    with app.app_context():
        return queries.user_by_email(email).id


# -- every page and every post -------------------------------------------------------------------

PAGES = ["/admin", "/admin/agreements", "/admin/agreements/{A}", "/admin/clients", "/admin/clients/svc",
         "/admin/upstreams", "/admin/keys", "/admin/logout"]


def _posts(world) -> dict[str, tuple[str, dict]]:
    a = world["A"]
    return {
        "create agreement": ("/admin/agreements", {"name": "Fjord Transport AS", "org_number": "923609016",
                                                    "domains": "fjord.no", "require": ""}),
        "agreement settings": (f"/admin/agreements/{a}/settings", {"require": "mfa", "domains": "nordlys.no x.no"}),
        "close agreement": (f"/admin/agreements/{a}/status", {"action": "close"}),
        "add agreement admin": (f"/admin/agreements/{a}/admins", {"email": KARI}),
        "register app": ("/admin/clients", {"client_id": "new-app", "name": "New", "kind": "confidential",
                                            "redirect_uris": "https://new.example.com/cb", "scope": "openid",
                                            "backchannel_logout_uri": ""}),
        "change app": ("/admin/clients/svc", {"action": "save", "name": "Service", "redirect_uris": "",
                                              "post_logout_redirect_uris": "",
                                              "backchannel_logout_uri": "https://svc.example.com/logout"}),
        "rotate secret": ("/admin/clients/svc", {"action": "rotate"}),
        "remove upstream": ("/admin/upstreams/acme/remove", {}),
        "rotate keys": ("/admin/keys/rotate", {}),
        "retry logout messages": ("/admin/logout/retry", {}),
    }


ACTORS = ("nobody", "agreement admin", "plain user", "domain-rights admin", "system admin below the level")


def _actor(app, idp, world, actor):
    return {
        "nobody": lambda: browser(app),
        "agreement admin": lambda: mfa_browser(app, idp, world, BERIT),
        "plain user": lambda: mfa_browser(app, idp, world, PER),
        "domain-rights admin": lambda: mfa_browser(app, idp, world, OLA),
        "system admin below the level": lambda: password_browser(app, EVA),
    }[actor]()


@pytest.mark.parametrize("actor", ACTORS)
def test_nobody_else_sees_a_page(app, idp, world, actor):
    client = _actor(app, idp, world, actor)
    for page in PAGES:
        resp = client.get(page.format(A=world["A"]))
        if actor == "nobody":
            assert resp.status_code == 302 and resp.headers["Location"] == ISSUER + "/login", page
        elif actor == "system admin below the level":
            assert resp.status_code == 403, page
            assert "sign in again with your second step" in resp.text
        else:
            assert resp.status_code == 404, (page, resp.status_code)
            assert "There is no such page, or you cannot use it." in resp.text
            main = resp.text.split("<main", 1)[1].split("</main>", 1)[0]
            assert "Nordlys" not in main and "svc" not in main


@pytest.mark.parametrize("actor", ACTORS)
def test_nobody_else_changes_anything(app, idp, world, actor):
    """Every post of the console (the table: these actors by every post), and nothing changes."""
    client = _actor(app, idp, world, actor)
    before = _snapshot(app)
    for post, (path, form) in _posts(world).items():
        resp = client.post(path, data={**form, "csrf_token": _token(client)})
        if actor == "nobody":
            assert resp.status_code == 303 and resp.headers["Location"] == ISSUER + "/login", post
        elif actor == "system admin below the level":
            assert resp.status_code == 403, post
        else:
            assert resp.status_code == 404, (post, resp.status_code, resp.text[:300])
        assert _snapshot(app) == before, post


@pytest.mark.parametrize("post", list(_posts({"A": "A"})))
def test_the_system_admin_may_and_is_named_in_the_audit(app, idp, world, root, post):
    before = _snapshot(app)
    path, form = _posts(world)[post]
    resp = root.post(path, data={**form, "csrf_token": _token(root)})
    assert resp.status_code in (200, 303), (resp.status_code, resp.text[:1000])
    after = _snapshot(app)
    assert after != before
    with app.app_context():
        from visma_idp.storage import AuditEvent, db

        rows = list(db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id)))
    new = [r for r in rows if r.event not in ("first_factor_passed", "login_succeeded", "second_step_passed")]
    new = new[-(after["audit"] - before["audit"]):]
    assert new and all(r.details["by"] == world["ids"][ROOT] for r in new), [(r.event, r.details) for r in new]


def test_every_page_of_the_system_admin(app, world, root):
    for page in PAGES:
        resp = root.get(page.format(A=world["A"]))
        assert resp.status_code == 200, page
        html = resp.text
        assert "<script" not in html and "onclick" not in html.lower() and "style=" not in html, page
        ids = re.findall(r'<(?:input|textarea|select) id="([^"]+)"', html)
        assert all(f'<label for="{fid}">' in html for fid in ids), page
        assert html.count('name="csrf_token"') == html.count('<form method="post"'), page  # every post form
        assert 'class="account-toc console-nav"' in html and 'aria-current="page"' in html or page == "/admin", page
        assert UPSTREAM_SECRET not in html and SVC_SECRET not in html


def test_the_home_page_and_the_link_on_my_details(app, idp, world, root):
    html = root.get("/admin").text
    for path in ("/admin/agreements", "/admin/clients", "/admin/upstreams", "/admin/keys"):
        assert f'href="{ISSUER}{path}"' in html
    details = root.get("/account").text
    assert "Open the system admins' console" in details and f'href="{ISSUER}/admin"' in details
    for email in (BERIT, OLA):
        other = mfa_browser(app, idp, world, email).get("/account").text
        assert 'id="system-admin"' not in other and f'href="{ISSUER}/admin"' not in other


def test_not_signed_in_goes_to_sign_in_and_comes_back(app, idp, world):
    client = browser(app)
    resp = client.get("/admin/clients/svc")
    assert resp.status_code == 302 and resp.headers["Location"] == ISSUER + "/login"
    assert sign_in(client, ROOT).status_code == 302
    page = client.get("/login/verify").text
    idp.clock.advance(30)
    mid_step(idp)
    resp = answer(client, page, code_at(world["totp"][ROOT], idp))
    assert resp.status_code == 302 and path_of(resp.headers["Location"]) == "/admin/clients/svc"


def test_a_revoked_system_admin_gets_the_404_page(app, idp, world, root):
    from visma_idp.admin import rights
    from visma_idp.storage import User, db

    with app.app_context():
        user = db.session.get(User, world["ids"][ROOT])
        assert rights.is_system_admin(user)
        rights.revoke(user, rights.SYSTEM_ADMIN)
        db.session.commit()
        assert not rights.is_system_admin(user)
    assert root.get("/admin").status_code == 404


def test_every_post_needs_the_csrf_token(app, world, root):
    before = _snapshot(app)
    for post, (path, form) in _posts(world).items():
        resp = root.post(path, data=form)
        assert resp.status_code == 400 and "This page has expired" in resp.text, post
        assert root.post(path, data={**form, "csrf_token": "forged"}).status_code == 400, post
    assert _snapshot(app) == before


def test_a_post_from_another_origin_is_refused(app, world, root):
    before = _snapshot(app)
    path, form = _posts(world)["rotate keys"]
    resp = root.post(path, data={**form, "csrf_token": _token(root)}, headers={"Origin": "https://evil.example"})
    assert resp.status_code == 403
    assert _snapshot(app) == before


@pytest.mark.parametrize("post", ["close agreement", "rotate secret", "rotate keys"])
def test_every_post_needs_a_recent_password(app, idp, world, root, post):
    idp.clock.advance(idp.settings["RECENT_PASSWORD_SECONDS"] + 1)
    before = _snapshot(app)
    path, form = _posts(world)[post]
    page = {"close agreement": f"/admin/agreements/{world['A']}", "rotate secret": "/admin/clients/svc",
            "rotate keys": "/admin/keys"}[post]
    resp = root.post(path, data={**form, "csrf_token": _token(root)})
    assert resp.status_code == 303
    assert path_of(resp.headers["Location"]) == "/account/confirm-password?next=" + page
    assert _snapshot(app) == before
    confirm = root.get(path_of(resp.headers["Location"])).text
    resp = root.post("/account/confirm-password", data={"csrf_token": csrf(confirm), "password": PASSWORD,
                                                        "next": page})
    assert resp.status_code == 302 and resp.headers["Location"] == ISSUER + page
    assert root.post(path, data={**form, "csrf_token": _token(root)}).status_code in (200, 303)
    assert _snapshot(app) != before


def test_the_level_follows_the_setting(app, idp, world):
    """With ADMIN_CONSOLE_ACR at the password level, Eva (no second factor) may use the console."""
    idp.settings["ADMIN_CONSOLE_ACR"] = "urn:visma_idp:acr:pwd"
    assert password_browser(app, EVA).get("/admin").status_code == 200
    idp.settings["ADMIN_CONSOLE_ACR"] = "urn:visma_idp:acr:phr"
    resp = mfa_browser(app, idp, world, ROOT).get("/admin")
    assert resp.status_code == 403 and "security key or passkey" in resp.text


# -- agreements ------------------------------------------------------------------------------------


def _post_page(client, page, path, data):
    """Post a form of ``page`` with its own CSRF token."""
    return client.post(path, data={**data, "csrf_token": csrf(client.get(page).text)})


def test_create_an_agreement(app, world, root):
    resp = _post_page(root, "/admin/agreements", "/admin/agreements",
                      {"name": "  Fjord   Transport AS ", "org_number": "923 609 016",
                       "domains": "Fjord.no, @fjord.com", "require": "phr"})
    assert resp.status_code == 303
    page = path_of(resp.headers["Location"])
    html = root.get(page).text
    assert "Fjord Transport AS is created." in html and "923609016" in html and "fjord.com, fjord.no" in html
    assert "Fjord Transport AS is created." not in root.get(page).text  # once
    from visma_idp.agreements import service

    with app.app_context():
        row = service.find("923609016")
        assert row.name == "Fjord Transport AS" and row.require_acr == "urn:visma_idp:acr:phr"
        assert row.domains == ["fjord.com", "fjord.no"] and page == f"/admin/agreements/{row.public_id}"
    [created] = [r for r in audit(app, "agreement_created") if r["details"]["org_number"] == "923609016"]
    assert created["details"]["by"] == world["ids"][ROOT] and created["agreement"] == row.public_id


@pytest.mark.parametrize("form, field, message", [
    ({"org_number": "974760674"}, "org_number", "This is not an organisation number"),  # check digit
    ({"org_number": "12345"}, "org_number", "This is not an organisation number"),
    ({"org_number": NORDLYS}, "org_number",
     "An agreement with the organisation number 974760673 exists already: Nordlys Regnskap AS."),
    ({"name": ""}, "name", "Enter the company&#39;s name"),
    ({"domains": "*.fjord.no"}, "domains", "*.fjord.no is not an email domain."),
    ({"require": "root"}, "require", "Choose one of the levels."),
])
def test_refused_agreements_come_back_with_the_message(app, world, root, form, field, message):
    before = _snapshot(app)
    data = {"name": "Fjord Transport AS", "org_number": "923609016", "domains": "fjord.no", "require": "", **form}
    resp = _post_page(root, "/admin/agreements", "/admin/agreements", data)
    assert resp.status_code == 400 and message in resp.text
    assert f'id="create-{field}"' in resp.text
    tag = re.search(rf'<(?:input|select) id="create-{field}"[^>]*>', resp.text).group(0)
    assert 'aria-invalid="true"' in tag and "create-error" in tag
    assert 'role="alert"' in resp.text
    assert _snapshot(app) == before


def test_search_the_agreements(app, world, root):
    _post_page(root, "/admin/agreements", "/admin/agreements",
               {"name": "Fjord Transport AS", "org_number": "923609016", "domains": "fjord.no", "require": ""})
    everything = root.get("/admin/agreements").text
    assert "Nordlys Regnskap AS" in everything and "Fjord Transport AS" in everything
    for q in ("fjord", "923 609", "FJORD.NO"):
        html = root.get("/admin/agreements", query_string={"q": q}).text
        assert "Fjord Transport AS" in html and "Nordlys Regnskap AS" not in html, q
    html = root.get("/admin/agreements", query_string={"q": "nothing like it"}).text
    assert "No agreement matches your search." in html
    assert "1 agreement matches nordlys" in root.get("/admin/agreements?q=nordlys").text


def test_agreement_settings_close_and_reopen(app, world, root, make_user):
    page = f"/admin/agreements/{world['A']}"
    resp = _post_page(root, page, page + "/settings", {"require": "mfa", "domains": "nordlys.no nordlys.com"})
    assert resp.status_code == 303 and resp.headers["Location"] == ISSUER + page + "#settings"
    assert "The settings of Nordlys Regnskap AS are saved." in root.get(page).text
    _post_page(root, page, page + "/settings", {"require": "mfa", "domains": "nordlys.com, nordlys.no"})
    assert "Nothing to save" in root.get(page).text
    [updated] = audit(app, "agreement_updated")
    assert updated["details"]["changed"] == ["require_acr", "domains"]
    assert updated["details"]["by"] == world["ids"][ROOT] and updated["agreement"] == world["A"]
    resp = _post_page(root, page, page + "/settings", {"require": "mfa", "domains": "not a domain!"})
    assert resp.status_code == 400 and "is not an email domain" in resp.text

    assert _post_page(root, page, page + "/status", {"action": "close"}).status_code == 303
    html = root.get(page).text
    assert "Nordlys Regnskap AS is closed" in html and "Reopen" in html
    from visma_idp.storage import queries

    with app.app_context():  # the members can no longer work in it
        assert queries.memberships_of(world["ids"][BERIT]) == []
    assert _post_page(root, page, page + "/status", {"action": "reopen"}).status_code == 303
    assert "Nordlys Regnskap AS is open again." in root.get(page).text
    assert [r["event"] for r in audit(app, "agreement_closed") + audit(app, "agreement_reopened")] == [
        "agreement_closed", "agreement_reopened"]
    assert _post_page(root, page, page + "/status", {"action": "explode"}).status_code == 400


def test_add_an_agreement_admin(app, idp, world, root):
    page = f"/admin/agreements/{world['A']}"
    html = root.get(page).text
    assert BERIT in html and f'href="{ISSUER}/agreements/{world["A"]}/members"' in html
    resp = _post_page(root, page, page + "/admins", {"email": " Kari@Example.NO "})
    assert resp.status_code == 303 and resp.headers["Location"] == ISSUER + page + "#admins"
    assert "kari@example.no is now an admin of Nordlys Regnskap AS." in root.get(page).text
    from visma_idp.agreements import invitations, service
    from visma_idp.storage import queries

    with app.app_context():
        kari = queries.user_by_email(KARI)
        assert invitations.may_invite(kari, service.find(world["A"]))
    [added] = [r for r in audit(app, "agreement_member_added") if r["subject"] == KARI]
    assert added["details"]["by"] == world["ids"][ROOT]
    _post_page(root, page, page + "/admins", {"email": KARI})
    assert "kari@example.no is an admin of Nordlys Regnskap AS already." in root.get(page).text
    with app.app_context():
        assert [r["role"] for r in service.membership(kari.id, service.find(world["A"]).id).roles] == ["admin"]


@pytest.mark.parametrize("email, message", [
    ("nobody@example.no", "There is no account with the address nobody@example.no."),
    ("not an address", "email address"),
])
def test_an_admin_must_have_an_account(app, world, root, email, message):
    before = _snapshot(app)
    page = f"/admin/agreements/{world['A']}"
    resp = _post_page(root, page, page + "/admins", {"email": email})
    assert resp.status_code == 400 and message in resp.text
    tag = re.search(r'<input id="admins-email"[^>]*>', resp.text).group(0)
    assert 'aria-invalid="true"' in tag and 'value="' + email + '"' in tag
    assert _snapshot(app) == before


def test_an_unknown_agreement_is_the_404_page(app, world, root):
    for path in ("/admin/agreements/00000000-0000-0000-0000-000000000000", f"/admin/agreements/{NORDLYS}"):
        assert root.get(path).status_code == 404
        assert _post_page(root, "/admin/keys", path + "/status", {"action": "close"}).status_code == 404


# -- apps -----------------------------------------------------------------------------------------


def _basic(client_id, secret):
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def _client_credentials(client, secret):
    return client.post("/token", data={"grant_type": "client_credentials"}, headers=_basic("svc", secret))


def test_register_an_app_shows_its_secret_once(app, idp, world, root):
    resp = _post_page(root, "/admin/clients", "/admin/clients", {
        "client_id": "expense-web", "name": "Expenses", "kind": "confidential",
        "redirect_uris": "https://expense.example.com/cb\n\nhttp://127.0.0.1:8080/cb\n", "scope": "openid email",
        "backchannel_logout_uri": "https://expense.example.com/logout"})
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    secret = re.search(r'<p class="admin-code"><code>([^<]+)</code>', resp.text).group(1)
    assert "expense-web is registered." in resp.text
    assert secret not in "".join(resp.headers.getlist("Set-Cookie")) and secret not in resp.headers.get("Location", "")
    from visma_idp.oidc.registration import find_client

    with app.app_context():
        row = find_client("expense-web")
        assert row.secret_digest == idp.secrets.keyed_digest(secret) and secret not in row.secret_digest
        assert row.redirect_uris == ["https://expense.example.com/cb", "http://127.0.0.1:8080/cb"]
        assert row.backchannel_logout_uri == "https://expense.example.com/logout" and row.name == "Expenses"
    for page in ("/admin/clients", "/admin/clients/expense-web"):
        assert secret not in root.get(page).text
    [created] = [r for r in audit(app, "client_created") if r["client_id"] == "expense-web"]
    assert created["details"]["by"] == world["ids"][ROOT]


def test_register_a_public_app_has_no_secret(app, world, root):
    resp = _post_page(root, "/admin/clients", "/admin/clients", {
        "client_id": "mobile", "kind": "public", "redirect_uris": "https://m.example.com/cb", "scope": "openid"})
    assert resp.status_code == 200 and "admin-code" not in resp.text
    html = root.get("/admin/clients/mobile").text
    assert "This app has no secret" in html and 'value="rotate"' not in html


@pytest.mark.parametrize("form, field, message", [
    ({"client_id": "svc"}, "client_id", "An app with the id svc exists already."),
    ({"client_id": ""}, "client_id", "Enter the app&#39;s id"),
    ({"client_id": "has space"}, "client_id", "without spaces"),
    ({"redirect_uris": "http://rp.example.com/cb"}, "redirect_uris", "Not a redirect URI: http://rp.example.com/cb."),
    ({"redirect_uris": "https://rp.example.com/cb#x"}, "redirect_uris", "Not a redirect URI"),
    ({"redirect_uris": ""}, "redirect_uris", "Enter at least one redirect URI"),
    ({"kind": "root"}, "kind", "Choose whether the app keeps a secret or is public."),
    ({"scope": ""}, "scope", "Enter the scopes"),
    ({"backchannel_logout_uri": "http://rp.example.com/logout"}, "backchannel_logout_uri",
     "Not a back-channel logout URI"),
    ({"backchannel_logout_uri": "https://rp.example.com/logout#f"}, "backchannel_logout_uri",
     "Not a back-channel logout URI"),
])
def test_refused_apps_come_back_with_the_message(app, world, root, form, field, message):
    before = _snapshot(app)
    data = {"client_id": "new-app", "name": "", "kind": "confidential", "redirect_uris": "https://new.example.com/cb",
            "scope": "openid", "backchannel_logout_uri": "", **form}
    resp = _post_page(root, "/admin/clients", "/admin/clients", data)
    assert resp.status_code == 400 and message in resp.text, resp.text[-3000:]
    assert 'role="alert"' in resp.text and "admin-code" not in resp.text
    if field != "kind":
        tag = re.search(rf'<(?:input|textarea) id="create-{field}"[^>]*>', resp.text).group(0)
        assert 'aria-invalid="true"' in tag
    assert _snapshot(app) == before


def test_change_an_app(app, world, root, make_client):
    make_client("expense")
    page = "/admin/clients/expense"
    resp = _post_page(root, page, page, {
        "action": "save", "name": "Expenses", "redirect_uris": "https://rp.example.com/cb\nhttps://rp.example.com/cb2",
        "post_logout_redirect_uris": "https://rp.example.com/bye", "backchannel_logout_uri": "https://rp.example.com/bc",
        "backchannel_logout_session_required": "on"})
    assert resp.status_code == 303 and resp.headers["Location"] == ISSUER + page + "#edit"
    html = root.get(page).text
    assert "The changes to expense are saved." in html and "https://rp.example.com/cb2" in html
    from visma_idp.oidc.registration import client_as_dict, find_client

    with app.app_context():
        shown = client_as_dict(find_client("expense"))
        assert shown["client_name"] == "Expenses" and shown["post_logout_redirect_uris"] == ["https://rp.example.com/bye"]
        assert shown["backchannel_logout_uri"] == "https://rp.example.com/bc"
        assert shown["backchannel_logout_session_required"] is True
    [updated] = audit(app, "client_updated")
    assert updated["details"]["changed"] == ["backchannel_logout_session_required", "backchannel_logout_uri", "name",
                                             "post_logout_redirect_uris", "redirect_uris"]
    assert updated["details"]["by"] == world["ids"][ROOT] and updated["client_id"] == "expense"
    # the same again: nothing to save, no audit row
    _post_page(root, page, page, {
        "action": "save", "name": "Expenses", "redirect_uris": "https://rp.example.com/cb\nhttps://rp.example.com/cb2",
        "post_logout_redirect_uris": "https://rp.example.com/bye", "backchannel_logout_uri": "https://rp.example.com/bc",
        "backchannel_logout_session_required": "on"})
    assert "Nothing to save: expense is as it was." in root.get(page).text
    assert len(audit(app, "client_updated")) == 1
    # refused: the page again, what was typed kept, nothing changed
    before = _snapshot(app)
    resp = _post_page(root, page, page, {"action": "save", "name": "X", "redirect_uris": "javascript:alert(1)",
                                         "post_logout_redirect_uris": "", "backchannel_logout_uri": ""})
    assert resp.status_code == 400 and "Not a redirect URI: javascript:alert(1)." in resp.text
    assert ">javascript:alert(1)</textarea>" in resp.text
    resp = _post_page(root, page, page, {"action": "save", "name": "X", "redirect_uris": "",
                                         "post_logout_redirect_uris": "", "backchannel_logout_uri": ""})
    assert resp.status_code == 400 and "Enter at least one redirect URI" in resp.text
    assert _snapshot(app) == before


def test_rotate_the_secret(app, idp, world, root):
    client = app.test_client()
    assert _client_credentials(client, SVC_SECRET).status_code == 200  # the old one works, and is cached
    page = "/admin/clients/svc"
    resp = _post_page(root, page, page, {"action": "rotate"})
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    secret = re.search(r'<p class="admin-code"><code>([^<]+)</code>', resp.text).group(1)
    assert "The new secret of svc" in resp.text
    assert secret not in "".join(resp.headers.getlist("Set-Cookie"))
    assert _client_credentials(client, SVC_SECRET).status_code == 401  # at once in this process
    assert _client_credentials(client, secret).status_code == 200
    with app.app_context():
        from visma_idp.oidc.registration import find_client

        assert find_client("svc").secret_digest == idp.secrets.keyed_digest(secret)
    assert secret not in root.get(page).text  # shown once
    [rotated] = audit(app, "client_secret_rotated")
    assert rotated["client_id"] == "svc" and rotated["details"]["by"] == world["ids"][ROOT]
    assert secret not in repr(rotated)


def test_a_public_app_has_no_secret_to_rotate(app, world, root):
    before = _snapshot(app)
    resp = _post_page(root, "/admin/clients/spa", "/admin/clients/spa", {"action": "rotate"})
    assert resp.status_code == 400 and "This app has no secret to replace." in resp.text
    assert _snapshot(app) == before


def test_an_unknown_app_is_the_404_page(app, world, root):
    assert root.get("/admin/clients/nosuchapp").status_code == 404
    assert _post_page(root, "/admin/clients", "/admin/clients/nosuchapp", {"action": "rotate"}).status_code == 404


# -- upstream providers and keys ---------------------------------------------------------------------


def test_upstreams_are_listed_without_secrets_and_removed(app, world, root):
    html = root.get("/admin/upstreams").text
    assert "Acme Entra ID" in html and "https://login.acme.example/v2.0" in html and "acme.example" in html
    assert UPSTREAM_SECRET not in html and "visma-idp upstreams add" in html
    resp = _post_page(root, "/admin/upstreams", "/admin/upstreams/acme/remove", {})
    assert resp.status_code == 303
    html = root.get("/admin/upstreams").text
    assert "The upstream provider acme is removed." in html and "No upstream providers." in html
    [removed] = audit(app, "upstream_removed")
    assert removed["details"]["upstream"] == "acme" and removed["details"]["by"] == world["ids"][ROOT]
    assert _post_page(root, "/admin/keys", "/admin/upstreams/acme/remove", {}).status_code == 404


def test_keys_are_listed_and_rotated(app, idp, world, root):
    with app.app_context():
        old = {k.kid for k in idp.keys.list_all() if k.retired_at is None}
    html = root.get("/admin/keys").text
    assert all(kid in html for kid in old) and "RS256" in html and "Active" in html
    resp = _post_page(root, "/admin/keys", "/admin/keys/rotate", {})
    assert resp.status_code == 303
    html = root.get("/admin/keys").text
    assert "New signing keys are active." in html and "Retired, still published" in html
    with app.app_context():
        new = {k.kid for k in idp.keys.list_all() if k.retired_at is None}
    assert new and not new & old and all(kid in html for kid in new)
    [rotated] = audit(app, "keys_rotated")
    assert set(rotated["details"]["retired"]) == old and rotated["details"]["by"] == world["ids"][ROOT]


def test_failed_logout_messages_are_shown_and_sent_again(app, world, root):
    from visma_idp.storage import LogoutDelivery, db

    with app.app_context():
        for n, status in enumerate(("sent", "failed")):  # and the world's failed one
            db.session.add(LogoutDelivery(client_id="svc", uri="https://svc.example.com/bc", sub="s", sid=f"x{n}",
                                          jti=f"j{n}", reason="ended", status=status, attempts=10, created_at=1,
                                          next_attempt_at=1, last_error="HTTP 502" if status == "failed" else None))
        db.session.commit()
    html = root.get("/admin/logout").text
    assert "HTTP 502" in html and "2 messages failed." in html and "j0" not in html
    resp = _post_page(root, "/admin/logout", "/admin/logout/retry", {})
    assert resp.status_code == 303
    html = root.get("/admin/logout").text
    assert "2 failed logout messages will be sent again." in html and "messages failed." not in html
    with app.app_context():
        states = sorted(db.session.scalars(db.select(LogoutDelivery.status)))
    assert states == ["pending", "pending", "sent"]
    [retried] = audit(app, "logout_delivery_retry")
    assert retried["details"]["by"] == world["ids"][ROOT] and retried["details"]["via"] == "admin_console"


def test_the_confirmation_comes_only_from_the_session(world, root):
    html = root.get("/admin/keys?done=keys_rotated").text
    assert 'class="done"' not in html


def test_the_system_admin_right(app, make_user):
    """``system_admin`` is held with no domains, only by an active account; the other rights still need domains."""
    from visma_idp.admin import rights
    from visma_idp.errors import InvalidInput
    from visma_idp.storage import AdminRight, User, db

    uid = make_user(ROOT, PASSWORD, "Root")
    with app.app_context():
        user = db.session.get(User, uid)
        assert not rights.is_system_admin(user) and not rights.is_system_admin(None)
        with pytest.raises(InvalidInput, match="without domains"):
            rights.grant(user, rights.SYSTEM_ADMIN, ["example.no"])
        with pytest.raises(InvalidInput, match="at least one domain"):
            rights.grant(user, rights.INVITE_USERS, [])
        row = rights.grant(user, rights.SYSTEM_ADMIN, [])
        db.session.commit()
        assert row.domains == [] and rights.is_system_admin(user)
        assert not rights.holds(user, rights.SYSTEM_ADMIN)  # no domains: never a domain right
        assert [u.email for u in rights.system_admins()] == [ROOT]
        user.is_active = False  # disabled: holds nothing
        db.session.commit()
        assert not rights.is_system_admin(user) and [u.email for u in rights.system_admins()] == [ROOT]
        with pytest.raises(InvalidInput, match="without domains"):
            rights.revoke(user, rights.SYSTEM_ADMIN, ["example.no"])
        assert rights.revoke(user, rights.SYSTEM_ADMIN) == []
        db.session.commit()
        assert db.session.scalar(db.select(AdminRight).where(AdminRight.user_id == uid)) is None
    granted, revoked = audit(app, "admin_right_granted"), audit(app, "admin_right_revoked")
    assert [r["details"]["right"] for r in granted + revoked] == ["system_admin", "system_admin"]


def test_only_the_admins_own_rows_are_stamped(app):
    """The audit signal is the process's: a row another thread records meanwhile is not the admin's."""
    import threading

    from visma_idp import audit as audit_module
    from visma_idp.admin import console
    from visma_idp.storage import User

    admin = console.Admin(None, User(id=42))  # type: ignore[arg-type]
    other: dict = {}

    def elsewhere():
        with app.test_request_context("/"):
            other["row"] = audit_module.record("login_succeeded", details={"amr": ["pwd"]})

    with app.test_request_context("/"), console._stamped(admin):
        mine = audit_module.record("client_updated", client_id="svc", details={"changed": ["name"]})
        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join()
        kept = audit_module.record("agreement_roles_changed", details={"by": 7})
    assert mine.details == {"by": 42, "via": "admin_console", "changed": ["name"]}
    assert kept.details == {"by": 7, "via": "admin_console"}  # a service's own by stays
    assert other["row"].details == {"amr": ["pwd"]}


def test_a_system_admin_at_the_level_manages_an_agreements_members_page(app, idp, world, root):
    """Not its admin, yet the members and audit pages open for them; a password-only session of a system
    admin (Eva) gets the same 404 as anyone else, so the console's level cannot be stepped around."""
    for page in ("members", "audit"):
        assert root.get(f"/agreements/{world['A']}/{page}").status_code == 200
    assert BERIT in root.get(f"/agreements/{world['A']}/members").text
    eva = password_browser(app, EVA)
    assert eva.get(f"/agreements/{world['A']}/members").status_code == 404
    per = mfa_browser(app, idp, world, PER)
    assert per.get(f"/agreements/{world['A']}/members").status_code == 404
