"""The administration's settings (``admin/``): the level a session needs for
the system admins' console.

Rows of :class:`visma_idp.config.Setting`, gathered by ``config.py`` (which
validates them and generates docs/configuration.md from them). This module
imports nothing but config's parsers, so reading the settings never loads
the package's views.
"""

from __future__ import annotations

from ..config import Setting, one_of

# the acr ladder (assurance.py: LADDER), written out: a settings module imports config only
_LEVELS = {"urn:visma_idp:acr:pwd", "urn:visma_idp:acr:mfa", "urn:visma_idp:acr:phr"}

SETTINGS: tuple[Setting, ...] = (
    Setting("ADMIN_CONSOLE_ACR", "urn:visma_idp:acr:mfa", one_of(_LEVELS),
            "The level a system admin's session must have reached to use the system admins' console (`/admin`): "
            "`urn:visma_idp:acr:mfa` (two factors), `urn:visma_idp:acr:phr` (a security key or passkey) or "
            "`urn:visma_idp:acr:pwd` (the password alone; not for production). Below it the console answers 403."),
)
