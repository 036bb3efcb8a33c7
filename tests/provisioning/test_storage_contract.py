"""scim2-server's own contract of a storage (``ScimStorageContract``: copies,
meta, versions, 404s, uniqueness, paging, and every filter of its list
evaluated as scim2-models does) run on ``store.ClientStorage`` with the
service's Users (enterprise extension included) and Groups.

Each check gets a new agreement and provisioning client in a transaction
rolled back afterwards, on one app for the module (an app per check would
take most of a minute)."""

from __future__ import annotations

import pytest
from scim2_server.testing import ScimStorageContract

from tests.conftest import DB_KIND, FAST_ARGON2, ISSUER, TEST_SECRET
from tests.provisioning.conftest import ORG_A


@pytest.fixture(scope="module")
def contract_app(request, tmp_path_factory, smtp_capture):
    from visma_idp import create_app
    from visma_idp.storage import db

    folder = tmp_path_factory.mktemp("contract")
    url = request.getfixturevalue("pg_database") if DB_KIND == "postgresql" else f"sqlite:///{folder / 'idp.db'}"
    app = create_app({"MODE": "production", "ISSUER": ISSUER, "SECRET_KEY": TEST_SECRET, "DATABASE_URL": url,
                      "INSTANCE_PATH": str(folder / "instance"), "SMTP_URL": smtp_capture.url, **FAST_ARGON2})
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


class TestClientStorage(ScimStorageContract):
    # the service announces neither sorting nor cursors (scim.py): their checks would only skip
    test_search_sorted = None
    test_search_sorts_as_search_request_sort = None
    test_cursor_pages_every_resource_once = None
    test_cursor_pages_in_sort_order = None
    test_cursor_pages_equal_sort_values_once = None
    test_cursor_pages_back = None
    test_cursor_gives_stable_pages_when_a_resource_of_the_page_is_deleted = None
    test_cursor_gives_stable_pages_when_a_resource_is_created = None
    test_cursor_pages_back_after_a_deletion = None
    test_cursor_with_count_zero = None
    test_cursor_at_the_root = None

    @pytest.fixture
    def provider(self):
        from visma_idp.provisioning import scim

        return scim.service().provider

    @pytest.fixture
    def storage(self, contract_app):
        """A new provisioning client's storage, in a request whose writes are rolled back."""
        from visma_idp.agreements import service
        from visma_idp.provisioning import clients, scim
        from visma_idp.provisioning.store import ClientStorage
        from visma_idp.storage import db

        with contract_app.test_request_context():
            issued = clients.create(service.create("Acme AS", ORG_A, domains=["acme.no"]), "contract")
            db.session.flush()
            try:
                yield ClientStorage(issued.client, scim.service())
            finally:
                db.session.rollback()
