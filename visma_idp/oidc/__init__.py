"""OpenID Connect: Authlib's AuthorizationServer wired to our storage and keys.

``request.py`` validates an authorization request once, ``prompts.py``
decides what it still needs (named checks), ``authorization.py`` issues the
code or hands the request over to the sign-in and resumes it afterwards,
``views.py`` has the endpoints. This package imports nothing from the sign-in
(``login/``, ``factors/``, ``password/``, ``account/``): the two meet in
``browser/`` (the interaction, the SSO session) and through
``idp.handoff``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from .. import IdentityProvider


def init_app(app: Flask, idp: IdentityProvider) -> None:
    """Register the protocol's endpoints and its half of the hand-over."""
    from .authorization import resume
    from .views import bp

    idp.register_blueprints(app, bp)
    # the first signing keys, before an endpoint that signs or verifies writes anything (keys.py)
    app.before_request_funcs.setdefault(bp.name, []).append(idp.keys.ensure_active)
    for name in ("authorize", "token", "introspect", "revoke", "userinfo", "end_session"):
        idp.csrf.exempt(f"visma_idp.oidc.views.{name}")
    idp.handoff.resume = resume
