"""Norwegian national identity numbers: fødselsnummer, D-number, H-number.

:func:`parse` checks a number against these rules, in this order; the first
rule broken is the ``reason`` of the :class:`InvalidNationalId` it raises.

1. ``format``: once surrounding whitespace is stripped, exactly 11 ASCII
   digits, ``DDMMYY III K1 K2`` (date, individual number, two check digits).
   Nothing inside is forgiven: no spaces, dashes, letters or non-ASCII digits.

2. ``checksum``: two mod-11 checks over the digits d1..d11.

   - First check (K1): ``3·d1 + 7·d2 + 6·d3 + 1·d4 + 8·d5 + 9·d6 + 4·d7 +
     5·d8 + 2·d9 + 1·d10`` must leave remainder 0, 1, 2 or 3 when divided by 11.
     Remainder 0 is the classic rule, usually written
     ``k1 = 11 - (S mod 11)`` with S the weighted sum of d1..d9, 11 read as 0
     and 10 meaning "no such number": that k1 is exactly the digit which,
     added with weight 1, makes the sum a multiple of 11. Remainders 1-3 come
     from Skatteetaten's rule for numbers issued from 1 January 2032
     (``k1 = {11, 12, 13, 14} - (S mod 11)``, reduced mod 11, 10 refused), so
     one date and individual number can carry three or four different K1.
     Both rules are accepted for every number, whatever its birth date: the
     new rule also applies to people born before 2032 who get a number later.
   - Second check (K2), unchanged in 2032: ``5·d1 + 4·d2 + 3·d3 + 2·d4 +
     7·d5 + 6·d6 + 5·d7 + 4·d8 + 3·d9 + 2·d10 + 1·d11`` must be a multiple of
     11 (the classic ``k2 = 11 - (sum mod 11)``, 11 read as 0). When that
     would need a K2 of 10 no digit works and the ten digits before it start
     no valid number. Every weight here is non-zero mod 11, so changing any
     single digit of a valid number always breaks this check.

3. Markers in the first digit of the day and of the month (``synthetic`` or
   ``date``):

   - day 01-31: an ordinary day; day + 40 (41-71): a D-number.
   - month 01-12: an ordinary month; month + 40 (41-52): an H-number
     (help number from the health sector);
   - month + 80 (81-92): a synthetic test number (Skatteetaten's test data,
     Tenor); month + 65 (66-77): a synthetic test number of the older NAV kind.
     Both are refused (``synthetic``) unless the caller passes
     ``test_environment=True``. A synthetic number may also be a D-number.
   - any other day or month, or a D- and H-number at once: ``date``.

4. ``date``: the century comes from the individual number (III) and the
   two-digit year (YY), by the usual table:

   ======== ======= =========
   III      YY      born
   ======== ======= =========
   000-499  00-99   1900-1999
   500-749  54-99   1854-1899
   500-999  00-39   2000-2039
   900-999  40-99   1940-1999
   ======== ======= =========

   A pair outside the table (500-749 with 40-53, 750-899 with 40-99) is
   no longer refused: D-numbers issued since August 2021 and every number
   issued from 2032 use individual numbers without regard to the century, so
   such a number is read in the 1900s, else the 2000s. The day, month and
   year must be a real calendar date (no 31 February; 29 February only in
   leap years, and 1900 was not one).

The table is what the number itself says. Numbers issued from 2032, and
D-numbers issued since August 2021, no longer tie the individual number to a
century, so for those the birth date read here can be a century off; the
population register is the source of truth for a person's birth date.

Everything here is pure: no Flask, no I/O, only the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

Kind = Literal["fnr", "dnr", "hnr"]
Reason = Literal["format", "checksum", "date", "synthetic"]
Rule = Literal["classic", "2032"]

_DIGITS = frozenset("0123456789")
_WEIGHTS_K1 = (3, 7, 6, 1, 8, 9, 4, 5, 2, 1)  # over d1..d10 (weight 1 on K1 itself)
_WEIGHTS_K2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2, 1)  # over d1..d11 (weight 1 on K2 itself)
_K1_REMAINDERS_CLASSIC = (0,)
_K1_REMAINDERS_2032 = (1, 2, 3)  # the remainders only the 2032 rule allows

_D_NUMBER_DAY = 40
_H_NUMBER_MONTH = 40
_TENOR_MONTH = 80  # Skatteetaten's synthetic test data
_NAV_MONTH = 65  # older NAV synthetic test numbers


class InvalidNationalId(ValueError):
    """The value is not an acceptable national identity number.

    ``reason`` is one of ``"format"``, ``"checksum"``, ``"date"`` or
    ``"synthetic"``. The message never contains the number.
    """

    def __init__(self, reason: Reason, message: str):
        super().__init__(message)
        self.reason: Reason = reason


@dataclass(frozen=True, slots=True)
class NationalId:
    """A number :func:`parse` accepted, with what it says about its holder."""

    number: str
    kind: Kind
    birth_date: date
    synthetic: bool

    def __repr__(self) -> str:
        # Keep the full number out of logs and tracebacks.
        return f"NationalId(number={mask(self.number)!r}, kind={self.kind!r}, synthetic={self.synthetic!r})"


def parse(value: str, *, test_environment: bool = False) -> NationalId:
    """Check ``value`` against the module's rules and say what it is.

    Raises :class:`InvalidNationalId` for the first rule it breaks.
    """
    number = value.strip() if isinstance(value, str) else ""
    if len(number) != 11 or not _DIGITS.issuperset(number):
        raise InvalidNationalId("format", "a national identity number is exactly 11 digits")
    digits = [int(c) for c in number]

    if not _checksums_hold(digits):
        raise InvalidNationalId("checksum", "the check digits do not match")

    day_code, month_code, yy = int(number[0:2]), int(number[2:4]), int(number[4:6])
    individual = int(number[6:9])

    is_d = day_code > _D_NUMBER_DAY
    day = day_code - _D_NUMBER_DAY if is_d else day_code

    # Exactly one reading of the month: the ranges do not overlap.
    is_h = synthetic = False
    if 1 <= month_code <= 12:
        month = month_code
    elif _H_NUMBER_MONTH < month_code <= _H_NUMBER_MONTH + 12:
        month, is_h = month_code - _H_NUMBER_MONTH, True
    elif _NAV_MONTH < month_code <= _NAV_MONTH + 12:
        month, synthetic = month_code - _NAV_MONTH, True
    elif _TENOR_MONTH < month_code <= _TENOR_MONTH + 12:
        month, synthetic = month_code - _TENOR_MONTH, True
    else:
        raise InvalidNationalId("date", "the month is out of range")

    if synthetic and not test_environment:
        raise InvalidNationalId("synthetic", "synthetic test numbers are accepted in test environments only")
    if is_d and is_h:
        raise InvalidNationalId("date", "a number cannot be both a D-number and an H-number")
    if not 1 <= day <= 31:
        raise InvalidNationalId("date", "the day is out of range")

    # The table's century, else (a D-number since 2021, any number from 2032,
    # whose individual number no longer tells it) the first century in which
    # the date exists.
    century = _century(individual, yy)
    birth_date = None
    for candidate in ((century,) if century is not None else (1900, 2000)):
        try:
            birth_date = date(candidate + yy, month, day)
            break
        except ValueError:
            continue
    if birth_date is None:
        raise InvalidNationalId("date", "the date does not exist")

    kind: Kind = "dnr" if is_d else "hnr" if is_h else "fnr"
    return NationalId(number=number, kind=kind, birth_date=birth_date, synthetic=synthetic)


def is_valid(value: str, *, test_environment: bool = False) -> bool:
    """True when :func:`parse` would accept ``value``."""
    try:
        parse(value, test_environment=test_environment)
    except InvalidNationalId:
        return False
    return True


def mask(number: str) -> str:
    """The date part and five asterisks: ``01019012345`` -> ``010190*****``.

    Anything that is not 11 digits comes back fully masked, so a typo is
    never echoed.
    """
    stripped = number.strip()
    if len(stripped) == 11 and _DIGITS.issuperset(stripped):
        return stripped[:6] + "*****"
    return "*" * 11


def mask_email(address: str) -> str:
    """A hint of an address: ``hanne@gmail.com`` -> ``h***@g***.com``.

    The first character of the local part, the first character of the
    domain's first label and the domain's last label are kept
    (``ola@mail.example.co.uk`` -> ``o***@m***.uk``); always three asterisks,
    so lengths are not told. Without a usable ``@`` the answer is ``***``.
    """
    local, at, domain = address.strip().rpartition("@")
    domain = domain.rstrip(".")
    if not at or not local or not domain or domain.startswith("."):
        return "***"
    first_label, dot, _ = domain.partition(".")
    tail = "." + domain.rsplit(".", 1)[1] if dot else ""
    return f"{local[0]}***@{first_label[0]}***{tail}"


def make_number(
    birth: date,
    individual: int,
    *,
    kind: Kind = "fnr",
    synthetic: bool = False,
    rule: Rule = "classic",
) -> str:
    """A number :func:`parse` accepts, for tests and demo data.

    ``synthetic`` marks the month the Tenor way (+ 80); such a number needs
    ``test_environment=True``. ``rule="classic"`` gives the one classic first
    check digit; ``rule="2032"`` gives one that only the 2032 rule accepts
    (remainder 1, else 2, else 3). Raises ValueError when the individual
    number does not give the birth year's century, or when no check digits
    exist for these nine digits under the rule asked for.
    """
    if not 0 <= individual <= 999:
        raise ValueError("the individual number is 0-999")
    if kind not in ("fnr", "dnr", "hnr"):
        raise ValueError(f"unknown kind {kind!r}")
    if kind == "hnr" and synthetic:
        raise ValueError("an H-number cannot also be synthetic")
    yy = birth.year % 100
    if _century(individual, yy) != birth.year - yy:
        raise ValueError(f"individual number {individual:03d} does not give the year {birth.year}")
    remainders: tuple[int, ...]
    if rule == "classic":
        remainders = _K1_REMAINDERS_CLASSIC
    elif rule == "2032":
        remainders = _K1_REMAINDERS_2032
    else:
        raise ValueError(f"unknown rule {rule!r}")

    day = birth.day + (_D_NUMBER_DAY if kind == "dnr" else 0)
    month = birth.month + (_H_NUMBER_MONTH if kind == "hnr" else 0) + (_TENOR_MONTH if synthetic else 0)
    prefix = [int(c) for c in f"{day:02d}{month:02d}{yy:02d}{individual:03d}"]

    sum1 = _weighted(prefix, _WEIGHTS_K1)
    for remainder in remainders:
        k1 = (remainder - sum1) % 11
        if k1 == 10:
            continue
        k2 = -_weighted([*prefix, k1], _WEIGHTS_K2) % 11
        if k2 == 10:
            continue
        return "".join(map(str, [*prefix, k1, k2]))
    raise ValueError(f"no {rule} check digits exist for these nine digits")


def _weighted(digits: list[int], weights: tuple[int, ...]) -> int:
    # zip stops at the shorter: a prefix uses the leading weights only.
    return sum(d * w for d, w in zip(digits, weights, strict=False))


def _checksums_hold(digits: list[int]) -> bool:
    first_ok = _weighted(digits, _WEIGHTS_K1) % 11 in (*_K1_REMAINDERS_CLASSIC, *_K1_REMAINDERS_2032)
    return first_ok and _weighted(digits, _WEIGHTS_K2) % 11 == 0


def _century(individual: int, yy: int) -> int | None:
    """The first year of the century the table gives, or None outside it."""
    if individual <= 499:
        return 1900
    if individual <= 749 and yy >= 54:
        return 1800
    if individual >= 900 and yy >= 40:
        return 1900
    if yy <= 39:
        return 2000  # 500-999
    return None
