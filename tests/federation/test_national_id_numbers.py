"""Norwegian national identity numbers (``federation/national_id_number.py``).

Expected results come from outside the module under test: numbers published
by Skatteetaten and fnrinfo.no (each sum worked out by hand below), and a
small second implementation here that follows the textbook formulas
(``k = 11 - (sum mod 11)``) and Skatteetaten's published 2032 formula
(``k1 = {11, 12, 13, 14} - (sum mod 11)``) literally.
"""

from __future__ import annotations

import dataclasses
import random
from datetime import date, timedelta

import pytest

from visma_idp.federation.national_id_number import (
    InvalidNationalId,
    NationalId,
    is_valid,
    make_number,
    mask,
    mask_email,
    parse,
)

# --- a second, independent implementation --------------------------------


def classic_k1(prefix9: str) -> int | None:
    d = [int(c) for c in prefix9]
    k1 = 11 - (3 * d[0] + 7 * d[1] + 6 * d[2] + 1 * d[3] + 8 * d[4] + 9 * d[5] + 4 * d[6] + 5 * d[7] + 2 * d[8]) % 11
    if k1 == 11:
        k1 = 0
    return None if k1 == 10 else k1


def classic_k2(prefix10: str) -> int | None:
    d = [int(c) for c in prefix10]
    k2 = 11 - (5 * d[0] + 4 * d[1] + 3 * d[2] + 2 * d[3] + 7 * d[4] + 6 * d[5] + 5 * d[6] + 4 * d[7] + 3 * d[8] + 2 * d[9]) % 11
    if k2 == 11:
        k2 = 0
    return None if k2 == 10 else k2


def classic_complete(prefix9: str) -> str | None:
    """The number with classic check digits, or None when one would be 10."""
    k1 = classic_k1(prefix9)
    if k1 is None:
        return None
    k2 = classic_k2(prefix9 + str(k1))
    return None if k2 is None else f"{prefix9}{k1}{k2}"


def classic_valid(number: str) -> bool:
    return classic_complete(number[:9]) == number


def k1_values_2032(prefix9: str) -> set[int]:
    """Skatteetaten's formula as published: {11..14} - (S mod 11), over 10 minus 11, 10 dropped."""
    d = [int(c) for c in prefix9]
    rest = (3 * d[0] + 7 * d[1] + 6 * d[2] + 1 * d[3] + 8 * d[4] + 9 * d[5] + 4 * d[6] + 5 * d[7] + 2 * d[8]) % 11
    values = set()
    for base in (11, 12, 13, 14):
        k1 = base - rest
        if k1 > 10:
            k1 -= 11
        if k1 != 10:
            values.add(k1)
    return values


def valid_under_2032_rule(number: str) -> bool:
    k1 = int(number[9])
    return k1 in k1_values_2032(number[:9]) and classic_k2(number[:10]) == int(number[10])


def first_completable(prefix6: str, individuals: range) -> str:
    """The first number ``prefix6 + III + classic check digits`` that exists."""
    for individual in individuals:
        number = classic_complete(f"{prefix6}{individual:03d}")
        if number is not None:
            return number
    raise AssertionError(f"no individual number in {individuals} completes {prefix6}")


# The century table, written out as (individual numbers, birth years).
CENTURY_TABLE = [
    (range(0, 500), range(1900, 2000)),
    (range(500, 750), range(1854, 1900)),
    (range(500, 1000), range(2000, 2040)),
    (range(900, 1000), range(1940, 2000)),
]


def reason_of(value: str, *, test_environment: bool = False) -> str:
    with pytest.raises(InvalidNationalId) as caught:
        parse(value, test_environment=test_environment)
    return caught.value.reason


# --- published numbers -----------------------------------------------------

# Sums by hand, weights 3 7 6 1 8 9 4 5 2 (+1 on K1) and 5 4 3 2 7 6 5 4 3 2 (+1 on K2):
#
# 02013299997 (Skatteetaten's 2032 page, born 02.01.2032, III 999):
#   K1: 0+14+0+1+24+18+36+45+18 = 156, 156 mod 11 = 2, k1 = 11-2 = 9
#   K2: 0+8+0+2+21+12+45+36+27+2*9 = 169, 169 mod 11 = 4, k2 = 11-4 = 7
# 02013299903 (same page, the same prefix with the 2032 rule):
#   K1 = 0: 156+0 = 156, remainder 2 (allowed only from 2032)
#   K2: 151+2*0 = 151, 151 mod 11 = 8, k2 = 11-8 = 3
# 02013299806 (same page, III 998): K1: 156-2 = 154 = 14*11, remainder 0, k1 = 0
#   K2: 169-18-3 = 148, 148 mod 11 = 5, k2 = 11-5 = 6
# 30108299920 (same page, born 30.10.1982, III 999 from the 900 series):
#   K1: 9+0+6+0+64+18+36+45+18 = 196, 196 mod 11 = 9, k1 = 11-9 = 2
#   K2: 15+0+3+0+56+12+45+36+27+2*2 = 198 = 18*11, k2 = 0
# 30108299939 (same page, next number on that prefix, remainder 1):
#   K1 = 3: 196+3 = 199, 199 mod 11 = 1 (allowed only from 2032)
#   K2: 194+2*3 = 200, 200 mod 11 = 2, k2 = 11-2 = 9
# 31129956715 (fnrinfo.no's worked example; III 567 with YY 99 means 1899):
#   K1: 9+7+6+2+72+81+20+30+14 = 241, 241 mod 11 = 10, k1 = 11-10 = 1
#   K2: 15+4+3+4+63+54+25+24+21+2*1 = 215, 215 mod 11 = 6, k2 = 11-6 = 5
PUBLISHED = [
    ("02013299997", date(2032, 1, 2), "classic"),
    ("02013299903", date(2032, 1, 2), "2032"),
    ("02013299806", date(2032, 1, 2), "classic"),
    ("30108299920", date(1982, 10, 30), "classic"),
    ("30108299939", date(1982, 10, 30), "2032"),
    ("31129956715", date(1899, 12, 31), "classic"),
]


@pytest.mark.parametrize(("number", "born", "rule"), PUBLISHED)
def test_published_numbers_parse(number: str, born: date, rule: str) -> None:
    parsed = parse(number)
    assert parsed == NationalId(number=number, kind="fnr", birth_date=born, synthetic=False)
    assert is_valid(number)
    # The second implementation agrees on which rule made the number.
    assert valid_under_2032_rule(number)
    assert classic_valid(number) is (rule == "classic")


@pytest.mark.parametrize("number", [n for n, _, rule in PUBLISHED if rule == "2032"])
def test_a_number_only_the_2032_rule_allows_is_accepted(number: str) -> None:
    assert not classic_valid(number)
    assert parse(number).kind == "fnr"


# --- the two checksum rules ------------------------------------------------


def random_birth(rng: random.Random) -> tuple[date, int]:
    individuals, years = rng.choice(CENTURY_TABLE)
    start, end = date(years.start, 1, 1), date(years.stop - 1, 12, 31)
    born = start + timedelta(days=rng.randrange((end - start).days + 1))
    return born, rng.choice(individuals)


def test_generated_numbers_agree_with_the_second_implementation() -> None:
    rng = random.Random(2032)
    classic_seen = new_seen = 0
    for _ in range(500):
        born, individual = random_birth(rng)
        try:
            number = make_number(born, individual)
        except ValueError:
            assert classic_complete(f"{born:%d%m}{born.year % 100:02d}{individual:03d}") is None
        else:
            classic_seen += 1
            assert classic_valid(number)
            assert parse(number).birth_date == born
        number = make_number(born, individual, rule="2032")  # always exists, see below
        new_seen += 1
        assert not classic_valid(number)
        assert valid_under_2032_rule(number)
        assert parse(number).birth_date == born
    assert classic_seen > 400 and new_seen == 500


def test_first_check_digit_accepts_exactly_skatteetatens_values() -> None:
    rng = random.Random(11)
    for _ in range(300):
        born, individual = random_birth(rng)
        prefix9 = f"{born:%d%m}{born.year % 100:02d}{individual:03d}"
        allowed = k1_values_2032(prefix9)
        assert len(allowed) in (3, 4)
        assert classic_k1(prefix9) in allowed | {None}
        for k1 in range(10):
            accepted = {last for last in range(10) if is_valid(f"{prefix9}{k1}{last}")}
            k2 = classic_k2(f"{prefix9}{k1}")
            assert accepted == ({k2} if k1 in allowed and k2 is not None else set()), (prefix9, k1)


@pytest.mark.parametrize("number", ["31129956715", "30108299939", "02013299903"])
@pytest.mark.parametrize("position", range(11))
def test_every_single_digit_change_is_caught(number: str, position: int) -> None:
    for digit in "0123456789":
        if digit == number[position]:
            continue
        changed = number[:position] + digit + number[position + 1 :]
        assert reason_of(changed, test_environment=True) == "checksum", changed


def test_a_second_check_digit_of_10_means_no_number() -> None:
    # Nine digits with a classic K1 whose classic K2 would then be 10.
    individual = next(i for i in range(500) if classic_k1(f"150575{i:03d}") is not None and classic_complete(f"150575{i:03d}") is None)
    prefix10 = f"150575{individual:03d}{classic_k1(f'150575{individual:03d}')}"
    for last in range(10):
        assert reason_of(f"{prefix10}{last}") == "checksum"
    with pytest.raises(ValueError):
        make_number(date(1975, 5, 15), individual)


def test_a_classic_first_check_digit_of_10_means_only_the_2032_rule_can_help() -> None:
    # Nine digits whose classic K1 would be 10 (sum mod 11 = 1).
    individual = next(i for i in range(500) if classic_k1(f"150575{i:03d}") is None)
    born = date(1975, 5, 15)
    with pytest.raises(ValueError):
        make_number(born, individual)
    # The 2032 rule allows K1 = 0, 1 or 2 here (remainders 1, 2, 3), never 10.
    assert k1_values_2032(f"150575{individual:03d}") == {0, 1, 2}
    number = make_number(born, individual, rule="2032")
    assert int(number[9]) in {0, 1, 2}
    assert parse(number).birth_date == born
    assert not classic_valid(number)


# --- format ----------------------------------------------------------------

GOOD = "31129956715"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "3112995671",  # 10 digits
        "311299567150",  # 12 digits
        "3112995671a",
        "3112995671O",  # letter O, not zero
        "311299 56715",
        "311299-56715",
        "3112995 6715",
        "31129956715\x00",
        "٣١١٢٩٩٥٦٧١٥",  # Arabic-Indic digits
        "３１１２９９５６７１５",  # fullwidth digits
        "+1129956715",
        "1.129956715",
    ],
)
def test_anything_but_eleven_ascii_digits_is_a_format_error(value: str) -> None:
    assert reason_of(value) == "format"
    assert not is_valid(value)


@pytest.mark.parametrize("value", [f" {GOOD}", f"{GOOD} ", f"\t{GOOD}\n", f"  {GOOD}  "])
def test_surrounding_whitespace_is_stripped(value: str) -> None:
    assert parse(value).number == GOOD


def test_a_value_that_is_not_a_string_is_invalid() -> None:
    assert not is_valid(None)  # type: ignore[arg-type]
    assert not is_valid(31129956715)  # type: ignore[arg-type]


# --- dates and the century table -------------------------------------------


@pytest.mark.parametrize(
    "prefix6",
    [
        "310275",  # 31 February
        "300275",  # 30 February
        "290275",  # 29 February, 1975 is no leap year
        "310475",  # 31 April
        "000175",  # day 0
        "320175",  # day 32
        "011375",  # month 13
        "010075",  # month 0
        "013975",  # month 39
        "015375",  # month 53: past the H range
        "016575",  # month 65: below the NAV range
        "017875",  # month 78: past the NAV range
        "018075",  # month 80: below the Tenor range
        "019375",  # month 93: past the Tenor range
    ],
)
def test_impossible_dates_are_refused(prefix6: str) -> None:
    number = first_completable(prefix6, range(0, 500))
    assert reason_of(number, test_environment=True) == "date"


def test_29_february_needs_a_leap_year() -> None:
    # 1900 was no leap year, 2000 was (400 divides it); 1904 and 2004 were.
    assert reason_of(first_completable("290200", range(0, 500))) == "date"
    assert parse(first_completable("290200", range(500, 1000))).birth_date == date(2000, 2, 29)
    assert parse(first_completable("290204", range(0, 500))).birth_date == date(1904, 2, 29)
    assert parse(first_completable("290204", range(500, 1000))).birth_date == date(2004, 2, 29)


@pytest.mark.parametrize(
    ("individuals", "yy", "year"),
    [
        (range(0, 10), 0, 1900),
        (range(490, 500), 99, 1999),
        (range(490, 500), 39, 1939),
        (range(500, 510), 0, 2000),
        (range(990, 1000), 39, 2039),
        (range(740, 750), 39, 2039),
        (range(750, 760), 39, 2039),
        (range(500, 510), 54, 1854),
        (range(740, 750), 99, 1899),
        (range(900, 910), 40, 1940),
        (range(990, 1000), 99, 1999),
        # outside the table: D-numbers since 2021 and every number from 2032 use any
        # individual number, so these are read in the 1900s (else the 2000s)
        (range(500, 510), 40, 1940),
        (range(740, 750), 53, 1953),
        (range(750, 760), 54, 1954),
        (range(890, 900), 99, 1999),
        (range(890, 900), 40, 1940),
    ],
)
def test_century_table_edges(individuals: range, yy: int, year: int) -> None:
    number = first_completable(f"0101{yy:02d}", individuals)
    assert parse(number).birth_date == date(year, 1, 1)



# --- D-, H- and synthetic numbers ------------------------------------------


@pytest.mark.parametrize(("prefix6", "born"), [("410190", date(1990, 1, 1)), ("711290", date(1990, 12, 31))])
def test_d_numbers(prefix6: str, born: date) -> None:
    parsed = parse(first_completable(prefix6, range(0, 500)))
    assert (parsed.kind, parsed.birth_date, parsed.synthetic) == ("dnr", born, False)


@pytest.mark.parametrize("prefix6", ["400190", "720190", "710290", "700290", "710490"])
def test_d_numbers_with_impossible_days_are_refused(prefix6: str) -> None:
    assert reason_of(first_completable(prefix6, range(0, 500))) == "date"


@pytest.mark.parametrize(("prefix6", "born"), [("014190", date(1990, 1, 1)), ("315290", date(1990, 12, 31))])
def test_h_numbers(prefix6: str, born: date) -> None:
    parsed = parse(first_completable(prefix6, range(0, 500)))
    assert (parsed.kind, parsed.birth_date, parsed.synthetic) == ("hnr", born, False)


def test_a_number_cannot_be_d_and_h_at_once() -> None:
    assert reason_of(first_completable("414190", range(0, 500)), test_environment=True) == "date"


@pytest.mark.parametrize(
    ("prefix6", "born"),
    [
        ("018190", date(1990, 1, 1)),  # Tenor: month + 80
        ("319290", date(1990, 12, 31)),
        ("016690", date(1990, 1, 1)),  # older NAV: month + 65
        ("317790", date(1990, 12, 31)),
    ],
)
def test_synthetic_numbers_need_a_test_environment(prefix6: str, born: date) -> None:
    number = first_completable(prefix6, range(0, 500))
    assert reason_of(number) == "synthetic"
    assert not is_valid(number)
    parsed = parse(number, test_environment=True)
    assert (parsed.kind, parsed.birth_date, parsed.synthetic) == ("fnr", born, True)


def test_a_synthetic_d_number() -> None:
    number = first_completable("418190", range(0, 500))
    assert reason_of(number) == "synthetic"
    parsed = parse(number, test_environment=True)
    assert (parsed.kind, parsed.birth_date, parsed.synthetic) == ("dnr", date(1990, 1, 1), True)


def test_a_synthetic_number_with_an_impossible_date_is_still_refused() -> None:
    assert reason_of(first_completable("318290", range(0, 500)), test_environment=True) == "date"  # 31 Feb


@pytest.mark.parametrize(
    ("kind", "synthetic", "prefix"),
    [("fnr", False, "150575"), ("dnr", False, "550575"), ("hnr", False, "154575"), ("fnr", True, "158575"), ("dnr", True, "558575")],
)
@pytest.mark.parametrize("rule", ["classic", "2032"])
def test_make_number_kinds(kind: str, synthetic: bool, prefix: str, rule: str) -> None:
    born = date(1975, 5, 15)
    individual = next(i for i in range(500) if classic_complete(f"{prefix}{i:03d}") is not None)
    number = make_number(born, individual, kind=kind, synthetic=synthetic, rule=rule)  # type: ignore[arg-type]
    assert number.startswith(f"{prefix}{individual:03d}")
    assert classic_valid(number) is (rule == "classic")
    assert valid_under_2032_rule(number)
    parsed = parse(number, test_environment=True)
    assert (parsed.kind, parsed.birth_date, parsed.synthetic) == (kind, born, synthetic)


@pytest.mark.parametrize(
    ("birth", "individual", "options"),
    [
        (date(1975, 5, 15), -1, {}),
        (date(1975, 5, 15), 1000, {}),
        (date(1975, 5, 15), 600, {}),  # 600 does not give 1975
        (date(2005, 5, 15), 100, {}),  # 100 gives 1905
        (date(1850, 5, 15), 600, {}),  # before the table
        (date(1975, 5, 15), 100, {"kind": "hnr", "synthetic": True}),
        (date(1975, 5, 15), 100, {"kind": "xnr"}),
        (date(1975, 5, 15), 100, {"rule": "2040"}),
    ],
)
def test_make_number_refuses_what_cannot_be(birth: date, individual: int, options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        make_number(birth, individual, **options)  # type: ignore[arg-type]


# --- the result and the error ----------------------------------------------


def test_the_result_is_frozen_and_does_not_show_the_number() -> None:
    parsed = parse(GOOD)
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.number = "0"  # type: ignore[misc]
    assert GOOD not in repr(parsed)
    assert "311299*****" in repr(parsed)


def test_the_error_is_a_value_error_without_the_number() -> None:
    changed = GOOD[:-1] + "6"
    with pytest.raises(ValueError) as caught:
        parse(changed)
    assert isinstance(caught.value, InvalidNationalId)
    assert changed not in str(caught.value)


# --- masking -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("01019012345", "010190*****"),
        (" 31129956715 ", "311299*****"),
        ("0101901234", "***********"),
        ("0101901234x", "***********"),
        ("", "***********"),
    ],
)
def test_mask(value: str, masked: str) -> None:
    assert mask(value) == masked


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("hanne@gmail.com", "h***@g***.com"),
        ("a@b.no", "a***@b***.no"),
        ("h@gmail.com", "h***@g***.com"),
        ("ola.nordmann@mail.example.co.uk", "o***@m***.uk"),
        ("kari@example.com.", "k***@e***.com"),
        ("root@localhost", "r***@l***"),
        ('"a@b"@example.no', '"***@e***.no'),
        ("  Kari@Example.NO ", "K***@E***.NO"),
        ("no-at-sign", "***"),
        ("@example.com", "***"),
        ("kari@", "***"),
        ("kari@.com", "***"),
    ],
)
def test_mask_email(address: str, masked: str) -> None:
    assert mask_email(address) == masked
