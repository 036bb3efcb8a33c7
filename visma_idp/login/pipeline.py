"""The sign-in: its steps in one ordered table, and the runner.

Each step is a small module in ``login/steps/`` with its rule in its header
comment and one function, ``run(flow) -> Outcome``, answering:

- :data:`DONE`: nothing to do, or done just now; the next step runs;
- :class:`Show`: the person must act on a page (its endpoint, or a page that
  is drawn at the sign-in's own address, ``/authorize/continue``);
- :class:`Refused`: the sign-in cannot go on (the response says why).

When every step is done the sign-in hands back: to the protocol's resume
for a pending authorization (``idp.handoff.resume``: ``oidc/`` decides again
and issues the code), or else to the page that asked or the home page.

Adding a step is one module and one line in :data:`STEPS`; a way in for the
first factor is one module and one line in ``steps/first_factor.py``.

Pages: a page the person must answer comes by a redirect when the browser
has just posted a form (so reloading it never posts a password again), and
in place when the browser asked for it (``in_place``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import redirect, render_template
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from .. import audit
from ..assurance import AMR_MFA
from ..browser import interaction, signin
from ..browser.interaction import LOGIN, STEP_UP, Interaction
from ..browser.signin import SignIn
from ..browser.sso import current_session
from ..context import current_idp, request_state
from ..storage import SsoSession, User, db
from ..urls import safe_next

CONTINUE = "login.continue_signin"  # /authorize/continue: where the sign-in picks up


class _Done:
    def __repr__(self) -> str:
        return "DONE"


DONE: Any = _Done()


@dataclass(frozen=True)
class Show:
    """The person acts on a page: ``endpoint`` (a page at its own address, reached
    by a redirect), or ``render`` (a page drawn at the sign-in's own address,
    ``/authorize/continue``: in place when the browser asked for that address)."""

    endpoint: str | None = None
    render: Callable[[Flow], Any] | None = None
    values: dict[str, Any] = field(default_factory=dict)
    in_place: bool = False  # draw ``render`` in this response whatever it answers
    with_tx: bool = True  # the page takes the interaction's ``tx`` (the sign-in's own pages do)


@dataclass(frozen=True)
class Refused:
    response: Any


Outcome = Any  # DONE | Show | Refused


@dataclass
class Flow:
    """One request's view of the sign-in: the typed state, the pending
    authorization it serves (if any), and the browser's SSO session."""

    signin: SignIn
    interaction: Interaction | None
    _user: User | None = None

    @property
    def tx(self) -> str | None:
        return self.interaction.id if self.interaction is not None else None

    @property
    def session(self) -> SsoSession | None:
        return current_session()

    @property
    def user(self) -> User | None:
        """Who passed the first factor (None before); an inactive account is nobody."""
        if self._user is None and self.signin.user_id is not None:
            user = db.session.get(User, self.signin.user_id)
            if user is None or user.status != "active":
                self.signin.reset()
                return None
            self._user = user
        return self._user

    @property
    def authenticating(self) -> bool:
        """Whether this sign-in is about who the person is (no app waits, or the
        app asked for a sign-in or a step-up), rather than an account choice or consent."""
        ix = self.interaction
        return ix is None or ix.prompt in (LOGIN, STEP_UP)


def load(tx_id: str | None = None, *, own: bool = True) -> Flow:
    """The flow of this request: the interaction named by ``tx_id`` (else, with
    ``own``, the one the sign-in already serves), and the sign-in, which from
    now on serves that interaction. A sign-in begun for another interaction
    starts over; one whose interaction expired meanwhile keeps what was proved
    (it ends on the home page)."""
    state = signin.current()
    ix = interaction.get(tx_id) if tx_id else None
    if ix is None and own and state.tx:
        ix = interaction.get(state.tx)
    if ix is not None and state.tx != ix.id:
        if not state.established:
            state.finished()  # a sign-in begun for another request does not carry over
        state.tx = ix.id
    elif ix is None and state.tx:
        state.tx = None
    return Flow(state, ix)


def _steps():
    from .steps import STEPS

    return STEPS


def advance(flow: Flow, *, in_place: bool) -> ResponseReturnValue:
    """Run the steps in order; answer with the first page someone must act on,
    a refusal, or (all done) the hand-back."""
    for step in _steps():
        outcome = step.run(flow)
        if outcome is DONE:
            continue
        db.session.commit()  # what the steps wrote (audit rows, flags) before the page
        if isinstance(outcome, Refused):
            return outcome.response
        if outcome.endpoint is not None:
            tx = flow.tx if outcome.with_tx else None
            return redirect(current_idp().url(outcome.endpoint, tx=tx, **outcome.values))
        if in_place or outcome.in_place:
            return outcome.render(flow)
        return redirect(current_idp().url(CONTINUE, tx=flow.tx))
    return _hand_back(flow, in_place=in_place)


def _cannot_finish():
    return render_template("error.html", title=_("This sign-in has expired"),
                           message=_("Go back to the application and start the sign-in again.")), 400


def _hand_back(flow: Flow, *, in_place: bool) -> ResponseReturnValue:
    state = request_state()
    state.handbacks += 1
    ix = flow.interaction
    next_url = flow.signin.next
    if flow.signin.established:
        flow.signin.finished()
    if ix is not None:
        if state.handbacks > 3:  # the protocol keeps asking for what the steps say is done: stop, never loop
            audit.record("signin_loop_stopped", outcome="failure", details={"prompt": ix.prompt})
            db.session.commit()
            return _cannot_finish()
        return current_idp().handoff.resume(ix.id, in_place=in_place)
    db.session.commit()
    return redirect(safe_next(next_url) or current_idp().url("login.home"))


def sign_in(ix: Interaction, *, in_place: bool) -> ResponseReturnValue:
    """The protocol hands over a pending authorization (``idp.handoff.sign_in``):
    start or go on with the sign-in it asks for."""
    flow = load(ix.id)
    sess = current_session()
    state = flow.signin
    if ix.prompt == STEP_UP and sess is not None and not (state.step_up and state.want == ix.acr):
        # the signed-in person raises the session's level: no password again
        state.first_factor(sess.user, amr=list(sess.amr or []), acr=sess.acr, password_at=sess.password_at)
        state.step_up, state.want = True, ix.acr
        audit.record("step_up_started", user_id=sess.user_id, details={"acr": ix.acr})
    elif ix.prompt == LOGIN and (state.established or state.step_up):
        state.finished()  # a sign-in that ended (or a step-up) does not count for a new login
    return advance(flow, in_place=in_place)


def continue_signin() -> ResponseReturnValue:
    """Go on with this browser's sign-in (``idp.handoff.continue_signin``: a page
    outside the sign-in, such as setting up a required factor, did its part)."""
    return advance(load(), in_place=False)


def first_factor_passed(flow: Flow, user: User, *, amr: list[str], acr: str, password_at: int | None,
                        both_factors: bool = False, details: dict[str, Any] | None = None) -> ResponseReturnValue:
    """A way in (password, passkey, one-time link) proved who the person is
    (``both_factors``: a passkey proves the second factor too): the sign-in
    goes on from there (the second step, enrolment, the session)."""
    user_id, subject = user.id, flow.signin.email or user.email  # read before advance() may end the sign-in
    flow.signin.first_factor(user, amr=amr, acr=acr, password_at=password_at)
    if both_factors:
        flow.signin.second_factor(amr=[AMR_MFA], acr=acr)
    flow.signin.details = dict(details or {})
    flow._user = user
    response = advance(flow, in_place=False)
    if not flow.signin.established and flow.signin.user_id == user_id:
        # the sign-in waits on a further step: the first one is on record
        audit.record("first_factor_passed", user_id=user_id, subject=subject, details={"amr": amr, **(details or {})})
        db.session.commit()
    return response
