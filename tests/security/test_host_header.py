"""Host header injection: every URL we hand out is built from the configured
issuer, never from Host / X-Forwarded-Host (which an attacker controls, e.g.
to poison caches or steal codes through a password-reset style link)."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest

from tests.helpers import csrf, path_of, pkce_pair, query
from tests.security.forge import jwt_parts

ISSUER = "http://127.0.0.1:5000"
EVIL = "evil.example"
FORGED = {"Host": EVIL, "X-Forwarded-Host": EVIL, "X-Forwarded-Proto": "https", "X-Forwarded-For": "6.6.6.6",
          "Forwarded": f"host={EVIL};proto=https", "X-Original-URL": f"https://{EVIL}/"}


def assert_clean(resp):
    for name, value in resp.headers.items():
        assert EVIL not in value, (name, value)
    body = resp.get_data(as_text=True)
    assert EVIL not in body
    return body


def urls_in(html: str) -> list[str]:
    return re.findall(r'(?:action|href|src)="([^"]*)"', html)


def assert_own_urls(html: str):
    for url in urls_in(html):
        own = url.startswith(ISSUER + "/") or url.startswith("?") or (url.startswith("/") and not url.startswith("//"))
        assert own, url


def test_discovery_uses_the_configured_issuer(client):
    resp = client.get("/.well-known/openid-configuration", headers=FORGED)
    assert resp.status_code == 200
    assert_clean(resp)
    meta = resp.get_json()
    assert meta["issuer"] == ISSUER
    for key, value in meta.items():
        if key.endswith("_endpoint") or key == "jwks_uri":
            assert value.startswith(ISSUER + "/"), (key, value)


def test_oauth_metadata_and_jwks_clean(client):
    assert_clean(client.get("/.well-known/oauth-authorization-server", headers=FORGED))
    assert_clean(client.get("/jwks", headers=FORGED))


def start(client):
    _verifier, challenge = pkce_pair()
    params = {"response_type": "code", "client_id": "expense", "redirect_uri": "https://rp.example.com/callback",
              "scope": "openid email", "state": "s", "nonce": "n", "code_challenge": challenge,
              "code_challenge_method": "S256"}
    return client.get("/authorize?" + urlencode(params), headers=FORGED)


def test_login_pages_and_consent_only_name_the_issuer(flow, client):
    resp = start(client)
    assert resp.status_code == 302
    assert_clean(resp)
    assert resp.headers["Location"].startswith(ISSUER + "/login")
    tx = query(resp.headers["Location"])["tx"]

    page = client.get(path_of(resp.headers["Location"]), headers=FORGED)
    html = assert_clean(page)
    assert_own_urls(html)
    assert f'action="{ISSUER}/login?tx={tx}"' in html

    resp = client.post(f"/login?tx={tx}", data={"email": flow.email, "tx": tx, "csrf_token": csrf(html)},
                       headers=FORGED)
    assert resp.status_code == 302
    assert_clean(resp)
    assert resp.headers["Location"].startswith(ISSUER + "/login/password")

    page = client.get(path_of(resp.headers["Location"]), headers=FORGED)
    html = assert_clean(page)
    assert_own_urls(html)
    assert f'action="{ISSUER}/login/password?tx={tx}"' in html

    resp = client.post(f"/login/password?tx={tx}",
                       data={"password": flow.password, "tx": tx, "csrf_token": csrf(html)}, headers=FORGED)
    assert resp.status_code == 302
    assert_clean(resp)
    assert resp.headers["Location"].startswith(ISSUER + "/authorize/continue")

    consent = client.get(path_of(resp.headers["Location"]), headers=FORGED)
    assert consent.status_code == 200
    html = assert_clean(consent)
    assert 'name="decision"' in html
    assert_own_urls(html)
    assert f'action="{ISSUER}/authorize/continue?tx={tx}"' in html

    resp = client.post("/authorize/continue", data={"tx": tx, "decision": "allow", "csrf_token": csrf(html)},
                       headers=FORGED)
    assert resp.status_code == 302
    assert_clean(resp)
    params = query(resp.headers["Location"])
    assert params["iss"] == ISSUER


@pytest.mark.parametrize("path", ["/", "/login", "/signout", "/logout", "/authorize?client_id=nobody"])
def test_other_pages_clean(flow, client, path):
    flow.authorize()  # signed in: the pages show their signed-in variants
    resp = client.get(path, headers=FORGED)
    assert resp.status_code in (200, 302, 400)
    assert_own_urls(assert_clean(resp))


def test_id_token_issuer_ignores_host(flow, client):
    params = flow.authorize()
    resp = client.post("/token", data={"grant_type": "authorization_code", "code": params["code"],
                                       "redirect_uri": flow.redirect_uri, "code_verifier": flow.last["verifier"]},
                       headers={**flow.basic(), **FORGED})
    assert resp.status_code == 200
    assert_clean(resp)
    tokens = resp.get_json()
    assert jwt_parts(tokens["id_token"])[1]["iss"] == ISSUER
    assert jwt_parts(tokens["access_token"])[1]["iss"] == ISSUER
