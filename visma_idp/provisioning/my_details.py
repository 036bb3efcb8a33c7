"""What My details shows of provisioning (``account/profile.py`` asks
through the hook ``provisioning.init_app`` registers: account/ imports
nothing of provisioning/).

Rules (``sources.py``): a detail a provisioning client is configured as the
authority for (``sources.configured_owners``, among the clients holding the
person) is the employer's to change: My details shows it read-only, naming
the client, and ignores what a post says about it. A detail the person
changes there is theirs from then on (``sources.person_changed``).
"""

from __future__ import annotations

from ..storage import User
from . import sources


def kept_fields(user: User) -> dict[str, str]:
    """The details of ``sources.PROFILE_ATTRIBUTES`` a configured authority
    keeps for ``user``, each with the client's name."""
    owners = sources.configured_owners(user.id, sources.PROFILE_ATTRIBUTES)
    return {name: owners[name].name for name in sources.PROFILE_ATTRIBUTES if name in owners}
