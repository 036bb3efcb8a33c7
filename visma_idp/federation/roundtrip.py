"""The round trip to an upstream provider and back (Authlib's client).

Rules:
- the request carries PKCE (S256), a fresh ``state`` and a fresh ``nonce``,
  and the upstream's ``acr_values``; the three secrets are kept in *this
  browser's* signed state cookie, never in a server-side cache keyed by
  ``state`` (Authlib advisory GHSA-fg6f-75jq-6523: there a ``state`` from
  another browser would do), so an answer only counts in the browser that
  asked; one round trip is pending per browser, and it is spent by the
  first answer, whatever it says (a replayed answer finds nothing);
- the answer's ``state`` equals the pending one (constant time); an ``iss``
  parameter (RFC 9207) equals the upstream's issuer, and is required when
  its metadata says it sends one (a mix-up with another upstream fails);
- the code is redeemed at the upstream's token endpoint with the verifier and
  our client authentication (secret, or ``private_key_jwt`` with our key);
  the ID token is checked by ``id_token.py``;
- what the round trip was for (``purpose``: sign in, link an account, link
  a national identity number, sign in with national eID) names a handler
  registered at start-up (``register``): ``login/`` registers the sign-in's,
  ``federation/views.py`` the account's; this module imports neither;
- every failure is audited with its reason; the person gets a translated
  page that names the upstream and offers the way back, never a 500.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from flask import redirect, request, session
from flask.typing import ResponseReturnValue

from .. import audit
from ..context import current_idp
from ..storage import Upstream, db
from . import upstreams
from .id_token import InvalidIdToken, validate
from .upstreams import UpstreamUnavailable

log = logging.getLogger("visma_idp.federation")

KEY = "upstream"  # the pending round trip, in the signed state cookie

# purposes
LOGIN = "login"  # sign in through a company upstream
LINK = "link"  # link a company identity to the signed-in account (My details)
NATIONAL_LOGIN = "national_login"  # sign in with national eID
NATIONAL_LINK = "national_link"  # link a national identity number (My details)

_HANDLERS: dict[str, Callable[[Result], ResponseReturnValue]] = {}


class RoundTripFailed(Exception):
    """The round trip cannot give an identity: ``reason`` (audited), and the upstream if known."""

    def __init__(self, reason: str, upstream: Upstream | None = None, *, cancelled: bool = False,
                 unavailable: bool = False, untrusted: bool = False, purpose: str | None = None,
                 extra: dict[str, Any] | None = None):
        super().__init__(reason)
        self.reason = reason
        self.untrusted = untrusted  # the upstream's answer itself failed a check (iss, code, ID token)
        self.upstream = upstream
        self.cancelled = cancelled
        self.unavailable = unavailable
        self.purpose = purpose
        self.extra = extra or {}


@dataclass
class Result:
    """A finished round trip: the upstream, the checked ID token's claims, and what it was for."""

    upstream: Upstream
    claims: dict[str, Any]
    purpose: str
    extra: dict[str, Any] = field(default_factory=dict)


def register(purpose: str, handler: Callable[[Result], ResponseReturnValue]) -> None:
    """Name the view that takes over a finished round trip of ``purpose`` (at start-up)."""
    _HANDLERS[purpose] = handler


def handler(purpose: str) -> Callable[[Result], ResponseReturnValue]:
    return _HANDLERS[purpose]


def _client(row: Upstream, meta: dict[str, Any]) -> OAuth2Session:
    timeout = current_idp().settings["UPSTREAM_HTTP_TIMEOUT"]
    redirect_uri = current_idp().url("federation.callback")
    if row.auth_method == "private_key_jwt":
        client = OAuth2Session(row.client_id, row.private_key, token_endpoint_auth_method="private_key_jwt",
                               redirect_uri=redirect_uri, code_challenge_method="S256", default_timeout=timeout)
        client.register_client_auth_method(PrivateKeyJWT(meta["token_endpoint"], headers={"kid": row.key_id},
                                                         alg="RS256"))
        return client
    return OAuth2Session(row.client_id, row.client_secret, token_endpoint_auth_method=row.auth_method,
                         redirect_uri=redirect_uri, code_challenge_method="S256", default_timeout=timeout)


def start(row: Upstream, purpose: str, *, login_hint: str | None = None, **extra: Any) -> ResponseReturnValue:
    """Send this browser to ``row`` for ``purpose``; ``extra`` comes back in the :class:`Result`.

    Raises:
        UpstreamUnavailable: its discovery document cannot be had.
    """
    meta = upstreams.metadata(row)
    state, nonce, verifier = generate_token(32), generate_token(32), generate_token(48)
    params: dict[str, Any] = {"nonce": nonce, "scope": " ".join(row.scopes)}
    if row.acr_values:
        params["acr_values"] = " ".join(row.acr_values)
    if login_hint:
        params["login_hint"] = login_hint
    url, _state = _client(row, meta).create_authorization_url(meta["authorization_endpoint"], state=state,
                                                              code_verifier=verifier, **params)
    session[KEY] = {"upstream": row.id, "purpose": purpose, "state": state, "nonce": nonce, "verifier": verifier,
                    "at": current_idp().clock.now(), "extra": extra}
    audit.record("upstream_redirect", user_id=extra.get("user_id"), details={"upstream": row.name, "purpose": purpose})
    db.session.commit()
    return redirect(url)


def _pending() -> dict[str, Any]:
    pending = session.pop(KEY, None)  # spent by the first answer, whatever it says
    if not isinstance(pending, dict):
        raise RoundTripFailed("no round trip pending in this browser")
    row = upstreams.by_id(int(pending.get("upstream") or 0))
    purpose = pending.get("purpose")
    if row is None or not row.enabled:
        raise RoundTripFailed("the upstream is gone or disabled")
    if purpose not in _HANDLERS:
        raise RoundTripFailed("unknown purpose", row)
    idp = current_idp()
    if idp.clock.now() - int(pending.get("at") or 0) > idp.settings["UPSTREAM_ROUNDTRIP_SECONDS"]:
        raise RoundTripFailed("the round trip expired", row, purpose=purpose, extra=pending.get("extra"))
    pending["row"] = row
    return pending


def finish() -> Result:
    """Check the upstream's answer in this request and redeem its code.

    Raises:
        RoundTripFailed: with the reason; nothing was linked or signed in.
    """
    pending = _pending()
    row: Upstream = pending["row"]
    purpose, extra = pending["purpose"], pending.get("extra") or {}

    def fail(reason: str, **kw: Any) -> RoundTripFailed:
        return RoundTripFailed(reason, row, purpose=purpose, extra=extra, **kw)

    args = request.args
    if not hmac.compare_digest(str(args.get("state") or "").encode(), pending["state"].encode()):
        raise fail("state does not match this browser's round trip")
    try:
        meta = upstreams.metadata(row)
    except UpstreamUnavailable as exc:
        raise fail(exc.reason, unavailable=True) from None
    iss = args.get("iss")
    if iss is not None or meta.get("authorization_response_iss_parameter_supported"):
        if iss is None or (upstreams.TENANT_TEMPLATE not in row.issuer and iss != row.issuer):
            raise fail(f"the answer's iss is {iss!r}, not {row.issuer!r} (RFC 9207)", untrusted=True)
    if args.get("error"):
        raise fail(f"the upstream answered {str(args.get('error'))[:64]}",
                   cancelled=args.get("error") in ("access_denied", "login_required", "interaction_required"))
    code = args.get("code")
    if not code:
        raise fail("no code in the answer", untrusted=True)
    try:
        token = _client(row, meta).fetch_token(meta["token_endpoint"], grant_type="authorization_code", code=code,
                                               code_verifier=pending["verifier"])
    except requests.RequestException as exc:
        raise fail(f"the token endpoint did not answer: {exc.__class__.__name__}", unavailable=True) from None
    except Exception as exc:  # Authlib raises OAuthError (or ValueError) for an error answer
        raise fail(f"the token endpoint refused the code: {str(exc)[:120]}", untrusted=True) from None
    try:
        claims = validate(row, token.get("id_token"), nonce=pending["nonce"])
    except InvalidIdToken as exc:
        raise fail(f"ID token: {exc.reason}", untrusted=True) from None
    except UpstreamUnavailable as exc:
        raise fail(exc.reason, unavailable=True) from None
    return Result(row, claims, purpose, extra)
