"""The "send a new activation link" form has the same human check as
forgot-password (password/challenge.py, CAPTCHA_VERIFIER): without a
solution, or with one used before, nothing is sent."""

from __future__ import annotations

import pytest
from jinja2 import ChoiceLoader, DictLoader

from tests.helpers import csrf
from tests.password.recovery import EASY_POW, answered, solve

NINA = "nina@example.no"
REFUSED = "We could not confirm that you are a person."
DEAD_LINK = "/activate/" + "q" * 43


@pytest.fixture
def settings(settings):
    settings["POW_DIFFICULTY"] = EASY_POW
    return settings


@pytest.fixture
def nina(app, mailbox):
    from visma_idp.admin.service import invite_user
    from visma_idp.storage import db

    with app.app_context():
        invite_user(NINA, "Nina Berg")
        db.session.commit()
    mailbox.deliver()  # the first Welcome email
    mailbox.capture.clear()
    return NINA


def post(client, page, **fields):
    return answered(client.post("/activate/resend", data={"email": NINA, "csrf_token": csrf(page), **fields}))


def test_the_form_carries_the_check(client):
    resp = client.get(DEAD_LINK)
    assert resp.status_code == 404
    html = resp.get_data(as_text=True)
    assert 'action="http://127.0.0.1:5000/activate/resend"' in html
    assert 'name="pow_challenge"' in html and "data-pow" in html and "This form needs JavaScript" in html


@pytest.mark.parametrize("fields", [{}, {"pow": "0"}, {"pow_challenge": "made-up", "pow": "1"}])
def test_without_a_solution_nothing_is_sent(client, nina, mailbox, fields):
    resp = post(client, client.get(DEAD_LINK).get_data(as_text=True), **fields)
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    assert REFUSED in html and 'id="check-error" role="alert"' in html
    assert f'value="{NINA}"' in html and 'name="pow_challenge"' in html  # the address kept, a fresh challenge
    assert mailbox.to(NINA) == []


def test_a_solution_works_once(client, nina, mailbox):
    page = client.get(DEAD_LINK).get_data(as_text=True)
    solved = solve(page)
    assert post(client, page, **solved).status_code == 302
    assert len(mailbox.to(NINA)) == 1
    again = post(client, page, **solved)
    assert again.status_code == 400 and REFUSED in again.get_data(as_text=True)
    assert len(mailbox.to(NINA)) == 1


def test_the_expired_link_page_offers_the_check_too(app, client, idp, nina, mailbox):
    from visma_idp.account.activation import resend_activation
    from visma_idp.storage import db, queries

    with app.test_request_context("/"):
        resend_activation(queries.user_by_email(NINA))
        db.session.commit()
    link = [x for m in mailbox.to(NINA) for x in m.get_body(("plain",)).get_content().split() if "/activate/" in x][0]
    idp.clock.advance(idp.settings["ACTIVATION_LIFETIME"] + 1)
    page = client.get(link.replace("http://127.0.0.1:5000", ""))
    assert page.status_code == 410
    assert post(client, page.get_data(as_text=True), **solve(page.get_data(as_text=True))).status_code == 302
    assert len(mailbox.to(NINA)) == 2


class FieldCheck:
    """A stand-in for a hosted CAPTCHA: its own template, its own field."""

    def __init__(self, idp):
        self.idp = idp

    def challenge(self):
        return {"template": "test_check.html", "question": "Type yes"}

    def verify(self, form):
        return form.get("human") == "yes"


def test_another_verifier_guards_it_too(app, make_app, nina, mailbox):
    other = make_app(CAPTCHA_VERIFIER="tests.account.test_resend_human_check:FieldCheck")
    other.jinja_loader  # noqa: B018 - build the default loader before wrapping it
    other.jinja_env.loader = ChoiceLoader([
        DictLoader({"test_check.html": '<label for="human">{{ human.question }}</label><input id="human" name="human">'}),
        other.jinja_env.loader,
    ])
    client = other.test_client()
    page = client.get(DEAD_LINK).get_data(as_text=True)
    assert "Type yes" in page and "pow.js" not in page
    assert post(client, page, human="no").status_code == 400
    assert post(client, page, human="yes").status_code == 302
    assert len(mailbox.to(NINA)) == 1
