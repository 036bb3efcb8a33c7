"""The ``visma-idp provisioning`` commands, run in-process on the test
database: the printed base URL and token work against /scim/v2, a list never
shows a token, rotating and removing end the old token, refused input is
exit status 1 with the reason."""

from __future__ import annotations

import json
import re

import pytest

from tests import test_cli as cli_tests
from tests.conftest import ISSUER
from tests.provisioning.conftest import ORG_A, ORG_B, Scim, user_body

# the CLI's fixtures (tests/test_cli.py), named here so pytest finds them
env, run, migrated = cli_tests.env, cli_tests.run, cli_tests.migrated

TOKEN = re.compile(r"^Bearer token:\s+(scim_\S+)$", re.MULTILINE)
BASE_URL = re.compile(r"^SCIM base URL:\s+(\S+)$", re.MULTILINE)


@pytest.fixture
def cli(migrated):
    """A migrated database with agreements A (acme.no) and B."""
    for name, org, domain in (("Acme AS", ORG_A, "acme.no"), ("Beta AS", ORG_B, "beta.no")):
        migrated("agreements", "create", "--name", name, "--org-number", org, "--domain", domain)
    return migrated


@pytest.fixture
def scim(make_app):
    """``scim(token)``: calls to /scim/v2 of an app on the CLI's database."""
    app = make_app()
    client = app.test_client()
    return lambda token: Scim(client, token)


def create(cli, name="payroll", agreement=ORG_A, *extra, expect=0):
    return cli("provisioning", "create", "--agreement", agreement, "--name", name, *extra, expect=expect)


def token_of(result) -> str:
    found = TOKEN.findall(result.stdout)
    assert len(found) == 1, result.stdout
    return found[0]


def listed(cli) -> list[dict]:
    return [json.loads(line) for line in cli("provisioning", "list", "--json").stdout.splitlines()]


def public_id(cli, org: str) -> str:
    return next(a["id"] for a in (json.loads(line) for line in cli("agreements", "list", "--json").stdout.splitlines())
                if a["org_number"] == org)


# -- create ------------------------------------------------------------------------


def test_create_prints_the_base_url_and_a_token_that_works(cli, scim):
    result = create(cli)
    assert BASE_URL.findall(result.stdout) == [ISSUER + "/scim/v2"]
    token = token_of(result)
    assert "shown only now" in result.stdout

    payroll = scim(token)
    created = payroll.post("/Users", user_body("kari", "kari@acme.no"))
    assert created.status_code == 201
    assert created.headers["Location"].startswith(ISSUER + "/scim/v2/Users/")
    assert payroll.get("/Users").get_json()["totalResults"] == 1
    assert listed(cli)[0]["resources"] == 1


def test_the_base_url_follows_the_issuer(cli):
    result = cli("provisioning", "create", "--agreement", ORG_A, "--name", "payroll",
                 env={"VISMA_IDP_ISSUER": "https://login.example.com/idp/"})
    assert BASE_URL.findall(result.stdout) == ["https://login.example.com/idp/scim/v2"]


def test_create_by_the_agreement_public_id(cli, scim):
    b = public_id(cli, ORG_B)
    token = token_of(create(cli, "hr-b", b, "--authoritative-for", "name"))
    assert scim(token).post("/Users", user_body("ola", "ola@beta.no")).status_code == 201
    [item] = listed(cli)
    assert (item["name"], item["agreement"], item["org_number"], item["authoritative_for"]) == \
        ("hr-b", b, ORG_B, ["name"])


def test_create_by_an_organisation_number_with_spaces(cli):
    create(cli, "payroll", "974 760 673")
    assert [i["org_number"] for i in listed(cli)] == [ORG_A]


@pytest.mark.parametrize(("args", "message"), [
    (("--agreement", "999999999"), "--agreement: no agreement with the id or organisation number '999999999'"),
    (("--agreement", "00000000-0000-4000-8000-000000000000"), "--agreement: no agreement"),
    (("--name", "has space"), "--name: letters, digits"),
    (("--name", "-dash-first"), "--name: letters, digits"),
    (("--name", "x" * 65), "--name: letters, digits"),
    (("--name", "payrøll"), "--name: letters, digits"),
    (("--authoritative-for", "password"), "--authoritative-for: 'password' is not one of email, name"),
    (("--authoritative-for", "email", "--authoritative-for", "Email"), "--authoritative-for: 'Email' is not one of"),
])
def test_create_refuses(cli, args, message):
    values = {"--agreement": ORG_A, "--name": "payroll"}
    extra = []
    for option, value in zip(args[::2], args[1::2], strict=True):
        if option in values:
            values[option] = value
        else:
            extra += [option, value]
    result = cli("provisioning", "create", "--agreement", values["--agreement"], "--name", values["--name"], *extra,
                 expect=1)
    assert result.stderr.startswith("visma-idp: ") and message in result.stderr, result.stderr
    assert "scim_" not in result.stdout
    assert listed(cli) == []


def test_a_taken_name_is_refused(cli, scim):
    token = token_of(create(cli, "payroll"))
    result = create(cli, "payroll", ORG_B, expect=1)
    assert result.stderr == "visma-idp: --name: a provisioning client named 'payroll' already exists\n"
    assert result.stdout == ""
    [item] = listed(cli)
    assert item["org_number"] == ORG_A
    assert scim(token).get("/Users").status_code == 200


def test_create_is_audited_in_the_agreement(cli, make_app):
    from visma_idp.storage import AuditEvent, db

    result = create(cli, "payroll", ORG_A, "--authoritative-for", "email")
    with make_app().app_context():
        [row] = db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == "provisioning_client_created"))
        assert row.subject == "payroll" and row.agreement == public_id(cli, ORG_A)
        assert row.details["authoritative_for"] == ["email"]
        assert token_of(result) not in json.dumps(row.details)


# -- list ----------------------------------------------------------------------------


def test_list_as_a_table_and_as_json_never_shows_a_token(cli, scim):
    tokens = [token_of(create(cli, "payroll", ORG_A, "--authoritative-for", "name", "--authoritative-for", "email")),
              token_of(create(cli, "hr", ORG_B))]
    scim(tokens[0]).post("/Users", user_body("kari", "kari@acme.no"))

    table = cli("provisioning", "list").stdout
    rows = [line.split() for line in table.splitlines()]
    assert rows[0] == ["name", "org_number", "authoritative_for", "resources", "last_used_at"]
    assert [r[:4] for r in rows[1:]] == [["hr", ORG_B, "-", "0"], ["payroll", ORG_A, "email,name", "1"]]
    assert rows[1][4] == "-" and re.fullmatch(r"\d{4}-\d\d-\d\d", rows[2][4])

    items = listed(cli)
    assert [i["name"] for i in items] == ["hr", "payroll"]
    assert set(items[0]) == {"name", "agreement", "org_number", "authoritative_for", "resources", "created_at",
                             "rotated_at", "last_used_at"}
    assert items[1]["authoritative_for"] == ["email", "name"] and items[1]["resources"] == 1
    both = table + cli("provisioning", "list", "--json").stdout
    for token in tokens:
        assert token not in both and token.removeprefix("scim_") not in both
    assert "scim_" not in both and "digest" not in both


def test_an_empty_list(cli):
    assert cli("provisioning", "list").stdout.split() == ["name", "org_number", "authoritative_for", "resources",
                                                          "last_used_at"]
    assert cli("provisioning", "list", "--json").stdout == ""


# -- rotate ----------------------------------------------------------------------------


def test_rotate_prints_a_new_token_and_the_old_one_stops(cli, scim):
    old = token_of(create(cli))
    created = scim(old).post("/Users", user_body("kari", "kari@acme.no")).get_json()["id"]

    result = cli("provisioning", "rotate", "payroll")
    new = token_of(result)
    assert new != old
    assert BASE_URL.findall(result.stdout) == [ISSUER + "/scim/v2"]
    assert scim(old).get("/Users").status_code == 401
    assert scim(new).get(f"/Users/{created}").status_code == 200  # the resources stay
    assert listed(cli)[0]["rotated_at"] is not None


def test_rotate_an_unknown_client(cli):
    result = cli("provisioning", "rotate", "nobody", expect=1)
    assert result.stderr == "visma-idp: NAME: no provisioning client 'nobody' (see `visma-idp provisioning list`)\n"
    assert "scim_" not in result.stdout


# -- update ------------------------------------------------------------------------------


def test_update_sets_and_clears_the_authority(cli, make_app):
    from visma_idp.storage import AuditEvent, db

    create(cli)
    out = json.loads(cli("provisioning", "update", "payroll", "--authoritative-for", "email",
                         "--authoritative-for", "name").stdout)
    assert out["authoritative_for"] == ["email", "name"]
    assert listed(cli)[0]["authoritative_for"] == ["email", "name"]
    assert "scim_" not in json.dumps(out)

    out = json.loads(cli("provisioning", "update", "payroll", "--authoritative-for", "name").stdout)
    assert out["authoritative_for"] == ["name"]
    cli("provisioning", "update", "payroll", "--authoritative-for", "name")  # the same again: no change
    assert json.loads(cli("provisioning", "update", "payroll", "--no-authority").stdout)["authoritative_for"] == []
    with make_app().app_context():
        rows = db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == "provisioning_authority_changed")
                                  .order_by(AuditEvent.id)).all()
        assert [r.details["authoritative_for"] for r in rows] == [["email", "name"], ["name"], []]


@pytest.mark.parametrize(("args", "message"), [
    ((), "give --authoritative-for (repeatable) or --no-authority"),
    (("--authoritative-for", "name", "--no-authority"), "give --authoritative-for (repeatable) or --no-authority"),
    (("--authoritative-for", "salary"), "--authoritative-for: 'salary' is not one of"),
])
def test_update_refuses(cli, args, message):
    create(cli, "payroll", ORG_A, "--authoritative-for", "email")
    result = cli("provisioning", "update", "payroll", *args, expect=1)
    assert message in result.stderr, result.stderr
    assert listed(cli)[0]["authoritative_for"] == ["email"]


def test_update_an_unknown_client(cli):
    result = cli("provisioning", "update", "nobody", "--no-authority", expect=1)
    assert "NAME: no provisioning client 'nobody'" in result.stderr


# -- remove ------------------------------------------------------------------------------


def test_remove_ends_the_token_and_keeps_the_people(cli, scim, make_app):
    from visma_idp.agreements import service
    from visma_idp.storage import ScimResource, db, queries

    token = token_of(create(cli))
    other = token_of(create(cli, "hr"))
    assert scim(token).post("/Users", user_body("kari", "kari@acme.no")).status_code == 201

    assert cli("provisioning", "remove", "payroll").stdout == "removed provisioning client payroll\n"
    assert scim(token).get("/Users").status_code == 401
    assert scim(other).get("/Users").status_code == 200
    assert [i["name"] for i in listed(cli)] == ["hr"]
    with make_app().app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(ScimResource)) == 0
        kari = queries.user_by_email("kari@acme.no")
        assert kari is not None and kari.is_active
        assert service.membership(kari.id, service.find(ORG_A).id) is not None

    result = cli("provisioning", "remove", "payroll", expect=1)
    assert "NAME: no provisioning client 'payroll'" in result.stderr


def test_a_removed_client_owns_no_attribute(cli, scim, make_app):
    """The attributes a removed client set have no owner any more: the next source
    takes them, and a client created later (which may get the same row id) inherits nothing."""
    from visma_idp.storage import AttributeSource, db

    token = token_of(create(cli, "payroll", ORG_A))
    assert scim(token).post("/Users", user_body("kari", "kari@acme.no", given="Kari")).status_code == 201
    with make_app().app_context():
        assert db.session.scalars(db.select(AttributeSource.source)).all()
    cli("provisioning", "remove", "payroll")
    with make_app().app_context():
        assert db.session.scalars(db.select(AttributeSource.source)).all() == []

    # a system of another agreement, where Kari is a member too, takes nothing over from the removed one
    cli("agreements", "add-member", "--agreement", ORG_B, "--email", "kari@acme.no")
    hr = token_of(create(cli, "hr-b", ORG_B))
    assert scim(hr).post("/Users", user_body("kari", "kari@acme.no", given="Karianne")).status_code == 201
    with make_app().app_context():
        from visma_idp.storage import queries

        assert queries.user_by_email("kari@acme.no").given_name == "Karianne"  # nobody owned it: the first push


def test_a_removed_client_leaves_no_open_conflict(cli, scim, make_app):
    from visma_idp.storage import ProvisioningConflict, db

    payroll = token_of(create(cli, "payroll", ORG_A))
    hr = token_of(create(cli, "hr", ORG_A))
    assert scim(payroll).post("/Users", user_body("kari", "kari@acme.no", given="Kari")).status_code == 201
    assert scim(hr).post("/Users", user_body("k1", "kari@acme.no", given="Karianne")).status_code == 201
    with make_app().app_context():
        assert set(db.session.scalars(db.select(ProvisioningConflict.attribute))) == {"name", "given_name"}

    cli("provisioning", "remove", "hr")
    with make_app().app_context():
        assert db.session.scalars(db.select(ProvisioningConflict.attribute)).all() == []
