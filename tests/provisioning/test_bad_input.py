"""What a broken or hostile client sends: every answer is a SCIM error
(``schemas`` = Error, ``status`` a string, the ``scimType`` RFC 7644 §3.12
gives), never a 500 and never an HTML page.

RFC 7644 §3.12: ``invalidSyntax`` is a body that "was invalid or did not
conform to the request schema" (not JSON, an attribute the schema does not
have); ``invalidValue`` a value "not compatible with the operation or
attribute type" (a string for a boolean, a number for a list, a required
value missing); ``invalidFilter`` a filter whose syntax is invalid or whose
attribute and comparison are not supported; ``uniqueness`` (409) a value
already taken."""

from __future__ import annotations

import io
import json
import random

import pytest

from tests.provisioning.conftest import BASE, SCIM_JSON, USER_SCHEMA, Scim, patch_body, user_body

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIMIT = 256 * 1024


def scim_error(response, status: int, scim_type: str | None = None, where: object = None) -> dict:
    """The response is the SCIM error ``status`` (with ``scim_type``); returns its body.
    ``where``: what was sent, for the failure's message."""
    assert response.status_code == status, (where, response.status_code, response.data[:300])
    assert response.mimetype == SCIM_JSON, where
    body = response.json
    assert body["schemas"] == [ERROR], where
    assert body["status"] == str(status), where
    assert body.get("scimType") == scim_type, (where, body)
    return body


def raw(scim: Scim, method: str, path: str, data: bytes, **kw):
    return scim.client.open(BASE + path, method=method, data=data, headers=scim.headers(kw.pop("headers", None)), **kw)


@pytest.fixture
def kari(scim_a) -> dict:
    response = scim_a.post("/Users", user_body("Kari.Nordmann", "kari@acme.no"))
    assert response.status_code == 201
    return response.json


def test_a_body_that_is_no_json_object_is_invalid_syntax(scim_a, kari):
    for method in ("POST", "PUT", "PATCH"):
        path = "/Users" if method == "POST" else f"/Users/{kari['id']}"
        for data in (b'{"userName": ', b"not json", b"[1, 2]", b'"a string"', b"", b"\xff\xfe{}", b"[" * 5000):
            scim_error(raw(scim_a, method, path, data), 400, "invalidSyntax", (method, data[:20]))


def test_a_body_that_is_no_json_at_all_is_415(scim_a):
    response = raw(scim_a, "POST", "/Users", b"userName=kari", headers={"Content-Type": "application/x-www-form-urlencoded"})
    scim_error(response, 415)


def test_unknown_attributes_are_invalid_syntax(scim_a):
    for body in (
        user_body("kari", nickNames="K"),  # a misspelt attribute (their names are case-insensitive)
        user_body("kari", name={"givenName": "Kari", "middle": "x"}),
        {**user_body("kari"), "schemas": ["urn:example:params:scim:schemas:core:2.0:Person"]},
        {**user_body("kari"), "urn:example:extension:1.0:User": {"level": 3}},
    ):
        scim_error(scim_a.post("/Users", body), 400, "invalidSyntax", body)
    assert scim_a.get("/Users").json["totalResults"] == 0


def test_wrong_types_and_missing_values_are_invalid_value(scim_a):
    for body in (
        user_body("kari", active="maybe"),
        user_body("kari", emails=5),
        user_body("kari", emails=[{"value": "not an address"}]),
        user_body("kari", name="Kari Nordmann"),
        user_body(5),
        {"schemas": [USER_SCHEMA], "displayName": "Kari"},  # no userName
    ):
        scim_error(scim_a.post("/Users", body), 400, "invalidValue", body)
    assert scim_a.get("/Users").json["totalResults"] == 0


def test_a_patch_is_one_transaction(scim_a, kari):
    path = f"/Users/{kari['id']}"
    response = scim_a.patch(path, patch_body({"op": "replace", "path": "title", "value": "Lønn"},
                                             {"op": "replace", "path": "active", "value": "maybe"}))
    scim_error(response, 400, "invalidValue")
    scim_error(scim_a.patch(path, patch_body({"op": "frobnicate", "path": "title", "value": "x"})), 400, "invalidValue")
    scim_error(scim_a.patch(path, patch_body({"op": "replace", "path": "title[", "value": "x"})), 400, "invalidPath")
    scim_error(scim_a.patch(path, patch_body({"op": "replace", "path": "id", "value": "mine"})), 400, "mutability")
    scim_error(scim_a.patch(path, {"Operations": "all of them"}), 400, "invalidValue")
    got = scim_a.get(path).json
    assert "title" not in got and got["active"] is True
    assert got["meta"]["version"] == kari["meta"]["version"]


def test_unsupported_filters_are_invalid_filter(scim_a, kari):
    for expression in ('userName eq', 'userName eq "kari', 'userName regex "k.*"', 'nickNames eq "kari"',
                       '(userName eq "kari"', 'userName eq "kari" and', 'emails[type eq "work"', "userName eq kari",
                       'meta.lastModified gt "not a date"'):
        scim_error(scim_a.get("/Users", query_string={"filter": expression}), 400, "invalidFilter", expression)


def test_sorting_and_bulk_are_not_implemented(scim_a):
    scim_error(scim_a.get("/Users", query_string={"sortBy": "userName"}), 501)
    bulk = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": [{"method": "POST", "path": "/Users", "bulkId": "1", "data": user_body("kari")}]}
    scim_error(scim_a.post("/Bulk", bulk), 501)
    assert scim_a.get("/Users").json["totalResults"] == 0


def test_a_body_over_the_limit_is_413_before_it_is_read(scim_a, client):
    too_big = json.dumps(user_body("kari", title="x" * LIMIT)).encode()
    scim_error(raw(scim_a, "POST", "/Users", too_big), 413)
    anonymous = client.post(BASE + "/Users", data=too_big, headers={"Content-Type": SCIM_JSON})
    scim_error(anonymous, 413)
    chunked = client.post(BASE + "/Users", input_stream=io.BytesIO(too_big),
                          headers={**scim_a.headers(), "Transfer-Encoding": "chunked"},
                          environ_overrides={"wsgi.input_terminated": True})
    scim_error(chunked, 413)
    assert scim_a.get("/Users").json["totalResults"] == 0

    just_under = json.dumps(user_body("kari", title="x" * (LIMIT - 300))).encode()
    assert len(just_under) <= LIMIT
    created = client.post(BASE + "/Users", input_stream=io.BytesIO(just_under),
                          headers={**scim_a.headers(), "Transfer-Encoding": "chunked"},
                          environ_overrides={"wsgi.input_terminated": True})
    assert created.status_code == 201, created.data[:300]


def test_no_token_or_a_wrong_one_is_the_same_401(scim_a, client):
    expected = None
    for authorization in (None, "Bearer", "Bearer not-a-token", "Basic cGF5cm9sbDpzZWNyZXQ=", "bearer  wrong ",
                          "Token x", f"Bearer {scim_a.token}x", f"Basic {scim_a.token}"):
        headers = {"Content-Type": SCIM_JSON} | ({"Authorization": authorization} if authorization else {})
        for method, path in (("GET", "/Users"), ("POST", "/Users"), ("GET", "/Users/whatever"),
                             ("DELETE", "/Groups/x"), ("GET", "/Schemas"), ("GET", "/ResourceTypes"),
                             ("GET", "/Nowhere"), ("POST", "/ServiceProviderConfig")):
            response = client.open(BASE + path, method=method, headers=headers, json=user_body("kari"))
            body = scim_error(response, 401, where=(authorization, method, path))
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            expected = expected or (body, response.headers["WWW-Authenticate"])
            assert (body, response.headers["WWW-Authenticate"]) == expected, (authorization, method, path)
    assert scim_a.get("/Users").json["totalResults"] == 0


def test_the_service_provider_config_needs_no_token(client):
    response = client.get(BASE + "/ServiceProviderConfig")
    assert response.status_code == 200
    config = response.json
    assert config["patch"]["supported"] is True
    assert config["bulk"]["supported"] is False
    assert config["filter"] == {"supported": True, "maxResults": 200}
    assert config["etag"]["supported"] is True
    assert config["sort"]["supported"] is False
    assert [s["type"] for s in config["authenticationSchemes"]] == ["oauthbearertoken"]


def test_a_taken_user_name_whatever_its_case_is_409(scim_a, kari):
    for spelling in ("Kari.Nordmann", "kari.nordmann", "KARI.NORDMANN"):
        scim_error(scim_a.post("/Users", user_body(spelling, "other@acme.no")), 409, "uniqueness")
    ola = scim_a.post("/Users", user_body("ola", "ola@acme.no")).json
    scim_error(scim_a.put(f"/Users/{ola['id']}", user_body("kari.NORDMANN")), 409, "uniqueness")
    scim_error(scim_a.patch(f"/Users/{ola['id']}", patch_body({"op": "replace", "path": "userName",
                                                               "value": "KARI.nordmann"})), 409, "uniqueness")
    assert scim_a.get(f"/Users/{ola['id']}").json["userName"] == "ola"
    assert scim_a.get("/Users").json["totalResults"] == 2

    group = {"schemas": [GROUP_SCHEMA], "displayName": "Payroll"}
    assert scim_a.post("/Groups", group).status_code == 201
    scim_error(scim_a.post("/Groups", {**group, "displayName": "PAYROLL"}), 409, "uniqueness")
    # the same name is no one else's business in another client
    assert scim_a.patch(f"/Users/{ola['id']}", patch_body({"op": "replace", "path": "userName",
                                                           "value": "Ola"})).status_code in (200, 204)


def test_what_is_not_there_is_404(scim_a, kari):
    scim_error(scim_a.get("/Users/not-an-id"), 404)
    scim_error(scim_a.put("/Users/not-an-id", user_body("x")), 404)
    scim_error(scim_a.patch("/Users/not-an-id", patch_body({"op": "replace", "path": "title", "value": "x"})), 404)
    scim_error(scim_a.delete("/Users/not-an-id"), 404)
    scim_error(scim_a.get(f"/Groups/{kari['id']}"), 404)  # a User is no Group
    scim_error(scim_a.get("/Nowhere"), 404)
    scim_error(scim_a.get("/Schemas/urn:example:nothing"), 404)
    scim_error(scim_a.put("/Users", user_body("x")), 405)


def _odd_requests() -> list[tuple[str, str, dict, bytes | None]]:
    """About sixty odd requests: (method, path, query, raw body or None)."""
    cases: list[tuple[str, str, dict, bytes | None]] = [
        ("GET", "/Users", {"filter": "userName eq \"\x00\""}, None),
        ("GET", "/Users", {"filter": "(" * 300 + 'userName eq "a"' + ")" * 300}, None),
        ("GET", "/Users", {"filter": " or ".join(f'userName eq "u{n}"' for n in range(300))}, None),
        ("GET", "/Users", {"filter": 'emails[value co "@"].type eq "work"'}, None),
        ("GET", "/Users", {"filter": 'meta.lastModified gt "not a date"'}, None),
        ("GET", "/Users", {"filter": 'active eq "yes"'}, None),
        ("GET", "/Users", {"filter": "userName pr and not (active pr)"}, None),
        ("GET", "/Users", {"startIndex": "-5", "count": "-1"}, None),
        ("GET", "/Users", {"startIndex": "1e9", "count": "2"}, None),
        ("GET", "/Users", {"count": "99999999999999999999999"}, None),
        ("GET", "/Users", {"attributes": "userName,,", "excludedAttributes": "emails"}, None),
        ("GET", "/Users", {"attributes": "[]"}, None),
        ("GET", "/Users", {"cursor": "abc"}, None),
        ("GET", "/Groups", {"filter": 'members[value eq "x"]'}, None),
        ("GET", "/", {"filter": 'displayName sw ""'}, None),
        ("GET", "/Users/%00", {}, None),
        ("GET", "/Users/" + "9" * 3000, {}, None),
        ("GET", "/Users/../Groups", {}, None),
        ("GET", "/Users/x/y/z", {}, None),
        ("GET", "/Me", {}, None),
        ("HEAD", "/Users", {}, None),
        ("GET", "/.search", {}, None),
        ("POST", "/.search", {}, b'{"filter": 5}'),
        ("POST", "/Users/.search", {}, b'{"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],'
                                          b' "filter": "userName eq \\"kari.nordmann\\"", "count": "x"}'),
        ("POST", "/Users", {}, b'{"schemas": null, "userName": "a"}'),
        ("POST", "/Users", {}, b'{"userName": "a", "userName": "b"}'),
        ("POST", "/Users", {}, b'{"userName": "a", "emails": [null]}'),
        ("POST", "/Users", {}, b'{"userName": "a", "emails": [{"value": null}]}'),
        ("POST", "/Users", {}, b'{"userName": "a", "emails": [{"value": "a@acme.no", "primary": "sometimes"}]}'),
        ("POST", "/Users", {}, b'{"userName": "a", "externalId": 1' + b"0" * 5000 + b"}"),
        ("POST", "/Users", {}, b'{"userName": "\\ud800"}'),
        ("POST", "/Users", {}, b'{"userName": "a\\u0000b"}'),
        ("POST", "/Users", {}, b'{"userName": "nul", "externalId": "\\u0000", "title": "\\u0000"}'),
        ("POST", "/Groups", {}, b'{"displayName": "nul", "members": [{"value": "\\u0000"}]}'),
        ("GET", "/Users", {"filter": 'userName eq "\\u0000"'}, None),
        ("GET", "/Users", {"filter": 'externalId eq "a\\u0000"'}, None),
        ("GET", "/Groups/%00", {}, None),
        ("POST", "/Users", {}, json.dumps(user_body("b" * 300)).encode()),
        ("POST", "/Users", {}, json.dumps(user_body("c", "x" * 400 + "@acme.no")).encode()),
        ("POST", "/Users", {}, json.dumps(user_body("d", id="mine", meta={"version": 'W/"9"'})).encode()),
        ("POST", "/Users", {}, json.dumps(user_body("e", phoneNumbers=[{"value": "call me"}],
                                                    preferredLanguage="xx-!!")).encode()),
        ("POST", "/Users", {}, json.dumps(user_body("f", **{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":
                                                            {"manager": 5}})).encode()),
        ("POST", "/Groups", {}, json.dumps({"schemas": [GROUP_SCHEMA], "displayName": "g",
                                            "members": [{"value": "nobody"}, {"value": 5}]}).encode()),
        ("POST", "/Groups", {}, json.dumps({"schemas": [GROUP_SCHEMA], "displayName": "!!!"}).encode()),
        ("POST", "/Groups", {}, json.dumps({"schemas": [GROUP_SCHEMA], "displayName": "h" * 2000,
                                            "members": [{"value": "x"}] * 50}).encode()),
        ("POST", "/ResourceTypes", {}, b"{}"),
        ("POST", "/Bulk", {}, b'{"Operations": "x"}'),
        ("PUT", "/Users/{kari}", {}, b'{"userName": null}'),
        ("PUT", "/Users/{kari}", {}, json.dumps({**user_body("Kari.Nordmann"), "id": "another"}).encode()),
        ("PATCH", "/Users/{kari}", {}, b'{"Operations": []}'),
        ("PATCH", "/Users/{kari}", {}, b'{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}'),
        ("PATCH", "/Users/{kari}", {}, json.dumps(patch_body({"op": "add"})).encode()),
        ("PATCH", "/Users/{kari}", {}, json.dumps(patch_body({"op": "remove", "path": "userName"})).encode()),
        ("PATCH", "/Users/{kari}", {}, json.dumps(patch_body({"op": "remove", "path": 'emails[value eq "x"]'})).encode()),
        ("PATCH", "/Users/{kari}", {}, json.dumps(patch_body({"op": "replace", "path": "emails[type eq]",
                                                             "value": "x"})).encode()),
        ("PATCH", "/Users/{kari}", {}, json.dumps(patch_body({"op": "add", "path": "members",
                                                             "value": [{"value": "x"}]})).encode()),
        ("PATCH", "/Users/{kari}", {}, json.dumps(patch_body({"op": "replace", "value": [1, 2]})).encode()),
        ("PATCH", "/Users/{kari}", {}, json.dumps(patch_body(
            {"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
             "value": ""})).encode()),
        ("DELETE", "/Users", {}, None),
        ("DELETE", "/ServiceProviderConfig", {}, None),
    ]
    rng = random.Random(7644)
    pieces = ['userName', 'eq', '"kari"', 'and', 'or', 'not', '(', ')', '[', ']', 'pr', 'emails.value', 'sw', '""',
              'true', 'null', '5', 'gt', 'meta.created', '.', ' ']
    for _ in range(8):
        cases.append(("GET", "/Users", {"filter": " ".join(rng.choice(pieces) for _ in range(rng.randint(1, 8)))},
                      None))
    return cases


def test_odd_requests_never_get_a_500(scim_a, kari):
    for method, path, query, data in _odd_requests():
        path = path.replace("{kari}", kari["id"])
        kw = {"query_string": query} | ({"data": data} if data is not None else {})
        response = scim_a.client.open(BASE + path, method=method, headers=scim_a.headers(), **kw)
        where = (method, path[:60], query, (data or b"")[:80], response.status_code, response.data[:200])
        assert response.status_code != 500, where  # 501 (not implemented) is a client's answer
        if response.status_code >= 400:
            assert response.mimetype == SCIM_JSON, where
            body = response.json
            assert body["schemas"] == [ERROR], where
            assert body["status"] == str(response.status_code), where
    got = scim_a.get(f"/Users/{kari['id']}")
    assert got.status_code == 200 and got.json["userName"] == "Kari.Nordmann"


def test_odd_conditions_never_get_a_500(scim_a, kari):
    path = f"/Users/{kari['id']}"
    for header in ("If-Match", "If-None-Match"):
        for value in ('W/"²"', 'W/"' + "9" * 5000 + '"', "*", "", "W/", '"1", W/"1"', "\t"):
            for response in (scim_a.get(path, headers={header: value}),
                             scim_a.patch(path, patch_body({"op": "replace", "path": "title", "value": value}),
                                          headers={header: value})):
                where = (header, value[:20], response.status_code, response.data[:200])
                assert response.status_code in (200, 204, 304, 400, 412), where
                if response.status_code >= 400:
                    scim_error(response, response.status_code, response.json.get("scimType"), where)


def test_urls_come_from_the_issuer_never_from_the_host_header(idp, scim_a):
    spoofed = {"Host": "evil.example", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}
    created = scim_a.post("/Users", user_body("kari"), headers=spoofed)
    assert created.status_code == 201
    location = f"{idp.issuer}/scim/v2/Users/{created.json['id']}"
    assert created.headers["Location"] == created.json["meta"]["location"] == location
    got = scim_a.get(f"/Users/{created.json['id']}", headers=spoofed)
    assert got.json["meta"]["location"] == got.headers["Content-Location"] == location
