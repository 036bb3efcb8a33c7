"""Admin-issued one-time codes: rights limited to exact email domains, and the
user's way back in (password, then the code once, then enrolment)."""

from __future__ import annotations

import pytest

from tests.admin import CODE_RE, events, give_factor, grant, issue, lands_in_enrolment, sign_in, verify_with_code
from tests.helpers import csrf, path_of
from tests.mailbox import Mailbox

ADMIN = "ola@example.no"
USER = "kari@example.no"


@pytest.fixture
def people(app, make_user):
    """An admin of example.no and a user of example.no who lost their (only) factor."""
    admin_id = make_user(email=ADMIN, name="Ola Admin")
    user_id = make_user(email=USER, name="Kari Nordmann")
    give_factor(app, user_id)
    grant(app, ADMIN, "example.no")
    return admin_id, user_id


def _user(app, user_id):
    from visma_idp.storage import User, db

    with app.app_context():
        user = db.session.get(User, user_id)
        db.session.expunge(user)
        return user


# -- rights and domain matching ---------------------------------------------------


@pytest.mark.parametrize("email", [
    "kari@evil-example.no", "kari@example.no.evil.com", "kari@sub.example.no", "kari@example.no.",
    "kari@xample.no", "kari@example.n", "kari@example.no@evil.com", "kari@exämple.no", "example.no@evil.com",
])
def test_lookalike_domains_are_not_covered(app, make_user, email):
    from visma_idp.admin import rights
    from visma_idp.storage import db, queries

    make_user(email=ADMIN)
    grant(app, ADMIN, "example.no")
    with app.app_context():
        admin = queries.user_by_email(ADMIN)
        assert rights.covers(admin, "kari@example.no")
        assert rights.covers(admin, "KARI@Example.NO")
        assert not rights.covers(admin, email)
        db.session.rollback()


def test_may_issue_needs_the_exact_domain_an_active_admin_and_someone_else(app, make_user):
    from visma_idp.admin import rights
    from visma_idp.storage import db, queries

    make_user(email=ADMIN)
    make_user(email=USER)
    make_user(email="per@sub.example.no")
    make_user(email="eva@evil-example.no")
    grant(app, ADMIN, "example.no")
    with app.app_context():
        admin = queries.user_by_email(ADMIN)
        assert rights.may_issue(admin, queries.user_by_email(USER))
        assert not rights.may_issue(admin, queries.user_by_email("per@sub.example.no"))  # subdomains: grant them
        assert not rights.may_issue(admin, queries.user_by_email("eva@evil-example.no"))
        assert not rights.may_issue(admin, admin)  # never for oneself
        assert not rights.may_issue(None, queries.user_by_email(USER))
        admin.is_active = False  # a disabled admin holds nothing
        assert not rights.may_issue(admin, queries.user_by_email(USER))
        db.session.rollback()


@pytest.mark.parametrize("bad", ["*.example.no", "example", "exa mple.no", "example.no:443", "exämple.no", "",
                                 "example.no.", "-example.no", "example..no", "https://example.no"])
def test_only_plain_domain_names_can_be_granted(app, make_user, bad):
    from visma_idp.admin import rights
    from visma_idp.admin.service import InvalidInput
    from visma_idp.storage import db, queries

    make_user(email=ADMIN)
    with app.app_context():
        with pytest.raises(InvalidInput):
            rights.grant(queries.user_by_email(ADMIN), rights.ISSUE_ONE_TIME_CODES, [bad])
        db.session.rollback()


def test_grant_merges_and_revoke_takes_away_with_audit(app, make_user):
    from visma_idp.admin import rights
    from visma_idp.admin.service import InvalidInput
    from visma_idp.storage import db, queries

    admin_id = make_user(email=ADMIN)
    with app.app_context():
        admin = queries.user_by_email(ADMIN)
        rights.grant(admin, rights.ISSUE_ONE_TIME_CODES, ["@Example.NO", "example.se"])
        rights.grant(admin, rights.ISSUE_ONE_TIME_CODES, ["sub.example.no"])
        db.session.commit()
        assert rights.domains(admin) == ["example.no", "example.se", "sub.example.no"]
        assert rights.revoke(admin, rights.ISSUE_ONE_TIME_CODES, ["example.se"]) == ["example.se"]
        db.session.commit()
        assert rights.domains(admin) == ["example.no", "sub.example.no"]
        assert sorted(rights.revoke(admin, rights.ISSUE_ONE_TIME_CODES)) == ["example.no", "sub.example.no"]
        db.session.commit()
        assert rights.domains(admin) == [] and not rights.holds(admin)
        with pytest.raises(InvalidInput):
            rights.grant(admin, "be_superuser", ["example.no"])
        db.session.rollback()
    granted = events(app, "admin_right_granted")
    revoked = events(app, "admin_right_revoked")
    assert [e.user_id for e in granted] == [admin_id, admin_id]
    assert granted[0].details["domains"] == ["example.no", "example.se"]
    assert [e.details["removed"] for e in revoked] == [["example.se"], ["example.no", "sub.example.no"]]


# -- issuing ------------------------------------------------------------------------


def test_issuing_stores_a_keyed_digest_and_mails_the_user(app, idp, people, mailbox):
    from visma_idp.storage import OneTimeCode, db

    admin_id, user_id = people
    code = issue(app, ADMIN, USER)
    assert CODE_RE.fullmatch(code)
    with app.app_context():
        row = db.session.scalar(db.select(OneTimeCode))
        assert row.user_id == user_id and row.issued_by == admin_id
        assert row.expires_at - row.created_at == 600 and row.used_at is None
        stored = " ".join(str(getattr(row, c.name)) for c in OneTimeCode.__table__.columns)
        assert code not in stored and code.replace("-", "") not in stored
    (issued,) = events(app, "one_time_code_issued")
    assert issued.user_id == user_id
    assert issued.details["admin_id"] == admin_id and issued.details["via"] == "test"
    message = mailbox.last(USER)
    text = Mailbox.text(message)
    assert "Ola Admin (ola@example.no)" in text and "10 minutes" in text
    assert code not in text and code not in Mailbox.html(message)  # only the admin sees the code
    assert "http://127.0.0.1:5000/password/forgot" in Mailbox.links(message)


@pytest.mark.parametrize(("target", "reason", "status"), [
    ("eva@evil-example.no", "outside_domain", 403),
    ("nobody@elsewhere.no", "outside_domain", 403),
    ("nobody@example.no", "unknown_user", 404),
    (ADMIN, "self", 403),
    ("not-an-email", "bad_email", 400),
])
def test_refusals_are_audited_with_their_reason(app, make_user, people, target, reason, status):
    from visma_idp.admin.one_time_codes import IssueRefused
    from visma_idp.storage import OneTimeCode, db

    make_user(email="eva@evil-example.no")
    with pytest.raises(IssueRefused) as raised:
        issue(app, ADMIN, target)
    assert (raised.value.reason, raised.value.status) == (reason, status)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(OneTimeCode)) == 0
    (refused,) = events(app, "one_time_code_refused")
    assert refused.outcome == "failure" and refused.details["reason"] == reason and refused.user_id == people[0]


def test_an_admin_outside_the_domain_cannot_tell_whether_a_user_exists(app, make_user, people):
    from visma_idp.admin.one_time_codes import IssueRefused

    make_user(email="lisa@other.no")
    answers = []
    for target in ("lisa@other.no", "ghost@other.no"):
        with pytest.raises(IssueRefused) as raised:
            issue(app, ADMIN, target)
        answers.append((raised.value.status, raised.value.reason, raised.value.message))
    assert answers[0] == answers[1]
    assert [sorted(e.details) for e in events(app, "one_time_code_refused")] == [["reason", "via"]] * 2


def test_an_admin_without_the_right_is_refused_for_anyone(app, make_user, people):
    from visma_idp.admin.one_time_codes import IssueRefused

    make_user(email="per@example.no")
    for target in (USER, "ghost@example.no"):
        with pytest.raises(IssueRefused) as raised:
            issue(app, "per@example.no", target)
        assert (raised.value.reason, raised.value.status) == ("no_right", 403)


def test_a_disabled_account_gets_no_code(app, people):
    from visma_idp.admin.one_time_codes import IssueRefused
    from visma_idp.storage import User, db

    with app.app_context():
        db.session.get(User, people[1]).is_active = False
        db.session.commit()
    with pytest.raises(IssueRefused) as raised:
        issue(app, ADMIN, USER)
    assert (raised.value.reason, raised.value.status) == ("not_active", 409)


# -- the user's way back in ------------------------------------------------------------


def test_password_then_code_then_enrolment(app, client, people, mailbox):
    from visma_idp.storage import OneTimeCode, SsoSession, User, db

    code = issue(app, ADMIN, USER)
    resp = sign_in(client, USER)
    assert path_of(resp.headers["Location"]) == "/login/verify"
    page = client.get("/login/verify")  # the only method the user can use now: offered first
    html = page.get_data(as_text=True)
    if 'value="admin_code"' in html:
        assert "Enter the one-time code your administrator gave you" in html
    else:  # another factor module offers its method first; ours is under "Try another way"
        assert "One-time code from your administrator" in html
    resp = verify_with_code(client, code.lower().replace("-", " "))  # as typed over the phone
    assert lands_in_enrolment(client, resp)
    page = client.get("/account/security")
    assert page.status_code == 200
    assert "Set one up below to finish signing in" in page.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(User, people[1]).must_enrol_factor is True
        assert db.session.scalar(db.select(OneTimeCode)).used_at is not None
        assert db.session.scalar(db.select(db.func.count()).select_from(SsoSession)) == 0  # not signed in yet
    assert path_of(client.get("/account").headers["Location"]).startswith("/login")
    (used,) = events(app, "one_time_code_used")
    assert used.user_id == people[1] and used.details["issued_by"] == people[0]
    subjects = [m["Subject"] for m in mailbox.to(USER)]
    assert "A one-time code was created for your account" in subjects
    assert "You signed in with a one-time code from your administrator" in subjects
    text = Mailbox.text(mailbox.last(USER))
    assert "127.0.0.1" in text and "cannot be used again" in text


def test_the_code_works_once(app, client, make_app, people):
    code = issue(app, ADMIN, USER)
    assert lands_in_enrolment(client, _sign_in_and_use(client, code))
    other = app.test_client()  # another browser, same code
    resp = sign_in(other, USER)
    assert path_of(resp.headers["Location"]) == "/login/verify"
    page = other.get("/login/verify?method=admin_code")
    assert 'value="admin_code"' not in page.get_data(as_text=True)  # no live code: not offered
    resp = other.post("/login/verify", data={"method": "admin_code", "code": code,
                                             "csrf_token": csrf(page.get_data(as_text=True))})
    assert not lands_in_enrolment(other, resp) and resp.status_code in (400, 403)


def test_a_second_use_is_refused_even_when_it_gets_to_verify(app, people):
    """Two browsers racing: the conditional UPDATE lets one through."""
    from visma_idp.factors import METHODS, MethodRefused
    from visma_idp.storage import db

    code = issue(app, ADMIN, USER)
    user = _user(app, people[1])
    with app.test_request_context("/"):
        user = db.session.merge(user)
        assert METHODS["admin_code"].verify(user, {"code": code}).enrol_next is True
        db.session.commit()
        with pytest.raises(MethodRefused) as raised:
            METHODS["admin_code"].verify(user, {"code": code})
        assert raised.value.status == 410 and "already used" in raised.value.message
        db.session.rollback()


def test_the_code_expires_after_ten_minutes(app, idp, client, people):
    from visma_idp.factors import METHODS, MethodRefused
    from visma_idp.storage import db

    code = issue(app, ADMIN, USER)
    idp.clock.advance(601)
    resp = sign_in(client, USER)
    page = client.get("/login/verify?method=admin_code")
    assert 'value="admin_code"' not in page.get_data(as_text=True)
    assert not lands_in_enrolment(client, client.post("/login/verify", data={
        "method": "admin_code", "code": code, "csrf_token": csrf(page.get_data(as_text=True))}))
    assert path_of(resp.headers["Location"]) == "/login/verify"
    with app.test_request_context("/"):
        user = db.session.merge(_user(app, people[1]))
        with pytest.raises(MethodRefused) as raised:
            METHODS["admin_code"].verify(user, {"code": code})
        assert raised.value.status == 410 and "expired" in raised.value.message
        db.session.rollback()
    assert not events(app, "one_time_code_used")


def test_the_code_still_works_just_before_ten_minutes(app, idp, client, people):
    code = issue(app, ADMIN, USER)
    idp.clock.advance(590)
    assert lands_in_enrolment(client, _sign_in_and_use(client, code))


def test_a_new_code_voids_the_older_one(app, client, people):
    first = issue(app, ADMIN, USER)
    second = issue(app, ADMIN, USER)
    assert first != second
    sign_in(client, USER)
    resp = verify_with_code(client, first)
    assert resp.status_code == 410 and "expired" in resp.get_data(as_text=True)
    assert lands_in_enrolment(client, client.post("/login/verify", data={
        "method": "admin_code", "code": second,
        "csrf_token": csrf(client.get("/login/verify?method=admin_code").get_data(as_text=True))}))


def test_wrong_and_malformed_codes_are_refused_and_count_as_failures(app, client, people):
    code = issue(app, ADMIN, USER)
    sign_in(client, USER)
    wrong = "ABCDE-FGHJK" if code != "ABCDE-FGHJK" else "ABCDE-FGHJM"
    resp = verify_with_code(client, wrong)
    assert resp.status_code == 400 and "not right" in resp.get_data(as_text=True)
    assert 'role="alert"' in resp.get_data(as_text=True)
    resp = verify_with_code(client, "12345")
    assert resp.status_code == 400 and "10-character" in resp.get_data(as_text=True)
    assert len(events(app, "second_step_failed")) == 2
    assert lands_in_enrolment(client, verify_with_code(client, code))  # the right one still works


def test_a_new_code_lifts_a_lock_of_the_second_step(app, idp, client, people):
    """Wrong codes lock the second step, longer each time (up to a day); the
    helpdesk who issues a code has checked who is calling, so the code can be
    entered at once. Before, the lock also refused the admin's code."""
    first = issue(app, ADMIN, USER)
    wrong = "ABCDE-FGHJK" if first != "ABCDE-FGHJK" else "ABCDE-FGHJM"
    sign_in(client, USER)
    for _ in range(20):  # someone's wrong guesses, waiting out the delays between them
        resp = verify_with_code(client, wrong)
        if resp.status_code == 429 and "paused" in resp.get_data(as_text=True):
            break
        if resp.status_code == 429:
            idp.clock.advance(int(resp.headers["Retry-After"]))
    else:
        raise AssertionError("the second step never locked")
    refused = verify_with_code(client, first)  # even the right code waits out the lock
    assert refused.status_code == 429 and not lands_in_enrolment(client, refused)
    second = issue(app, ADMIN, USER)
    assert lands_in_enrolment(client, verify_with_code(client, second))
    issued = events(app, "one_time_code_issued")
    assert [e.details["second_step_unlocked"] for e in issued] == [False, True]


def test_a_code_for_one_user_does_not_open_another_account(app, client, make_user, people):
    make_user(email="per@example.no", name="Per")
    give_factor(app, _per_id(app))
    code_for_kari = issue(app, ADMIN, USER)
    issue(app, ADMIN, "per@example.no")  # so Per has the method too
    sign_in(client, "per@example.no")
    resp = verify_with_code(client, code_for_kari)
    assert resp.status_code == 400 and not lands_in_enrolment(client, resp)


def test_an_operator_code_tells_the_user_it_came_from_the_operator(app, people, mailbox):
    issue(app, None, USER)
    (issued,) = events(app, "one_time_code_issued")
    assert issued.details["operator"] is True and issued.details["admin_id"] is None
    assert "operator of this service" in Mailbox.text(mailbox.last(USER))


def _per_id(app):
    from visma_idp.storage import db, queries

    with app.app_context():
        user_id = queries.user_by_email("per@example.no").id
        db.session.rollback()
        return user_id


def _sign_in_and_use(client, code):
    resp = sign_in(client, USER)
    assert path_of(resp.headers["Location"]) == "/login/verify"
    return verify_with_code(client, code)
