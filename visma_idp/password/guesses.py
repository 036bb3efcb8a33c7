"""How many guesses a password would take: zxcvbn's estimate, with Nordic
words and the person's own details, in bounded time.

The policy's ``guessable`` rule (``policy.py``) calls :func:`estimate`; so do
the live check and the server check, through the policy.

Rules:

- **zxcvbn's model.** The matchers and the scoring are zxcvbn's (the
  ``zxcvbn`` package, 4.5): dictionary words (also reversed, and with
  look-alike swaps such as ``@`` for ``a``), keyboard walks, repeats,
  sequences, years and dates, and ``scoring.most_guessable_match_sequence``,
  which finds the cheapest way to build the password from them and counts
  the guesses. Nothing of zxcvbn's module state is changed.
- **Dictionaries.** zxcvbn's six frequency lists (common passwords, English
  words, US film and television words, English first names and surnames)
  and ``data/nordic-words.txt`` (Norwegian, Danish and Swedish words, names,
  places and teams, also spelt without æ, ø, å, ä, ö), merged into one
  ``{word: rank}`` once per process, on first use, keeping each word's best
  rank. A match is named after the list that gave it that rank (a common
  word, name, place or password).
- **The person's own details** (names, the email address's local part, the
  company) are a second, small dictionary built for each call and passed
  down explicitly. ``zxcvbn.zxcvbn()`` itself is not used: it writes them
  into a module-level dict that every thread of the process shares, so two
  people checking passwords at once could be measured against each other's
  names.
- **Years** are 1900-2099 (zxcvbn's own pattern stops at 2019, so
  ``Sommer2024`` would not count as a word plus a year).
- **Bounded time.** zxcvbn's cost grows with the cube of the length (its
  search for the cheapest cover tries every split of every prefix), and its
  look-alike matcher tries one reading of the password per combination of
  swaps: 64 symbols such as ``@!|1$(`` took 2 s, 200 of them 24 s. So:

  * only the first :data:`PREFIX` (40) characters are estimated. Whoever
    could guess the whole password would know its first 40 characters too,
    so the password is at least as hard to guess as they are; and 40
    characters reach far beyond any threshold the settings allow (at most
    10^20 guesses; zxcvbn counts 10 guesses for each character it cannot
    explain, so 40 characters may score up to 10^40). Four or five words
    of a passphrase fit in 40 characters. A longer password is refused only
    for what its first 40 characters show (the policy's whole-password rules,
    ``common`` and ``predictable``, still see it all);
  * look-alike swaps are applied all at once, with at most eight readings
    (``1`` and ``|`` read as i or l, ``7`` as l or t), instead of zxcvbn's
    hundreds;
  * a repeat's unit is estimated with these same bounded matchers.

  docs/password-policy.md has the figures and the command that measures them.
"""

from __future__ import annotations

import itertools
import math
import re
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zxcvbn import matching, scoring
from zxcvbn.frequency_lists import FREQUENCY_LISTS

DATA_FILE = Path(__file__).parent / "data" / "nordic-words.txt"
PREFIX = 40  # characters estimated (see the module's docstring)

# What each of zxcvbn's lists holds, as the policy's message names it.
_ZXCVBN_KINDS = {
    "passwords": "password",
    "english_wikipedia": "word",
    "us_tv_and_film": "word",
    "surnames": "name",
    "male_names": "name",
    "female_names": "name",
}
# The sections of data/nordic-words.txt, and how a match in each is named.
_NORDIC_KINDS = {"words": "word", "names": "name", "places": "place"}
_USER_INPUTS = "user_inputs"  # zxcvbn's name for the person's own details

# Nordic letters spelt without a Nordic keyboard, two ways (ø as o and as oe).
_PLAIN = str.maketrans({"æ": "ae", "ø": "o", "å": "a", "ä": "a", "ö": "o", "é": "e", "ü": "u"})
_DOUBLED = str.maketrans({"æ": "ae", "ø": "oe", "å": "aa", "ä": "ae", "ö": "oe", "é": "e", "ü": "ue"})

# zxcvbn's pattern is 19xx, 200x, 201x; regex_guesses() scores any year by
# its distance from scoring.REFERENCE_YEAR, at least 20 guesses.
_REGEXEN = {"recent_year": re.compile(r"19\d\d|20\d\d")}

# zxcvbn's look-alike table turned round: each character, the letters it may stand for.
_LOOKALIKES: dict[str, tuple[str, ...]] = {}
for _letter, _chars in matching.L33T_TABLE.items():
    for _char in _chars:
        _LOOKALIKES[_char] = (*_LOOKALIKES.get(_char, ()), _letter)

_GREEDY = re.compile(r"(.+)\1+", re.S)
_LAZY = re.compile(r"(.+?)\1+", re.S)
_LAZY_ANCHORED = re.compile(r"^(.+?)\1+$", re.S)


@dataclass(frozen=True)
class Estimate:
    """What :func:`estimate` found.

    ``guesses_log10`` is zxcvbn's count of guesses, as a power of ten;
    ``patterns`` names what the password is built from, in order, each once:
    ``word``, ``name``, ``place``, ``password`` (a common password),
    ``number`` (a common number such as 123456), ``personal`` (the
    person's own details), ``reversed``, ``swaps``
    (look-alike characters), ``keyboard``, ``repeat``, ``sequence``,
    ``year``, ``date``. Random parts are not named.
    """

    guesses_log10: float
    patterns: tuple[str, ...]


@dataclass(frozen=True)
class _Lists:
    merged: dict[str, int]  # every word, at its best rank
    by_kind: tuple[tuple[str, dict[str, int]], ...]  # (kind, {word: rank}), Nordic first


_lock = threading.Lock()
_lists: _Lists | None = None


def spellings(word: str) -> set[str]:
    """``word`` and its spellings without Nordic letters: ``høst`` → høst, host, hoest."""
    return {word, word.translate(_PLAIN), word.translate(_DOUBLED)}


def read_nordic(path: Path = DATA_FILE) -> dict[str, list[str]]:
    """The sections of the Nordic word list, each a list of entries in file order."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        if current is None:
            raise ValueError(f"{path.name}:{number}: an entry before the first [section]")
        current.append(unicodedata.normalize("NFC", line))
    return sections


def _load() -> _Lists:
    global _lists
    if _lists is None:
        with _lock:
            if _lists is None:
                kinds: list[tuple[str, dict[str, int]]] = []
                for section, entries in read_nordic().items():
                    ranked: dict[str, int] = {}
                    for rank, entry in enumerate(entries, 1):
                        for spelt in spellings(entry):
                            ranked.setdefault(spelt, rank)
                    kinds.append((_NORDIC_KINDS[section], ranked))
                # zxcvbn's own lists, as its matching module ranked them at import
                kinds += [(_ZXCVBN_KINDS[name], matching.RANKED_DICTIONARIES[name]) for name in FREQUENCY_LISTS]
                merged: dict[str, int] = {}
                for _kind, ranked in kinds:
                    for word, rank in ranked.items():
                        if rank < merged.get(word, rank + 1):
                            merged[word] = rank
                _lists = _Lists(merged=merged, by_kind=tuple(kinds))
    return _lists


def estimate(password: str, *, user_inputs: Iterable[str] = ()) -> Estimate:
    """How many guesses ``password`` would take, and what makes it guessable.

    Args:
        password: as typed; put in Unicode NFC, and only its first
            :data:`PREFIX` characters are estimated.
        user_inputs: the person's own details (names, email local part,
            company); compared without case.

    Returns:
        An :class:`Estimate`.
    """
    text = unicodedata.normalize("NFC", password)[:PREFIX]
    if not text:
        return Estimate(0.0, ())
    lists = _load()
    dictionaries: dict[str, dict[str, int]] = {}
    own = [value.lower() for value in user_inputs if value]
    if own:  # first: where two lists tie, the message names the person's own details
        dictionaries[_USER_INPUTS] = {word: rank for rank, word in enumerate(dict.fromkeys(own), 1)}
    dictionaries["common"] = lists.merged
    found = _matches(text, dictionaries)
    result = scoring.most_guessable_match_sequence(text, found)
    # What to name: the cheapest cover without zxcvbn's penalty for using
    # more patterns, so that "Vinter2025!" is a word and a year, not a word
    # and five characters.
    parts = scoring.most_guessable_match_sequence(text, found, _exclude_additive=True)
    return Estimate(float(math.log10(result["guesses"])), _patterns(parts["sequence"], lists))


# -- matching (zxcvbn's omnimatch, bounded) ----------------------------------------

def _matches(text: str, dictionaries: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    found = [
        *matching.dictionary_match(text, dictionaries),
        *matching.reverse_dictionary_match(text, dictionaries),
        *_swap_matches(text, dictionaries),
        *matching.spatial_match(text),
        *_repeat_matches(text, dictionaries),
        *matching.sequence_match(text),
        *matching.regex_match(text, _regexen=_REGEXEN),
        *matching.date_match(text),
    ]
    return sorted(found, key=lambda m: (m["i"], m["j"]))


def _swap_matches(text: str, dictionaries: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    """Dictionary words written with look-alike characters (``p@ssw0rd``).

    Every look-alike in the text is swapped at once; a character that may
    stand for two letters (1, |, 7) gives two readings, so there are at most
    eight. Only matches that contain a swap count (zxcvbn's rule).
    """
    present = {c: letters for c, letters in _LOOKALIKES.items() if c in text}
    if not present:
        return []
    ambiguous = sorted(c for c, letters in present.items() if len(letters) > 1)
    found: dict[tuple[int, int, str, str], dict[str, Any]] = {}
    for choice in itertools.product(*(present[c] for c in ambiguous)):
        swap = {c: letters[0] for c, letters in present.items()} | dict(zip(ambiguous, choice, strict=True))
        table = str.maketrans("".join(swap), "".join(swap.values()))
        for m in matching.dictionary_match(text.translate(table), dictionaries):
            token = text[m["i"]:m["j"] + 1]
            key = (m["i"], m["j"], m["matched_word"], m["dictionary_name"])
            if len(token) < 2 or token.lower() == m["matched_word"] or key in found:
                continue
            used = {c: swap[c] for c in sorted(set(token)) if c in swap}
            m.update(token=token, l33t=True, sub=used,
                     sub_display=", ".join(f"{c} -> {letter}" for c, letter in used.items()))
            found[key] = m
    return list(found.values())


def _repeat_matches(text: str, dictionaries: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    """zxcvbn's repeat matcher (``aaa``, ``abcabc``), with the repeated unit
    estimated by these same matchers and dictionaries."""
    found = []
    last = 0
    while last < len(text):
        greedy = _GREEDY.search(text, last)
        if greedy is None:
            break
        lazy = _LAZY.search(text, last)
        assert lazy is not None  # wherever the greedy pattern matches, so does the lazy one
        if len(greedy.group(0)) > len(lazy.group(0)):
            match = greedy
            anchored = _LAZY_ANCHORED.search(greedy.group(0))
            assert anchored is not None
            base = anchored.group(1)
        else:
            match, base = lazy, lazy.group(1)
        analysis = scoring.most_guessable_match_sequence(base, _matches(base, dictionaries))
        found.append({
            "pattern": "repeat", "i": match.start(), "j": match.end() - 1, "token": match.group(0),
            "base_token": base, "base_guesses": analysis["guesses"], "base_matches": analysis["sequence"],
            "repeat_count": len(match.group(0)) / len(base),
        })
        last = match.end()
    return found


# -- naming what was found ----------------------------------------------------------

MIN_NAMED = 3  # shorter parts ("a", "ab") turn up by chance in random characters
_SIMPLE = {"spatial": "keyboard", "repeat": "repeat", "sequence": "sequence", "regex": "year", "date": "date"}


def _patterns(sequence: list[dict[str, Any]], lists: _Lists) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for m in sequence:
        if len(m["token"]) < MIN_NAMED:
            continue
        if m["pattern"] == "dictionary":
            found[_kind(m, lists)] = None
            if m.get("reversed"):
                found["reversed"] = None
            if m.get("l33t"):
                found["swaps"] = None
        elif m["pattern"] in _SIMPLE:
            found[_SIMPLE[m["pattern"]]] = None
    return tuple(found)


def _kind(m: dict[str, Any], lists: _Lists) -> str:
    if m["dictionary_name"] == _USER_INPUTS:
        return "personal"
    word, rank = m["matched_word"], m["rank"]
    if word.isdigit():  # "123456", "2580" are on the password list: to a person, they are numbers
        return "number"
    for kind, ranked in lists.by_kind:
        if ranked.get(word) == rank:
            return kind
    return "word"  # not reached: the merged rank came from one of the lists
