"""Recovery codes on My details: how many are left, and new ones.

Rules:
- codes are stored as digests, so they cannot be shown again: the page
  (``/account/security/recovery``) says how many are left and offers new
  ones; it and the regeneration need a recent password (like viewing codes);
- ``POST`` makes ten new codes, voids every older one, shows the new ones
  once (with a download as a text file), audits and emails the user;
- codes only exist alongside a factor: without one the page says so (409).
"""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_babel import gettext as _

from .. import audit
from ..context import current_idp
from ..notify import messages
from ..storage import db
from . import has_second_factor, recovery_codes
from .views import gate

bp = Blueprint("recovery", __name__)

PAGE_PATH = "/account/security/recovery"



@bp.app_template_global("recovery_codes_left")
def recovery_codes_left(user) -> int:
    """How many unused recovery codes ``user`` has (for the overview)."""
    return recovery_codes.remaining(user)


def _page(user, sess, *, error: str | None = None, status: int = 200):
    return render_template("recovery_codes.html", user=user, enrol_mode=sess is None,
                           left=recovery_codes.remaining(user), has_factor=has_second_factor(user),
                           error=error), status


@bp.get(PAGE_PATH)
def page():
    user, sess, back = gate(PAGE_PATH)
    if back is not None:
        return back
    return _page(user, sess)


@bp.post(PAGE_PATH)
def regenerate():
    user, sess, back = gate(PAGE_PATH)
    if back is not None:
        return back
    if not has_second_factor(user):
        return _page(user, sess, status=409,
                     error=_("Recovery codes come with a way to confirm your sign-in. Set one up first."))
    codes = recovery_codes.generate(user)
    audit.record("recovery_codes_created", user_id=user.id, details={"count": len(codes), "first": False})
    messages.queue("recovery_codes_changed", to=user.email, user=user)
    db.session.commit()
    return render_template("recovery_codes_new.html", user=user, codes=codes, first=False,
                           continue_url=current_idp().url("factors.overview"))
