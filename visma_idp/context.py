"""The provider of the current app, and what one request keeps about itself.

Every module reaches the provider through :func:`current_idp` (not through
``current_app.extensions`` in its own words), and keeps per-request facts in
:func:`request_state`, one typed object on ``flask.g``: the names are checked
by mypy, and this is the one place that lists them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import current_app, g

if TYPE_CHECKING:
    from . import IdentityProvider


def current_idp() -> IdentityProvider:
    """The :class:`~visma_idp.IdentityProvider` of the current Flask app."""
    return current_app.extensions["visma_idp"]


_UNSET: Any = object()


@dataclass
class RequestState:
    """What one request learnt or decided, for the hooks that end it.

    Attributes:
        sso_session: this browser's SSO session row, once looked up
            (``browser/sso.py``; ``UNSET`` until then).
        signin: the sign-in in progress, once loaded (``browser/signin.py``),
            and ``signin_stored``, what the cookie held (to save only a change).
        cookies: cookie base name -> (value, max_age), or (None, 0) to delete
            (``browser/cookies.py`` writes them after the request).
        csp_nonce: the nonce this response's scripts carry (``security.py``).
        csp_override: a whole CSP for a response that serves foreign HTML.
        form_action_targets: further places this page's forms may end up
            (a checked redirect URI; ``security.py``).
        frame_targets: the URIs this page loads in iframes (the logout page's
            front-channel logout URIs; ``security.py`` lets their origins in).
        mail_queued: the request queued mail (``notify/outbox.py`` flushes).
        handbacks: how often the sign-in handed back to the protocol in this
            request (``login/pipeline.py`` stops a loop).
    """

    sso_session: Any = _UNSET
    signin: Any = _UNSET
    signin_stored: dict[str, Any] = field(default_factory=dict)
    cookies: dict[str, tuple[str | None, int]] = field(default_factory=dict)
    csp_nonce: str | None = None
    csp_override: str | None = None
    form_action_targets: list[str] = field(default_factory=list)
    frame_targets: list[str] = field(default_factory=list)
    mail_queued: bool = False
    handbacks: int = 0


UNSET = _UNSET


def request_state() -> RequestState:
    """This request's :class:`RequestState` (made on first use)."""
    state = g.get("visma_idp")
    if state is None:
        state = g.visma_idp = RequestState()
    return state
