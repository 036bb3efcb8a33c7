"""Agreements: the companies (Visma Connect's "agreements") people work in,
and their members' roles.

- ``service.py``: creating agreements, finding them by public id or
  organisation number, adding and removing members and merging their roles
  (audited in the agreement's log; a change of roles is told in the batched
  "your roles have changed" email), and reading the agreement's audit log.
- ``orgnr.py``: Norwegian organisation numbers (nine digits, mod-11 check
  digit); pure, no Flask.
- ``invitations.py``: inviting someone by their email address to join an
  agreement, and accepting (the rules); ``views.py``: the invitation link's
  pages (blueprint ``agreements``).
- ``console.py``: the agreement admins' members page (blueprint
  ``agreement_console``): members, roles, pending invitations, inviting,
  revoking and removing; the agreement's audit log; and the links to it on
  My details. The one-time codes for members offered there are
  ``admin/agreement_codes.py``'s (admin/ uses this package, never the other
  way).
- ``cli.py``: the ``visma-idp agreements`` commands (create, list,
  add-member, remove-member, members, invite).

Elsewhere: the sign-in's chooser is ``login/steps/choose_agreement.py``, the
protocol's choice of an agreement (prompt ``agreement``) is
``oidc/prompts.py``, and the claims a token carries about it are
``oidc/claims.py``. Tables ``Agreement``, ``Membership`` and
``AgreementInvitation`` are in ``storage/models.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from .. import IdentityProvider


def init_app(app: Flask, idp: IdentityProvider) -> None:
    """Register the invitation link's pages (``views.py``), the admins' members
    page (``console.py``) and its links on My details."""
    from . import console, views

    idp.register_blueprints(app, views.bp, console.bp)

    @app.context_processor
    def _agreement_admin_of() -> dict:
        from flask import has_request_context, request

        if not has_request_context() or request.endpoint != "account.details":
            return {}
        return console.admin_of_context()
