"""One-time codes from an agreement's members page (admin/agreement_codes.py):
the button for the members whose domain the admin holds the right for, the
code shown once (never in the session or a URL) and working, the refusals
(403 for no right, 404 for everyone outside the agreement, even in the same
email domain), the recent password, the CSRF token, and the audit rows in the
agreement's log."""

from __future__ import annotations

import json
import re

import pytest

from tests.admin import CODE_RE, give_factor, grant, lands_in_enrolment, verify_with_code
from tests.agreements import test_console as console_tests
from tests.agreements.test_console import (
    BERIT,
    KARI,
    NILS,
    OLA,
    PASSWORD,
    PER,
    _members_url,
    _signed_in_client,
    _token,
)
from tests.helpers import csrf, path_of, query
from tests.mailbox import Mailbox
from tests.password.recovery import sign_in

# the members page's fixtures (tests/agreements/test_console.py), named here so pytest finds them
world, kari = console_tests.world, console_tests.kari

ISSUER = "http://127.0.0.1:5000"
BUTTON = "Issue a one-time code"


def code_url(agreement_id: str, sub: str) -> str:
    return f"/agreements/{agreement_id}/members/{sub}/one-time-code"


def issue_as(client, agreement_id, sub, *, page_of=None):
    """Post the button's form (its CSRF token from the members page, or from the sign-in page)."""
    html = client.get(_members_url(page_of)).get_data(as_text=True) if page_of else None
    return client.post(code_url(agreement_id, sub), data={"csrf_token": csrf(html) if html else _token(client)})


def snapshot(app) -> dict:
    """Everything issuing could change: codes, audit rows, mail."""
    from visma_idp.storage import AuditEvent, MailOutbox, OneTimeCode, db

    with app.app_context():
        def count(model):
            return db.session.scalar(db.select(db.func.count()).select_from(model))

        return {"codes": count(OneTimeCode), "audit": count(AuditEvent), "mail": count(MailOutbox)}


def events(app, name):
    from visma_idp.storage import AuditEvent, db

    with app.app_context():
        rows = list(db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == name).order_by(AuditEvent.id)))
        db.session.expunge_all()
        return rows


def user_id(app, email) -> int:
    from visma_idp.storage import queries

    with app.app_context():
        return queries.user_by_email(email).id


@pytest.fixture
def rights(app, world):
    """Kari, Per and Berit hold issue_one_time_codes for example.no (every test person's domain);
    Ola has a second factor he lost."""
    for email in (KARI, PER, BERIT):
        grant(app, email, "example.no")
    give_factor(app, user_id(app, OLA))


# -- the button -----------------------------------------------------------------------------------


def test_the_button_is_offered_for_members_in_the_admins_domains(app, kari, world, rights, make_user):
    from visma_idp.agreements import service
    from visma_idp.storage import db, queries

    make_user("eva@other.no", PASSWORD, "Eva Other")
    with app.app_context():
        service.add_member(service.find(world["A"]), queries.user_by_email("eva@other.no"), ["employee"])
        db.session.commit()
    html = kari.get(_members_url(world["A"])).get_data(as_text=True)
    offered = set(re.findall(r'/members/([^/]+)/one-time-code"', html))
    assert offered == {world["sub"][OLA], world["sub"][PER]}  # not Kari herself, not Eva (other.no)
    assert f"Issue a one-time code for {OLA}" in html and "<script" not in html
    assert html.count('name="csrf_token"') >= 8


def test_no_right_no_button(app, kari, world):
    assert BUTTON not in kari.get(_members_url(world["A"])).get_data(as_text=True)


def test_no_button_for_an_account_that_cannot_sign_in(app, kari, world, rights):
    from visma_idp.storage import db, queries

    with app.app_context():
        queries.user_by_email(PER).is_active = False  # disabled
        db.session.commit()
    html = kari.get(_members_url(world["A"])).get_data(as_text=True)
    assert set(re.findall(r'/members/([^/]+)/one-time-code"', html)) == {world["sub"][OLA]}
    resp = issue_as(kari, world["A"], world["sub"][PER])
    assert resp.status_code == 409 and "cannot sign in" in resp.get_data(as_text=True)


# -- issuing -----------------------------------------------------------------------------------------


def test_the_code_is_shown_once_and_works(app, kari, world, rights, mailbox):
    resp = issue_as(kari, world["A"], world["sub"][OLA], page_of=world["A"])
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    match = CODE_RE.search(html)
    assert match, html
    code = match.group(1)
    assert "One-time code for ola@example.no" in html and "shown only this once" in html
    assert "Valid until" in html and "<script" not in html
    assert f'href="{ISSUER}{_members_url(world["A"])}"' in html  # back to the members
    # never in the session (the signed cookie, decoded) nor any other cookie; the page does not show it again
    raw = kari.get_cookie(app.config["SESSION_COOKIE_NAME"]).value
    cookies = json.dumps(app.session_interface.get_signing_serializer(app).loads(raw))
    cookies += " ".join(c.value for c in kari._cookies.values())
    assert code not in cookies and code.replace("-", "") not in cookies
    assert "Location" not in resp.headers  # the answer itself, not a redirect to a URL holding it
    assert not CODE_RE.search(kari.get(_members_url(world["A"])).get_data(as_text=True))
    # audited in Nordlys's log, naming the admin; the member is told by email
    [issued] = events(app, "one_time_code_issued")
    assert issued.agreement == world["A"] and issued.user_id == user_id(app, OLA)
    assert issued.details["by"] == user_id(app, KARI) and issued.details["via"] == "agreement_console"
    assert code not in repr(issued.details)
    assert "created a one-time code" in Mailbox.text(mailbox.last(OLA))
    # and Ola signs in with it
    ola = app.test_client()
    sign_in(ola, OLA, PASSWORD)
    assert lands_in_enrolment(ola, verify_with_code(ola, code))


def test_the_audit_log_names_the_code_never_shows_it(app, kari, world, rights):
    code = CODE_RE.search(issue_as(kari, world["A"], world["sub"][OLA]).get_data(as_text=True)).group(1)
    html = kari.get(f"/agreements/{world['A']}/audit").get_data(as_text=True)
    assert "One-time code issued" in html and f"About {OLA}" in html and f"By {KARI}" in html
    assert code not in html and not CODE_RE.search(html)


def test_the_password_must_be_recent(app, idp, kari, world, rights):
    idp.clock.advance(idp.settings["RECENT_PASSWORD_SECONDS"] + 1)
    before = snapshot(app)
    resp = issue_as(kari, world["A"], world["sub"][OLA])
    assert resp.status_code == 303
    assert path_of(resp.headers["Location"]).startswith("/account/confirm-password?")
    assert query(resp.headers["Location"]) == {"next": _members_url(world["A"])}  # back to the page
    assert snapshot(app) == before  # nothing issued, nothing audited
    page = kari.get(path_of(resp.headers["Location"])).get_data(as_text=True)
    back = kari.post(path_of(resp.headers["Location"]), data={"password": PASSWORD, "csrf_token": csrf(page)})
    assert back.status_code == 302 and path_of(back.headers["Location"]) == _members_url(world["A"])
    assert CODE_RE.search(issue_as(kari, world["A"], world["sub"][OLA]).get_data(as_text=True))


# -- refusals --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("held, message", [
    (None, "You do not have the right to issue one-time codes."),
    ("other.no", "You may only issue one-time codes for users in your own email domains."),
])
def test_without_the_right_for_the_members_domain_403(app, kari, world, held, message):
    if held:
        grant(app, KARI, held)
    before = snapshot(app)
    resp = issue_as(kari, world["A"], world["sub"][OLA], page_of=world["A"])
    assert resp.status_code == 403 and message in resp.get_data(as_text=True)
    assert not CODE_RE.search(resp.get_data(as_text=True))
    after = snapshot(app)
    assert after["codes"] == before["codes"] and after["mail"] == before["mail"]
    [refused] = events(app, "one_time_code_refused")  # audited in Nordlys's log
    assert refused.agreement == world["A"] and refused.details["by"] == user_id(app, KARI)


def test_not_for_themselves(app, kari, world, rights):
    resp = issue_as(kari, world["A"], world["sub"][KARI])
    assert resp.status_code == 403 and "You cannot issue a one-time code for your own account." in \
        resp.get_data(as_text=True)
    assert snapshot(app)["codes"] == 0


ACTORS = [
    # (who, on whose agreement's URL, for whom)
    ("admin of A, for B's member through A's URL", KARI, "A", NILS),
    ("admin of A, for B's member through B's URL", KARI, "B", NILS),
    ("admin of B, for A's member", BERIT, "A", OLA),
    ("plain member of A, with the right", PER, "A", OLA),
    ("admin of A, unknown member", KARI, "A", "00000000-0000-0000-0000-000000000000"),
]


@pytest.mark.parametrize("name, actor, agreement, target", ACTORS, ids=[a[0] for a in ACTORS])
def test_everyone_outside_gets_404_and_nothing_changes(app, world, rights, name, actor, agreement, target):
    """Everyone here holds issue_one_time_codes for example.no, every target's domain."""
    client = _signed_in_client(app, actor)
    before = snapshot(app)
    sub = world["sub"].get(target, target)
    resp = client.post(code_url(world[agreement], sub), data={"csrf_token": _token(client)})
    assert resp.status_code == 404, (resp.status_code, resp.get_data(as_text=True)[:300])
    assert "There is no such page, or you cannot use it." in resp.get_data(as_text=True)
    assert snapshot(app) == before  # not even an audit row


def test_not_signed_in_goes_to_sign_in(app, client, world, rights):
    before = snapshot(app)
    resp = client.post(code_url(world["A"], world["sub"][OLA]), data={"csrf_token": _token(client)})
    assert resp.status_code == 303 and resp.headers["Location"] == ISSUER + "/login"
    assert snapshot(app) == before


def test_the_post_needs_the_csrf_token(app, kari, world, rights):
    before = snapshot(app)
    for data in ({}, {"csrf_token": "forged"}):
        resp = kari.post(code_url(world["A"], world["sub"][OLA]), data=data)
        assert resp.status_code == 400 and "This page has expired" in resp.get_data(as_text=True)
    assert snapshot(app) == before


def test_an_agreement_requiring_mfa_needs_a_session_at_that_level(app, kari, world, rights):
    from visma_idp.agreements import service
    from visma_idp.storage import db

    with app.app_context():
        service.find(world["A"]).require_acr = service.REQUIRE["mfa"]
        db.session.commit()
    before = snapshot(app)
    assert issue_as(kari, world["A"], world["sub"][OLA]).status_code == 403
    assert snapshot(app) == before
