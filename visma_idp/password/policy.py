"""The password policy: pure, configurable, every violation at once.

:func:`check` looks only at its arguments (no app, no database); the
history rule, which needs the stored hashes, is checked by
``service.violations``. Only :meth:`Violation.message` and
:meth:`Policy.describe` touch Flask, for the translated text.

Rules, in the order violations are returned:

``too_short``
    Fewer than ``PASSWORD_MIN_LENGTH`` code points. The password is put in
    Unicode NFC first, so "é" counts as one character whether the keyboard
    sent it precomposed or as "e" plus a combining accent; an emoji is one
    code point, a flag two. The password itself is hashed exactly as typed.
``too_long``
    More than :data:`MAX_LENGTH` (1024) code points as typed -- every check
    of a password refuses anything longer, so such a password could never be used.
    Nothing is ever truncated.
``control_characters``
    Tabs, line breaks and other control characters cannot be typed reliably
    into a password field.
``contains_name``, ``contains_email``, ``contains_company``
    The password contains the person's given or family name, the local part
    of their email address (whole or any part between dots, dashes,
    underscores and plus signs) or their company's name (whole or any word),
    compared without case, accents, white space or punctuation and with
    character swaps undone (see ``blocklist.SWAPS_L``: P@ssw0rd = password).
``common``
    On the list of common passwords (``blocklist``), compared the same way.
``predictable``
    The whole password is one short unit repeated (``aaaaaaaaaaaa``,
    ``abcabcabcabc``) or a run of consecutive characters
    (``abcdefghijklm``, ``1234567890123``).
``guessable`` (``PASSWORD_MIN_GUESSES_LOG10``, default 10; 0 = off)
    zxcvbn's estimate (``guesses``: with Norwegian, Danish and Swedish
    words, names and places, and the person's names, email local part and
    company) says fewer than 10^N guesses: a common word or name with a year,
    digits or symbols added (``Sommer2024!!!``), a keyboard walk, a repeat, a
    sequence, a date. The message names what the password is built from.
    Only checked when the password is neither ``common`` nor ``predictable``
    (those say it already).
``character_classes`` (optional, ``PASSWORD_CHARACTER_CLASSES``)
    Fewer kinds of characters than required, out of lower-case letters,
    upper-case letters, digits and symbols. Letters without case (such as
    Chinese) count as lower case, white space counts as nothing.
``spaces`` (optional, ``PASSWORD_FORBID_SPACES``)
    Any white space.
``reused`` (optional, ``PASSWORD_HISTORY``; checked in ``service.py``)
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from babel.lists import format_list
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _

from . import blocklist

# The one maximum (code points as typed): the policy refuses longer passwords,
# and every check of a password (password/confirm.py) treats a longer text as wrong.
MAX_LENGTH = 1024

# Name parts shorter than this are ignored: a two-letter name ("Li", "Ng",
# "Bo") or initial would be found by chance in a large share of perfectly
# good passwords and make the rule arbitrary; three letters ("Ola", "Per",
# "Ali") are already specific to the person.
MIN_PART = 3

_NAME_SEPARATORS = re.compile(r"[\s\-‐‑‒–—'’.,_]+")
_EMAIL_SEPARATORS = re.compile(r"[.\-_+]+")
# the legal form is not the name ("Visma Software AS" → visma, software)
_LEGAL_FORMS = frozenset({
    "as", "asa", "ab", "abp", "aps", "a/s", "ans", "da", "ks", "sa", "oy", "oyj", "ltd", "inc", "llc", "plc",
    "gmbh", "ag", "bv", "nv", "co", "corp", "the", "and", "og", "och",
})


@dataclass(frozen=True)
class Policy:
    min_length: int = 12
    character_classes: int = 0
    forbid_spaces: bool = False
    history: int = 0
    min_guesses_log10: int = 10
    max_length: int = MAX_LENGTH

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Policy:
        return cls(
            min_length=settings["PASSWORD_MIN_LENGTH"],
            character_classes=settings["PASSWORD_CHARACTER_CLASSES"],
            forbid_spaces=settings["PASSWORD_FORBID_SPACES"],
            history=settings["PASSWORD_HISTORY"],
            min_guesses_log10=settings["PASSWORD_MIN_GUESSES_LOG10"],
        )

    def describe(self, *, history: bool = True) -> list[str]:
        """The rules as short translated items for the page ("At least 12 characters")."""
        items = [
            ngettext("At least %(num)d character", "At least %(num)d characters", self.min_length),
            _("Not your name, your email address or your company's name"),
            _("Not a commonly used password"),
        ]
        if self.min_guesses_log10:
            items.append(_("Hard to guess: not a common word or name with a year, digits or symbols added, and "
                           "no keyboard patterns, repeats or sequences"))
        if self.character_classes > 1:
            items.append(ngettext(
                "At least %(num)d kind of character: lower-case letters, upper-case letters, digits, symbols",
                "At least %(num)d kinds of characters: lower-case letters, upper-case letters, digits, symbols",
                self.character_classes))
        if self.forbid_spaces:
            items.append(_("No spaces"))
        if history and self.history:
            items.append(ngettext("Not your current password", "Not one of your last %(num)d passwords",
                                  self.history))
        return items


@dataclass(frozen=True)
class PersonalInfo:
    """What a password must not contain."""

    email: str = ""
    given_name: str | None = None
    family_name: str | None = None
    company_names: tuple[str, ...] = ()
    name: str | None = None  # the full name, when given and family name are not known apart


@dataclass(frozen=True)
class Violation:
    """One broken rule: a stable ``code`` (for scripts and tests) and its parameters."""

    code: str
    params: dict[str, Any] = field(default_factory=dict)

    def message(self) -> str:
        """The rule as a translated sentence, in the current request's language."""
        code, p = self.code, self.params
        if code == "too_short":
            return ngettext("Use at least %(num)d character.", "Use at least %(num)d characters.", p["min"])
        if code == "too_long":
            return ngettext("Use at most %(num)d character.", "Use at most %(num)d characters.", p["max"])
        if code == "control_characters":
            return _("Do not use control characters such as tabs or line breaks.")
        if code == "contains_name":
            return _("Do not use your name in the password.")
        if code == "contains_email":
            return _("Do not use your email address in the password.")
        if code == "contains_company":
            return _("Do not use your company's name in the password.")
        if code == "common":
            return _("This password is too common. Choose one that is harder to guess.")
        if code == "predictable":
            return _("Do not use a repeated character or a simple sequence such as abcd or 1234.")
        if code == "guessable":
            return _guessable_message(p["patterns"])
        if code == "character_classes":
            return ngettext(
                "Use at least %(num)d kind of character: lower-case letters, upper-case letters, digits or symbols.",
                "Use at least %(num)d of these kinds of characters: lower-case letters, upper-case letters, "
                "digits and symbols.", p["required"])
        if code == "spaces":
            return _("Do not use spaces.")
        if code == "reused":
            return ngettext("Do not use your current password again.",
                            "Do not use any of your last %(num)d passwords again.", p["count"])
        return _("Choose another password.")

    def as_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message()}


def check(password: str, *, policy: Policy, person: PersonalInfo) -> list[Violation]:
    """Every rule of ``policy`` the password breaks for ``person`` (history aside)."""
    problems: list[Violation] = []
    if len(unicodedata.normalize("NFC", password)) < policy.min_length:
        problems.append(Violation("too_short", {"min": policy.min_length}))
    if len(password) > policy.max_length:
        problems.append(Violation("too_long", {"max": policy.max_length}))
        # the rest would be measured on a string nobody can sign in with;
        # bound the work as well
        return problems
    if any(unicodedata.category(c) == "Cc" for c in password):
        problems.append(Violation("control_characters"))

    hay = _skeletons(password)
    names, email_parts, companies = _personal_parts(person)
    if _found(names, hay):
        problems.append(Violation("contains_name"))
    if _found(email_parts, hay):
        problems.append(Violation("contains_email"))
    if _found(companies, hay):
        problems.append(Violation("contains_company"))

    if blocklist.is_common(password):
        problems.append(Violation("common"))
    elif _predictable(password):
        problems.append(Violation("predictable"))
    elif policy.min_guesses_log10:
        # zxcvbn's dictionaries are about 15 MB per process: loaded by the first
        # password set here, never by a worker that only signs people in or issues tokens
        from . import guesses

        found = guesses.estimate(password, user_inputs=_user_inputs(person))
        if found.guesses_log10 < policy.min_guesses_log10:
            problems.append(Violation("guessable", {"patterns": found.patterns}))

    if policy.character_classes and _classes(password) < policy.character_classes:
        problems.append(Violation("character_classes", {"required": policy.character_classes}))
    if policy.forbid_spaces and any(c.isspace() for c in password):
        problems.append(Violation("spaces"))
    return problems


# -- comparisons ---------------------------------------------------------------

Skeletons = tuple[str, str]


def _skeletons(text: str) -> Skeletons:
    """Both readings (1 as l, 1 as i) of the letters and digits, folded, swaps
    undone: ``Kar1-N0rdmann`` → ``karlnordmann``, ``karinordmann``."""
    as_l, as_i = blocklist.readings(text)
    return "".join(c for c in as_l if c.isalnum()), "".join(c for c in as_i if c.isalnum())


def _found(needles: set[Skeletons], hay: Skeletons) -> bool:
    return any(n_l in hay[0] or n_i in hay[1] for n_l, n_i in needles)


def _parts(values: Iterable[str | None], separators: re.Pattern[str], *, whole: bool) -> set[Skeletons]:
    found = set()
    for value in values:
        if not value:
            continue
        pieces = separators.split(value)
        if whole:
            pieces.append(value)
        for piece in pieces:
            if piece.casefold() in _LEGAL_FORMS:
                continue
            forms = _skeletons(piece)
            if len(forms[0]) >= MIN_PART:
                found.add(forms)
    return found


def _personal_parts(person: PersonalInfo) -> tuple[set[Skeletons], set[Skeletons], set[Skeletons]]:
    names = _parts((person.given_name, person.family_name, person.name), _NAME_SEPARATORS, whole=False)
    local = person.email.rpartition("@")[0] if "@" in person.email else person.email
    email = _parts((local,), _EMAIL_SEPARATORS, whole=True)
    companies = _parts(person.company_names, _NAME_SEPARATORS, whole=True)
    return names, email, companies


def _user_inputs(person: PersonalInfo) -> list[str]:
    """The person's details as zxcvbn's user inputs: each name, the email
    local part, each company name, whole and in parts, as written and folded
    (``Ødegård`` → ``odegard``)."""
    local = person.email.rpartition("@")[0] if "@" in person.email else person.email
    found: dict[str, None] = {}
    for values, separators in (((person.given_name, person.family_name, person.name), _NAME_SEPARATORS),
                               ((local,), _EMAIL_SEPARATORS), (person.company_names, _NAME_SEPARATORS)):
        for value in values:
            if not value:
                continue
            for piece in (value, *separators.split(value)):
                for form in (piece.lower(), blocklist.fold(piece)):
                    if len(form) >= 2 and form not in _LEGAL_FORMS:
                        found[form] = None
    return list(found)


# What the password is built from (guesses.Estimate.patterns), as the
# message's list names it.
_PATTERNS = {
    "word": lambda: _("a common word"),
    "name": lambda: _("a common name"),
    "place": lambda: _("a place or team name"),
    "password": lambda: _("a common password"),
    "number": lambda: _("a common number (such as 123456)"),
    "personal": lambda: _("details about you (your name, email address or company)"),
    "reversed": lambda: _("a word spelt backwards"),
    "swaps": lambda: _("letters swapped for look-alike digits or symbols (such as @ for a)"),
    "keyboard": lambda: _("a keyboard pattern (such as qwerty)"),
    "repeat": lambda: _("a repeat (such as aaa or abcabc)"),
    "sequence": lambda: _("a sequence (such as abc or 1234)"),
    "year": lambda: _("a year"),
    "date": lambda: _("a date"),
}


def _guessable_message(patterns: Iterable[str]) -> str:
    parts = [_PATTERNS[p]() for p in patterns if p in _PATTERNS]
    if not parts:
        return _("This password is easy to guess. Make it longer, for example with a few more words.")
    return _("This password is easy to guess: it contains %(patterns)s. Add a few words that do not belong "
             "together.", patterns=format_list(parts, locale=get_locale() or "en"))


def _predictable(password: str) -> bool:
    text = unicodedata.normalize("NFC", password).casefold()
    if len(text) < 4:
        return False
    for unit in range(1, 5):  # one unit of up to four characters, repeated
        if len(text) >= 2 * unit and text == (text[:unit] * (len(text) // unit + 1))[:len(text)]:
            return True
    for step in (1, -1):  # abcdef…, 987654… (digits may wrap: …7890123)
        if all(_next(a, b, step) for a, b in zip(text, text[1:], strict=False)):
            return True
    return False


_DIGITS = frozenset("0123456789")


def _next(a: str, b: str, step: int) -> bool:
    if ord(b) - ord(a) == step:
        return True
    return a in _DIGITS and b in _DIGITS and (int(b) - int(a)) % 10 == step % 10


def _classes(password: str) -> int:
    lower = upper = digit = symbol = False
    for c in password:
        if c.isupper():
            upper = True
        elif c.isalpha():  # lower case, and letters that have no case
            lower = True
        elif c.isdigit():
            digit = True
        elif not c.isspace():
            symbol = True
    return lower + upper + digit + symbol
