"""Recovery codes: ten shown once after the first factor, stored as digests,
downloadable; single use at sign-in with an email that tells how many are
left; regeneration (recent password) voids the old ones."""

from __future__ import annotations

import html as html_lib
import re
from urllib.parse import unquote

from sqlalchemy import select, text

from tests.account.test_details import ISSUER, PASSWORD, audit_events, browser
from tests.factors.test_totp import (
    CODES_RE,
    add_totp,
    answer,
    enrol,
    signed_in,
    to_second_step,
)
from tests.helpers import csrf, path_of, query
from tests.mailbox import Mailbox


def code_rows(app, user_id: int):
    from visma_idp.storage import RecoveryCode, db

    with app.app_context():
        rows = list(db.session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == user_id)
                                       .order_by(RecoveryCode.id)))
        for row in rows:
            db.session.expunge(row)
        return rows


def first_codes(app, idp, make_user):
    """A user with an authenticator app enrolled over HTTP: (user id, the codes shown then, the browser)."""
    uid = make_user()
    client = signed_in(app)
    _secret, resp = enrol(client, idp)
    return uid, CODES_RE.findall(resp.text), client


def test_ten_codes_are_shown_once_after_the_first_factor_and_stored_as_digests(app, idp, make_user):
    from visma_idp.storage import db

    uid = make_user()
    client = signed_in(app)
    overview = client.get("/account/security").text
    assert "You get recovery codes when you set up your first way" in overview
    assert not code_rows(app, uid)

    _secret, resp = enrol(client, idp)
    page = resp.text
    codes = CODES_RE.findall(page)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(re.fullmatch(r"[2-9a-hjkmnp-z]{5}-[2-9a-hjkmnp-z]{5}", c) for c in codes)
    assert "This is the only time we show them." in page
    assert resp.headers["Cache-Control"] == "no-store"
    # the download: a text file with every code, made in the page (nothing stored to fetch later)
    link = re.search(r'<a class="button" download="recovery-codes.txt" href="data:text/plain;charset=utf-8,([^"]+)"',
                     page)
    assert link
    body = unquote(html_lib.unescape(link.group(1)))
    assert "kari@example.no" in body and all(c in body.splitlines() for c in codes)
    # a Continue button that posts (with CSRF) to the end of the enrolment
    assert f'action="{ISSUER}/account/security/continue"' in page
    resp = client.post("/account/security/continue", data={"csrf_token": csrf(page)})
    assert resp.status_code == 302 and resp.headers["Location"] == ISSUER + "/account/security"

    # stored: ten keyed digests, no code in any column of any table
    rows = code_rows(app, uid)
    assert len(rows) == 10 and all(r.used_at is None and len(r.digest) == 64 for r in rows)
    with app.app_context():
        for table in db.metadata.sorted_tables:
            for values in db.session.execute(text(f'SELECT * FROM "{table.name}"')):
                for value in values:
                    if value is not None:
                        for c in codes:
                            assert c not in str(value) and c.replace("-", "") not in str(value), table.name
    assert audit_events(app, "recovery_codes_created", uid)[0].details == {"count": 10, "first": True}

    # they cannot be seen again: the overview and the page show how many are left
    overview = client.get("/account/security").text
    assert "You have 10 unused recovery codes." in overview
    assert not any(c in overview for c in codes)
    page = client.get("/account/security/recovery")
    assert page.status_code == 200 and "You have 10 unused recovery codes." in page.text
    assert "cannot show your codes again" in page.text and not any(c in page.text for c in codes)

    # a second factor brings no new codes
    idp.clock.advance(30)
    _secret, resp = enrol(client, idp, name="Tablet")
    assert resp.status_code == 302
    assert [r.id for r in code_rows(app, uid)] == [r.id for r in rows]


def told(resp, message: str, onward: str = ISSUER + "/") -> bool:
    """Signed in with a recovery code: a page tells how many are left before
    the user goes on (to ``onward``)."""
    return (resp.status_code == 200 and f'<p role="status">{message}</p>' in resp.text
            and f'id="onward" href="{html_lib.escape(onward)}"' in resp.text
            and f'href="{ISSUER}/account/security/recovery"' in resp.text)


def test_a_recovery_code_signs_in_once_and_emails_the_user(app, idp, make_user, mailbox):
    uid, codes, _client = first_codes(app, idp, make_user)
    mailbox.capture.clear()

    client, page = to_second_step(app)
    assert "Recovery code" in page  # offered under "Try another way"
    assert f'href="{ISSUER}/login/verify?method=recovery"' in page
    page = client.get("/login/verify?method=recovery").text
    assert '<label for="code">Recovery code</label>' in page
    assert 'name="method" value="recovery"' in page
    # case, spaces and dashes do not matter
    typed = codes[3].upper().replace("-", " ")
    resp = answer(client, page, typed, method="recovery")
    assert told(resp, "You used a recovery code. You have 9 left.")
    assert client.get("/account").status_code == 200
    used = [r for r in code_rows(app, uid) if r.used_at is not None]
    assert len(used) == 1

    message = mailbox.last("kari@example.no")
    assert message["Subject"] == "A recovery code was used to sign in to your account"
    body = Mailbox.text(message)
    assert "You have 9 unused recovery codes left." in body and "127.0.0.1" in body
    assert "You have 9 unused recovery codes left." in Mailbox.html(message)
    assert any(link.startswith(ISSUER + "/") for link in Mailbox.links(message))
    [event] = audit_events(app, "recovery_code_used", uid)
    assert event.details == {"remaining": 9}
    assert "You have 9 unused recovery codes." in client.get("/account/security").text

    # the same code again: refused
    other, _page = to_second_step(app)
    page = other.get("/login/verify?method=recovery").text
    resp = answer(other, page, codes[3], method="recovery")
    assert resp.status_code == 401 and "not one of your unused recovery codes" in resp.text
    assert other.get("/account").status_code == 302
    assert answer(other, page, "", method="recovery").status_code == 400
    assert answer(other, page, "not-a-code!", method="recovery").status_code == 401
    assert len([r for r in code_rows(app, uid) if r.used_at is not None]) == 1
    # another unused one works
    assert told(answer(other, page, codes[0], method="recovery"), "You used a recovery code. You have 8 left.")
    assert "You have 8 unused recovery codes left." in Mailbox.text(mailbox.last("kari@example.no"))


def test_the_notice_comes_before_the_application_and_no_code_waits_meanwhile(app, idp, flow, mailbox):
    """Signing in to an application with a recovery code: the page with the
    count comes first; its button resumes the authorization, so however long
    the user reads, the application gets a fresh code."""
    client = signed_in(app)
    _secret, resp = enrol(client, idp)
    codes = CODES_RE.findall(resp.text)
    resp = flow.start()
    tx = re.search(r"tx=([^&]+)", resp.headers["Location"]).group(1)
    resp = flow.login(resp)
    assert "/login/verify" in resp.headers["Location"]
    page = flow.client.get("/login/verify?method=recovery").text
    resp = answer(flow.client, page, codes[0], method="recovery")
    assert told(resp, "You used a recovery code. You have 9 left.", f"{ISSUER}/authorize/continue?tx={tx}")
    idp.clock.advance(idp.settings["CODE_LIFETIME"] + 60)  # reading the page
    onward = html_lib.unescape(re.search(r'id="onward" href="([^"]+)"', resp.text).group(1))
    resp = flow.until_callback(flow.client.get(path_of(onward)))  # the app's consent page, then the app
    tokens = flow.token(query(resp.headers["Location"])["code"])
    assert tokens.status_code == 200, tokens.get_data(as_text=True)


def test_codes_belong_to_their_user(app, idp, make_user):
    _uid, codes, _client = first_codes(app, idp, make_user)
    ola = make_user(email="ola@example.no")
    add_totp(app, ola)
    with app.app_context():
        from visma_idp.factors import recovery_codes
        from visma_idp.storage import User, db

        with app.test_request_context():
            recovery_codes.generate(db.session.get(User, ola))
            db.session.commit()
    client, _page = to_second_step(app, "ola@example.no")
    page = client.get("/login/verify?method=recovery").text
    assert answer(client, page, codes[0], method="recovery").status_code == 401


def test_few_codes_left_and_the_last_one(app, idp, make_user, mailbox):
    uid, codes, _client = first_codes(app, idp, make_user)
    for i, code in enumerate(codes[:7]):
        client, _page = to_second_step(app)
        page = client.get("/login/verify?method=recovery").text
        assert told(answer(client, page, code, method="recovery"), f"You used a recovery code. You have {9 - i} left.")
    body = Mailbox.text(mailbox.last("kari@example.no"))
    assert "You have 3 unused recovery codes left." in body and "Make new recovery codes" in body
    assert ISSUER + "/account/security/recovery" in Mailbox.links(mailbox.last("kari@example.no"))
    for code in codes[7:]:
        client, _page = to_second_step(app)
        page = client.get("/login/verify?method=recovery").text
        resp = answer(client, page, code, method="recovery")
    assert told(resp, "You used your last recovery code. Make new ones now, so you can still sign in if you lose "
                      "your other ways.")
    assert "That was your last recovery code." in Mailbox.text(mailbox.last("kari@example.no"))
    overview = client.get("/account/security").text
    assert "You have 0 unused recovery codes." in overview and "You have no recovery codes left." in overview
    # with none left, the method is no longer offered
    _client, page = to_second_step(app)
    assert "?method=recovery" not in page
    assert len(code_rows(app, uid)) == 10


def test_regenerating_needs_a_recent_password_and_voids_the_old_codes(app, idp, make_user, mailbox):
    uid, old, client = first_codes(app, idp, make_user)
    idp.clock.advance(6 * 60)
    resp = client.get("/account/security/recovery")
    assert resp.status_code == 302
    assert resp.headers["Location"] == ISSUER + "/account/confirm-password?next=/account/security/recovery"
    page = client.get(path_of(resp.headers["Location"])).text
    resp = client.post("/account/security/recovery", data={"csrf_token": csrf(page)})
    assert resp.status_code == 302 and "/account/confirm-password" in resp.headers["Location"]
    assert len(code_rows(app, uid)) == 10 and all(r.used_at is None for r in code_rows(app, uid))

    resp = client.post("/account/confirm-password", data={
        "csrf_token": csrf(page), "password": PASSWORD, "next": "/account/security/recovery"})
    assert resp.headers["Location"] == ISSUER + "/account/security/recovery"
    page = client.get("/account/security/recovery").text
    assert client.post("/account/security/recovery").status_code == 400  # no CSRF token
    resp = client.post("/account/security/recovery", data={"csrf_token": csrf(page)})
    assert resp.status_code == 200
    new = CODES_RE.findall(resp.text)
    assert len(new) == 10 and not set(new) & set(old)
    assert "Your old codes no longer work." in resp.text
    assert f'href="{ISSUER}/account/security"' in resp.text
    assert len(code_rows(app, uid)) == 10
    assert audit_events(app, "recovery_codes_created", uid)[-1].details == {"count": 10, "first": False}
    message = mailbox.last("kari@example.no")
    assert message["Subject"] == "New recovery codes were made for your account"

    # an old code is void, a new one works
    other, _page = to_second_step(app)
    page = other.get("/login/verify?method=recovery").text
    assert answer(other, page, old[0], method="recovery").status_code == 401
    assert told(answer(other, page, new[0], method="recovery"), "You used a recovery code. You have 9 left.")


def test_no_codes_without_a_factor(app, make_user):
    uid = make_user()
    client = signed_in(app)
    page = client.get("/account/security/recovery")
    assert page.status_code == 200 and "Make new recovery codes</button>" not in page.text
    resp = client.post("/account/security/recovery", data={"csrf_token": csrf(client.get("/account").text)})
    assert resp.status_code == 409 and "Set one up first" in resp.text
    assert not code_rows(app, uid)
    # the pages need a session
    assert browser(app).get("/account/security/recovery").headers["Location"] == ISSUER + "/login"
