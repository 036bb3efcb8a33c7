"""A lean WSGI layer in front of Flask for the two requests a resource server
and a service send thousands of times a second: a client_credentials token
request, and the introspection of a live access token already checked.

It **answers only the plain, successful case** and hands everything else to
the Flask app untouched (the body it read is given back): a request with a
query string, a duplicate or unknown parameter, a body that is not plain
UTF-8 form data, any other authentication than a correct
``client_secret_basic`` or ``client_secret_post`` of a client registered for
it, a grant the client may not use, a scope it may not ask for, an
introspection not kept in ``IntrospectionCache`` (``revocations.py``) or
kept for another client, and any exception. So every error, every
``WWW-Authenticate`` header and every refusal is the full path's, and the
answers here are the full path's too: the same functions make the token
(``issuance.client_access_token``) and the same checks pass (``check_*`` of
the cached client, Authlib's Basic parser), with the headers the full path's
hooks set (``security.json_headers``; a test compares the two paths field by
field). What it skips is Flask's request context, the cookie session, the
CSRF and origin hooks (these endpoints are exempt from both) and Authlib's
request wrappers: about half the CPU of such a request (docs/performance.md).

``FAST_LANE`` (default on) turns it off. :func:`install` wraps an app made
by ``create_app``; a host app that embeds the provider may call it too.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from authlib.oauth2.rfc6749.util import extract_basic_authorization

from ..security import json_headers
from .grants import CONFIDENTIAL_AUTH_METHODS, client_credentials_scope
from .issuance import client_access_token

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger("visma_idp.fastlane")

MAX_BODY = 8192
TOKEN_PARAMS = frozenset({"grant_type", "scope", "client_id", "client_secret"})
INTROSPECT_PARAMS = frozenset({"token", "token_type_hint", "client_id", "client_secret"})
_SECRET_METHODS = ("client_secret_basic", "client_secret_post")
_REPLACEMENT = "\ufffd"


class _Body:
    """The request body read here, given back to the full path."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size is None or size < 0 else min(len(self._data), self._pos + size)
        chunk = self._data[self._pos:end]
        self._pos = end
        return chunk

    def readline(self, size: int = -1) -> bytes:
        nl = self._data.find(b"\n", self._pos)
        end = len(self._data) if nl < 0 else nl + 1
        if size is not None and size >= 0:
            end = min(end, self._pos + size)
        chunk = self._data[self._pos:end]
        self._pos = end
        return chunk

    def __iter__(self):
        while line := self.readline():
            yield line


class FastLane:
    def __init__(self, app: Flask, idp, wsgi_app) -> None:
        self.app = app
        self.idp = idp
        self.next = wsgi_app
        prefix = idp.url_prefix or ""
        self.token_path = prefix + "/token"
        self.introspect_path = prefix + "/introspect"
        self._headers: list[tuple[str, str]] | None = None
        # called as (environ, endpoint, status, headers, started) before the answer goes out;
        # ``headers`` may be added to, ``started`` is time.perf_counter() when the request came in
        self.observers: list[Any] = []

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        path = environ.get("PATH_INFO")
        if (path != self.token_path and path != self.introspect_path) or environ.get("REQUEST_METHOD") != "POST":
            return self.next(environ, start_response)
        form = self._read_form(environ)
        if form is None:
            return self.next(environ, start_response)
        try:
            with self.app.app_context():
                if path == self.token_path:
                    endpoint, body = "oidc.token", self._token(environ, form)
                else:
                    endpoint, body = "oidc.introspect", self._introspect(environ, form)
        except Exception:  # the full path answers (and logs) whatever went wrong
            log.debug("fast lane: handing over after an exception", exc_info=True)
            body = None
        if body is None:
            return self.next(environ, start_response)
        headers = [("Content-Type", "application/json"), ("Cache-Control", "no-store"), ("Pragma", "no-cache"),
                   ("Content-Length", str(len(body))), *self._security_headers()]
        for observe in self.observers:
            observe(environ, endpoint, 200, headers, started)
        start_response("200 OK", headers)
        return [body]

    def _security_headers(self) -> list[tuple[str, str]]:
        if self._headers is None:
            self._headers = json_headers(self.idp)
        return self._headers

    @staticmethod
    def _read_form(environ) -> dict[str, str] | None:
        """The form of a small, plain ``application/x-www-form-urlencoded`` body
        with each parameter once and no query string; None (body given back) otherwise."""
        if environ.get("QUERY_STRING"):
            return None
        ctype = environ.get("CONTENT_TYPE", "")
        media, _, params = ctype.partition(";")
        if media.strip().lower() != "application/x-www-form-urlencoded" or params.strip() not in ("", "charset=utf-8",
                                                                                                  "charset=UTF-8"):
            return None
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            return None
        if not 0 < length <= MAX_BODY or environ.get("HTTP_TRANSFER_ENCODING"):
            return None
        data = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = _Body(data)
        if len(data) != length:
            return None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return None
        pairs = parse_qsl(text, keep_blank_values=True, errors="replace")
        form = dict(pairs)
        if len(form) != len(pairs) or any(_REPLACEMENT in k or _REPLACEMENT in v for k, v in pairs):
            return None
        return form

    def _client(self, environ, form: dict[str, str], endpoint: str):
        """The client, when it authenticated with its own secret method and
        nothing else was offered; None otherwise."""
        header = environ.get("HTTP_AUTHORIZATION")
        if header is not None:
            if "client_secret" in form or "client_id" in form:
                return None
            client_id, secret = extract_basic_authorization({"Authorization": header})
            method = "client_secret_basic"
        else:
            client_id, secret = form.get("client_id"), form.get("client_secret")
            method = "client_secret_post"
        if not client_id or not secret or method not in CONFIDENTIAL_AUTH_METHODS:
            return None
        client = self.idp.clients.get(client_id)
        if client is None or not client.check_endpoint_auth_method(method, endpoint) \
                or not client.check_client_secret(secret):
            return None
        return client

    def _token(self, environ, form: dict[str, str]) -> bytes | None:
        if form.keys() - TOKEN_PARAMS or form.get("grant_type") != "client_credentials":
            return None
        client = self._client(environ, form, "token")
        if client is None or not client.check_grant_type("client_credentials"):
            return None
        granted = client_credentials_scope(client, form.get("scope"))
        if granted is None:
            return None
        self.idp.keys.ensure_active()
        token = client_access_token(self.idp, client, granted)
        return self.app.json.dumps(token).encode()

    def _introspect(self, environ, form: dict[str, str]) -> bytes | None:
        cache = self.idp.introspection_cache
        token = form.get("token")
        if not cache.enabled or form.keys() - INTROSPECT_PARAMS or not token \
                or form.get("token_type_hint", "access_token") != "access_token":
            return None
        client = self._client(environ, form, "introspection")
        if client is None:
            return None
        kept = cache.get(token, self.idp.clock.now())
        if kept is None or kept["client_id"] != client.client_id:
            return None
        return self.app.json.dumps(kept).encode()


def install(app: Flask, idp) -> FastLane:
    """Put the fast lane in front of ``app``'s WSGI callable."""
    lane = FastLane(app, idp, app.wsgi_app)
    app.wsgi_app = lane  # type: ignore[method-assign]
    return lane
