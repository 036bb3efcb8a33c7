"""Redirect URI matching: exact string comparison, nothing else.

A refused redirect URI must give our own error page (400, no Location): the
provider never sends anything, not even an error, to an unchecked URI.
RFC 8252 §7.3: only native public clients registered with a loopback IP
literal may use any port.
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from tests.helpers import Flow, pkce_pair, query

REGISTERED = "https://rp.example.com/callback"

ATTACKS = [
    REGISTERED + "?x=1",
    REGISTERED + "#f",
    REGISTERED + "/",
    "https://RP.example.com/callback",
    "https://rp.example.com/Callback",
    "https://evil.com@rp.example.com/callback",
    "https://rp.example.com@evil.com/callback",
    "https://rp.example.com/callback/..;/evil",
    "https://rp.example.com/callback/../evil",
    "https://rp.example.com/callback%2F..%2Fevil",
    "https://rp.example.com.evil.com/callback",
    "https://rp.example.comevil.com/callback",
    "https://rp.example.com:443/callback",
    "http://rp.example.com/callback",
    " https://rp.example.com/callback",
    "https://rp.example.com/callback ",
    "http://localhost/callback",
    "http://127.0.0.1:8080/callback",
    # characters Authlib refuses in an error_description: the refusal must
    # still be our error page, not a 500
    "https://rp.example.com\\@evil.com/callback",
    'https://rp.example.com/callback"',
    "https://rp.example.com/callbäck",
]


def authorize(client, client_id: str, redirect_uri: str):
    _verifier, challenge = pkce_pair()
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "scope": "openid",
              "state": "st", "nonce": "n", "code_challenge": challenge, "code_challenge_method": "S256"}
    return client.get("/authorize?" + urlencode(params))


def assert_error_page(resp):
    assert resp.status_code == 400, resp.status_code
    assert "Location" not in resp.headers
    assert resp.mimetype == "text/html"
    html = resp.get_data(as_text=True)
    assert "code=" not in html and "form_post" not in html


def test_registered_uri_is_accepted(flow, client):
    resp = authorize(client, "expense", REGISTERED)
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith("http://127.0.0.1:5000/login")


@pytest.mark.parametrize("redirect_uri", ATTACKS)
def test_lookalike_redirect_uri_gets_error_page(flow, client, redirect_uri):
    assert_error_page(authorize(client, "expense", redirect_uri))


@pytest.mark.parametrize("redirect_uri", ATTACKS[:6])
def test_lookalike_refused_for_signed_in_user_too(flow, client, redirect_uri):
    flow.authorize()  # signed in, consent given: the next request would issue a code at once
    assert_error_page(authorize(client, "expense", redirect_uri))


def test_refused_uri_by_post_and_form_post_mode(flow, client):
    _verifier, challenge = pkce_pair()
    data = {"response_type": "code", "client_id": "expense", "redirect_uri": "https://evil.com/callback",
            "scope": "openid", "response_mode": "form_post", "code_challenge": challenge,
            "code_challenge_method": "S256"}
    assert_error_page(client.post("/authorize", data=data))


def test_unknown_client_gets_error_page(flow, client):
    assert_error_page(authorize(client, "nobody", REGISTERED))


# -- RFC 8252 loopback redirects --------------------------------------------------

@pytest.fixture
def native(app, client, flow, make_client):
    make_client("desktop", public=True, application_type="native", redirect_uris=["http://127.0.0.1/cb"])
    return "desktop"


def test_native_loopback_any_port_works_end_to_end(app, client, native):
    rp = Flow(app, client, client_id="desktop", client_secret=None, redirect_uri="http://127.0.0.1:51234/cb")
    params = rp.authorize()
    assert "code" in params
    resp = client.post("/token", data={"grant_type": "authorization_code", "code": params["code"],
                                       "client_id": "desktop", "redirect_uri": "http://127.0.0.1:51234/cb",
                                       "code_verifier": rp.last["verifier"]})
    assert resp.status_code == 200, resp.get_data(as_text=True)


def test_native_code_bound_to_the_port_it_was_issued_for(app, client, native):
    rp = Flow(app, client, client_id="desktop", client_secret=None, redirect_uri="http://127.0.0.1:51234/cb")
    params = rp.authorize()
    resp = client.post("/token", data={"grant_type": "authorization_code", "code": params["code"],
                                       "client_id": "desktop", "redirect_uri": "http://127.0.0.1:51235/cb",
                                       "code_verifier": rp.last["verifier"]})
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "invalid_grant"


@pytest.mark.parametrize("redirect_uri", [
    "http://localhost:51234/cb",
    "http://127.0.0.1:51234/other",
    "http://127.0.0.1:51234/cb/",
    "http://127.0.0.1:51234/cb?x=1",
    "https://127.0.0.1:51234/cb",
    "http://127.0.0.2:51234/cb",
    "http://user@127.0.0.1:51234/cb",
    "http://127.0.0.1:51234@evil.com/cb",
    "http://127.0.0.1.evil.com:51234/cb",
    "http://[::1]:51234/cb",
])
def test_native_loopback_port_tolerance_is_narrow(client, native, redirect_uri):
    assert_error_page(authorize(client, "desktop", redirect_uri))


def test_native_loopback_accepts_the_port_at_authorize(client, native):
    resp = authorize(client, "desktop", "http://127.0.0.1:51234/cb")
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith("http://127.0.0.1:5000/login")


def test_confidential_web_client_gets_no_port_flexibility(app, client, flow, make_client):
    make_client("intranet", redirect_uris=["http://127.0.0.1:8000/cb"])
    assert authorize(client, "intranet", "http://127.0.0.1:8000/cb").status_code == 302
    for uri in ("http://127.0.0.1:8001/cb", "http://127.0.0.1/cb", "http://127.0.0.1:80/cb"):
        assert_error_page(authorize(client, "intranet", uri))


def test_public_web_client_gets_no_port_flexibility(app, client, flow, make_client):
    make_client("spa", public=True, redirect_uris=["http://127.0.0.1/cb"])
    assert_error_page(authorize(client, "spa", "http://127.0.0.1:51234/cb"))


def test_error_redirect_only_to_the_validated_uri(flow, client):
    """Bad parameters with a good redirect URI: the error goes to that URI, not elsewhere."""
    resp = flow.start(response_mode="bogus")
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith(REGISTERED + "?")
    assert query(resp.headers["Location"])["error"] == "invalid_request"


@pytest.mark.parametrize("name, value", [
    ("response_type", 'code"'),
    ("response_type", "codé"),
    ("prompt", 'none"'),
    ("prompt", "lögin"),
])
def test_odd_characters_get_an_answer_not_a_crash(flow, client, name, value):
    """Refusing a parameter must not echo it into error_description (Authlib
    raises ValueError for quotes, backslashes and non-ASCII there)."""
    resp = flow.start(**{name: value})
    if resp.status_code == 302:
        assert resp.headers["Location"].startswith(REGISTERED + "?")
        assert "error" in query(resp.headers["Location"])
    else:
        assert_error_page(resp)


# -- RFC 8252 §7.1 private-use schemes ----------------------------------------------

PRIVATE_USE = "com.example.expense:/oauth2redirect"


def test_native_private_use_scheme_works_end_to_end(app, client, flow, make_client):
    """The redirect RFC 8252 recommends for mobile apps (one slash, no authority):
    registered, matched exactly, and the code lands on it and can be redeemed."""
    make_client("mobile", public=True, application_type="native", redirect_uris=[PRIVATE_USE])
    rp = Flow(app, client, client_id="mobile", client_secret=None, redirect_uri=PRIVATE_USE)
    location = rp.until_callback(rp.start("GET"), "allow").headers["Location"]
    assert location.startswith(PRIVATE_USE + "?")
    params = query(location)
    resp = client.post("/token", data={"grant_type": "authorization_code", "code": params["code"],
                                       "client_id": "mobile", "redirect_uri": PRIVATE_USE,
                                       "code_verifier": rp.last["verifier"]})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    for other in ("com.example.expense:/oauth2redirect/x", "com.example.expense://oauth2redirect",
                  "com.example.evil:/oauth2redirect", "COM.EXAMPLE.EXPENSE:/oauth2redirect"):
        assert_error_page(authorize(client, "mobile", other))


@pytest.mark.parametrize(("uri", "application_type", "why"), [
    (PRIVATE_USE, "web", "only for native apps"),
    ("myapp:/callback", "native", "reversed domain name"),
    ("com.example.app:callback", "native", "needs a path"),
    ("javascript:/alert(1)", "native", "not a redirect URI"),
    ("data:/text/html,x", "native", "not a redirect URI"),
    ("https:/rp.example.com/cb", "native", "not a redirect URI"),
    ("com.example.app:/call back", "native", "absolute URI"),
    ("com.example.app:/cb#x", "native", "absolute URI"),
    ("1com.example:/cb", "native", "absolute URI"),
])
def test_private_use_registrations_that_are_refused(app, make_client, uri, application_type, why):
    from visma_idp.errors import InvalidInput

    with pytest.raises(InvalidInput, match=why):
        make_client("mobile", public=True, application_type=application_type, redirect_uris=[uri])
