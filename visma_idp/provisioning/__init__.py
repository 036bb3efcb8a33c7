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
- ``console.py``: the agreement admins' page of conflicts, where they pick a
  source; the members page links to it while there are open conflicts.
- ``my_details.py``: the details a configured authority keeps, read-only on My details.
- ``cli.py``: ``visma-idp provisioning create|list|rotate|remove``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from .. import IdentityProvider


def init_app(app: Flask, idp: IdentityProvider) -> None:
    """Register the SCIM endpoints (exempt from CSRF: bearer tokens, no cookies)
    and the admins' conflicts page, and the hooks of the pages that may not
    import provisioning/ (``tests/test_layers.py``): the conflicts page's link on
    the members page (``agreements.console.link_pages``), and My details
    (``account.profile.keep_fields``: the details a configured authority keeps
    are read-only there; a detail the person changes is theirs from then on),
    and accepting an invitation (``agreements.invitations.on_accept``: the
    person's pushed records are linked)."""
    from ..account import profile
    from ..agreements import console as agreement_console
    from ..agreements import invitations
    from . import console, my_details, people, routes, sources

    idp.register_blueprints(app, routes.bp, console.bp)
    idp.csrf.exempt(routes.bp)
    agreement_console.link_pages("provisioning_conflicts", console.members_page_links)
    profile.keep_fields("provisioning", managed=my_details.kept_fields, changed=sources.person_changed)
    invitations.on_accept("provisioning", people.link_invited)
