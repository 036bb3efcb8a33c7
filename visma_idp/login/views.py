"""The sign-in's own address, the home page and sign-out.

- ``/authorize/continue`` is where a sign-in picks up: a GET runs the steps
  and draws the page someone must act on (consent, the account chooser, a
  notice) or hands back to the protocol; a POST answers the consent page
  (``decision``: ``allow`` or ``deny``), the account chooser (``account``:
  ``continue`` or ``other``) or the agreement chooser (``agreement``: its id)
  first. A ``tx`` that is not a live request of
  this browser gets "This sign-in has expired".
- ``/signout`` asks first (GET), then ends this browser's session (POST).
"""

from __future__ import annotations

from flask import render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError

from .. import audit
from ..browser.sso import current_session, end_current_session
from ..context import current_idp
from ..storage import db
from .blueprints import bp, second_step_bp
from .pipeline import advance, load
from .steps import choose_agreement, consent, select_account


def _expired():
    return render_template("error.html", title=_("This sign-in has expired"),
                           message=_("Go back to the application and start the sign-in again.")), 400


@bp.get("/")
def home():
    return render_template("home.html", sess=current_session())


@bp.route("/authorize/continue", methods=["GET", "POST"], endpoint="continue_signin")
def continue_signin():
    tx_id = request.values.get("tx")
    flow = load(tx_id)
    if (tx_id and flow.interaction is None) or (flow.interaction is None and not flow.signin.proved_first):
        return _expired()
    if request.method == "POST":
        decision, account = request.form.get("decision"), request.form.get("account")
        chosen = request.form.get("agreement")
        if decision:
            consent.answer(flow, decision)
        elif chosen:
            choose_agreement.answer(flow, chosen)
        elif account:
            select_account.answer(flow, account)
        return advance(flow, in_place=False)
    return advance(flow, in_place=True)


@bp.route("/signout", methods=["GET", "POST"])
def signout():
    sess = current_session()
    if request.method == "POST":
        if sess is not None:
            end_current_session()
            audit.record("logout", user_id=sess.user_id)
            db.session.commit()
        return render_template("logged_out.html", client=None)
    return render_template("logout_confirm.html", user=sess.user if sess else None, client=None, params={},
                           action=current_idp().url("login.signout"))


@bp.errorhandler(CSRFError)
@second_step_bp.errorhandler(CSRFError)
def csrf_error(_error):
    return render_template("error.html", title=_("This page has expired"),
                           message=_("Reload the page and try again.")), 400
