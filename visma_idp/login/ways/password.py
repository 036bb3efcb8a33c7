"""Way in: the password (``/login/password``), after the email page.

Rules (the check itself is ``password/confirm.py``, one rule for every place
that asks for a password):
- one answer for an unknown email and a wrong password (401, the same page),
  after the same Argon2id work (a dummy hash for unknown and inactive accounts);
- attempts are throttled per account and per client IP, counted before the
  password is checked (``login/throttle.py``); a throttled attempt gets 429
  with ``Retry-After``; failures are audited (``login_failed``,
  ``account_locked``, ``login_throttled``);
- only someone who knows the password learns that the account is locked
  ("This wasn't me", an admin): 403 with the locked page;
- a hash with old Argon2 parameters is replaced at a good login.
"""

from __future__ import annotations

from flask import redirect, render_template, request
from flask_babel import gettext as _

from ...assurance import ACR_PASSWORD, AMR_PASSWORD
from ...context import current_idp
from ...password.confirm import check_current_password
from ...password.policy import MAX_LENGTH as MAX_PASSWORD  # noqa: F401 - what the sign-in accepts (a test reads it)
from ...storage import queries
from ..blueprints import bp
from ..pipeline import first_factor_passed, load


def _page(email: str, tx: str | None, error: str | None = None):
    return render_template("login_password.html", email=email, tx=tx, error=error)


@bp.route("/login/password", methods=["GET", "POST"])
def password():
    idp = current_idp()
    flow = load(request.values.get("tx"))
    email_value = flow.signin.email if flow.signin.identified else None
    if not email_value:
        return redirect(idp.url("login.email", tx=flow.tx))
    if request.method == "GET":
        return _page(email_value, flow.tx)

    secret = request.form.get("password") or ""
    # counted before the password is checked, so parallel guesses cannot all pass (password/confirm.py)
    check = check_current_password(user=queries.user_by_email(email_value), email=email_value, password=secret,
                                   ip=request.remote_addr)
    if check.throttled:
        return _throttled(email_value, flow.tx, check)
    if check.locked:  # only someone who knows the password learns of the lock
        return render_template("login_locked.html", email=email_value), 403
    if not check.ok or check.user is None:
        return _page(email_value, flow.tx, _("Wrong email address or password.")), 401
    return first_factor_passed(flow, check.user, amr=[AMR_PASSWORD], acr=ACR_PASSWORD, password_at=idp.clock.now())


def _throttled(email_value, tx_id, check):
    minutes = max(1, (check.wait_seconds + 59) // 60)
    if check.paused:
        message = _("Too many failed attempts. Sign-in is paused for %(minutes)d minute(s). "
                    "Try again later or reset your password.", minutes=minutes)
    else:
        message = _("Too many failed attempts. Wait %(seconds)d second(s) and try again.",
                    seconds=check.wait_seconds)
    return _page(email_value, tx_id, message), 429, check.headers
