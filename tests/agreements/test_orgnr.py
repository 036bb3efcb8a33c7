"""Norwegian organisation numbers (``agreements/orgnr.py``), checked against
check digits computed here, independently, and a few public numbers."""

from __future__ import annotations

import pytest

from visma_idp.agreements.orgnr import InvalidOrgNumber, check_digit, parse


def expected_check_digit(first_eight: str) -> int | None:
    """Mod 11 with weights 3 2 7 6 5 4 3 2, written out on its own."""
    total = 0
    for weight, digit in zip([3, 2, 7, 6, 5, 4, 3, 2], first_eight, strict=True):
        total += weight * int(digit)
    rest = total % 11
    if rest == 0:
        return 0
    if rest == 1:
        return None  # 11 - 1 = 10: no number has these eight digits
    return 11 - rest


def valid_numbers(count: int) -> list[str]:
    out = []
    for start in range(80000000, 100000000, 1234567):
        first = str(start)
        digit = expected_check_digit(first)
        if digit is not None:
            out.append(first + str(digit))
        if len(out) == count:
            break
    return out


@pytest.mark.parametrize("number", valid_numbers(12))
def test_numbers_with_the_right_check_digit_are_taken(number):
    assert parse(number) == number
    assert check_digit(number[:8]) == int(number[8])


@pytest.mark.parametrize("number", [
    "974760673",  # Brønnøysundregistrene
    "971526920",  # Statistisk sentralbyrå
    "923609016",  # Equinor ASA
])
def test_public_numbers(number):
    assert parse(number) == number


def test_a_remainder_of_zero_gives_check_digit_zero():
    # eight digits whose weighted sum is a multiple of 11
    first = next(str(n) for n in range(80000000, 80010000) if expected_check_digit(str(n)) == 0)
    assert check_digit(first) == 0
    assert parse(first + "0") == first + "0"


@pytest.mark.parametrize("typed", ["974 760 673", " 974760673 ", "974\t760 673", "97 47 60 67 3"])
def test_spaces_between_groups_are_dropped(typed):
    assert parse(typed) == "974760673"


@pytest.mark.parametrize("number", valid_numbers(6))
def test_every_other_last_digit_is_refused(number):
    for digit in "0123456789":
        if digit != number[8]:
            with pytest.raises(InvalidOrgNumber, match="check digit"):
                parse(number[:8] + digit)


def test_eight_digits_whose_check_digit_would_be_ten_are_no_number():
    first = next(str(n) for n in range(90000000, 90010000) if expected_check_digit(str(n)) is None)
    assert check_digit(first) is None
    for digit in "0123456789":
        with pytest.raises(InvalidOrgNumber, match="check digit"):
            parse(first + digit)


@pytest.mark.parametrize("value", ["", "97476067", "9747606730", "97476067 3 1", "1" * 20])
def test_wrong_length_is_refused(value):
    with pytest.raises(InvalidOrgNumber, match="nine digits"):
        parse(value)


@pytest.mark.parametrize("value", ["97476067a", "NO974760673", "974-760-673", "974.760.673", "+74760673", "9747606７3"])
def test_letters_and_punctuation_are_refused(value):
    with pytest.raises(InvalidOrgNumber, match="nine digits"):
        parse(value)


@pytest.mark.parametrize("value", [
    "٩٧٤٧٦٠٦٧٣",  # Arabic-Indic digits: isdigit() but not ASCII
    "９７４７６０６７３",  # full-width digits
    "97476067３",
    "९७४७६०६७३",  # Devanagari
])
def test_non_ascii_digits_are_refused(value):
    assert value.isdigit()
    with pytest.raises(InvalidOrgNumber, match="nine digits"):
        parse(value)


@pytest.mark.parametrize("first", [str(d) for d in range(8)])
def test_the_first_digit_is_8_or_9(first):
    # a number with the right check digit that starts with anything but 8 or 9 is still refused
    eight = next(first + str(n).zfill(7) for n in range(1000) if expected_check_digit(first + str(n).zfill(7)) is not None)
    with pytest.raises(InvalidOrgNumber, match="starts with 8 or 9"):
        parse(eight + str(expected_check_digit(eight)))


def test_nothing_is_refused():
    with pytest.raises(InvalidOrgNumber, match="nine digits"):
        parse(None)  # type: ignore[arg-type]


def test_check_digit_needs_exactly_eight_digits():
    with pytest.raises(ValueError):
        check_digit("1234567")
    with pytest.raises(ValueError):
        check_digit("123456789")
