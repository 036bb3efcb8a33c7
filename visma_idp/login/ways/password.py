"""Way in: the password (``/login/password``), after the email page.

Rules:
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

from ... import audit
from ...assurance import ACR_PASSWORD, AMR_PASSWORD
from ...context import current_idp
from ...password.policy import MAX_LENGTH as MAX_PASSWORD
from ...storage import db, queries
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

    ip = request.remote_addr
    # counted before the password is checked, so parallel guesses cannot all pass
    verdict = idp.throttle.attempt(email_value, ip)
    if not verdict.allowed:
        audit.record("login_throttled", outcome="failure", subject=email_value,
                     details={"wait_seconds": verdict.wait_seconds, "locked": verdict.locked})
        db.session.commit()
        return _throttled(email_value, flow.tx, verdict)

    secret = request.form.get("password") or ""
    user = queries.user_by_email(email_value) if len(secret) <= MAX_PASSWORD else None
    stored = user.password_hash if user is not None and user.is_active else None
    ok = idp.hasher.verify(stored, secret[:MAX_PASSWORD])
    if not ok:
        after = idp.throttle.failed(email_value, ip)
        audit.record("login_failed", outcome="failure", subject=email_value, user_id=user.id if user else None)
        if after.locked:
            audit.record("account_locked", outcome="failure", subject=email_value,
                         user_id=user.id if user else None, details={"seconds": after.wait_seconds})
        db.session.commit()
        if after.locked:
            return _throttled(email_value, flow.tx, after)
        return _page(email_value, flow.tx, _("Wrong email address or password.")), 401

    assert user is not None
    idp.throttle.succeeded(email_value, ip)
    if user.locked_at is not None:
        # only someone who knows the password learns of the lock
        audit.record("login_refused_locked", outcome="failure", user_id=user.id, subject=email_value)
        db.session.commit()
        return render_template("login_locked.html", email=email_value), 403
    if idp.hasher.needs_rehash(user.password_hash):
        user.password_hash = idp.hasher.hash(secret)
    return first_factor_passed(flow, user, amr=[AMR_PASSWORD], acr=ACR_PASSWORD, password_at=idp.clock.now())


def _throttled(email_value, tx_id, verdict):
    minutes = max(1, (verdict.wait_seconds + 59) // 60)
    if verdict.locked:
        message = _("Too many failed attempts. Sign-in is paused for %(minutes)d minute(s). "
                    "Try again later or reset your password.", minutes=minutes)
    else:
        message = _("Too many failed attempts. Wait %(seconds)d second(s) and try again.",
                    seconds=verdict.wait_seconds)
    return _page(email_value, tx_id, message), 429, {"Retry-After": str(verdict.wait_seconds)}
