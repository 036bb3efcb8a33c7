"""The ``visma-idp agreements`` commands, run in-process on the test database,
and the demo agreements ``seed_demo`` adds."""

from __future__ import annotations

import json

import pytest

from tests import test_cli as cli_tests

# the CLI's fixtures (tests/test_cli.py), named here so pytest finds them
env, run, migrated = cli_tests.env, cli_tests.run, cli_tests.migrated

PASSWORD = "correct horse battery staple"
NORDLYS = "923456783"
FJORD = "934567897"
MFA = "urn:visma_idp:acr:mfa"
PHR = "urn:visma_idp:acr:phr"


@pytest.fixture
def cli(migrated):
    """A migrated database with two users and a client."""
    for email, name in (("kari@example.no", "Kari Nordmann"), ("ola@example.no", "Ola Nordmann")):
        migrated("users", "create", "--email", email, "--name", name, "--password", PASSWORD)
    migrated("clients", "create", "--client-id", "payroll", "--redirect-uri", "https://payroll.example/cb")
    return migrated


def create(cli, name="Nordlys Regnskap AS", org_number=NORDLYS, *extra, expect=0):
    result = cli("agreements", "create", "--name", name, "--org-number", org_number, *extra, expect=expect)
    return json.loads(result.stdout) if expect == 0 else result


def lines(result) -> list[list[str]]:
    return [line.split("  ") for line in result.stdout.splitlines()]


def json_lines(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture
def outbox(make_app):
    """The roles_changed messages so far, once the notices' batch window has
    closed (the mail worker's flush, on a clock past the window): (to, text)
    oldest first. Each command runs at once, so reading after each one sends
    that command's changes as a mail of their own."""
    from visma_idp.account.notifications import flush_due_notices
    from visma_idp.storage import MailOutbox, db

    def read():
        app = make_app()
        idp = app.extensions["visma_idp"]
        idp.clock.advance(idp.settings["NOTIFY_BATCH_SECONDS"] + 1)
        with app.app_context():
            flush_due_notices(idp)
            rows = db.session.scalars(db.select(MailOutbox).where(MailOutbox.kind == "roles_changed")
                                      .order_by(MailOutbox.id))
            return [(m.to_addr, m.text_body) for m in rows]

    return read


# -- create ----------------------------------------------------------------------


def test_create_prints_the_agreement_as_json(cli):
    out = create(cli, "  Nordlys   Regnskap AS ", "923 456 783", "--domain", "Nordlys.NO", "--domain", "@regnskap.example",
                 "--require-mfa")
    assert set(out) == {"id", "name", "org_number", "domains", "status", "require_acr"}
    assert len(out["id"]) == 36
    assert out["name"] == "Nordlys Regnskap AS"
    assert out["org_number"] == NORDLYS
    assert out["domains"] == ["nordlys.no", "regnskap.example"]
    assert out["status"] == "active"
    assert out["require_acr"] == MFA


def test_create_without_a_level_and_with_phishing_resistant(cli):
    assert create(cli)["require_acr"] is None
    assert create(cli, "Fjord Transport AS", FJORD, "--require-phishing-resistant")["require_acr"] == PHR


def test_create_refuses_both_levels(cli):
    result = create(cli, "X", NORDLYS, "--require-mfa", "--require-phishing-resistant", expect=1)
    assert "either --require-mfa or --require-phishing-resistant" in result.stderr
    assert cli("agreements", "list", "--json").stdout == ""


def test_a_taken_organisation_number_is_refused(cli):
    create(cli)
    result = create(cli, "Someone Else AS", "923 456 783", expect=1)
    assert result.stderr == f"visma-idp: an agreement with organisation number {NORDLYS} exists already\n"
    assert [a["name"] for a in json_lines(cli("agreements", "list", "--json"))] == ["Nordlys Regnskap AS"]


@pytest.mark.parametrize(("org_number", "reason"), [
    ("923456784", "the check digit of this organisation number is wrong"),
    ("92345678", "an organisation number is nine digits"),
    ("92345678X", "an organisation number is nine digits"),
    ("123456785", "starts with 8 or 9"),
])
def test_a_bad_organisation_number_is_refused(cli, org_number, reason):
    result = create(cli, "Bad AS", org_number, expect=1)
    assert result.stderr.startswith("visma-idp: --org-number: ") and reason in result.stderr
    assert cli("agreements", "list", "--json").stdout == ""


def test_bad_name_and_domain_are_refused(cli):
    assert "--name" in create(cli, "   ", NORDLYS, expect=1).stderr
    assert "not a domain name" in create(cli, "Nordlys", NORDLYS, "--domain", "not a domain", expect=1).stderr
    assert cli("agreements", "list", "--json").stdout == ""


# -- list ------------------------------------------------------------------------


def test_list_as_a_table_and_as_json(cli):
    nordlys = create(cli, "Nordlys Regnskap AS", NORDLYS, "--require-mfa")
    fjord = create(cli, "Fjord Transport AS", FJORD)
    cli("agreements", "add-member", "--agreement", NORDLYS, "--email", "kari@example.no", "--role", "employee")
    cli("agreements", "add-member", "--agreement", NORDLYS, "--email", "ola@example.no")

    rows = [[cell.strip() for cell in row if cell.strip()] for row in lines(cli("agreements", "list"))]
    assert rows == [
        ["id", "name", "org_number", "members", "require"],
        [fjord["id"], "Fjord Transport AS", FJORD, "0", "-"],  # by name
        [nordlys["id"], "Nordlys Regnskap AS", NORDLYS, "2", "mfa"],
    ]
    items = json_lines(cli("agreements", "list", "--json"))
    assert items == [{**fjord, "members": 0}, {**nordlys, "members": 2}]


def test_an_empty_list_has_its_header(cli):
    assert cli("agreements", "list").stdout.split() == ["id", "name", "org_number", "members", "require"]


# -- members -----------------------------------------------------------------------


def test_add_member_with_roles_and_a_client(cli):
    agreement = create(cli)
    out = json.loads(cli("agreements", "add-member", "--agreement", agreement["id"], "--email", "Kari@Example.NO",
                         "--role", "employee", "--role", "approver").stdout)
    assert out == {"agreement": agreement["id"], "org_number": NORDLYS, "email": "kari@example.no",
                   "roles": [{"role": "approver", "client": None}, {"role": "employee", "client": None}]}
    out = json.loads(cli("agreements", "add-member", "--agreement", "923 456 783", "--email", "kari@example.no",
                         "--role", "payroll-admin", "--client", "payroll").stdout)
    assert out["roles"] == [{"role": "approver", "client": None}, {"role": "employee", "client": None},
                            {"role": "payroll-admin", "client": "payroll"}]


def test_roles_are_merged(cli):
    create(cli)
    add = ("agreements", "add-member", "--agreement", NORDLYS, "--email", "kari@example.no")
    cli(*add, "--role", "employee")
    out = json.loads(cli(*add, "--role", "approver", "--role", "employee").stdout)
    assert [r["role"] for r in out["roles"]] == ["approver", "employee"]
    out = json.loads(cli(*add).stdout)  # no roles: nothing changes
    assert [r["role"] for r in out["roles"]] == ["approver", "employee"]
    # the same role for one app is a role of its own
    out = json.loads(cli(*add, "--role", "employee", "--client", "payroll").stdout)
    assert out["roles"] == [{"role": "approver", "client": None}, {"role": "employee", "client": None},
                            {"role": "employee", "client": "payroll"}]


@pytest.mark.parametrize(("args", "message"), [
    (["--agreement", "999999999", "--email", "kari@example.no"], "--agreement: no agreement with the id or "
                                                                 "organisation number '999999999'"),
    (["--agreement", "00000000-0000-0000-0000-000000000000", "--email", "kari@example.no"], "no agreement"),
    (["--agreement", NORDLYS, "--email", "nobody@example.no"], "--email: no user with email nobody@example.no"),
    (["--agreement", NORDLYS, "--email", "not an address"], "--email: not a valid email address"),
    (["--agreement", NORDLYS, "--email", "kari@example.no", "--role", "x", "--client", "nope"],
     "--client: no client 'nope'"),
    (["--agreement", NORDLYS, "--email", "kari@example.no", "--client", "payroll"], "--client needs at least one --role"),
    (["--agreement", NORDLYS, "--email", "kari@example.no", "--role", "two words"], "--role: a short word"),
])
def test_add_member_refuses(cli, args, message):
    create(cli)
    result = cli("agreements", "add-member", *args, expect=1)
    assert result.stderr.startswith("visma-idp: ") and message in result.stderr, result.stderr
    assert json_lines(cli("agreements", "list", "--json"))[0]["members"] == 0


def test_members_as_a_table_and_as_json(cli):
    agreement = create(cli)
    cli("agreements", "add-member", "--agreement", NORDLYS, "--email", "ola@example.no", "--role", "employee")
    cli("agreements", "add-member", "--agreement", NORDLYS, "--email", "kari@example.no", "--role", "employee",
        "--role", "approver")
    cli("agreements", "add-member", "--agreement", NORDLYS, "--email", "kari@example.no", "--role", "payroll-admin",
        "--client", "payroll")
    create(cli, "Fjord Transport AS", FJORD)  # another agreement's members are not listed
    cli("agreements", "add-member", "--agreement", FJORD, "--email", "ola@example.no", "--role", "driver")

    rows = [[cell.strip() for cell in row if cell.strip()] for row in lines(
        cli("agreements", "members", "--agreement", agreement["id"]))]
    assert rows == [
        ["email", "name", "roles", "last_used"],
        ["kari@example.no", "Kari Nordmann", "approver, employee, payroll-admin (payroll)", "-"],
        ["ola@example.no", "Ola Nordmann", "employee", "-"],
    ]
    items = json_lines(cli("agreements", "members", "--agreement", NORDLYS, "--json"))
    assert [(i["email"], i["name"], i["agreement"], i["last_used_at"]) for i in items] == [
        ("kari@example.no", "Kari Nordmann", agreement["id"], None), ("ola@example.no", "Ola Nordmann", agreement["id"], None)]
    assert items[1]["roles"] == [{"role": "employee", "client": None}]
    assert cli("agreements", "members", "--agreement", "nope", expect=1).stderr.startswith("visma-idp: --agreement: ")


def test_remove_member(cli):
    create(cli)
    cli("agreements", "add-member", "--agreement", NORDLYS, "--email", "kari@example.no", "--role", "employee")
    out = cli("agreements", "remove-member", "--agreement", NORDLYS, "--email", "Kari@example.no").stdout
    assert out == f"removed kari@example.no from Nordlys Regnskap AS ({NORDLYS})\n"
    assert cli("agreements", "members", "--agreement", NORDLYS, "--json").stdout == ""
    assert json_lines(cli("agreements", "list", "--json"))[0]["members"] == 0
    again = cli("agreements", "remove-member", "--agreement", NORDLYS, "--email", "kari@example.no", expect=1)
    assert again.stderr == f"visma-idp: kari@example.no is not a member of Nordlys Regnskap AS ({NORDLYS})\n"
    assert "no user" in cli("agreements", "remove-member", "--agreement", NORDLYS, "--email", "x@example.no",
                            expect=1).stderr
    assert "no agreement" in cli("agreements", "remove-member", "--agreement", FJORD, "--email", "kari@example.no",
                                 expect=1).stderr


def test_a_change_of_roles_queues_the_roles_changed_email(cli, outbox):
    create(cli)
    add = ("agreements", "add-member", "--agreement", NORDLYS, "--email", "kari@example.no")
    cli(*add, "--role", "employee")
    [(to, text)] = outbox()
    assert to == "kari@example.no"
    assert "Nordlys Regnskap AS" in text and "- employee" in text

    cli(*add, "--role", "employee")  # nothing new: no message
    assert len(outbox()) == 1
    cli(*add, "--role", "approver", "--role", "employee")
    assert len(outbox()) == 2 and "- approver" in outbox()[1][1] and "- employee" not in outbox()[1][1]

    cli("agreements", "remove-member", "--agreement", NORDLYS, "--email", "kari@example.no")
    to, text = outbox()[2]
    assert to == "kari@example.no" and "Roles you no longer have:" in text
    assert "- approver" in text and "- employee" in text

    listed = cli("mail", "list").stdout
    assert listed.count("roles_changed") == 3 and "Your roles have changed" in listed


def test_changes_are_audited(cli, make_app):
    from visma_idp.storage import AuditEvent, db

    agreement = create(cli)
    cli("agreements", "add-member", "--agreement", NORDLYS, "--email", "kari@example.no", "--role", "employee")
    cli("agreements", "remove-member", "--agreement", NORDLYS, "--email", "kari@example.no")
    with make_app().app_context():
        events = db.session.scalars(db.select(AuditEvent).where(AuditEvent.event.like("agreement_%"))
                                    .order_by(AuditEvent.id)).all()
        assert [e.event for e in events] == ["agreement_created", "agreement_member_added", "agreement_roles_changed",
                                             "agreement_member_removed"]
        assert all(e.details["agreement"] == e.agreement == agreement["id"] for e in events)
        assert all("by" not in e.details for e in events)  # the operator's commands name nobody


# -- the demo --------------------------------------------------------------------------


def test_the_demo_seeds_two_agreements_once(migrated, make_app, outbox):
    from visma_idp.agreements.orgnr import parse
    from visma_idp.demo import DEMO_AGREEMENTS, DEMO_COLLEAGUE, DEMO_EMAIL, seed_demo

    seed_demo(make_app(MODE="demo"))
    first = json_lines(migrated("agreements", "list", "--json"))
    assert [(a["name"], a["org_number"], a["members"], a["require_acr"]) for a in first] == [
        ("Fjord Transport AS", FJORD, 1, None), ("Nordlys Regnskap AS", NORDLYS, 2, None)]  # and the colleague
    for _name, org_number, _roles in DEMO_AGREEMENTS:
        assert parse(org_number) == org_number
    roles = {a["name"]: [r["role"] for r in json_lines(migrated("agreements", "members", "--agreement", a["id"],
                                                                "--json"))[0]["roles"]]
             for a in first}
    assert roles == {"Nordlys Regnskap AS": ["admin", "approver", "employee"], "Fjord Transport AS": ["employee"]}
    assert sorted(to for to, _text in outbox()) == sorted([DEMO_EMAIL, DEMO_EMAIL, DEMO_COLLEAGUE[0]])

    # again (every `./dev serve`): nothing new, no more mail
    seed_demo(make_app(MODE="demo"))
    assert json_lines(migrated("agreements", "list", "--json")) == first
    assert len(outbox()) == 3

    # like the demo user and client, a membership that is gone is made again; added roles stay
    migrated("agreements", "add-member", "--agreement", NORDLYS, "--email", DEMO_EMAIL, "--role", "auditor")
    migrated("agreements", "remove-member", "--agreement", FJORD, "--email", DEMO_EMAIL)
    seed_demo(make_app(MODE="demo"))
    assert [a["members"] for a in json_lines(migrated("agreements", "list", "--json"))] == [1, 2]
    nordlys = json_lines(migrated("agreements", "members", "--agreement", NORDLYS, "--json"))[0]
    assert [r["role"] for r in nordlys["roles"]] == ["admin", "approver", "auditor", "employee"]
