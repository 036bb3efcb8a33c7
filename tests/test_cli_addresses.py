"""Hostile email addresses on the command line: every `visma-idp` command
that takes an address refuses one that is not exactly one valid address, with
a plain message and exit status 1 (tests/security/test_email_addresses.py
has the web paths)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from tests.helpers import drop_all_tables
from visma_idp.cli import main

PASSWORD = "correct horse battery"
HOSTILE = [
    "x@evil.test>@example.no",
    "a@evil.test,b@example.no",
    "Kari <kari@example.no>",
    '"kari"@example.no',
    "kari@example.no (x)",
    "kari@example.no\r\nBcc: x@evil.example.com",
    "ka\x00ri@example.no",
    "kari@example.no.",
    "a" * 65 + "@example.no",
]


@pytest.fixture
def run(settings):
    """Run the CLI on a database migrated by `visma-idp db upgrade`."""
    drop_all_tables(settings["DATABASE_URL"])
    env = {f"VISMA_IDP_{key}": str(value) for key, value in settings.items()}

    def invoke(*args, expect=0):
        result = CliRunner().invoke(main, list(args), env=env)
        if isinstance(result.exception, Exception) and not isinstance(result.exception, SystemExit):
            raise result.exception
        assert result.exit_code == expect, (result.stdout, result.stderr)
        return result

    invoke("db", "upgrade")
    invoke("users", "create", "--email", "ola@example.no", "--name", "Ola", "--password", PASSWORD)
    yield invoke
    drop_all_tables(settings["DATABASE_URL"])


def users(run) -> str:
    return run("users", "list").stdout


@pytest.mark.parametrize("email", HOSTILE)
def test_users_create_refuses_a_hostile_address(run, email):
    for extra in (["--invite"], ["--password", PASSWORD]):
        result = run("users", "create", "--email", email, "--name", "Eve", *extra, expect=1)
        assert "not a valid email address" in result.stderr
        assert "Traceback" not in result.stderr
    assert "Eve" not in users(run)


@pytest.mark.parametrize("email", HOSTILE)
def test_commands_that_look_an_address_up_refuse_a_hostile_one(run, email):
    for args in (["users", "one-time-code", "--email", email],
                 ["users", "one-time-code", "--email", "ola@example.no", "--admin", email],
                 ["users", "resend-activation", "--email", email],
                 ["admin", "grant", "--email", email, "--right", "issue_one_time_codes", "--domain", "example.no"],
                 ["admin", "revoke", "--email", email, "--right", "issue_one_time_codes"]):
        result = run(*args, expect=1)
        assert "not a valid email address" in result.stderr, args


def test_the_address_is_stored_normalised(run):
    out = run("users", "create", "--email", "Per@BØLLE.no", "--name", "Per", "--invite").stdout
    assert "per@xn--blle-gra.no" in out
    assert "per@xn--blle-gra.no" in users(run)
    run("users", "resend-activation", "--email", "PER@bølle.NO")
