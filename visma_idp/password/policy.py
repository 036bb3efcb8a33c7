"""The password policy: pure, configurable, every violation at once.

(Skeleton: the full rules arrive in this same issue; the API below is fixed.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _


@dataclass(frozen=True)
class Policy:
    min_length: int = 12
    character_classes: int = 0
    forbid_spaces: bool = False
    history: int = 0

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Policy:
        return cls(
            min_length=settings["PASSWORD_MIN_LENGTH"],
            character_classes=settings["PASSWORD_CHARACTER_CLASSES"],
            forbid_spaces=settings["PASSWORD_FORBID_SPACES"],
            history=settings["PASSWORD_HISTORY"],
        )


@dataclass(frozen=True)
class PersonalInfo:
    """What a password must not contain."""

    email: str = ""
    given_name: str | None = None
    family_name: str | None = None
    company_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Violation:
    code: str
    params: dict[str, Any] = field(default_factory=dict)

    def message(self) -> str:
        if self.code == "too_short":
            return _("Use at least %(min)d characters.", min=self.params["min"])
        return _("Choose another password.")


def check(password: str, *, policy: Policy, person: PersonalInfo) -> list[Violation]:
    problems = []
    if len(password) < policy.min_length:
        problems.append(Violation("too_short", {"min": policy.min_length}))
    return problems
