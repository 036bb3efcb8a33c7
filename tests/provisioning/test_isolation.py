"""A provisioning client sees and changes only its own resources: a client
of agreement A never reads, finds, changes or deletes a resource of a client
of agreement B, never links or changes B's people, and its answers never
tell whether B's people exist. A second client of A is kept apart the same way.

``CASES`` is the endpoint × method table: every route scim2-server serves
(``scim2_server.routing.ROUTES``, for each of our resource types) and every
method of the app's ``/scim/v2`` rules has a row, and
``test_every_scim_route_is_in_the_table`` fails when a new one appears.
A refused call changes no row of the database (``dbstate``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from tests.provisioning import dbstate
from tests.provisioning.conftest import BASE, SCIM_JSON, Scim, patch_body, user_body

GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
SEARCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
BULK_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
PASSWORD = "correct horse battery staple"
UNKNOWN = "00000000-0000-4000-8000-000000000000"


def group_body(name: str, *member_ids: str) -> dict:
    return {"schemas": [GROUP_SCHEMA], "displayName": name, "members": [{"value": m} for m in member_ids]}


@dataclass
class World:
    """A's and B's clients and what each holds. B's people: Ola (ola@beta.no)
    and Siri (siri@acme.no, verified: an address in A's domain), both members of
    B only, approvers there through B's group. A's: Kari (kari@acme.no)."""

    a: Scim
    b: Scim
    ids: dict[str, str]
    users: dict[str, int]
    agreements: dict[str, str]


@pytest.fixture
def world(app, client, agreements, make_provisioning, make_user) -> World:
    from visma_idp.agreements import service
    from visma_idp.storage import User, db

    users = {"ola": make_user("ola@beta.no", PASSWORD, "Ola Nordmann"),
             "siri": make_user("siri@acme.no", PASSWORD, "Siri Nordmann")}
    with app.app_context():
        b = service.find(agreements["b"])
        for user_id in users.values():
            service.add_member(b, db.session.get(User, user_id), ["employee"])
        db.session.commit()
    a, bb = Scim(client, make_provisioning("payroll-a", "a")), Scim(client, make_provisioning("payroll-b", "b"))

    def made(resp) -> str:
        assert resp.status_code == 201, resp.get_data(as_text=True)
        return resp.get_json()["id"]

    ids = {
        "b_ola": made(bb.post("/Users", user_body("ola", "ola@beta.no", given="Ola", external_id="emp-1"))),
        "b_siri": made(bb.post("/Users", user_body("siri", "siri@acme.no", given="Siri", external_id="emp-2"))),
        "a_kari": made(a.post("/Users", user_body("kari", "kari@acme.no", external_id="a-1"))),
    }
    ids["b_group"] = made(bb.post("/Groups", group_body("Approvers", ids["b_ola"], ids["b_siri"])))
    ids["a_group"] = made(a.post("/Groups", group_body("Drivers", ids["a_kari"])))
    with app.app_context():
        b = service.find(agreements["b"])
        for user_id in users.values():  # B's push linked them: approvers in B, not members of A
            roles = {r["role"] for r in service.membership(user_id, b.id).roles}
            assert roles == {"employee", "approvers"}
            assert [m.agreement.public_id for m in service.memberships_of(user_id)] == [agreements["b"]]
    return World(a, bb, ids, users, agreements)


def _b_traces(world: World) -> list[str]:
    """What would show a B resource in an answer."""
    return [world.ids["b_ola"], world.ids["b_siri"], world.ids["b_group"], "ola@beta.no", "siri@acme.no", "emp-1",
            "emp-2", "Approvers"]


def _as_unknown(resp, resource_id: str) -> tuple:
    """A 404 with the id replaced, to compare with the answer for an id nobody has."""
    headers = {k: v for k, v in resp.headers.items() if k.lower() not in ("date", "content-length", "x-request-id")}
    return resp.status_code, resp.get_data(as_text=True).replace(resource_id, "ID"), headers


# -- the table ------------------------------------------------------------------------
#
# kind:
#   not_found  -- B's (or A's other client's) id: the same 404 as an id nobody has, nothing changes
#   search     -- finds none of B's resources, B finds them with the same query; nothing changes
#   refused    -- not served here (/Me, /Bulk): an error, nothing changes
#   discovery  -- the same for every client, nothing of B's in it; nothing changes
#   create     -- A's own new resource; B's rows and people are untouched (its own test below)


@dataclass(frozen=True)
class Case:
    method: str
    route: str  # scim2-server's route pattern, the endpoint filled in; "HEAD /x" is GET's route under HEAD
    path: str  # with {b_ola}, {b_group}... from World.ids
    kind: str
    body: object = None

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


USER_FILTERS = [
    'userName eq "ola"', 'userName eq "OLA"', 'emails[type eq "work"].value eq "ola@beta.no"',
    'emails[type eq "work"].value eq "siri@acme.no"', 'emails.value eq "ola@beta.no"', 'emails co "beta.no"',
    'externalId eq "emp-1"', 'id eq "{b_ola}"', 'userName sw "o"', 'userName pr', 'name.givenName eq "Ola"',
    'active eq true', 'userName eq "ola" or userName eq "kari"', 'not (userName eq "kari")',
]
GROUP_FILTERS = ['displayName eq "Approvers"', 'displayName pr', 'members[value eq "{b_ola}"]',
                 'members.value eq "{b_siri}"', 'id eq "{b_group}"']


def _q(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="{}")


def _search_body(scim_filter: str) -> dict:
    return {"schemas": [SEARCH_SCHEMA], "filter": scim_filter}


_PUT_USER = user_body("ola", "ola@beta.no", given="Mallory", external_id="emp-1", active=False)
_PATCH_USER = patch_body({"op": "replace", "path": "active", "value": False},
                         {"op": "replace", "path": "name.givenName", "value": "Mallory"})
_PUT_GROUP = group_body("Approvers", "{a_kari}")
_PATCH_GROUP = patch_body({"op": "add", "path": "members", "value": [{"value": "{a_kari}"}]},
                          {"op": "replace", "path": "displayName", "value": "Admins"})

CASES = [
    # one resource of another client's
    *[Case(method, f"{method} /{endpoint}/{{resource_id}}", f"/{endpoint}/{{{key}}}", "not_found", body)
      for endpoint, key, put, patch in (("Users", "b_ola", _PUT_USER, _PATCH_USER),
                                        ("Groups", "b_group", _PUT_GROUP, _PATCH_GROUP))
      for method, body in (("GET", None), ("PUT", put), ("PATCH", patch), ("DELETE", None))],
    Case("GET", "GET /Users/{resource_id}", "/users/{b_ola}", "not_found"),  # endpoints are case-insensitive
    Case("GET", "GET /Users/{resource_id}", "/Users/{b_siri}?attributes=emails", "not_found"),
    Case("GET", "GET /Groups/{resource_id}", "/Groups/{b_ola}", "not_found"),
    Case("HEAD", "HEAD /Users/{resource_id}", "/Users/{b_ola}", "not_found"),
    # searches
    Case("GET", "GET /Users", "/Users", "search"),
    *[Case("GET", "GET /Users", f"/Users?filter={_q(f)}", "search") for f in USER_FILTERS],
    Case("GET", "GET /Users", "/Users?startIndex=1&count=50", "search"),
    Case("GET", "GET /Groups", "/Groups", "search"),
    *[Case("GET", "GET /Groups", f"/Groups?filter={_q(f)}", "search") for f in GROUP_FILTERS],
    Case("GET", "GET /", "", "search"),
    Case("GET", "GET /", f"?filter={_q(USER_FILTERS[0])}", "search"),
    Case("GET", "GET /", f"?filter={_q(GROUP_FILTERS[0])}", "search"),
    Case("HEAD", "HEAD /Users", "/Users", "search"),
    Case("POST", "POST /.search", "/.search", "search", {"schemas": [SEARCH_SCHEMA]}),
    Case("POST", "POST /.search", "/.search", "search", _search_body('userName eq "siri"')),
    Case("POST", "POST /Users/.search", "/Users/.search", "search", _search_body(USER_FILTERS[2])),
    Case("POST", "POST /Users/.search", "/Users/.search", "search", _search_body('externalId eq "emp-2"')),
    Case("POST", "POST /Groups/.search", "/Groups/.search", "search", _search_body(GROUP_FILTERS[2])),
    # creating: A's own resource with B's key values (see test_creating_with_b_values_*)
    Case("POST", "POST /Users", "/Users", "create",
         user_body("ola", "ola@beta.no", given="Mallory", external_id="emp-1")),
    Case("POST", "POST /Groups", "/Groups", "create", group_body("Approvers", "{b_ola}", "{b_siri}", "{a_kari}")),
    # not served
    Case("GET", "GET /Me", "/Me", "refused"),
    Case("PUT", "PUT /Me", "/Me", "refused", _PUT_USER),
    Case("PATCH", "PATCH /Me", "/Me", "refused", _PATCH_USER),
    Case("DELETE", "DELETE /Me", "/Me", "refused"),
    Case("POST", "POST /Me", "/Me", "refused", _PUT_USER),
    Case("POST", "POST /Bulk", "/Bulk", "refused",
         {"schemas": [BULK_SCHEMA], "Operations": [
             {"method": "DELETE", "path": "/Users/{b_ola}"},
             {"method": "PATCH", "path": "/Users/{b_siri}", "data": _PATCH_USER},
             {"method": "POST", "path": "/Groups", "bulkId": "g", "data": group_body("Approvers", "{b_ola}")}]}),
    # discovery: nothing of anyone's
    Case("GET", "GET /ServiceProviderConfig", "/ServiceProviderConfig", "discovery"),
    Case("GET", "GET /ResourceTypes", "/ResourceTypes", "discovery"),
    Case("GET", "GET /ResourceTypes/{resource_id}", "/ResourceTypes/User", "discovery"),
    Case("GET", "GET /Schemas", "/Schemas", "discovery"),
    Case("GET", "GET /Schemas/{resource_id}", "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", "discovery"),
]


def _fill(value, world: World):
    if isinstance(value, str):
        return re.sub(r"\{(a_\w+|b_\w+)\}", lambda m: world.ids[m.group(1)], value)
    if isinstance(value, list):
        return [_fill(v, world) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, world) for k, v in value.items()}
    return value


def _call(scim: Scim, method: str, path: str, body=None):
    return scim.client.open(BASE + path, method=method, json=body, headers=scim.headers())


def _scim_routes() -> set[str]:
    """Every route scim2-server serves, for each of our resource types' endpoints."""
    from scim2_server.routing import ROUTES

    from visma_idp.provisioning.scim import service

    endpoints = [service().endpoint_of(rt) for rt in service().provider.resource_types]
    assert endpoints == ["Users", "Groups"]
    out = set()
    for route in ROUTES:
        for endpoint in endpoints if "{endpoint}" in route.pattern else [None]:
            out.add(f"{route.method} {route.pattern.replace('{endpoint}', endpoint or '')}")
    return out


def test_every_scim_route_is_in_the_table(app):
    """A route the app gains (a Flask rule under /scim/v2, a method, a
    scim2-server route or a resource type) fails here until CASES has it."""
    rules = [r for r in app.url_map.iter_rules() if r.rule == BASE or r.rule.startswith(BASE + "/")]
    assert {r.rule for r in rules} <= {BASE, BASE + "/", BASE + "/<path:path>"}, \
        "a new Flask rule under /scim/v2: add its calls to CASES"
    assert all(r.endpoint == "scim.endpoint" for r in rules)  # both are the catch-all scim2-server routes
    methods = set().union(*(r.methods or set() for r in rules)) - {"OPTIONS"}  # OPTIONS: Flask's own answer
    assert methods == {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}
    assert methods <= {case.method for case in CASES}

    served = _scim_routes()
    covered = {case.route for case in CASES if case.method != "HEAD"}
    assert served - covered == set(), "routes of scim2-server with no row in CASES"
    assert covered - served == set(), "rows of CASES that are no route"
    # every operation on one resource is tried on another client's User and Group
    for endpoint in ("Users", "Groups"):
        for method in ("GET", "PUT", "PATCH", "DELETE"):
            assert any(c.method == method and c.kind == "not_found" and c.path.startswith(f"/{endpoint}/")
                       for c in CASES), (method, endpoint)


def test_options_answers_nothing_of_anyone(client, world):
    resp = client.open(BASE + "/Users/" + world.ids["b_ola"], method="OPTIONS")
    assert resp.status_code == 200 and resp.get_data() == b""


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_a_client_of_a_never_reaches_b(app, world, case):
    path, body = _fill(case.path, world), _fill(case.body, world)
    before = dbstate.rows(app)
    resp = _call(world.a, case.method, path, body)
    text = resp.get_data(as_text=True)
    assert resp.status_code != 500, text
    if case.kind == "create":  # A's own new resource, nothing of B's touched (more below)
        assert resp.status_code == 201, text
        _b_rows(world, before, dbstate.rows(app))
        assert _linked(app, resp.get_json()["id"]) is None
        for user_id in world.users.values():
            assert _members(app, user_id) == {world.agreements["b"]: {"employee", "approvers"}}
        return
    assert dbstate.diff(before, dbstate.rows(app)) == {}, text
    if case.method != "HEAD":
        for trace in _b_traces(world):
            if not (case.kind == "not_found" and trace in path):  # a 404 may name the id it was asked for
                assert trace not in text and trace.lower() not in text.lower(), trace

    if case.kind == "not_found":
        nobody = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", UNKNOWN, path)
        asked = path.split("/")[2].split("?")[0]
        assert resp.status_code == 404  # HEAD too: it is GET without the body
        assert _as_unknown(resp, asked) == _as_unknown(_call(world.a, case.method, nobody, body), UNKNOWN)
    elif case.kind == "search" and case.method == "HEAD":
        assert resp.status_code == 200 and resp.get_data() == b""
    elif case.kind == "search":
        assert resp.status_code == 200, text
        found = {r["id"] for r in resp.get_json()["Resources"]}
        assert found <= {world.ids["a_kari"], world.ids["a_group"]}
        assert resp.get_json()["totalResults"] == len(found)
        # not vacuous: B's client, asking the same, finds its own
        theirs = _call(world.b, case.method, path, body)
        assert theirs.status_code == 200
        found = {r["id"] for r in theirs.get_json()["Resources"]}
        assert found and found <= {world.ids[k] for k in ("b_ola", "b_siri", "b_group")}
    elif case.kind == "refused":
        assert resp.status_code in (400, 404, 405, 501), text
    elif case.kind == "discovery":
        assert resp.status_code == 200, text


# -- creating with B's values ----------------------------------------------------------


def _b_rows(world: World, before: dbstate.Rows, after: dbstate.Rows) -> None:
    """No row about B's people or B's client was added, changed or removed (A's own rows may change)."""
    b_people = set(world.users.values())
    b_client = next(r["id"] for r in before["provisioning_clients"].values() if r["name"] == "payroll-b")

    def about_b(table: str, row: dict) -> bool:
        if table == "mail_outbox" and row["kind"] == "agreement_invitation":
            return False  # the invitation to join A (the tests look at it)
        return (row.get("user_id") in b_people or (table == "users" and row["id"] in b_people)
                or (table == "scim_resources" and row["client_id"] == b_client)
                or (table == "provisioning_clients" and row["id"] == b_client))

    for table, change in dbstate.diff(before, after).items():
        rows = change["added"] + change["removed"] + [row for pair in change["changed"] for row in pair]
        assert not [row for row in rows if about_b(table, row)], table


def test_creating_with_b_values_user_name_and_external_id(app, world):
    """B's userName and externalId are A's to use too: no 409, and no link to B's person."""
    before = dbstate.rows(app)
    resp = world.a.post("/Users", user_body("ola", None, given="Mallory", external_id="emp-1"))
    assert resp.status_code == 201
    assert resp.get_json()["id"] not in world.ids.values()
    _b_rows(world, before, dbstate.rows(app))
    with app.app_context():
        from visma_idp.storage import ScimResource, db

        assert db.session.scalar(db.select(ScimResource.user_id)
                                 .where(ScimResource.scim_id == resp.get_json()["id"])) is None


def _members(app, user_id: int) -> dict[str, set[str]]:
    from visma_idp.agreements import service

    with app.app_context():
        return {m.agreement.public_id: {r["role"] for r in m.roles or []} for m in service.memberships_of(user_id)}


@pytest.mark.parametrize("how", ["POST", "PUT", "PATCH"])
def test_a_group_with_b_members_gives_them_nothing(app, world, how):
    b_members = (world.ids["b_ola"], world.ids["b_siri"])
    before = dbstate.rows(app)
    if how == "POST":
        resp = world.a.post("/Groups", group_body("Approvers", *b_members, world.ids["a_kari"]))
        assert resp.status_code == 201
    elif how == "PUT":
        resp = world.a.put(f"/Groups/{world.ids['a_group']}", group_body("Drivers", *b_members, world.ids["a_kari"]))
        assert resp.status_code == 200
    else:
        resp = world.a.patch(f"/Groups/{world.ids['a_group']}",
                             patch_body({"op": "add", "path": "members", "value": [{"value": m} for m in b_members]}))
        assert resp.status_code in (200, 204)
    _b_rows(world, before, dbstate.rows(app))
    for name, user_id in world.users.items():
        assert _members(app, user_id) == {world.agreements["b"]: {"employee", "approvers"}}, name


def _shape(resp) -> tuple:
    body = resp.get_json()
    return (resp.status_code, sorted(body), sorted(body["meta"]), sorted(resp.headers.keys()),
            body["emails"][0]["value"].split("@")[1])


def _invitations(app, agreement: str) -> list[str]:
    from visma_idp.agreements import service
    from visma_idp.storage import AgreementInvitation, db

    with app.app_context():
        a = service.find(agreement)
        return list(db.session.scalars(db.select(AgreementInvitation.email)
                                       .where(AgreementInvitation.agreement_id == a.id)
                                       .order_by(AgreementInvitation.id)))


def _linked(app, scim_id: str) -> int | None:
    from visma_idp.storage import ScimResource, db

    with app.app_context():
        return db.session.scalar(db.select(ScimResource.user_id).where(ScimResource.scim_id == scim_id))


def test_creating_with_the_address_of_b_person_outside_a_domains(app, world, mailbox):
    """ola@beta.no is only in B: A's push does not link, change or add them; it invites
    the address to A (the person accepts, or not); the answer is that for an unknown address."""
    before = dbstate.rows(app)
    resp = world.a.post("/Users", user_body("ola.nordmann", "ola@beta.no", given="Mallory", family="X"))
    after = dbstate.rows(app)
    assert resp.status_code == 201
    assert _linked(app, resp.get_json()["id"]) is None
    _b_rows(world, before, after)
    assert _members(app, world.users["ola"]) == {world.agreements["b"]: {"employee", "approvers"}}
    # the one way in is the invitation, sent once
    assert _invitations(app, world.agreements["a"]) == ["ola@beta.no"]
    assert world.a.put(f"/Users/{resp.get_json()['id']}",
                       user_body("ola.nordmann", "ola@beta.no", given="Mallory", family="Y")).status_code == 200
    assert _invitations(app, world.agreements["a"]) == ["ola@beta.no"]
    message = mailbox.last("ola@beta.no")
    assert "Acme AS" in mailbox.text(message)

    unknown = world.a.post("/Users", user_body("nobody", "nobody@beta.no", given="Mallory", family="X"))
    assert _shape(unknown) == _shape(resp)
    assert {k: v for k, v in unknown.get_json().items() if k not in ("id", "meta", "userName", "emails")} \
        == {k: v for k, v in resp.get_json().items() if k not in ("id", "meta", "userName", "emails")}


def test_creating_with_the_address_of_b_person_in_a_domain(app, world, mailbox):
    """siri@acme.no is verified, in A's domain, and only in B: A's push must not
    link Siri silently either (see the report: people.match links a verified
    address of the agreement's domains, whatever other agreement holds it)."""
    before = dbstate.rows(app)
    resp = world.a.post("/Users", user_body("siri.n", "siri@acme.no", given="Mallory", family="X"))
    after = dbstate.rows(app)
    assert resp.status_code == 201
    assert _linked(app, resp.get_json()["id"]) is None
    _b_rows(world, before, after)
    assert _members(app, world.users["siri"]) == {world.agreements["b"]: {"employee", "approvers"}}
    assert _invitations(app, world.agreements["a"]) == ["siri@acme.no"]

    unknown = world.a.post("/Users", user_body("nobody", "nobody@acme.no", given="Mallory", family="X"))
    assert _shape(unknown) == _shape(resp)  # today the link also shows: no mail rendered, so no "Vary: Cookie"


def _accept_invitation(app, world: World) -> None:
    from visma_idp.agreements import invitations, service
    from visma_idp.storage import AgreementInvitation, User, db

    with app.app_context():
        row = db.session.scalar(db.select(AgreementInvitation).where(AgreementInvitation.email == "ola@beta.no"))
        invitations.accept(row, db.session.get(User, world.users["ola"]))
        db.session.commit()
        assert service.membership(world.users["ola"], service.find(world.agreements["a"]).id) is not None


def test_a_b_person_who_accepts_a_invitation_is_linked_by_the_next_push(app, world):
    """Once Ola accepts A's invitation (a member of A), A's next push that changes
    the record links them; B's side stays as it was."""
    resp = world.a.post("/Users", user_body("ola.nordmann", "ola@beta.no", given="Ola"))
    _accept_invitation(app, world)
    changed = user_body("ola.nordmann", "ola@beta.no", given="Ola", family="Hansen")
    assert world.a.put(f"/Users/{resp.get_json()['id']}", changed).status_code == 200
    assert _linked(app, resp.get_json()["id"]) == world.users["ola"]
    assert _members(app, world.users["ola"])[world.agreements["b"]] == {"employee", "approvers"}


def test_a_b_person_who_accepts_a_invitation_is_linked_without_a_change(app, world):
    """Entra and Okta push a person again only when the person changes: the link
    must not wait for that (people.py: "the person accepts, and the next push links them")."""
    resp = world.a.post("/Users", user_body("ola.nordmann", "ola@beta.no", given="Ola"))
    _accept_invitation(app, world)
    same = user_body("ola.nordmann", "ola@beta.no", given="Ola")
    assert world.a.put(f"/Users/{resp.get_json()['id']}", same).status_code == 200
    assert _linked(app, resp.get_json()["id"]) == world.users["ola"]


# -- two clients of one agreement ------------------------------------------------------


@pytest.fixture
def two_of_a(app, client, world, make_provisioning):
    """A second client of A (HR), with its own record of Kari and its own group."""
    hr = Scim(client, make_provisioning("hr-a", "a"))
    kari = hr.post("/Users", user_body("kari.n", "kari@acme.no", external_id="hr-1"))
    group = hr.post("/Groups", group_body("Drivers", kari.get_json()["id"]))
    assert kari.status_code == 201 and group.status_code == 201
    return hr, {"hr_kari": kari.get_json()["id"], "hr_group": group.get_json()["id"]}


def test_each_client_of_a_sees_only_its_own(world, two_of_a):
    hr, ids = two_of_a
    mine = {"payroll": (world.a, {world.ids["a_kari"], world.ids["a_group"]}),
            "hr": (hr, {ids["hr_kari"], ids["hr_group"]})}
    for name, (scim, own) in mine.items():
        found = set()
        for path in ("/Users", "/Groups", "", '/Users?filter=emails.value eq "kari@acme.no"',
                     '/Groups?filter=displayName eq "Drivers"'):
            resp = scim.get(path)
            assert resp.status_code == 200, (name, path)
            found |= {r["id"] for r in resp.get_json()["Resources"]}
        assert found == own, name
        search = scim.post("/.search", {"schemas": [SEARCH_SCHEMA], "filter": 'userName sw "kari"'})
        assert {r["id"] for r in search.get_json()["Resources"]} < own, name


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("kind", ["Users", "Groups"])
def test_a_client_of_a_cannot_reach_the_other_client_of_a(app, world, two_of_a, method, kind):
    hr, ids = two_of_a
    target = world.ids["a_kari"] if kind == "Users" else world.ids["a_group"]
    body = {"PUT": user_body("kari", "mallory@acme.no", active=False) if kind == "Users"
            else group_body("Drivers"),
            "PATCH": patch_body({"op": "replace", "path": "active" if kind == "Users" else "displayName",
                                 "value": False if kind == "Users" else "Admins"})}.get(method)
    before = dbstate.rows(app)
    resp = _call(hr, method, f"/{kind}/{target}", body)
    assert resp.status_code == 404
    assert dbstate.diff(before, dbstate.rows(app)) == {}
    assert _as_unknown(resp, target) == _as_unknown(_call(hr, method, f"/{kind}/{UNKNOWN}", body), UNKNOWN)
    assert world.a.get(f"/{kind}/{target}").status_code == 200


def test_the_content_type_of_refusals(world):
    resp = world.a.get(f"/Users/{world.ids['b_ola']}")
    assert resp.status_code == 404
    assert resp.headers["Content-Type"].startswith(SCIM_JSON)
    assert resp.get_json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
