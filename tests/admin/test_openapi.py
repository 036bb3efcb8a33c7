"""The admin API's OpenAPI 3.1 document (/admin/api/openapi.json) and a
schemathesis run against it: for every operation, data that fits the schema
and data that does not, sent with a system admin's token; no answer may be a
500, every status must be one the document lists, every JSON answer must fit
its schema, and data that breaks the schema must be refused.

One check is left out: ``positive_data_acceptance`` (schema-valid data must
not get a 400). Some rules are not the schema's to say, and a 400 for them is
right: an organisation number's mod-11 check digit, what a redirect URI may
be, a single well-formed email address."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from tests.admin.conftest import SYS, bearer

DOC = "/admin/api/openapi.json"
EXAMPLES = 8  # per operation and mode: about 400 requests in all


def test_the_document_is_openapi_3_1_and_lists_every_admin_endpoint(app, client):
    resp = client.get(DOC)
    assert resp.status_code == 200
    doc = resp.get_json()
    assert doc["openapi"] == "3.1.0" and doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    described = {(path, method.upper()) for path, item in doc["paths"].items() for method in item}
    routed = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/admin/api/") and rule.rule != DOC:
            path = rule.rule.replace("<", "{").replace(">", "}")
            routed |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert routed and routed == described
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            assert operation["security"] == [{"bearer": []}], (path, method)
            assert "401" in operation["responses"] and "400" in operation["responses"], (path, method)


def _operations() -> list[str]:
    """``"METHOD /path"`` of every described operation (the blueprints hold them once imported)."""
    from visma_idp.admin import agreements_api, api, system_api

    return sorted(f"{method.upper()} {path}" for bp in (api.bp, agreements_api.bp, system_api.bp)
                  for path, item in bp.paths.items()
                  for method in item.model_dump(exclude_none=True) if method in {"get", "post", "put", "patch", "delete"})


@pytest.fixture
def sys_token(token):
    return token(SYS)


@pytest.mark.parametrize("operation", _operations())
def test_the_admin_api_keeps_to_its_document(app, world, sys_token, operation):
    method, path = operation.split(" ", 1)
    loaded = schemathesis.openapi.from_wsgi(DOC, app)
    found = loaded[path][method]
    # schemathesis's WSGI transport sends an object-valued ``q`` (a negative
    # case) as one plain string (seen: q={"a": {}, "b": []} arrives as q=a), so
    # what the server gets is valid and a 200 is right; the other checks stay
    skipped = [negative_data_rejection] if operation == "GET /admin/api/agreements" else []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @given(case=found.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None,
                  derandomize=True)
        def run(case):
            case.call_and_validate(headers=bearer(sys_token), excluded_checks=[positive_data_acceptance, *skipped])

        run()
