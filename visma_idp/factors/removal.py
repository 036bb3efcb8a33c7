"""Removing a factor: the rule every remove view (authenticator app, phone,
security key or passkey) asks before it deletes anything.

Rules:
- a user who must have a second factor (``MFA_REQUIRED``, ``User.mfa_required``,
  or ``must_enrol_factor`` after an admin-issued code: the sign-in's
  ``must_have_factor``) cannot remove the last confirmed one: 409, with a
  message that says to add another first;
- any other factor of one's own may go (the view has checked that it is the
  user's, of its kind, and confirmed); recovery codes and admin-issued codes
  are ways back in, not factors, and do not count as the one kept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask_babel import gettext as _

from ..storage import Factor
from . import confirmed_factors, must_have_factor

if TYPE_CHECKING:
    from ..storage import User


class RemovalRefused(Exception):
    """The factor must stay; ``message`` is shown to the user (translated),
    ``status`` is the HTTP status of the page."""

    def __init__(self, message: str, status: int = 409):
        self.message = message
        self.status = status
        super().__init__(message)


def ensure_removable(*, user: User, factor: Factor) -> None:
    """Check that ``user`` may remove ``factor`` now (see the module's rules).

    Args:
        user: the signed-in user (or the user of a pending sign-in).
        factor: a confirmed factor of that user.

    Raises:
        RemovalRefused: it is the last confirmed factor of a user who must
            have one (409).
    """
    if not must_have_factor(user):
        return
    if [f.id for f in confirmed_factors(user)] == [factor.id]:
        raise RemovalRefused(_("Your account must have a way to confirm your sign-in. Add another one "
                               "before you remove this one."))
