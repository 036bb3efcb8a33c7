"""SMS as a second factor: enrolment with a code sent to the number (read from
the SMS outbox), wrong codes, 5 tries, 5 minutes, single use; the sign-in's
second step (amr ``sms`` + ``mfa`` in the ID token); throttles against toll
fraud per number and per account; the weaker-choice notice; masked numbers;
codes stored only as digests; removal; the HTTP backend end to end."""

from __future__ import annotations

import base64
import json
import re

import pytest
from sqlalchemy import select

from tests.account.test_details import ISSUER, audit_events, browser, sign_in
from tests.helpers import csrf, path_of, query
from tests.notify.test_sms_senders import SmsProvider

PHONE = "+4791234567"
MASKED = "+47 \u2022\u2022\u2022 \u2022\u2022 567"
CODE_RE = re.compile(r"#(\d{6})\s*$")


# -- helpers ------------------------------------------------------------------------------

def outbox(app, to: str | None = None) -> list[str]:
    """The texts in the SMS outbox (decrypted), oldest first."""
    from visma_idp.storage import SmsOutbox, db

    with app.app_context():
        stmt = select(SmsOutbox).order_by(SmsOutbox.id)
        if to:
            stmt = stmt.where(SmsOutbox.to_number == to)
        return [row.body for row in db.session.scalars(stmt)]


def last_code(app, to: str = PHONE) -> str:
    texts = outbox(app, to)
    assert texts, "no text message"
    return CODE_RE.search(texts[-1]).group(1)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def signed_in(app, email: str = "kari@example.no"):
    """A browser signed in fully: the password, then (for a user with a phone) the code sent by SMS."""
    client = browser(app)
    resp = sign_in(client, email)
    if resp.status_code == 302 and resp.headers["Location"] == ISSUER + "/login/verify":
        page = client.get("/login/verify")
        assert page.status_code == 200 and 'name="method" value="sms"' in page.text, page.text
        texts = outbox(app)
        code = CODE_RE.search(texts[-1]).group(1)
        resp = client.post("/login/verify", data={"csrf_token": csrf(page.text), "method": "sms", "code": code})
    assert resp.status_code == 302 and resp.headers["Location"] == ISSUER + "/", resp.headers.get("Location")
    return client


def start_enrolment(client, phone: str = "+47 912 34 567"):
    page = client.get("/account/security/sms")
    assert page.status_code == 200, (page.status_code, page.headers.get("Location"))
    return client.post("/account/security/sms", data={"csrf_token": csrf(page.text), "phone": phone})


def enter_code(client, code: str):
    page = client.get("/account/security/sms/verify")
    assert page.status_code == 200, page.status_code
    return client.post("/account/security/sms/verify", data={"csrf_token": csrf(page.text), "code": code})


def resend(client):
    page = client.get("/account/security/sms/verify")
    return client.post("/account/security/sms/resend", data={"csrf_token": csrf(page.text)})


def factors(app, user_id: int, kind: str = "sms"):
    from visma_idp.storage import Factor, db

    with app.app_context():
        rows = list(db.session.scalars(select(Factor).where(Factor.user_id == user_id, Factor.kind == kind)))
        for row in rows:
            db.session.expunge(row)
        return rows


def add_phone(app, user_id: int, phone: str = PHONE) -> int:
    """A confirmed SMS factor row (for sign-in tests)."""
    from visma_idp.notify.sms import mask
    from visma_idp.storage import Factor, db

    with app.app_context():
        now = app.extensions["visma_idp"].clock.now()
        row = Factor(user_id=user_id, kind="sms", name=mask(phone), phone=phone, created_at=now, confirmed_at=now)
        db.session.add(row)
        db.session.commit()
        return row.id


def id_token_claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def to_second_step(flow):
    """An app's sign-in up to the second step: the GET of /login/verify (which sends the code)."""
    resp = flow.login(flow.start())
    assert resp.status_code == 302 and urlsplit_path(resp.headers["Location"]) == "/login/verify", \
        resp.headers.get("Location")
    return flow.client.get(path_of(resp.headers["Location"])), path_of(resp.headers["Location"])


def urlsplit_path(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).path


def post_second_step(flow, page, action: str, code: str, **extra):
    return flow.client.post(action, data={"csrf_token": csrf(page.text), "method": "sms", "code": code, **extra})


# -- numbers -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("phone", "masked"), [
    ("+4791234567", MASKED),
    ("+46701234567", "+46 \u2022\u2022\u2022 \u2022\u2022\u2022 567"),
    ("+14155550123", "+1 \u2022\u2022\u2022 \u2022\u2022\u2022 \u2022 123"),
    ("+358401234567", "+358 \u2022\u2022\u2022 \u2022\u2022\u2022 567"),
])
def test_numbers_are_masked_to_the_country_code_and_last_digits(phone, masked):
    from visma_idp.notify.sms import mask

    assert mask(phone) == masked


# -- enrolment ---------------------------------------------------------------------------------

def test_enrolment_with_the_code_from_the_text_message(app, make_user, mailbox):
    uid = make_user(phone_number=PHONE)
    client = signed_in(app)
    page = client.get("/account/security/sms")
    assert page.status_code == 200
    html = page.text
    # the user is told plainly that SMS is the weaker choice, and what to use instead
    assert "Text messages are the weakest way to confirm your sign-in." in html
    assert "SIM card" in html and "intercepts" in html
    assert "An authenticator app or a security key protects you better." in html
    assert 'autocomplete="tel"' in html and 'for="sms-phone"' in html
    assert PHONE in html  # the profile's number is offered

    resp = client.post("/account/security/sms", data={"csrf_token": csrf(html), "phone": " +47 912 34 567 "})
    assert resp.status_code == 303 and resp.headers["Location"] == ISSUER + "/account/security/sms/verify"
    texts = outbox(app, PHONE)
    assert len(texts) == 1
    assert "is your code to add this phone number" in texts[0]
    assert texts[0].endswith("@127.0.0.1 #" + last_code(app))
    verify_page = client.get("/account/security/sms/verify")
    assert PHONE in verify_page.text  # the enrolment page shows the number the user typed
    assert 'autocomplete="one-time-code"' in verify_page.text
    assert factors(app, uid) == []  # not a factor before the code comes back

    resp = enter_code(client, last_code(app))
    assert resp.status_code in (200, 302), resp.text
    [factor] = factors(app, uid)
    assert factor.phone == PHONE and factor.confirmed_at is not None and factor.name == MASKED
    with app.app_context():
        from visma_idp.storage import User, db

        assert db.session.get(User, uid).phone_number_verified is True
    assert audit_events(app, "factor_added", uid)[-1].details == {"kind": "sms", "factor_id": factor.id}
    assert [e.details["purpose"] for e in audit_events(app, "sms_code_sent", uid)] == ["enrol"]
    mail = mailbox.last("kari@example.no")
    assert "text messages to your phone" in mailbox.text(mail) and PHONE not in mailbox.text(mail)

    overview = client.get("/account/security").text
    assert MASKED in overview and PHONE not in overview
    assert "This is the weakest of the ways" in overview
    assert "Add a phone number" in overview


def test_a_bad_number_is_refused_and_nothing_is_sent(app, make_user):
    make_user()
    client = signed_in(app)
    for bad in ("91234567", "+0123456789", "+47 12", "phone", "+47" + "1" * 20):
        resp = start_enrolment(client, bad)
        assert resp.status_code == 400, bad
        assert "with its country code" in resp.text and 'role="alert"' in resp.text
    assert outbox(app) == []


def test_a_number_already_set_up_is_refused(app, make_user):
    uid = make_user()
    add_phone(app, uid)
    client = signed_in(app)
    sent = len(outbox(app))  # the sign-in's code
    resp = start_enrolment(client, "0047 912-34-567")
    assert resp.status_code == 409 and "already set up" in resp.text
    assert len(outbox(app)) == sent


def test_a_verified_number_other_than_the_profiles_leaves_the_profile_alone(app, make_user):
    uid = make_user(phone_number="+4799999999")
    client = signed_in(app)
    start_enrolment(client)
    enter_code(client, last_code(app))
    assert len(factors(app, uid)) == 1
    with app.app_context():
        from visma_idp.storage import User, db

        assert db.session.get(User, uid).phone_number_verified is False


def test_enrolment_needs_a_session_and_a_recent_password(app, idp, make_user):
    make_user()
    anonymous = browser(app)
    assert anonymous.get("/account/security/sms").headers["Location"] == ISSUER + "/login"
    client = signed_in(app)
    idp.clock.advance(301)
    resp = client.get("/account/security/sms")
    assert resp.status_code == 302
    assert path_of(resp.headers["Location"]).startswith("/account/confirm-password?next=")
    page = client.get(path_of(resp.headers["Location"]))
    resp = client.post("/account/confirm-password", data={
        "csrf_token": csrf(page.text), "password": "correct horse battery", "next": "/account/security/sms"})
    assert resp.headers["Location"] == ISSUER + "/account/security/sms"
    assert client.get("/account/security/sms").status_code == 200


def test_enrolment_post_needs_csrf(app, make_user):
    make_user()
    client = signed_in(app)
    resp = client.post("/account/security/sms", data={"phone": PHONE})
    assert resp.status_code in (400, 403)
    assert outbox(app) == []


def test_a_wrong_code_is_refused_with_the_tries_left(app, make_user):
    uid = make_user()
    client = signed_in(app)
    start_enrolment(client)
    resp = enter_code(client, wrong(last_code(app)))
    assert resp.status_code == 400
    assert "That code is not right. You can try 4 more times." in resp.text
    assert 'aria-invalid="true"' in resp.text and 'role="alert"' in resp.text
    resp = enter_code(client, "12a")
    assert resp.status_code == 400 and "Enter the 6-digit code" in resp.text
    assert factors(app, uid) == []
    assert enter_code(client, last_code(app)).status_code in (200, 302)  # a malformed entry is not a try
    assert len(factors(app, uid)) == 1


def test_after_five_wrong_tries_the_code_is_dead(app, make_user):
    uid = make_user()
    client = signed_in(app)
    start_enrolment(client)
    code = last_code(app)
    for left in (4, 3, 2, 1):
        resp = enter_code(client, wrong(code))
        assert resp.status_code == 400 and f"try {left} more time" in resp.text
    resp = enter_code(client, wrong(code))
    assert resp.status_code == 410 and "can no longer be used" in resp.text
    resp = enter_code(client, code)  # the right code, too late
    assert resp.status_code == 410
    assert factors(app, uid) == []
    # a new code works
    assert resend(client).status_code == 303
    assert len(outbox(app)) == 2
    assert enter_code(client, last_code(app)).status_code in (200, 302)
    assert len(factors(app, uid)) == 1


def test_the_code_expires_after_five_minutes(app, idp, make_user):
    uid = make_user()
    client = signed_in(app)
    start_enrolment(client)
    code = last_code(app)
    client.get("/account/security/sms/verify")
    # keep the password recent: confirm it again just before the code expires
    idp.clock.advance(299)
    page = client.get("/account/confirm-password?next=/account/security/sms/verify")
    client.post("/account/confirm-password", data={"csrf_token": csrf(page.text), "password": "correct horse battery",
                                                   "next": "/account/security/sms/verify"})
    idp.clock.advance(2)
    resp = enter_code(client, code)
    assert resp.status_code == 410 and "The code has expired." in resp.text
    assert factors(app, uid) == []


def test_resend_voids_the_old_code(app, make_user):
    uid = make_user()
    client = signed_in(app)
    start_enrolment(client)
    first = last_code(app)
    resp = resend(client)
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/account/security/sms/verify?sent=1")
    assert "We sent a new code." in client.get(path_of(resp.headers["Location"])).text
    second = last_code(app)
    assert len(outbox(app)) == 2
    if first != second:
        assert enter_code(client, first).status_code == 400
    assert enter_code(client, second).status_code in (200, 302)
    assert len(factors(app, uid)) == 1


def test_a_code_passes_once(app, make_user):
    uid = make_user()
    client = signed_in(app)
    start_enrolment(client)
    code = last_code(app)
    page = client.get("/account/security/sms/verify")
    data = {"csrf_token": csrf(page.text), "code": code}
    assert client.post("/account/security/sms/verify", data=data).status_code in (200, 302)
    again = client.post("/account/security/sms/verify", data=data)
    assert again.status_code == 302  # nothing waiting any more: back to the start
    assert len(factors(app, uid)) == 1


# -- throttles (toll fraud) ---------------------------------------------------------------------

def test_sending_is_throttled_per_number(app, idp, make_user):
    uid = make_user()
    make_user(email="ola@example.no")
    client = signed_in(app)
    assert start_enrolment(client).status_code == 303
    assert resend(client).status_code == 303
    assert resend(client).status_code == 303
    assert len(outbox(app, PHONE)) == 3
    resp = resend(client)
    assert resp.status_code == 429
    assert "We have sent too many codes to this number." in resp.text and 'role="alert"' in resp.text
    assert int(resp.headers["Retry-After"]) > 0
    # another account cannot send to the same number either
    other = signed_in(app, "ola@example.no")
    resp = start_enrolment(other)
    assert resp.status_code == 429
    assert len(outbox(app, PHONE)) == 3  # nothing more sent
    [event, *_rest] = audit_events(app, "sms_throttled", uid)
    assert event.outcome == "failure" and event.details["limit"] == "number" and PHONE not in json.dumps(event.details)
    # the limit frees up after its window
    idp.clock.advance(601)
    page = client.get("/account/confirm-password?next=/account/security/sms/verify")
    client.post("/account/confirm-password", data={"csrf_token": csrf(page.text), "password": "correct horse battery",
                                                   "next": "/account/security/sms/verify"})
    assert resend(client).status_code == 303
    assert len(outbox(app, PHONE)) == 4


@pytest.mark.parametrize("limit", [None, 3])  # the default (10), or SMS_PER_ACCOUNT_DAY
def test_sending_is_throttled_per_account(app, idp, make_user, limit):
    if limit:
        idp.settings["SMS_PER_ACCOUNT_DAY"] = limit
    per_day = limit or 10
    uid = make_user()
    client = signed_in(app)
    numbers = [f"+47912345{n:02d}" for n in range(per_day + 1)]
    for number in numbers[:per_day]:
        assert start_enrolment(client, number).status_code == 303, number
    resp = start_enrolment(client, numbers[per_day])
    assert resp.status_code == 429
    assert "We have sent too many codes for your account." in resp.text
    assert outbox(app, numbers[per_day]) == []
    assert len(outbox(app)) == per_day
    assert audit_events(app, "sms_throttled", uid)[-1].details["limit"] == "account"


def test_the_per_number_limit_is_a_setting(app, idp, make_user):
    idp.settings["SMS_PER_NUMBER"] = 1
    make_user()
    client = signed_in(app)
    assert start_enrolment(client).status_code == 303
    resp = resend(client)
    assert resp.status_code == 429 and "We have sent too many codes to this number." in resp.text
    assert len(outbox(app, PHONE)) == 1


# -- the second step of a sign-in ----------------------------------------------------------------

def test_sign_in_with_sms(flow, app, idp):
    from visma_idp.storage import User, db

    with app.app_context():
        uid = db.session.scalar(select(User.id).where(User.email == flow.email))
    factor_id = add_phone(app, uid)
    page, action = to_second_step(flow)
    assert page.status_code == 200
    html = page.text
    assert MASKED in html and PHONE not in html  # masked at sign-in
    assert 'name="method" value="sms"' in html and 'autocomplete="one-time-code"' in html
    texts = outbox(app, PHONE)
    assert len(texts) == 1 and "sign-in code" in texts[0]
    # reloading the page within a minute sends nothing new
    assert flow.client.get(action).status_code == 200
    assert len(outbox(app, PHONE)) == 1
    resp = post_second_step(flow, page, action, last_code(app))
    callback = flow.until_callback(resp)
    params = query(callback.headers["Location"])
    tokens = flow.token(params["code"]).get_json()
    claims = id_token_claims(tokens["id_token"])
    assert "sms" in claims["amr"] and "mfa" in claims["amr"] and "pwd" in claims["amr"]
    assert claims["acr"] != "pwd"
    assert factors(app, uid)[0].last_used_at is not None
    assert audit_events(app, "second_step_passed", uid)[-1].details["method"] == "sms"
    assert factor_id


def test_sign_in_wrong_code_tries_and_reload_after_a_minute(flow, app, idp):
    from visma_idp.storage import User, db

    with app.app_context():
        uid = db.session.scalar(select(User.id).where(User.email == flow.email))
    add_phone(app, uid)
    page, action = to_second_step(flow)
    code = last_code(app)
    resp = post_second_step(flow, page, action, wrong(code))
    assert resp.status_code == 400 and "That code is not right." in resp.text
    assert MASKED in resp.text  # the page still says where the code went
    assert 'aria-describedby="sms-sent verify-error"' in resp.text
    # after a minute, showing the page again sends a new code; the old one is void
    idp.clock.advance(61)
    page = flow.client.get(action)
    assert len(outbox(app, PHONE)) == 2
    new_code = last_code(app)
    if new_code != code:
        assert post_second_step(flow, page, action, code).status_code in (400, 410)
    idp.clock.advance(2)  # the second step's throttle gives a short pause after failures
    resp = post_second_step(flow, page, action, new_code)
    assert flow.until_callback(resp).status_code == 302


def test_sign_in_code_dies_after_five_wrong_tries(flow, app, idp):
    from visma_idp.storage import User, db

    with app.app_context():
        uid = db.session.scalar(select(User.id).where(User.email == flow.email))
    add_phone(app, uid)
    page, action = to_second_step(flow)
    code = last_code(app)
    statuses = []
    for _ in range(5):
        idp.clock.advance(5)  # past the second step's own growing pause
        statuses.append(post_second_step(flow, page, action, wrong(code)).status_code)
    assert statuses == [400, 400, 400, 400, 410]
    idp.clock.advance(5)
    resp = post_second_step(flow, page, action, code)
    assert resp.status_code == 410 and "can no longer be used" in resp.text
    # the page then sends a new code (the dead one is not live), which works
    page = flow.client.get(action)
    assert "The code goes by text message" not in page.text
    assert len(outbox(app, PHONE)) == 2
    idp.clock.advance(60)
    assert flow.until_callback(post_second_step(flow, page, action, last_code(app))).status_code == 302


def test_sign_in_code_expires(flow, app, idp):
    from visma_idp.storage import User, db

    with app.app_context():
        uid = db.session.scalar(select(User.id).where(User.email == flow.email))
    add_phone(app, uid)
    page, action = to_second_step(flow)
    idp.clock.advance(301)
    resp = post_second_step(flow, page, action, last_code(app))
    assert resp.status_code == 410 and "The code has expired." in resp.text


def test_sign_in_sending_is_throttled(flow, app, idp):
    from visma_idp.storage import User, db

    with app.app_context():
        uid = db.session.scalar(select(User.id).where(User.email == flow.email))
    add_phone(app, uid)
    page, action = to_second_step(flow)
    for _ in range(2):
        idp.clock.advance(61)
        assert flow.client.get(action).status_code == 200
    assert len(outbox(app, PHONE)) == 3
    idp.clock.advance(61)
    resp = flow.client.get(action)
    assert resp.status_code == 429 and "too many codes" in resp.text
    assert "The code goes by text message to" not in resp.text  # the third code is still live
    assert len(outbox(app, PHONE)) == 3
    assert audit_events(app, "sms_throttled", uid)[-1].details["purpose"] == "signin"


def test_sign_in_offers_every_number(flow, app):
    from visma_idp.storage import User, db

    with app.app_context():
        uid = db.session.scalar(select(User.id).where(User.email == flow.email))
    add_phone(app, uid)
    second = add_phone(app, uid, "+4798765432")
    page, action = to_second_step(flow)
    assert "Send the code to +47 \u2022\u2022\u2022 \u2022\u2022 432 instead" in page.text
    link = re.search(r'<a href="([^"]+)">Send the code to', page.text).group(1).replace("&amp;", "&")
    assert query(link) == {"method": "sms", "factor": str(second), "tx": query(action)["tx"]}
    page = flow.client.get(f"{action}&factor={second}" if "?" in action else f"{action}?method=sms&factor={second}")
    assert len(outbox(app, "+4798765432")) == 1
    resp = post_second_step(flow, page, action, last_code(app, "+4798765432"))
    assert flow.until_callback(resp).status_code == 302


def test_a_user_who_must_have_a_factor_enrols_a_phone_during_the_sign_in(app, make_user):
    uid = make_user(mfa_required=True)
    client = browser(app)
    resp = sign_in(client)
    assert resp.headers["Location"] == ISSUER + "/account/security"
    overview = client.get("/account/security").text
    assert 'href="http://127.0.0.1:5000/account/security/sms"' in overview
    assert start_enrolment(client).status_code == 303
    resp = enter_code(client, last_code(app))
    if resp.status_code == 200:  # the first recovery codes, then on
        form = re.search(r'<form method="post" action="([^"]+)">', resp.text).group(1)
        resp = client.post(path_of(form), data={"csrf_token": csrf(resp.text)})
    assert resp.status_code == 302 and resp.headers["Location"] == ISSUER + "/", resp.headers.get("Location")
    assert client.get("/account").status_code == 200
    amr = audit_events(app, "login_succeeded", uid)[-1].details["amr"]
    assert "sms" in amr and "mfa" in amr and "pwd" in amr


# -- what is stored --------------------------------------------------------------------------------

def test_codes_are_stored_only_as_digests(flow, app, make_user):
    """No code is in any column in plain: not the used one, not the voided
    one, not a live one (the outbox's text is encrypted)."""
    from visma_idp.storage import SmsCode, User, db

    uid = make_user(email="per@example.no")
    client = signed_in(app, "per@example.no")
    start_enrolment(client)
    codes = [last_code(app)]  # voided by the resend
    resend(client)
    codes.append(last_code(app))  # used
    assert enter_code(client, codes[-1]).status_code in (200, 302)
    assert len(factors(app, uid)) == 1
    with app.app_context():
        kari_id = db.session.scalar(select(User.id).where(User.email == flow.email))
    add_phone(app, kari_id, "+4711122233")
    to_second_step(flow)
    codes.append(last_code(app, "+4711122233"))  # live
    with app.app_context():
        seen = []
        for table in db.metadata.sorted_tables:
            for row in db.session.execute(table.select()):
                for value in row:
                    if isinstance(value, str | bytes | dict | list):
                        seen.append(value if isinstance(value, str) else json.dumps(value, default=str))
        blob = "\n".join(seen)
        for code in codes:
            assert code not in blob, code
        assert len(db.session.scalars(select(SmsCode.digest)).all()) == 3


# -- removal ---------------------------------------------------------------------------------------

def test_remove_a_number(app, idp, make_user, mailbox):
    uid = make_user()
    factor_id = add_phone(app, uid)
    client = signed_in(app)
    overview = client.get("/account/security").text
    assert f'action="{ISSUER}/account/security/sms/{factor_id}/remove"' in overview
    # CSRF is needed
    assert client.post(f"/account/security/sms/{factor_id}/remove").status_code in (400, 403)
    # someone else's number is not found
    other = make_user(email="ola@example.no")
    other_factor = add_phone(app, other, "+4798765432")
    resp = client.post(f"/account/security/sms/{other_factor}/remove", data={"csrf_token": csrf(overview)})
    assert resp.status_code == 404
    # a stale password first goes to confirm it
    idp.clock.advance(301)
    resp = client.post(f"/account/security/sms/{factor_id}/remove", data={"csrf_token": csrf(overview)})
    assert resp.status_code == 302 and "/account/confirm-password" in resp.headers["Location"]
    assert len(factors(app, uid)) == 1
    page = client.get(path_of(resp.headers["Location"]))
    client.post("/account/confirm-password", data={"csrf_token": csrf(page.text), "password": "correct horse battery",
                                                   "next": "/account/security"})
    resp = client.post(f"/account/security/sms/{factor_id}/remove", data={"csrf_token": csrf(overview)})
    assert resp.status_code == 303 and resp.headers["Location"] == ISSUER + "/account/security"
    assert factors(app, uid) == []
    assert audit_events(app, "factor_removed", uid)[-1].details["kind"] == "sms"
    assert "You can no longer confirm your sign-in" in mailbox.text(mailbox.last("kari@example.no"))
    assert len(factors(app, other)) == 1


def test_the_only_factor_of_a_user_who_must_have_one_stays(app, make_user):
    uid = make_user(mfa_required=True)
    factor_id = add_phone(app, uid)
    client = browser(app)
    resp = sign_in(client)
    page = client.get(path_of(resp.headers["Location"]))
    assert client.post("/login/verify", data={"csrf_token": csrf(page.text), "method": "sms",
                                              "code": last_code(app)}).status_code == 302
    overview = client.get("/account/security").text
    resp = client.post(f"/account/security/sms/{factor_id}/remove", data={"csrf_token": csrf(overview)})
    assert resp.status_code == 409
    assert len(factors(app, uid)) == 1


# -- the HTTP backend, end to end -------------------------------------------------------------------

@pytest.fixture
def provider():
    server = SmsProvider().start()
    yield server
    server.stop()


def test_enrolment_through_the_http_backend(app, make_app, make_user, provider):
    uid = make_user()
    http_app = make_app(SMS_BACKEND="http", SMS_HTTP_URL=provider.url, SMS_HTTP_TOKEN="provider-secret",
                        SMS_SENDER="Acme")
    client = signed_in(http_app)
    assert start_enrolment(client).status_code == 303
    [req] = provider.requests
    assert req["headers"]["Authorization"] == "Bearer provider-secret"
    assert req["json"]["to"] == PHONE and req["json"]["from"] == "Acme"
    code = CODE_RE.search(req["json"]["text"]).group(1)
    assert outbox(app) == []  # nothing in the outbox: it went to the provider
    assert enter_code(client, code).status_code in (200, 302)
    assert len(factors(app, uid)) == 1


def test_a_provider_failure_is_told_and_voids_the_code(app, make_app, make_user, provider):
    uid = make_user()
    http_app = make_app(SMS_BACKEND="http", SMS_HTTP_URL=provider.url, SMS_HTTP_TOKEN="t")
    provider.status = 500
    client = signed_in(http_app)
    resp = start_enrolment(client)
    assert resp.status_code == 503
    assert "We could not send the text message just now." in resp.text
    code = CODE_RE.search(provider.requests[0]["json"]["text"]).group(1)
    event = audit_events(app, "sms_not_sent", uid)[-1]
    assert event.outcome == "failure" and "500" in event.details["reason"]
    # the code that did not leave cannot be used even if it did arrive
    provider.status = 200
    page = client.get("/account/security/sms/verify")
    assert "can no longer be used" in page.text
    resp = client.post("/account/security/sms/verify", data={"csrf_token": csrf(page.text), "code": code})
    assert resp.status_code == 410
    assert factors(app, uid) == []
