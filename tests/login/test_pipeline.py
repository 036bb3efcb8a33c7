"""The sign-in's steps come from one table (``login/steps/__init__.py``):
adding a step is one module and one line there. A dummy step, "accept the
terms", proves it: put in the table after enrolment, it stops every sign-in
on its page until the person accepts, and nothing before it changes."""

from __future__ import annotations

import pytest
from flask import Blueprint, request, session

from tests.helpers import csrf, path_of, query

terms = Blueprint("terms", __name__)


class AcceptTerms:
    """Step (a test's): the person accepts the terms once per sign-in, before
    the session starts. The whole step: a rule, ``run`` and its page."""

    @staticmethod
    def run(flow):
        from visma_idp.login.pipeline import DONE, Show

        if not flow.authenticating or not flow.signin.proved_first or flow.signin.established:
            return DONE
        if session.get("terms_accepted_by") == flow.signin.user_id:
            return DONE
        return Show("terms.page")


@terms.route("/terms", methods=["GET", "POST"])
def page():
    from flask_wtf.csrf import generate_csrf

    from visma_idp.login.pipeline import advance, load

    flow = load(request.values.get("tx"))
    if request.method == "POST":
        session["terms_accepted_by"] = flow.signin.user_id
        return advance(flow, in_place=False)
    return (f'<form method="post"><input name="csrf_token" value="{generate_csrf()}">'
            f'<input name="tx" value="{flow.tx or ""}"><button>I accept</button></form>')


@pytest.fixture
def with_terms(app, monkeypatch):
    from visma_idp.login import steps

    app.register_blueprint(terms)
    table = list(steps.STEPS)
    monkeypatch.setattr(steps, "STEPS", (*table[:4], AcceptTerms, *table[4:]))  # the one line


def test_a_step_added_to_the_table_runs_in_every_sign_in(flow, with_terms, app):
    from sqlalchemy import func, select

    from visma_idp.storage import SsoSession, db

    resp = flow.login(flow.start())  # email, then password
    assert resp.status_code == 302 and path_of(resp.headers["Location"]).startswith("/terms?tx="), resp.headers
    with app.app_context():  # no session before the step is done
        assert db.session.scalar(select(func.count()).select_from(SsoSession)) == 0
    page = flow.follow(resp)
    tx = query(resp.headers["Location"])["tx"]
    resp = flow.client.post("/terms", data={"tx": tx, "csrf_token": csrf(page.get_data(as_text=True))})
    resp = flow.until_callback(resp)  # consent, then the app
    code = query(resp.headers["Location"])["code"]
    assert flow.token(code).status_code == 200


def test_without_the_step_the_same_sign_in_goes_straight_on(flow):
    resp = flow.login(flow.start())
    assert "/terms" not in resp.headers["Location"]
    assert "code" in query(flow.until_callback(resp).headers["Location"])


def test_the_steps_run_in_the_documented_order():
    from visma_idp.login import steps

    assert [s.__name__.rsplit(".", 1)[-1] for s in steps.STEPS] == [
        "identify", "first_factor", "second_factor", "enrolment", "link_identity", "establish", "choose_agreement",
        "select_account", "consent"]
