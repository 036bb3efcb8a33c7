"""Way in: a one-time login link from the mailbox (``/login/link/<token>``).

Rules:
- "forgot password" mails it beside the reset link (``account/recovery.py``):
  single use, ``RESET_LIFETIME``, stored as a digest; using it voids the
  reset link;
- the link's page asks for a button press (a POST with CSRF), so a mail
  scanner that opens links does not use it up;
- it proves the first factor only (``amr`` ``email``): everything after the
  password still applies, the second step included;
- a pending authorization started at an app rides along in the link's
  stored data and resumes when the link is opened in the browser that holds
  it (it is ignored elsewhere);
- an account not yet activated, or locked, is refused with its own page.
"""

from __future__ import annotations

from flask import render_template, request

from ... import audit
from ...account import tokens
from ...account.activation import link_invalid_page, open_link, refused
from ...assurance import ACR_PASSWORD, AMR_EMAIL_LINK
from ...notify import messages
from ...storage import db
from ..blueprints import bp
from ..pipeline import first_factor_passed, load


def _refuse_sign_in(user):
    """A page when this (active) account may not sign in with a link, else None."""
    if user.status == "pending":
        return link_invalid_page("pending", "login_link", user.id)
    if user.locked_at is not None:
        if request.method == "POST":
            audit.record("link_refused", outcome="failure", user_id=user.id,
                         details={"kind": "login_link", "reason": "locked"})
            db.session.commit()
        return render_template("login_locked.html", email=user.email), 403
    return None


@bp.route("/login/link/<token>", methods=["GET", "POST"])
def link(token: str):
    user, not_live = open_link(token, tokens.LOGIN_LINK)
    if not_live is not None:
        return not_live
    not_allowed = _refuse_sign_in(user)
    if not_allowed is not None:
        return not_allowed
    if request.method == "GET":
        return render_template("login_link.html", token=token, user=user)
    try:
        row = tokens.redeem(token, (tokens.LOGIN_LINK,))
    except tokens.LinkInvalid as exc:
        return refused(exc, "login_link")
    tokens.void(user.id, (tokens.RESET,))
    messages.queue("login_link_used", to=user.email, user=user, ip=request.remote_addr or "")
    audit.record("login_link_used", user_id=user.id, subject=user.email)
    tx = (row.data or {}).get("tx")
    flow = load(tx if isinstance(tx, str) and len(tx) <= 64 else None, own=False)
    return first_factor_passed(flow, user, amr=[AMR_EMAIL_LINK], acr=ACR_PASSWORD, password_at=None,
                               details={"via": "login_link"})
