"""Federation: signing in through upstream OpenID providers (a company's ADFS
or Entra ID) and national eID (ID-porten, BankID), and linking them to accounts.

``upstreams.py`` keeps the upstreams (the operator's ``visma-idp upstreams``
commands and the admin API), their discovery documents and keys;
``roundtrip.py`` is the round trip (Authlib's client: PKCE, state and nonce
in this browser's cookie, RFC 9207); ``id_token.py`` checks the upstream's ID
token; ``linking.py`` says which account an upstream identity is and links
it; ``national_id.py`` links national identity numbers
(``national_id_number.py`` validates them); ``views.py`` is the callback and
the "Linked sign-ins" part of My details. The sign-in's ways in are
``login/ways/upstream.py`` and ``login/steps/link_identity.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from .. import IdentityProvider


def init_app(app: Flask, idp: IdentityProvider) -> None:
    """Register the callback, our JWKS and the linking pages, the handlers of
    the account's round trips, and the "Linked sign-ins" section of My details."""
    from . import roundtrip, views

    idp.register_blueprints(app, views.bp)
    roundtrip.register(roundtrip.LINK, views.on_link)
    roundtrip.register(roundtrip.NATIONAL_LINK, views.on_national_link)

    @app.context_processor
    def _linked_sign_ins() -> dict:
        from flask import has_request_context, request

        if not has_request_context() or request.endpoint != "account.details":
            return {}
        return views.linked_context()
