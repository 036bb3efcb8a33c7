"""Step: a required second factor is set up before the sign-in ends.

Rules:
- a user who must have a factor (``MFA_REQUIRED``, ``User.mfa_required``, or
  ``must_enrol_factor`` after an admin-issued code; ``factors.must_have_factor``)
  and has none of their own goes to the two-step verification page in its
  enrolment mode, with the pending sign-in: no SSO session exists until a
  factor is confirmed (``factors/enrolment.py`` marks it done);
- the sign-in then ends with the ``amr`` of both steps and the new factor's
  level (``mfa``, or ``phr`` for a security key or passkey).
"""

from __future__ import annotations

from ... import audit
from ...factors import has_second_factor, must_have_factor
from ..pipeline import DONE, Flow, Outcome, Show


def run(flow: Flow) -> Outcome:
    state = flow.signin
    if not flow.authenticating or state.enrolled or state.step_up or not state.proved_first:
        return DONE
    user = flow.user
    if user is None or not must_have_factor(user):
        return DONE
    if has_second_factor(user) and not user.must_enrol_factor:
        return DONE
    if not state.enrolling:
        state.enrolling = True
        state.touch()
        audit.record("factor_enrolment_required", user_id=user.id)
    return Show("factors.overview", with_tx=False)  # the sign-in it belongs to is in browser/signin.py
