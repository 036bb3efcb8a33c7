"""`visma-idp admin grant|revoke|list` and `visma-idp users one-time-code`,
run in-process with click's CliRunner on a migrated test database."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from tests.admin import CODE_RE, events, give_factor, lands_in_enrolment, sign_in, verify_with_code
from tests.helpers import drop_all_tables
from visma_idp.cli import main

PASSWORD = "correct horse battery"


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
    for email, name in (("ola@example.no", "Ola Admin"), ("kari@example.no", "Kari"), ("eva@evil-example.no", "Eva")):
        invoke("users", "create", "--email", email, "--name", name, "--password", PASSWORD)
    yield invoke
    drop_all_tables(settings["DATABASE_URL"])


def test_grant_list_revoke(run, make_app):
    out = run("admin", "grant", "--email", "Ola@Example.no", "--right", "issue_one_time_codes",
              "--domain", "example.no", "--domain", "@Sub.Example.NO").stdout
    assert "ola@example.no holds issue_one_time_codes for: example.no, sub.example.no" in out
    listed = run("admin", "list").stdout
    assert "ola@example.no" in listed and "example.no sub.example.no" in listed
    out = run("admin", "revoke", "--email", "ola@example.no", "--right", "issue_one_time_codes",
              "--domain", "sub.example.no").stdout
    assert "removed for: sub.example.no" in out
    assert "sub.example.no" not in run("admin", "list").stdout
    run("admin", "revoke", "--email", "ola@example.no", "--right", "issue_one_time_codes")
    assert "ola@example.no" not in run("admin", "list").stdout
    app = make_app()
    assert len(events(app, "admin_right_granted")) == 1
    assert len(events(app, "admin_right_revoked")) == 2


def test_grant_refuses_bad_input(run):
    assert "not a domain name" in run("admin", "grant", "--email", "ola@example.no", "--right", "issue_one_time_codes",
                                      "--domain", "*.example.no", expect=1).stderr
    assert "no user with email" in run("admin", "grant", "--email", "nobody@example.no", "--right",
                                       "issue_one_time_codes", "--domain", "example.no", expect=1).stderr
    run("admin", "grant", "--email", "ola@example.no", "--right", "be_root", "--domain", "example.no", expect=2)
    run("admin", "grant", "--email", "ola@example.no", "--right", "issue_one_time_codes", expect=2)  # --domain needed


def test_the_operator_issues_a_code_that_works(run, make_app):
    out = run("users", "one-time-code", "--email", "kari@example.no").stdout
    match = CODE_RE.search(out)
    assert match and "single use" in out and "not shown again" in out
    app = make_app(keys=True)
    (issued,) = events(app, "one_time_code_issued")
    assert issued.details["operator"] is True and issued.details["via"] == "cli"
    from visma_idp.storage import MailOutbox, db, queries

    with app.app_context():
        assert db.session.scalar(db.select(MailOutbox.kind).where(MailOutbox.to_addr == "kari@example.no")
                                 .order_by(MailOutbox.id.desc()).limit(1)) == "one_time_code_issued"
        kari = queries.user_by_email("kari@example.no").id
    give_factor(app, kari)
    client = app.test_client()
    sign_in(client, "kari@example.no")
    assert lands_in_enrolment(client, verify_with_code(client, match.group(1)))


def test_issuing_as_an_admin_checks_the_right(run, make_app):
    args = ("users", "one-time-code", "--email", "kari@example.no", "--admin", "ola@example.no")
    assert "refused (no_right)" in run(*args, expect=1).stderr
    run("admin", "grant", "--email", "ola@example.no", "--right", "issue_one_time_codes", "--domain", "example.no")
    assert CODE_RE.search(run(*args).stdout)
    out = run("users", "one-time-code", "--email", "eva@evil-example.no", "--admin", "ola@example.no", expect=1)
    assert "refused (outside_domain)" in out.stderr and not CODE_RE.search(out.stdout)
    assert "refused (self)" in run("users", "one-time-code", "--email", "ola@example.no", "--admin",
                                   "ola@example.no", expect=1).stderr
    assert "no user with email" in run("users", "one-time-code", "--email", "kari@example.no", "--admin",
                                       "ghost@example.no", expect=1).stderr
    app = make_app()
    assert [e.details["reason"] for e in events(app, "one_time_code_refused")] == ["no_right", "outside_domain", "self"]
    assert [e.details["admin_email"] for e in events(app, "one_time_code_issued")] == ["ola@example.no"]


def test_the_operator_gets_a_clear_message_for_an_unknown_user(run):
    assert "refused (unknown_user)" in run("users", "one-time-code", "--email", "ghost@example.no", expect=1).stderr


def test_grant_invite_users_as_the_docs_say(run):
    """docs/accounts.md grants `invite_users` from the CLI; the command must offer it."""
    out = run("admin", "grant", "--email", "ola@example.no", "--right", "invite_users", "--domain", "example.no").stdout
    assert "ola@example.no holds invite_users for: example.no" in out
    assert "invite_users" in run("admin", "list").stdout


# -- system admins and agreement roles --------------------------------------------------------------


def test_grant_list_revoke_a_system_admin(run, make_app):
    assert "ola@example.no is a system admin" in run("admin", "grant", "--email", "ola@example.no", "--system").stdout
    listed = run("admin", "list").stdout
    assert any(line.split()[:2] == ["ola@example.no", "system_admin"] for line in listed.splitlines())
    app = make_app()
    from visma_idp.admin import rights
    from visma_idp.storage import queries

    with app.app_context():
        assert rights.is_system_admin(queries.user_by_email("ola@example.no"))
        assert not rights.is_system_admin(queries.user_by_email("kari@example.no"))
    out = run("admin", "revoke", "--email", "ola@example.no", "--system").stdout
    assert "ola@example.no is no longer a system admin" in out
    assert "system_admin" not in run("admin", "list").stdout
    assert "was no system admin" in run("admin", "revoke", "--email", "ola@example.no", "--system").stdout
    granted = [e for e in events(app, "admin_right_granted") if e.details["right"] == "system_admin"]
    revoked = [e for e in events(app, "admin_right_revoked") if e.details["right"] == "system_admin"]
    assert len(granted) == 1 and len(revoked) == 1 and granted[0].subject == "ola@example.no"


def test_make_and_unmake_an_agreement_admin(run, make_app):
    run("agreements", "create", "--name", "Nordlys Regnskap AS", "--org-number", "974760673")
    run("clients", "create", "--client-id", "expense", "--redirect-uri", "https://rp.example.com/cb")
    out = run("admin", "grant", "--email", "kari@example.no", "--agreement", "974760673", "--role", "admin",
              "--role", "employee").stdout
    assert "kari@example.no holds in Nordlys Regnskap AS (974760673): admin, employee" in out
    out = run("admin", "grant", "--email", "kari@example.no", "--agreement", "974 760 673", "--role", "approver",
              "--client", "expense").stdout
    assert "approver (expense)" in out
    listed = run("admin", "list").stdout
    assert "agreement admins:" in listed
    [row] = [line for line in listed.split("agreement admins:")[1].splitlines() if "kari@example.no" in line]
    assert "Nordlys Regnskap AS" in row and "974760673" in row
    app = make_app()
    from visma_idp.agreements import invitations, service
    from visma_idp.storage import queries

    with app.app_context():
        assert invitations.may_invite(queries.user_by_email("kari@example.no"), service.find("974760673"))
    out = run("admin", "revoke", "--email", "kari@example.no", "--agreement", "974760673", "--role", "admin").stdout
    assert "removed in Nordlys Regnskap AS (974760673): admin" in out
    assert "agreement admins:" not in run("admin", "list").stdout
    with app.app_context():
        kari = queries.user_by_email("kari@example.no")
        agreement = service.find("974760673")
        assert not invitations.may_invite(kari, agreement)
        assert service.membership(kari.id, agreement.id).roles == [  # the other roles stay
            {"role": "approver", "client": "expense"}, {"role": "employee", "client": None}]
    changed = events(app, "agreement_roles_changed")
    assert len(changed) == 3 and all("by" not in e.details for e in changed)  # the operator did it
    assert "no role (none held)" in run("admin", "revoke", "--email", "kari@example.no", "--agreement", "974760673",
                                        "--role", "admin").stdout


def test_the_new_options_refuse_bad_input(run):
    run("agreements", "create", "--name", "Nordlys Regnskap AS", "--org-number", "974760673")
    for args in (
        ("admin", "grant", "--email", "ola@example.no"),  # nothing to grant
        ("admin", "grant", "--email", "ola@example.no", "--system", "--domain", "example.no"),
        ("admin", "grant", "--email", "ola@example.no", "--system", "--right", "invite_users", "--domain", "x.no"),
        ("admin", "grant", "--email", "ola@example.no", "--agreement", "974760673"),  # no role
        ("admin", "grant", "--email", "ola@example.no", "--right", "invite_users", "--domain", "x.no", "--role", "a"),
        ("admin", "revoke", "--email", "ola@example.no", "--system", "--client", "expense"),
        ("admin", "revoke", "--email", "ola@example.no", "--agreement", "974760673"),
    ):
        run(*args, expect=2)
    assert "no agreement with the id or organisation number" in run(
        "admin", "grant", "--email", "ola@example.no", "--agreement", "923609016", "--role", "admin", expect=1).stderr
    assert "--client: no client" in run("admin", "grant", "--email", "ola@example.no", "--agreement", "974760673",
                                        "--role", "approver", "--client", "nosuchapp", expect=1).stderr
    assert "--role: a short word" in run("admin", "grant", "--email", "ola@example.no", "--agreement", "974760673",
                                         "--role", "no/slash", expect=1).stderr
    assert "is not a member" in run("admin", "revoke", "--email", "ola@example.no", "--agreement", "974760673",
                                    "--role", "admin", expect=1).stderr
    assert "no user with email" in run("admin", "grant", "--email", "ghost@example.no", "--system", expect=1).stderr
