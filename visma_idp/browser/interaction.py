"""An authorization request waiting for the sign-in (an *interaction*).

``oidc/`` validates an authorization request once, and when the browser
must do something first (sign in, step up, choose an account, consent) it
saves the request here and hands over to the sign-in with the interaction's
id (``tx`` in URLs). The sign-in (``login/``) reads what is asked of it
(:attr:`Interaction.prompt`), writes what the person answered
(:attr:`Interaction.account`, :attr:`Interaction.consent`), and hands back to
``oidc/``'s resume, which decides again and issues the code. Neither side
imports the other: this record is what they share.

Rules:
- interactions live in the signed session cookie (``cookies.STATE``), keyed
  by a random id, at most ``MAX_PENDING`` at a time and at most
  ``BUDGET`` characters together: older ones give way, so a request with huge
  parameters (a link on someone else's page) cannot push the cookie past the
  ~4 KB browsers keep and break every later sign-in in that browser;
- an interaction lives at most ``MAX_AGE`` (an hour);
- only ``oidc/`` creates them, and only for a request it has validated
  (client, exact redirect URI, PKCE, parameters): what is stored can be
  trusted as far as that validation goes, and the cookie's signature keeps it
  so (``security.py`` names the stored redirect URIs' origins in the page's
  ``form-action``).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import session

from ..context import current_idp

KEY = "tx"
MAX_PENDING = 5
BUDGET = 2400  # JSON characters for all pending interactions (the cookie must stay under 4 KB)
MAX_AGE = 3600  # a pending request is worth at most an hour

# what oidc asks of the sign-in
LOGIN = "login"  # sign in (again)
STEP_UP = "step_up"  # the signed-in person reaches ``acr`` (a stronger second step, no password)
SELECT_ACCOUNT = "select_account"
AGREEMENT = "agreement"  # choose the agreement (company) to work in, or be told there is none
CONSENT = "consent"


@dataclass
class Interaction:
    """One pending authorization request.

    Attributes:
        id: random, in the ``tx`` parameter of the sign-in's URLs.
        params: the authorization request's parameters as the app sent them.
        created: when it started (a sign-in after it satisfies ``prompt=login``
            and ``max_age``).
        prompt: what ``oidc/`` asks of the sign-in at its last hand-over
            (:data:`LOGIN`, :data:`STEP_UP`, :data:`SELECT_ACCOUNT`, :data:`CONSENT`), or None.
        acr: with :data:`STEP_UP`, the level the app wants.
        account: the answer on the account chooser: ``continue`` or ``other``.
        consent: the answer on the consent page: ``allow`` or ``deny``.
        agreement: the agreement chosen on the chooser (its public id).
    """

    id: str
    params: dict[str, str]
    created: int
    prompt: str | None = None
    acr: str | None = None
    account: str | None = None
    agreement: str | None = None
    consent: str | None = None

    @property
    def client_id(self) -> str | None:
        return self.params.get("client_id")

    @property
    def redirect_uri(self) -> str | None:
        return self.params.get("redirect_uri")

    def _as_stored(self) -> dict[str, Any]:
        data: dict[str, Any] = {"p": self.params, "c": self.created}
        for key, value in (("pr", self.prompt), ("a", self.acr), ("ac", self.account), ("co", self.consent),
                           ("ag", self.agreement)):
            if value is not None:
                data[key] = value
        return data

    @classmethod
    def _from_stored(cls, tx_id: str, data: dict[str, Any]) -> Interaction:
        return cls(id=tx_id, params=dict(data.get("p") or {}), created=int(data.get("c") or 0),
                   prompt=data.get("pr"), acr=data.get("a"), account=data.get("ac"), consent=data.get("co"),
                   agreement=data.get("ag"))


def _all() -> dict[str, Any]:
    stored = session.get(KEY)
    return stored if isinstance(stored, dict) else {}


def _size(items: dict[str, Any]) -> int:
    return len(json.dumps(items, separators=(",", ":")))


def new(params: dict[str, str]) -> Interaction:
    """Save a validated authorization request; older ones give way to the budget."""
    now = current_idp().clock.now()
    items = {k: v for k, v in _all().items() if isinstance(v, dict) and now - int(v.get("c") or 0) <= MAX_AGE}
    ix = Interaction(id=secrets.token_urlsafe(12), params=dict(params), created=now)
    items[ix.id] = ix._as_stored()
    while len(items) > 1 and (len(items) > MAX_PENDING or _size(items) > BUDGET):
        oldest = min((k for k in items if k != ix.id), key=lambda k: items[k].get("c") or 0)
        items.pop(oldest)
    session[KEY] = items
    return ix


def get(tx_id: str | None) -> Interaction | None:
    """The live interaction ``tx_id`` of this browser, or None."""
    if not tx_id or not isinstance(tx_id, str):
        return None
    data = _all().get(tx_id)
    if not isinstance(data, dict):
        return None
    ix = Interaction._from_stored(tx_id, data)
    if current_idp().clock.now() - ix.created > MAX_AGE:
        drop(tx_id)
        return None
    return ix


def save(ix: Interaction) -> None:
    """Store what changed (the prompt, an answer); nothing if it has been dropped meanwhile."""
    items = dict(_all())
    if ix.id in items:
        items[ix.id] = ix._as_stored()
        session[KEY] = items


def drop(tx_id: str | None) -> None:
    items = dict(_all())
    if tx_id and items.pop(tx_id, None) is not None:
        session[KEY] = items


def pending_redirect_uris() -> list[str]:
    """Where this browser's pending sign-ins will return: the redirect URI each
    request named, or its client's only registered one (``security.py`` names
    their origins in ``form-action``)."""
    if KEY not in session:
        return []
    uris = []
    for data in _all().values():
        params = data.get("p") if isinstance(data, dict) else None
        if not isinstance(params, dict):
            continue
        uri = params.get("redirect_uri")
        if not uri and isinstance(params.get("client_id"), str):
            client = current_idp().clients.get(params["client_id"])
            uri = client.get_default_redirect_uri() if client is not None else None
        if isinstance(uri, str) and uri:
            uris.append(uri)
    return uris


def _not_registered(*_args, **_kwargs):
    raise RuntimeError("the sign-in and the protocol register their halves of the hand-over at init_app")


@dataclass
class Handoff:
    """The two halves of the hand-over, registered at start-up, so that neither
    side imports the other (``IdentityProvider.handoff``).

    Attributes:
        sign_in: ``login/`` takes over interaction ``ix`` (``in_place``: a page
            may be drawn in this response; else it comes by a redirect);
            returns the response.
        resume: ``oidc/`` takes interaction ``tx_id`` back: decides again,
            issues the code or hands over the next prompt.
        continue_signin: ``login/`` goes on with the sign-in in progress (after
            a page outside it, such as setting up a required factor, did its part).
        achievable_acr: the highest level a user could reach with their
            factors (the protocol asks before a step-up).
    """

    sign_in: Callable[..., Any] = _not_registered
    resume: Callable[..., Any] = _not_registered
    continue_signin: Callable[[], Any] = _not_registered
    achievable_acr: Callable[[Any], str] = _not_registered


def ui_locales(tx_id: str | None) -> str | None:
    """The ``ui_locales`` of interaction ``tx_id`` (the language selection reads it)."""
    ix = get(tx_id)
    return ix.params.get("ui_locales") if ix is not None else None
