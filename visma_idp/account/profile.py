"""Changing one's own profile on My details: names, phone number, language.

Rules:
- given and family name: at most 100 characters of letters (any script),
  combining marks, spaces, hyphens, apostrophes and full stops; the display
  name: at most 100 printable characters without ``<`` or ``>``; an empty
  display name becomes "given family";
- phone number: E.164 after spaces, hyphens, dots and parentheses are
  removed (``+`` then 7 to 15 digits, no leading zero); empty clears it; a
  new number is no longer verified;
- language: one of :data:`visma_idp.config.LOCALES`;
- a save that changes something updates ``updated_at``, is audited as
  ``profile_updated`` with the changed field names (not their values) and
  goes into the user's batched "account details changed" notice;
- a field another system keeps for the person (their employer's payroll
  system: :func:`keep_fields`, which ``provisioning/`` registers; account/
  imports none of it) is shown read-only and never changed here, whatever
  the post says; the fields a save changed are told to those systems (the
  person owns them from now on).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from flask_babel import gettext as _

from .. import audit
from ..config import LOCALES
from ..context import current_idp
from ..storage import User
from . import notifications

MAX_NAME = 100
_NAME_PUNCTUATION = frozenset(" -'’.")
_PHONE_SEPARATORS = re.compile(r"[\s\-.()]")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")

FIELDS = ("given_name", "family_name", "name", "phone_number", "locale")


@dataclass
class ProfileForm:
    given_name: str = ""
    family_name: str = ""
    name: str = ""
    phone_number: str = ""
    locale: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of_user(cls, user: User, default_locale: str) -> ProfileForm:
        return cls(given_name=user.given_name or "", family_name=user.family_name or "", name=user.name or "",
                   phone_number=user.phone_number or "",
                   locale=user.locale if user.locale in LOCALES else default_locale)

    @classmethod
    def of_form(cls, form, *, user: User | None = None, managed: Collection[str] = ()) -> ProfileForm:
        """The posted form; the ``managed`` fields keep ``user``'s current values, whatever was posted."""
        def value(name: str) -> str:
            if user is not None and name in managed:
                return str(getattr(user, name) or "")
            raw = form.get(name)
            return unicodedata.normalize("NFC", raw.strip()) if isinstance(raw, str) else ""

        return cls(given_name=value("given_name"), family_name=value("family_name"), name=value("name"),
                   phone_number=value("phone_number"), locale=value("locale"))


# -- the fields other systems keep (provisioning/ registers itself: account/ imports none of it) --

#: ``managed(user)``: the fields another system keeps for the person, each with that system's name
Managed = Callable[[User], dict[str, str]]
#: ``changed(user, fields)``: the person changed ``fields`` here (the caller commits)
Changed = Callable[[User, list[str]], None]
_managed: dict[str, Managed] = {}
_changed: dict[str, Changed] = {}


def keep_fields(name: str, *, managed: Managed, changed: Changed) -> None:
    """Register a system that keeps some of a person's fields: My details
    shows ``managed(user)``'s fields read-only (naming the system) and never
    changes them; ``changed(user, fields)`` hears of every save that changed
    something. By name, so registering again replaces."""
    _managed[name] = managed
    _changed[name] = changed


def managed_fields(user: User) -> dict[str, str]:
    """The fields of :data:`FIELDS` another system keeps for ``user``, each with the system's name."""
    found: dict[str, str] = {}
    for managed in _managed.values():
        for name, system in managed(user).items():
            if name in FIELDS:
                found.setdefault(name, system)
    return found


def _person_name_ok(value: str) -> bool:
    return all(unicodedata.category(ch)[0] in "LM" or ch in _NAME_PUNCTUATION for ch in value)


def _display_name_ok(value: str) -> bool:
    return all(ch.isprintable() and ch not in "<>" for ch in value)


def normalize_phone(value: str) -> str | None:
    """``+47 912 34 567`` → ``+4791234567``; None when it is not E.164-like."""
    compact = _PHONE_SEPARATORS.sub("", value)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    return compact if _E164.fullmatch(compact) else None


def validate(form: ProfileForm, *, managed: Collection[str] = ()) -> dict[str, object]:
    """Check the form; fills ``form.errors`` (translated, per field) and
    returns the cleaned values when there is none. The ``managed`` fields
    are neither checked nor returned (another system keeps them)."""
    errors = form.errors
    for name, label_error in (
        ("given_name", _("Your given name can have at most %(count)d characters.", count=MAX_NAME)),
        ("family_name", _("Your family name can have at most %(count)d characters.", count=MAX_NAME)),
        ("name", _("Your display name can have at most %(count)d characters.", count=MAX_NAME)),
    ):
        if len(getattr(form, name)) > MAX_NAME:
            errors[name] = label_error
    for name in ("given_name", "family_name"):
        if name not in errors and not _person_name_ok(getattr(form, name)):
            errors[name] = _("Use only letters, spaces, hyphens and apostrophes.")
    if "name" not in errors and not _display_name_ok(form.name):
        errors["name"] = _("The display name cannot contain the characters < and > or control characters.")
    phone: str | None = None
    if form.phone_number:
        phone = normalize_phone(form.phone_number)
        if phone is None:
            errors["phone_number"] = _("Enter the phone number with its country code, like +47 912 34 567.")
    if form.locale not in LOCALES:
        errors["locale"] = _("Choose one of the languages in the list.")
    for name in managed:
        errors.pop(name, None)
    if errors:
        return {}
    display = form.name or " ".join(part for part in (form.given_name, form.family_name) if part)
    values: dict[str, object] = {
        "given_name": form.given_name or None,
        "family_name": form.family_name or None,
        "name": display[:MAX_NAME],
        "phone_number": phone,
        "locale": form.locale,
    }
    return {name: value for name, value in values.items() if name not in managed}


def update_profile(user: User, values: dict[str, object]) -> list[str]:
    """Apply cleaned ``values`` to ``user`` (never a field another system
    keeps: :func:`managed_fields`); audit, notify, and tell the systems that
    keep fields what changed; the caller commits.

    Returns:
        The names of the fields that changed (empty: nothing to do).
    """
    managed = managed_fields(user)
    changed = [name for name in FIELDS
               if name in values and name not in managed and getattr(user, name) != values[name]]
    if not changed:
        return []
    for name in changed:
        setattr(user, name, values[name])
    if "phone_number" in changed:
        user.phone_number_verified = False
    user.updated_at = current_idp().clock.now()
    audit.record("profile_updated", user_id=user.id, subject=user.email, details={"fields": changed})
    notifications.record_profile_change(user, changed)
    for told in _changed.values():
        told(user, changed)
    return changed
