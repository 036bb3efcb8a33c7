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

The agreement (scope ``agreements``, or a client that requires one;
docs/agreements.md): the agreement the code will carry is, in this order,
the one chosen on the agreement chooser of this request, the
``agreement_hint`` (its id or organisation number) when the person is a
member, the session's active agreement when they still belong to it and
the app did not send ``prompt=select_account``, or their only one. Prompt
``agreement`` (the chooser) when none of those decides it and they have
several, or ``prompt=select_account`` and nobody signed in since the request
started; with no agreement at all, an app that requires one gets the page
saying so. An agreement that requires a level (``mfa``, ``phr``) above the
session's asks for a step-up like ``acr_values`` does.

Prompt ``select_account``: ``prompt=select_account``, nobody signed in since
the request started, and the chooser not answered yet (for a member of an
agreement with scope ``agreements``, the agreement chooser is the account
chooser).

Prompt ``consent``: the client is not first-party (``skip_consent``) and
``prompt=consent`` or the consent remembered for it lacks a requested scope,
and the consent page of this request not answered yet ("deny" there is
``access_denied``).

They are decided in that order (the agreement after the login checks); the
first one needed is asked. With
``prompt=none`` a needed prompt is an error instead of a page:
``login_required``, ``interaction_required`` (step-up), ``consent_required``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from authlib.oauth2.rfc6749 import AccessDeniedError
from authlib.oidc.core.errors import ConsentRequiredError, InteractionRequiredError, LoginRequiredError

from .. import audit
from ..assurance import ACR_PASSWORD, at_least
from ..browser.interaction import AGREEMENT, CONSENT, LOGIN, SELECT_ACCOUNT, STEP_UP, Interaction
from ..context import current_idp
from ..storage import Membership, SsoSession, db, queries
from .checks.acr import check_acr, wants_more
from .checks.max_age import auth_too_old
from .checks.subject import needs_other_user
from .claims import AGREEMENT_SCOPE
from .request import Authorization


@dataclass
class Situation:
    """What the checks look at: the request, its interaction (if saved), the session."""

    authz: Authorization
    interaction: Interaction | None
    session: SsoSession | None
    now: int
    membership: Membership | None = None  # the agreement the code will carry (decided by ``agreement``)

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

    ix = s.interaction
    needed = agreement(s)
    if needed is not None:
        if silent:
            raise InteractionRequiredError(redirect_uri=redirect_uri)
        return needed

    acr_values = authz.acr_values
    # the agreement's level must be met to work in it (at sign-in and at switching)
    agreement_level = s.membership.agreement.require_acr if s.membership is not None else None
    below = bool(agreement_level) and not at_least(s.session.acr, agreement_level)
    # what the person could reach is looked up only when someone asks for more than the session has
    achievable = (current_idp().handoff.achievable_acr(user) if below or wants_more(s.session.acr, acr_values)
                  else ACR_PASSWORD)
    if below:
        if silent:
            raise InteractionRequiredError(redirect_uri=redirect_uri)
        if not at_least(achievable, agreement_level):  # no factor strong enough: the page says what to do
            return Prompt(AGREEMENT, acr=agreement_level, reasons=("agreement_needs_factor",))
        return Prompt(STEP_UP, acr=agreement_level, reasons=("agreement",))
    wanted = check_acr(s.session.acr, acr_values, authz.essential, achievable, redirect_uri)
    if wanted is not None:
        if silent:
            raise InteractionRequiredError(redirect_uri=redirect_uri)
        return Prompt(STEP_UP, acr=wanted, reasons=("acr",))

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


def agreement(s: Situation) -> Prompt | None:
    """Decide the agreement the code will carry (``s.membership``), or the
    chooser prompt: the rules in the module's header."""
    authz = s.authz
    assert s.session is not None
    if AGREEMENT_SCOPE not in authz.scopes and not authz.client.requires_agreement:
        return None
    members = queries.memberships_of(s.session.user_id)
    if not members:
        return Prompt(AGREEMENT, reasons=("no_agreement",)) if authz.client.requires_agreement else None
    ix = s.interaction
    choosing = "select_account" in authz.prompts and not s.fresh
    by_id = {m.agreement.public_id: m for m in members}
    hinted = next((m for m in members if authz.agreement_hint in (m.agreement.public_id, m.agreement.org_number)),
                  None) if authz.agreement_hint else None
    current = next((m for m in members if m.agreement_id == s.session.agreement_id), None)
    if ix is not None and ix.agreement in by_id:
        s.membership = by_id[ix.agreement]
    elif hinted is not None:
        s.membership = hinted
    elif choosing or (current is None and len(members) > 1):
        return Prompt(AGREEMENT, reasons=("select_account" if choosing else "choose_agreement",))
    else:
        s.membership = current or members[0]
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
