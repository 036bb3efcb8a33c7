"""What a validated authorization request still needs before a code is
issued: the prompts, each decided by named checks (node-oidc-provider's
"policy").

Prompt ``login`` (the person signs in), when any of these checks holds:
- ``no_session``: the browser has no live SSO session;
- ``other_account``: the person chose "Use another account" on the account
  chooser of this request and has not signed in since;
- ``prompt_login``: ``prompt=login`` and nobody signed in since the request
  started (``checks/prompt.py``);
- ``max_age``: the session's sign-in is older than ``max_age`` seconds and
  older than the request (``checks/max_age.py``);
- ``named_user``: the request names a user (``id_token_hint``, a ``claims``
  ``sub`` value) other than the signed-in one, who signed in before the
  request (``checks/subject.py``; someone else signing in for the request
  is an error, ``login_required``).

Prompt ``step_up`` (the signed-in person passes a stronger step, without
the password), when ``acr_values`` or an essential ``acr`` claim asks for
more than the session has and the person has a way to reach it
(``checks/acr.py``; an essential level nobody can reach is
``unmet_authentication_requirements``).

Prompt ``select_account``: ``prompt=select_account``, nobody signed in since
the request started, and the chooser not answered yet.

Prompt ``consent``: the client is not first-party (``skip_consent``) and
``prompt=consent`` or the consent remembered for it lacks a requested scope,
and the consent page of this request not answered yet ("deny" there is
``access_denied``).

They are decided in that order; the first one needed is asked. With
``prompt=none`` a needed prompt is an error instead of a page:
``login_required``, ``interaction_required`` (step-up), ``consent_required``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from authlib.oauth2.rfc6749 import AccessDeniedError
from authlib.oidc.core.errors import ConsentRequiredError, InteractionRequiredError, LoginRequiredError

from .. import audit
from ..assurance import ACR_PASSWORD
from ..browser.interaction import CONSENT, LOGIN, SELECT_ACCOUNT, STEP_UP, Interaction
from ..context import current_idp
from ..storage import SsoSession, db, queries
from .checks.acr import check_acr, wants_more
from .checks.max_age import auth_too_old
from .checks.subject import needs_other_user
from .request import Authorization


@dataclass
class Situation:
    """What the checks look at: the request, its interaction (if saved), the session."""

    authz: Authorization
    interaction: Interaction | None
    session: SsoSession | None
    now: int

    @property
    def fresh(self) -> bool:
        """Someone signed in after this request started."""
        ix = self.interaction
        return self.session is not None and ix is not None and self.session.auth_time >= ix.created


@dataclass(frozen=True)
class Prompt:
    """Something the browser must do first: ``name`` (``browser.interaction`` constants) and,
    for a step-up, the ``acr`` to reach."""

    name: str
    acr: str | None = None
    reasons: tuple[str, ...] = ()


# -- the login checks: each answers "must the person sign in?" ----------------------------


def no_session(s: Situation) -> bool:
    return s.session is None


def other_account(s: Situation) -> bool:
    return s.interaction is not None and s.interaction.account == "other" and not s.fresh


def prompt_login(s: Situation) -> bool:
    return "login" in s.authz.prompts and not s.fresh


def max_age(s: Situation) -> bool:
    assert s.session is not None
    return not s.fresh and auth_too_old(s.session.auth_time, s.authz.max_age, s.now)


def named_user(s: Situation) -> bool:
    assert s.session is not None
    try:
        return needs_other_user(s.authz.named_sub, s.session.user.sub, fresh=s.fresh,
                                redirect_uri=s.authz.redirect_uri)
    except LoginRequiredError:
        audit.record("authorization_refused", outcome="failure", user_id=s.session.user_id,
                     client_id=s.authz.client.client_id,
                     details={"error": "login_required", "reason": "not the user the request names"})
        db.session.commit()
        raise


LOGIN_CHECKS: tuple[Callable[[Situation], bool], ...] = (no_session, other_account, prompt_login, max_age, named_user)


def decide(s: Situation) -> Prompt | None:
    """The first prompt the request still needs, or None when a code may be issued.

    Raises:
        OAuth2Error: ``login_required``, ``interaction_required``,
            ``consent_required`` (``prompt=none``), ``access_denied`` (consent
            denied), ``unmet_authentication_requirements``, or ``login_required``
            for the wrong user signed in.
    """
    authz = s.authz
    prompts, redirect_uri = authz.prompts, authz.redirect_uri
    silent = "none" in prompts
    reasons = []
    for check in LOGIN_CHECKS:
        if check(s):
            reasons.append(check.__name__)
            break  # the later checks read the session the first ones proved present
    if reasons:
        if silent:
            raise LoginRequiredError(redirect_uri=redirect_uri)
        return Prompt(LOGIN, reasons=tuple(reasons))
    assert s.session is not None
    user = s.session.user

    acr_values = authz.acr_values
    # what the person could reach is looked up only when an app asks for more than the session has
    achievable = (current_idp().handoff.achievable_acr(user) if wants_more(s.session.acr, acr_values)
                  else ACR_PASSWORD)
    wanted = check_acr(s.session.acr, acr_values, authz.essential, achievable, redirect_uri)
    if wanted is not None:
        if silent:
            raise InteractionRequiredError(redirect_uri=redirect_uri)
        return Prompt(STEP_UP, acr=wanted, reasons=("acr",))

    ix = s.interaction
    if "select_account" in prompts and not s.fresh and not (ix is not None and ix.account == "continue"):
        return Prompt(SELECT_ACCOUNT, reasons=("prompt_select_account",))

    if consent_needed(s):
        answer = ix.consent if ix is not None else None
        if answer == "deny":
            raise AccessDeniedError(redirect_uri=redirect_uri)
        if answer != "allow":
            if silent:
                raise ConsentRequiredError(redirect_uri=redirect_uri)
            return Prompt(CONSENT, reasons=("consent",))
    return None


def consent_needed(s: Situation) -> bool:
    client = s.authz.client
    if client.skip_consent:  # first-party clients never ask, so they need no look-up
        return False
    if "consent" in s.authz.prompts:
        return True
    assert s.session is not None
    row = queries.consent_for(s.session.user_id, client.client_id)
    return row is None or not set(s.authz.scopes) <= set(row.scopes)
