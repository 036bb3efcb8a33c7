"""SCIM 2.0 provisioning: payroll and HR systems push the people of one
agreement, and several of them at once never overwrite each other.

- ``scim.py``: the endpoints at ``/scim/v2/`` (scim2-server's protocol behind
  one module of ours), bearer tokens per provisioning client.
- ``clients.py``: provisioning clients (one agreement each, a token stored as
  a keyed digest, the attributes each is the authority for).
- ``store.py``: a client's resources as scim2-server's storage, scoped to it.
- ``people.py``: the accounts behind the User resources: matching, creating,
  the address, membership, roles from groups, deactivation.
- ``sources.py``: who owns each attribute of a person, and the conflicts a
  non-owner's value becomes (told to the agreement's admins once).
- ``console.py``: the agreement admins' page of conflicts, where they pick a source.
- ``cli.py``: ``visma-idp provisioning create|list|rotate|remove``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from .. import IdentityProvider


def init_app(app: Flask, idp: IdentityProvider) -> None:
    """Register the SCIM endpoints (exempt from CSRF: bearer tokens, no cookies)
    and the admins' conflicts page."""
    from . import console, scim

    idp.register_blueprints(app, scim.bp, console.bp)
    idp.csrf.exempt(scim.bp)
