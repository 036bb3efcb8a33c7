"""The sign-in in progress in this browser: one typed object.

It says who is signing in and what they have proved so far; the steps of
``login/pipeline.py`` read it to decide what comes next, and the pages that
take part in a sign-in without being in ``login/`` (factor enrolment in
``factors/``, the confirm-password page) read and write it through the
methods here. It is loaded once per request (:func:`current`) and saved once,
after the request, if it changed (:func:`save_if_changed`, an after-request
hook), in the signed session cookie (``cookies.STATE``) under one key.

Rules:
- what a person typed on the email page (:attr:`SignIn.email`) is kept for
  the next visit of the sign-in pages until they sign out;
- everything proved (a first factor, a second one) expires
  ``PENDING_LIFETIME`` seconds after the last step; then the sign-in starts
  again at the email page;
- a finished sign-in forgets all but the email (:meth:`SignIn.finished`);
- nothing secret is kept: user ids, amr values, times.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from flask import session

from ..context import UNSET, current_idp, request_state

KEY = "signin"
PENDING_LIFETIME = 600  # seconds between the first factor and the end of the sign-in


@dataclass
class SignIn:
    """Who is signing in, what they proved, and what is still wanted.

    Attributes:
        email: the address typed on the email page (kept for the next visit).
        identified: the email page was answered in this sign-in.
        tx: the interaction (pending authorization) this sign-in serves, if any.
        user_id: who passed the first factor (None before).
        amr: what they proved, in order (RFC 8176 values).
        acr: the level reached so far (``assurance.LADDER``).
        password_at: when the password was last entered (the recent-password rule).
        want: the level an app asks for (a step-up), or None.
        step_up: the browser is signed in already and only raises its level.
        second_done: the second step is passed, or was found not needed.
        remember: pass the second step once more without asking ("remember
            this browser" was ticked on its page).
        enrolling: a required factor is being set up (``factors/`` pages may
            act for :attr:`user_id` though nobody is signed in).
        enrolled: the required factor is set up.
        established: the SSO session of this sign-in has started.
        notice: a message to show once, right after the session started.
        notice_about: what the notice is about (``recovery``: it offers new
            recovery codes; ``linked``: a sign-in was linked).
        next: where to go when no app waits (a path of ours).
        details: what the audit row of the finished sign-in says of the way in.
        pending_link: an upstream identity or a national identity number waiting
            to be linked to the account this sign-in proves with its password
            (``login/steps/link_identity.py``; a number only encrypted).
        at: when the last step was passed (epoch seconds).
    """

    email: str | None = None
    identified: bool = False
    tx: str | None = None
    user_id: int | None = None
    amr: list[str] = field(default_factory=list)
    acr: str | None = None
    password_at: int | None = None
    want: str | None = None
    step_up: bool = False
    second_done: bool = False
    remember: bool = False
    enrolling: bool = False
    enrolled: bool = False
    established: bool = False
    notice: str | None = None
    notice_about: str | None = None
    next: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    pending_link: dict[str, Any] | None = None
    at: int = 0

    # -- what the steps and the pages ask --------------------------------------------
    @property
    def proved_first(self) -> bool:
        return self.user_id is not None

    def add_amr(self, *values: str) -> None:
        self.amr = list(dict.fromkeys([*self.amr, *values]))

    def touch(self) -> None:
        self.at = current_idp().clock.now()

    def first_factor(self, user, *, amr: list[str], acr: str | None, password_at: int | None) -> None:
        """``user`` passed a first factor: a sign-in for them starts afresh."""
        email, identified, tx, nxt, pending = self.email, self.identified, self.tx, self.next, self.pending_link
        self.reset()
        self.email, self.identified, self.tx, self.next, self.pending_link = email, identified, tx, nxt, pending
        self.user_id = user.id
        self.amr = list(amr)
        self.acr = acr
        self.password_at = password_at
        self.touch()

    def second_factor(self, *, amr: tuple[str, ...] | list[str], acr: str) -> None:
        """The second step was passed (or a factor was set up in its place)."""
        self.add_amr(*amr)
        self.acr = acr
        self.second_done = True
        self.touch()

    def factor_enrolled(self, *, amr: tuple[str, ...] | list[str], phishing_resistant: bool) -> None:
        """The factor this sign-in had to set up is confirmed (``factors/enrolment.py``)."""
        from ..assurance import ACR_MFA, ACR_PHISHING_RESISTANT, AMR_MFA

        self.second_factor(amr=[*amr, AMR_MFA], acr=ACR_PHISHING_RESISTANT if phishing_resistant else ACR_MFA)
        self.enrolled = True
        self.details = {"enrolled": True}

    def reset(self) -> None:
        """Forget everything, the email included."""
        for f in fields(self):
            setattr(self, f.name, f.default if f.default_factory is MISSING else f.default_factory())

    def finished(self) -> None:
        """The sign-in is over: keep only the email, for the next visit."""
        email = self.email
        self.reset()
        self.email = email


def _load() -> SignIn:
    data = session.get(KEY)
    known = {f.name for f in fields(SignIn)}
    signin = SignIn(**{k: v for k, v in data.items() if k in known}) if isinstance(data, dict) else SignIn()
    if signin.user_id is not None and current_idp().clock.now() - signin.at > PENDING_LIFETIME:
        signin.finished()  # what was proved has expired; the typed address stays
    return signin


_FIELDS = tuple((f.name, f.default if f.default_factory is MISSING else f.default_factory()) for f in fields(SignIn))


def _stored(signin: SignIn) -> dict[str, Any]:
    """What differs from an empty sign-in (copies: the stored dict must not change with the object)."""
    out: dict[str, Any] = {}
    for name, default in _FIELDS:
        value = getattr(signin, name)
        if value != default:
            out[name] = list(value) if isinstance(value, list) else dict(value) if isinstance(value, dict) else value
    return out


def current() -> SignIn:
    """This browser's sign-in in progress (an empty one when there is none)."""
    state = request_state()
    if state.signin is UNSET:
        loaded = _load()
        state.signin = loaded
        state.signin_stored = _stored(loaded)
    return state.signin


def save_if_changed(response):
    """after_request: store the sign-in in the session cookie if it changed."""
    state = request_state()
    if state.signin is not UNSET:
        now = _stored(state.signin)
        if now != state.signin_stored:
            if now:
                session[KEY] = now
            else:
                session.pop(KEY, None)
    return response


def forget() -> None:
    """Sign-out: nothing of a sign-in stays in this browser."""
    current().reset()


def acting_user_id() -> int | None:
    """The user a pending sign-in lets the factor pages act for: one who must
    set up a factor before the sign-in can end (nobody is signed in yet)."""
    signin = current()
    return signin.user_id if signin.enrolling and not signin.enrolled else None
