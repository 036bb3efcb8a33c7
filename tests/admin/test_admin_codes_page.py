"""The admin page /admin/one-time-codes: an admin of a domain gets a code
shown once; anyone else gets 403, and every refusal is audited."""

from __future__ import annotations

import pytest

from tests.admin import CODE_RE, events, give_factor, grant, lands_in_enrolment, sign_in, verify_with_code
from tests.helpers import csrf, path_of
from tests.mailbox import Mailbox

ADMIN = "ola@example.no"
USER = "kari@example.no"
PAGE = "/admin/one-time-codes"


@pytest.fixture
def people(app, make_user):
    admin_id = make_user(email=ADMIN, name="Ola Admin")
    user_id = make_user(email=USER, name="Kari Nordmann")
    give_factor(app, user_id)
    grant(app, ADMIN, "example.no", "example.se")
    return admin_id, user_id


@pytest.fixture
def admin_client(app, people):
    client = app.test_client()
    assert path_of(sign_in(client, ADMIN).headers["Location"]) == "/"
    return client


def post_email(client, email, **extra):
    page = client.get(PAGE)
    assert page.status_code == 200, page.get_data(as_text=True)
    return client.post(PAGE, data={"email": email, "csrf_token": csrf(page.get_data(as_text=True))}, **extra)


def code_rows(app) -> int:
    from visma_idp.storage import OneTimeCode, db

    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(OneTimeCode))


def test_the_page_shows_the_admins_domains(admin_client):
    page = admin_client.get(PAGE)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "@example.no" in html and "@example.se" in html
    assert '<label for="target-email">' in html and 'id="target-email"' in html
    assert page.headers["Cache-Control"] == "no-store"


def test_an_admin_in_the_domain_gets_the_code_once_and_it_works(app, admin_client, mailbox):
    resp = post_email(admin_client, "Kari@Example.no ")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    match = CODE_RE.search(html)
    assert match, html
    assert "kari@example.no" in html and "shown only this once" in html and "Valid until" in html
    (issued,) = events(app, "one_time_code_issued")
    assert issued.details["via"] == "page" and issued.details["admin_email"] == ADMIN
    assert "created a one-time code" in Mailbox.text(mailbox.last(USER))
    # the page never shows it again
    assert not CODE_RE.search(admin_client.get(PAGE).get_data(as_text=True))
    user = app.test_client()
    sign_in(user, USER)
    assert lands_in_enrolment(user, verify_with_code(user, match.group(1)))


@pytest.mark.parametrize("target", ["eva@evil-example.no", "eva@example.no.evil.com", "nobody@other.no",
                                    "per@sub.example.no"])
def test_outside_the_domains_is_403_and_audited(app, admin_client, make_user, target):
    make_user(email="eva@evil-example.no")
    make_user(email="eva@example.no.evil.com")
    make_user(email="per@sub.example.no")
    resp = post_email(admin_client, target)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 403
    assert "only issue one-time codes for users in your own email domains" in html and 'role="alert"' in html
    assert not CODE_RE.search(html)
    assert code_rows(app) == 0
    (refused,) = events(app, "one_time_code_refused")
    assert refused.details == {"reason": "outside_domain", "via": "page"} and refused.subject == target


def test_out_of_domain_answers_are_the_same_for_existing_and_unknown_users(app, admin_client, make_user):
    make_user(email="lisa@other.no")
    a = post_email(admin_client, "lisa@other.no")
    b = post_email(admin_client, "ghost@other.no")
    assert a.status_code == b.status_code == 403
    assert without(a, "lisa@other.no") == without(b, "ghost@other.no")


def without(resp, email: str) -> str:
    """The page without its CSRF token and the typed address."""
    import re

    return re.sub(r'name="csrf_token" value="[^"]+"', "", resp.get_data(as_text=True)).replace(email, "EMAIL")


def test_an_unknown_user_in_the_domain_is_404(app, admin_client):
    resp = post_email(admin_client, "ghost@example.no")
    assert resp.status_code == 404 and "no user with that email address" in resp.get_data(as_text=True)


def test_an_admin_cannot_issue_a_code_for_themselves(app, admin_client):
    resp = post_email(admin_client, ADMIN)
    assert resp.status_code == 403 and "your own account" in resp.get_data(as_text=True)
    assert code_rows(app) == 0


def test_a_bad_address_is_400(admin_client):
    resp = post_email(admin_client, "not an email")
    assert resp.status_code == 400 and 'aria-invalid="true"' in resp.get_data(as_text=True)


def test_a_signed_in_user_without_the_right_gets_403_and_it_is_audited(app, people, make_user):
    uid = make_user(email="per@example.no")
    client = app.test_client()
    sign_in(client, "per@example.no")
    page = client.get(PAGE)
    assert page.status_code == 403
    assert "Only administrators who have the right to issue one-time codes" in page.get_data(as_text=True)
    resp = client.post(PAGE, data={"email": USER, "csrf_token": csrf(client.get("/account").get_data(as_text=True))})
    assert resp.status_code == 403 and not CODE_RE.search(resp.get_data(as_text=True))
    assert code_rows(app) == 0
    refused = events(app, "one_time_code_refused")
    assert [(e.user_id, e.details["reason"], e.subject) for e in refused] == [(uid, "no_right", None),
                                                                               (uid, "no_right", USER)]


def test_a_revoked_right_closes_the_page(app, admin_client):
    from visma_idp.admin import rights
    from visma_idp.storage import db, queries

    with app.app_context():
        rights.revoke(queries.user_by_email(ADMIN), rights.ISSUE_ONE_TIME_CODES)
        db.session.commit()
    assert admin_client.get(PAGE).status_code == 403


def test_without_a_session_the_page_asks_to_sign_in(client, people):
    resp = client.get(PAGE)
    assert resp.status_code == 302 and path_of(resp.headers["Location"]).startswith("/login")


def test_the_form_needs_the_csrf_token_and_our_origin(app, admin_client):
    assert admin_client.post(PAGE, data={"email": USER}).status_code == 400
    page = admin_client.get(PAGE)
    resp = admin_client.post(PAGE, data={"email": USER, "csrf_token": csrf(page.get_data(as_text=True))},
                             headers={"Origin": "https://evil.example"})
    assert resp.status_code == 403
    assert code_rows(app) == 0


def test_issuing_needs_a_recent_password(app, idp, admin_client):
    idp.clock.advance(6 * 60)
    resp = admin_client.get(PAGE)
    assert resp.status_code == 302 and path_of(resp.headers["Location"]).startswith("/account/confirm-password")
    confirm = admin_client.get(path_of(resp.headers["Location"]))
    back = admin_client.post(path_of(resp.headers["Location"]),
                             data={"password": "correct horse battery", "csrf_token": csrf(confirm.get_data(as_text=True))})
    assert path_of(back.headers["Location"]) == PAGE
    assert post_email(admin_client, USER).status_code == 200
