"""The user a request names: ``id_token_hint`` (OIDC Core §3.1.2.1) and a
``sub`` claim asked for with a ``value`` (§5.5.1).

Rules:
- A request names its user through the ``sub`` of a valid ``id_token_hint``
  and through ``claims`` → ``id_token`` or ``userinfo`` → ``sub`` →
  ``value``. One rule covers all of them.
- The ``sub`` member is null (no requirement) or an object; its ``value``,
  when present, is a string. Anything else is ``invalid_request``.
  (``values`` and ``essential`` on ``sub`` name nobody and are ignored.)
- Naming two different users at once cannot be satisfied: ``invalid_request``.
- Signed in as the named user: nothing more to do.
- No session, or a session of another user that did not sign in for this
  request: the user is asked to sign in (``prompt=none``: ``login_required``).
- Whoever signed in for this request (or is otherwise freshly signed in) and
  is still not the named user: the client gets ``login_required``
  (§3.1.2.6: the request needs an authentication of that user, which did not
  happen), never a code. ``login_required`` rather than ``access_denied``: no
  one refused anything, the client may try again with the right user, and
  node-oidc-provider answers the same ("requested subject could not be
  obtained"). §5.5.1 forbids a token for a different user even with an
  active session.
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oidc.core.errors import LoginRequiredError


def requested_subject(claims: dict[str, Any] | None, hint_sub: str | None, redirect_uri: str) -> str | None:
    """The ``sub`` the request names, or None when it names nobody.

    Args:
        claims: the parsed ``claims`` parameter (its ``id_token`` and ``userinfo`` members).
        hint_sub: ``sub`` of a verified ``id_token_hint``.
        redirect_uri: where an error goes.

    Returns:
        The one named ``sub``, or None.

    Raises:
        InvalidRequestError: a malformed ``sub`` request, or two different users named.
    """
    named: set[str] = set()
    if hint_sub is not None:
        named.add(hint_sub)
    for member in ("id_token", "userinfo"):
        wanted = (claims or {}).get(member) or {}
        if "sub" not in wanted or wanted["sub"] is None:
            continue
        sub = wanted["sub"]
        if not isinstance(sub, dict) or ("value" in sub and not isinstance(sub["value"], str)):
            raise InvalidRequestError("The sub claim request must be an object whose value is a string.",
                                      redirect_uri=redirect_uri)
        if "value" in sub:
            named.add(sub["value"])
    if len(named) > 1:
        raise InvalidRequestError("The request names more than one user.", redirect_uri=redirect_uri)
    return next(iter(named), None)


def needs_other_user(named: str | None, user_sub: str | None, *, fresh: bool, redirect_uri: str) -> bool:
    """Whether the named user must sign in first.

    Args:
        named: the ``sub`` the request names (``requested_subject``), or None.
        user_sub: ``sub`` of the signed-in user, or None without a session.
        fresh: the session's login happened after this request started.
        redirect_uri: where an error goes.

    Returns:
        True when someone must sign in (no session, or another user's session
        from before this request); False when the named user is signed in or
        the request names nobody.

    Raises:
        LoginRequiredError: the user who signed in for this request is not the named one.
    """
    if named is None or named == user_sub:
        return False
    if fresh and user_sub is not None:
        raise LoginRequiredError("The requested user did not sign in.", redirect_uri=redirect_uri)
    return True
