"""A relying app that really listens on a loopback port, for browser tests
that follow a whole sign-in back to the app.

It does what a real OIDC client does, with nothing of the provider's code:
``/start`` sends the browser to the authorization endpoint with ``state``,
``nonce`` and PKCE S256; ``/callback`` takes the answer (a query, or the
POST of ``response_mode=form_post``), checks ``state`` and the RFC 9207
``iss``, redeems the code at the token endpoint over HTTP, verifies the ID
token's signature against the provider's JWKS and its ``iss``, ``aud``,
``exp`` and ``nonce``, and shows "Signed in as <sub>". ``/logged-out`` is
the page RP-initiated logout returns to. What happened is kept in
``results`` (one entry per callback) and ``logouts``.

It runs on its own port, so its origin differs from the provider's: the
browser treats it as the separate site it would be.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import requests
from joserfc import jwt
from joserfc.jwk import KeySet
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.mailbox import free_port


@dataclass
class RelyingParty:
    issuer: str
    client_id: str
    client_secret: str | None
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    results: list[dict[str, Any]] = field(default_factory=list)
    logouts: list[dict[str, str]] = field(default_factory=list)
    _pending: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def redirect_uri(self) -> str:
        return self.url + "/callback"

    @property
    def logged_out_uri(self) -> str:
        return self.url + "/logged-out"

    # -- the app ------------------------------------------------------------------
    def __call__(self, environ, start_response):
        request = Request(environ)
        if request.path == "/start":
            response = self._start(request)
        elif request.path == "/callback":
            response = self._callback(request)
        elif request.path == "/logged-out":
            self.logouts.append(dict(request.args))
            response = _page("Signed out", "You are signed out of the test app.")
        else:
            response = _page("Not found", "", 404)
        return response(environ, start_response)

    def _start(self, request: Request) -> Response:
        state, nonce = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        self._pending[state] = {"nonce": nonce, "verifier": verifier}
        params = {
            "response_type": "code", "client_id": self.client_id, "redirect_uri": self.redirect_uri,
            "scope": "openid email", "state": state, "nonce": nonce,
            "code_challenge": challenge, "code_challenge_method": "S256",
        }
        params.update(request.args.to_dict())  # scope, prompt, response_mode, acr_values, ...
        return Response(status=302, headers={"Location": self.issuer + "/authorize?" + urlencode(params)})

    def _callback(self, request: Request) -> Response:
        answer = request.values.to_dict()
        result: dict[str, Any] = {"method": request.method, "params": answer}
        self.results.append(result)
        pending = self._pending.pop(answer.get("state", ""), None)
        if pending is None:
            result["error"] = "unknown state"
            return _page("Sign-in failed", "unknown state", 400)
        if answer.get("iss") != self.issuer:
            result["error"] = "wrong iss"
            return _page("Sign-in failed", "wrong iss", 400)
        if "error" in answer:
            result["error"] = answer["error"]
            return _page("Sign-in failed", answer["error"], 400)
        token = requests.post(
            self.issuer + "/token",
            data={"grant_type": "authorization_code", "code": answer.get("code", ""),
                  "redirect_uri": self.redirect_uri, "code_verifier": pending["verifier"]},
            auth=(self.client_id, self.client_secret) if self.client_secret else None, timeout=10,
        )
        if token.status_code != 200:
            result["error"] = f"token endpoint {token.status_code}: {token.text}"
            return _page("Sign-in failed", result["error"], 400)
        tokens = token.json()
        keys = KeySet.import_key_set(requests.get(self.issuer + "/jwks", timeout=10).json())
        claims = jwt.decode(tokens["id_token"], keys).claims
        problems = [name for name, ok in (
            ("iss", claims.get("iss") == self.issuer),
            ("aud", claims.get("aud") in (self.client_id, [self.client_id])),
            ("exp", isinstance(claims.get("exp"), int) and claims["exp"] > time.time()),
            ("nonce", claims.get("nonce") == pending["nonce"]),
        ) if not ok]
        if problems:
            result["error"] = "bad ID token: " + ", ".join(problems)
            return _page("Sign-in failed", result["error"], 400)
        result["claims"] = claims
        result["tokens"] = tokens
        return _page("Signed in", f"Signed in as {claims['sub']}")

    # -- running it ---------------------------------------------------------------
    @contextmanager
    def serving(self):
        server = make_server("127.0.0.1", self.port, self, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            thread.join(5)

    @property
    def signed_in(self) -> list[dict[str, Any]]:
        """The callbacks that ended with a verified ID token."""
        return [r for r in self.results if "claims" in r]


def _page(title: str, text: str, status: int = 200) -> Response:
    body = (f"<!doctype html><html><head><title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1><p id=result>{html.escape(text)}</p></body></html>")
    return Response(body, status=status, mimetype="text/html")
