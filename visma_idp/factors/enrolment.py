"""What happens after a factor is confirmed or removed, whatever its kind.

Rules:
- a confirmed factor is audited (``factor_added``), told to the user by email
  (always: a security change), and voids "remember this browser";
- the first factor brings the user's recovery codes, shown once right away;
- during a pending sign-in that had to enrol a factor, confirming it marks
  the sign-in's enrolment done (``browser/signin.py``); after the recovery
  codes, if any, the sign-in goes on (``idp.handoff.continue_signin``) and
  ends (with ``amr`` of both steps);
- a removed factor is audited (``factor_removed``) and told by email too.
"""

from __future__ import annotations

from flask import redirect, render_template

from .. import audit
from ..browser import signin
from ..context import current_idp
from ..notify import messages
from . import Verified, factor_touched


def after_enrolment(user, factor, verified: Verified):
    """The response after ``factor`` was confirmed (the caller has set
    ``factor.confirmed_at``). Commits."""
    from ..storage import db
    from .recovery_codes import first_codes

    factor_touched(user)
    audit.record("factor_added", user_id=user.id, details={"kind": factor.kind, "factor_id": factor.id})
    messages.queue("factor_changed", to=user.email, user=user, action="added", factor_kind=factor.kind,
                   factor_name=factor.name)
    codes = first_codes(user)
    state = signin.current()
    if state.enrolling and state.user_id == user.id and not state.enrolled:
        state.factor_enrolled(amr=verified.amr, phishing_resistant=verified.phishing_resistant)
    db.session.commit()
    if codes:
        return render_template("recovery_codes_new.html", user=user, codes=codes, first=True,
                               continue_url=current_idp().url("factors.continue_after_enrolment"))
    return continue_after_enrolment_response(user)


def continue_after_enrolment_response(user):
    """Go on with a pending sign-in whose factor is now enrolled (the sign-in
    picks up at its own address), or back to the overview."""
    state = signin.current()
    if state.enrolled and state.user_id == user.id and not state.established:
        return current_idp().handoff.continue_signin()
    return redirect(current_idp().url("factors.overview"))


def after_removal(user, factor) -> None:
    """Audit and tell a removed factor; the caller deletes the row and commits."""
    factor_touched(user)
    audit.record("factor_removed", user_id=user.id, details={"kind": factor.kind, "factor_id": factor.id})
    messages.queue("factor_changed", to=user.email, user=user, action="removed", factor_kind=factor.kind,
                   factor_name=factor.name)
