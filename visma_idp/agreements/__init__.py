"""Agreements: the companies (Visma Connect's "agreements") people work in,
and their members' roles.

- ``service.py``: creating agreements, finding them by public id or
  organisation number, adding and removing members and merging their roles
  (audited; a change of roles queues the "your roles have changed" email).
- ``orgnr.py``: Norwegian organisation numbers (nine digits, mod-11 check
  digit); pure, no Flask.
- ``cli.py``: the ``visma-idp agreements`` commands (create, list,
  add-member, remove-member, members).

Elsewhere: the sign-in's chooser is ``login/steps/choose_agreement.py``, the
protocol's choice of an agreement (prompt ``agreement``) is
``oidc/prompts.py``, and the claims a token carries about it are
``oidc/claims.py``. Tables ``Agreement`` and ``Membership`` are in
``storage/models.py``. Nothing here needs an ``init_app``.
"""
