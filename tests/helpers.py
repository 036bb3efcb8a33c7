"""Test helpers: a browser-less OIDC relying party that logs in through the
real HTML forms of the provider (email page, password page, consent page)."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


class services:
    @staticmethod
    def missing(name: str, exc: Exception):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{name} is required in CI but is not reachable: {exc}")
        pytest.skip(f"{name} not reachable: {exc}")


# databases whose tables the ``app`` fixture made in this process and nobody
# dropped since: their tables are kept between tests and only emptied
TABLES_MADE: set[str] = set()


def drop_all_tables(url: str) -> None:
    """Drop every table in the database, whatever created it (alembic_version too)."""
    from sqlalchemy import MetaData, create_engine

    TABLES_MADE.discard(url)
    engine = create_engine(url)
    try:
        meta = MetaData()
        meta.reflect(engine)
        meta.drop_all(engine)
    finally:
        engine.dispose()


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def csrf(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


def without_csrf(html: str) -> str:
    """The page with its CSRF tokens blanked: a token carries the second it was
    signed, so two renderings of one page differ there when a second ticks."""
    return CSRF_RE.sub('name="csrf_token" value=""', html)


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@dataclass
class Flow:
    app: object
    client: object
    client_id: str
    client_secret: str | None
    redirect_uri: str
    email: str = "kari@example.no"
    password: str = "correct horse battery"
    last: dict = field(default_factory=dict)

    def auth_params(self, **extra) -> dict[str, str]:
        verifier, challenge = pkce_pair()
        self.last = {"verifier": verifier, "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8)}
        params = {
            "response_type": "code", "client_id": self.client_id, "redirect_uri": self.redirect_uri,
            "scope": "openid", "state": self.last["state"], "nonce": self.last["nonce"],
            "code_challenge": challenge, "code_challenge_method": "S256",
        }
        params.update({k: v for k, v in extra.items() if v is not None})
        for k in [k for k, v in extra.items() if v is None]:
            params.pop(k, None)
        return params

    def start(self, method: str = "GET", **extra):
        params = self.auth_params(**extra)
        if method == "POST":
            return self.client.post("/authorize", data=params)
        return self.client.get("/authorize?" + urlencode(params))

    def login(self, resp, email: str | None = None, password: str | None = None):
        """From a redirect to the email page, fill in email and password; return the next response."""
        assert resp.status_code == 302, resp.status_code
        page = self.client.get(path_of(resp.headers["Location"]))
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        tx = query(resp.headers["Location"]).get("tx")
        data = {"email": email or self.email, "csrf_token": csrf(html)}
        if tx:
            data["tx"] = tx
        resp = self.client.post(path_of(resp.headers["Location"]), data=data)
        assert resp.status_code == 302, resp.get_data(as_text=True)
        page = self.client.get(path_of(resp.headers["Location"]))
        data = {"password": password or self.password, "csrf_token": csrf(page.get_data(as_text=True))}
        if tx:
            data["tx"] = tx
        return self.client.post(path_of(resp.headers["Location"]), data=data)

    def follow(self, resp):
        return self.client.get(path_of(resp.headers["Location"]))

    def consent(self, resp, decision: str = "allow"):
        """Answer a consent page (``resp`` is its 200 response)."""
        html = resp.get_data(as_text=True)
        assert 'name="decision"' in html, html
        tx = re.search(r'name="tx" value="([^"]+)"', html).group(1)
        return self.client.post("/authorize/continue", data={"tx": tx, "decision": decision, "csrf_token": csrf(html)})

    def until_callback(self, resp, decision: str = "allow"):
        """Follow logins/continues/consent until the redirect to the client."""
        for _ in range(6):
            if resp.status_code == 302 and resp.headers["Location"].startswith(self.redirect_uri.split("?")[0]):
                return resp
            if resp.status_code == 302:
                loc = resp.headers["Location"]
                if "/login" in urlsplit(loc).path:
                    resp = self.login(resp)
                else:
                    resp = self.follow(resp)
            elif resp.status_code == 200 and 'name="decision"' in resp.get_data(as_text=True):
                resp = self.consent(resp, decision)
            else:
                raise AssertionError(f"unexpected {resp.status_code}: {resp.get_data(as_text=True)[:500]}")
        raise AssertionError("too many steps")

    def authorize(self, decision: str = "allow", method: str = "GET", **extra) -> dict[str, str]:
        """Run an authorization request to the callback; return the callback's parameters."""
        resp = self.until_callback(self.start(method, **extra), decision)
        return query(resp.headers["Location"])

    def token(self, code: str, verifier: str | None = "__last__", **extra):
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri}
        if verifier == "__last__":
            verifier = self.last["verifier"]
        if verifier:
            data["code_verifier"] = verifier
        data.update(extra)
        return self.client.post("/token", data=data, headers=self.basic())

    def basic(self) -> dict[str, str]:
        if not self.client_secret:
            return {}
        raw = f"{self.client_id}:{self.client_secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}

    def tokens(self, **extra) -> dict:
        params = self.authorize(**extra)
        assert "code" in params, params
        resp = self.token(params["code"])
        assert resp.status_code == 200, resp.get_data(as_text=True)
        return resp.get_json()
