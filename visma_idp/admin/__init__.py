"""Administration: users and admin rights (``service.py``, ``rights.py``),
the admin pages (``views.py``) and the admin REST API (``api.py``), and the
commands behind them (``cli.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from .. import IdentityProvider


def init_app(app: Flask, idp: IdentityProvider) -> None:
    """Register the admin pages and the admin API; the API's POST and DELETE
    endpoints take bearer tokens, not cookies, so they are exempt from CSRF."""
    from . import api, views

    idp.register_blueprints(app, views.bp, api.bp)
    idp.csrf.exempt(api.create_one_time_code)
    idp.csrf.exempt(api.invite_user)
    idp.csrf.exempt(api.create_upstream)
    idp.csrf.exempt(api.remove_upstream)
