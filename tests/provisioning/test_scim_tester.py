"""scim2-tester's checks, all of them, against the SCIM endpoints of the
provider served over real HTTP on a loopback port.

scim2-client's network engine needs ``httpx2``, which the project does not
depend on; ``RequestsSCIMClient`` below is the same engine over ``requests``
(a dependency already): a session with the bearer token, and URLs relative
to the SCIM base URL.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from scim2_client import BaseSyncSCIMClient
from scim2_tester import Status, check_server

from tests.browser.conftest import serving

BASE = "/scim/v2"


class RequestsSCIMClient(BaseSyncSCIMClient):
    """scim2-client over ``requests``: every URL is under ``base_url``."""

    def __init__(self, session: requests.Session, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.session, self.base_url = session, base_url.rstrip("/")

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        if not url.startswith(("http://", "https://")):
            url = self.base_url + url
        return self.session.request(method, url, timeout=10, allow_redirects=False, **kwargs)


@pytest.fixture
def live_scim(app, make_app, make_provisioning):
    """The provider on its own loopback port, and a scim2-client session with a provisioning token."""
    token = make_provisioning("payroll-a", "a")
    with serving(make_app, "127.0.0.1") as served, requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {token}"
        yield RequestsSCIMClient(session, served.url + BASE)


def test_every_check_of_scim2_tester_passes(live_scim):
    results = check_server(live_scim)

    assert len(results) > 50, "scim2-tester ran its checks: discovery, every resource type, CRUD and PATCH"
    ran = {result.title for result in results}
    assert {"check_add_attribute", "check_replace_attribute", "check_remove_attribute"} <= ran
    assert {str(result.resource_type) for result in results} >= {"User", "Group"}
    failed = [result for result in results if result.status is not Status.SUCCESS]
    assert not failed, "\n".join(
        f"{result.status.name} {result.resource_type or ''} {result.title}: {result.reason} {result.data!r}"
        for result in failed)
