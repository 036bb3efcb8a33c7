"""The CSP ``form-action`` of the sign-in pages.

Chromium applies ``form-action`` to the redirects that follow a form post,
so a page whose form ends in a redirect to the app must name the app's
redirect origin (tests/browser/test_signin_journeys.py proves the whole
journeys in a real browser). These tests pin down what is named, and that
nothing else gets in: only redirect URIs of this browser's own pending
sign-ins (checked against the client's registration before they were
saved), never a value straight from a request, and nothing on pages of no
sign-in.
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from tests.helpers import csrf, path_of, query
from visma_idp.security import csp_source


def form_action(resp) -> str:
    csp = resp.headers["Content-Security-Policy"]
    [directive] = [d.strip() for d in csp.split(";") if d.strip().startswith("form-action")]
    return directive


def test_the_pages_of_a_sign_in_name_its_redirect_origin(flow):
    resp = flow.start()
    login = flow.client.get(path_of(resp.headers["Location"]))
    assert form_action(login) == "form-action 'self' https://rp.example.com"
    tx = query(resp.headers["Location"])["tx"]
    resp = flow.client.post("/login?tx=" + tx, data={"email": flow.email, "csrf_token": csrf(login.text)})
    password = flow.client.get(path_of(resp.headers["Location"]))
    assert form_action(password) == "form-action 'self' https://rp.example.com"


def test_a_page_outside_any_sign_in_names_only_itself(client, make_user):
    make_user()
    assert form_action(client.get("/login")) == "form-action 'self'"
    assert form_action(client.get("/password/forgot")) == "form-action 'self'"


def test_an_unregistered_redirect_uri_never_reaches_the_policy(flow):
    params = flow.auth_params(redirect_uri="https://evil.example.net/callback")
    resp = flow.client.get("/authorize?" + urlencode(params))
    assert resp.status_code == 400  # an error page, no transaction
    assert "evil.example.net" not in resp.headers["Content-Security-Policy"]
    later = flow.client.get("/login")
    assert form_action(later) == "form-action 'self'"


def test_several_pending_sign_ins_name_each_origin_once(app, client, make_user, make_client):
    from tests.helpers import Flow

    make_user()
    make_client("a", redirect_uris=["https://a.example.com/cb"])
    make_client("b", redirect_uris=["https://b.example.com/cb", "https://b.example.com/other"])
    for client_id, uri in (("a", "https://a.example.com/cb"), ("b", "https://b.example.com/cb"),
                           ("b", "https://b.example.com/other")):
        Flow(app, client, client_id=client_id, client_secret=None, redirect_uri=uri).start()
    assert form_action(client.get("/login")) == "form-action 'self' https://a.example.com https://b.example.com"


def test_a_native_app_with_a_private_use_scheme(app, client, make_user, make_client):
    from tests.helpers import Flow

    make_user()
    make_client("mobile", public=True, application_type="native", redirect_uris=["no.example.expense://oauth2redirect"])
    Flow(app, client, client_id="mobile", client_secret=None, redirect_uri="no.example.expense://oauth2redirect").start()
    assert form_action(client.get("/login")) == "form-action 'self' no.example.expense:"


def test_the_logout_confirmation_names_only_a_registered_post_logout_uri(app, flow, make_user, make_client):
    from tests.helpers import Flow

    make_client("other", redirect_uris=["https://other.example.com/cb"], skip_consent=True,
                post_logout_redirect_uris=["https://other.example.com/bye"])
    kari = Flow(app, app.test_client(), client_id="other", client_secret="expense-secret-0123456789",
                redirect_uri="https://other.example.com/cb")
    id_token = kari.tokens()["id_token"]
    make_user(email="ola@example.no", name="Ola Nordmann")
    ola = Flow(app, flow.client, client_id="expense", client_secret=flow.client_secret,
               redirect_uri=flow.redirect_uri, email="ola@example.no")
    ola.tokens()  # Ola is signed in in this browser
    # a hint naming someone else: the provider asks before it signs Ola out
    page = flow.client.get("/logout?" + urlencode({"id_token_hint": id_token,
                                                  "post_logout_redirect_uri": "https://other.example.com/bye"}))
    assert page.status_code == 200 and "confirm" in page.text
    assert form_action(page) == "form-action 'self' https://other.example.com"
    page = flow.client.get("/logout?" + urlencode({"id_token_hint": id_token,
                                                  "post_logout_redirect_uri": "https://evil.example.net/bye"}))
    assert page.status_code == 200
    assert form_action(page) == "form-action 'self'"


@pytest.mark.parametrize(("uri", "source"), [
    ("https://rp.example.com/cb?x=1", "https://rp.example.com"),
    ("https://RP.Example.com:8443/cb", "https://rp.example.com:8443"),
    ("http://127.0.0.1:51004/cb", "http://127.0.0.1:51004"),
    ("http://[::1]:8080/cb", "http://[::1]:8080"),
    ("https://user:pw@rp.example.com/cb", "https://rp.example.com"),
    ("com.example.app:/oauth2redirect", "com.example.app:"),
    ("https://rp.example.com;script-src *", None),
    ("https://rp.example.com 'unsafe-inline'/cb", None),
    ("https://rp.example.com:99999/cb", None),
    ("ja va:/x", None),
    ("", None),
])
def test_only_clean_origins_become_sources(uri, source):
    assert csp_source(uri) == source
