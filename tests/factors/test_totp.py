"""Authenticator app (TOTP): enrolment with a QR code and the key as text,
confirmation with a current code, the secret encrypted at rest, the second
step of the sign-in, replay and drift rules, removal; amr/acr in the ID token."""

from __future__ import annotations

import base64
import html as html_lib
import json
import re
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
from sqlalchemy import select, text

from tests.account.test_details import ISSUER, PASSWORD, audit_events, browser, sign_in
from tests.helpers import csrf, path_of, query, without_csrf
from tests.mailbox import Mailbox

KEY_RE = re.compile(r'id="totp-key">([A-Z2-7 ]+)</code>')
FACTOR_RE = re.compile(r'name="factor" value="(\d+)"')
CODES_RE = re.compile(r"<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>")


# -- helpers the recovery code tests import ------------------------------------------------

def mid_step(idp) -> None:
    """Move the clock to the middle of a 30-second step and stop it there
    (``advance`` still moves it), so a code made by the test is in the same
    step when the server checks it however slowly the test runs."""
    now = idp.clock.time()
    base = now + (15 - now % 30) % 30 - idp.clock.offset
    idp.clock.time = lambda: base + idp.clock.offset


def code_at(secret: str, idp, offset: float = 0) -> str:
    return pyotp.TOTP(secret).at(idp.clock.time() + offset)


def signed_in(app, email: str = "kari@example.no"):
    client = browser(app)
    resp = sign_in(client, email)
    assert resp.status_code == 302 and resp.headers["Location"] == ISSUER + "/", resp.headers.get("Location")
    return client


def reconfirm_password(client, next_path: str = "/account/security") -> None:
    page = client.get("/account/confirm-password?next=" + next_path)
    resp = client.post("/account/confirm-password", data={
        "csrf_token": csrf(page.text), "password": PASSWORD, "next": next_path})
    assert resp.status_code == 302 and resp.headers["Location"] == ISSUER + next_path


def open_enrolment(client):
    """The enrolment page: (html, secret, factor id)."""
    resp = client.get("/account/security/totp")
    assert resp.status_code == 200, (resp.status_code, resp.headers.get("Location"))
    page = resp.text
    secret = KEY_RE.search(page).group(1).replace(" ", "")
    return page, secret, FACTOR_RE.search(page).group(1)


def confirm_enrolment(client, page: str, factor: str, code: str, name: str = "My phone"):
    return client.post("/account/security/totp", data={
        "csrf_token": csrf(page), "factor": factor, "code": code, "name": name,
    })


def enrol(client, idp, name: str = "My phone"):
    """Enrol an authenticator app over HTTP; returns (secret, the response to the confirmation)."""
    mid_step(idp)
    page, secret, factor = open_enrolment(client)
    resp = confirm_enrolment(client, page, factor, code_at(secret, idp), name)
    assert resp.status_code in (200, 302), resp.text
    return secret, resp


def add_totp(app, user_id: int, secret: str | None = None, name: str = "Phone") -> str:
    """A confirmed authenticator app row (for sign-in tests); returns its secret."""
    from visma_idp.storage import Factor, db

    secret = secret or pyotp.random_base32(32)
    with app.app_context():
        idp = app.extensions["visma_idp"]
        now = idp.clock.now()
        db.session.add(Factor(user_id=user_id, kind="totp", name=name, created_at=now, confirmed_at=now,
                              secret_enc=idp.secrets.encrypt(secret.encode())))
        db.session.commit()
    return secret


def to_second_step(app, email: str = "kari@example.no", method: str | None = None):
    """A browser past the password, on the second step; returns (client, page html)."""
    client = browser(app)
    resp = sign_in(client, email)
    assert resp.status_code == 302 and resp.headers["Location"].startswith(ISSUER + "/login/verify"), \
        resp.headers.get("Location")
    resp = client.get("/login/verify" + (f"?method={method}" if method else ""))
    assert resp.status_code == 200
    return client, resp.text


def answer(client, page: str, code: str, method: str = "totp"):
    return client.post("/login/verify", data={"csrf_token": csrf(page), "method": method, "code": code})


def factors(app, user_id: int):
    from visma_idp.storage import Factor, db

    with app.app_context():
        rows = list(db.session.scalars(select(Factor).where(Factor.user_id == user_id).order_by(Factor.id)))
        for row in rows:
            db.session.expunge(row)
        return rows


def signed_in_fully(resp) -> bool:
    return resp.status_code == 302 and resp.headers["Location"] == ISSUER + "/"


# -- enrolment -------------------------------------------------------------------------------

def test_enrolment_shows_a_qr_code_and_the_key_and_counts_only_once_confirmed(app, idp, make_user, mailbox):
    uid = make_user()
    client = signed_in(app)
    overview = client.get("/account/security")
    assert overview.status_code == 200 and "Set up an authenticator app" in overview.text
    assert 'href="http://127.0.0.1:5000/account/security/totp"' in overview.text

    mid_step(idp)
    resp = client.get("/account/security/totp")
    page, secret, factor = open_enrolment(client)
    assert without_csrf(page) == without_csrf(resp.text)  # a reload shows the same unconfirmed key
    # the QR code: inline SVG with a name, nothing the CSP (style-src 'self') would block
    svg = re.search(r"<svg .*?</svg>", page, re.S).group(0)
    assert 'class="qr"' in svg and 'role="img"' in svg and "<title>" in svg
    assert "style" not in svg and "<script" not in svg
    assert "style-src 'self'" in resp.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in resp.headers["Content-Security-Policy"]
    # the key as text, in groups of four, 160 bits; the same key as in the otpauth URI
    assert len(secret) == 32 and len(base64.b32decode(secret)) == 20
    assert re.search(r'id="totp-key">([A-Z2-7]{4} ){7}[A-Z2-7]{4}</code>', page)
    uri = html_lib.unescape(re.search(r'href="(otpauth://[^"]+)"', page).group(1))
    parts = urlsplit(uri)
    assert parts.netloc == "totp" and unquote(parts.path) == "/Visma IdP:kari@example.no"
    assert parse_qs(parts.query) == {"secret": [secret], "issuer": ["Visma IdP"]}
    assert 'value="Authenticator app"' in page  # the default name

    # not confirmed yet: it does not count, the sign-in asks for nothing more
    [row] = factors(app, uid)
    assert row.confirmed_at is None and row.kind == "totp"
    assert signed_in_fully(sign_in(browser(app)))

    # a wrong code is refused, and the factor still does not count
    wrong = str((int(code_at(secret, idp)) + 1) % 1_000_000).zfill(6)
    resp = confirm_enrolment(client, page, factor, wrong)
    assert resp.status_code == 401 and 'role="alert"' in resp.text and "That code is not right" in resp.text
    assert 'aria-invalid="true"' in re.search(r'<input id="totp-code"[^>]*>', resp.text).group(0)
    assert KEY_RE.search(resp.text).group(1).replace(" ", "") == secret  # the same key to try again
    assert factors(app, uid)[0].confirmed_at is None
    resp = confirm_enrolment(client, page, factor, "")
    assert resp.status_code == 400 and "Enter the 6-digit code" in resp.text
    assert audit_events(app, "totp_enrol_failed", uid)

    # the right code turns it on: the recovery codes of a first factor are shown
    resp = confirm_enrolment(client, page, factor, code_at(secret, idp), name="  Kari's   phone ")
    assert resp.status_code == 200 and len(CODES_RE.findall(resp.text)) == 10
    [row] = factors(app, uid)
    assert row.confirmed_at is not None and row.name == "Kari's phone"
    assert row.last_step == int(idp.clock.time() // 30)  # the enrolment code cannot sign in
    [event] = audit_events(app, "factor_added", uid)
    assert event.details["kind"] == "totp"
    message = mailbox.last("kari@example.no")
    assert "an authenticator app" in Mailbox.text(message) and "Kari's phone" in Mailbox.text(message)

    overview = client.get("/account/security")
    assert "Kari&#39;s phone" in overview.text and "Add another authenticator app" in overview.text
    assert "Not used yet" in overview.text
    # posting the same confirmation again does not enrol it twice
    resp = confirm_enrolment(client, page, factor, code_at(secret, idp))
    assert resp.status_code == 302 and resp.headers["Location"] == ISSUER + "/account/security"
    assert len(factors(app, uid)) == 1


def test_the_secret_is_stored_only_encrypted_and_never_in_the_cookie(app, idp, make_user):
    from visma_idp.storage import db

    uid = make_user()
    client = signed_in(app)
    page, secret, _factor = open_enrolment(client)

    def cookie_text() -> str:
        raw = client.get_cookie(app.config["SESSION_COOKIE_NAME"]).value
        data = app.session_interface.get_signing_serializer(app).loads(raw)
        every = " ".join(c.value for c in client._cookies.values())  # and every other cookie, as sent
        return json.dumps(data) + every

    assert secret not in cookie_text() and secret.lower() not in cookie_text()
    enrol(client, idp)  # a second pending key replaces nothing: the same row is confirmed
    assert secret not in cookie_text()
    [row] = factors(app, uid)
    assert row.confirmed_at is not None and row.secret_enc and secret not in row.secret_enc
    raw_bytes = base64.b32decode(secret)
    with app.app_context():
        assert idp.secrets.decrypt(row.secret_enc) == secret.encode()
        for table in db.metadata.sorted_tables:
            for values in db.session.execute(text(f'SELECT * FROM "{table.name}"')):
                for value in values:
                    if isinstance(value, bytes):
                        assert raw_bytes not in value and secret.encode() not in value, table.name
                    elif value is not None:
                        assert secret not in str(value) and secret.lower() not in str(value), table.name


def test_enrolment_needs_a_session_and_a_recent_password(app, idp, make_user):
    make_user()
    anonymous = browser(app)
    resp = anonymous.get("/account/security/totp")
    assert resp.status_code == 302 and resp.headers["Location"] == ISSUER + "/login"
    resp = anonymous.post("/account/security/totp", data={"csrf_token": csrf(anonymous.get("/login").text)})
    assert resp.status_code == 302 and resp.headers["Location"] == ISSUER + "/login"

    client = signed_in(app)
    page, secret, factor = open_enrolment(client)
    idp.clock.advance(6 * 60)
    mid_step(idp)
    confirm_url = ISSUER + "/account/confirm-password?next=/account/security/totp"
    resp = client.get("/account/security/totp")
    assert resp.status_code == 302 and resp.headers["Location"] == confirm_url
    # confirming with a good code still needs the password first, and does not turn it on
    resp = confirm_enrolment(client, page, factor, code_at(secret, idp))
    assert resp.status_code == 302 and resp.headers["Location"] == confirm_url
    assert factors(app, 1)[0].confirmed_at is None

    confirm = client.get(path_of(confirm_url))
    resp = client.post("/account/confirm-password", data={
        "csrf_token": csrf(confirm.text), "password": PASSWORD, "next": "/account/security/totp"})
    assert resp.status_code == 302 and resp.headers["Location"] == ISSUER + "/account/security/totp"
    page2, secret2, factor2 = open_enrolment(client)
    assert (secret2, factor2) == (secret, factor)  # the same pending key, still fresh enough
    resp = confirm_enrolment(client, page2, factor2, code_at(secret, idp))
    assert resp.status_code == 200 and factors(app, 1)[0].confirmed_at is not None


def test_an_unconfirmed_key_expires_and_a_new_one_is_made(app, idp, make_user):
    uid = make_user()
    client = signed_in(app)
    page, secret, factor = open_enrolment(client)
    idp.clock.advance(16 * 60)
    reconfirm_password(client)  # the password is recent again, but the key is too old now
    mid_step(idp)
    resp = confirm_enrolment(client, page, factor, code_at(secret, idp))
    assert resp.status_code == 410 and "made a new key" in resp.text
    new_secret = KEY_RE.search(resp.text).group(1).replace(" ", "")
    assert new_secret != secret
    rows = factors(app, uid)
    assert len(rows) == 1 and rows[0].confirmed_at is None  # the old pending row is gone


def test_enrolment_confirmation_is_throttled(app, idp, make_user):
    uid = make_user()
    client = signed_in(app)
    mid_step(idp)
    page, secret, factor = open_enrolment(client)
    wrong = str((int(code_at(secret, idp)) + 500_000) % 1_000_000).zfill(6)
    statuses = [confirm_enrolment(client, page, factor, wrong).status_code for _ in range(4)]
    assert statuses[:3] == [401, 401, 401]
    resp = confirm_enrolment(client, page, factor, code_at(secret, idp))  # even the right code must wait
    assert resp.status_code == 429 and "Too many wrong codes" in resp.text and resp.headers["Retry-After"]
    assert factors(app, uid)[0].confirmed_at is None
    assert audit_events(app, "totp_enrol_throttled", uid)
    idp.clock.advance(int(resp.headers["Retry-After"]) + 30)
    resp = confirm_enrolment(client, page, factor, code_at(secret, idp))
    assert resp.status_code == 200 and factors(app, uid)[0].confirmed_at is not None


def test_a_pending_key_of_someone_else_cannot_be_confirmed(app, idp, make_user):
    make_user()
    make_user(email="ola@example.no")
    kari = signed_in(app)
    _page, kari_secret, kari_factor = open_enrolment(kari)
    ola = signed_in(app, "ola@example.no")
    page, _secret, _factor = open_enrolment(ola)
    mid_step(idp)
    resp = confirm_enrolment(ola, page, kari_factor, code_at(kari_secret, idp))
    assert resp.status_code == 410
    assert all(f.confirmed_at is None for f in factors(app, 1) + factors(app, 2))


# -- the second step of the sign-in -------------------------------------------------------

def test_sign_in_asks_for_the_code_after_the_password(app, idp, make_user):
    uid = make_user()
    client = signed_in(app)
    secret, _resp = enrol(client, idp)

    idp.clock.advance(30)
    mid_step(idp)
    other, page = to_second_step(app)
    field = re.search(r'<input id="code"[^>]*>', page).group(0)
    assert 'autocomplete="one-time-code"' in field and 'inputmode="numeric"' in field
    assert '<label for="code">Code from your authenticator app</label>' in page
    assert other.get("/account").status_code == 302  # no session before the second step

    resp = answer(other, page, "12345")
    assert resp.status_code == 400 and "Enter the 6-digit code" in resp.text
    wrong = str((int(code_at(secret, idp)) + 1) % 1_000_000).zfill(6)
    resp = answer(other, page, wrong)
    assert resp.status_code == 401 and "That code is not right" in resp.text
    assert 'aria-describedby="code-hint verify-error"' in resp.text
    resp = answer(other, page, " ".join([code_at(secret, idp)[:3], code_at(secret, idp)[3:]]))
    assert signed_in_fully(resp)
    assert other.get("/account").status_code == 200
    [row] = factors(app, uid)
    assert row.last_used_at is not None
    assert "Not used yet" not in other.get("/account/security").text


def test_a_code_is_accepted_once_and_the_next_step_works(app, idp, make_user):
    uid = make_user()
    secret = add_totp(app, uid)
    mid_step(idp)
    first, page = to_second_step(app)
    code = code_at(secret, idp)
    assert signed_in_fully(answer(first, page, code))

    # the same code again, within the same step, from another browser: refused
    second, page = to_second_step(app)
    resp = answer(second, page, code)
    assert resp.status_code == 401 and "used already" in resp.text
    assert second.get("/account").status_code == 302
    # a code of the step before (still inside the window) is refused too: it is older
    resp = answer(second, page, code_at(secret, idp, -30))
    assert resp.status_code == 401
    # the next step's code works
    idp.clock.advance(30)
    assert signed_in_fully(answer(second, page, code_at(secret, idp)))
    assert factors(app, uid)[0].last_step == int(idp.clock.time() // 30)
    assert [e.details["method"] for e in audit_events(app, "second_step_failed", uid)] == ["totp", "totp"]


def test_one_step_of_drift_is_accepted_two_are_not(app, idp, make_user):
    uid = make_user()
    secret = add_totp(app, uid)
    mid_step(idp)
    client, page = to_second_step(app)
    assert answer(client, page, code_at(secret, idp, -60)).status_code == 401
    assert answer(client, page, code_at(secret, idp, +60)).status_code == 401
    assert signed_in_fully(answer(client, page, code_at(secret, idp, -30)))
    client, page = to_second_step(app)
    assert signed_in_fully(answer(client, page, code_at(secret, idp, +30)))


def test_several_apps_each_work(app, idp, make_user):
    uid = make_user()
    client = signed_in(app)
    first, _ = enrol(client, idp, name="Phone")
    idp.clock.advance(30)
    second, resp = enrol(client, idp, name="Tablet")
    assert resp.status_code == 302 and resp.headers["Location"] == ISSUER + "/account/security"  # no new codes
    assert [f.name for f in factors(app, uid)] == ["Phone", "Tablet"]
    idp.clock.advance(30)
    mid_step(idp)
    other, page = to_second_step(app)
    assert signed_in_fully(answer(other, page, code_at(second, idp)))
    other, page = to_second_step(app)
    assert signed_in_fully(answer(other, page, code_at(first, idp)))
    rows = factors(app, uid)
    assert all(f.last_used_at is not None for f in rows)


def test_amr_and_acr_in_the_id_token_after_an_authenticator_sign_in(app, idp, flow):
    secret = add_totp(app, 1)
    mid_step(idp)
    resp = flow.login(flow.start())
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/login/verify"
    tx = query(resp.headers["Location"])["tx"]
    page = flow.client.get(path_of(resp.headers["Location"]))
    assert page.status_code == 200
    resp = flow.client.post(f"/login/verify?tx={tx}", data={
        "csrf_token": csrf(page.text), "method": "totp", "code": code_at(secret, idp)})
    resp = flow.until_callback(resp)
    params = query(resp.headers["Location"])
    assert params["state"] == flow.last["state"]
    tokens = flow.token(params["code"])
    assert tokens.status_code == 200, tokens.text
    payload = tokens.get_json()["id_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    assert claims["acr"] == "urn:visma_idp:acr:mfa"


# -- removal ------------------------------------------------------------------------------

def test_removing_an_app_needs_a_recent_password_and_csrf(app, idp, make_user, mailbox):
    uid = make_user()
    client = signed_in(app)
    enrol(client, idp, name="Phone")
    idp.clock.advance(30)
    enrol(client, idp, name="Tablet")
    phone, tablet = factors(app, uid)
    overview = client.get("/account/security").text
    assert f'href="{ISSUER}/account/security/totp/{phone.id}/remove"' in overview
    assert 'aria-label="Remove: Phone"' in overview

    url = f"/account/security/totp/{phone.id}/remove"
    idp.clock.advance(6 * 60)
    resp = client.get(url)
    assert resp.status_code == 302 and resp.headers["Location"].startswith(ISSUER + "/account/confirm-password")
    page = client.get(path_of(resp.headers["Location"]))
    resp = client.post("/account/confirm-password", data={"csrf_token": csrf(page.text), "password": PASSWORD,
                                                          "next": url})
    assert resp.headers["Location"] == ISSUER + url
    page = client.get(url)
    assert page.status_code == 200 and "Phone" in page.text
    assert client.post(url).status_code == 400  # no CSRF token
    assert client.post(url, data={"csrf_token": csrf(page.text)},
                       headers={"Origin": "https://evil.example"}).status_code == 403
    assert len(factors(app, uid)) == 2

    resp = client.post(url, data={"csrf_token": csrf(page.text)})
    assert resp.status_code == 302 and resp.headers["Location"] == ISSUER + "/account/security"
    assert [f.name for f in factors(app, uid)] == ["Tablet"]
    assert audit_events(app, "factor_removed", uid)[0].details == {"kind": "totp", "factor_id": phone.id}
    message = mailbox.last("kari@example.no")
    assert message["Subject"] == "Two-step verification: a way to sign in was removed"
    assert "Phone" in Mailbox.text(message)
    # gone: a second removal, or someone else's factor, is not found
    assert client.post(url, data={"csrf_token": csrf(page.text)}).status_code == 404
    make_user(email="ola@example.no")
    ola = signed_in(app, "ola@example.no")
    assert ola.get(f"/account/security/totp/{tablet.id}/remove").status_code == 404
    assert ola.post(f"/account/security/totp/{tablet.id}/remove",
                    data={"csrf_token": csrf(ola.get("/account").text)}).status_code == 404
    assert [f.name for f in factors(app, uid)] == ["Tablet"]


def test_the_only_factor_of_a_user_who_must_have_one_is_kept(app, idp, make_user):
    from visma_idp.storage import User, db

    uid = make_user()
    client = signed_in(app)
    enrol(client, idp)
    with app.app_context():
        db.session.get(User, uid).mfa_required = True
        db.session.commit()
    [factor] = factors(app, uid)
    url = f"/account/security/totp/{factor.id}/remove"
    page = client.get(url)
    resp = client.post(url, data={"csrf_token": csrf(page.text)})
    assert resp.status_code == 409 and "Add another one" in resp.text
    assert len(factors(app, uid)) == 1


def test_a_user_who_must_have_a_factor_enrols_one_while_signing_in(app, idp, flow):
    from visma_idp.storage import User, db

    with app.app_context():
        db.session.get(User, 1).mfa_required = True
        db.session.commit()
    resp = flow.login(flow.start())
    assert resp.status_code == 302 and resp.headers["Location"] == ISSUER + "/account/security"
    overview = flow.client.get("/account/security")
    assert "Set one up below to finish signing in" in overview.text
    secret, resp = enrol(flow.client, idp)  # the password was just entered: no confirmation needed
    codes = CODES_RE.findall(resp.text)
    assert len(codes) == 10
    resp = flow.client.post("/account/security/continue", data={"csrf_token": csrf(resp.text)})
    resp = flow.until_callback(resp)
    tokens = flow.token(query(resp.headers["Location"])["code"])
    payload = tokens.get_json()["id_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["amr"] == ["pwd", "otp", "mfa"] and claims["acr"] == "urn:visma_idp:acr:mfa"
    # the enrolment's code cannot be used again for the next sign-in
    other, page = to_second_step(app)
    assert answer(other, page, code_at(secret, idp)).status_code == 401


def test_two_racing_posts_of_one_code_let_only_one_through(app, idp, make_user):
    """The step is claimed with a conditional UPDATE: while the first request's
    transaction is open, the second waits for it, then finds the step taken."""
    import threading
    import time

    from visma_idp.factors import totp
    from visma_idp.storage import Factor, db

    uid = make_user()
    add_totp(app, uid)
    factor_id = factors(app, uid)[0].id
    step = int(idp.clock.time() // 30)
    results: dict[str, bool] = {}
    first_claimed = threading.Event()

    def first():
        with app.app_context():
            results["first"] = totp.claim_step(factor_id, step)
            first_claimed.set()
            time.sleep(0.5)  # the second request runs into the open transaction now
            db.session.commit()

    def second():
        first_claimed.wait(5)
        with app.app_context():
            results["second"] = totp.claim_step(factor_id, step)
            db.session.commit()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert results == {"first": True, "second": False}
    with app.app_context():
        assert db.session.get(Factor, factor_id).last_step == step
