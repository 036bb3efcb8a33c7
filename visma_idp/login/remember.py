"""Remember this browser: a browser that passed the second step may skip it.

Rules (``REMEMBER_BROWSER_DAYS``, 0 = not offered):
- a signed cookie (``browser/cookies.REMEMBER``) bound to the user, their
  password change time, their factor change time and their password hash:
  any of those changing voids it;
- a remembered browser skips the second step, but the session stays at the
  password level (``acr`` pwd), so an app that asks for more still gets a
  step-up;
- offered, and honoured when posted, only for a method that is a factor
  (not a recovery or an admin-issued code) and never during a step-up
  (:func:`may_remember`: the page and the post ask the same rule).
"""

from __future__ import annotations

import hashlib
import hmac

from flask import request
from itsdangerous import BadSignature, URLSafeSerializer

from ..browser import cookies
from ..browser.signin import SignIn
from ..context import current_idp
from ..crypto import derive_key


def _days() -> int:
    return current_idp().settings["REMEMBER_BROWSER_DAYS"]


def may_remember(method, signin: SignIn) -> bool:
    """Whether passing ``method`` in this sign-in may remember the browser."""
    return _days() > 0 and method.rememberable and signin.want is None


def _serializer() -> URLSafeSerializer:
    key = derive_key(current_idp().settings["SECRET_KEY"], "remember-browser").hex()
    return URLSafeSerializer(key, salt="visma_idp.remember")


def _stamp(user) -> str:
    raw = f"{user.id}:{user.password_changed_at}:{user.factors_changed_at}:{user.password_hash}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def remember(user) -> None:
    """Let this browser skip ``user``'s second step for ``REMEMBER_BROWSER_DAYS``."""
    days = _days()
    if days <= 0:
        return
    expires = current_idp().clock.now() + days * 86400  # the app clock, not the library's
    cookies.set(cookies.REMEMBER, _serializer().dumps({"u": user.id, "s": _stamp(user), "e": expires}),
                max_age=days * 86400)


def remembered(user) -> bool:
    raw = request.cookies.get(cookies.name(cookies.REMEMBER))
    if not raw or _days() <= 0 or len(raw) > 300:
        return False
    try:
        data = _serializer().loads(raw)
    except BadSignature:
        return False
    if not isinstance(data, dict) or not isinstance(data.get("e"), int) or data["e"] <= current_idp().clock.now():
        return False
    return data.get("u") == user.id and hmac.compare_digest(str(data.get("s")), _stamp(user))
