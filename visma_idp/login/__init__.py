"""The sign-in: who a person is, proved, and what an app still needs.

``pipeline.py`` runs the steps of ``steps/`` in one ordered table (identify,
first factor, second factor, required enrolment, the session, account
choice, consent); ``ways/`` are the ways in for the first factor (password,
passkey, one-time link); ``remember.py`` is "remember this browser";
``throttle.py`` counts failed attempts. The state is one typed object,
``browser/signin.py``. The protocol (``oidc/``) hands a pending authorization
over through ``idp.handoff.sign_in`` and takes it back through
``idp.handoff.resume``; this package imports nothing from ``oidc/``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from .. import IdentityProvider


def init_app(app: Flask, idp: IdentityProvider) -> None:
    """Register the sign-in's blueprints and its half of the hand-over."""
    from ..browser import signin
    from ..federation import roundtrip
    from . import views  # noqa: F401 - the routes of the home page, sign-out and /authorize/continue
    from .blueprints import bp, second_step_bp
    from .pipeline import continue_signin, sign_in
    from .steps import STEPS  # noqa: F401 - the steps' and ways' routes
    from .steps.second_factor import achievable_acr
    from .ways import upstream

    idp.register_blueprints(app, bp, second_step_bp)
    app.after_request(signin.save_if_changed)
    idp.handoff.sign_in = sign_in
    idp.handoff.continue_signin = continue_signin
    idp.handoff.achievable_acr = achievable_acr
    roundtrip.register(roundtrip.LOGIN, upstream.on_login)  # what an upstream's answer does for a sign-in
    roundtrip.register(roundtrip.NATIONAL_LOGIN, upstream.on_national_login)
