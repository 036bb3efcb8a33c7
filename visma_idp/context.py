"""The provider of the current app, and what one request keeps about itself.

Every module reaches the provider through :func:`current_idp` (not through
``current_app.extensions`` in its own words), and keeps per-request facts
in :func:`request_state` (a typed object on ``flask.g``), so the names are
checked by mypy and there is one place that lists them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app

if TYPE_CHECKING:
    from . import IdentityProvider


def current_idp() -> IdentityProvider:
    """The :class:`~visma_idp.IdentityProvider` of the current Flask app."""
    return current_app.extensions["visma_idp"]
