"""Login pages, Visma Connect style: an email page, then a password page.

The email page never says whether the address has an account; the password
page gives one answer for an unknown email and a wrong password, after the
same Argon2id work. Failures are throttled per account and per IP.
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, session
from flask_babel import gettext as _

from .. import audit
from ..account import addresses
from ..context import current_idp
from ..oidc.checks.acr import ACR_PASSWORD
from ..storage import db, queries
from .session import current_session, end_current_session, get_transaction

bp = Blueprint("login", __name__)

MAX_EMAIL = 320
MAX_PASSWORD = 1024



def _tx_context():
    tx_id = request.values.get("tx") or None
    tx = get_transaction(tx_id)
    return (tx_id if tx else None), tx


@bp.get("/")
def home():
    sess = current_session()
    return render_template("home.html", sess=sess)


@bp.route("/login", methods=["GET", "POST"])
def email():
    tx_id, tx = _tx_context()
    error = None
    if request.method == "POST":
        value = (request.form.get("email") or "").strip()[:MAX_EMAIL]
        try:
            # one address, in its stored spelling (account/addresses.py): no
            # control characters reach the logs or the throttle keys
            address = addresses.parse(request.form.get("email"))
        except addresses.AddressError as exc:
            error = addresses.explain(exc, _("Enter your email address, like name@example.com."))
        else:
            session["login_email"] = address.email
            return redirect(current_idp().url("login.password", tx=tx_id))
        status = 400
    else:
        status = 200
        value = ""
        if tx:
            value = (tx["params"].get("login_hint") or "")[:MAX_EMAIL]
        value = value or session.get("login_email", "")
    return render_template("login_email.html", email=value, tx=tx_id, error=error), status


@bp.route("/login/password", methods=["GET", "POST"])
def password():
    idp = current_idp()
    tx_id, _tx = _tx_context()
    email_value = session.get("login_email")
    if not email_value:
        return redirect(idp.url("login.email", tx=tx_id))
    if request.method == "GET":
        return render_template("login_password.html", email=email_value, tx=tx_id, error=None)

    ip = request.remote_addr
    # counted before the password is checked, so parallel guesses cannot all pass
    verdict = idp.throttle.attempt(email_value, ip)
    if not verdict.allowed:
        audit.record("login_throttled", outcome="failure", subject=email_value,
                     details={"wait_seconds": verdict.wait_seconds, "locked": verdict.locked})
        db.session.commit()
        return _throttled(email_value, tx_id, verdict)

    secret = request.form.get("password") or ""
    user = queries.user_by_email(email_value) if len(secret) <= MAX_PASSWORD else None
    stored = user.password_hash if user is not None and user.is_active else None
    ok = idp.hasher.verify(stored, secret[:MAX_PASSWORD])
    if not ok:
        after = idp.throttle.failed(email_value, ip)
        audit.record("login_failed", outcome="failure", subject=email_value,
                     user_id=user.id if user else None)
        if after.locked:
            audit.record("account_locked", outcome="failure", subject=email_value,
                         user_id=user.id if user else None, details={"seconds": after.wait_seconds})
        db.session.commit()
        if after.locked:
            return _throttled(email_value, tx_id, after)
        return render_template("login_password.html", email=email_value, tx=tx_id,
                               error=_("Wrong email address or password.")), 401

    idp.throttle.succeeded(email_value, ip)
    if user.locked_at is not None:
        # only someone who knows the password learns of the lock
        audit.record("login_refused_locked", outcome="failure", user_id=user.id, subject=email_value)
        db.session.commit()
        return render_template("login_locked.html", email=email_value), 403
    if idp.hasher.needs_rehash(user.password_hash):
        user.password_hash = idp.hasher.hash(secret)
    return first_factor_done(user, amr=["pwd"], tx_id=tx_id, event_subject=email_value)


def first_factor_done(user, *, amr: list[str], tx_id: str | None, event_subject: str | None = None,
                      details: dict | None = None):
    """The user proved the first factor (password, one-time login link).
    Next comes the second step when the user has a factor (or must enrol
    one), else the SSO session starts and the pending authorization request
    goes on. Every way in passes here, so none skips the second step."""
    from . import second_step

    password_at = current_idp().clock.now() if "pwd" in amr else None
    resp = second_step.begin(user, amr=amr, tx_id=tx_id, password_at=password_at)
    if resp is not None:
        audit.record("first_factor_passed", user_id=user.id, subject=event_subject or user.email,
                     details={"amr": amr, **(details or {})})
        db.session.commit()
        return resp
    return second_step.finish(user, amr=amr, acr=ACR_PASSWORD, tx_id=tx_id, password_at=password_at,
                              details=details)


def _throttled(email_value, tx_id, verdict):
    minutes = max(1, (verdict.wait_seconds + 59) // 60)
    if verdict.locked:
        message = _("Too many failed attempts. Sign-in is paused for %(minutes)d minute(s). "
                    "Try again later or reset your password.", minutes=minutes)
    else:
        message = _("Too many failed attempts. Wait %(seconds)d second(s) and try again.",
                    seconds=verdict.wait_seconds)
    resp = render_template("login_password.html", email=email_value, tx=tx_id, error=message)
    return resp, 429, {"Retry-After": str(verdict.wait_seconds)}


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
