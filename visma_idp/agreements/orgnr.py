"""Norwegian organisation numbers (organisasjonsnummer, Enhetsregisteret).

Rules: nine ASCII digits (spaces between groups, as in "974 760 673", are
allowed and dropped); the first digit is 8 or 9; the last is a mod-11 check
digit over the first eight with weights 3 2 7 6 5 4 3 2 (remainder 0 gives
0, a check digit of 10 means no such number). Pure: no Flask, no I/O.
"""

from __future__ import annotations

WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)


class InvalidOrgNumber(ValueError):
    """Not an organisation number (the message says why; it is plain English for the CLI and API)."""


def check_digit(first_eight: str) -> int | None:
    """The check digit of eight digits, or None when none exists (remainder 1)."""
    rest = sum(w * int(d) for w, d in zip(WEIGHTS, first_eight, strict=True)) % 11
    digit = (11 - rest) % 11
    return None if digit == 10 else digit


def parse(value: str) -> str:
    """The nine digits of ``value``.

    Raises:
        InvalidOrgNumber: not nine digits, not starting with 8 or 9, or a wrong check digit.
    """
    number = "".join(str(value or "").split())
    if len(number) != 9 or not number.isascii() or not number.isdigit():
        raise InvalidOrgNumber("an organisation number is nine digits, like 974760673")
    if number[0] not in "89":
        raise InvalidOrgNumber("a Norwegian organisation number starts with 8 or 9")
    if check_digit(number[:8]) != int(number[8]):
        raise InvalidOrgNumber("the check digit of this organisation number is wrong")
    return number
