"""Step: the single sign-on session starts.

Rules:
- once every step before it is done, the person is signed in: a new SSO
  session (``browser/sso.py``: a new id, the old one ended) with the ``amr``
  and ``acr`` the steps proved, ``auth_time`` now, and the time of the
  password if it was typed; audited as ``login_succeeded`` with the way in;
- "remember this browser" is written now, if it was asked for and allowed;
- a notice the person must read (a recovery code was used: how many are
  left) is shown once, on a page of its own, whose button carries on; the
  authorization resumes only then, so no code waits while they read.
"""

from __future__ import annotations

from flask import render_template

from ... import audit
from ...assurance import ACR_PASSWORD
from ...browser.sso import start_session
from ...context import current_idp
from ...urls import safe_next
from ..pipeline import CONTINUE, DONE, Flow, Outcome, Show
from ..remember import remember


def run(flow: Flow) -> Outcome:
    state = flow.signin
    if not flow.authenticating or not state.proved_first:
        return DONE
    if not state.established:
        user = flow.user
        if user is None:
            return DONE
        start_session(user, amr=list(state.amr), acr=state.acr or ACR_PASSWORD, password_at=state.password_at)
        if state.remember:
            remember(user)
        audit.record("login_succeeded", user_id=user.id, subject=user.email,
                     details={"amr": list(state.amr), **state.details})
        state.established = True
    if state.notice:
        return Show(render=_notice, in_place=True)
    return DONE


def _notice(flow: Flow):
    state = flow.signin
    message, about, state.notice, state.notice_about = state.notice, state.notice_about, None, None
    idp = current_idp()
    if flow.interaction is not None:
        onward = idp.url(CONTINUE, tx=flow.tx)
    else:
        onward = safe_next(state.next) or idp.url("login.home")
        state.finished()
    return render_template("login/notice.html", message=message, onward=onward, about=about)
