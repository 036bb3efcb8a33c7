"""Way in: a passkey from the email page (no password).

Rules:
- ``/login/passkey/options`` (JSON, CSRF header) gives the options of a
  sign-in without a password: any discoverable credential, user verification
  required; its challenge waits in a cookie of its own (``factors/webauthn.py``);
- ``/login/passkey`` (the form ``static/webauthn.js`` submits) checks the
  answer: a passkey proves both factors at once (``acr`` phishing-resistant),
  and the sign-in goes on through every later step;
- failures count against the client IP only (a signature cannot be
  guessed, so nobody can hold up someone else's passkey), shared with
  passwords; an account that is locked, disabled or not activated is refused
  after the passkey was verified (nobody learns about an account from a guess);
- every failure is audited and answered on the email page with a
  translated message.
"""

from __future__ import annotations

from flask import current_app, render_template, request
from flask_babel import gettext as _

from ... import audit
from ...assurance import ACR_PHISHING_RESISTANT
from ...context import current_idp
from ...factors import webauthn as wa
from ...storage import db
from ..blueprints import bp
from ..pipeline import first_factor_passed, load
from ..steps.identify import page as email_page


@bp.post("/login/passkey/options")
def passkey_options():
    options = wa.passkey_options()
    resp = current_app.response_class(options, mimetype="application/json")
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/login/passkey")
def passkey_login():
    idp = current_idp()
    flow = load(request.form.get("tx"))
    ip = request.remote_addr
    verdict = idp.throttle.attempt(None, ip)
    if not verdict.allowed:
        audit.record("passkey_login_throttled", outcome="failure", details={"wait_seconds": verdict.wait_seconds})
        db.session.commit()
        resp, status = email_page(flow, email="", status=429, passkey_error=_(
            "Too many failed attempts. Wait %(seconds)d second(s) and try again.", seconds=verdict.wait_seconds))
        return resp, status, {"Retry-After": str(verdict.wait_seconds)}
    try:
        user, factor, amr = wa.verify_passkey(request.form.get("credential"))
    except wa.Refused as exc:
        idp.throttle.failed(None, ip)
        audit.record("passkey_login_failed", outcome="failure", user_id=exc.user_id, details={"reason": exc.reason})
        db.session.commit()
        return email_page(flow, email="", status=exc.status, passkey_error=exc.message)
    idp.throttle.succeeded(None, ip)  # a genuine passkey: not a failure of this IP
    if user.status != "active":
        audit.record("passkey_login_refused", outcome="failure", user_id=user.id, subject=user.email,
                     details={"status": user.status, "factor_id": factor.id})
        db.session.commit()
        if user.status == "locked":
            return render_template("login_locked.html", email=user.email), 403
        return email_page(flow, email="", status=403,
                          passkey_error=_("This account cannot sign in. Ask your administrator for help."))
    return first_factor_passed(flow, user, amr=list(amr), acr=ACR_PHISHING_RESISTANT, password_at=None,
                               both_factors=True, details={"method": "passkey", "factor_id": factor.id})
