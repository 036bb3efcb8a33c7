"""Administration: users and admin rights (``service.py``, ``rights.py``),
the admin pages (``views.py``), the system admins' console (``console.py``,
with the agreement changes of ``agreements/service.py``), the admin REST API (``bearer.py``:
who calls; ``api.py``: users, codes and upstreams; ``agreements_api.py``;
``system_api.py``: clients and keys) with its OpenAPI document
(``openapi.py``), and the commands behind them (``cli.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from .. import IdentityProvider


def init_app(app: Flask, idp: IdentityProvider) -> None:
    """Register the admin pages, the system admins' console (and its link on My
    details), the admin API and its OpenAPI document. The API's endpoints
    take bearer tokens, not cookies, so they are exempt from CSRF; a request
    that does not match the API's schema is answered by
    ``bearer.validation_error`` (flask-openapi3 asks the app for it)."""
    from . import agreements_api, api, bearer, console, openapi, system_api, views

    api_blueprints = (api.bp, agreements_api.bp, system_api.bp)
    idp.register_blueprints(app, views.bp, console.bp, openapi.bp, *api_blueprints)
    from . import agreement_codes  # one-time codes on an agreement's members page (and its button there)

    agreement_codes.init_app(app, idp)
    openapi.describe(*api_blueprints)
    for blueprint in api_blueprints:
        idp.csrf.exempt(blueprint)
    if not hasattr(app, "validation_error_callback"):  # a flask_openapi3.OpenAPI app keeps its own
        app.validation_error_callback = bearer.validation_error  # type: ignore[attr-defined]

    @app.context_processor
    def _system_admin_console() -> dict:
        from flask import has_request_context, request

        if not has_request_context() or request.endpoint != "account.details":
            return {}
        return console.console_link_context()
