"""The JSON endpoint the password fields call as the user types (blueprint
``password_api``; the policy it asks is ``password/service.py``'s).

``POST /password/check`` with ``{"password": "...", "link": "...",
"email": "...", "given_name": "...", "family_name": "..."}`` (all but
``password`` optional) answers ``200 {"ok": bool, "violations": [{"code",
"message"}]}`` in the page's language.

Whose name and email the password must not contain:

1. the signed-in user's (the change-password form);
2. else the account of a live activation, reset or one-time login link
   (``link``: the raw value from the page's URL; looked at, never used up);
3. else whatever the page sends in the optional fields.

A link that is unknown, used or expired counts as no link: the answer is
the same as for a caller without one, and nothing in it names or describes
an account. The history rule (``PASSWORD_HISTORY``) is left out here -- it
costs an Argon2 verification per remembered password on every keystroke --
and is enforced when the form is posted.

Only our own pages call it: the usual CSRF token is required (sent in the
``X-CSRFToken`` header), and bad input gets ``400 {"error", "message"}``.
Anyone can get a CSRF token, and an estimate costs CPU (zxcvbn, 10-20 ms for
a long password), so each client IP may ask ``PASSWORD_CHECK_PER_IP`` times in
:data:`WINDOW` seconds; more get ``429 {"error": "too_many_checks"}`` with
``Retry-After``. The page's script then shows nothing, and posting the form
checks the password as always.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, jsonify, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from ..browser.sso import current_session
from ..context import current_idp
from ..password import service
from ..password.policy import MAX_LENGTH
from . import tokens
from .activation import within_quota

bp = Blueprint("password_api", __name__)

# bytes: JSON may escape each code point of the longest password as \uXXXX\uXXXX (12 bytes), and the other fields
MAX_BODY = 16 * MAX_LENGTH
MAX_FIELD = 320  # characters in link, email and names (an email address is at most 320)
LINK_KINDS = (tokens.ACTIVATION, tokens.RESET, tokens.LOGIN_LINK)
PERSON_FIELDS = ("email", "given_name", "family_name")
WINDOW = 300  # seconds of PASSWORD_CHECK_PER_IP


def _error(status: int, error: str, message: str):
    resp = jsonify({"error": error, "message": message})
    resp.status_code = status
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/password/check")
def check():
    if request.mimetype != "application/json":
        return _error(400, "not_json", _("Send the password as a JSON object."))
    if request.content_length is not None and request.content_length > MAX_BODY:
        return _error(400, "too_large", _("The request is too large."))
    raw = request.stream.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        return _error(400, "too_large", _("The request is too large."))
    try:
        body = json.loads(raw)
    except ValueError:  # also bad UTF-8
        return _error(400, "not_json", _("Send the password as a JSON object."))
    if not isinstance(body, dict):
        return _error(400, "not_json", _("Send the password as a JSON object."))
    password = body.get("password")
    if not isinstance(password, str):
        return _error(400, "bad_password", _("The password must be a text string."))
    if not within_quota("password_check:ip:" + (request.remote_addr or "-"),
                        current_idp().settings["PASSWORD_CHECK_PER_IP"], WINDOW):
        resp = _error(429, "too_many_checks",
                      _("Too many password checks from your network. Your password is still checked when you send "
                        "the form."))
        resp.headers["Retry-After"] = str(WINDOW)
        return resp
    extra: dict[str, Any] = {}
    for name in ("link", *PERSON_FIELDS):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > MAX_FIELD:
            return _error(400, "bad_field", _("The field %(name)s must be a text string of at most %(max)d characters.",
                                                 name=name, max=MAX_FIELD))
        extra[name] = value

    user = _whose(extra.get("link"))
    if user is not None:
        found = service.violations(password, user, history=False)
    else:
        found = service.violations(password, history=False, **{k: extra[k] for k in PERSON_FIELDS if k in extra})
    resp = jsonify({"ok": not found, "violations": [v.as_json() for v in found]})
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _whose(link: str | None):
    sess = current_session()
    if sess is not None:
        return sess.user
    if link:
        try:
            return tokens.peek(link, LINK_KINDS).user
        except tokens.LinkInvalid:
            return None
    return None


@bp.errorhandler(CSRFError)
def _csrf_error(error):
    return _error(400, "csrf", _("This page has expired. Reload the page and try again."))


@bp.errorhandler(RequestEntityTooLarge)
def _body_too_large(error):
    # Over MAX_CONTENT_LENGTH, reading the form fails again -- and the locale
    # selector looks at request.values to translate the message: it gets an
    # empty form instead.
    request.form = ImmutableMultiDict()
    return _error(400, "too_large", _("The request is too large."))


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException):
    # the Origin check (403) and anything else Werkzeug raises: JSON, not a page
    status = error.code or 500
    return _error(status, "bad_request" if status < 500 else "server_error",
                  _("The password could not be checked. Reload the page and try again."))


@bp.app_template_global("password_rules")
def password_rules(history: bool = True) -> list[str]:
    """The policy's rules as short items, for the password fields."""
    return service.policy().describe(history=history)
