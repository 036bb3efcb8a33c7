"""The admin pages: one-time codes for users who lost their second factor.

``/admin/one-time-codes`` (GET: the form; POST: issue a code).

Rules:
- only a signed-in admin holding ``issue_one_time_codes`` for at least one
  domain sees the page; anyone else signed in gets a 403 page, and the
  attempt is audited (``one_time_code_refused``, reason ``no_right``);
- issuing for someone outside the admin's domains (or themselves) is
  refused with 403 and audited, see ``one_time_codes.py``;
- like enrolling a factor, issuing needs the admin's password entered within
  ``RECENT_PASSWORD_SECONDS``;
- the code is shown once, in the answer to the POST (HTML answers are
  ``Cache-Control: no-store``); it is never kept in the session;
- the form posts the CSRF token and is subject to the Origin check.
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request

from .. import addresses, audit
from ..account import activity
from ..browser.sso import current_session
from ..context import current_idp
from ..storage import db
from . import rights
from .one_time_codes import IssuedCode, IssueRefused, issue_for_email

bp = Blueprint("admin", __name__)



def _page(admin, held: list[str], *, status: int = 200, email: str = "", error: str | None = None,
          issued: IssuedCode | None = None):
    zone = activity.user_zone(admin)
    shown = None
    if issued is not None:
        shown = {
            "code": issued.code, "email": issued.target.email,
            "until": activity.format_time(issued.expires_at, zone), "until_iso": activity.iso_time(issued.expires_at),
            "zone": activity.zone_name(zone),
        }
    minutes = max(1, current_idp().settings["ONE_TIME_CODE_LIFETIME"] // 60)
    return render_template("admin_one_time_codes.html", admin=admin, domains=held, email=email, error=error,
                           issued=shown, minutes=minutes), status


@bp.route("/admin/one-time-codes", methods=["GET", "POST"])
def one_time_codes():
    from ..factors.views import require_recent_password

    idp = current_idp()
    sess = current_session()
    if sess is None:
        return redirect(idp.url("login.email"), 303 if request.method == "POST" else 302)
    admin = sess.user
    held = rights.domains(admin, rights.ISSUE_ONE_TIME_CODES)
    if not held:
        typed = addresses.as_typed(request.form.get("email")) if request.method == "POST" else None
        audit.record("one_time_code_refused", outcome="failure", user_id=admin.id, subject=typed,
                     details={"reason": "no_right", "via": "page"})
        db.session.commit()
        return render_template("admin_forbidden.html"), 403
    confirm = require_recent_password(sess, "/admin/one-time-codes")
    if confirm is not None:
        confirm.status_code = 303 if request.method == "POST" else 302
        return confirm
    if request.method == "GET":
        return _page(admin, held)
    email = (request.form.get("email") or "")[:320]
    try:
        issued = issue_for_email(admin, email, via="page")
    except IssueRefused as exc:
        db.session.commit()  # the refusal's audit row
        return _page(admin, held, status=exc.status, email=email, error=exc.message)
    db.session.commit()
    return _page(admin, held, issued=issued)
