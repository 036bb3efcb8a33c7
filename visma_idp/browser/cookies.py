"""Every cookie the provider sets, in one place.

Rules:
- on an https issuer every cookie is ``__Host-`` prefixed (the browser then
  insists on ``Secure``, ``Path=/`` and no ``Domain``), ``Secure`` and
  ``HttpOnly``; a loopback http issuer (local use and tests) drops the
  prefix and ``Secure``, which browsers refuse there;
- all of them are ``SameSite=Lax``: a sign-in comes back from another site
  by a top-level navigation (an upstream provider, a link in a mail), which
  Lax lets through and which Strict would not;
- a view never calls ``response.set_cookie`` itself: it asks for a cookie
  with :func:`set` or :func:`clear`, and :func:`apply` writes them all in
  one after-request hook, so there is one place that names and sets them.

The cookies:

==============  ====================================================================
``SSO``         the single sign-on session's random id (``browser/sso.py``)
``STATE``       Flask's signed session: pending authorizations, the sign-in in
                progress, CSRF token, language choice (``browser/interaction.py``,
                ``browser/signin.py``)
``REMEMBER``    "remember this browser" (``login/remember.py``)
``PASSKEY``     the challenge of a passkey sign-in (``factors/webauthn.py``)
==============  ====================================================================
"""

from __future__ import annotations

import json
from typing import Any

from flask import g
from flask.sessions import SecureCookieSessionInterface

from ..context import current_idp, request_state

SSO = "visma_idp_sid"
STATE = "visma_idp_tx"
REMEMBER = "visma_idp_rb"
PASSKEY = "visma_idp_pk"


def name(base: str, *, secure: bool | None = None) -> str:
    """The cookie's name as the browser sees it (``__Host-`` on https)."""
    if secure is None:
        secure = current_idp().secure_cookies
    return ("__Host-" if secure else "") + base


def read(base: str) -> str | None:
    from flask import request

    return request.cookies.get(name(base))


def set(base: str, value: str, *, max_age: int) -> None:  # noqa: A001 - the module's verb
    """Write cookie ``base`` with this response."""
    request_state().cookies[base] = (value, max_age)


def clear(base: str) -> None:
    """Delete cookie ``base`` with this response."""
    request_state().cookies[base] = (None, 0)


def apply(response):
    """after_request: write or delete the cookies this request asked for."""
    wanted = request_state().cookies
    if not wanted:
        return response
    secure = current_idp().secure_cookies
    for base, (value, max_age) in wanted.items():
        if value is None:
            response.delete_cookie(name(base, secure=secure), path="/", secure=secure, httponly=True, samesite="Lax")
        else:
            response.set_cookie(name(base, secure=secure), value, max_age=max_age, path="/", secure=secure,
                                httponly=True, samesite="Lax")
    return response


class _PlainJSON:
    """What the ``STATE`` cookie holds is plain JSON (dicts, lists, strings,
    numbers): Flask's tagged serializer, which also carries tuples, bytes and
    dates, walks every value twice for nothing. Still signed by itsdangerous."""

    @staticmethod
    def dumps(value: Any) -> str:
        return json.dumps(value, separators=(",", ":"))

    @staticmethod
    def loads(value: str | bytes) -> Any:
        return json.loads(value)


def stateless() -> None:
    """This request is a machine's (the SCIM endpoints): it reads and writes
    no cookie, and its pages' language is not the caller's (``i18n.py``)."""
    g.stateless = True


class StateCookieInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session (the ``STATE`` cookie: pending
    authorizations, the sign-in in progress, the CSRF token, the language
    choice), with a plain JSON serializer, built once per secret instead of on
    every request."""

    serializer = _PlainJSON()  # type: ignore[assignment]

    def __init__(self) -> None:
        self._cached: tuple[Any, Any] | None = None

    def save_session(self, app, session, response) -> None:
        if g.get("stateless"):  # a machine's request (see :func:`stateless`): no cookie, no Vary
            return
        super().save_session(app, session, response)

    def get_signing_serializer(self, app):
        keys = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        cached = self._cached
        if cached is None or cached[0] != keys:
            cached = (keys, super().get_signing_serializer(app))
            self._cached = cached
        return cached[1]
